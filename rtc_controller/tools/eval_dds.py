"""``rtc-eval --dds`` and ``make demo``: one twin episode through the real processes over DDS
(``rtc-bringup --config config/twin.yaml`` with the recorder). ROS-free here: processes are started with
``start_rig`` and everything is read back from the twin node's status file and the bag.

The delay (``rtc-eval --dds``): the cell's parameter overrides are the in-process runner's
(``eval_config.node_overrides``): the inference node waits until (d − ½)·Δt has passed since its observation
(``extra_latency_s``; half a step is left to the transport) and guides with the parameter file's
``inference_delay`` (``auto``: the executor's estimate); the executor switches at k* = ⌈δ/Δt⌉ ≥ d (δ also holds the
inference time, so small d cannot be reached exactly: the episode reports the k* it got). Each
episode is a fresh bringup (world reset = new processes); the JAX compilation cache keeps the restarts short.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from rtc_controller import topics
from rtc_controller.config_files import config_path
from rtc_controller.app.bringup import default_nodes, start_rig
from rtc_controller.analysis.motion import jerk_rms
from rtc_controller.bags.bag_messages import read_diagnostics
from rtc_controller.bags.bag_reader import BagReader
from rtc_controller.analysis.runs import ModeRun, analyse_bag
from rtc_controller.tools.eval_config import DDS_TRANSPORT_STEPS, node_overrides

if TYPE_CHECKING:
    from rtc_controller.tools.eval_config import EvalConfig

EPISODE_TIMEOUT_S = 300.0  # start-up (JIT) + the episode's time limit, generously
TCP_COLUMNS = [0, 1, 2, 7, 8, 9]
INFERENCE_STATUS_SUFFIX = ": inference"  # the inference node's DiagnosticStatus name ends with this


@dataclass
class DdsEpisode:
    """One episode over DDS: the twin node's outcome (its status file), the bag analysed as the demo analyses it,
    and the inference node's compute time per published chunk [s] (prefix pass + guided sampling, from its
    diagnostics; the injected latency comes on top)."""

    outcome: dict[str, Any]
    run: ModeRun
    latencies_s: np.ndarray
    run_dir: Path

    @property
    def success(self) -> bool:
        return self.outcome["status"] == "success"

    @property
    def duration_s(self) -> float:
        """From the arms' first motion to the outcome [s]."""
        return float(self.outcome["end_time_s"] - self.outcome["start_s"])


def inference_latencies(bag_dir: Path) -> np.ndarray:
    """[s] per published chunk: the inference node's compute time (its ``prepare_s`` + ``sample_s`` diagnostics
    values: the prefix pass and the guided sampling, without the injected latency), one per chunk count."""
    with BagReader(bag_dir) as bag:
        diags = read_diagnostics(bag) if bag.resolve(topics.DIAGNOSTICS) else []
    per_chunk: dict[str, float] = {}
    for s in diags:
        v = s.values
        if s.name.endswith(INFERENCE_STATUS_SUFFIX) and {"prepare_s", "sample_s", "chunks"} <= set(v):
            per_chunk.setdefault(v["chunks"], float(v["prepare_s"]) + float(v["sample_s"]))
    return np.array(list(per_chunk.values()), float)


def episode_world(run_dir: Path, *, time_limit_s: float, twin_config: str | Path = "") -> Path:
    """The world file of one episode: ``twin_config`` (a world file; '' = the defaults) with the episode's time
    limit [s], written to ``run_dir/twin_world.yaml``."""
    world: dict[str, Any] = {}
    if twin_config:
        world = yaml.safe_load(Path(twin_config).read_text()) or {}
    world.setdefault("task", {})["time_limit_s"] = float(time_limit_s)
    path = run_dir / "twin_world.yaml"
    path.write_text(yaml.safe_dump(world, sort_keys=False))
    return path


def dds_episode(*, seed: int, mode: str, run_dir: Path, overrides: dict[str, dict], config: str | Path | None = None,
                dt_s: float = 0.02, time_limit_s: float = 15.0, twin_config: str | Path = "",
                timeout_s: float = EPISODE_TIMEOUT_S) -> DdsEpisode:  # fmt: skip
    """One episode of twin seed ``seed`` with ``guidance_mode = mode``: the processes of ``config`` (default
    ``config/twin.yaml``) with the per-node parameter ``overrides``, in the world ``twin_config`` with the time
    limit ``time_limit_s``, until ``twin_node`` decides it."""
    config = config or config_path("twin.yaml")
    run_dir.mkdir(parents=True, exist_ok=True)
    status_file = run_dir / "status.json"
    status_file.unlink(missing_ok=True)
    world = episode_world(run_dir, time_limit_s=time_limit_s, twin_config=twin_config)
    nodes = {name: dict(values) for name, values in overrides.items()}
    nodes.setdefault(topics.EXECUTOR_NODE, {}).update(twin_seed=seed, twin_config=str(world))
    nodes.setdefault(topics.INFERENCE_NODE, {})["guidance_mode"] = mode
    nodes.setdefault(topics.TWIN_NODE, {})["status_file"] = str(status_file)
    with start_rig(config, overrides=nodes, nodes=default_nodes(config), record_dir=run_dir / "bag",
                   log_dir=run_dir / "logs") as rig:  # fmt: skip
        end = time.monotonic() + timeout_s
        while time.monotonic() < end and not status_file.exists() and not rig.dead():
            time.sleep(0.2)
        dead = rig.dead()
    if not status_file.exists():
        raise RuntimeError(f"no outcome for {run_dir.name} (dead processes: {dead}; logs in {run_dir / 'logs'})")
    outcome = json.loads(status_file.read_text())
    return DdsEpisode(outcome, analyse_bag(run_dir / "bag", mode=mode, dt_s=dt_s), inference_latencies(run_dir / "bag"),
                      run_dir)


def run_dds_episode(cfg: EvalConfig, *, seed: int, mode: str, delay: int, out: Path, config: str | Path | None = None,
                    timeout_s: float = EPISODE_TIMEOUT_S) -> dict:  # fmt: skip
    """One episode of cell (``cfg``, ``mode``, ``delay``) (see the module docstring) -> the same summary as
    ``EpisodeResult.summary()`` plus ``k_star_median`` (the switch index the executor measured)."""
    dt_s = 1.0 / cfg.action_rate_hz
    ep = dds_episode(seed=seed, mode=mode, run_dir=out / "dds" / f"{mode}_d{delay}_seed{seed}",
                     overrides=node_overrides(cfg, mode=mode, delay=delay, transport_steps=DDS_TRANSPORT_STEPS),
                     config=config or cfg.config_file, dt_s=dt_s,
                     time_limit_s=cfg.time_limit_s, twin_config=cfg.twin_config, timeout_s=timeout_s)  # fmt: skip
    mr = ep.run
    switches = mr.chunk_switches
    tcp = mr.states[:, TCP_COLUMNS].reshape(-1, 2, 3) if len(mr.states) else np.zeros((0, 2, 3))
    state_dt = float(np.median(np.diff(mr.state_times_s))) if len(mr.state_times_s) > 1 else dt_s
    return {
        "seed": seed, "success": ep.success, "reason": ep.outcome["reason"], "time_s": ep.duration_s,
        "completion_time_s": ep.duration_s if ep.success else math.nan,
        "jumps": [s.jump for s in switches], "jumps_linear_m": [s.jump_linear_m for s in switches],
        # The bag has the measured TCP (robot_state), not the executor's command: the jerk is the measured one's.
        "jerk_rms_m_s3": jerk_rms(tcp, state_dt) if len(tcp) else math.nan,
        "interventions": math.nan, "chunks": len(mr.switches), "items": ep.outcome["items"],
        "k_star_median": float(np.median([s.k_star for s in switches])) if switches else math.nan,
    }  # fmt: skip
