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
    phases: dict[str, int] = {}
    for e in episodes:
        if not e["success"]:
            reasons[e["reason"]] = reasons.get(e["reason"], 0) + 1
            if e.get("failure_phase"):
                phases[e["failure_phase"]] = phases.get(e["failure_phase"], 0) + 1
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
        "intervention_events": _mean([e.get("intervention_events", math.nan) for e in episodes]),
        "failures": reasons,
        "failure_phases": phases,  # sim.phases (episodes recorded before it: empty)
    }


def exact_binomial_two_sided(k: int, n: int) -> float:
    """Two-sided exact p-value of k successes in n fair coin flips (the sum of the outcomes no likelier than k).

    Example: k = 0, n = 5 -> 2·0.5⁵ = 0.0625; k = 3, n = 6 -> 1.0.
    """
    if n == 0:
        return 1.0
    probs = [math.comb(n, i) * 0.5**n for i in range(n + 1)]
    return min(1.0, sum(p for p in probs if p <= probs[k] * (1 + 1e-9)))


def paired_test(a: Sequence[bool], b: Sequence[bool]) -> dict:
    """Exact McNemar test of two methods on the same seeds: a_only = seeds only ``a`` succeeded on, b_only the
    reverse; p = the exact two-sided binomial test of a_only among the discordant pairs (H0: equally likely)."""
    if len(a) != len(b):
        raise ValueError(f"paired test needs the same seeds: {len(a)} != {len(b)} episodes")
    a_only = sum(1 for x, y in zip(a, b) if x and not y)
    b_only = sum(1 for x, y in zip(a, b) if y and not x)
    return {"a_only": a_only, "b_only": b_only, "discordant": a_only + b_only,
            "p_value": exact_binomial_two_sided(min(a_only, b_only), a_only + b_only)}
