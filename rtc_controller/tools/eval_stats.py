"""Aggregation for ``rtc-eval`` (ROS-free): Wilson intervals and the per-cell summary of episode results."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

Z95 = 1.959963984540054  # two-sided 95 % normal quantile


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion. Example: 9 of 10 -> (0.596, 0.982); 0 of 0 -> (0, 1)."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, centre - half), min(1.0, centre + half)


def _mean(x: Sequence[float]) -> float:
    x = [v for v in x if v == v]
    return float(np.mean(x)) if x else math.nan


def summarize_cell(episodes: Sequence[dict]) -> dict:
    """Per-cell metrics from episode summaries (``EpisodeResult.summary()``)."""
    n = len(episodes)
    k = sum(1 for e in episodes if e["success"])
    lo, hi = wilson_interval(k, n)
    jumps = [j for e in episodes for j in e["jumps"]]
    lin = [j for e in episodes for j in e["jumps_linear_m"]]
    reasons: dict[str, int] = {}
    for e in episodes:
        if not e["success"]:
            reasons[e["reason"]] = reasons.get(e["reason"], 0) + 1
    return {
        "episodes": n,
        "successes": k,
        "success_rate": k / n if n else math.nan,
        "success_ci95": [lo, hi],
        "completion_time_s": _mean([e["completion_time_s"] for e in episodes if e["success"]]),
        "jump_mean": _mean(jumps),
        "jump_p95": float(np.percentile(jumps, 95)) if jumps else math.nan,
        "jump_linear_mean_m": _mean(lin),
        "jerk_rms_m_s3": _mean([e["jerk_rms_m_s3"] for e in episodes]),
        "safety_interventions": _mean([e["interventions"] for e in episodes]),
        "failures": reasons,
    }
