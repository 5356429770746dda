"""The persistent compilation cache: a restart in a fresh process compiles nothing new; bad directories are refused."""

import json
import os
import subprocess
import sys
from pathlib import Path

from rtc_controller.policy.compilation_cache import cache_dir_refusal, cache_key
from rtc_controller.app.inference_params import validate_parameter

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks" / "bench_startup.py"


def _start(cache_dir: str) -> dict:
    """One inference-worker start (load, warm up every mode, first chunk) in a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, str(BENCH), "--child", "--cache-dir", cache_dir, "--policy", "sim"],
                         capture_output=True, text=True, timeout=600, env=env)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_restart_with_the_same_cache_compiles_nothing_new(tmp_path):
    """The second start loads every executable the warm-up and the first chunk need from the cache."""
    cache = tmp_path / "cache"
    cold = _start(str(cache))
    warm = _start(str(cache))
    assert cold["compiled"] >= 5 and cold["cache_hits"] == 0  # every mode compiled once
    assert warm["compiled"] == 0
    assert warm["cache_hits"] == cold["compile_requests"]  # the same shapes and modes, all loaded
    (entry_dir,) = [p for p in cache.iterdir() if p.is_dir()]
    assert entry_dir.name.startswith("jax") and entry_dir.name.endswith("-bench-sim")
    assert len(list(entry_dir.iterdir())) >= cold["compiled"]


def test_without_a_cache_every_start_compiles():
    off = _start("")
    assert off["compiled"] >= 5 and off["cache_hits"] == 0


def test_the_key_separates_jax_version_backend_and_model():
    import jax

    key = cache_key("pi05-rig bimanual")
    assert key == f"jax{jax.__version__}-{jax.default_backend()}-pi05-rig_bimanual"
    assert cache_key("sim") != key


def test_an_unwritable_directory_is_refused_with_the_key_and_the_reason(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    why = cache_dir_refusal(str(blocker / "jax"))
    assert why is not None and why.startswith("compilation_cache_dir ") and "not a writable directory" in why
    assert "Not a directory" in why or "File exists" in why  # the OS reason
    assert validate_parameter("compilation_cache_dir", str(blocker / "jax"), horizon=100) == why
    assert "must be a string" in validate_parameter("compilation_cache_dir", 3, horizon=100)


def test_an_empty_directory_is_off_and_a_missing_one_is_created(tmp_path):
    assert cache_dir_refusal("") is None
    target = tmp_path / "new" / "jax"
    assert cache_dir_refusal(str(target)) is None and target.is_dir() and not list(target.iterdir())


def test_the_node_refuses_an_unwritable_cache_directory_at_start(tmp_path):
    """The inference node exits 2 (refused parameters) naming the key and the reason, before loading anything."""
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ROS_DOMAIN_ID": "181", "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    out = subprocess.run([sys.executable, "-m", "rtc_controller.ros.inference_node", "--ros-args", "-p",
                          f"compilation_cache_dir:={blocker / 'jax'}"],
                         capture_output=True, text=True, timeout=120, env=env)  # fmt: skip
    assert out.returncode == 2, out.stdout + out.stderr
    text = out.stdout + out.stderr
    assert "compilation_cache_dir" in text and "is not a writable directory: Not a directory" in text
