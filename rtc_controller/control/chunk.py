"""The action chunk as plain data (ROS-free).

Axis legend: h = horizon (action steps), ad = action dimension.
Time convention: action ``k`` is due at ``t_obs_s + k * dt_s`` [s, executor clock] (see DESIGN.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
