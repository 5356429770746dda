"""openpi's flow-matching objective for π0.5 (``models/pi0.py: compute_loss``), on the inference path's functions.

Flow time follows openpi: t = 1 is noise, t = 0 is data. For clean actions a (model space, normalised):

    t ~ Beta(1.5, 1)·0.999 + 0.001   (per sample)
    x_t = t·ε + (1 − t)·a,  ε ~ N(0, I)
    u = ε − a                         (the velocity that carries data to noise; sampling integrates x ← x − v/n)
    loss = mean over batch, horizon and model action dims of (v(x_t, t) − u)²

Training-time RTC (``rtc_training_max_delay`` = d_max > 0; LeRobot's π0.5 option, Black et al. 2025's follow-up):
per sample a prefix length d ~ U{0, …, d_max}; the first d actions are fed clean, at flow time 0
(τ_i = 0 for i < d, τ_i = t otherwise, x_τ = τ·ε + (1 − τ)·a per action), and left out of the loss (the mean runs
over the other positions). At inference, ``guidance_mode: trained`` feeds the frozen actions the same way
(``rtc.sample``). With d_max = 0 the objective is the plain one above, bit for bit.

The velocity is computed exactly as at inference: ``prefix_context`` (SigLIP and the Gemma prefix expert
fill a KV cache) then ``velocity_from_cache`` (the action expert with adaptive RMSNorm against that cache),
so training and inference cannot diverge; gradients flow through the cache into the prefix.

Axes: b = batch, ah = action horizon, ad = model action dim.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from rtc_controller.policy.pi05.config import Pi05Config
from rtc_controller.policy.pi05.model import prefix_context, stack_images, velocity_from_cache
from rtc_controller.policy.pi05.params import Params

Array = jax.Array
BETA_A = 1.5  # openpi's time distribution Beta(1.5, 1) ...
TIME_SCALE, TIME_MIN = 0.999, 0.001  # ... squeezed into [0.001, 1]
BATCH_KEYS = ("images", "image_masks", "tokens", "token_mask", "actions")


def sample_time(key: Array, batch_size: int) -> Array:
    """Flow times [b] ~ Beta(1.5, 1)·0.999 + 0.001: more weight near t = 1 (noise), never exactly 0.

    Beta(α, 1) has the CDF x^α, so it is drawn exactly by inversion, x = U^(1/α) with U ~ U(0, 1): the same
    distribution as openpi's ``jax.random.beta(key, 1.5, 1)``, without the rejection sampler that takes XLA
    seconds to compile. (Mean α/(α + 1) = 0.6, median 0.5^(2/3) ≈ 0.63.)
    """
    u = jax.random.uniform(key, (batch_size,), jnp.float32)
    return u ** (1.0 / BETA_A) * TIME_SCALE + TIME_MIN


def noisy_actions(actions: Array, noise: Array, t: Array) -> tuple[Array, Array]:
    """(x_t, u): x_t = t·ε + (1 − t)·a and the target velocity u = ε − a; actions/noise [b, ah, ad], t [b]."""
    te = t[:, None, None]
    return te * noise + (1.0 - te) * actions, noise - actions


def velocity(params: Params, cfg: Pi05Config, batch: dict[str, Any], x_t: Array, t: Array) -> Array:
    """v(x_t, t) [b, ah, ad] through the inference path (cameras stacked as ``Pi05Model.prepare`` stacks them,
    the prefix KV cache, then the action expert)."""
    _, images, image_masks = stack_images(batch["images"], batch["image_masks"])
    ctx = prefix_context(params, cfg, images, image_masks, batch["tokens"], batch["token_mask"])
    return velocity_from_cache(cfg, ctx, x_t, t)


def prefix_mask(key: Array, batch_size: int, horizon: int, max_delay: int) -> Array:
    """Clean-prefix mask [b, ah] (True for i < d), d ~ U{0, …, max_delay} per sample.

    Example: max_delay = 2, ah = 4, drawn d = (0, 2) -> [[F, F, F, F], [T, T, F, F]].
    """
    d = jax.random.randint(key, (batch_size,), 0, max_delay + 1)
    return jnp.arange(horizon)[None, :] < d[:, None]


def flow_matching_loss(params: Params, cfg: Pi05Config, batch: dict[str, Any], key: Array, *,
                       rtc_training_max_delay: int = 0) -> Array:  # fmt: skip
    """Scalar loss for one batch: ``batch`` holds images (camera slot -> uint8 [b, s, s, 3], or float32 in
    [−1, 1]), image_masks (slot -> bool [b]), tokens int32 [b, l], token_mask bool [b, l], actions float32
    [b, ah, ad] (normalised model-space targets). ``rtc_training_max_delay`` > 0: training-time RTC (see the module
    docstring)."""
    actions = jnp.asarray(batch["actions"], jnp.float32)
    if rtc_training_max_delay <= 0:
        noise_key, time_key = jax.random.split(key)
        noise = jax.random.normal(noise_key, actions.shape, jnp.float32)
        t = sample_time(time_key, actions.shape[0])
        x_t, u = noisy_actions(actions, noise, t)
        v = velocity(params, cfg, batch, x_t, t)
        return jnp.mean(jnp.square(v - u))
    noise_key, time_key, delay_key = jax.random.split(key, 3)
    b, ah = actions.shape[:2]
    noise = jax.random.normal(noise_key, actions.shape, jnp.float32)
    clean = prefix_mask(delay_key, b, ah, rtc_training_max_delay)
    tau = jnp.where(clean, 0.0, sample_time(time_key, b)[:, None])  # [b, ah]: the prefix at flow time 0
    x_t = tau[..., None] * noise + (1.0 - tau[..., None]) * actions
    v = velocity(params, cfg, batch, x_t, tau)
    weight = (~clean).astype(jnp.float32)[..., None]  # the loss leaves the clean prefix out
    return jnp.sum(weight * jnp.square(v - (noise - actions))) / (jnp.sum(weight) * actions.shape[-1])
