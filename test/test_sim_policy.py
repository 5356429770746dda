"""The simulation policy: a multimodal, speed-limited, time-consistent two-arm bin scene."""

import dataclasses

import jax
import numpy as np
import pytest

from rtc_controller import rtc
from rtc_controller.action_space import arm_slices
from rtc_controller.policy.base import FlowPolicy, Observation
from rtc_controller.app.policies import make_policy
from rtc_controller.policy.sim_policy import SimPolicy, SimPolicyConfig

CFG = SimPolicyConfig()
LEFT, RIGHT = arm_slices("cartesian", 2)


@pytest.fixture(scope="module")
def policy():
    return SimPolicy(CFG)


def carrying_state(policy):
    """Both arms at their pick spots holding the item (gripper closed): next they carry it to a bin."""
    s = policy.fake_observation().state.copy()
    s[LEFT.gripper] = s[RIGHT.gripper] = CFG.gripper_closed_m
    return s


def speeds(chunk, sl):
    return np.linalg.norm(np.diff(chunk[..., sl.position], axis=-2), axis=-1) / CFG.dt_s


def test_implements_flow_policy(policy):
    assert isinstance(policy, FlowPolicy)
    assert len(policy.action_names) == policy.model_action_dim == 14 and policy.horizon == CFG.horizon
    ctx = policy.prepare(policy.fake_observation())
    assert ctx.means.shape == (9, CFG.horizon, 14)  # 3 bins per arm, product of the arms' choices


def test_modes_carry_to_every_bin_speed_limited_rotation_held(policy):
    state = carrying_state(policy)
    means = policy.mode_means(Observation(state=state, stamp_s=0.0))
    for arm, sl in enumerate((LEFT, RIGHT)):
        ends = {tuple(np.round(means[k, -1, sl.position], 3)) for k in range(9)}
        expected = {tuple(np.round(b, 3)) for b in CFG.bins_m[arm]}
        assert ends == expected, "within 2 s each arm reaches one of its three bins"
        v = speeds(means, sl)
        assert v.max() <= CFG.max_speed_m_s + 1e-5
        assert np.abs(np.diff(v, axis=-1)).max() / CFG.dt_s <= 1.5  # Flexiv's acceleration guidance
        np.testing.assert_allclose(means[:, :, sl.rotation], np.broadcast_to(state[sl.rotation], (9, CFG.horizon, 3)), atol=1e-6)
    np.testing.assert_allclose(means[:, 0], np.broadcast_to(state, (9, 14)), atol=1e-6)  # a_0 = observed state


def test_gripper_closed_while_carrying_open_at_the_bin_then_returns(policy):
    state = carrying_state(policy)
    # Follow mode 0 (left -> bin 0) for 4 chunks of 50 steps, each prepared from where the last one got to.
    trajectory, s = [], state
    for _ in range(4):
        means = policy.mode_means(Observation(state=s, stamp_s=0.0))
        trajectory.append(means[0, :50])
        s = means[0, 50]
    traj = np.concatenate(trajectory)
    pos, grip = traj[:, LEFT.position], traj[:, LEFT.gripper]
    at_bin = np.linalg.norm(pos - CFG.bins_m[0][0], axis=-1) < CFG.arrive_radius_m
    assert at_bin.any(), "the arm gets to the bin"
    first = np.argmax(at_bin)
    assert np.all(grip[:first] == pytest.approx(CFG.gripper_closed_m)), "closed while carrying"
    assert grip.max() == pytest.approx(CFG.gripper_open_m), "opens at the bin"
    open_at = np.argmax(grip >= CFG.gripper_open_m - 1e-6)
    assert np.linalg.norm(pos[open_at] - CFG.bins_m[0][0]) < CFG.arrive_radius_m, "fully open only at the bin"
    assert np.linalg.norm(pos[-1] - CFG.pick_m[0]) < np.linalg.norm(pos[open_at] - CFG.pick_m[0]) - 0.1, "heads back"


def test_rollout_is_time_consistent(policy):
    """A chunk prepared from a state along a mode continues that mode (no jump when the mode is kept)."""
    means = policy.mode_means(Observation(state=carrying_state(policy), stamp_s=0.0))
    later = policy.mode_means(Observation(state=means[4, 30], stamp_s=0.6))
    np.testing.assert_allclose(later[4, : CFG.horizon - 30], means[4, 30:], atol=2e-4)


def test_normalisation_round_trip_and_scale(policy):
    x = np.random.default_rng(0).normal(size=(2, CFG.horizon, 14))
    np.testing.assert_allclose(policy.to_physical(policy.to_model(x)), x, atol=1e-12)
    bins = np.asarray(CFG.bins_m[0])
    model = policy.to_model(np.pad(bins, ((0, 0), (0, 11))))[:, :3]
    assert 0.5 < np.linalg.norm(model[0] - model[1]) < 5, "bins are O(1) apart in model space"


def test_prepare_compiles_once(policy):
    policy.prepare(policy.fake_observation())
    size = policy._prepare_jit._cache_size()
    for k in range(3):
        policy.prepare(Observation(state=carrying_state(policy) + 0.01 * k, stamp_s=float(k)))
    assert policy._prepare_jit._cache_size() == size


def test_unguided_chunks_pick_different_modes(policy):
    """Draws from fresh noise spread over the modes: what makes naive async chunking jump."""
    obs = Observation(state=carrying_state(policy), stamp_s=0.0)
    ctx = policy.prepare(obs)
    noise = jax.random.normal(jax.random.key(1), (64, CFG.horizon, 14))
    chunks = policy.to_physical(np.asarray(rtc.sample(policy.velocity, noise, context=ctx, num_steps=10)))
    means = policy.to_physical(np.asarray(ctx.means))
    dist = np.linalg.norm((chunks[:, None] - means[None]).reshape(64, 9, -1), axis=-1)
    comp = dist.argmin(axis=1)
    assert len(set(comp.tolist())) >= 6, "most of the 9 modes are drawn"
    left_bins = {k // 3 for k in comp.tolist()}
    assert left_bins == {0, 1, 2}
    rms = np.sqrt(np.min(dist, axis=1) ** 2 / (CFG.horizon * 14))
    assert rms.max() < 0.01, "every draw sits on a mode (within a few spreads)"
    v = speeds(chunks, LEFT)
    assert np.percentile(v, 99) < 0.5, "sampled chunks stay well under 1 m/s"


def test_config_validation():
    with pytest.raises(ValueError, match="max_speed_m_s"):
        SimPolicyConfig(max_speed_m_s=0.0)
    with pytest.raises(ValueError, match="gripper"):
        SimPolicyConfig(gripper_open_m=0.0)
    with pytest.raises(ValueError, match="mode_weights"):
        SimPolicyConfig(mode_weights=(1.0, 2.0))
    with pytest.raises(ValueError, match="horizon"):
        SimPolicyConfig(horizon=1)
    with pytest.raises(ValueError, match="same number"):
        SimPolicyConfig(bins_m=(CFG.bins_m[0], CFG.bins_m[1][:2]))
    with pytest.raises(ValueError, match="state"):
        SimPolicy(CFG).prepare(Observation(state=np.zeros(3), stamp_s=0.0))


def test_registry():
    p = make_policy("sim", horizon=50, dt_s=0.01)
    assert isinstance(p, SimPolicy) and p.horizon == 50 and p.config.dt_s == 0.01
    assert dataclasses.is_dataclass(p.config)
    p2 = make_policy("sim", bins_m=[[[0.3, 0.2, 0.2], [0.5, 0.2, 0.2]], [[0.3, -0.2, 0.2], [0.5, -0.2, 0.2]]])
    assert p2.prepare(p2.fake_observation()).means.shape[0] == 4
    with pytest.raises(ValueError, match="unknown sim policy parameters"):
        make_policy("sim", speed=1.0)
    with pytest.raises(ValueError, match="unknown policy"):
        make_policy("gpt")  # type: ignore[arg-type]


def test_registry_pi05_needs_its_paths():
    with pytest.raises((ValueError, RuntimeError), match="checkpoint_dir|not available"):
        make_policy("pi05")
