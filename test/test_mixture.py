"""The exact Gaussian-mixture flow field against a dense-covariance reference."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rtc_controller.policy.mixture import make_mixture, mixture_velocity, posterior_mean, sample_mixture

K, H, D = 3, 6, 2


@pytest.fixture
def mix():
    rng = np.random.default_rng(0)
    return make_mixture(rng.normal(size=(K, H, D)), scales=rng.uniform(0.2, 0.6, size=(K, D)), length_scale_steps=2.0,
                        weights=[0.5, 0.3, 0.2])


def dense_posterior_mean(mix, x, t):
    """E[x₀ | x_t = x] with explicit (H·D)² covariances (time-major flattening)."""
    kt = np.asarray(mix.basis) @ np.diag(np.asarray(mix.eigenvalues)) @ np.asarray(mix.basis).T
    a = 1 - t
    logs, conds = [], []
    for k in range(K):
        cov = np.kron(kt, np.diag(np.asarray(mix.scales[k]) ** 2))
        mu = np.asarray(mix.means[k]).reshape(-1)
        s = a**2 * cov + t**2 * np.eye(H * D)
        r = x.reshape(-1) - a * mu
        sol = np.linalg.solve(s, r)
        logs.append(float(mix.log_weights[k]) - 0.5 * r @ sol - 0.5 * np.linalg.slogdet(s)[1])
        conds.append(mu + a * cov @ sol)
    logs = np.array(logs)
    resp = np.exp(logs - logs.max())
    resp /= resp.sum()
    return (resp[:, None] * np.array(conds)).sum(0).reshape(H, D), resp


@pytest.mark.parametrize("t", [0.95, 0.5, 0.1])
def test_posterior_mean_matches_dense_reference(mix, t):
    x = np.random.default_rng(1).normal(size=(H, D))
    mean, resp = posterior_mean(mix, jnp.asarray(x[None], jnp.float32), t)
    ref_mean, ref_resp = dense_posterior_mean(mix, x, t)
    np.testing.assert_allclose(mean[0], ref_mean, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(resp[0], ref_resp, rtol=1e-3, atol=1e-4)


def test_velocity_is_the_flow_matching_target(mix):
    """v = (x − E[x₀|x])/t: one exact Euler step to t = 0 lands on the posterior mean."""
    x = jnp.asarray(np.random.default_rng(2).normal(size=(1, H, D)), jnp.float32)
    v = mixture_velocity(mix, x, 0.3)
    np.testing.assert_allclose(x - 0.3 * v, posterior_mean(mix, x, 0.3)[0], rtol=1e-5, atol=1e-5)


def test_exact_draws_follow_the_component_weights(mix):
    _, comp = sample_mixture(mix, jax.random.key(0), 4000)
    np.testing.assert_allclose(np.bincount(np.asarray(comp), minlength=K) / 4000, [0.5, 0.3, 0.2], atol=0.03)


def test_velocity_is_differentiable(mix):
    x = jnp.zeros((1, H, D))
    g = jax.grad(lambda x: jnp.sum(mixture_velocity(mix, x, 0.5) ** 2))(x)
    assert np.all(np.isfinite(g))
