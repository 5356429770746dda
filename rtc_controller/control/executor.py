"""The executor core (ROS-free): driver + timeline + delay estimator + safety filter + servo loop.

Threads:
- the servo loop (``tick``) reads the robot, takes a handed-over chunk, samples the timeline, filters and commands;
- the caller's thread (the ROS chunk callback) calls ``submit``: validation and precomputation only, the result
  goes into a single-slot buffer (a newer chunk overwrites an unconsumed older one);
- service/diagnostic threads call ``hold``/``resume``/``reset_fault``/``snapshot``; mode changes are requests
  the loop applies at its next tick.

Clock: executor time [s] = ``clock() + offset``: by default ``time.monotonic()`` with the offset taken once at
construction so that it reads like the ROS system clock (``time.time()``) but never jumps; the in-process episode
runner injects its simulated clock (offset 0) and calls ``tick`` itself. Robot-state stamps, chunk arrival times and the
timeline all use it, so δ = t_arrival − t_obs is measured on one clock (DESIGN.md, "Clocks and δ").

Modes (``idle``, ``running``, ``holding``, ``approaching``, ``faulted``, ``stopped``) and every transition between
them are the table in ``control/executor_modes.py``; the servo thread changes the mode only through it. A driver's
``hold_request()`` (e.g. the external wrench above its limit) switches running/approaching to holding.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from collections.abc import Callable

import numpy as np

from rtc_controller.control.chunk import Chunk
from rtc_controller.control.delay_estimator import DelayEstimator
from rtc_controller.control.executor_modes import ACTIVE, Mode, next_mode, transition
from rtc_controller.control.executor_types import ExecutorConfig, ExecutorSnapshot
from rtc_controller.control.executor_core import InProcessPlacement
from rtc_controller.control.executor_snapshot import snapshot_of
from rtc_controller.control.loop import LoopStats, ServoLoop
from rtc_controller.control.safety import SafetyFilter, with_joint_limits
from rtc_controller.control.startup import StartupSupervisor
from rtc_controller.control.switch_log import SwitchLog
from rtc_controller.control.timeline import CapturedSwitch, ChunkTimeline, PreparedChunk, Rejection, SwitchEvent
from rtc_controller.robots.base import ArmDriver, DriverError

log = logging.getLogger(__name__)

RAMP_DOWN_SPEED_EPS = 1e-4  # [m/s or rad/s]: the ramp-down is over below this speed
# A tick that raises holds the last command sent; this many failing ticks in a row (the hold path fails too) fault.
MAX_CONSECUTIVE_TICK_ERRORS = 50


class Executor(InProcessPlacement):
    """See the module docstring. ``start()`` connects and starts the loop; ``shutdown()`` ramps down and stops.
    An ``executor_core.ExecutorCore`` (where the loop runs: :class:`InProcessPlacement`)."""

    def __init__(
        self,
        config: ExecutorConfig,
        driver: ArmDriver,
        *,
        on_fault: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        clock_offset_s: float | None = None,
    ) -> None:
        """``clock``: monotonic seconds (the servo loop's deadlines are on ``time.monotonic``: a simulated clock
        goes with ``start(run_loop=False)``); ``clock_offset_s``: executor time − clock (None: the system clock's)."""
        self.config = config
        self.driver = driver
        self.timeline = ChunkTimeline(config.timeline)
        self.estimator = DelayEstimator(config.delay)
        self.safety = SafetyFilter(config.safety)
        self.startup = StartupSupervisor(config.approach, config.safety.arms, config.safety.kind)
        self._driver_hold_request = getattr(driver, "hold_request", None)  # optional (Flexiv: contact monitoring)
        self.hold_reason = ""  # why the executor switched to holding by itself ("" = operator or start)
        self.resume_refusal = ""  # why the last resume() was refused
        self.loop = ServoLoop(config.loop, self.tick, name="executor_servo")
        self._clock = clock
        self._offset_s = time.time() - clock() if clock_offset_s is None else float(clock_offset_s)
        ad = len(config.timeline.names)
        self._state = np.zeros(ad)
        self._target = np.zeros(ad)
        self._cmd = np.zeros(ad)
        self._last_cmd = np.zeros(ad)  # the last command the driver took (held after a failed tick)
        self._hold = np.zeros(ad)
        self._state_pub = np.zeros(ad)
        self._state_stamp_s = math.nan
        self._state_lock = threading.Lock()
        self._slot: PreparedChunk | None = None  # single-slot hand-over, written by submit, taken by tick
        self._requests: collections.deque[str] = collections.deque()
        self._on_fault = on_fault
        self.mode: Mode = "idle"
        self.fault_message = ""
        self.commands_sent = 0
        self.tick_errors = 0
        self.tick_error = ""
        self._error_run = 0  # failing ticks in a row
        # Switch ticks stay cheap: the tick only captures the switch; the event is computed, and the replaced chunk
        # released, after later ticks' commands (switch_log).
        self.switches = SwitchLog(kind=config.timeline.kind, num_arms=config.timeline.num_arms,
                                  period_s=config.loop.period_s, clock=clock)  # fmt: skip

    # ---- clock -------------------------------------------------------------------------------------------------
    def now_s(self) -> float:
        """Executor time [s] (``clock()`` + offset: monotonic, reads like the system clock by default)."""
        return self._clock() + self._offset_s

    def to_executor_time(self, monotonic_s: float) -> float:
        return monotonic_s + self._offset_s

    # ---- lifecycle ---------------------------------------------------------------------------------------------
    def start(self, *, run_loop: bool = True) -> None:
        """Connect the driver, start holding the measured pose, start the servo loop. Raises DriverError.

        ``run_loop=False`` leaves calling ``tick`` to the caller (tests, the naive-loop benchmark).
        """
        self.driver.connect()
        if not self.driver.read_state(self._state):
            raise DriverError(f"robot faulted at start: {self.driver.status().message}")
        self._apply_joint_limits()
        self._rearm(self._state)
        self.mode = transition(self.mode, "start_holding" if self.config.start_holding else "start")
        if run_loop:
            self.loop.start()

    def _apply_joint_limits(self) -> None:
        """Joint action space: the robot's joint position limits (``driver.joint_limits()``) into the filter."""
        limits = getattr(self.driver, "joint_limits", None)
        if self.config.safety.kind == "joint" and limits is not None and (lim := limits()) is not None:
            self.safety = SafetyFilter(with_joint_limits(self.config.safety, lim[0], lim[1],
                                                         margin_rad=self.config.joint_limit_margin_rad))  # fmt: skip

    def _rearm(self, state: np.ndarray) -> None:
        self.startup.rearm()
        self.safety.reset(state)
        self.timeline.reset(state)
        self._hold[:] = state
        self._cmd[:] = state
        self._last_cmd[:] = state
        with self._state_lock:
            self._state_pub[:] = state
            self._state_stamp_s = self.now_s()

    def shutdown(self, ramp_down_s: float | None = None) -> None:
        """Brake to rest within the limits (at most ``ramp_down_s``), stop the loop, stop and close the driver."""
        ramp = self.config.ramp_down_s if ramp_down_s is None else ramp_down_s
        if self.loop.running and self.mode in ACTIVE:
            self._requests.append("hold")
            t_end = time.monotonic() + ramp
            time.sleep(min(0.01, ramp))
            while time.monotonic() < t_end and float(np.max(self.safety.speed)) > RAMP_DOWN_SPEED_EPS:
                time.sleep(0.005)
        self.loop.stop()
        try:
            self.driver.stop()
        except DriverError as exc:
            log.warning("driver stop failed: %s", exc)
        self.driver.close()
        self.mode = transition(self.mode, "stop")

    # ---- requests from other threads ---------------------------------------------------------------------------
    def hold(self) -> None:
        """Brake to rest and hold (applied at the next tick)."""
        self._requests.append("hold")

    def resume(self) -> bool:
        """Follow chunks again (after the ready-pose approach, if due); False and ``resume_refusal`` set (nothing
        done) while faulted or stopped, or while an arm's measured TCP is too far outside its workspace box."""
        if self.mode in ("faulted", "stopped"):
            self.resume_refusal = f"cannot resume in mode {self.mode} (reset the fault first)"
            return False
        reason = self.startup.resume_refusal(self.latest_state()[1])
        if reason:
            self.resume_refusal = reason
            log.warning("resume refused: %s", reason)
            return False
        self.resume_refusal = ""
        self.hold_reason = ""
        self.tick_error = ""  # the operator saw the hold after a failed tick and resumes
        self._requests.append("resume")
        return True

    def reset_fault(self) -> bool:
        """Clear the driver's fault, re-arm from the measured pose and hold; True on success."""
        if self.mode != "faulted":
            return True
        try:
            if not self.driver.clear_fault():
                return False
            state = np.zeros_like(self._state)
            if not self.driver.read_state(state):
                return False
        except DriverError as exc:
            self.fault_message = f"reset failed: {exc}"
            return False
        self._requests.append("rearm")
        return True

    def submit(self, chunk: Chunk, t_arrival_s: float | None = None) -> PreparedChunk | Rejection:
        """Validate a chunk (arrival = now unless given) and hand it to the loop; returns what happened."""
        t_arrival = self.now_s() if t_arrival_s is None else t_arrival_s
        r = self.timeline.check(chunk, t_arrival)
        if isinstance(r, PreparedChunk):
            self.estimator.add(r.delay_s)  # rejected chunks never feed d (a flood of them moved d from 16 to 50)
            self._slot = r  # atomic reference swap: the loop takes it at its next tick
        return r

    # ---- servo thread ------------------------------------------------------------------------------------------
    def _enter_fault(self, message: str) -> None:
        self.mode = next_mode(self.mode, "fault") or self.mode  # already faulted (or stopped): stays
        self.fault_message = message
        log.error("executor fault: %s", message)
        try:
            self.driver.stop()
        except Exception as exc:  # already faulted; stopping is best effort
            log.warning("driver stop after fault failed: %s", exc)
        if self._on_fault is not None:
            self._on_fault(message)

    def _apply_requests(self, t_s: float) -> None:
        while self._requests:
            req = self._requests.popleft()
            if req == "hold" and next_mode(self.mode, "hold"):
                self._to_holding()
            elif req == "resume" and next_mode(self.mode, "resume"):
                # take over from the held pose: stale chunks are dropped, the next one is checked (startup.py)
                self.timeline.set_hold(self._hold)
                plan = self.startup.ready_approach(self.safety.command, t_s)
                self.mode = transition(self.mode, "resume" if plan is None else "resume_with_approach")
            elif req == "rearm" and next_mode(self.mode, "rearm"):
                self._rearm(self._state)
                self.fault_message = ""
                self.mode = transition(self.mode, "rearm")

    def _to_holding(self) -> None:
        if self.mode != "holding":
            self._hold[:] = self.safety.stopping_target()
        self.startup.hold()
        self.mode = transition(self.mode, "hold")

    def _take_over(self, captured: CapturedSwitch, t_s: float) -> bool:
        """First switch after a hold: True when its chunk is not executed (approaching its pose, or refused)."""
        decision = self.startup.take_over(self.safety.command, captured.new, t_s, self.timeline, self._target)
        if decision == "approach":
            self.mode = transition(self.mode, "approach")
        elif decision:
            self.hold_reason = decision
            self._to_holding()
        return bool(decision)

    def tick(self, deadline_mono_s: float) -> None:
        """One servo tick at ``deadline_mono_s`` (time.monotonic()); called by the loop. A tick that raises never
        poisons the next ones: :meth:`_tick_failed` drops the chunks, holds the last command and reports."""
        try:
            self._tick(deadline_mono_s)
            self._error_run = 0
        except Exception as exc:  # noqa: BLE001 — the arms must get a command every tick, whatever went wrong
            self._tick_failed(exc)

    def _tick_failed(self, exc: Exception) -> None:
        """Hold the last command sent, drop every chunk, latch the error for diagnostics (ERROR until ~/resume);
        ``MAX_CONSECUTIVE_TICK_ERRORS`` in a row (holding fails too) is a fault: streaming stops."""
        self.tick_errors += 1
        self._error_run += 1
        message = f"servo tick failed: {type(exc).__name__}: {exc}"
        if not self.tick_error:
            log.exception("%s; dropping the chunks and holding", message)
        self.tick_error = message
        self._slot = None
        self.switches.clear()
        self.timeline.reset(self._last_cmd)
        self._hold[:] = self._last_cmd
        if self.mode in ("running", "approaching"):
            self.startup.hold()
            self.mode = transition(self.mode, "hold")
        if self.mode != "holding":
            return
        if self._error_run >= MAX_CONSECUTIVE_TICK_ERRORS:
            self._enter_fault(f"{message} ({self._error_run} ticks in a row)")
            return
        if self._error_run > 1:  # the hold path failed too: the filter's state may be poisoned
            self.safety.reset(self._last_cmd)
        try:
            self.driver.command(self._last_cmd)
        except Exception as cmd_exc:  # noqa: BLE001
            self._enter_fault(f"{message}; holding command refused: {cmd_exc}")

    def _tick(self, deadline_mono_s: float) -> None:
        if self._requests:
            self._apply_requests(deadline_mono_s + self._offset_s)
        mode = self.mode
        if mode == "stopped":
            return
        try:
            healthy = self.driver.read_state(self._state)
        except DriverError as exc:
            if mode != "faulted":
                self._enter_fault(f"connection lost: {exc}")
            return
        with self._state_lock:
            self._state_pub[:] = self._state
            self._state_stamp_s = self._clock() + self._offset_s
        if not healthy:
            if mode != "faulted":
                self._enter_fault(f"robot fault: {self.driver.status().message}")
            return
        if mode == "faulted":
            return
        if self._driver_hold_request is not None and mode in ("running", "approaching"):
            if reason := self._driver_hold_request():
                self.hold_reason = reason
                log.warning("holding: %s", reason)
                self._to_holding()
                mode = "holding"
        t = deadline_mono_s + self._offset_s
        captured = None
        if mode == "approaching":
            self._slot = self.startup.drop(self._slot)
            if self.startup.step(t, self._target, self.timeline):
                self.mode = transition(self.mode, "approach_done")
        else:
            slot = self._slot
            if slot is not None:
                self._slot = None
                self.timeline.accept(slot)
            captured = self.timeline.capture(t, self._target)
            if captured is not None:
                if mode == "running" and captured.replaced is None and self._take_over(captured, t):
                    captured = None  # its chunk is not executed: approaching its pose (or refused: holding)
                else:
                    self.switches.defer(captured)
        target = self._hold if self.mode == "holding" else self._target
        self.safety.filter(target, self._cmd)
        try:
            self.driver.command(self._cmd)
            self.commands_sent += 1
            self._last_cmd[:] = self._cmd
        except DriverError as exc:
            self._enter_fault(f"command refused: {exc}")
        if captured is None:
            self.switches.after_command(deadline_mono_s)

    # ---- readers -----------------------------------------------------------------------------------------------
    def latest_state(self) -> tuple[float, np.ndarray]:
        """(stamp [s, executor clock], measured state copy ``[ad]``)."""
        with self._state_lock:
            return self._state_stamp_s, self._state_pub.copy()

    def target(self) -> np.ndarray:
        """The target the servo loop follows ``[ad]`` before the safety filter (the timeline's command, the hold
        pose while holding), a copy; for recorders in the loop's thread (the in-process runner)."""
        return (self._hold if self.mode == "holding" else self._target).copy()

    @property
    def d(self) -> int:
        return self.estimator.d

    @property
    def has_estimate(self) -> bool:
        """True once d means something (see ``DelayEstimator.has_estimate``)."""
        return self.estimator.has_estimate

    def set_fixed_d(self, fixed_d: int | None) -> None:
        """Fixed d [steps] on (an int) or off (None) at run time."""
        self.estimator.set_fixed_d(fixed_d)

    @property
    def alive(self) -> bool:
        """True while the servo loop runs (False before ``start`` and after ``shutdown``)."""
        return self.loop.running

    @property
    def active_t_obs_s(self) -> float:
        """t_obs [s] of the executing chunk (NaN when none)."""
        active = self.timeline.active
        return active.chunk.t_obs_s if active is not None else math.nan

    def drain_switch_events(self) -> list[SwitchEvent]:
        """Switch events since the last call, oldest first (at most ``SWITCH_HISTORY``; older ones are lost)."""
        return self.switches.drain()

    def reset_loop_stats(self) -> None:
        """Restart the servo timing statistics (e.g. after warm-up)."""
        self.loop.reset_stats()

    def loop_records(self) -> tuple[LoopStats, np.ndarray, np.ndarray]:
        """(timing stats, lateness [s] per recorded tick, period [s] per recorded tick (NaN-free))."""
        return self.loop.stats(), self.loop.lateness_s(), self.loop.periods_s()

    @property
    def warnings(self) -> list[str]:
        """Real-time settings that could not be applied."""
        return list(self.loop.warnings)

    def snapshot(self) -> ExecutorSnapshot:
        return snapshot_of(self)
