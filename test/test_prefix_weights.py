"""Soft prefix mask W (DESIGN.md: the Physical Intelligence reference schedule)."""

import numpy as np
import pytest

from rtc_controller.rtc import PREFIX_SCHEDULES, build_prefix, prefix_weights


def reference_weights(d: int, end: int, total: int, schedule: str) -> np.ndarray:
    """Straight NumPy transcription of the reference `get_prefix_weights`."""
    i = np.arange(total)
    end = min(max(end, 0), total)
    start = min(d, end)
    if schedule == "ones":
        w = np.ones(total)
    elif schedule == "zeros":
        w = (i < start).astype(float)
    else:
        w = np.clip((start - 1 - i) / (end - start + 1) + 1, 0, 1)
        if schedule == "exp":
            w = w * np.expm1(w) / (np.e - 1)
    return np.where(i >= end, 0.0, w)


def test_docstring_example_linear():
    w = np.asarray(prefix_weights(2, 6, 10, "linear"))
    np.testing.assert_allclose(w, [1, 1, 4 / 5, 3 / 5, 2 / 5, 1 / 5, 0, 0, 0, 0], atol=1e-6)


@pytest.mark.parametrize("schedule", PREFIX_SCHEDULES)
@pytest.mark.parametrize(
    "d,end,total",
    [(0, 6, 10), (2, 6, 10), (6, 6, 10), (9, 6, 10), (3, 10, 10), (0, 0, 10), (16, 36, 100), (16, 100, 100), (1, 1, 1)],
)
def test_matches_reference_on_grid(schedule, d, end, total):
    np.testing.assert_allclose(prefix_weights(d, end, total, schedule), reference_weights(d, end, total, schedule), atol=1e-6)


@pytest.mark.parametrize("schedule", PREFIX_SCHEDULES)
def test_frozen_region_is_one_and_tail_is_zero(schedule):
    d, end, total = 16, 36, 100
    w = np.asarray(prefix_weights(d, end, total, schedule))
    if schedule != "ones":
        assert np.all(w[:d] == 1.0)
    assert np.all(w[end:] == 0.0)
    assert np.all(np.diff(w[:end]) <= 1e-7), "weights never increase along the chunk"


def test_d_at_or_beyond_end_is_clamped():
    """d >= end: every prefix action is frozen, none after end is guided."""
    for schedule in ("exp", "linear", "zeros"):
        w = np.asarray(prefix_weights(40, 36, 100, schedule))
        assert np.all(w[:36] == 1.0) and np.all(w[36:] == 0.0)


def test_unknown_schedule_is_refused():
    with pytest.raises(ValueError, match="schedule"):
        prefix_weights(2, 6, 10, "cosine")


def test_build_prefix_reindexes_and_marks_padding():
    prev = np.arange(5.0)[:, None] * np.ones((1, 2))
    p = build_prefix(prev, t_obs_prev_s=10.0, t_obs_s=10.0 + 2 * 0.02, dt_s=0.02)
    assert p.shift_steps == 2
    np.testing.assert_array_equal(p.actions[:, 0], [2, 3, 4, 4, 4])
    np.testing.assert_array_equal(p.valid, [True, True, True, False, False])


def test_build_prefix_rejects_time_going_backwards():
    with pytest.raises(ValueError, match="older"):
        build_prefix(np.zeros((4, 2)), t_obs_prev_s=1.0, t_obs_s=0.5, dt_s=0.02)
