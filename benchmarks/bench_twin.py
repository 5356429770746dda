"""The twin's costs: physics step (+ controller), render per camera and resolution, the in-process episode, and the
servo loop's lateness with the twin as the driver (servo process, 1 kHz; targets p99 <= 200 µs, worst 1-s window
<= 2 % late). Prints a table; ``--json`` writes it.

    .venv/bin/python benchmarks/bench_twin.py --seconds 60 --baseline --json out/bench/twin.json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import rtc_controller.sim  # noqa: F401 — sets MUJOCO_GL before mujoco is imported


def bench_physics(n: int) -> dict:
    from rtc_controller.sim.world import TwinWorld

    w = TwinWorld()
    w.reset(0)
    w.step(100)
    t = time.perf_counter()
    w.step(n)
    step = (time.perf_counter() - t) / n
    import mujoco

    t = time.perf_counter()
    for _ in range(n):
        mujoco.mj_step(w.model, w.data)
    raw = (time.perf_counter() - t) / n
    return {"world_step_us": step * 1e6, "mj_step_us": raw * 1e6, "controller_and_rest_us": (step - raw) * 1e6}


def bench_render(sizes, repeats: int) -> dict:
    from rtc_controller.sim.render import CameraRenderer
    from rtc_controller.sim.world import TwinWorld

    w = TwinWorld()
    w.reset(0)
    out = {}
    for s in sizes:
        r = CameraRenderer(w.model, w.scene, height=s, width=s)
        r.render_world(w)
        t = time.perf_counter()
        for _ in range(repeats):
            r.render_world(w)
        out[f"render_{s}px_per_camera_ms"] = (time.perf_counter() - t) / repeats / 3 * 1e3
        r.close()
    return out


def bench_episode(seeds: int) -> dict:
    from rtc_controller.tools.eval import Evaluator
    from rtc_controller.tools.eval_config import EvalConfig

    ev = Evaluator(EvalConfig(policy="twin", seeds=tuple(range(seeds))))
    ev.run_episode(0, mode="stop", delay=8)  # compile
    t = time.perf_counter()
    sim = 0.0
    for s in range(seeds):
        sim += ev.run_episode(s, mode="stop", delay=8).time_s
    wall = time.perf_counter() - t
    return {"episode_wall_s": wall / seeds, "episode_sim_s": sim / seeds, "realtime_factor": sim / wall}


def bench_servo(seconds: float, driver: str = "mujoco") -> dict:
    """The executor's servo process holding the ready pose with ``driver`` (``sim``: the same run without physics,
    as the baseline measured on the same machine in the same session)."""
    from rtc_controller.app.drivers import driver_factory
    from rtc_controller.control.executor_params import PARAMS, build_config
    from rtc_controller.control.servo_process import ServoProcess

    v = {k: p.default for k, p in PARAMS.items()} | {"driver": driver, "sched_fifo_priority": 80,
                                                     "process_fifo_priority": 40, "twin_snapshot": "rtc_twin_bench"}
    v["workspace_min_m"], v["workspace_max_m"] = [0.2, -0.05, 0.0, 0.2, -0.65, 0.0], [0.8, 0.65, 0.6, 0.8, 0.05, 0.6]
    sp = ServoProcess(build_config(v), driver_factory(v), process_fifo_priority=40, start_timeout_s=60.0)
    sp.start()
    try:
        time.sleep(1.0)
        sp.reset_loop_stats()
        time.sleep(seconds)
        stats, late, _ = sp.loop_records()
    finally:
        sp.shutdown()
    late_us = np.asarray(late) * 1e6
    tag = "" if driver == "mujoco" else f"_{driver}"
    return {f"servo{tag}_lateness_p50_us": float(np.percentile(late_us, 50)),
            f"servo{tag}_lateness_p99_us": float(np.percentile(late_us, 99)),
            f"servo{tag}_worst_window_late_pct": 100 * stats.worst_window_late_fraction,
            f"servo{tag}_ticks": int(len(late_us))}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=10.0, help="servo-loop run [s]")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--sizes", default="96,224")
    p.add_argument("--episodes", type=int, default=2)
    p.add_argument("--baseline", action="store_true", help="also the servo loop with driver sim (no physics)")
    p.add_argument("--json")
    o = p.parse_args()
    res = {}
    res.update(bench_physics(o.steps))
    res.update(bench_render([int(s) for s in o.sizes.split(",")], 5))
    res.update(bench_episode(o.episodes))
    res.update(bench_servo(o.seconds))
    if o.baseline:
        res.update(bench_servo(o.seconds, "sim"))
    print("| metric | value |\n|---|---|")
    for k, v in res.items():
        print(f"| {k} | {v:.3g} |")
    if o.json:
        import pathlib

        pathlib.Path(o.json).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(o.json).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
