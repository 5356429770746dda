"""Switch metrics on hand-computed examples, and the β recommendation rule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rtc_controller.tools import metrics as M


def test_jump_and_splice_docstring_example():
    y = np.zeros((6, 1))
    a = np.array([5.0, 5.0, 1.0, 1.0, 1.0, 1.0])[:, None]
    assert M.switch_jump(a, y, 2) == 1.0
    np.testing.assert_array_equal(M.splice(a, y, 2)[:, 0], [0, 0, 1, 1, 1, 1])
    with pytest.raises(ValueError, match="d must be"):
        M.switch_jump(a, y, 6)


def test_jump_is_euclidean_over_dims():
    y = np.zeros((4, 2))
    a = np.zeros((4, 2))
    a[1] = (3.0, 4.0)
    assert M.switch_jump(a, y, 1) == 5.0
    assert M.switch_jump(a, y, 1, dims=[0]) == 3.0


def test_prefix_mismatch_is_weighted_rms():
    y = np.zeros((4, 1))
    a = np.array([1.0, 2.0, 10.0, 10.0])[:, None]
    w = np.array([1.0, 1.0, 0.0, 0.0])
    assert M.prefix_mismatch(a, y, w) == pytest.approx(math.sqrt((1 + 4) / 2))
    w2 = np.array([1.0, 0.5, 0.0, 0.0])
    assert M.prefix_mismatch(a, y, w2) == pytest.approx(math.sqrt((1 + 0.5 * 4) / 1.5))
    assert math.isnan(M.prefix_mismatch(a, y, np.zeros(4)))


def test_jerk_of_a_step_and_of_a_smooth_splice():
    dt = 0.1
    y = np.zeros((8, 1))
    step = np.ones((8, 1))
    # Spliced = 0 0 0 1 1 1 1 1 (switch at 3): third differences around it are 1, -2, 1 (windows k = 0, 1, 2).
    assert M.splice_jerk(step, y, 3, dt) == pytest.approx(2.0 / dt**3)
    # A cubic continued across the switch has constant third difference 6 (x = k³): the same with or without it.
    k = np.arange(8, dtype=float)[:, None]
    hist = (np.arange(-3, 0, dtype=float) ** 3)[:, None]
    assert M.splice_jerk(k**3, k**3, 3, 1.0, history=hist) == pytest.approx(6.0)
    # history extends the window before the switch: d = 0 needs it.
    assert math.isnan(M.splice_jerk(step, y, 0, dt))
    assert M.splice_jerk(step, y, 0, dt, history=np.zeros((3, 1))) == pytest.approx(2.0 / dt**3)


def test_tail_departure():
    a = np.zeros((5, 2))
    u = np.zeros((5, 2))
    u[3:] = (3.0, 4.0)
    assert M.tail_departure(a, u, 3) == 5.0
    assert M.tail_departure(a, u, 4) == 5.0
    assert M.tail_departure(a, u, 0) == pytest.approx(math.sqrt(2 * 25 / 5))
    assert math.isnan(M.tail_departure(a, u, 5))


def test_switch_metrics_and_summary():
    y = np.zeros((6, 1))
    a = np.array([0.0, 0.0, 1.0, 1.0, 1.0, 1.0])[:, None]
    m = M.switch_metrics(new=a, prefix=y, weights=np.array([1, 1, 0.5, 0, 0, 0.0]), d=2, unguided=a, dt_s=1.0,
                         tail_start=3)  # fmt: skip
    assert (m.jump, m.tail_departure) == (1.0, 0.0)
    assert m.mismatch == pytest.approx(math.sqrt(0.5 / 2.5))
    s = M.summarize([m, M.SwitchMetrics(0.0, 3.0, math.nan, 0.0)])
    assert s["switches"] == 2 and s["mean_jump"] == 2.0 and s["mean_jerk"] == m.jerk  # NaN ignored
    assert s["p95_jump"] == pytest.approx(2.9)


def test_recommend_beta_smallest_within_tolerance():
    jumps = {1.0: 0.9, 5.0: 0.42, 10.0: 0.14, 100.0: 0.13}
    rec = M.recommend_beta(jumps, mode="stop", rel_tol=0.1)
    assert (rec.beta, rec.best_beta, rec.best_jump) == (10.0, 100.0, 0.13)
    assert "within" in rec.reason and "β=5" in rec.reason and "outside" in rec.reason
    strict = M.recommend_beta(jumps, mode="stop", rel_tol=0.0, abs_tol=0.0)
    assert strict.beta == 100.0 and "smallest mean jump" in strict.reason
    loose = M.recommend_beta(jumps, mode="stop", rel_tol=10.0)
    assert loose.beta == 1.0
    none = M.recommend_beta({1.0: 0.9, 10.0: 0.9}, mode="none")
    assert none.beta == 1.0 and "no effect" in none.reason
    with pytest.raises(ValueError, match="no finite"):
        M.recommend_beta({1.0: math.nan}, mode="stop")
