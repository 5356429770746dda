"""Servo-loop timing under load: the executor's loop vs a naive ``time.sleep(0.001)`` loop, side by side.

Setup (all real processes, real DDS):
- this process: ``ExecutorNode`` (sim driver, config/sim.yaml) — state publication, chunk callbacks; the servo loop
  runs as configured: in the node's servo process (``servo_process: true``, the default) or, with
  ``--servo-thread``, as a thread inside this process (sharing the GIL with rclpy);
- a chunk publisher process: 10 Hz chunks (H = 50, smooth motion) stamped with the latest robot-state stamp; the
  gripper widths toggle every 0.5 s, so the executor sends a gripper command every 0.5 s through the sim driver's
  gripper channel, whose command blocks ``--gripper-block-ms`` holding the GIL like the real ``Gripper.Move``: in a
  gripper process (the default, what the Flexiv drivers do) or, with ``--gripper-thread``, on a thread of the servo
  process (the layout the gripper process replaced);
- a CPU-bound process (``while True: pass``) competing for the cores;
- a naive-loop process: the same executor core and sim driver, the same chunk subscription, but ticked by
  ``while True: tick(); time.sleep(0.001)`` with Python's defaults (5 ms switch interval, gc on).

Lateness: executor = wake-up − absolute deadline; naive = wake-up − (previous wake-up + 1 ms) (it has no absolute
schedule, so absolute lateness would grow without bound). A tick is late when its lateness exceeds 1 ms; the
worst 1-second window's late fraction is Flexiv's timeliness rule (> 2 % faults the robot).
Targets: executor lateness p99 ≤ 200 µs, no 1-second window above 2 %.

    .venv/bin/python benchmarks/bench_executor_loop.py              # 60 s, servo process
    .venv/bin/python benchmarks/bench_executor_loop.py --servo-thread   # 60 s, servo thread in the node's process
    .venv/bin/python benchmarks/bench_executor_loop.py --seconds 20 --json out/bench_executor_loop.json
    .venv/bin/python benchmarks/bench_executor_loop.py --gripper-thread  # blocking gripper calls in the servo process
    .venv/bin/python benchmarks/bench_executor_loop.py --live-view      # + the live view node (its cost on the loop)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PERIOD_S = 0.001
LATE_S = 0.001
WARMUP_S = 2.0
CHUNK_RATE_HZ = 10.0
GRIPPER_TOGGLE_S = 0.5  # a gripper command every 0.5 s
GRIPPER_WIDTHS_M = (0.02, 0.05)
GRIPPER_SPEED_M_S = 100.0  # the executor's gripper rate limit here: each toggle is a single step (one Move per arm)
H = 50
DT = 0.02
KEYS = ("p50_us", "p99_us", "p999_us", "max_us", "late_ticks", "worst_window_late_fraction", "gripper_commands")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("ROS_DOMAIN_ID", str(50 + os.getpid() % 50))
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    return env


# ---- child roles ---------------------------------------------------------------------------------------------
def role_burner() -> None:
    while True:
        pass


def role_publisher() -> None:
    import rclpy
    from sensor_msgs.msg import JointState
    from trajectory_msgs.msg import JointTrajectory

    from rtc_controller import topics
    from rtc_controller.action_space import action_names
    from rtc_controller.ros.conversions import chunk_to_msg, stamp_to_s

    rclpy.init()
    node = rclpy.create_node("bench_chunk_publisher")
    names = action_names()
    latest: dict[str, float] = {}
    home: dict[str, np.ndarray] = {}

    def on_state(msg: JointState) -> None:
        latest["t"] = stamp_to_s(msg.header.stamp)
        home.setdefault("x", np.asarray(msg.position[: len(names)], dtype=float))

    node.create_subscription(JointState, topics.ROBOT_STATE, on_state, 10)
    pub = node.create_publisher(JointTrajectory, topics.CHUNK, 10)

    def publish() -> None:
        if "t" not in latest or latest["t"] == latest.get("sent"):
            return  # no new robot state since the last chunk (it would be rejected as not newer)
        t_obs = latest["sent"] = latest["t"]
        t = t_obs + DT * np.arange(H)
        a = np.repeat(home["x"][None], H, 0)
        a[:, 0] += 0.05 * np.sin(2 * math.pi * 0.25 * t)  # 5 cm, 0.25 Hz in x
        a[:, 5] += 0.2 * np.sin(2 * math.pi * 0.25 * t)  # ±0.2 rad about z (slerp path)
        a[:, 7] -= 0.05 * np.sin(2 * math.pi * 0.25 * t)
        toggle = (np.floor(t / GRIPPER_TOGGLE_S) % 2).astype(int)
        a[:, 6] = a[:, 13] = np.asarray(GRIPPER_WIDTHS_M)[toggle]  # both grippers switch every 0.5 s
        pub.publish(chunk_to_msg(a, names, t_obs, DT))

    node.create_timer(1.0 / CHUNK_RATE_HZ, publish)
    try:
        rclpy.spin(node)
    except KeyboardInterrupt:
        pass
    finally:
        rclpy.try_shutdown()


def role_naive(seconds: float, out_path: str) -> None:
    """The same executor core + sim driver + chunk subscription, ticked by a naive sleep loop."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from trajectory_msgs.msg import JointTrajectory

    from rtc_controller import topics
    from rtc_controller.control.executor import Executor
    from rtc_controller.ros.conversions import msg_to_chunk
    from rtc_controller.app.drivers import build_driver
    from rtc_controller.control.executor_params import PARAMS, build_config

    values = {k: p.default for k, p in PARAMS.items()}
    ex = Executor(build_config(values), build_driver(values))
    ex.start(run_loop=False)
    rclpy.init()
    node = rclpy.create_node("bench_naive_loop")
    node.create_subscription(JointTrajectory, topics.CHUNK, lambda m: ex.submit(msg_to_chunk(m)), 2)
    spinner = SingleThreadedExecutor()
    spinner.add_node(node)
    spin_thread = threading.Thread(target=spinner.spin, daemon=True)
    spin_thread.start()
    n = int((seconds + WARMUP_S) / PERIOD_S * 1.2) + 1000
    wakes = np.zeros(n)
    i = 0
    t_end = time.monotonic() + WARMUP_S + seconds
    mono = time.monotonic
    while i < n:
        w = mono()
        if w > t_end:
            break
        wakes[i] = w
        i += 1
        ex.tick(w)
        time.sleep(PERIOD_S)
    wakes = wakes[:i]
    wakes = wakes[wakes >= wakes[0] + WARMUP_S]
    np.save(out_path, wakes)
    accepted = ex.timeline.counters.accepted
    ex.driver.close()
    spinner.shutdown()
    spin_thread.join(5.0)
    node.destroy_node()
    rclpy.try_shutdown()
    print(json.dumps({"accepted": accepted}))


# ---- statistics ------------------------------------------------------------------------------------------------
def worst_window_fraction(t: np.ndarray, late: np.ndarray, window_s: float = 1.0) -> float:
    """Largest late fraction among ticks in any window [t_i − window, t_i] (sliding, per tick)."""
    if t.size == 0:
        return math.nan
    c = np.concatenate([[0], np.cumsum(late)])
    start = np.searchsorted(t, t - window_s, side="left")
    idx = np.arange(t.size)
    counts = idx - start + 1
    lates = c[idx + 1] - c[start]
    full = t - t[0] >= window_s  # only complete windows
    return float(np.max(lates[full] / counts[full])) if np.any(full) else math.nan


def summarize(period_s: np.ndarray, lateness_s: np.ndarray, late_ticks: int, worst: float) -> dict[str, float]:
    us = 1e6
    return {
        "period_p50_us": float(np.percentile(period_s, 50) * us),
        "period_p99_us": float(np.percentile(period_s, 99) * us),
        "period_p999_us": float(np.percentile(period_s, 99.9) * us),
        "period_max_us": float(period_s.max() * us),
        "p50_us": float(np.percentile(lateness_s, 50) * us),
        "p99_us": float(np.percentile(lateness_s, 99) * us),
        "p999_us": float(np.percentile(lateness_s, 99.9) * us),
        "max_us": float(lateness_s.max() * us),
        "late_ticks": int(late_ticks),
        "ticks": int(lateness_s.size),
        "worst_window_late_fraction": float(worst),
    }


def naive_stats(wakes: np.ndarray) -> dict[str, float]:
    period = np.diff(wakes)
    lateness = np.maximum(period - PERIOD_S, 0.0)  # past the intended next wake-up
    late = (lateness > LATE_S).astype(np.int64)
    return summarize(period, lateness, int(late.sum()), worst_window_fraction(wakes[1:], late))


# ---- main ------------------------------------------------------------------------------------------------------
def _node_args(seconds: float, fifo_priority: int, overrides: list[str], *, servo_thread: bool,
               gripper_block_s: float, gripper_thread: bool) -> list[str]:  # fmt: skip
    """executor_node's ROS arguments: config/sim.yaml, the benchmark's settings, then ``overrides``."""
    return (["--ros-args", "--params-file", str(ROOT / "config" / "sim.yaml"),
             "-p", f"stats_window_s:={seconds + 5.0}",
             "-p", f"sched_fifo_priority:={fifo_priority}",
             "-p", f"process_fifo_priority:={fifo_priority // 2}",
             "-p", f"servo_process:={'false' if servo_thread else 'true'}",
             "-p", f"sim_gripper_block_s:={gripper_block_s}",
             "-p", f"sim_gripper_channel:={'thread' if gripper_thread else 'process'}",
             "-p", f"max_gripper_speed_m_s:={GRIPPER_SPEED_M_S}",
             "-p", "chunk_source_node:=bench_chunk_publisher"]
            + [x for o in overrides for x in ("-p", o)])  # fmt: skip


def _executor_figures(core, gripper_block_s: float) -> dict[str, float]:
    """The executor's timing since its last stats reset, with its chunk and gripper counts."""
    st, lat, per = core.loop_records()
    snap = core.snapshot()
    executor = summarize(per, lat, st.late_ticks, st.worst_window_late_fraction)
    executor["skipped"] = st.skipped
    executor["chunks_accepted"] = snap.accepted
    executor["gc_max_us"] = st.gc_max_us
    executor["tick_p99_us"] = st.tick_p99_us
    executor["gripper_commands"] = int(dict(snap.driver.details).get("gripper_commands_sent", 0))
    executor["gripper_block_ms"] = 1e3 * gripper_block_s
    return executor


def run(seconds: float, fifo_priority: int, overrides: list[str], servo_thread: bool = False,
        gripper_block_s: float = 0.02, gripper_thread: bool = False,
        live_view: bool = False) -> dict[str, dict[str, float]]:  # fmt: skip
    import rclpy
    from rtc_controller.ros.executor_node import ExecutorNode, make_ros_executor

    env = _env()
    os.environ.update(env)
    me = [sys.executable, str(Path(__file__).resolve())]
    procs: list[subprocess.Popen] = []
    tmp = tempfile.mkdtemp(prefix="bench_executor_loop_")
    naive_out = os.path.join(tmp, "naive_wakes.npy")
    try:
        procs.append(subprocess.Popen(me + ["--role", "burner"], env=env))
        procs.append(subprocess.Popen(me + ["--role", "publisher"], env=env))
        if live_view:  # the live view as on the rig: its own process, subscribed to chunks, states and switches
            procs.append(subprocess.Popen([sys.executable, "-m", "rtc_controller.ros.live_view_node"], env=env))
        rclpy.init(args=_node_args(seconds, fifo_priority, overrides, servo_thread=servo_thread,
                                   gripper_block_s=gripper_block_s, gripper_thread=gripper_thread))  # fmt: skip
        node = ExecutorNode()
        spinner = make_ros_executor()  # as in executor_node.main
        spinner.add_node(node)
        spin_thread = threading.Thread(target=spinner.spin, daemon=True)
        spin_thread.start()
        naive = subprocess.Popen(me + ["--role", "naive", "--seconds", str(seconds), "--out", naive_out],
                                 env=env, stdout=subprocess.PIPE, text=True)  # fmt: skip
        procs.append(naive)
        time.sleep(WARMUP_S)
        core = node.executor_core  # Executor (thread) or ServoProcess (process): same interface
        core.reset_loop_stats()
        time.sleep(seconds)
        executor = _executor_figures(core, gripper_block_s)
        naive_info = naive.communicate(timeout=seconds + 60)[0]
        spinner.shutdown()
        spin_thread.join(5.0)
        node.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
        nv = naive_stats(np.load(naive_out))
        nv["chunks_accepted"] = json.loads(naive_info.strip().splitlines()[-1])["accepted"]
        return {"executor": executor, "naive": nv}
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(5)


def print_table(res: dict[str, dict[str, float]], seconds: float, fifo_priority: int, servo_thread: bool = False,
                gripper_thread: bool = False) -> None:  # fmt: skip
    cols = [("period p50", "period_p50_us"), ("p99", "period_p99_us"), ("p99.9", "period_p999_us"),
            ("max", "period_max_us"), ("late p50", "p50_us"), ("p99", "p99_us"), ("p99.9", "p999_us"),
            ("max", "max_us")]  # fmt: skip
    print(f"\nservo loop timing over {seconds:.0f} s at 1 kHz [µs]; 10 Hz chunks over DDS, one CPU-bound process; "
          f"executor servo loop in {'a thread of the node process' if servo_thread else 'its own process'}, "
          f"SCHED_FIFO servo {fifo_priority or 'off'} / other threads {fifo_priority // 2 or 'off'}, naive loop with Python defaults")
    head = "| loop     | " + " | ".join(f"{c:>10}" for c, _ in cols) + " | late >1 ms | ticks  | worst 1-s window |"
    print(head)
    print("|" + "|".join("-" * (len(s)) for s in head.split("|")[1:-1]) + "|")
    for name in ("executor", "naive"):
        r = res[name]
        vals = " | ".join(f"{r[k]:>10.0f}" for _, k in cols)
        print(f"| {name:<8} | {vals} | {r['late_ticks']:>10d} | {r['ticks']:>6d} | {100 * r['worst_window_late_fraction']:>15.2f}% |")
    e = res["executor"]
    ok = e["p99_us"] <= 200.0 and e["worst_window_late_fraction"] <= 0.02
    print(f"\nexecutor: tick work p99 {e['tick_p99_us']:.0f} µs, longest slack gc {e['gc_max_us']:.0f} µs, "
          f"skipped ticks {e['skipped']}")
    where = "a thread of the servo process" if gripper_thread else "the gripper process"
    print(f"gripper traffic: {e['gripper_commands']} gripper commands in {seconds:.0f} s (widths toggle every "
          f"{GRIPPER_TOGGLE_S} s), each blocking {e['gripper_block_ms']:.0f} ms with the GIL held, sent from {where}")
    print(f"targets (executor p99 lateness <= 200 µs, no 1-s window > 2 %): {'met' if ok else 'NOT met'}; "
          f"chunks accepted: executor {e['chunks_accepted']}, naive {res['naive']['chunks_accepted']}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="measurement time [s] (after a 2 s warm-up)")
    ap.add_argument("--json", type=Path, help="write the figures to this JSON file")
    ap.add_argument("--fifo-priority", type=int, default=80,
                    help="SCHED_FIFO priority of the executor's servo thread as on the rig (0 = off; warns if not permitted)")
    ap.add_argument("-p", "--param", action="append", default=[], metavar="NAME:=VALUE",
                    help="extra executor_node parameter override (repeatable), e.g. -p spin_us:=100")
    ap.add_argument("--servo-thread", action="store_true",
                    help="run the servo loop as a thread in the node's process (servo_process:=false) to compare")
    ap.add_argument("--gripper-block-ms", type=float, default=20.0,
                    help="how long each sim gripper command blocks, holding the GIL (0 = no gripper traffic)")
    ap.add_argument("--gripper-thread", action="store_true",
                    help="send the gripper commands from a thread of the servo process (the layout the gripper "
                         "process replaced) to compare")
    ap.add_argument("--live-view", action="store_true", help="also run the live view node (measures its cost)")
    ap.add_argument("--role", choices=("burner", "publisher", "naive"), help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.role == "burner":
        role_burner()
    elif a.role == "publisher":
        role_publisher()
    elif a.role == "naive":
        role_naive(a.seconds, a.out)
    else:
        res = run(a.seconds, a.fifo_priority, a.param, a.servo_thread, a.gripper_block_ms * 1e-3, a.gripper_thread,
                  a.live_view)
        print(f"live view node: {'running' if a.live_view else 'off'}")
        print_table(res, a.seconds, a.fifo_priority, a.servo_thread, a.gripper_thread)
        if a.json:
            a.json.parent.mkdir(parents=True, exist_ok=True)
            a.json.write_text(json.dumps({k: {key: res[k][key] for key in KEYS if key in res[k]} for k in res}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
