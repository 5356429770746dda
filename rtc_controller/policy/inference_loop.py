"""Bookkeeping of the inference loop, ROS-free: when to sample, which chunk to guide toward, which d to use.

Time: all stamps are executor-clock seconds (t_obs of robot states and chunks), so comparisons use one clock;
Δt = one action step [s]; s = execution horizon, d = inference delay [action steps].
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Literal

import numpy as np

from .chunk_sampler import PreviousChunk

NS_PER_S = 1_000_000_000
STAMP_TOLERANCE_S = 1e-4  # state stamps are compared to the trigger time within this
AUTO_DELAY = "auto"
DelaySource = Literal["fixed", "executor", "own_latency"]
PrefixSource = Literal["active", "last_published", "none"]


def stamp_key(t_s: float) -> int:
    """A chunk's identity: its t_obs stamp rounded to integer nanoseconds (as it travels in the header)."""
    return int(round(t_s * NS_PER_S))


def trigger_due(state_stamp_s: float, previous_t_obs_s: float | None, *, execution_horizon: int, dt_s: float) -> bool:
    """Sample the next chunk once the latest robot state is s action steps past the previous chunk's t_obs.

    The first chunk (no previous) is due at once. Example: t_obs_prev = 10.0 s, s = 50, Δt = 0.02 s -> due
    for states stamped ≥ 11.0 s.
    """
    if previous_t_obs_s is None:
        return True
    return state_stamp_s >= previous_t_obs_s + execution_horizon * dt_s - STAMP_TOLERANCE_S


def parse_inference_delay(value: object, horizon: int) -> int | None:
    """The ``inference_delay`` parameter: ``"auto"`` -> None (use the executor's d), else an int in [0, H].

    Raises ValueError with a reason for anything else (numeric strings such as ``"16"`` are accepted).
    """
    if isinstance(value, str):
        if value.strip().lower() == AUTO_DELAY:
            return None
        try:
            value = int(value.strip())
        except ValueError:
            raise ValueError(f"inference_delay must be 'auto' or an int in [0, {horizon}], got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"inference_delay must be 'auto' or an int in [0, {horizon}], got {value!r}")
    if not 0 <= int(value) <= horizon:
        raise ValueError(f"inference_delay must be in [0, {horizon}] action steps, got {value}")
    return int(value)


# The own-latency fallback misses the transport and the observation's age: one more step, because guiding a
# step too many keeps the switch continuous, one too few lets the executed step be barely guided.
OWN_LATENCY_MARGIN_STEPS = 1


def resolve_delay(
    fixed: int | None, executor_d: int | None, *, last_latency_s: float | None, dt_s: float, horizon: int
) -> tuple[int, DelaySource]:
    """The d to guide with: the fixed parameter, else the executor's estimate, else ⌈own latency / Δt⌉ + 1.

    The last fallback (before the executor has measured δ) sees only this node's share of δ, hence the margin.
    Example: Δt = 20 ms, own latency 0.31 s -> 16 + 1 = 17.
    """
    if fixed is not None:
        return int(fixed), "fixed"
    if executor_d is not None:
        return int(np.clip(executor_d, 0, horizon)), "executor"
    if last_latency_s is None or not math.isfinite(last_latency_s):
        return 0, "own_latency"
    d = math.ceil(last_latency_s / dt_s - 1e-9) + OWN_LATENCY_MARGIN_STEPS
    return int(np.clip(d, 0, horizon)), "own_latency"


class ChunkHistory:
    """The last few published chunks keyed by stamp, to guide toward the one the executor actually executes."""

    def __init__(self, capacity: int = 8) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._chunks: OrderedDict[int, PreviousChunk] = OrderedDict()

    def __len__(self) -> int:
        return len(self._chunks)

    def add(self, chunk: PreviousChunk) -> None:
        self._chunks[stamp_key(chunk.t_obs_s)] = chunk
        while len(self._chunks) > self.capacity:
            self._chunks.popitem(last=False)

    def last(self) -> PreviousChunk | None:
        return next(reversed(self._chunks.values()), None)

    def select(self, active_stamp_ns: int | None) -> tuple[PreviousChunk | None, PrefixSource]:
        """The chunk the executor executes (``active_stamp_ns`` from its active-chunk header).

        None (the executor never reported one) -> the last published chunk; a stamp this node did not publish
        (or no longer keeps, or zero: nothing active) -> no prefix.
        """
        if active_stamp_ns is None:
            last = self.last()
            return last, ("last_published" if last is not None else "none")
        chunk = self._chunks.get(int(active_stamp_ns))
        return chunk, ("active" if chunk is not None else "none")
