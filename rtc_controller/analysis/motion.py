"""Smoothness of executed motion (ROS-free): the one jerk definition every report uses.

Jerk is the third difference of positions over Δt³ (``[T, ...]`` sampled every ``dt_s`` seconds); a chunk
switch's jump is ``control.timeline.SwitchEvent.jump_norm`` (the executor's, at the switch instant).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["JERK_ORDER", "jerk", "jerk_rms"]

JERK_ORDER = 3  # third difference: jerk[k] spans rows k … k + 3


def jerk(positions: np.ndarray, dt_s: float) -> np.ndarray:
    """``Δ³x / Δt³`` along axis 0: ``[T - 3, ...]`` [units/s³]."""
    if not dt_s > 0:
        raise ValueError(f"dt_s must be > 0, got {dt_s}")
    return np.diff(np.asarray(positions, dtype=float), n=JERK_ORDER, axis=0) / dt_s**JERK_ORDER


def jerk_rms(positions: np.ndarray, dt_s: float) -> float:
    """RMS over time and arms of ‖jerk‖ of TCP positions ``[T, arms, 3]`` [m/s³] (NaN below 4 samples)."""
    if len(positions) <= JERK_ORDER:
        return math.nan
    return float(np.sqrt(np.mean(np.sum(jerk(positions, dt_s) ** 2, axis=-1))))
