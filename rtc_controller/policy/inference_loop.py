"""The inference loop, ROS-free: when to sample, which chunk to guide toward, which d to use, and the loop itself.

:class:`InferenceLoop` holds the inference node's per-chunk decisions; the node's worker thread
(``ros/inference_worker.py``) and the in-process episode runner (``sim/episode.py``) both drive it, so the
evaluation runs the rig's code: (1) :meth:`InferenceLoop.due` on each new robot state, (2) :meth:`~InferenceLoop.plan`
(d, the prefix, the guidance settings), (3) :meth:`~InferenceLoop.sample` (or another chunk source: the scripted
expert), then publish after the latency (wall time
on the rig, simulated in the runner), (4) :meth:`~InferenceLoop.published`.

Time: all stamps are executor-clock seconds (t_obs of robot states and chunks), so comparisons use one clock;
Δt = one action step [s]; s = execution horizon, d = inference delay [action steps].
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .base import Observation
from .chunk_sampler import ChunkResult, ChunkSampler, GuidanceSettings, PreviousChunk

NS_PER_S = 1_000_000_000
STAMP_TOLERANCE_S = 1e-4  # state stamps are compared to the trigger time within this
AUTO_DELAY = "auto"
DelaySource = Literal["fixed", "executor", "own_latency"]
PrefixSource = Literal["active", "last_published", "none"]


def stamp_key(t_s: float) -> int:
    """A chunk's identity: its t_obs stamp rounded to integer nanoseconds (as it travels in the header)."""
    return int(round(t_s * NS_PER_S))


def trigger_due(state_stamp_s: float, previous_t_obs_s: float | None, *, execution_horizon: int, dt_s: float) -> bool:
    """Sample the next chunk once the latest robot state is newer than, and s action steps past, the previous
    chunk's t_obs.

    The first chunk (no previous) is due at once. Example: t_obs_prev = 10.0 s, s = 50, Δt = 0.02 s -> due
    for states stamped ≥ 11.0 s.
    """
    if previous_t_obs_s is None:
        return True
    if state_stamp_s <= previous_t_obs_s:
        return False
    return state_stamp_s >= previous_t_obs_s + execution_horizon * dt_s - STAMP_TOLERANCE_S


def parse_inference_delay(value: object, horizon: int) -> int | None:
    """The ``inference_delay`` parameter: ``"auto"`` -> None (use the executor's d), else an int in [0, H].

    Raises ValueError with a reason for anything else (numeric strings such as ``"16"`` are accepted).
    """
    if isinstance(value, str):
        if value.strip().lower() == AUTO_DELAY:
            return None
        try:
            value = int(value.strip())
        except ValueError:
            raise ValueError(f"inference_delay must be 'auto' or an int in [0, {horizon}], got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"inference_delay must be 'auto' or an int in [0, {horizon}], got {value!r}")
    if not 0 <= int(value) <= horizon:
        raise ValueError(f"inference_delay must be in [0, {horizon}] action steps, got {value}")
    return int(value)


# The own-latency fallback misses the transport and the observation's age: one more step, because guiding a
# step too many keeps the switch continuous, one too few lets the executed step be barely guided.
OWN_LATENCY_MARGIN_STEPS = 1


def resolve_delay(
    fixed: int | None, executor_d: int | None, *, last_latency_s: float | None, dt_s: float, horizon: int
) -> tuple[int, DelaySource]:
    """The d to guide with: the fixed parameter, else the executor's estimate, else ⌈own latency / Δt⌉ + 1.

    The last fallback (before the executor has measured δ) sees only this node's share of δ, hence the margin.
    Example: Δt = 20 ms, own latency 0.31 s -> 16 + 1 = 17.
    """
    if fixed is not None:
        return int(fixed), "fixed"
    if executor_d is not None:
        return int(np.clip(executor_d, 0, horizon)), "executor"
    if last_latency_s is None or not math.isfinite(last_latency_s):
        return 0, "own_latency"
    d = math.ceil(last_latency_s / dt_s - 1e-9) + OWN_LATENCY_MARGIN_STEPS
    return int(np.clip(d, 0, horizon)), "own_latency"


class ChunkHistory:
    """The last few published chunks keyed by stamp, to guide toward the one the executor actually executes."""

    def __init__(self, capacity: int = 8) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._chunks: OrderedDict[int, PreviousChunk] = OrderedDict()

    def __len__(self) -> int:
        return len(self._chunks)

    def add(self, chunk: PreviousChunk) -> None:
        self._chunks[stamp_key(chunk.t_obs_s)] = chunk
        while len(self._chunks) > self.capacity:
            self._chunks.popitem(last=False)

    def last(self) -> PreviousChunk | None:
        return next(reversed(self._chunks.values()), None)

    def select(self, active_stamp_ns: int | None) -> tuple[PreviousChunk | None, PrefixSource]:
        """The chunk the executor executes (``active_stamp_ns`` from its active-chunk header).

        None (the executor never reported one) -> the last published chunk; a stamp this node did not publish
        (or no longer keeps, or zero: nothing active) -> no prefix.
        """
        if active_stamp_ns is None:
            last = self.last()
            return last, ("last_published" if last is not None else "none")
        chunk = self._chunks.get(int(active_stamp_ns))
        return chunk, ("active" if chunk is not None else "none")


@dataclass(frozen=True)
class LoopSettings:
    """The inference node's run-time parameters one chunk reads (``app/inference_params.py`` declares them).

    execution_horizon: s [action steps]; inference_delay: a fixed d [action steps], None = ``auto`` (the
    executor's estimate, else this loop's own latency); max_guidance_weight: β; mode / schedule: the guidance;
    with_unguided: also sample the unguided chunk from the same noise (diagnostics).
    """

    execution_horizon: int
    inference_delay: int | None = None
    max_guidance_weight: float = 10.0
    mode: str = "stop"
    schedule: str = "exp"
    with_unguided: bool = False

    @staticmethod
    def from_params(p: dict[str, Any], horizon: int) -> LoopSettings:
        """From the node's parameter values (``inference_delay`` as the parameter spells it)."""
        return LoopSettings(execution_horizon=int(p["execution_horizon"]),
                            inference_delay=parse_inference_delay(p["inference_delay"], horizon),
                            max_guidance_weight=float(p["max_guidance_weight"]), mode=p["guidance_mode"],
                            schedule=p["prefix_schedule"], with_unguided=bool(p["publish_unguided"]))  # fmt: skip


@dataclass(frozen=True)
class ChunkPlan:
    """What one chunk will be sampled with: the guidance settings (d, s, β, mode), the chunk it is guided toward
    (None: unguided) and where d and the prefix came from; ``back_to_back``: d > s (inference cannot keep up)."""

    settings: GuidanceSettings
    previous: PreviousChunk | None
    d_source: DelaySource
    prefix_source: PrefixSource
    back_to_back: bool
    with_unguided: bool = False


@dataclass
class LoopCounts:
    """Counters reported in the inference node's diagnostics."""

    chunks: int = 0
    back_to_back: int = 0
    stale_waits: int = 0
    errors: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"chunks": self.chunks, "back_to_back": self.back_to_back, "stale_waits": self.stale_waits,
                "errors": self.errors}  # fmt: skip


@dataclass
class InferenceLoop:
    """The inference node's decisions from one chunk to the next (see the module docstring); use from one thread.

    horizon: H [action steps]; dt_s: Δt [s]; history_capacity: published chunks kept (``chunk_history``); seed: of
    the PRNG key the chunks' noise is split from (``seed``), one split per sampled chunk.
    """

    horizon: int
    dt_s: float
    history_capacity: int = 8
    seed: int = 0
    previous_t_obs_s: float | None = None
    last_latency_s: float | None = None
    counts: LoopCounts = field(default_factory=LoopCounts)

    def __post_init__(self) -> None:
        self.history = ChunkHistory(self.history_capacity)
        self._key: Any = None

    def due(self, state_stamp_s: float, execution_horizon: int) -> bool:
        """Whether a robot state stamped ``state_stamp_s`` is the observation of the next chunk."""
        return trigger_due(state_stamp_s, self.previous_t_obs_s, execution_horizon=execution_horizon, dt_s=self.dt_s)

    def rebase(self) -> None:
        """The executor's time base moved (restart, reset): the next state is due at once."""
        self.previous_t_obs_s = None

    def plan(self, settings: LoopSettings, *, executor_d: int | None, active_stamp_ns: int | None) -> ChunkPlan:
        """d (fixed, the executor's, or this loop's own latency) and the chunk to guide toward (the one the
        executor reports active, else the last published) for the next chunk."""
        d, d_source = resolve_delay(settings.inference_delay, executor_d, last_latency_s=self.last_latency_s,
                                    dt_s=self.dt_s, horizon=self.horizon)  # fmt: skip
        previous, prefix_source = self.history.select(active_stamp_ns)
        guidance = GuidanceSettings(inference_delay=d, execution_horizon=settings.execution_horizon,
                                    max_guidance_weight=settings.max_guidance_weight, mode=settings.mode,  # type: ignore[arg-type]
                                    schedule=settings.schedule)  # type: ignore[arg-type]  # fmt: skip
        back_to_back = self.previous_t_obs_s is not None and d > settings.execution_horizon
        return ChunkPlan(guidance, previous, d_source, prefix_source, back_to_back, settings.with_unguided)

    def sample(self, sampler: ChunkSampler, observation: Observation, plan: ChunkPlan) -> ChunkResult:
        """The chunk for ``observation`` (t_obs = its stamp) as ``plan`` says; a new noise key per call."""
        import jax

        if self._key is None:
            self._key = jax.random.key(int(self.seed))
        self._key, sub = jax.random.split(self._key)
        return sampler.sample(observation, previous=plan.previous, settings=plan.settings, key=sub,
                              with_unguided=plan.with_unguided)  # fmt: skip

    def published(self, actions: np.ndarray, t_obs_s: float, plan: ChunkPlan, *, latency_s: float) -> None:
        """Record a chunk ``actions[H, D]`` (t_obs ``t_obs_s``) that went out ``latency_s`` after its observation was
        taken in (the own-latency fallback of d)."""
        self.last_latency_s = latency_s
        self.history.add(PreviousChunk(np.asarray(actions), float(t_obs_s)))
        self.previous_t_obs_s = float(t_obs_s)
        self.counts.chunks += 1
        self.counts.back_to_back += int(plan.back_to_back)
