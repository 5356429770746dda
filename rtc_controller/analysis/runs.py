"""One run's records, read from its bag (ROS-free): the executor's switches, δ and d over time, the measured
state, loop timing and rejections (``rtc-demo``, ``rtc-eval --dds``).

Times [s]: log times relative to the first chunk, robot-state stamps on the executor clock; δ and d [action steps].
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rtc_controller import topics
from rtc_controller.analysis.diagnostics_schema import (
    CHUNKS,
    LATENESS_MAX_US,
    LATENESS_P99_US,
    LOOP,
    REJECTED_TOTAL,
    WORST_WINDOW_LATE_FRACTION,
    SwitchRecord,
    is_part,
    number,
)
from rtc_controller.bags.bag_messages import read_diagnostics, read_states
from rtc_controller.bags.bag_reader import BagReader

__all__ = ["ModeRun", "SwitchRecord", "analyse_bag"]


@dataclass
class ModeRun:
    """What one guidance mode's run produced."""

    mode: str
    switches: list[SwitchRecord]
    delay_times_s: np.ndarray  # log times of δ samples, relative to the first chunk [s]
    delay_steps: np.ndarray  # δ / Δt [action steps]
    d_times_s: np.ndarray
    d_values: np.ndarray  # d published by the executor [action steps]
    state_times_s: np.ndarray  # robot-state stamps, executor clock [s]
    states: np.ndarray  # [N, D] measured TCP state
    state_names: tuple[str, ...]
    lateness_p99_us: np.ndarray  # per diagnostics message
    lateness_max_us: np.ndarray
    late_window_fraction: float
    rejected_chunks: int
    episode_starts: tuple[int, ...] = ()  # where each episode's loop diagnostics begin (merged runs)

    @property
    def chunk_switches(self) -> list[SwitchRecord]:
        """Switches from one chunk to the next (the start from the held pose excluded)."""
        return [s for s in self.switches if not s.from_hold]

    def summary(self) -> dict[str, float]:
        jumps = np.array([s.jump for s in self.chunk_switches])
        lin = np.array([s.jump_linear_m for s in self.chunk_switches])
        return {
            "switches": len(self.chunk_switches),
            "mean_jump": _stat(np.mean, jumps),
            "p95_jump": _stat(lambda a: np.quantile(a, 0.95), jumps),
            "mean_jump_linear_m": _stat(np.mean, lin),
            "p95_jump_linear_m": _stat(lambda a: np.quantile(a, 0.95), lin),
            "median_delay_steps": _stat(np.median, self.delay_steps),
            "median_d": _stat(np.median, self.d_values),
            "rejected_chunks": self.rejected_chunks,
            "loop_lateness_p99_us": _stat(np.max, self.lateness_p99_us),
            "loop_worst_window_late_fraction": self.late_window_fraction,
        }


def _stat(fn, a: np.ndarray) -> float:
    return float(fn(a)) if len(a) else math.nan


def analyse_bag(bag_dir: Path, *, mode: str, dt_s: float, t0_s: float | None = None) -> ModeRun:
    """Read one run's bag. ``t0_s`` (log time of the first chunk) is subtracted from every time axis."""
    with BagReader(bag_dir) as bag:
        chunk_logs = [log for log, _ in bag.messages(topics.CHUNK)] if bag.resolve(topics.CHUNK) else []
        t0 = t0_s if t0_s is not None else (chunk_logs[0] / 1e9 if chunk_logs else bag.start_ns / 1e9)
        switches = []
        if bag.resolve(topics.SWITCH_EVENTS):
            for _, st in bag.messages(topics.SWITCH_EVENTS):
                switches.append(SwitchRecord.from_values({kv.key: kv.value for kv in st.values}))
        delays = [(log / 1e9 - t0, msg.data / dt_s) for log, msg in bag.messages(topics.MEASURED_DELAY)] \
            if bag.resolve(topics.MEASURED_DELAY) else []
        ds = [(log / 1e9 - t0, msg.data) for log, msg in bag.messages(topics.INFERENCE_DELAY)] \
            if bag.resolve(topics.INFERENCE_DELAY) else []
        states = read_states(bag)
        diags = read_diagnostics(bag)
    loop = [s for s in diags if is_part(s.name, LOOP)]
    chunk_status = [s for s in diags if is_part(s.name, CHUNKS)]
    delay_arr = np.array(delays, dtype=float).reshape(-1, 2)
    d_arr = np.array(ds, dtype=float).reshape(-1, 2)
    return ModeRun(
        mode=mode,
        switches=switches,
        delay_times_s=delay_arr[:, 0],
        delay_steps=delay_arr[:, 1],
        d_times_s=d_arr[:, 0],
        d_values=d_arr[:, 1],
        state_times_s=states.stamps_s,
        states=states.positions,
        state_names=states.names,
        lateness_p99_us=np.array([number(s.values, LATENESS_P99_US) for s in loop]),
        lateness_max_us=np.array([number(s.values, LATENESS_MAX_US) for s in loop]),
        late_window_fraction=max([number(s.values, WORST_WINDOW_LATE_FRACTION, 0.0) for s in loop], default=math.nan),
        rejected_chunks=int(number(chunk_status[-1].values, REJECTED_TOTAL, 0)) if chunk_status else 0,
    )
