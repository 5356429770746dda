"""RTC guidance of one denoising step (ΠGDM correction, seed eq. 3–7).

Time convention (openpi): flow time t = 1 is noise, t = 0 is data; the denoised estimate is
x̂₀ = x_t − t·v(x_t, t). Axes: b = batch, H = horizon, D = action dim.

Corrected velocity: v' = v − g(t)·J with e = W ⊙ (Y − x̂₀) and
- ``stop``: J = e — the seed's stop-gradient workaround (eq. 6–7): ∂x̂₀/∂x_t taken as I, no backward pass;
- ``full``: J = eᵀ ∂x̂₀/∂x_t = eᵀ (I − t·∂v/∂x_t), a VJP through the velocity field (original RTC, eq. 5);
- ``none``: v' = v (naive asynchronous chunking);
- ``hard``: v' = v, and the sampler replaces the frozen actions by the noised prefix at every step (hard-mask
  inpainting baseline, no soft guidance: see ``sampler``);
- ``trained``: v' = v for a policy trained with training-time RTC: the sampler feeds the frozen actions clean, at
  flow time 0, as in training (see ``sampler``); no guidance term, no backward pass;
- ``bid``: v' = v: bidirectional decoding's backward half samples N chunks unguided and keeps the one nearest the
  prefix (see ``bid``), the selection baseline of the RTC paper.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Literal, NamedTuple, get_args

import jax
import jax.numpy as jnp

GuidanceMode = Literal["stop", "full", "none", "hard", "trained", "bid"]
MAX_GUIDANCE_WEIGHT = 1000.0  # β above this only amplifies numerical noise (the weight saturates far below)


def guidance_weight_refusal(beta) -> str | None:
    """Why β = ``beta`` is refused (None: accepted): the one rule every layer applies, finite and in [0, 1000]."""
    try:
        ok = not isinstance(beta, bool) and math.isfinite(float(beta)) and 0 <= float(beta) <= MAX_GUIDANCE_WEIGHT
    except (TypeError, ValueError):
        ok = False
    return None if ok else f"max_guidance_weight must be in [0, {MAX_GUIDANCE_WEIGHT:g}], got {beta!r}"


PREFIX_CONDITIONED_MODES: tuple[str, ...] = ("trained",)  # modes that need a policy trained on clean prefixes
GUIDANCE_MODES: tuple[str, ...] = get_args(GuidanceMode)
VelocityFn = Callable[[jax.Array, jax.Array], jax.Array]  # (x_t [b H D], t []) -> v [b H D]


def guidance_weight(t, max_guidance_weight) -> jax.Array:
    """g(t) = min(β, c·(t² + (1 − t)²)/t²) with c = t/(1 − t); β where the formula is undefined (t = 1, t = 0).

    Equivalently min(β, (t² + (1 − t)²)/(t(1 − t))): 2 at t = 0.5 (its minimum), growing towards both ends.
    Example, β = 10: t = 1 -> 10, t = 0.9 -> 9.11, t = 0.5 -> 2, t = 0.1 -> 9.11.
    """
    t = jnp.asarray(t, jnp.float32)
    num = t**2 + (1.0 - t) ** 2
    den = t * (1.0 - t)
    ratio = num / jnp.where(den > 0, den, 1.0)
    return jnp.where(den > 0, jnp.minimum(max_guidance_weight, ratio), max_guidance_weight).astype(jnp.float32)


class GuidedStep(NamedTuple):
    """One guided velocity evaluation; all ``[b, H, D]``."""

    velocity: jax.Array  # v', the corrected velocity the integrator uses
    raw_velocity: jax.Array  # v, the policy's velocity
    denoised: jax.Array  # x̂₀ = x_t − t·v
    correction: jax.Array  # g(t)·J, so that v' = v − correction


def _broadcast_weights(weights: jax.Array) -> jax.Array:
    """[H] or [b, H] -> [1|b, H, 1]."""
    w = jnp.asarray(weights, jnp.float32)
    if w.ndim == 1:
        w = w[None]
    return w[..., None]


def guided_step(
    velocity_fn: VelocityFn,
    x_t: jax.Array,
    t,
    prefix: jax.Array | None,
    weights: jax.Array | None,
    max_guidance_weight,
    mode: GuidanceMode,
) -> GuidedStep:
    """The guided velocity with its parts (traceable; ``velocity_fn`` and ``mode`` are Python values)."""
    if mode not in GUIDANCE_MODES:
        raise ValueError(f"unknown guidance mode {mode!r}; expected one of {GUIDANCE_MODES}")
    if mode == "full" and prefix is not None:

        def denoiser(x):
            v = velocity_fn(x, t)
            return x - t * v, v

        x0, vjp_fn, v = jax.vjp(denoiser, x_t, has_aux=True)
    else:
        v = velocity_fn(x_t, t)
        x0 = x_t - t * v
    if prefix is None or mode in ("none", "hard", "trained", "bid"):
        return GuidedStep(v, v, x0, jnp.zeros_like(x_t))
    error = _broadcast_weights(weights) * (prefix - x0)  # e = W ⊙ (Y − x̂₀)
    direction = vjp_fn(error.astype(x0.dtype))[0] if mode == "full" else error
    correction = guidance_weight(t, max_guidance_weight) * direction
    return GuidedStep((v - correction).astype(v.dtype), v, x0, correction)


@partial(jax.jit, static_argnames=("velocity_fn", "mode"))
def _guided_velocity_jit(velocity_fn, x_t, t, prefix, weights, max_guidance_weight, mode):
    return guided_step(velocity_fn, x_t, t, prefix, weights, max_guidance_weight, mode).velocity


def guided_velocity(
    velocity_fn: VelocityFn,
    x_t: jax.Array,
    t,
    prefix: jax.Array,
    weights: jax.Array,
    max_guidance_weight,
    mode: GuidanceMode = "stop",
) -> jax.Array:
    """Corrected velocity v' ``[b, H, D]`` for one denoising step (jit-compiled per shape and mode).

    velocity_fn: ``(x [b, H, D], t) -> v [b, H, D]``, static (hashable); t: flow time (1 = noise);
    prefix: Y ``[b, H, D]``, the previous chunk re-indexed to this chunk's time base; weights: W ``[H]`` or
    ``[b, H]``; max_guidance_weight: β. ``t``, Y, W and β are traced: new values never recompile.
    """
    if mode not in GUIDANCE_MODES:
        raise ValueError(f"unknown guidance mode {mode!r}; expected one of {GUIDANCE_MODES}")
    return _guided_velocity_jit(velocity_fn, x_t, t, prefix, weights, max_guidance_weight, mode=mode)
