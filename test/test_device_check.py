"""The prepared GPU run fails fast, with the reason and the install line, where JAX has no GPU backend."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_device_check_fails_fast_without_a_gpu_backend(tmp_path):
    env = dict(os.environ, PY=sys.executable, JAX_PLATFORMS="cpu")
    out = subprocess.run(["bash", str(ROOT / "benchmarks" / "device_check.sh"), str(tmp_path / "out")], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 3, out.stdout + out.stderr
    assert "no GPU backend" in out.stderr and ".[gpu]" in out.stderr
    assert "bench_pi05_full" not in out.stdout  # nothing else ran
