"""Norm stats by openpi's rule: action chunks clamped at the episode's end, deltas relative to the state, mean/std
over every (step, chunk index), q01/q99 from openpi's 5000-bin histogram — checked against hand computations."""

import logging

import numpy as np
import pytest

from rtc_controller.policy.pi05.norm_stats import load_norm_stats, save_norm_stats
from rtc_controller.train.dataset import Episode
from rtc_controller.train.norm_stats import (
    QUANTILE_BINS,
    StatsAccumulator,
    action_chunks,
    compute_norm_stats,
    target_chunks,
)


def _episode(state, actions):
    state, actions = np.asarray(state, np.float32), np.asarray(actions, np.float32)
    return Episode(state=state, actions=actions, frame_index=np.array([0]), images={}, prompt="p")


def test_chunks_repeat_the_last_action():
    a = np.arange(4.0)[:, None]
    np.testing.assert_array_equal(action_chunks(a, 3)[..., 0], [[0, 1, 2], [1, 2, 3], [2, 3, 3], [3, 3, 3]])


def test_delta_chunks_subtract_the_state_of_the_chunk_start():
    ep = _episode(state=[[10, 100], [20, 200], [30, 300]], actions=[[1, 5], [2, 6], [3, 7]])
    got = target_chunks(ep, 2, delta_action_mask=(True,))
    np.testing.assert_array_equal(got[..., 0], [[1 - 10, 2 - 10], [2 - 20, 3 - 20], [3 - 30, 3 - 30]])
    np.testing.assert_array_equal(got[..., 1], [[5, 6], [6, 7], [7, 7]])  # not in the mask: absolute


def test_quantiles_by_hand():
    acc = StatsAccumulator()
    x = np.arange(1.0, 101.0)[:, None]  # 1 … 100
    acc.add(x)
    acc.add_histogram(x)
    s = acc.stats()
    width = (99.0 + 2e-10) / QUANTILE_BINS
    # q·N = 1 is reached in the first bin (it holds the value 1): its left edge, 1 − 1e-10.
    assert s.q01[0] == pytest.approx(1.0 - 1e-10, abs=1e-12)
    # q·N = 99 is reached in the bin holding 99: its left edge lies within one bin below 99.
    assert 99.0 - width <= s.q99[0] <= 99.0
    assert s.mean[0] == pytest.approx(50.5)
    assert s.std[0] == pytest.approx(np.sqrt((100**2 - 1) / 12))  # population std of 1 … n


def test_stats_over_episodes_equal_numpy_over_all_chunks(tmp_path):
    rng = np.random.default_rng(0)
    eps = [_episode(rng.normal(size=(t, 3)), rng.normal(size=(t, 2)) * [1, 10] + [0, 5]) for t in (7, 12, 9)]
    stats = compute_norm_stats(lambda: iter(eps), horizon=4, delta_action_mask=(True, False))
    chunks = np.concatenate([target_chunks(e, 4, (True, False)).reshape(-1, 2) for e in eps])
    states = np.concatenate([e.state for e in eps]).astype(np.float64)
    for key, data in (("actions", chunks), ("state", states)):
        s = stats[key]
        np.testing.assert_allclose(s.mean, data.mean(0), rtol=1e-12)
        np.testing.assert_allclose(s.std, data.std(0), rtol=1e-9)
        width = (data.max(0) - data.min(0)) / QUANTILE_BINS
        for q, got in ((0.01, s.q01), (0.99, s.q99)):
            exact = np.quantile(data, q, axis=0, method="inverted_cdf")
            assert np.all(np.abs(got - exact) <= width + 1e-9)
    # openpi's file format round-trips.
    save_norm_stats(tmp_path / "norm_stats.json", stats)
    back = load_norm_stats(tmp_path / "norm_stats.json")
    np.testing.assert_array_equal(back["actions"].q99, stats["actions"].q99)


def test_a_dim_that_barely_varies_is_warned_about(caplog):
    eps = [_episode(np.ones((10, 2)), np.c_[np.linspace(0, 1, 10), np.full(10, 3.14)])]
    with caplog.at_level(logging.WARNING):
        compute_norm_stats(lambda: iter(eps), horizon=2, names={"actions": ["x", "rx"], "state": ["a", "b"]})
    assert "'actions': dims ['rx'] barely vary" in caplog.text
    assert "'state': dims ['a', 'b']" in caplog.text
