"""The device run behind ``benchmarks/device_check.sh``: checks the GPU backend, then runs each benchmark in its own
process within one time budget and writes every result (or why a stage did not finish) to one JSON.

Stages: ``bench_pi05.py --size full`` (its table: prefix ms, step ms, chunk none/stop/full at H = 50 and 100,
stop/none, the prompt-bucket prefix table, peak device memory), then ``bench_startup.py`` (start-to-first-chunk cold
and warm, a fresh process each, compile counts). A stage past the remaining budget is stopped and recorded as
``timeout``; the JSON is written either way. ``--with-costs`` adds ``bench_pi05_costs.py`` (its table in the log). Exit 0: every stage passed; 1: a stage failed or timed out; 2: no GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXIT_NO_GPU = 2
GPU_INSTALL = "pip install -e '.[gpu]', jax[cuda12] pinned to the installed jax"


def backend_problem(allow_cpu: bool) -> tuple[str | None, dict]:
    """(why this machine cannot run the check, or None; the device facts)."""
    try:
        import jax
        import jaxlib
    except ImportError as exc:
        return f"jax is not importable ({exc}); install it: {GPU_INSTALL}", {}
    try:
        backend = jax.default_backend()
        devices = [f"{d.platform}:{getattr(d, 'device_kind', '?')}" for d in jax.devices()]
    except RuntimeError as exc:
        return f"jax found no backend ({exc}); install CUDA JAX: {GPU_INSTALL}", {}
    facts = {"backend": backend, "devices": devices, "jax": jax.__version__, "jaxlib": jaxlib.__version__,
             "python": platform.python_version(), "host": platform.node()}
    if backend != "gpu" and not allow_cpu:
        return (f"no GPU backend: jax {jax.__version__} runs on {backend!r} ({', '.join(devices)}). Install CUDA JAX "
                f"({GPU_INSTALL}) on a machine with an NVIDIA GPU and driver, then rerun."), facts
    return None, facts


def nvidia_smi() -> str | None:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    out = subprocess.run([exe, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                         capture_output=True, text=True, timeout=30)
    return out.stdout.strip() or None


def stage(name: str, cmd: list[str], deadline: float, log_dir: Path) -> dict:
    """Run ``cmd`` (prints streamed through) until it ends or ``deadline`` (time.monotonic); its record."""
    left = deadline - time.monotonic()
    if left < 10:
        print(f"\n## {name}: skipped (budget spent)", flush=True)
        return {"status": "skipped", "cmd": cmd}
    print(f"\n## {name} (≤ {left:.0f} s): {' '.join(cmd)}", flush=True)
    t0 = time.monotonic()
    log = log_dir / f"{name}.log"
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            for line in proc.stdout:  # the budget is checked between lines; a silent stage is cut by wait()
                sys.stdout.write(line)
                f.write(line)
                if time.monotonic() > deadline:
                    break
            proc.wait(max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            status = "timeout"
        else:
            status = "ok" if proc.returncode == 0 else f"failed (exit {proc.returncode})"
    print(f"## {name}: {status} in {time.monotonic() - t0:.0f} s", flush=True)
    return {"status": status, "wall_s": time.monotonic() - t0, "cmd": cmd, "log": str(log)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="out/device_check", help="folder for device_check.json and the stage logs")
    ap.add_argument("--budget-s", type=float, default=480.0, help="the whole run, all stages [s]")
    ap.add_argument("--size", choices=("full", "reduced"), default="full", help="bench_pi05 size")
    ap.add_argument("--startup-size", choices=("full", "reduced", "tiny"), default="full")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--with-costs", action="store_true", help="then bench_pi05_costs.py at --size, if budget is left")
    ap.add_argument("--allow-cpu", action="store_true", help="run on the CPU backend (a dry run of this script)")
    ns = ap.parse_args(argv)
    t_start = time.monotonic()
    deadline = t_start + ns.budget_s
    why, facts = backend_problem(ns.allow_cpu)
    if why is not None:
        print(f"device_check: {why}", file=sys.stderr)
        return EXIT_NO_GPU
    facts["nvidia_smi"] = nvidia_smi()
    print("# device check")
    for k, v in facts.items():
        print(f"{k:>11}: {v}")
    out = Path(ns.out)
    out.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    pi05_json, startup_json = out / "bench_pi05.json", out / "bench_startup.json"
    stages = {
        "bench_pi05": stage("bench_pi05", [py, str(HERE / "bench_pi05.py"), "--size", ns.size, "--horizons", "50",
                                           "100", "--repeats", str(ns.repeats), "--json", str(pi05_json)],
                            deadline, out),
        "bench_startup": stage("bench_startup", [py, str(HERE / "bench_startup.py"), "--size", ns.startup_size,
                                                 "--warm-starts", "1", "--json", str(startup_json)], deadline, out),
    }
    if ns.with_costs:
        stages["bench_pi05_costs"] = stage("bench_pi05_costs", [py, str(HERE / "bench_pi05_costs.py"), "--size",
                                                                ns.size, "--repeats", str(ns.repeats)], deadline, out)
    doc = {"device": facts, "budget_s": ns.budget_s, "wall_s": time.monotonic() - t_start, "stages": stages}
    for name, path in (("bench_pi05", pi05_json), ("bench_startup", startup_json)):
        if stages[name]["status"] == "ok" and path.exists():
            doc[name] = json.loads(path.read_text())
    (out / "device_check.json").write_text(json.dumps(doc, indent=1))
    print(f"\nwrote {out / 'device_check.json'} ({doc['wall_s']:.0f} s)")
    return 0 if all(s["status"] == "ok" for s in stages.values()) else 1


if __name__ == "__main__":
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # peak memory is the model's, not the pool's
    sys.exit(main())
