"""The in-process episode runner (``rtc-eval``'s fast path, ``rtc-train collect``): the rig's executor core and the
inference node's loop driving the MuJoCo twin in simulated time, deterministic from a seed.

What runs is the code of the two nodes, not a copy of it:
- the executor: ``control.executor.Executor`` (timeline, delay estimator, safety filter, start-up supervisor) with
  the configuration ``executor_params.build_config`` makes from the executor node's parameters, ticked at its
  servo rate by this runner's clock, and the twin's ``MujocoDriver`` on the runner's world (each command steps the
  physics to the tick's time);
- the inference node: ``policy.inference_loop.InferenceLoop`` (when a chunk is due, d, the prefix, the history of
  published chunks) with the node's run-time settings; the chunk comes from ``make_chunk`` (the node's
  ``ChunkSampler`` for a flow policy, or the scripted expert).
Only transport and wall-clock timing differ from the processes over DDS: the robot state is "published" every
1/``state_rate_hz`` (the executor node's timer), the observation is taken from it (camera frames rendered at its
stamp), the world stands still while a chunk is computed, and the chunk reaches the executor exactly
``latency_s`` after its observation (so it switches in at k* = ⌈latency/Δt⌉). d follows the rig's rule: the
executor's estimate of δ once it has one, the loop's own latency (+1 step) before.

Time: t [s] = episode time since ``TwinWorld.reset`` = the executor's clock here (offset 0); Δt = 1/action rate.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from rtc_controller.analysis.motion import jerk_rms
from rtc_controller.control.chunk import Chunk
from rtc_controller.control.executor import Executor
from rtc_controller.control.executor_types import ExecutorConfig
from rtc_controller.control.timeline import Rejection
from rtc_controller.policy.base import Observation
from rtc_controller.policy.inference_loop import ChunkPlan, InferenceLoop, LoopSettings, stamp_key
from rtc_controller.sim.mujoco_driver import MujocoDriver, MujocoDriverConfig
from rtc_controller.sim.phases import PhaseTracker, nearest_gaps_s
from rtc_controller.sim.task import TaskMonitor
from rtc_controller.sim.world import TwinWorld

MONITOR_EVERY_S = 0.02  # task-monitor sample period [s]
TCP_COLUMNS = [0, 1, 2, 7, 8, 9]  # left then right TCP position in the two-arm Cartesian action space
MakeChunk = Callable[[Observation, ChunkPlan], np.ndarray]  # (observation, plan) -> actions [H, 14], physical


@dataclass(frozen=True)
class EpisodeConfig:
    """What the runner simulates around the two nodes: latency_s, the injected inference latency [s] (a chunk
    reaches the executor this long after its observation); state_rate_hz, the executor node's robot-state rate;
    camera_slots rendered into each observation (empty: none); record: per-action-step arrays in the result."""

    latency_s: float = 0.0
    state_rate_hz: float = 50.0
    camera_slots: tuple[str, ...] = ()
    record: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.latency_s) and self.latency_s >= 0):
            raise ValueError(f"latency_s must be finite and >= 0, got {self.latency_s}")
        if not self.state_rate_hz > 0:
            raise ValueError(f"state_rate_hz must be > 0, got {self.state_rate_hz}")


@dataclass
class EpisodeResult:
    """Outcome and metrics of one episode (the fields rtc-eval aggregates).

    jumps: ‖new − old‖ over all 14 dims at each chunk-to-chunk switch (the executor's switch events);
    jumps_linear_m: the larger TCP jump; jerk_rms_m_s3: RMS of the executed (filtered) TCP command's third
    difference at the action rate; interventions: servo ticks in which the safety filter changed the command
    (any kind); intervention_kinds: the same per kind; intervention_events: runs of consecutive such ticks;
    rejected: chunks the executor refused; d_used: the d each chunk was guided with; switch_times_s: when each
    chunk-to-chunk switch happened; failure_phase, release_switch_gap_s: ``sim.phases``; record: per-action-step
    arrays when ``EpisodeConfig.record`` (state, the action the executor followed, t, the t_obs of the chunk it
    came from: NaN before the first)."""

    seed: int
    success: bool
    reason: str
    time_s: float
    completion_time_s: float
    jumps: list[float] = field(default_factory=list)
    jumps_linear_m: list[float] = field(default_factory=list)
    jerk_rms_m_s3: float = math.nan
    interventions: int = 0
    intervention_kinds: dict[str, int] = field(default_factory=dict)
    intervention_events: int = 0
    chunks: int = 0
    rejected: int = 0
    d_used: list[int] = field(default_factory=list)
    items: list[str] = field(default_factory=list)
    placed_time_s: list[float] = field(default_factory=list)
    switch_times_s: list[float] = field(default_factory=list)
    failure_phase: str = ""
    release_switch_gap_s: list[float] = field(default_factory=list)
    record: dict[str, np.ndarray] | None = None

    def summary(self) -> dict:
        return {"seed": self.seed, "success": self.success, "reason": self.reason, "time_s": self.time_s,
                "completion_time_s": self.completion_time_s, "jumps": self.jumps,
                "jumps_linear_m": self.jumps_linear_m, "jerk_rms_m_s3": self.jerk_rms_m_s3,
                "interventions": self.interventions, "intervention_kinds": self.intervention_kinds,
                "intervention_events": self.intervention_events, "chunks": self.chunks, "rejected": self.rejected,
                "d_used": self.d_used, "items": self.items, "placed_time_s": self.placed_time_s,
                "failure_phase": self.failure_phase, "release_switch_gap_s": self.release_switch_gap_s}  # fmt: skip


class SimClock:
    """The runner's clock [s]: the executor's and the driver's ``clock``."""

    def __init__(self) -> None:
        self.t_s = 0.0

    def __call__(self) -> float:
        return self.t_s


@dataclass
class _Pending:
    arrival_s: float
    chunk: Chunk


class _InterventionTally:
    """Ticks (and runs of ticks) in which the safety filter changed the command, from its counters."""

    def __init__(self) -> None:
        self.ticks = self.events = 0
        self._last_total = 0
        self._in_run = False

    def update(self, total: int) -> None:
        hit = total > self._last_total
        self._last_total = total
        self.ticks += hit
        self.events += hit and not self._in_run
        self._in_run = hit


class EpisodeRunner:
    """Runs episodes of ``world`` through the executor core configured by ``executor`` (see the module docstring)."""

    def __init__(self, world: TwinWorld, executor: ExecutorConfig, config: EpisodeConfig = EpisodeConfig(),
                 renderer=None) -> None:  # fmt: skip
        self.world, self.executor_config, self.config, self.renderer = world, executor, config, renderer
        self.names = executor.timeline.names
        self.dt_s = executor.timeline.dt_s
        self.servo_dt_s = executor.loop.period_s
        self._per_state = max(1, round(1.0 / (config.state_rate_hz * self.servo_dt_s)))
        self._per_action = max(1, round(self.dt_s / self.servo_dt_s))
        self._per_monitor = max(1, round(MONITOR_EVERY_S / self.servo_dt_s))

    def observe(self, stamp_s: float, state: np.ndarray, prompt: str) -> Observation:
        images = {}
        if self.config.camera_slots and self.renderer is not None:
            images = self.renderer.render_world(self.world, self.config.camera_slots)
        return Observation(state=state, stamp_s=stamp_s, prompt=prompt, images=images)

    def run(self, seed: int, *, loop: InferenceLoop, settings: LoopSettings, make_chunk: MakeChunk,
            on_tick: Callable[[float], None] | None = None) -> EpisodeResult:  # fmt: skip
        """One episode of twin seed ``seed``; ``on_tick(t)`` after every servo tick (e.g. to render frames)."""
        w, clock = self.world, SimClock()
        instance = w.reset(seed)
        monitor, phases = TaskMonitor(w.scene, w.task, instance), PhaseTracker(instance.item_start_m)
        driver = MujocoDriver(MujocoDriverConfig(scene=w.scene, task=w.task, seed=seed), clock=clock, world=w)
        ex = Executor(self.executor_config, driver, clock=clock, clock_offset_s=0.0)
        ex.start(run_loop=False)
        res = EpisodeResult(seed=seed, success=False, reason="", time_s=0.0, completion_time_s=math.nan)
        tally, pending = _InterventionTally(), None
        cmd_log: list[np.ndarray] = []
        rec: dict[str, list] = {"state": [], "action": [], "t": [], "active_t_obs": []}
        for tick in range(int(math.ceil(w.task.time_limit_s / self.servo_dt_s)) + 1):
            t = clock.t_s = tick * self.servo_dt_s
            if pending is not None and t >= pending.arrival_s - 1e-9:  # the executor node's chunk callback
                res.rejected += isinstance(ex.submit(pending.chunk, pending.arrival_s), Rejection)
                pending = None
            ex.tick(t)
            tally.update(ex.safety.counters.total)
            if tick % self._per_state == 0:  # the executor node's state timer
                self._collect_switches(ex, res)
                if pending is None:  # the inference node, on the state it receives
                    pending = self._infer(ex, loop, settings, make_chunk, res)
            if tick % self._per_action == 0:
                self._log_step(ex, t, cmd_log, rec)
            if tick % self._per_monitor == 0:
                pos, held = w.item_positions(), w.held()
                phases.update(w.time_s, pos, held)
                if monitor.update(w.time_s, pos, w.item_speeds(), held).done:
                    break
            if on_tick is not None:
                on_tick(t)
        self._finish(ex, monitor, res, tally, cmd_log, rec)
        res.failure_phase = phases.phase(res.items, res.reason)
        res.release_switch_gap_s = nearest_gaps_s(phases.release_times_s(), res.switch_times_s)
        return res

    def _infer(self, ex: Executor, loop: InferenceLoop, settings: LoopSettings, make_chunk: MakeChunk,
               res: EpisodeResult) -> _Pending | None:  # fmt: skip
        """The inference node on a new robot state: a chunk when one is due, published after the latency."""
        stamp_s, state = ex.latest_state()
        if not loop.due(stamp_s, settings.execution_horizon):
            return None
        active = ex.active_t_obs_s
        plan = loop.plan(settings, executor_d=ex.d if ex.has_estimate else None,
                         active_stamp_ns=stamp_key(active) if math.isfinite(active) else None)  # fmt: skip
        actions = np.asarray(make_chunk(self.observe(stamp_s, state, self.world.task.prompt), plan), float)
        d = plan.settings.inference_delay
        chunk = Chunk(names=self.names, actions=actions, t_obs_s=stamp_s, dt_s=self.dt_s, guided_d=d)
        loop.published(actions, stamp_s, plan, latency_s=self.config.latency_s)
        res.chunks += 1
        res.d_used.append(int(d))
        return _Pending(stamp_s + self.config.latency_s, chunk)

    def _log_step(self, ex: Executor, t: float, cmd_log: list, rec: dict[str, list]) -> None:
        cmd_log.append(ex.safety.command[TCP_COLUMNS].reshape(2, 3))
        if self.config.record:
            rec["state"].append(ex.latest_state()[1])
            rec["action"].append(ex.target())
            rec["t"].append(t)
            rec["active_t_obs"].append(ex.active_t_obs_s)

    @staticmethod
    def _collect_switches(ex: Executor, res: EpisodeResult) -> None:
        """The executor's chunk-to-chunk switch events since the last call (not the first one, from hold)."""
        for ev in ex.drain_switch_events():
            if not ev.from_hold:
                res.switch_times_s.append(float(ev.t_switch_s))
                res.jumps.append(ev.jump_norm)
                res.jumps_linear_m.append(ev.jump_linear_m)

    def _finish(self, ex: Executor, monitor: TaskMonitor, res: EpisodeResult, tally: _InterventionTally,
                cmd_log: list, rec: dict[str, list]) -> None:  # fmt: skip
        self._collect_switches(ex, res)
        st = monitor.state
        res.success, res.reason, res.items = st.status == "success", st.reason, list(st.items)
        res.placed_time_s = list(st.placed_time_s)
        res.time_s = self.world.time_s
        res.completion_time_s = st.end_time_s if res.success else math.nan
        res.jerk_rms_m_s3 = jerk_rms(np.array(cmd_log), self.dt_s)
        res.interventions, res.intervention_events = tally.ticks, tally.events
        res.intervention_kinds = {k: v for k, v in ex.safety.counters.interventions.items() if v}
        if self.config.record:
            res.record = {k: np.array(v) for k, v in rec.items()}
