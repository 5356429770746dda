"""benchmarks/device_check.sh on a machine without a GPU backend: it stops at once, says why and how to fix it."""

import json
import os
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "device_check.sh"


def test_without_a_gpu_backend_it_fails_fast_with_the_reason(tmp_path):
    import sys

    env = {**os.environ, "PYTHON": sys.executable, "JAX_PLATFORMS": "cpu"}
    t0 = time.monotonic()
    out = subprocess.run(["bash", str(SCRIPT), "--out", str(tmp_path / "out")], capture_output=True, text=True,
                         timeout=120, env=env)  # fmt: skip
    elapsed = time.monotonic() - t0
    assert out.returncode == 2, out.stdout + out.stderr
    assert "device_check: no GPU backend" in out.stderr and "'cpu'" in out.stderr
    assert "pip install -e '.[gpu]'" in out.stderr  # the fix
    assert elapsed < 60  # before any benchmark: nothing compiled, nothing written
    assert not (tmp_path / "out").exists()


def test_the_gpu_extra_pins_cuda_jax_to_the_installed_jax():
    import jax

    text = (ROOT / "setup.py").read_text()
    # one pinned jax (the bootstrap installs exactly it), and the gpu extra asks for the CUDA build of the same one:
    # a newer jax without a CUDA plugin release (0.12.1 had none) must not slip into the CPU install
    assert f'JAX_VERSION = "{jax.__version__}"' in text
    assert 'f"jax=={JAX_VERSION}"' in text and 'f"jaxlib=={JAX_VERSION}"' in text
    assert '"gpu": [f"jax[cuda12]=={JAX_VERSION}"]' in text


def test_a_dry_run_records_every_stage_in_the_json(tmp_path):
    """With --allow-cpu and a budget too small for any stage, the JSON still says what ran and why it stopped."""
    import sys

    env = {**os.environ, "PYTHON": sys.executable}
    out = subprocess.run(["bash", str(SCRIPT), "--allow-cpu", "--budget-s", "5", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=120, env=env)  # fmt: skip
    assert out.returncode == 1, out.stdout + out.stderr
    doc = json.loads((tmp_path / "device_check.json").read_text())
    assert doc["device"]["backend"] == "cpu" and doc["device"]["jax"]
    assert {s["status"] for s in doc["stages"].values()} == {"skipped"}
