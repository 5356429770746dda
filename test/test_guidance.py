"""Guided velocity: `stop` (seed eq. 7), `full` (VJP, eq. 5), `none`, and the guidance weight g(t)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rtc_controller.rtc import guidance_weight, guided_velocity, prefix_weights

B, H, D = 2, 12, 3


def reference_g(t: float, beta: float) -> float:
    if t == 1.0:
        return beta
    c = t / (1 - t)
    return min(beta, c * (t**2 + (1 - t) ** 2) / t**2)


@pytest.mark.parametrize("t", [1.0, 0.9, 0.7, 0.5, 0.3, 0.1])
@pytest.mark.parametrize("beta", [1.0, 5.0, 10.0, 100.0])
def test_guidance_weight_formula(t, beta):
    assert float(guidance_weight(t, beta)) == pytest.approx(reference_g(t, beta), rel=1e-5)


def test_guidance_weight_is_capped_and_finite_at_the_ends():
    assert float(guidance_weight(0.0, 10.0)) == 10.0
    assert float(guidance_weight(1.0, 10.0)) == 10.0
    assert float(guidance_weight(0.5, 10.0)) == pytest.approx(2.0)


class LinearField:
    """v = x·Aᵀ + b along the action dim (hashable by identity, as the sampler requires)."""

    def __init__(self, seed=0):
        rng = np.random.default_rng(seed)
        self.a = jnp.asarray(rng.normal(size=(D, D)) * 0.5, jnp.float32)
        self.b = jnp.asarray(rng.normal(size=(D,)), jnp.float32)

    def __call__(self, x, t):
        return x @ self.a.T + self.b


@pytest.fixture
def data():
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.normal(size=(B, H, D)), jnp.float32)
    y = jnp.asarray(rng.normal(size=(B, H, D)), jnp.float32)
    w = prefix_weights(3, 8, H, "exp")
    return x, y, w


def test_none_returns_the_raw_velocity(data):
    x, y, w = data
    field = LinearField()
    np.testing.assert_allclose(guided_velocity(field, x, 0.7, y, w, 10.0, "none"), field(x, 0.7), rtol=1e-6)


@pytest.mark.parametrize("t", [1.0, 0.6, 0.2])
def test_stop_equals_closed_form(data, t):
    x, y, w = data
    field = LinearField()
    v = field(x, t)
    expected = v - reference_g(t, 10.0) * np.asarray(w)[None, :, None] * (y - (x - t * v))
    np.testing.assert_allclose(guided_velocity(field, x, t, y, w, 10.0, "stop"), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("t", [1.0, 0.6, 0.2])
def test_full_equals_analytic_vjp_of_linear_field(data, t):
    """For v = Ax + b: ∂x̂₀/∂x = I − tA, so J = e·(I − tA) per action step (row vector e)."""
    x, y, w = data
    field = LinearField()
    v = field(x, t)
    e = np.asarray(w)[None, :, None] * (y - (x - t * v))
    j = e @ (np.eye(D) - t * np.asarray(field.a))
    expected = v - reference_g(t, 10.0) * j
    np.testing.assert_allclose(guided_velocity(field, x, t, y, w, 10.0, "full"), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mode", ["stop", "full"])
def test_zero_weight_positions_receive_no_correction(data, mode):
    x, y, _ = data
    field = LinearField()
    w = prefix_weights(3, 8, H, "exp")
    out = guided_velocity(field, x, 0.5, y, w, 100.0, mode)
    raw = field(x, 0.5)
    np.testing.assert_array_equal(np.asarray(out)[:, 8:], np.asarray(raw)[:, 8:])
    assert not np.allclose(np.asarray(out)[:, :3], np.asarray(raw)[:, :3])


def test_per_batch_weights(data):
    x, y, _ = data
    field = LinearField()
    w = jnp.stack([prefix_weights(3, 8, H), jnp.zeros(H)])
    out = np.asarray(guided_velocity(field, x, 0.5, y, w, 10.0, "stop"))
    np.testing.assert_array_equal(out[1], np.asarray(field(x, 0.5))[1])
    assert not np.allclose(out[0, :3], np.asarray(field(x, 0.5))[0, :3])


def test_unknown_mode_is_refused(data):
    x, y, w = data
    with pytest.raises(ValueError, match="mode"):
        guided_velocity(LinearField(), x, 0.5, y, w, 10.0, "half")


def test_stop_needs_no_backward_pass(data):
    """`stop` never differentiates the velocity field: a field whose VJP raises still works."""
    x, y, w = data

    @jax.custom_vjp
    def no_grad_field(x):
        return jnp.sin(x)

    no_grad_field.defvjp(lambda x: (jnp.sin(x), None), lambda _, g: (_ for _ in ()).throw(RuntimeError("backward")))
    field = lambda x, t: no_grad_field(x)  # noqa: E731
    assert np.all(np.isfinite(guided_velocity(field, x, 0.5, y, w, 10.0, "stop")))
    with pytest.raises(Exception):
        guided_velocity(field, x, 0.5, y, w, 10.0, "full")
