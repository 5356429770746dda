"""Bidirectional decoding, backward half (BID, Liu et al. 2024; the RTC paper's baseline): sample N chunks without
guidance from N noises and keep the one most coherent with the previous chunk's not-yet-executed actions.

Backward coherence of candidate n: L_n = Σ_i W_i · ‖A_n[i] − Y[i]‖₂² (model space), with Y the prefix and W the
prefix weights the soft-masked guidance uses (``prefix_weights``: 1 on the frozen actions, decaying to 0 at
H − s), so BID and RTC look at the same overlap. The chunk with the smallest L_n is kept. BID's forward contrast
(against a weaker policy's samples) is left out: there is no weak twin of the policy to contrast with here.

Axes: N = candidates, H = horizon, D = action dim; flow time t = 1 is noise, 0 is data. Jit: one compilation
per (shapes, dtypes, ``velocity_fn``, ``num_steps``, context present or not); the prefix, the weights (hence d)
and the context are traced, so changing them never recompiles.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .sampler import _sample_jit

MAX_CANDIDATES = 64  # beyond this the batch costs more than a chunk period on any device we target


class BestOfN(NamedTuple):
    """The kept chunk and how every candidate scored."""

    actions: jax.Array  # [1, H, D], the candidate with the smallest loss (model space)
    losses: jax.Array  # [N], L_n
    index: jax.Array  # [], argmin of losses
    first: jax.Array  # [1, H, D], candidate 0: the unguided chunk of noise row 0


def backward_coherence(candidates: jax.Array, prefix: jax.Array, weights: jax.Array) -> jax.Array:
    """L_n = Σ_i W_i ‖A_n[i] − Y[i]‖² for candidates ``[N, H, D]``, prefix ``[H, D]``, weights ``[H]`` -> ``[N]``."""
    sq = jnp.sum((candidates - prefix[None]) ** 2, axis=-1)  # [N, H]
    return jnp.sum(jnp.asarray(weights, sq.dtype)[None] * sq, axis=-1)


@partial(jax.jit, static_argnames=("velocity_fn", "num_steps", "with_context"))
def _best_of_n_jit(velocity_fn, noise, context, prefix, weights, *, num_steps, with_context):
    def one(row):  # one unguided chunk [H, D] from one noise row, the shared (unbatched) context
        return _sample_jit(velocity_fn, row[None], context, None, None, jnp.float32(0.0), num_steps=num_steps,
                           mode="none", with_context=with_context, return_trace=False)[0]  # fmt: skip

    candidates = jax.vmap(one)(noise)
    losses = backward_coherence(candidates, prefix[0], weights)
    index = jnp.argmin(losses)
    return BestOfN(candidates[index][None], losses, index, candidates[:1])


def sample_best_of_n(
    velocity_fn: Callable[..., jax.Array],
    noise: jax.Array,
    *,
    prefix: jax.Array,
    weights: jax.Array,
    num_steps: int = 10,
    context: Any = None,
) -> BestOfN:
    """BID: N unguided chunks from ``noise`` ``[N, H, D]`` (one per row), the one nearest ``prefix`` ``[1, H, D]``
    under ``weights`` ``[H]`` kept. ``velocity_fn`` as in ``rtc.sample`` (``(context, x_t, t)`` with a context of
    batch 1, shared by every candidate; ``(x_t, t)`` without). ValueError on shapes that do not fit."""
    shape = jnp.shape(noise)
    if len(shape) != 3 or not 1 <= shape[0] <= MAX_CANDIDATES:
        raise ValueError(f"noise must be [N, horizon, action_dim] with 1 <= N <= {MAX_CANDIDATES}, got shape {shape}")
    if jnp.shape(prefix) != (1, *shape[1:]):
        raise ValueError(f"prefix must be [1, {shape[1]}, {shape[2]}], got shape {jnp.shape(prefix)}")
    if jnp.shape(weights) != (shape[1],):
        raise ValueError(f"weights must be [{shape[1]}], got shape {jnp.shape(weights)}")
    if not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"num_steps must be a positive int, got {num_steps!r}")
    return _best_of_n_jit(velocity_fn, jnp.asarray(noise, jnp.float32), context, jnp.asarray(prefix, jnp.float32),
                          jnp.asarray(weights, jnp.float32), num_steps=num_steps,
                          with_context=context is not None)  # fmt: skip
