"""The node-facing interface of the executor core (ROS-free): one protocol, two implementations.

``control.executor.Executor`` runs the servo loop as a thread of the caller's process; ``control.servo_process.
ServoProcess`` is a proxy for an ``Executor`` in a child process of its own (no GIL shared with rclpy). The
executor node holds an :class:`ExecutorCore` and never asks which one it has: where they differ (where the loop
runs, who lifts the other threads' priority, what is left to shut down) is a member of the protocol.
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

import numpy as np

from rtc_controller.control.chunk import Chunk
from rtc_controller.control.executor_modes import Mode
from rtc_controller.control.executor_types import ExecutorSnapshot
from rtc_controller.control.loop import LoopStats, ServoLoop, set_process_fifo_priority
from rtc_controller.control.timeline import Rejection, SwitchEvent

__all__ = ["ExecutorCore", "InProcessPlacement"]

SERVO_SETTLE_S = 0.05  # the servo thread applies its real-time settings within this after start [s]


@runtime_checkable
class ExecutorCore(Protocol):
    """Times are executor time [s] (``now_s``); states are ``[action_dim]`` in the action space (world frame)."""

    fault_message: str  # why the core faulted ('' when it did not)
    resume_refusal: str  # why the last resume() was refused

    def start(self) -> None:
        """Connect the driver and start the servo loop (DriverError when the robot cannot be used)."""

    def shutdown(self, ramp_down_s: float | None = None) -> None:
        """Brake to rest (at most ``ramp_down_s``), stop the loop and the driver; idempotent."""

    def submit(self, chunk: Chunk, t_arrival_s: float | None = None) -> object | Rejection:
        """Hand a chunk to the loop; a :class:`Rejection` (with the reason) when it is refused."""

    def hold(self) -> None: ...
    def resume(self) -> bool: ...
    def reset_fault(self) -> bool: ...
    def set_fixed_d(self, fixed_d: int | None) -> None: ...
    def snapshot(self) -> ExecutorSnapshot: ...
    def drain_switch_events(self) -> list[SwitchEvent]: ...
    def latest_state(self) -> tuple[float, np.ndarray]: ...
    def now_s(self) -> float: ...
    def to_executor_time(self, monotonic_s: float) -> float: ...
    def reset_loop_stats(self) -> None: ...
    def loop_records(self) -> tuple[LoopStats, np.ndarray, np.ndarray]: ...

    @property
    def mode(self) -> Mode: ...
    @property
    def alive(self) -> bool: ...
    @property
    def d(self) -> int: ...
    @property
    def has_estimate(self) -> bool: ...
    @property
    def active_t_obs_s(self) -> float: ...
    @property
    def warnings(self) -> list[str]:
        """Real-time settings the servo loop could not apply (the caller logs them)."""

    @property
    def location(self) -> str:
        """Where the servo loop runs, for logs: ``thread`` or ``process <pid> (shared memory <name>)``."""

    @property
    def exitcode(self) -> int | None:
        """The servo process's exit code (None: still running, or a thread)."""

    @property
    def needs_shutdown(self) -> bool:
        """Something is left to stop or release (a running loop, a child process to reap)."""

    def lift_other_threads(self, priority: int) -> list[str]:
        """Give this process's other threads SCHED_FIFO ``priority`` (below the servo thread's) where the servo
        loop shares this process; warnings of what could not be applied."""


class InProcessPlacement:
    """The placement members of :class:`ExecutorCore` for a core whose servo loop is a thread of this process
    (``Executor``; it provides ``loop`` and ``mode``)."""

    loop: ServoLoop
    mode: Mode

    @property
    def location(self) -> str:
        return "thread"

    @property
    def exitcode(self) -> int | None:
        return None

    @property
    def needs_shutdown(self) -> bool:
        return self.mode != "stopped"

    def lift_other_threads(self, priority: int) -> list[str]:
        """The servo thread shares this process: lift its other threads (GIL holders) to ``priority``, below it."""
        time.sleep(SERVO_SETTLE_S)  # let the servo thread apply its own settings first
        return set_process_fifo_priority(priority, exclude_tids=(self.loop.native_id,) if self.loop.native_id else ())
