"""What ``rtc-replay`` takes: :class:`ReplayConfig` (validated on construction) and :class:`ReplayError`.

Times [s] (``start_s``/``end_s`` are offsets from the bag's first message, log time); d and s [action steps].
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rtc_controller import topics
from rtc_controller.rtc import GUIDANCE_MODES, PREFIX_SCHEDULES, guidance_weight_refusal

from . import metrics as M

__all__ = ["DEFAULT_BETAS", "DEFAULT_FIGURES", "ReplayConfig", "ReplayError"]

DEFAULT_FIGURES = 2  # each plotted switch gives one PNG per (mode, β): ~1–2 s each
DEFAULT_BETAS = (1.0, 5.0, 10.0, 100.0)


class ReplayError(RuntimeError):
    """The replay cannot run as asked (the message says why)."""


@dataclass(frozen=True)
class ReplayConfig:
    """Everything ``rtc-replay`` takes; times [s], d and s [action steps]."""

    bag: Path
    output: Path
    policy: str = "sim"
    policy_params: Mapping[str, Any] = field(default_factory=dict)  # make_policy params, e.g. pi05's checkpoint_dir
    modes: tuple[str, ...] = ("none", "stop", "full")
    betas: tuple[float, ...] = DEFAULT_BETAS
    delay: int | None = None  # override d for every switch
    execution_horizon: int | None = None  # s; None: inferred from the chunk cadence (median shift)
    schedule: str = "exp"
    num_steps: int = 10
    switches: str | tuple[int, ...] = "all"  # "all" or indices into the chunks in range (switch i = chunk i)
    max_switches: int | None = None  # evenly spaced subset of the selected switches
    figures: int = DEFAULT_FIGURES  # switches to plot (evenly spaced over the replayed ones), 0 = none
    start_s: float | None = None  # offset from the bag's first message (log time)
    end_s: float | None = None
    chunk_topic: str = topics.CHUNK
    state_topic: str = topics.ROBOT_STATE
    prompt_topic: str = topics.PROMPT
    delay_topic: str = topics.INFERENCE_DELAY
    cameras: Mapping[str, str] | None = None  # slot -> topic; None: every rtc/camera/<slot> in the bag
    prompt: str | None = None  # overrides the recorded prompt
    seed: int = 0
    jump_rel_tol: float = M.DEFAULT_JUMP_REL_TOL
    jump_abs_tol: float = M.DEFAULT_JUMP_ABS_TOL
    progress: bool = True

    def __post_init__(self) -> None:
        bad_modes = [m for m in self.modes if m not in GUIDANCE_MODES]
        if not self.modes or bad_modes:
            raise ValueError(f"modes must be a non-empty subset of {GUIDANCE_MODES}, got {list(self.modes)}")
        refusals = [why for b in self.betas if (why := guidance_weight_refusal(b)) is not None]
        if not self.betas or refusals:
            raise ValueError(f"betas: {refusals[0]}" if refusals else "betas must not be empty")
        if self.schedule not in PREFIX_SCHEDULES:
            raise ValueError(f"schedule must be one of {PREFIX_SCHEDULES}, got {self.schedule!r}")
        if self.delay is not None and self.delay < 0:
            raise ValueError(f"delay must be >= 0 action steps, got {self.delay}")
        if self.execution_horizon is not None and self.execution_horizon < 1:
            raise ValueError(f"execution horizon must be >= 1 action step, got {self.execution_horizon}")
        if self.num_steps < 1:
            raise ValueError(f"num_steps must be >= 1, got {self.num_steps}")
        if self.max_switches is not None and self.max_switches < 1:
            raise ValueError(f"max_switches must be >= 1, got {self.max_switches}")
        if self.figures < 0:
            raise ValueError(f"figures must be >= 0, got {self.figures}")
        if isinstance(self.switches, str) and self.switches != "all":
            raise ValueError(f"switches must be 'all' or a list of indices, got {self.switches!r}")
        if self.start_s is not None and self.end_s is not None and self.end_s <= self.start_s:
            raise ValueError(f"empty time range: --end {self.end_s} s <= --start {self.start_s} s")
        if self.jump_rel_tol < 0 or self.jump_abs_tol < 0:
            raise ValueError("jump tolerances must be >= 0")
