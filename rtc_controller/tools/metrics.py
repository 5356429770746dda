"""Continuity metrics of one chunk switch, and the β recommendation built on them (NumPy, ROS-free).

A switch: the previous chunk re-indexed to the new chunk's time base is the prefix Y ``[H, D]`` (Y[i] is what
the old chunk would command at the new chunk's step i); the executor runs Y[0 … d−1] (frozen, inference was
running) and switches to the new chunk A at step d. The executed ("spliced") trajectory is
``history ‖ Y[:d] ‖ A[d:]``, where ``history`` are the old chunk's actions just before the new t_obs.

Axes: H = horizon (action steps), D = action dim. Norms are Euclidean over all D dimensions, in physical units
as they are (metres and radians added as they come, like the seed's plots); pass ``dims`` to restrict.
Δt = ``dt_s`` [s] is one action step.

Example: H = 6, d = 2, Y = 0 everywhere, A = [5, 5, 1, 1, 1, 1] (D = 1) ->
jump = |A[2] − Y[2]| = 1; spliced = [0, 0, 1, 1, 1, 1].
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from rtc_controller.analysis.motion import JERK_ORDER, jerk

__all__ = [
    "BetaRecommendation",
    "SwitchMetrics",
    "prefix_mismatch",
    "recommend_beta",
    "splice",
    "splice_jerk",
    "summarize",
    "switch_jump",
    "switch_metrics",
    "tail_departure",
]

DEFAULT_JUMP_REL_TOL = 0.1  # β recommendation: within 10 % of the best mean jump …
DEFAULT_JUMP_ABS_TOL = 1e-3  # … or within 1 mm / 1 mrad of it (whichever is larger)


def _rows(x: np.ndarray, dims: Sequence[int] | None) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"expected [horizon, action_dim], got shape {a.shape}")
    return a if dims is None else a[:, list(dims)]


def prefix_mismatch(
    new: np.ndarray, prefix: np.ndarray, weights: np.ndarray, *, dims: Sequence[int] | None = None
) -> float:
    """W-weighted RMS distance to the prefix, sqrt(Σ_i w_i‖A_i − Y_i‖² / Σ_i w_i) (w = 1 on the frozen i < d).

    ``weights`` ``[H]`` are the guidance weights W (zero where there is no prefix). NaN when Σ w = 0.
    """
    a, y = _rows(new, dims), _rows(prefix, dims)
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.shape[0] != a.shape[0] or y.shape != a.shape:
        raise ValueError(f"shapes disagree: new {a.shape}, prefix {y.shape}, weights {w.shape}")
    total = float(w.sum())
    if total <= 0:
        return math.nan
    return math.sqrt(float(np.sum(w * np.sum((a - y) ** 2, axis=1))) / total)


def switch_jump(new: np.ndarray, prefix: np.ndarray, d: int, *, dims: Sequence[int] | None = None) -> float:
    """‖A[d] − Y[d]‖: how far the command jumps when the executor switches to the new chunk at step d."""
    a, y = _rows(new, dims), _rows(prefix, dims)
    if not 0 <= d < a.shape[0]:
        raise ValueError(f"d must be in [0, {a.shape[0]}), got {d}")
    return float(np.linalg.norm(a[d] - y[d]))


def splice(new: np.ndarray, prefix: np.ndarray, d: int, history: np.ndarray | None = None) -> np.ndarray:
    """The executed trajectory ``history ‖ Y[:d] ‖ A[d:]``, ``[len(history) + H, D]``; the switch is at row
    ``len(history) + d``."""
    a, y = _rows(new, None), _rows(prefix, None)
    hist = np.zeros((0, a.shape[1])) if history is None else _rows(history, None)
    return np.concatenate([hist, y[:d], a[d:]], axis=0)


def splice_jerk(
    new: np.ndarray,
    prefix: np.ndarray,
    d: int,
    dt_s: float,
    *,
    history: np.ndarray | None = None,
    dims: Sequence[int] | None = None,
) -> float:
    """Peak jerk [units/s³] of the spliced trajectory across the switch.

    max ‖Δ³x_k‖ / Δt³ over the third differences whose 4-step window contains both the last old action and the
    first new one (k = switch − 3 … switch − 1, clipped to the trajectory). NaN when no such window exists.
    """
    if not dt_s > 0:
        raise ValueError(f"dt_s must be > 0, got {dt_s}")
    x = splice(new, prefix, d, history)
    x = x if dims is None else x[:, list(dims)]
    switch = (0 if history is None else len(history)) + d
    j = jerk(x, dt_s)  # j[k] spans rows k … k+3
    ks = [k for k in range(switch - JERK_ORDER, switch) if 0 <= k < j.shape[0]]
    if not ks:
        return math.nan
    return float(np.max(np.linalg.norm(j[ks], axis=1)))


def tail_departure(
    new: np.ndarray, unguided: np.ndarray, tail_start: int, *, dims: Sequence[int] | None = None
) -> float:
    """RMS ‖A_i − A_unguided,i‖ over i ≥ ``tail_start`` (where W = 0: guidance should not distort the tail).

    NaN when the tail is empty.
    """
    a, u = _rows(new, dims), _rows(unguided, dims)
    if u.shape != a.shape:
        raise ValueError(f"shapes disagree: new {a.shape}, unguided {u.shape}")
    tail = slice(max(int(tail_start), 0), a.shape[0])
    diff = a[tail] - u[tail]
    if diff.shape[0] == 0:
        return math.nan
    return math.sqrt(float(np.mean(np.sum(diff**2, axis=1))))


@dataclass(frozen=True)
class SwitchMetrics:
    """Metrics of one switch (units of the action space; jerk per s³)."""

    mismatch: float  # prefix_mismatch
    jump: float  # switch_jump at d
    jerk: float  # splice_jerk
    tail_departure: float  # tail_departure from the unguided chunk

    FIELDS = ("mismatch", "jump", "jerk", "tail_departure")


def switch_metrics(
    *,
    new: np.ndarray,
    prefix: np.ndarray,
    weights: np.ndarray,
    d: int,
    unguided: np.ndarray,
    dt_s: float,
    tail_start: int,
    history: np.ndarray | None = None,
    dims: Sequence[int] | None = None,
) -> SwitchMetrics:
    """All four metrics of one switch. ``tail_start`` = H − s (the first step with W = 0)."""
    return SwitchMetrics(
        mismatch=prefix_mismatch(new, prefix, weights, dims=dims),
        jump=switch_jump(new, prefix, d, dims=dims),
        jerk=splice_jerk(new, prefix, d, dt_s, history=history, dims=dims),
        tail_departure=tail_departure(new, unguided, tail_start, dims=dims),
    )


def _nanmean(v: Iterable[float]) -> float:
    a = np.asarray(list(v), dtype=np.float64)
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else math.nan


def _nanquantile(v: Iterable[float], q: float) -> float:
    a = np.asarray(list(v), dtype=np.float64)
    a = a[np.isfinite(a)]
    return float(np.quantile(a, q)) if a.size else math.nan


def summarize(per_switch: Sequence[SwitchMetrics]) -> dict[str, float]:
    """Aggregate over switches: mean of each metric, plus p95 of the jump and the count."""
    out: dict[str, float] = {"switches": float(len(per_switch))}
    for name in SwitchMetrics.FIELDS:
        out[f"mean_{name}"] = _nanmean(getattr(m, name) for m in per_switch)
    out["p95_jump"] = _nanquantile((m.jump for m in per_switch), 0.95)
    return out


@dataclass(frozen=True)
class BetaRecommendation:
    """The recommended β of one guidance mode and why."""

    mode: str
    beta: float
    mean_jump: float
    best_beta: float
    best_jump: float
    reason: str


def recommend_beta(
    mean_jumps: Mapping[float, float],
    *,
    mode: str,
    rel_tol: float = DEFAULT_JUMP_REL_TOL,
    abs_tol: float = DEFAULT_JUMP_ABS_TOL,
) -> BetaRecommendation:
    """The smallest β whose mean switch jump is within max(rel_tol·best, abs_tol) of the best β's.

    A smaller β interferes less with the policy (less tail distortion, less overshoot), so among the βs that
    are about as continuous as the best one the smallest is preferred.
    Example: {1: 0.9, 5: 0.42, 10: 0.14, 100: 0.13}, 10 % -> β = 10 (0.14 ≤ 0.13 + 0.013).
    """
    if rel_tol < 0 or abs_tol < 0:
        raise ValueError("tolerances must be >= 0")
    finite = {float(b): float(j) for b, j in mean_jumps.items() if math.isfinite(j)}
    if not finite:
        raise ValueError(f"no finite mean jump for mode {mode!r}")
    best_beta = min(finite, key=lambda b: (finite[b], b))
    best = finite[best_beta]
    limit = best + max(rel_tol * best, abs_tol)
    beta = min(b for b, j in finite.items() if j <= limit)
    if mode == "none":
        reason = "guidance is off in mode none: β has no effect"
    elif beta == best_beta:
        reason = f"β={beta:g} gives the smallest mean jump ({best:.4g})"
        smaller = [b for b in finite if b < beta]
        if smaller:
            b0 = max(smaller)
            reason += f"; the next smaller β={b0:g} gives {finite[b0]:.4g} (tolerance {limit - best:.3g})"
    else:
        reason = (
            f"β={beta:g} gives mean jump {finite[beta]:.4g}, within {limit - best:.3g} of the best "
            f"{best:.4g} (β={best_beta:g})"
        )
        smaller = [b for b in finite if b < beta]
        if smaller:
            b0 = max(smaller)
            reason += f"; β={b0:g} gives {finite[b0]:.4g}, outside the tolerance"
    return BetaRecommendation(mode, beta, finite[beta], best_beta, best, reason)
