"""Soft prefix mask W for RTC guidance (Physical Intelligence's real-time-chunking reference).

Indices are action steps of the new chunk, i = 0 … H-1. ``inference_delay`` d = first index the new
chunk may change (actions before it are frozen: they were executed from the previous chunk while
inference ran); ``prefix_attention_horizon`` = end = first index with no prefix (normally H - s,
s = execution horizon).
"""

from __future__ import annotations

from functools import partial
from typing import Literal, get_args

import jax
import jax.numpy as jnp

PrefixSchedule = Literal["exp", "linear", "ones", "zeros"]
PREFIX_SCHEDULES: tuple[str, ...] = get_args(PrefixSchedule)


@partial(jax.jit, static_argnames=("horizon", "schedule"))
def _prefix_weights(inference_delay, prefix_attention_horizon, horizon: int, schedule: str) -> jax.Array:
    i = jnp.arange(horizon)
    end = jnp.clip(prefix_attention_horizon, 0, horizon)
    start = jnp.clip(jnp.minimum(inference_delay, end), 0, None)  # d is clamped to <= end
    if schedule == "ones":
        w = jnp.ones(horizon, jnp.float32)
    elif schedule == "zeros":
        w = (i < start).astype(jnp.float32)
    else:  # linear / exp: 1 before start, linear decay over [start, end), 0 from end on
        w = jnp.clip((start - 1 - i) / (end - start + 1) + 1, 0.0, 1.0).astype(jnp.float32)
        if schedule == "exp":
            w = w * jnp.expm1(w) / (jnp.e - 1)
    return jnp.where(i >= end, 0.0, w)


def prefix_weights(
    inference_delay, prefix_attention_horizon, horizon: int, schedule: PrefixSchedule = "exp"
) -> jax.Array:
    """Soft-mask weights W, ``[horizon]`` float32.

    w_i = 1 for i < d; w_i = 0 for i >= end; in between ``linear`` decays as
    clip((d - 1 - i)/(end - d + 1) + 1, 0, 1) and ``exp`` maps that w to w·(e^w - 1)/(e - 1);
    ``ones`` is 1 everywhere before end, ``zeros`` is the hard mask (1 for i < d only). d is clamped to <= end.

    Example (linear), d=2, end=6, H=10:  1  1  4/5  3/5  2/5  1/5  0  0  0  0

    ``inference_delay`` and ``prefix_attention_horizon`` may be traced: changing them never recompiles.
    """
    if schedule not in PREFIX_SCHEDULES:
        raise ValueError(f"unknown prefix schedule {schedule!r}; expected one of {PREFIX_SCHEDULES}")
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    return _prefix_weights(inference_delay, prefix_attention_horizon, horizon=int(horizon), schedule=schedule)
