"""The chunk timing both nodes share (pure): H, s and Δt, declared once.

H (``horizon``) is the number of actions per chunk, s (``execution_horizon``) the number of action steps executed
between two chunk starts, Δt = 1/``action_rate_hz`` the time between actions. The inference delay d is at most
H - s: the frozen prefix must lie inside the overlap of the previous chunk. The executor and the inference node
take these parameters from :data:`TIMING_PARAMS` (one declaration; the inference node makes s settable at run
time), the eval and the episode runner a :class:`ChunkTiming`; :func:`timing_mismatches` is the one rule by which
two sides are found not to fit.

    >>> ChunkTiming(horizon=50, execution_horizon=10, dt_s=0.02).max_delay
    40
    >>> timing_mismatches(ChunkTiming(100, 50, 0.02), ChunkTiming(50, 25, 0.02))[0]
    "execution_horizon 50 != executor_node's 25 (the executor clamps d to its H - s)"
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rtc_controller.param_schema import Param, in_range, positive

__all__ = ["MAX_HORIZON", "SHARED_WITH_EXECUTOR", "TIMING_PARAMS", "ChunkTiming", "timing_mismatches"]

MAX_HORIZON = 10_000  # [action steps]; a bound that only refuses nonsense (200 s at 50 Hz)

TIMING_PARAMS: dict[str, Param] = {
    "horizon": Param(100, "H: prediction horizon, actions per chunk (the executor accepts chunks up to it; the "
                     "inference node's is the policy's)", in_range(2, MAX_HORIZON), unit="action steps"),
    "execution_horizon": Param(50, "s: execution horizon, action steps between chunk starts (1..H); d is clamped "
                               "to H - s", in_range(1, MAX_HORIZON), unit="action steps"),
    "action_rate_hz": Param(50.0, "1/Δt: action steps per second", positive, unit="Hz"),
}
SHARED_WITH_EXECUTOR = tuple(TIMING_PARAMS)  # the settings the inference node and the executor must agree on


@dataclass(frozen=True)
class ChunkTiming:
    """H and s [action steps] and Δt [s]; ``ValueError`` naming the value when they cannot work together."""

    horizon: int
    execution_horizon: int
    dt_s: float

    def __post_init__(self) -> None:
        if not 2 <= self.horizon <= MAX_HORIZON:
            raise ValueError(f"horizon must be in [2, {MAX_HORIZON}], got {self.horizon}")
        if not 1 <= self.execution_horizon <= self.horizon:
            raise ValueError(f"execution_horizon must be in [1, H = {self.horizon}], got {self.execution_horizon}")
        if not (math.isfinite(self.dt_s) and self.dt_s > 0):
            raise ValueError(f"dt_s must be finite and > 0, got {self.dt_s}")

    @property
    def action_rate_hz(self) -> float:
        return 1.0 / self.dt_s

    @property
    def max_delay(self) -> int:
        """H - s: the largest d [action steps] whose frozen prefix lies inside the previous chunk's overlap."""
        return self.horizon - self.execution_horizon

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> ChunkTiming:
        """From a node's parameter values (``horizon``, ``execution_horizon``, ``action_rate_hz``)."""
        return cls(int(values["horizon"]), int(values["execution_horizon"]), 1.0 / float(values["action_rate_hz"]))


def timing_mismatches(ours: ChunkTiming, executor: ChunkTiming | None) -> list[str]:
    """Why the inference node's timing cannot work with the executor's (empty: they fit, or the executor's is
    unknown). The rule behind the inference node's pause and ``rtc-bringup``'s warnings."""
    if executor is None:
        return []
    out = []
    if ours.execution_horizon != executor.execution_horizon:
        out.append(f"execution_horizon {ours.execution_horizon} != executor_node's {executor.execution_horizon} "
                   "(the executor clamps d to its H - s)")  # fmt: skip
    if ours.horizon > executor.horizon:
        out.append(f"horizon {ours.horizon} > executor_node's {executor.horizon}: it would reject every chunk")
    if abs(ours.action_rate_hz - executor.action_rate_hz) > 1e-9:
        out.append(f"action_rate_hz {ours.action_rate_hz:g} != executor_node's {executor.action_rate_hz:g}")
    return out
