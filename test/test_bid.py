"""BID's backward half: the kept chunk is the candidate nearest the previous chunk's remaining actions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rtc_controller.rtc import backward_coherence, sample, sample_best_of_n

H, D = 8, 3


def velocity(x_t, t):
    """A linear flow: each chunk is a fixed, distinct function of its noise row."""
    del t
    return 0.5 * x_t - 1.0


def test_backward_coherence_is_the_weighted_squared_distance():
    prefix = jnp.zeros((H, D))
    cands = jnp.stack([jnp.ones((H, D)), 2 * jnp.ones((H, D))])
    w = jnp.zeros(H).at[:2].set(1.0).at[2].set(0.5)  # two frozen actions, one half-weighted
    np.testing.assert_allclose(backward_coherence(cands, prefix, w), [2.5 * D, 2.5 * 4 * D])


def test_keeps_the_candidate_nearest_the_prefix_among_the_unguided_samples():
    noise = jax.random.normal(jax.random.key(0), (16, H, D))
    unguided = jnp.concatenate([sample(velocity, noise[i : i + 1], num_steps=5, mode="none") for i in range(16)])
    prefix = unguided[11:12] + 0.01  # the previous chunk is (almost) candidate 11
    w = jnp.zeros(H).at[:3].set(1.0)
    best = sample_best_of_n(velocity, noise, prefix=prefix, weights=w, num_steps=5)
    assert int(best.index) == 11
    np.testing.assert_allclose(best.actions, unguided[11:12], atol=1e-5)
    np.testing.assert_allclose(best.first, unguided[:1], atol=1e-5)  # the unguided chunk, for free
    np.testing.assert_allclose(best.losses, backward_coherence(unguided, prefix[0], w), rtol=1e-5)


def test_one_candidate_is_the_unguided_chunk_and_zero_weight_keeps_the_first():
    noise = jax.random.normal(jax.random.key(1), (4, H, D))
    prefix = jnp.full((1, H, D), 9.0)
    one = sample_best_of_n(velocity, noise[:1], prefix=prefix, weights=jnp.ones(H), num_steps=3)
    np.testing.assert_allclose(one.actions, sample(velocity, noise[:1], num_steps=3, mode="none"), atol=1e-6)
    blind = sample_best_of_n(velocity, noise, prefix=prefix, weights=jnp.zeros(H), num_steps=3)
    assert int(blind.index) == 0 and not np.any(blind.losses)


def test_shapes_that_do_not_fit_are_refused():
    noise = jnp.zeros((4, H, D))
    with pytest.raises(ValueError, match="noise must be"):
        sample_best_of_n(velocity, jnp.zeros((0, H, D)), prefix=jnp.zeros((1, H, D)), weights=jnp.ones(H))
    with pytest.raises(ValueError, match="prefix must be"):
        sample_best_of_n(velocity, noise, prefix=jnp.zeros((4, H, D)), weights=jnp.ones(H))
    with pytest.raises(ValueError, match="weights must be"):
        sample_best_of_n(velocity, noise, prefix=jnp.zeros((1, H, D)), weights=jnp.ones(H + 1))
    with pytest.raises(ValueError, match="sample_best_of_n"):
        sample(velocity, noise[:1], prefix=jnp.zeros((1, H, D)), weights=jnp.ones(H), mode="bid")
