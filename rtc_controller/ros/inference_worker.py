"""The inference node's worker thread: it owns JAX, loads the policy, compiles and warms every mode, then loops.

Each pass drives the ROS-free ``policy.inference_loop.InferenceLoop`` (the decisions the in-process evaluation runs
too): wait until the latest robot state is s·Δt past the previous chunk's t_obs (executor stamps only: one clock),
snapshot the observation, guide toward the chunk the executor executes, sample, wait ``extra_latency_s``, publish
stamped with the robot-state stamp (t_obs) and guided d, and report in diagnostics. β, mode, schedule, s
and d apply to the next chunk without recompiling (``num_steps`` recompiles once, here).

"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from diagnostic_msgs.msg import DiagnosticStatus

from rtc_controller.policy.base import Observation
from rtc_controller.policy.chunk_sampler import mode_refusal
from rtc_controller.ros.inference_diagnostics import InferenceDiagnostics
from rtc_controller.ros.inference_guards import InferenceGuards
from rtc_controller.app.inference_params import policy_params

__all__ = ["InferenceWorker", "Snapshot"]

WORKER_POLL_S = 0.05  # the worker re-checks its inputs at least this often
ERROR_BACKOFF_S = 0.5  # after a failed chunk

# (Observation, executor d, active chunk stamp key) when a chunk is due; None when not due; "stale" when the inputs
# are older than max_observation_age_s.
Snapshot = tuple[Observation, "int | None", "int | None"] | None | str


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
        snapshot: Callable[[Callable[[float, int], bool], int, float], Snapshot],
        publish: Callable[[Any, float, int], None],
        guards: InferenceGuards,
        diagnostics: InferenceDiagnostics,
        logger,
        wake: threading.Event,
        stop: threading.Event,
    ) -> None:
        """``params()``: a copy of the node's parameters; ``snapshot(due, s, max age)``: the inputs when
        ``due(state stamp, s)`` says a chunk is due; ``publish(result, t_obs_s, d)``: publish a sampled chunk."""
        self.names, self.dt_s, self.horizon, self.section = names, dt_s, horizon, section
        self._params, self._snapshot, self._publish = params, snapshot, publish
        self._guards, self._diag, self._log = guards, diagnostics, logger
        self._wake, self._stop = wake, stop
        self._policy = None  # set once loaded: which guidance modes it takes

    def run(self) -> None:
        """Load, warm up and sample until ``stop`` is set (raises what kills the worker)."""
        from rtc_controller.policy.inference_loop import InferenceLoop

        p = self._params()
        _use_compilation_cache(p)
        sampler = self._load(p)
        loop = InferenceLoop(self.horizon, self.dt_s, history_capacity=int(p["chunk_history"]), seed=int(p["seed"]))
        can_fake = hasattr(sampler.policy, "fake_observation")
        while not self._stop.is_set():
            p = self._params()
            if sampler.num_steps != int(p["num_steps"]):
                sampler.num_steps = int(p["num_steps"])
            if not sampler.is_warm and can_fake:
                self._warmup(sampler, None)
            self._wake.wait(WORKER_POLL_S)
            self._wake.clear()
            due = self._due(loop, sampler, p)
            if due is not None:
                self._sample_and_publish(loop, sampler, p, *due)

    def _load(self, p: dict[str, Any]):
        """The policy the parameters name, checked against the node's H and names, in a ChunkSampler."""
        from rtc_controller.policy.chunk_sampler import ChunkSampler
        from rtc_controller.app.policies import make_policy

        params = policy_params(p, section=self.section, horizon=self.horizon, dt_s=self.dt_s, names=self.names)
        self._diag.set(state="loading policy")
        policy = make_policy(p["policy"], **params)
        if policy.horizon != self.horizon or tuple(policy.action_names) != self.names:
            raise ValueError(
                f"policy has H = {policy.horizon}, names {policy.action_names}; the node is configured for "
                f"H = {self.horizon}, names {self.names}"
            )
        if (why := mode_refusal(policy, p["guidance_mode"])) is not None:
            raise ValueError(why)
        self._policy = policy
        return ChunkSampler(policy, dt_s=self.dt_s, num_steps=int(p["num_steps"]),
                            bid_samples=int(p["bid_samples"]))

    def mode_refusal(self, mode: str) -> str | None:
        """Why the loaded policy cannot be sampled in guidance ``mode`` (None: it can, or it is not loaded yet:
        the load then refuses it)."""
        return None if self._policy is None else mode_refusal(self._policy, mode)

    def _warmup(self, sampler, observation: Observation | None) -> None:
        self._diag.set(state=f"compiling (num_steps={sampler.num_steps})")
        from rtc_controller.policy.compilation_cache import CompileCounter

        with CompileCounter() as compiles:
            warm_s = sampler.warmup(observation)
        self._log.info(f"compiled and warmed every mode in {warm_s:.1f} s (num_steps={sampler.num_steps}; "
                       f"{compiles.compiled} compiled, {compiles.cache_hits} loaded from the compilation cache)")
        self._diag.set(state="ready", warmup_s=warm_s)

    def _due(self, loop, sampler, p: dict[str, Any]):
        """(observation, executor d, active stamp) when a chunk is due and can be sampled now, else None (paused,
        not due, stale inputs, or warming up on this first real observation)."""
        if self._guards.rebased.is_set():  # the executor's time base moved: t_obs starts over
            self._guards.rebased.clear()
            loop.rebase()
        if (paused := self._guards.pause_reason(p)) is not None:
            self._diag.set(DiagnosticStatus.ERROR, state=f"paused: {paused}")
            return None
        snapshot = self._snapshot(loop.due, int(p["execution_horizon"]), float(p["max_observation_age_s"]))
        if snapshot is None:
            return None
        if snapshot == "stale":
            loop.counts.stale_waits += 1
            self._diag.set(DiagnosticStatus.WARN, state="waiting: stale observation", **loop.counts.as_dict())
            return None
        if not sampler.is_warm:  # a policy without fake inputs warms up on its first real observation
            self._warmup(sampler, snapshot[0])
            return None
        return snapshot

    def _sample_and_publish(self, loop, sampler, p: dict[str, Any], observation: Observation,
                            executor_d: int | None, active_ns: int | None) -> None:  # fmt: skip
        """Guide toward the executor's active chunk, sample, publish after ``extra_latency_s``, report."""
        from rtc_controller.policy.inference_loop import LoopSettings

        plan = loop.plan(LoopSettings.from_params(p, self.horizon), executor_d=executor_d, active_stamp_ns=active_ns)
        start = time.monotonic()
        try:
            result = loop.sample(sampler, observation, plan)
        except Exception as exc:  # noqa: BLE001 — report, keep the node alive, publish nothing
            loop.counts.errors += 1
            self._log.error(f"sampling failed: {type(exc).__name__}: {exc}")
            self._diag.set(DiagnosticStatus.ERROR, state=f"sampling failed: {exc}", **loop.counts.as_dict())
            self._stop.wait(ERROR_BACKOFF_S)
            return
        extra = float(p["extra_latency_s"])
        if extra > 0:
            self._stop.wait(max(0.0, extra - (time.monotonic() - start)))
        self._publish(result, observation.stamp_s, plan.settings.inference_delay)
        latency = time.monotonic() - start
        loop.published(result.actions, observation.stamp_s, plan, latency_s=latency)
        if loop.counts.chunks == 1:
            self._log.info(f"first chunk published (t_obs {observation.stamp_s:.3f} s, {latency:.3f} s)")
        self._report(result, plan, loop, latency_s=latency, extra_latency_s=extra, num_steps=sampler.num_steps,
                     t_obs_s=observation.stamp_s)  # fmt: skip

    def _report(self, result, plan, loop, *, latency_s: float, extra_latency_s: float, num_steps: int,
                t_obs_s: float) -> None:  # fmt: skip
        """One chunk's statistics into diagnostics, published at once."""
        settings = plan.settings
        self._diag.set(
            DiagnosticStatus.WARN if plan.back_to_back else DiagnosticStatus.OK,
            state="back to back: d > s" if plan.back_to_back else "running",
            latency_s=latency_s,
            prepare_s=result.prepare_s,
            sample_s=result.sample_s,
            extra_latency_s=extra_latency_s,
            d_used=settings.inference_delay,
            d_source=plan.d_source,
            prefix_source=plan.prefix_source,
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
            **_bid_values(result.candidate_losses),
            **loop.counts.as_dict(),
        )
        self._diag.publish()


def _bid_values(losses) -> dict[str, Any]:
    """BID's diagnostics: candidates N, the kept and the median backward-coherence loss (0 and NaN outside BID)."""
    if losses is None:
        return {"bid_candidates": 0, "bid_loss_kept": float("nan"), "bid_loss_median": float("nan")}
    return {"bid_candidates": len(losses), "bid_loss_kept": float(np.min(losses)),
            "bid_loss_median": float(np.median(losses))}  # fmt: skip


def _use_compilation_cache(p: dict[str, Any]) -> None:
    """Later starts load the compiled sampler instead of compiling it again (``compilation_cache_dir``)."""
    from rtc_controller.policy.compilation_cache import enable_compilation_cache

    model = str(p["policy"]) + (f"-{Path(str(p['policy_config'])).stem}" if p["policy_config"] else "")
    enable_compilation_cache(str(p["compilation_cache_dir"]), model)
