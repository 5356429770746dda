"""The action chunk as plain data (ROS-free).

Axis legend: h = horizon (action steps), ad = action dimension.
Time convention: action ``k`` is due at ``t_obs_s + k * dt_s`` [s, executor clock] (see DESIGN.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GUIDED_D_PREFIX = "rtc_d="  # header.frame_id of a chunk message guided with delay d: "rtc_d=<d>"


def format_guided_d(guided_d: int | None) -> str:
    """The chunk message's ``header.frame_id``: ``"rtc_d=16"``, or ``""`` when d is not known."""
    return "" if guided_d is None else f"{GUIDED_D_PREFIX}{int(guided_d)}"


def parse_guided_d(frame_id: str) -> int | None:
    """``"rtc_d=16"`` -> 16; anything else -> None."""
    if not frame_id.startswith(GUIDED_D_PREFIX):
        return None
    try:
        return int(frame_id[len(GUIDED_D_PREFIX) :])
    except ValueError:
        return None


@dataclass(frozen=True)
class Chunk:
    """One action chunk A = [a_0 … a_{H-1}].

    Attributes:
        names: action dimension names, length ``ad`` (e.g. ``action_space.action_names()``).
        actions: float64 array ``[h, ad]`` of absolute targets in physical units.
        t_obs_s: stamp of the observation the chunk is conditioned on [s, executor clock].
        dt_s: time between two action steps [s] (``1 / action_rate_hz``); NaN when unknown (fewer than 2 points).
        guided_d: the inference delay d [steps] the chunk was guided with, or None when not known.
    """

    names: tuple[str, ...]
    actions: np.ndarray
    t_obs_s: float
    dt_s: float
    guided_d: int | None = None

    @property
    def horizon(self) -> int:
        return int(self.actions.shape[0])

    @property
    def action_dim(self) -> int:
        return int(self.actions.shape[1]) if self.actions.ndim == 2 else 0
