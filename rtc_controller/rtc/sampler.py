"""The guided flow sampler: Euler integration from noise (t = 1) to data (t = 0), as openpi does.

x_{t+dt} = x_t + dt·v'(x_t, t) with dt = −1/n, n = ``num_steps``; v' is the RTC-corrected velocity
(``guidance.guided_step``). Mode ``hard`` (the hard-mask inpainting baseline) instead replaces the masked actions
before every step by the prefix noised to the step's flow time, x_t ← M⊙((1 − t)·Y + t·ε) + (1 − M)⊙x_t, with ε the
sampler's initial noise and M = W (pass the hard mask, ``prefix_weights(..., schedule="zeros")``), and sets them to Y
at the end (t = 0): the frozen actions are exactly the prefix, the rest gets no guidance. Mode ``trained``
(training-time RTC: a policy trained with a clean prefix at flow time 0 and the loss on the rest) feeds the prefix as
in training: before every step x_t ← M⊙Y + (1 − M)⊙x_t, and the velocity is evaluated with a flow time per action
token, τ = (1 − M)·t, so ``velocity_fn`` must take t ``[b, H]``; the result's frozen actions are Y. Axes: b = batch,
H = horizon, D = action dim, n = denoising steps.

Jit: one compilation per (shapes, dtypes, ``velocity_fn``, ``num_steps``, ``mode``, prefix present or not,
``return_trace``). The context, the prefix Y, the weights W (hence the delay d) and β are traced
arguments, so changing them at run time never recompiles.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .guidance import GUIDANCE_MODES, GuidanceMode, GuidedStep, guidance_weight_refusal, guided_step


class SampleTrace(NamedTuple):
    """Per-denoising-step values for plotting; leading axis n (step k at flow time t[k] = 1 − k/n)."""

    t: jax.Array  # [n]
    x_t: jax.Array  # [n, b, H, D], the state entering step k
    velocity: jax.Array  # [n, b, H, D], the policy's raw v
    denoised: jax.Array  # [n, b, H, D], x̂₀ = x_t − t·v
    correction: jax.Array  # [n, b, H, D], g(t)·J (zero for mode none)


@partial(jax.jit, static_argnames=("velocity_fn", "num_steps", "mode", "with_context", "return_trace"))
def _sample_jit(
    velocity_fn, noise, context, prefix, weights, max_guidance_weight, *, num_steps, mode, with_context, return_trace
):
    vf = (lambda x, t: velocity_fn(context, x, t)) if with_context else velocity_fn
    dt = -1.0 / num_steps

    def replace(x, t):  # hard mask: frozen actions := the prefix noised to flow time t (same noise ε)
        m = jnp.asarray(weights, x.dtype).reshape((-1, x.shape[1], 1))
        return (m * ((1.0 - t) * prefix + t * noise) + (1.0 - m) * x).astype(x.dtype)

    def clean(x):  # trained: frozen actions := the clean prefix
        m = jnp.asarray(weights, x.dtype).reshape((-1, x.shape[1], 1))
        return (m * prefix + (1.0 - m) * x).astype(x.dtype)

    def trained_step(x_t, t):  # the prefix at flow time 0, the rest at t
        x_t = clean(x_t)
        tau = jnp.broadcast_to((1.0 - jnp.asarray(weights, jnp.float32).reshape((-1, x_t.shape[1]))) * t, x_t.shape[:2])
        v = vf(x_t, tau)
        return x_t, GuidedStep(v, v, x_t - tau[..., None] * v, jnp.zeros_like(x_t))

    def step(carry, _):
        x_t, t = carry
        if mode == "hard" and prefix is not None:
            x_t = replace(x_t, t)
        if mode == "trained" and prefix is not None:
            x_t, out = trained_step(x_t, t)
        else:
            out = guided_step(vf, x_t, t, prefix, weights, max_guidance_weight, mode)
        x_next = (x_t + dt * out.velocity).astype(x_t.dtype)
        record = (t, x_t, out.raw_velocity, out.denoised, out.correction) if return_trace else None
        return (x_next, t + dt), record

    (x_0, _), record = jax.lax.scan(step, (noise, jnp.asarray(1.0, jnp.float32)), None, length=num_steps)
    if mode == "hard" and prefix is not None:
        x_0 = replace(x_0, jnp.asarray(0.0, jnp.float32))
    if mode == "trained" and prefix is not None:
        x_0 = clean(x_0)
    if return_trace:
        return x_0, SampleTrace(*record)
    return x_0


def _check_inputs(noise, prefix, weights, max_guidance_weight, num_steps, mode) -> None:
    if mode not in GUIDANCE_MODES:
        raise ValueError(f"unknown guidance mode {mode!r}; expected one of {GUIDANCE_MODES}")
    if mode == "bid":
        raise ValueError("guidance mode 'bid' samples N candidates and keeps one: use rtc.sample_best_of_n")
    if not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"num_steps must be a positive int, got {num_steps!r}")
    if jnp.ndim(noise) != 3:
        raise ValueError(f"noise must be [batch, horizon, action_dim], got shape {jnp.shape(noise)}")
    if prefix is None:
        return
    b, h, _ = jnp.shape(noise)
    if jnp.shape(prefix) != jnp.shape(noise):
        raise ValueError(f"prefix shape {jnp.shape(prefix)} != noise shape {jnp.shape(noise)}")
    if weights is None:
        raise ValueError("weights are required with a prefix (see rtc.prefix_weights)")
    if jnp.shape(weights) not in ((h,), (b, h)):
        raise ValueError(f"weights must be [{h}] or [{b}, {h}], got {jnp.shape(weights)}")
    if not isinstance(max_guidance_weight, jax.core.Tracer):
        beta = np.asarray(max_guidance_weight)
        why = f"max_guidance_weight must be a scalar, got shape {beta.shape}" if beta.ndim else None
        if (why := why or guidance_weight_refusal(float(beta))) is not None:
            raise ValueError(why)


def sample(
    velocity_fn: Callable[..., jax.Array],
    noise: jax.Array,
    *,
    num_steps: int = 10,
    prefix: jax.Array | None = None,
    weights: jax.Array | None = None,
    max_guidance_weight=10.0,
    mode: GuidanceMode = "stop",
    context: Any = None,
    return_trace: bool = False,
) -> jax.Array | tuple[jax.Array, SampleTrace]:
    """Sample an action chunk ``[b, H, D]`` (model space) from ``noise`` ``[b, H, D]`` (the state at t = 1).

    velocity_fn: ``(x_t, t) -> v``, or ``(context, x_t, t) -> v`` when ``context`` is given; it is a static
    jit argument (keep the same object to avoid recompiles), ``context`` is a traced pytree.
    prefix: Y ``[b, H, D]`` in model space, or None for plain (unguided) sampling; weights: W ``[H]`` or
    ``[b, H]`` (``prefix_weights``); max_guidance_weight: β; mode: ``stop`` | ``full`` | ``none`` | ``hard`` |
    ``trained`` (for the last two the weights are the hard mask).
    return_trace: also return a ``SampleTrace`` of every step.
    """
    _check_inputs(noise, prefix, weights, max_guidance_weight, num_steps, mode)
    return _sample_jit(
        velocity_fn,
        noise,
        context,
        prefix,
        None if prefix is None else jnp.asarray(weights, jnp.float32),
        jnp.asarray(max_guidance_weight, jnp.float32),
        num_steps=num_steps,
        mode=mode,
        with_context=context is not None,
        return_trace=return_trace,
    )
