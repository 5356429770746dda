"""``rtc-eval --dds``: one episode through the real processes over DDS (``rtc-bringup --config config/twin.yaml``
with the recorder), for spot checks of the fast path. ROS-free here: processes are started with ``start_rig`` and
everything is read back from the twin node's status file and the bag.

The delay: the inference node guides with d (``inference_delay``) and waits until d·Δt has passed since its
observation (``extra_latency_s``); the executor then switches at k* = ⌈δ/Δt⌉ ≥ d (δ also holds the inference time
and the transport, so small d cannot be reached exactly: the episode reports the k* it got). Each episode is a
fresh bringup (world reset = new processes); the JAX compilation cache keeps the restarts short.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rtc_controller import topics
from rtc_controller.config_files import config_path
from rtc_controller.ros.bringup import default_nodes, start_rig
from rtc_controller.tools.demo import analyse_bag
from rtc_controller.sim.episode import jerk_rms

if TYPE_CHECKING:
    from rtc_controller.tools.eval import EvalConfig

EPISODE_TIMEOUT_S = 300.0  # start-up (JIT) + the episode's time limit, generously
TCP_COLUMNS = [0, 1, 2, 7, 8, 9]


def dds_overrides(cfg: EvalConfig, *, seed: int, mode: str, delay: int, world_file: Path,
                  status_file: Path) -> dict[str, dict]:  # fmt: skip
    """The per-node parameter overrides of one episode: everything of the cell's config that the nodes take (the
    policy and its section or checkpoint, its cameras, H, s, Δt, n, β, the schedule, the servo rate), so the DDS
    path runs the same cell as the in-process one."""
    inference = {"policy": cfg.policy, "guidance_mode": mode, "max_guidance_weight": cfg.max_guidance_weight,
                 "prefix_schedule": cfg.schedule, "num_steps": cfg.num_steps, "inference_delay": delay,
                 "extra_latency_s": max(0.0, (delay - 0.5) / cfg.action_rate_hz), "horizon": cfg.horizon,
                 "execution_horizon": cfg.execution_horizon, "action_rate_hz": cfg.action_rate_hz}  # fmt: skip
    if cfg.policy == "pi05":
        inference |= {k: v for k, v in (("policy_config", cfg.policy_config), ("checkpoint", cfg.checkpoint),
                                        ("tokenizer_path", cfg.tokenizer_path)) if v}  # fmt: skip
        slots = cfg.camera_slots
        if cfg.policy_config:  # the node takes the section's cameras (and refuses other camera_slots)
            from rtc_controller.policy.pi05.policy_section import load_policy_section

            slots = load_policy_section(cfg.policy_config).camera_slots
        if slots:
            inference["camera_slots"] = list(slots)
    return {
        topics.EXECUTOR_NODE: {"twin_seed": seed, "twin_config": str(world_file), "horizon": cfg.horizon,
                               "execution_horizon": cfg.execution_horizon, "action_rate_hz": cfg.action_rate_hz,
                               "servo_rate_hz": cfg.servo_rate_hz},
        topics.INFERENCE_NODE: inference,
        topics.TWIN_NODE: {"status_file": str(status_file)},
    }  # fmt: skip


def run_dds_episode(cfg: EvalConfig, *, seed: int, mode: str, delay: int, out: Path, config: str | Path | None = None,
                    timeout_s: float = EPISODE_TIMEOUT_S) -> dict:  # fmt: skip
    """One episode of cell (``cfg``, ``mode``, ``delay``) (see the module docstring) -> the same summary as
    ``EpisodeResult.summary()`` plus ``k_star_median`` (the switch index the executor measured)."""
    config = config or config_path("twin.yaml")
    dt_s = 1.0 / cfg.action_rate_hz
    run = out / "dds" / f"{mode}_d{delay}_seed{seed}"
    run.mkdir(parents=True, exist_ok=True)
    status_file = run / "status.json"
    status_file.unlink(missing_ok=True)
    world = run / "twin_world.yaml"  # the task's time limit for this episode (the rest: the defaults)
    world.write_text(f"task:\n  time_limit_s: {cfg.time_limit_s}\n")
    overrides = dds_overrides(cfg, seed=seed, mode=mode, delay=delay, world_file=world, status_file=status_file)
    with start_rig(config, overrides=overrides, nodes=default_nodes(config), record_dir=run / "bag",
                   log_dir=run / "logs") as rig:  # fmt: skip
        end = time.monotonic() + timeout_s
        while time.monotonic() < end and not status_file.exists() and not rig.dead():
            time.sleep(0.2)
        dead = rig.dead()
    if not status_file.exists():
        raise RuntimeError(f"rtc-eval --dds: no outcome for {run.name} (dead processes: {dead}; logs in {run / 'logs'})")
    outcome = json.loads(status_file.read_text())
    mr = analyse_bag(run / "bag", mode=mode, dt_s=dt_s)
    switches = [s for s in mr.switches if not s.from_hold]
    tcp = mr.states[:, TCP_COLUMNS].reshape(-1, 2, 3) if len(mr.states) else np.zeros((0, 2, 3))
    state_dt = float(np.median(np.diff(mr.state_times_s))) if len(mr.state_times_s) > 1 else dt_s
    success = outcome["status"] == "success"
    return {
        "seed": seed, "success": success, "reason": outcome["reason"],
        "time_s": outcome["end_time_s"] - outcome["start_s"],
        "completion_time_s": outcome["end_time_s"] - outcome["start_s"] if success else math.nan,
        "jumps": [s.jump for s in switches], "jumps_linear_m": [s.jump_linear_m for s in switches],
        # The bag has the measured TCP (robot_state), not the executor's command: the jerk is the measured one's.
        "jerk_rms_m_s3": jerk_rms(tcp, state_dt) if len(tcp) else math.nan,
        "interventions": math.nan, "chunks": len(mr.switches), "items": outcome["items"],
        "k_star_median": float(np.median([s.k_star for s in switches])) if switches else math.nan,
    }  # fmt: skip
