"""Training-time RTC: a clean prefix at flow time 0 in training (loss on the rest) and in ``guidance_mode: trained``
at inference; a policy trained without it refuses the mode; fine-tuning starts from an exported policy."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from train_setup import HORIZON, compilation_cache, session_cache_dir, synthetic_config, train_config

from rtc_controller.policy.chunk_sampler import ChunkSampler, GuidanceSettings, PreviousChunk, mode_refusal
from rtc_controller.app.policies import make_policy
from rtc_controller.policy.pi05.policy_section import load_policy_section
from rtc_controller.rtc import prefix_weights, sample
from rtc_controller.train import objective
from rtc_controller.train.config import ObjectiveConfig
from rtc_controller.train.loop import fit
from rtc_controller.train.synthetic import write_synthetic_dataset


def test_prefix_mask_draws_every_length_up_to_the_maximum():
    mask = np.asarray(objective.prefix_mask(jax.random.key(0), 4000, 10, 3))
    lengths = mask.sum(axis=1)
    assert set(lengths) == {0, 1, 2, 3}
    assert all(np.all(row[:n]) and not np.any(row[n:]) for row, n in zip(mask, lengths))  # a prefix, then nothing
    assert np.all(np.abs(np.bincount(lengths) / 4000 - 0.25) < 0.04)  # uniform


def test_the_loss_leaves_the_clean_prefix_out_and_feeds_it_at_flow_time_zero(monkeypatch):
    seen = {}

    def fake_velocity(params, cfg, batch, x_t, t):
        seen["x_t"], seen["t"] = x_t, t
        return jnp.zeros_like(x_t)

    monkeypatch.setattr(objective, "velocity", fake_velocity)
    actions = jax.random.normal(jax.random.key(1), (64, 6, 2))
    key = jax.random.key(2)
    loss = objective.flow_matching_loss(None, None, {"actions": actions}, key, rtc_training_max_delay=4)
    noise_key, _, delay_key = jax.random.split(key, 3)
    clean = np.asarray(objective.prefix_mask(delay_key, 64, 6, 4))
    noise = jax.random.normal(noise_key, actions.shape, jnp.float32)
    t = np.asarray(seen["t"])
    assert t.shape == (64, 6) and np.all(t[clean] == 0.0) and np.all(t[~clean] > 0)
    np.testing.assert_allclose(np.asarray(seen["x_t"])[clean], np.asarray(actions)[clean])  # clean actions in
    expected = np.mean(np.square(np.asarray(noise - actions))[~clean])  # zero velocity: the target's energy
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    plain = objective.flow_matching_loss(None, None, {"actions": actions}, key)  # d_max = 0: openpi's objective
    assert np.asarray(seen["t"]).shape == (64,) and float(plain) != float(loss)


def test_trained_mode_feeds_the_prefix_clean_and_keeps_it():
    """The velocity sees the frozen actions as the prefix at τ = 0 at every step; the result keeps them exactly."""
    h, d = 8, 3
    calls = []

    def velocity(x, t):  # a field that records the flow times it is given
        jax.debug.callback(lambda tau: calls.append(np.asarray(tau)), t)
        return x - 0.5  # pulls everything toward 0.5 (data), whatever the prefix

    prefix = jnp.full((1, h, 2), 2.0)
    w = prefix_weights(d, h - 4, h, "zeros")
    x = sample(velocity, jnp.zeros((1, h, 2)), num_steps=5, prefix=prefix, weights=w, mode="trained")
    np.testing.assert_allclose(np.asarray(x)[0, :d], 2.0)
    assert not np.allclose(np.asarray(x)[0, d:], 2.0)
    t = np.asarray(calls[0])
    assert t.shape == (1, h) and np.all(t[0, :d] == 0.0) and np.all(t[0, d:] == 1.0)  # first step: t = 1 on the rest


def test_a_policy_trained_without_it_refuses_trained_mode():
    policy = make_policy("sim", horizon=20, dt_s=0.02)
    why = mode_refusal(policy, "trained")
    assert why and "rtc_training_max_delay" in why and mode_refusal(policy, "stop") is None
    sampler = ChunkSampler(policy, dt_s=0.02, num_steps=2)
    obs = policy.fake_observation()
    prev = PreviousChunk(np.zeros((20, 14)), obs.stamp_s - 0.2)
    with pytest.raises(ValueError, match="training-time RTC"):
        sampler.sample(obs, previous=prev, settings=GuidanceSettings(2, 10, mode="trained"), key=jax.random.key(0))


def test_objective_config_refuses_a_negative_delay():
    with pytest.raises(ValueError, match="rtc_training_max_delay"):
        ObjectiveConfig(rtc_training_max_delay=-1)


@pytest.mark.slow
def test_fine_tuning_with_trained_rtc_exports_a_policy_that_samples_in_trained_mode(tmp_path_factory):
    root = tmp_path_factory.mktemp("trained_rtc")
    data = root / "data"
    write_synthetic_dataset(data, synthetic_config())
    quiet = {"progress": False, "log": lambda _: None}
    with compilation_cache(session_cache_dir(tmp_path_factory)):
        base = fit(train_config(num_steps=10), data, root / "base", **quiet)
        cfg = dataclasses.replace(train_config(num_steps=10), objective=ObjectiveConfig(
            rtc_training_max_delay=3, init_from=str(base.policy_file.parent)))  # fmt: skip
        tuned = fit(cfg, data, root / "tuned", **quiet)
    section = load_policy_section(tuned.policy_file)
    assert section.rtc_training_max_delay == 3 and load_policy_section(base.policy_file).rtc_training_max_delay == 0
    assert (root / "tuned" / "tokenizer.model").read_bytes() == (root / "base" / "tokenizer.model").read_bytes()
    policy = make_policy("pi05", policy_config=str(tuned.policy_file))
    sampler = ChunkSampler(policy, dt_s=1 / 10.0, num_steps=3)
    obs = policy.fake_observation()
    first = sampler.sample(obs, previous=None, settings=GuidanceSettings(0, 4), key=jax.random.key(0))
    prev = PreviousChunk(first.actions, obs.stamp_s - 2 / 10.0)
    out = sampler.sample(obs, previous=prev, settings=GuidanceSettings(2, 4, mode="trained"), key=jax.random.key(1))
    # the frozen actions are the previous chunk's, re-indexed by m = 2 (up to the normalisation round trip)
    np.testing.assert_allclose(out.actions[:2], first.actions[2:4], atol=1e-4)
    assert out.settings.mode == "trained" and len(out.actions) == HORIZON
    with pytest.raises(ValueError, match="do not fit"):
        bad = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, depth=cfg.model.depth + 1))
        fit(bad, data, root / "bad", **quiet)
