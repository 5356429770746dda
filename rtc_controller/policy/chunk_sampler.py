"""The ROS-free inference core: one RTC-guided action chunk from a policy, an observation and the previous chunk.

Per chunk (DESIGN.md, "RTC guidance"):
1. ``context = policy.prepare(observation)`` (traced pytree: a new observation never recompiles);
2. prefix Y[i] = A_prev[i + m], m = round((t_obs − t_obs_prev)/Δt) (``rtc.build_prefix``), mapped to model
   space with ``policy.to_model``; weights W = ``rtc.prefix_weights(d, H − s, H, schedule)`` ⊙ valid (never
   guide toward padding);
3. ``rtc.sample(policy.velocity, noise, context=…, prefix=Y, weights=W, β, mode)`` -> ``policy.to_physical``.
Optionally the unguided chunk from the same noise (debugging, statistics). Step 1 can be run once with
``ChunkSampler.prepare`` and its result passed to several ``sample`` calls (``prepared=``): the offline replay
re-samples one observation for many modes and β this way, through the same code path as the inference node.

Compilation: the sampler compiles once per (policy, num_steps, guided mode or unguided); d, s, β, the
schedule's weights and the observation are traced or computed outside, so changing them never recompiles.
Mode ``none`` is sampled with the unguided variant (identical: v' = v; keyed ``mode="none"``, as other callers of
``rtc.sample`` key it, so they share one compilation). ``warmup`` compiles all of it.

Axes: H = horizon (action steps), D = physical action dim, Dm = model action dim; batch is 1.
Time: action k of a chunk is due at t_obs + k·Δt [s, executor clock]; flow time t = 1 is noise, 0 is data.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rtc_controller.rtc import (
    GUIDANCE_MODES,
    MAX_CANDIDATES,
    PREFIX_CONDITIONED_MODES,
    PREFIX_SCHEDULES,
    GuidanceMode,
    PrefixSchedule,
    build_prefix,
    guidance_weight_refusal,
    prefix_weights,
    sample,
    sample_best_of_n,
)

from .base import FlowPolicy, Observation

GUIDED_MODES: tuple[GuidanceMode, ...] = ("stop", "full", "hard", "trained", "bid")  # each its own compilation


def trained_prefix_steps(policy: FlowPolicy) -> int:
    """The longest clean prefix ``policy`` was trained with (training-time RTC; 0: none, ``trained`` refused)."""
    return int(getattr(policy, "rtc_training_max_delay", 0) or 0)


def supported_modes(policy: FlowPolicy) -> tuple[str, ...]:
    """The guidance modes ``policy`` can be sampled with (``trained`` only after training-time RTC)."""
    return tuple(m for m in GUIDANCE_MODES if m not in PREFIX_CONDITIONED_MODES or trained_prefix_steps(policy) > 0)


def mode_refusal(policy: FlowPolicy, mode: str) -> str | None:
    """Why ``policy`` cannot be sampled in ``mode`` (None: it can)."""
    if mode in PREFIX_CONDITIONED_MODES and trained_prefix_steps(policy) <= 0:
        return (f"guidance_mode {mode!r} needs a policy trained with training-time RTC (a clean prefix at flow time "
                f"0: rtc_training_max_delay > 0 in its policy section); this policy was not")
    return None


@dataclass(frozen=True)
class GuidanceSettings:
    """Per-chunk RTC settings; changing any of them never recompiles.

    inference_delay: d [action steps], actions 0 … d−1 of the new chunk are frozen (executed from the previous
    chunk while inference runs); execution_horizon: s [action steps] between chunks, the weights end at H − s;
    max_guidance_weight: β; mode: ``stop`` | ``full`` | ``none`` | ``hard`` | ``trained`` | ``bid``; schedule:
    the soft mask's decay (modes ``hard`` and ``trained`` always use the hard mask, ``zeros``; ``bid`` weighs its
    backward coherence with it).
    """

    inference_delay: int
    execution_horizon: int
    max_guidance_weight: float = 10.0
    mode: GuidanceMode = "stop"
    schedule: PrefixSchedule = "exp"

    def __post_init__(self) -> None:
        if isinstance(self.inference_delay, bool) or not isinstance(self.inference_delay, (int, np.integer)):
            raise ValueError(f"inference_delay must be an int [steps], got {self.inference_delay!r}")
        if self.inference_delay < 0:
            raise ValueError(f"inference_delay must be >= 0, got {self.inference_delay}")
        if isinstance(self.execution_horizon, bool) or not isinstance(self.execution_horizon, (int, np.integer)):
            raise ValueError(f"execution_horizon must be an int [steps], got {self.execution_horizon!r}")
        if self.execution_horizon < 1:
            raise ValueError(f"execution_horizon must be >= 1, got {self.execution_horizon}")
        if (why := guidance_weight_refusal(self.max_guidance_weight)) is not None:
            raise ValueError(why)
        if self.mode not in GUIDANCE_MODES:
            raise ValueError(f"unknown guidance mode {self.mode!r}; expected one of {GUIDANCE_MODES}")
        if self.schedule not in PREFIX_SCHEDULES:
            raise ValueError(f"unknown prefix schedule {self.schedule!r}; expected one of {PREFIX_SCHEDULES}")

    def check_horizon(self, horizon: int) -> None:
        """RTC needs 1 ≤ s ≤ H (and d ≤ s, reported per chunk rather than refused)."""
        if self.execution_horizon > horizon:
            raise ValueError(f"execution_horizon {self.execution_horizon} exceeds the horizon H = {horizon}")


@dataclass(frozen=True)
class PreviousChunk:
    """A chunk that was published (and, ideally, is being executed): physical ``actions`` [H, D] at ``t_obs_s``."""

    actions: np.ndarray
    t_obs_s: float


class Guidance(NamedTuple):
    """The guidance target of one chunk, physical units."""

    prefix: np.ndarray  # Y, [H, D]
    weights: np.ndarray  # W ⊙ valid, [H] float32
    shift_steps: int  # m


def build_guidance(
    previous: PreviousChunk, *, t_obs_s: float, dt_s: float, settings: GuidanceSettings, horizon: int,
    max_prefix_steps: int | None = None,
) -> Guidance:
    """Y and W for a chunk at ``t_obs_s`` guided toward ``previous`` (DESIGN.md): W is zero where i + m ≥ H.

    Modes ``hard`` and ``trained`` take exactly the frozen actions (i < d): the hard mask (the "zeros" schedule);
    ``trained`` at most ``max_prefix_steps`` of them (the longest clean prefix the policy was trained with; the
    executor still executes the rest from the previous chunk).
    Example: H = 10, m = 6, d = 2, s = 4 (end = 6), linear -> Y = A_prev[6 … 9] then padding,
    W = 1 1 4/5 3/5 0 0 0 0 0 0 (the schedule, cut where the previous chunk ends).
    """
    if previous.actions.shape[0] != horizon:
        raise ValueError(f"previous chunk has {previous.actions.shape[0]} actions, the policy's horizon is {horizon}")
    pre = build_prefix(previous.actions, t_obs_prev_s=previous.t_obs_s, t_obs_s=t_obs_s, dt_s=dt_s)
    d = settings.inference_delay
    if settings.mode == "trained" and max_prefix_steps is not None:
        d = min(d, max_prefix_steps)
    schedule = "zeros" if settings.mode in ("hard", "trained") else settings.schedule
    w = prefix_weights(d, horizon - settings.execution_horizon, horizon, schedule)
    return Guidance(pre.actions, np.asarray(w, np.float32) * pre.valid, pre.shift_steps)


@dataclass(frozen=True)
class PreparedObservation:
    """An observation with its policy context (``ChunkSampler.prepare``): one prefix pass, several chunks.

    context: ``policy.prepare(observation)`` (pytree of device arrays); prepare_s: how long that took [s].
    """

    observation: Observation
    context: Any
    prepare_s: float


@dataclass(frozen=True)
class ChunkResult:
    """One sampled chunk with what was used to make it and how long it took.

    actions / unguided: physical [H, D] (unguided: same noise, no guidance; None unless asked for).
    weights: W [H] actually used (all zero when there was no prefix); shift_steps: m (None without prefix).
    candidate_losses: mode ``bid``, every candidate's backward coherence L_n [N] (model space; the kept chunk is
    the argmin), else None.
    frozen_error / unguided_frozen_error: RMS of (chunk − Y) over the frozen steps i < d where W > 0
    (physical units; NaN when there are none). jump_at_d: ‖A[d] − Y[d]‖₂ (NaN without prefix at d), the jump
    the executor would see when it switches at k* = d. prepare_s: the prefix pass run for this chunk [s]
    (≈ 0 when a ``PreparedObservation`` was passed in); total_s = prepare_s + sample_s.
    """

    actions: np.ndarray
    unguided: np.ndarray | None
    t_obs_s: float
    settings: GuidanceSettings
    weights: np.ndarray
    shift_steps: int | None
    frozen_error: float
    unguided_frozen_error: float
    jump_at_d: float
    prepare_s: float
    sample_s: float
    total_s: float
    candidate_losses: np.ndarray | None = None

    @property
    def guided(self) -> bool:
        return self.settings.mode != "none" and bool(np.any(self.weights > 0))

    @property
    def delay_exceeds_execution_horizon(self) -> bool:
        """RTC assumes d ≤ s; beyond it, inference runs back to back."""
        return self.settings.inference_delay > self.settings.execution_horizon


def _frozen_rms(chunk: np.ndarray, prefix: np.ndarray, weights: np.ndarray, d: int) -> float:
    mask = (np.arange(len(weights)) < d) & (weights > 0)
    if not mask.any():
        return float("nan")
    return float(np.sqrt(np.mean((chunk[mask] - prefix[mask]) ** 2)))


def _chunk_stats(actions: np.ndarray, unguided: np.ndarray | None, guidance: Guidance | None, *, use_prefix: bool,
                 d: int, horizon: int) -> tuple[np.ndarray, int | None, float, float, float]:  # fmt: skip
    """(W used, m, frozen error, unguided frozen error, jump at d) of a chunk (see :class:`ChunkResult`)."""
    if guidance is None:
        weights, shift, nan = np.zeros(horizon, np.float32), None, float("nan")
        frozen = unguided_frozen = jump = nan
        return weights, shift, frozen, unguided_frozen, jump
    weights, shift = (guidance.weights if use_prefix else np.zeros_like(guidance.weights)), guidance.shift_steps
    frozen = _frozen_rms(actions, guidance.prefix, guidance.weights, d)
    unguided_frozen = float("nan") if unguided is None else _frozen_rms(unguided, guidance.prefix, guidance.weights, d)
    in_prefix = d < horizon and d + guidance.shift_steps < horizon
    jump = float(np.linalg.norm(actions[d] - guidance.prefix[d])) if in_prefix else float("nan")
    return weights, shift, frozen, unguided_frozen, jump


class ChunkSampler:
    """Samples RTC-guided chunks for one policy (owns the jit caches; use it from one thread).

    bid_samples: N, the candidates of mode ``bid`` (a static shape: fixed for the sampler's life).
    """

    def __init__(self, policy: FlowPolicy, *, dt_s: float, num_steps: int = 10, bid_samples: int = 8) -> None:
        if not dt_s > 0:
            raise ValueError(f"dt_s must be > 0, got {dt_s}")
        if isinstance(bid_samples, bool) or not isinstance(bid_samples, (int, np.integer)) or not (
                1 <= bid_samples <= MAX_CANDIDATES):  # fmt: skip
            raise ValueError(f"bid_samples must be an int in [1, {MAX_CANDIDATES}], got {bid_samples!r}")
        self.policy = policy
        self.dt_s = float(dt_s)
        self.horizon = int(policy.horizon)
        self.num_steps = num_steps
        self.bid_samples = int(bid_samples)
        self._warm_steps: set[int] = set()

    @property
    def num_steps(self) -> int:
        return self._num_steps

    @num_steps.setter
    def num_steps(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"num_steps must be an int >= 1, got {value!r}")
        self._num_steps = int(value)

    @property
    def is_warm(self) -> bool:
        """Whether every variant for the current ``num_steps`` is compiled (``warmup`` ran for it)."""
        return self._num_steps in self._warm_steps

    def warmup(self, observation: Observation | None = None) -> float:
        """Compile every variant (unguided; every guided mode with a prefix; every schedule's weights) [s spent].

        ``observation`` defaults to the policy's ``fake_observation()`` where it has one.
        """
        start = time.perf_counter()
        policy_warmup = getattr(self.policy, "warmup", None)  # optional: shapes a single observation misses
        if policy_warmup is not None:
            policy_warmup()
        if observation is None:
            fake = getattr(self.policy, "fake_observation", None)
            if fake is None:
                raise ValueError("warmup needs an observation (this policy has no fake_observation())")
            observation = fake()
        key = jax.random.key(0)
        s = max(1, self.horizon // 2)
        prepared = self.prepare(observation)
        first = self.sample(observation, previous=None, settings=GuidanceSettings(0, s), key=key, prepared=prepared)
        previous = PreviousChunk(first.actions, observation.stamp_s - s * self.dt_s)
        for schedule in PREFIX_SCHEDULES:
            prefix_weights(1, self.horizon - s, self.horizon, schedule)
        for mode in supported_modes(self.policy):
            settings = GuidanceSettings(1, s, mode=mode)
            self.sample(observation, previous=previous, settings=settings, key=key, with_unguided=True,
                        prepared=prepared)
        self._warm_steps.add(self._num_steps)
        return time.perf_counter() - start

    def prepare(self, observation: Observation) -> PreparedObservation:
        """Run the policy's conditioning pass for ``observation`` once (pass the result to ``sample(prepared=…)``)."""
        t0 = time.perf_counter()
        context = self.policy.prepare(observation)
        jax.block_until_ready(context)
        return PreparedObservation(observation, context, time.perf_counter() - t0)

    def sample(
        self,
        observation: Observation,
        *,
        previous: PreviousChunk | None,
        settings: GuidanceSettings,
        key: jax.Array,
        with_unguided: bool = False,
        prepared: PreparedObservation | None = None,
        noise: np.ndarray | None = None,
    ) -> ChunkResult:
        """One chunk conditioned on ``observation`` (its ``stamp_s`` is t_obs), guided toward ``previous``.

        ``previous`` None (first chunk) or without overlap (m ≥ H) samples unguided. ``key``: PRNG key of the
        noise [1, H, Dm] (the same key gives the same noise); the unguided chunk (``with_unguided``) uses the same
        noise. ``prepared``: ``self.prepare(observation)`` to reuse instead of running the conditioning pass again
        (ValueError when it was prepared from another observation object). ``noise``: the state at t = 1,
        [1, H, Dm], instead of drawing it from ``key`` (parity checks against a reference that saved its noise).
        Mode ``bid`` draws N = ``bid_samples`` noises [N, H, Dm] (``noise`` must then have that shape); without a
        prefix it keeps the first, and the unguided chunk is the first candidate.
        """
        settings.check_horizon(self.horizon)
        if (why := mode_refusal(self.policy, settings.mode)) is not None:
            raise ValueError(why)
        t0 = time.perf_counter()
        context = self._context(observation, prepared)
        t1 = time.perf_counter()
        noise = self._noise(key, noise, self.bid_samples if settings.mode == "bid" else 1)
        guidance = None
        if previous is not None:
            guidance = build_guidance(previous, t_obs_s=observation.stamp_s, dt_s=self.dt_s, settings=settings,
                                      horizon=self.horizon, max_prefix_steps=trained_prefix_steps(self.policy))  # fmt: skip
        use_prefix = guidance is not None and settings.mode != "none" and bool(np.any(guidance.weights > 0))
        x, unguided_model, losses = self._denoise(noise, context, observation, guidance if use_prefix else None,
                                                  settings, with_unguided=with_unguided)  # fmt: skip
        actions = self.policy.to_physical(np.asarray(x), observation)[0]
        unguided = None if unguided_model is None else self.policy.to_physical(np.asarray(unguided_model), observation)[0]
        t2 = time.perf_counter()
        weights, shift, frozen, unguided_frozen, jump = _chunk_stats(
            actions, unguided, guidance, use_prefix=use_prefix, d=settings.inference_delay, horizon=self.horizon
        )
        return ChunkResult(
            actions=actions,
            unguided=unguided,
            t_obs_s=float(observation.stamp_s),
            settings=settings,
            weights=np.asarray(weights),
            shift_steps=shift,
            frozen_error=frozen,
            unguided_frozen_error=unguided_frozen,
            jump_at_d=jump,
            prepare_s=t1 - t0,
            sample_s=t2 - t1,
            total_s=t2 - t0,
            candidate_losses=losses,
        )

    def _context(self, observation: Observation, prepared: PreparedObservation | None) -> Any:
        """The policy context for ``observation``: ``prepared``'s, or a conditioning pass now."""
        if prepared is None:
            return self.prepare(observation).context
        if prepared.observation is not observation:
            raise ValueError(
                "prepared context belongs to another observation: pass the observation it was prepared from"
            )
        return prepared.context

    def _noise(self, key: jax.Array, noise: np.ndarray | None, rows: int) -> jax.Array:
        """The state at t = 1, [rows, H, Dm]: ``noise`` as given (shape-checked) or drawn from ``key``."""
        shape = (rows, self.horizon, self.policy.model_action_dim)
        if noise is None:
            noise = jax.random.normal(key, shape, jnp.float32)
        elif np.shape(noise) != shape:
            raise ValueError(f"noise must be {list(shape)} [candidates, horizon, model action dim], got "
                             f"{list(np.shape(noise))}")
        return jnp.asarray(noise, jnp.float32)

    def _denoise(self, noise: jax.Array, context: Any, observation: Observation, guidance: Guidance | None,
                 settings: GuidanceSettings, *, with_unguided: bool) -> tuple[jax.Array, jax.Array | None, Any]:  # fmt: skip
        """(x₀ [1, H, Dm], the unguided x₀ from the same noise or None, BID's losses [N] or None): guided toward
        ``guidance`` when given (mode ``bid``: the best of the N noises' unguided chunks)."""
        first = noise[:1]
        if guidance is None:
            x = sample(self.policy.velocity, first, num_steps=self._num_steps, mode="none", context=context)
            return x, (x if with_unguided else None), None
        prefix_model = jnp.asarray(self.policy.to_model(guidance.prefix[None], observation), jnp.float32)
        if settings.mode == "bid":  # candidate 0 is the unguided chunk of the first noise row: not sampled again
            best = sample_best_of_n(self.policy.velocity, noise, prefix=prefix_model, weights=guidance.weights,
                                    num_steps=self._num_steps, context=context)  # fmt: skip
            return best.actions, (best.first if with_unguided else None), np.asarray(best.losses)
        x = sample(self.policy.velocity, first, num_steps=self._num_steps, prefix=prefix_model,
                   weights=jnp.asarray(guidance.weights), max_guidance_weight=float(settings.max_guidance_weight),
                   mode=settings.mode, context=context)  # fmt: skip
        unguided_model = None
        if with_unguided:
            unguided_model = sample(self.policy.velocity, first, num_steps=self._num_steps, mode="none", context=context)
        return x, unguided_model, None
