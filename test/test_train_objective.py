"""openpi's flow-matching objective: the flow-time distribution, the interpolation and its target, and the
training velocity (the inference path: prefix KV cache, then the action expert) against the uncached joint pass."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rtc_controller.policy.pi05.config import IMAGE_KEYS
from rtc_controller.policy.pi05.model import forward_joint
from rtc_controller.policy.pi05.params import random_params
from rtc_controller.policy.pi05.testing import tiny_config
from rtc_controller.train.objective import flow_matching_loss, noisy_actions, sample_time, velocity

B = 3


def test_flow_time_is_beta_1_5_1_squeezed():
    t = np.asarray(sample_time(jax.random.key(0), 200_000), np.float64)
    assert t.min() >= 0.001 and t.max() <= 1.0
    x = np.sort((t - 0.001) / 0.999)  # back to Beta(1.5, 1), whose CDF is x^1.5
    ecdf = np.arange(1, x.size + 1) / x.size
    assert np.max(np.abs(ecdf - x**1.5)) < 0.005  # Kolmogorov–Smirnov distance (critical value ≈ 0.003 at 1 %)
    assert x.mean() == pytest.approx(0.6, abs=0.003)  # α / (α + β)


def test_interpolation_and_target():
    rng = np.random.default_rng(0)
    a, eps = rng.normal(size=(2, 4, 5)), rng.normal(size=(2, 4, 5))
    x_t, u = noisy_actions(jnp.asarray(a), jnp.asarray(eps), jnp.asarray([1.0, 0.25]))
    np.testing.assert_allclose(x_t[0], eps[0], atol=1e-6)  # t = 1: pure noise
    np.testing.assert_allclose(x_t[1], 0.25 * eps[1] + 0.75 * a[1], atol=1e-6)
    np.testing.assert_allclose(u, eps - a, atol=1e-6)
    # One exact Euler step of the target velocity from x_t lands on the data: x_t − t·u = a.
    np.testing.assert_allclose(x_t[1] - 0.25 * u[1], a[1], atol=1e-6)


@pytest.fixture(scope="module")
def model():
    cfg = tiny_config(action_dim=6, action_horizon=5, max_token_len=12)
    params = jax.tree.map(jnp.asarray, random_params(cfg, seed=1, dtype="float32", on_device=False))
    rng = np.random.default_rng(2)
    size = cfg.siglip.image_size
    batch = {
        "images": {k: jnp.asarray(rng.uniform(-1, 1, (B, size, size, 3)), jnp.float32) for k in IMAGE_KEYS},
        "image_masks": {k: jnp.asarray([True, k != "left_wrist_0_rgb", True]) for k in IMAGE_KEYS},
        "tokens": jnp.asarray(rng.integers(1, cfg.vocab_size, (B, cfg.max_token_len)), jnp.int32),
        "token_mask": jnp.asarray(np.arange(cfg.max_token_len)[None] < np.array([[7], [12], [3]])),
        "actions": jnp.asarray(rng.normal(size=(B, cfg.action_horizon, cfg.action_dim)), jnp.float32),
    }
    return cfg, params, batch


def test_training_velocity_is_the_joint_forward(model):
    cfg, params, batch = model
    x = jnp.asarray(np.random.default_rng(3).normal(size=batch["actions"].shape), jnp.float32)
    t = jnp.asarray([0.9, 0.3, 0.05])
    got = velocity(params, cfg, batch, x, t)
    want = forward_joint(params, cfg, batch["images"], batch["image_masks"], batch["tokens"], batch["token_mask"], x, t)
    np.testing.assert_allclose(got, want, atol=2e-5, rtol=2e-5)


@pytest.mark.slow
def test_loss_is_the_mean_squared_velocity_error(model):
    cfg, params, batch = model
    key = jax.random.key(7)
    noise_key, time_key = jax.random.split(key)
    noise = jax.random.normal(noise_key, batch["actions"].shape, jnp.float32)
    t = sample_time(time_key, B)
    x_t = t[:, None, None] * noise + (1 - t[:, None, None]) * batch["actions"]
    v = forward_joint(params, cfg, batch["images"], batch["image_masks"], batch["tokens"], batch["token_mask"], x_t, t)
    want = np.mean((np.asarray(v) - np.asarray(noise - batch["actions"])) ** 2)
    assert float(flow_matching_loss(params, cfg, batch, key)) == pytest.approx(want, rel=1e-5)
    grads = jax.grad(flow_matching_loss)(params, cfg, batch, key)
    # Every part of the model learns: SigLIP, the prefix expert (through the KV cache), the action expert.
    for path in (("PaliGemma", "img", "embedding", "kernel"), ("PaliGemma", "llm", "embedder", "input_embedding"),
                 ("PaliGemma", "llm", "layers", "mlp", "linear"), ("PaliGemma", "llm", "layers", "mlp_1", "linear"),
                 ("time_mlp_in", "kernel"), ("action_out_proj", "kernel")):
        g = grads
        for k in path:
            g = g[k]
        assert float(jnp.abs(g).max()) > 0, path
