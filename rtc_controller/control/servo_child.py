"""The servo process's child side (ROS-free): the executor, its command thread and its shared-state writes.

Started by :class:`~rtc_controller.control.servo_process.ServoProcess` (``spawn`` context: never fork a process with
rclpy/DDS threads); :func:`child_main` is its entry point. It builds the driver (``driver_factory``, picklable, e.g.
``functools.partial(SimDriver, SimConfig(...))``) and the :class:`Executor`; the servo loop applies the real-time
options (SCHED_FIFO, affinity, switch interval, gc) to the child itself; ``process_fifo_priority`` goes to the
child's other threads. A command thread serves the pipe (blocking ``recv``: idle between commands), one request ->
one reply ``(id, "ok" | "err", value)``. Every servo tick writes the robot state into shared memory
(``servo_shared_state``).

Stopping: the parent's end of the pipe closing (the parent died) -> ramp down, stop the driver and exit; SIGTERM
does the same (the kernel sends it when the parent dies: ``prctl(PR_SET_PDEATHSIG)``); SIGINT and SIGHUP are
ignored (Ctrl-C or a closed terminal reaches the whole process group: the parent decides when to stop).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import multiprocessing.connection
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.shared_memory import SharedMemory
from typing import Any

import numpy as np

from rtc_controller.control.chunk import Chunk
from rtc_controller.control.executor import Executor
from rtc_controller.control.executor_types import ExecutorConfig
from rtc_controller.control.loop import set_process_fifo_priority
from rtc_controller.control.servo_shared_state import SeqlockWriter
from rtc_controller.control.timeline import PreparedChunk, Rejection
from rtc_controller.robots.base import ArmDriver, DriverError
from rtc_controller.shutdown import set_parent_death_signal

log = logging.getLogger(__name__)

__all__ = ["SubmitAccepted", "child_main"]

NATIVE_ID_WAIT_S = 1.0
SLACK_WAIT_S = 0.01  # longest wait for the end of a servo tick before a command runs anyway [s]


@dataclass(frozen=True)
class SubmitAccepted:
    """A chunk the child accepted (the parts of :class:`PreparedChunk` the node uses)."""

    delay_s: float
    k_star: int
    t_switch_s: float


class _SharedStateExecutor(Executor):
    """An Executor whose tick also publishes its state into shared memory (seqlock, single writer)."""

    def __init__(self, config: ExecutorConfig, driver: ArmDriver, buf: memoryview) -> None:
        super().__init__(config, driver)
        self._shared = SeqlockWriter(buf, len(config.timeline.names))
        self._slack = threading.Event()
        self._slack_wanted = False

    def wait_for_slack(self, timeout_s: float = SLACK_WAIT_S) -> None:
        """Block until the servo loop finished its next tick (command thread). Work started right then runs in the
        loop's slack instead of trading the GIL back and forth with a tick (each hand-over costs a thread wake-up,
        which stretched ticks to ~1 ms while a chunk was prepared concurrently)."""
        if not self.loop.running:
            return
        self._slack.clear()
        self._slack_wanted = True
        self._slack.wait(timeout_s)
        self._slack_wanted = False

    def publish_shared(self) -> None:
        self._shared.write(self._state_stamp_s, self._state_pub, self.active_t_obs_s, self.mode, self.switches.seq)

    def release_shared(self) -> None:
        """Release the views before the mapping is closed."""
        self._shared.release()

    def _rearm(self, state: np.ndarray) -> None:
        super()._rearm(state)
        self.publish_shared()

    def tick(self, deadline_mono_s: float) -> None:
        super().tick(deadline_mono_s)
        self.publish_shared()
        if self._slack_wanted:
            self._slack_wanted = False
            self._slack.set()


def _submit(ex: Executor, chunk: Chunk, t_arrival_s: float) -> tuple:
    r = ex.submit(chunk, t_arrival_s)
    if isinstance(r, PreparedChunk):
        res: SubmitAccepted | Rejection = SubmitAccepted(r.delay_s, r.k_star, r.t_switch_s)
    else:
        res = r
    return res, ex.d, ex.has_estimate


def _serve(conn: mp.connection.Connection, ex: _SharedStateExecutor, send: Callable[[Any], None],
           stop: threading.Event, shutdown_req: list) -> None:  # fmt: skip
    """Command thread: one request -> one reply until ``shutdown`` or the parent's end closes."""
    handlers: dict[str, Callable[..., Any]] = {
        "submit": lambda chunk, t: _submit(ex, chunk, t),
        "hold": ex.hold,
        "resume": lambda: (ex.resume(), ex.resume_refusal),
        "reset_fault": lambda: (ex.reset_fault(), ex.fault_message),
        "set_fixed_d": lambda v: (ex.set_fixed_d(v), ex.d, ex.has_estimate)[1:],
        "snapshot": ex.snapshot,
        "drain_switch_events": ex.drain_switch_events,
        "reset_loop_stats": ex.reset_loop_stats,
        "loop_records": ex.loop_records,
    }
    while not stop.is_set():
        try:
            req_id, name, args = conn.recv()
        except (EOFError, OSError):
            log.error("servo process: the parent's pipe closed; ramping down")
            break
        if name == "shutdown":
            shutdown_req.append((req_id, args[0]))
            break
        try:
            ex.wait_for_slack()
            reply = (req_id, "ok", handlers[name](*args))
        except Exception as exc:  # report, keep serving: the servo loop is unaffected
            log.exception("servo process: command %s failed", name)
            reply = (req_id, "err", f"{type(exc).__name__}: {exc}")
        send(reply)
    stop.set()



def child_main(conn: mp.connection.Connection, shm_name: str, config: ExecutorConfig,
                driver_factory: Callable[[], ArmDriver], process_fifo_priority: int, log_level: int) -> None:  # fmt: skip
    """Entry point of the servo process (see the module docstring)."""
    for sig in (signal.SIGINT, signal.SIGHUP):  # the terminal's signals reach the whole group: the parent decides
        signal.signal(sig, signal.SIG_IGN)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    set_parent_death_signal(signal.SIGTERM)  # besides the pipe's EOF: the parent killed -> ramp down and exit
    logging.basicConfig(level=log_level, format="[servo_process %(process)d] %(levelname)s %(name)s: %(message)s")
    send_lock = threading.Lock()

    def send(msg: Any) -> None:
        with send_lock:
            try:
                conn.send(msg)
            except (OSError, ValueError):  # the parent is gone
                stop.set()

    shm = SharedMemory(name=shm_name)
    ex: _SharedStateExecutor | None = None
    try:
        try:
            ex = _SharedStateExecutor(config, driver_factory(), shm.buf)
            ex.start()
        except Exception as exc:
            send((0, "error", f"{type(exc).__name__}: {exc}", isinstance(exc, (DriverError, ValueError))))
            return
        end = time.monotonic() + NATIVE_ID_WAIT_S
        while ex.loop.native_id is None and time.monotonic() < end:
            time.sleep(0.001)
        warnings = ex.warnings + set_process_fifo_priority(
            process_fifo_priority, exclude_tids=(ex.loop.native_id,) if ex.loop.native_id else ()
        )
        shutdown_req: list = []
        cmd = threading.Thread(target=_serve, args=(conn, ex, send, stop, shutdown_req), name="servo_commands",
                               daemon=True)  # fmt: skip
        cmd.start()
        ready = {"offset_s": ex._offset_s, "warnings": warnings, "d": ex.d, "has_estimate": ex.has_estimate}
        send((0, "ready", ready))
        while not stop.wait(0.2):
            pass
        req_id, ramp = shutdown_req[0] if shutdown_req else (None, None)
        ex.shutdown(ramp)
        ex.publish_shared()
        if req_id is not None:
            send((req_id, "ok", None))
    finally:
        if ex is not None and ex.mode != "stopped":  # failed start or an exception above: never leave it enabled
            try:
                ex.shutdown(0.0) if ex.loop.running else ex.driver.close()
            except Exception:
                log.exception("servo process: stopping the driver failed")
        if ex is not None:
            ex.release_shared()  # release the views before closing the mapping
        shm.close()
        conn.close()

