"""The action chunk as plain data (ROS-free).

Axis legend: h = horizon (action steps), ad = action dimension.
Time convention: action ``k`` is due at ``t_obs_s + k * dt_s`` [s, executor clock] (see DESIGN.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

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


def _time_s(t: Any) -> float:
    """``builtin_interfaces/Time`` or ``Duration`` (any object with ``sec`` and ``nanosec``) -> float seconds."""
    return float(t.sec) + float(t.nanosec) * 1e-9


def chunk_from_trajectory(msg: Any) -> Chunk:
    """A ``trajectory_msgs/JointTrajectory`` -> :class:`Chunk`, duck-typed: an rclpy message or a rosbags one.

    No validation beyond what is needed to build the array (validation is the timeline's):
    ``dt_s`` is the mean spacing of ``time_from_start`` ((t_last − t_first)/(H − 1)), NaN for fewer than 2 points;
    points of unequal length are padded with NaN to the longest, so the timeline rejects them as non-finite rather
    than this function raising; an empty trajectory gives ``actions`` ``[0, len(joint_names)]``; the guided d
    comes from ``header.frame_id``.
    """
    names = tuple(msg.joint_names)
    pts = list(msg.points)
    h = len(pts)
    if h == 0:
        actions = np.zeros((0, len(names)))
    else:
        lens = [len(p.positions) for p in pts]
        width = max(lens)
        if min(lens) == width:
            actions = np.array([np.asarray(p.positions, dtype=np.float64) for p in pts]).reshape(h, width)
        else:
            actions = np.full((h, width), np.nan)
            for k, p in enumerate(pts):
                actions[k, : lens[k]] = np.asarray(p.positions, dtype=np.float64)
    dt_s = (_time_s(pts[-1].time_from_start) - _time_s(pts[0].time_from_start)) / (h - 1) if h >= 2 else math.nan
    return Chunk(
        names=names,
        actions=actions,
        t_obs_s=_time_s(msg.header.stamp),
        dt_s=dt_s,
        guided_d=parse_guided_d(msg.header.frame_id),
    )
