"""The in-process episode runner (``rtc-eval``'s fast path): the twin, the executor's cores and the chunk sampler in
simulated time, deterministic from a seed.

Per servo tick (``1/servo_rate_hz``, one physics step at the default 1 kHz), exactly as the executor does:
``ChunkTimeline.capture`` (switches at k*), ``SafetyFilter.filter``, then the command goes to the twin's Cartesian
controller and the world steps. Inference, as the inference node does it: when the latest state is s·Δt past the
previous chunk's t_obs, the observation at t_obs (state, and camera frames when the policy takes images) is
handed to ``chunk_fn``; the chunk arrives at t_obs + d·Δt (the injected delay), so the executor switches at k* = d.
The world does not move while a chunk is computed: simulated time, not wall time.

Time: t [s] = episode time since ``TwinWorld.reset`` (the executor clock of this runner); Δt = 1/action_rate_hz.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from rtc_controller.action_space import action_names
from rtc_controller.control.safety import ArmLimits, SafetyConfig, SafetyFilter
from rtc_controller.control.timeline import ChunkTimeline, PreparedChunk, TimelineConfig, switch_event
from rtc_controller.control.chunk import Chunk
from rtc_controller.policy.base import Observation
from rtc_controller.sim.task import TaskMonitor
from rtc_controller.sim.world import TwinWorld

MONITOR_EVERY_S = 0.02  # task-monitor sample period [s]
ChunkFn = Callable[[Observation, int, "PreviousChunkLike | None"], np.ndarray]


@dataclass(frozen=True)
class PreviousChunkLike:
    actions: np.ndarray  # [H, D]
    t_obs_s: float


@dataclass(frozen=True)
class EpisodeConfig:
    """horizon H, execution_horizon s, delay d [action steps] (the chunk arrives d·Δt after t_obs), rates [Hz],
    camera_slots rendered into each observation (empty: none), the safety limits per arm."""

    horizon: int = 50
    execution_horizon: int = 25
    delay: int = 0
    action_rate_hz: float = 50.0
    servo_rate_hz: float = 1000.0
    camera_slots: tuple[str, ...] = ()
    limits: tuple[ArmLimits, ...] = (
        ArmLimits(workspace_min_m=(0.2, -0.05, 0.0), workspace_max_m=(0.8, 0.65, 0.6)),
        ArmLimits(workspace_min_m=(0.2, -0.65, 0.0), workspace_max_m=(0.8, 0.05, 0.6)),
    )
    record: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.execution_horizon <= self.horizon:
            raise ValueError(f"execution_horizon must be in [1, H = {self.horizon}], got {self.execution_horizon}")
        if not 0 <= self.delay < self.horizon:
            raise ValueError(f"delay must be in [0, H), got {self.delay}")
        if self.delay > self.execution_horizon:
            raise ValueError(f"delay d = {self.delay} > s = {self.execution_horizon}: RTC needs d <= s")
        if self.servo_rate_hz < self.action_rate_hz:
            raise ValueError("servo_rate_hz must be >= action_rate_hz")


@dataclass
class EpisodeResult:
    """Outcome and metrics of one episode (the fields rtc-eval aggregates).

    jumps: ‖new − old‖ over all 14 dims at each chunk-to-chunk switch; jumps_linear_m: the larger TCP jump;
    jerk_rms_m_s3: RMS of the executed TCP command's third difference at the action rate; interventions: safety
    filter interventions (ticks, all kinds); record: per-action-step arrays when ``EpisodeConfig.record``."""

    seed: int
    success: bool
    reason: str
    time_s: float
    completion_time_s: float
    jumps: list[float] = field(default_factory=list)
    jumps_linear_m: list[float] = field(default_factory=list)
    jerk_rms_m_s3: float = math.nan
    interventions: int = 0
    chunks: int = 0
    items: list[str] = field(default_factory=list)
    record: dict[str, np.ndarray] | None = None

    def summary(self) -> dict:
        return {"seed": self.seed, "success": self.success, "reason": self.reason, "time_s": self.time_s,
                "completion_time_s": self.completion_time_s, "jumps": self.jumps,
                "jumps_linear_m": self.jumps_linear_m, "jerk_rms_m_s3": self.jerk_rms_m_s3,
                "interventions": self.interventions, "chunks": self.chunks, "items": self.items}  # fmt: skip


def jerk_rms(positions: np.ndarray, dt_s: float) -> float:
    """RMS over time and arms of ‖third difference‖/Δt³ of TCP positions ``[T, arms, 3]`` [m/s³]."""
    if len(positions) < 4:
        return math.nan
    j = np.diff(positions, n=3, axis=0) / dt_s**3
    return float(np.sqrt(np.mean(np.sum(j**2, axis=-1))))


class EpisodeRunner:
    """Runs episodes of a world with a chunk function (see the module docstring)."""

    def __init__(self, world: TwinWorld, config: EpisodeConfig, renderer=None) -> None:
        self.world, self.config = world, config
        self.renderer = renderer
        names = action_names("cartesian")
        self.names = names
        self.dt = 1.0 / config.action_rate_hz
        self.servo_dt = 1.0 / config.servo_rate_hz
        self.substeps = max(1, round(self.servo_dt / world.model.opt.timestep))
        self.timeline_cfg = TimelineConfig(names=names, action_rate_hz=config.action_rate_hz, max_horizon=config.horizon)
        self.safety_cfg = SafetyConfig(servo_dt_s=self.servo_dt, arms=config.limits)

    def observe(self, t_s: float, prompt: str) -> Observation:
        images = {}
        if self.config.camera_slots and self.renderer is not None:
            images = self.renderer.render_world(self.world, self.config.camera_slots)
        return Observation(state=self.world.state(), stamp_s=t_s, prompt=prompt, images=images)

    def run(self, seed: int, chunk_fn: ChunkFn, *, on_tick: Callable[[float], None] | None = None) -> EpisodeResult:
        """One episode from ``seed``; ``chunk_fn(observation, d, previous)`` returns a chunk ``[H, 14]``."""
        cfg, w = self.config, self.world
        monitor = TaskMonitor(w.scene, w.task, w.reset(seed))
        timeline, safety = ChunkTimeline(self.timeline_cfg), SafetyFilter(self.safety_cfg)
        state = w.state()
        timeline.reset(state)
        safety.reset(state)
        target, cmd = np.zeros_like(state), np.zeros_like(state)
        res = EpisodeResult(seed=seed, success=False, reason="", time_s=0.0, completion_time_s=math.nan)
        self._pending: tuple[float, Chunk] | None = None  # (arrival time [s], chunk) of the chunk "in inference"
        self._previous: PreviousChunkLike | None = None
        cmd_log, rec = [], {"state": [], "action": [], "t": []}
        per_action = max(1, round(self.dt / self.servo_dt))
        per_monitor = max(1, round(MONITOR_EVERY_S / self.servo_dt))
        for tick in range(int(math.ceil(w.task.time_limit_s / self.servo_dt)) + 1):
            t = tick * self.servo_dt
            self._infer_and_deliver(t, chunk_fn, timeline, res)
            captured = timeline.capture(t, target)  # the executor's tick: switch at k*, filter, command
            if captured is not None and captured.replaced is not None:
                ev = switch_event(captured, kind="cartesian", num_arms=2)
                res.jumps.append(float(np.linalg.norm(ev.jump)))
                res.jumps_linear_m.append(ev.jump_linear_m)
            safety.filter(target, cmd)
            w.set_command(cmd)
            w.step(self.substeps)
            if tick % per_action == 0:
                cmd_log.append(cmd[[0, 1, 2, 7, 8, 9]].reshape(2, 3).copy())
                if cfg.record:
                    rec["state"].append(w.state())
                    rec["action"].append(target.copy())
                    rec["t"].append(t)
            if tick % per_monitor == 0 and monitor.update(w.time_s, w.item_positions(), w.item_speeds(), w.held()).done:
                break
            if on_tick is not None:
                on_tick(t)
        st = monitor.state
        res.success, res.reason, res.items = st.status == "success", st.reason, list(st.items)
        res.time_s = w.time_s
        res.completion_time_s = st.end_time_s if res.success else math.nan
        res.jerk_rms_m_s3 = jerk_rms(np.array(cmd_log), self.dt)
        res.interventions = safety.counters.total
        if cfg.record:
            res.record = {k: np.array(v) for k, v in rec.items()}
        return res

    def _infer_and_deliver(self, t: float, chunk_fn: ChunkFn, timeline: ChunkTimeline, res: EpisodeResult) -> None:
        """As the inference node: sample when the state is s·Δt past the previous t_obs (none in flight); as the
        executor's chunk callback: hand a chunk to the timeline when it arrives, d·Δt after its t_obs."""
        cfg, prev = self.config, self._previous
        if self._pending is None and (prev is None or t >= prev.t_obs_s + cfg.execution_horizon * self.dt - 1e-9):
            actions = chunk_fn(self.observe(t, self.world.task.prompt), cfg.delay, prev)
            chunk = Chunk(names=self.names, t_obs_s=t, dt_s=self.dt, actions=np.asarray(actions, float),
                          guided_d=cfg.delay)  # fmt: skip
            self._pending = (t + cfg.delay * self.dt, chunk)
            self._previous = PreviousChunkLike(chunk.actions, t)
            res.chunks += 1
        if self._pending is not None and t >= self._pending[0] - 1e-9:
            prepared = timeline.check(self._pending[1], self._pending[0])
            if isinstance(prepared, PreparedChunk):
                timeline.accept(prepared)
            self._pending = None
