"""The inference node's worker thread: it owns JAX, loads the policy, compiles and warms every mode, then loops.

Each pass: wait until the latest robot state is s·Δt past the previous chunk's t_obs (executor stamps only: one
clock), snapshot the observation, guide toward the chunk the executor executes, sample, wait ``extra_latency_s``,
publish stamped with the robot-state stamp (t_obs) and guided d, and report in diagnostics. β, mode, schedule, s
and d apply to the next chunk without recompiling (``num_steps`` recompiles once, here).

JAX and the sampler are imported in the worker only: importing the node does not import JAX.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from diagnostic_msgs.msg import DiagnosticStatus

from rtc_controller.policy.base import Observation
from rtc_controller.policy.inference_loop import ChunkHistory, parse_inference_delay, resolve_delay
from rtc_controller.ros.inference_diagnostics import InferenceDiagnostics
from rtc_controller.ros.inference_guards import InferenceGuards
from rtc_controller.ros.inference_params import policy_params

__all__ = ["InferenceWorker", "Snapshot"]

WORKER_POLL_S = 0.05  # the worker re-checks its inputs at least this often
ERROR_BACKOFF_S = 0.5  # after a failed chunk

# (Observation, executor d, active chunk stamp key) when a chunk is due; None when not due; "stale" when the inputs
# are older than max_observation_age_s.
Snapshot = tuple[Observation, "int | None", "int | None"] | None | str


@dataclass
class _Progress:
    """What the loop carries from one chunk to the next."""

    key: Any  # the PRNG key the next chunk's noise is split from
    previous_t_obs: float | None = None
    last_latency_s: float | None = None
    counts: dict[str, int] = field(default_factory=lambda: {"chunks": 0, "back_to_back": 0, "stale_waits": 0,
                                                             "errors": 0})  # fmt: skip


class InferenceWorker:
    """The loop of the worker thread (:meth:`run`); the node wires it to its inputs, publishers and diagnostics."""

    def __init__(
        self,
        *,
        names: tuple[str, ...],
        dt_s: float,
        horizon: int,
        section,
        params: Callable[[], dict[str, Any]],
        snapshot: Callable[[float | None, int, float], Snapshot],
        publish: Callable[[Any, float, int], None],
        guards: InferenceGuards,
        diagnostics: InferenceDiagnostics,
        logger,
        wake: threading.Event,
        stop: threading.Event,
    ) -> None:
        """``params()``: a copy of the node's parameters; ``snapshot(previous t_obs, s, max age)``: the inputs when
        a chunk is due; ``publish(result, t_obs_s, d)``: publish a sampled chunk."""
        self.names, self.dt_s, self.horizon, self.section = names, dt_s, horizon, section
        self._params, self._snapshot, self._publish = params, snapshot, publish
        self._guards, self._diag, self._log = guards, diagnostics, logger
        self._wake, self._stop = wake, stop

    def run(self) -> None:
        """Load, warm up and sample until ``stop`` is set (raises what kills the worker)."""
        import jax  # the worker owns JAX

        p = self._params()
        _use_compilation_cache(jax, p)
        sampler = self._load(p)
        history = ChunkHistory(int(p["chunk_history"]))
        progress = _Progress(key=jax.random.key(int(p["seed"])))
        can_fake = hasattr(sampler.policy, "fake_observation")
        while not self._stop.is_set():
            p = self._params()
            if sampler.num_steps != int(p["num_steps"]):
                sampler.num_steps = int(p["num_steps"])
            if not sampler.is_warm and can_fake:
                self._warmup(sampler, None)
            self._wake.wait(WORKER_POLL_S)
            self._wake.clear()
            due = self._due(sampler, p, progress)
            if due is not None:
                self._sample_and_publish(sampler, history, p, progress, *due)

    def _load(self, p: dict[str, Any]):
        """The policy the parameters name, checked against the node's H and names, in a ChunkSampler."""
        from rtc_controller.policy.chunk_sampler import ChunkSampler
        from rtc_controller.policy.registry import make_policy

        params = policy_params(p, section=self.section, horizon=self.horizon, dt_s=self.dt_s, names=self.names)
        self._diag.set(state="loading policy")
        policy = make_policy(p["policy"], **params)
        if policy.horizon != self.horizon or tuple(policy.action_names) != self.names:
            raise ValueError(
                f"policy has H = {policy.horizon}, names {policy.action_names}; the node is configured for "
                f"H = {self.horizon}, names {self.names}"
            )
        return ChunkSampler(policy, dt_s=self.dt_s, num_steps=int(p["num_steps"]))

    def _warmup(self, sampler, observation: Observation | None) -> None:
        self._diag.set(state=f"compiling (num_steps={sampler.num_steps})")
        warm_s = sampler.warmup(observation)
        self._log.info(f"compiled and warmed every mode in {warm_s:.1f} s (num_steps={sampler.num_steps})")
        self._diag.set(state="ready", warmup_s=warm_s)

    def _due(self, sampler, p: dict[str, Any], progress: _Progress):
        """(observation, executor d, active stamp) when a chunk is due and can be sampled now, else None (paused,
        not due, stale inputs, or warming up on this first real observation)."""
        if self._guards.rebased.is_set():  # the executor's time base moved: t_obs starts over
            self._guards.rebased.clear()
            progress.previous_t_obs = None
        if (paused := self._guards.pause_reason(p)) is not None:
            self._diag.set(DiagnosticStatus.ERROR, state=f"paused: {paused}")
            return None
        s = int(p["execution_horizon"])
        snapshot = self._snapshot(progress.previous_t_obs, s, float(p["max_observation_age_s"]))
        if snapshot is None:
            return None
        if snapshot == "stale":
            progress.counts["stale_waits"] += 1
            self._diag.set(DiagnosticStatus.WARN, state="waiting: stale observation", **progress.counts)
            return None
        if not sampler.is_warm:  # a policy without fake inputs warms up on its first real observation
            self._warmup(sampler, snapshot[0])
            return None
        return snapshot

    def _sample_and_publish(self, sampler, history: ChunkHistory, p: dict[str, Any], progress: _Progress,
                            observation: Observation, executor_d: int | None, active_ns: int | None) -> None:  # fmt: skip
        """Guide toward the executor's active chunk, sample, publish after ``extra_latency_s``, report."""
        import jax

        from rtc_controller.policy.chunk_sampler import GuidanceSettings, PreviousChunk

        s = int(p["execution_horizon"])
        fixed = parse_inference_delay(p["inference_delay"], self.horizon)
        d, d_source = resolve_delay(
            fixed, executor_d, last_latency_s=progress.last_latency_s, dt_s=self.dt_s, horizon=self.horizon
        )
        previous, prefix_source = history.select(active_ns)
        settings = GuidanceSettings(
            inference_delay=d,
            execution_horizon=s,
            max_guidance_weight=float(p["max_guidance_weight"]),
            mode=p["guidance_mode"],
            schedule=p["prefix_schedule"],
        )
        progress.key, sub = jax.random.split(progress.key)
        start = time.monotonic()
        try:
            result = sampler.sample(
                observation, previous=previous, settings=settings, key=sub, with_unguided=bool(p["publish_unguided"])
            )
        except Exception as exc:  # noqa: BLE001 — report, keep the node alive, publish nothing
            progress.counts["errors"] += 1
            self._log.error(f"sampling failed: {type(exc).__name__}: {exc}")
            self._diag.set(DiagnosticStatus.ERROR, state=f"sampling failed: {exc}", **progress.counts)
            self._stop.wait(ERROR_BACKOFF_S)
            return
        extra = float(p["extra_latency_s"])
        if extra > 0:
            self._stop.wait(max(0.0, extra - (time.monotonic() - start)))
        self._publish(result, observation.stamp_s, d)
        latency = time.monotonic() - start
        progress.last_latency_s = latency
        history.add(PreviousChunk(result.actions, observation.stamp_s))
        back_to_back = progress.previous_t_obs is not None and d > s
        progress.previous_t_obs = observation.stamp_s
        progress.counts["chunks"] += 1
        if progress.counts["chunks"] == 1:
            self._log.info(f"first chunk published (t_obs {observation.stamp_s:.3f} s, {latency:.3f} s)")
        progress.counts["back_to_back"] += int(back_to_back)
        self._report(result, settings, progress, back_to_back=back_to_back, latency_s=latency, extra_latency_s=extra,
                     d_source=d_source, prefix_source=prefix_source, num_steps=sampler.num_steps,
                     t_obs_s=observation.stamp_s)  # fmt: skip

    def _report(self, result, settings, progress: _Progress, *, back_to_back: bool, latency_s: float,
                extra_latency_s: float, d_source: str, prefix_source: str, num_steps: int,
                t_obs_s: float) -> None:  # fmt: skip
        """One chunk's statistics into diagnostics, published at once."""
        self._diag.set(
            DiagnosticStatus.WARN if back_to_back else DiagnosticStatus.OK,
            state="back to back: d > s" if back_to_back else "running",
            latency_s=latency_s,
            prepare_s=result.prepare_s,
            sample_s=result.sample_s,
            extra_latency_s=extra_latency_s,
            d_used=settings.inference_delay,
            d_source=d_source,
            prefix_source=prefix_source,
            shift_steps=-1 if result.shift_steps is None else result.shift_steps,
            guided=result.guided,
            frozen_error=result.frozen_error,
            unguided_frozen_error=result.unguided_frozen_error,
            jump_at_d=result.jump_at_d,
            mode=settings.mode,
            max_guidance_weight=settings.max_guidance_weight,
            prefix_schedule=settings.schedule,
            execution_horizon=settings.execution_horizon,
            num_steps=num_steps,
            t_obs_s=t_obs_s,
            **progress.counts,
        )
        self._diag.publish()


def _use_compilation_cache(jax, p: dict[str, Any]) -> None:
    """Later starts load the compiled sampler instead of compiling it again (``compilation_cache_dir``)."""
    if p["compilation_cache_dir"]:
        jax.config.update("jax_compilation_cache_dir", os.path.expanduser(str(p["compilation_cache_dir"])))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
