"""The guidance target Y: the previous chunk re-indexed to the new chunk's time base (NumPy).

A chunk conditioned on an observation at t_obs has action k due at t_obs + k·Δt. The new chunk (t_obs)
overlaps the previous one (t_obs_prev) with shift m = round((t_obs − t_obs_prev)/Δt) action steps:
Y[i] = A_prev[i + m] for i + m < H. Where i + m ≥ H there is no prefix: Y is padded with the last
action, and ``valid`` is False there so callers zero the weights (never guide toward padding).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Prefix(NamedTuple):
    actions: np.ndarray  # Y, [H, D] (same units as the previous chunk)
    valid: np.ndarray  # [H] bool, True where Y comes from the previous chunk
    shift_steps: int  # m


def build_prefix(previous: np.ndarray, *, t_obs_prev_s: float, t_obs_s: float, dt_s: float) -> Prefix:
    """Re-index ``previous`` ``[H, D]`` (conditioned at ``t_obs_prev_s``) to a chunk conditioned at ``t_obs_s``.

    Example: H = 5, m = 2: Y = [a2, a3, a4, a4, a4], valid = [1, 1, 1, 0, 0].
    """
    if previous.ndim != 2 or previous.shape[0] < 1:
        raise ValueError(f"previous chunk must be [horizon, action_dim], got {previous.shape}")
    if not dt_s > 0:
        raise ValueError(f"dt_s must be > 0, got {dt_s}")
    horizon = previous.shape[0]
    shift = int(round((t_obs_s - t_obs_prev_s) / dt_s))
    if shift < 0:
        raise ValueError(f"the new observation ({t_obs_s:.6f} s) is older than the previous one ({t_obs_prev_s:.6f} s)")
    index = np.arange(horizon) + shift
    valid = index < horizon
    return Prefix(previous[np.minimum(index, horizon - 1)], valid, shift)
