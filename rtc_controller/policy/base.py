"""The policy interface the RTC sampler drives.

Axes: b = batch, H = action horizon (``horizon``), Dm = model action dim (the velocity field's space,
e.g. π0.5 pads to 32), D = physical action dim (``len(action_names)``).
Flow time follows openpi: t = 1 is noise, t = 0 is data.

A policy splits inference into
- ``prepare(observation) -> context``: once per chunk, the expensive conditioning pass (for π0.5 the
  vision-language prefix and its KV cache). The context is a pytree of arrays, passed to the jitted
  sampler as a traced argument, so a new observation never recompiles.
- ``velocity(context, x_t, t) -> v``: once per denoising step, pure and jittable; the sampler holds it as a
  static argument, so a policy object must hash by identity (``@dataclass(eq=False)`` or a plain class).
- ``to_model`` / ``to_physical``: normalisation between physical units and model space (and, where
  configured, delta <-> absolute actions relative to the observed state).
- optionally ``warmup()``: compile what one warm-up observation does not reach (π0.5: every prompt-length
  bucket of its prefix pass); ``ChunkSampler.warmup`` calls it first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Observation:
    """What the inference node snapshots before sampling a chunk.

    images: camera slot -> uint8 [height, width, 3] (slots missing from the mapping are masked out).
    state: physical robot state in the action space, [state_dim].
    prompt: the task instruction.
    stamp_s: t_obs, the executor-clock stamp of ``state`` [s]; the chunk's action k is due at t_obs + k·Δt.
    """

    state: np.ndarray
    stamp_s: float
    prompt: str = ""
    images: Mapping[str, np.ndarray] = field(default_factory=dict)


@runtime_checkable
class FlowPolicy(Protocol):
    """A flow-matching action-chunk policy, driven by ``rtc_controller.rtc.sample``."""

    action_names: tuple[str, ...]  # physical action dims, len = D
    horizon: int  # H, actions per chunk
    model_action_dim: int  # Dm

    def prepare(self, observation: Observation) -> Any:
        """Conditioning pass for one chunk; returns a pytree of arrays (the context)."""
        ...

    def velocity(self, context: Any, x_t: Any, t: Any) -> Any:
        """Flow velocity ``[b, H, Dm]`` at flow time ``t`` (scalar); pure and jittable."""
        ...

    def to_physical(self, actions_model: np.ndarray, observation: Observation) -> np.ndarray:
        """Model-space chunk ``[b, H, Dm]`` -> physical chunk ``[b, H, D]``."""
        ...

    def to_model(self, actions_physical: np.ndarray, observation: Observation) -> np.ndarray:
        """Physical chunk ``[b, H, D]`` -> model space ``[b, H, Dm]`` (maps the previous chunk into the prefix)."""
        ...
