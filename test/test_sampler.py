"""The guided Euler sampler: openpi's integration, guidance behaviour, no recompiles, input checks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rtc_controller.policy.mixture import make_mixture, mixture_velocity, sample_mixture
from rtc_controller.rtc import prefix_weights, sample

H, D = 40, 2


class CountingField:
    """v = x − 1 (data at 1), counting Python-side traces (one per compilation of a jitted caller)."""

    def __init__(self):
        self.traces = 0

    def __call__(self, x, t):
        self.traces += 1
        return x - 1.0


def openpi_euler(velocity_fn, noise, num_steps):
    """openpi's loop: time from 1.0, x += dt·v, time += dt, while time >= −dt/2."""
    dt = -1.0 / num_steps
    x, time = np.asarray(noise, np.float32), np.float32(1.0)
    while time >= -dt / 2:
        x = x + dt * np.asarray(velocity_fn(jnp.asarray(x), time))
        time = np.float32(time + dt)
    return x


def test_plain_sampling_matches_openpi_loop():
    field = lambda x, t: jnp.sin(x) * t + 0.3  # noqa: E731
    noise = jax.random.normal(jax.random.key(0), (2, H, D))
    np.testing.assert_allclose(sample(field, noise, num_steps=7), openpi_euler(field, noise, 7), rtol=1e-5, atol=1e-5)


def test_trace_records_every_step():
    field = CountingField()
    noise = jax.random.normal(jax.random.key(0), (1, H, D))
    prefix = jnp.zeros((1, H, D))
    x, tr = sample(field, noise, num_steps=5, prefix=prefix, weights=prefix_weights(4, 20, H), return_trace=True)
    np.testing.assert_allclose(tr.t, [1.0, 0.8, 0.6, 0.4, 0.2], atol=1e-6)
    assert tr.x_t.shape == tr.velocity.shape == tr.denoised.shape == tr.correction.shape == (5, 1, H, D)
    np.testing.assert_allclose(tr.x_t[0], noise)
    np.testing.assert_allclose(tr.denoised, tr.x_t - tr.t[:, None, None, None] * tr.velocity, atol=1e-5)
    assert np.all(np.asarray(tr.correction)[:, :, 20:] == 0)


def test_no_recompilation_when_beta_delay_or_weights_change():
    field = CountingField()
    noise = jnp.zeros((1, H, D))
    prefix = jnp.ones((1, H, D))
    for mode in ("stop", "full", "none"):
        sample(field, noise, prefix=prefix, weights=prefix_weights(4, 20, H), max_guidance_weight=10.0, mode=mode)
    traced = field.traces
    for beta, d, schedule in [(1.0, 0, "exp"), (5.0, 7, "linear"), (100.0, 20, "zeros"), (0.0, 3, "ones")]:
        for mode in ("stop", "full", "none"):
            sample(field, noise, prefix=prefix, weights=prefix_weights(d, 20, H, schedule), max_guidance_weight=beta, mode=mode)
    assert field.traces == traced, "changing β, d or the weights must not retrace"


def test_prefix_weights_do_not_recompile_for_new_delays():
    before = prefix_weights.__wrapped__ if hasattr(prefix_weights, "__wrapped__") else None  # noqa: F841
    from rtc_controller.rtc.prefix_weights import _prefix_weights

    prefix_weights(1, 20, H)
    size = _prefix_weights._cache_size()
    for d in range(0, 25):
        prefix_weights(d, 20 + d % 3, H)
    assert _prefix_weights._cache_size() == size


@pytest.fixture(scope="module")
def modes():
    """Three smooth, well-separated modes over a 2-D chunk."""
    t = np.linspace(0, 1, H)[:, None]
    means = np.stack([np.hstack([np.sin(3 * t + p), np.cos(2 * t + p)]) * 2 for p in (0.0, 2.1, 4.2)])
    return make_mixture(means, scales=0.05, length_scale_steps=8.0)


def _mix_field(mix, x, t):
    return mixture_velocity(mix, x, t)


def test_guided_samples_follow_the_prefix_mode(modes):
    """A prefix from mode 0: guided samples match it over the frozen region, unguided ones often do not."""
    d, end, batch = 8, 24, 64
    draws, comp = sample_mixture(modes, jax.random.key(3), 64)
    prefix = jnp.broadcast_to(draws[int(np.argmax(np.asarray(comp) == 0))], (batch, H, D))  # a draw from mode 0
    noise = jax.random.normal(jax.random.key(4), (batch, H, D))
    w = prefix_weights(d, end, H)
    mismatch = {}
    for mode in ("none", "stop", "full"):
        x = sample(_mix_field, noise, context=modes, prefix=prefix, weights=w, max_guidance_weight=10.0, mode=mode)
        mismatch[mode] = float(jnp.mean(jnp.linalg.norm(x[:, :d] - prefix[:, :d], axis=-1)))
        closest = jnp.argmin(jnp.linalg.norm(x[:, None] - modes.means[None], axis=(2, 3)), axis=1)
        if mode == "stop":
            assert float(jnp.mean(closest == 0)) > 0.95, "guided samples stay in the prefix's mode"
        if mode == "none":
            assert float(jnp.mean(closest == 0)) < 0.6, "unguided samples spread over the modes"
    assert mismatch["stop"] < 0.25 * mismatch["none"]
    assert mismatch["stop"] < 0.5


def test_plain_sampling_reaches_every_mode(modes):
    noise = jax.random.normal(jax.random.key(5), (300, H, D))
    x = sample(_mix_field, noise, context=modes)
    closest = np.asarray(jnp.argmin(jnp.linalg.norm(x[:, None] - modes.means[None], axis=(2, 3)), axis=1))
    assert np.all(np.bincount(closest, minlength=3) > 50)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(mode="half"), "mode"),
        (dict(num_steps=0), "num_steps"),
        (dict(prefix=jnp.zeros((1, H + 1, D)), weights=jnp.ones(H + 1)), "prefix shape"),
        (dict(prefix=jnp.zeros((1, H, D))), "weights are required"),
        (dict(prefix=jnp.zeros((1, H, D)), weights=jnp.ones(H - 1)), "weights must be"),
        (dict(prefix=jnp.zeros((1, H, D)), weights=jnp.ones(H), max_guidance_weight=-1.0), "max_guidance_weight"),
        (dict(prefix=jnp.zeros((1, H, D)), weights=jnp.ones(H), max_guidance_weight=float("nan")), "max_guidance_weight"),
    ],
)
def test_bad_inputs_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sample(CountingField(), jnp.zeros((1, H, D)), **kwargs)


def test_one_rule_for_beta_in_every_layer():
    """The sampler, the chunk sampler's settings and the node's on-set check refuse the same β with one message."""
    from rtc_controller.policy.chunk_sampler import GuidanceSettings
    from rtc_controller.app.inference_params import validate_parameter
    from rtc_controller.rtc import guidance_weight_refusal

    for bad in (-1.0, float("nan"), float("inf"), 1001.0):
        why = guidance_weight_refusal(bad)
        assert why == f"max_guidance_weight must be in [0, 1000], got {bad!r}"
        assert validate_parameter("max_guidance_weight", bad, horizon=8) == why
        with pytest.raises(ValueError) as e:
            GuidanceSettings(1, 4, max_guidance_weight=bad)
        assert str(e.value) == why
    for good in (0, 0.0, 10.0, 1000.0):
        assert guidance_weight_refusal(good) is None
