"""The ROS-free inference core: prefix re-indexing, masking, no recompiles, guidance that holds the frozen region."""

import jax
import numpy as np
import pytest

from rtc_controller.policy.base import Observation
from rtc_controller.policy.chunk_sampler import (
    ChunkSampler,
    GuidanceSettings,
    PreviousChunk,
    build_guidance,
)
from rtc_controller.policy.sim_policy import SimPolicy, SimPolicyConfig
from rtc_controller.rtc import prefix_weights

H, D, DT = 100, 14, 0.02


class CountingSimPolicy(SimPolicy):
    """The sim policy, counting how often ``velocity`` is traced (once per compilation of the sampler)."""

    def __post_init__(self):
        super().__post_init__()
        self.traces = 0

    def velocity(self, context, x_t, t):
        self.traces += 1
        return super().velocity(context, x_t, t)


@pytest.fixture(scope="module")
def warm():
    policy = CountingSimPolicy(SimPolicyConfig(horizon=H, dt_s=DT))
    sampler = ChunkSampler(policy, dt_s=DT, num_steps=10)
    sampler.warmup()
    return policy, sampler


def carrying(policy, stamp_s):
    s = policy.fake_observation().state.copy()
    s[6] = s[13] = policy.config.gripper_closed_m
    return Observation(state=s, stamp_s=stamp_s)


def test_prefix_is_previous_chunk_reindexed_to_the_new_time_base():
    prev = np.arange(H * 2, dtype=float).reshape(H, 2)
    settings = GuidanceSettings(inference_delay=4, execution_horizon=30, schedule="linear")
    g = build_guidance(PreviousChunk(prev, 1.0), t_obs_s=1.0 + 7 * DT + 0.004, dt_s=DT, settings=settings, horizon=H)
    assert g.shift_steps == 7  # round(7.2)
    np.testing.assert_array_equal(g.prefix[: H - 7], prev[7:])  # Y[i] = A_prev[i + m]
    expected = np.asarray(prefix_weights(4, H - 30, H, "linear"))
    np.testing.assert_allclose(g.weights, expected)  # end = H − s = 70 < H − m: the schedule is not cut


def test_zero_weight_where_there_is_no_prefix():
    prev = np.ones((H, D))
    settings = GuidanceSettings(inference_delay=5, execution_horizon=10, schedule="ones")  # W = 1 up to 90
    g = build_guidance(PreviousChunk(prev, 0.0), t_obs_s=40 * DT, dt_s=DT, settings=settings, horizon=H)
    assert np.all(g.weights[: H - 40] == 1) and np.all(g.weights[H - 40 :] == 0), "never guide toward padding"
    g = build_guidance(PreviousChunk(prev, 0.0), t_obs_s=H * DT, dt_s=DT, settings=settings, horizon=H)
    assert not g.weights.any()
    with pytest.raises(ValueError, match="older"):
        build_guidance(PreviousChunk(prev, 1.0), t_obs_s=0.5, dt_s=DT, settings=settings, horizon=H)


@pytest.mark.slow  # shares a ~10 s warm-up (every variant compiled)
def test_no_overlap_samples_unguided(warm):
    policy, sampler = warm
    prev = PreviousChunk(np.zeros((H, D)), 0.0)
    r = sampler.sample(carrying(policy, H * DT), previous=prev, settings=GuidanceSettings(5, 50), key=jax.random.key(0))
    assert not r.guided and not r.weights.any() and r.shift_steps == H and np.isnan(r.frozen_error)


@pytest.mark.slow  # shares a ~10 s warm-up (every variant compiled)
def test_d_beta_mode_schedule_and_s_changes_never_recompile(warm):
    policy, sampler = warm
    assert sampler.is_warm
    traces = policy.traces
    first = sampler.sample(carrying(policy, 1.0), previous=None, settings=GuidanceSettings(0, 50), key=jax.random.key(1))
    prev = PreviousChunk(first.actions, 1.0)
    for k, (d, s, beta, mode, schedule) in enumerate(
        [(16, 50, 10.0, "stop", "exp"), (3, 20, 0.0, "full", "linear"), (30, 64, 100.0, "none", "zeros"),
         (0, 99, 5.0, "stop", "ones"), (12, 40, 1.0, "full", "exp")]
    ):
        obs = Observation(state=first.actions[10 + k], stamp_s=1.0 + (10 + k) * DT)
        settings = GuidanceSettings(d, s, max_guidance_weight=beta, mode=mode, schedule=schedule)
        r = sampler.sample(obs, previous=prev, settings=settings, key=jax.random.key(k), with_unguided=True)
        assert r.actions.shape == (H, D) and np.isfinite(r.actions).all()
    assert policy.traces == traces, "d, s, β, mode and schedule must not recompile after warmup"


@pytest.mark.slow  # shares a ~10 s warm-up (every variant compiled)
def test_guided_chunk_holds_the_frozen_region_unguided_does_not(warm):
    """Previous chunk on one mode; the next chunk (s = 50 steps later, d = 16) from 16 noise draws."""
    policy, sampler = warm
    t0 = 5.0
    first = sampler.sample(carrying(policy, t0), previous=None, settings=GuidanceSettings(0, 50), key=jax.random.key(7))
    prev = PreviousChunk(first.actions, t0)
    obs = Observation(state=first.actions[50], stamp_s=t0 + 50 * DT)
    stats = {}
    for mode in ("stop", "full", "none"):
        settings = GuidanceSettings(16, 50, max_guidance_weight=10.0, mode=mode)
        runs = [sampler.sample(obs, previous=prev, settings=settings, key=jax.random.key(100 + k), with_unguided=True)
                for k in range(16)]
        stats[mode] = (np.mean([r.frozen_error for r in runs]), np.mean([r.unguided_frozen_error for r in runs]),
                       np.mean([r.jump_at_d for r in runs]))
        assert all(r.shift_steps == 50 for r in runs)
    stop, full, none = stats["stop"], stats["full"], stats["none"]
    assert none[0] == pytest.approx(none[1]), "mode none is the unguided chunk from the same noise"
    assert stop[0] < 0.1 * stop[1], f"stop guidance holds the frozen region far better: {stats}"
    assert full[0] < 0.5 * full[1], f"full guidance helps too (damped on sharp modes): {stats}"
    assert stop[2] < 0.25 * none[2], f"jump at the switch k* = d: {stats}"


@pytest.mark.slow  # shares a ~10 s warm-up (every variant compiled)
def test_bid_keeps_the_candidate_on_the_previous_chunks_mode(warm):
    """BID (best of N unguided chunks by backward coherence) holds the frozen region better than one unguided
    chunk, without a guidance term: every candidate is an unguided sample, the kept one is the argmin."""
    policy, sampler = warm
    t0 = 5.0
    first = sampler.sample(carrying(policy, t0), previous=None, settings=GuidanceSettings(0, 50), key=jax.random.key(7))
    prev = PreviousChunk(first.actions, t0)
    obs = Observation(state=first.actions[50], stamp_s=t0 + 50 * DT)
    settings = GuidanceSettings(16, 50, mode="bid")
    runs = [sampler.sample(obs, previous=prev, settings=settings, key=jax.random.key(100 + k), with_unguided=True)
            for k in range(8)]
    assert all(r.candidate_losses.shape == (sampler.bid_samples,) and r.guided for r in runs)
    assert all(r.candidate_losses.min() <= r.candidate_losses[0] for r in runs), "the unguided chunk is candidate 0"
    bid, unguided = np.mean([r.frozen_error for r in runs]), np.mean([r.unguided_frozen_error for r in runs])
    assert bid < 0.5 * unguided, f"the kept candidate is nearer the prefix: {bid:.4f} vs {unguided:.4f}"
    first_only = sampler.sample(obs, previous=None, settings=settings, key=jax.random.key(3))
    assert first_only.candidate_losses is None and not first_only.guided  # no previous chunk: the first candidate


def test_bid_samples_are_checked():
    policy = SimPolicy(SimPolicyConfig(horizon=H, dt_s=DT))
    for bad in (0, 65, 2.0, True):
        with pytest.raises(ValueError, match="bid_samples"):
            ChunkSampler(policy, dt_s=DT, bid_samples=bad)


@pytest.mark.slow  # shares a ~10 s warm-up (every variant compiled)
def test_prepared_observation_is_reused_and_checked(warm):
    policy, sampler = warm
    obs = carrying(policy, 2.0)
    first = sampler.sample(obs, previous=None, settings=GuidanceSettings(0, 50), key=jax.random.key(2))
    prev = PreviousChunk(first.actions, 1.5)
    prepared = sampler.prepare(obs)
    assert prepared.observation is obs and prepared.prepare_s >= 0
    settings = GuidanceSettings(5, 50, max_guidance_weight=10.0, mode="stop")
    fresh = sampler.sample(obs, previous=prev, settings=settings, key=jax.random.key(4), with_unguided=True)
    reused = sampler.sample(obs, previous=prev, settings=settings, key=jax.random.key(4), with_unguided=True,
                            prepared=prepared)
    np.testing.assert_array_equal(reused.actions, fresh.actions)
    np.testing.assert_array_equal(reused.unguided, fresh.unguided)
    assert reused.prepare_s < fresh.prepare_s and reused.total_s == pytest.approx(reused.prepare_s + reused.sample_s)
    with pytest.raises(ValueError, match="another observation"):
        other = carrying(policy, 2.0)  # equal values, another object
        sampler.sample(other, previous=prev, settings=settings, key=jax.random.key(4), prepared=prepared)


def test_settings_validation():
    for bad in (dict(inference_delay=-1), dict(execution_horizon=0), dict(max_guidance_weight=-1.0),
                dict(max_guidance_weight=float("inf")), dict(mode="foo"), dict(schedule="cubic"),
                dict(inference_delay=1.5)):
        args = dict(inference_delay=1, execution_horizon=10) | bad
        with pytest.raises(ValueError):
            GuidanceSettings(**args)
    with pytest.raises(ValueError, match="exceeds the horizon"):
        GuidanceSettings(1, H + 1).check_horizon(H)
    assert GuidanceSettings(60, 50).inference_delay == 60  # d > s is allowed: reported per chunk, not refused
