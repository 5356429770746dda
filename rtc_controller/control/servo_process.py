"""The executor in its own process (ROS-free): a proxy with the node-facing interface of :class:`Executor`.

Why: a Python servo thread shares the GIL with everything else in its process. In the ROS node, rclpy's executor,
message conversion, timers and publishers hold the GIL for hundreds of µs at a time, so the 1 kHz loop wakes late
(``benchmarks/bench_executor_loop.py``; the numbers are in docs/results.md). Here the servo loop runs in a child
process that imports no ROS and has its own GIL.

Processes and threads:
- parent (the ROS node): :class:`ServoProcess`, the proxy. Commands go over a ``multiprocessing`` Pipe, one request
  and one reply at a time (a lock serialises callers); requests carry an id so a late reply to a timed-out
  request is discarded, never mistaken for the next one.
- child (``servo_child``; ``spawn`` context: never fork a process with rclpy/DDS threads): builds the driver
  (``driver_factory``, picklable, e.g. ``functools.partial(SimDriver, SimConfig(...))``) and the :class:`Executor`;
  the servo loop applies the real-time options (SCHED_FIFO, affinity, switch interval, gc) to the child itself;
  ``process_fifo_priority`` goes to the child's other threads. A command thread serves the pipe (blocking
  ``recv``: idle between commands).
- robot state (``servo_shared_state``): every servo tick the child writes (stamp, state, mode, switch count,
  active t_obs) into shared memory under a seqlock (single writer; the reader retries while the sequence is odd
  or changed). No pickling at the state rate. x86 keeps stores and loads in program order, which the seqlock
  relies on.

Clock: the child's executor clock is ``time.monotonic() + offset`` (CLOCK_MONOTONIC is system-wide, so it reads the
same in both processes); the offset comes with the ready message and :meth:`ServoProcess.now_s` uses it. The node
stamps chunk arrivals with ``now_s()`` exactly as with the in-process executor, so δ keeps its meaning.

Measured (``.venv/bin/python benchmarks/bench_executor_loop.py --seconds 60`` vs ``... --servo-thread``, sim,
10 Hz chunks, one CPU-bound process, 2-core VM, same session): lateness p99 132 µs / p99.9 531 µs / max 3.4 ms,
39 ticks > 1 ms, worst 1-s window 1.3 % in this process vs 190 / 718 µs / 6.8 ms, 63 late, 1.1 % as a thread of the
node (before the cheap switch ticks of ``executor.py``, as a thread: 296 / 956 µs, 324 late, 2.5 %).

Failure handling: a driver that fails to start -> ``start`` raises DriverError (the child exits). A child that dies
-> ``alive`` is False and every command raises :class:`ServoProcessDied`. The parent's end of the pipe closing
(the parent died) -> the child ramps down, stops the driver and exits; SIGTERM to the child does the same; SIGINT
and SIGHUP are ignored in the child (Ctrl-C or a closed terminal reaches the whole process group: the parent
decides when to stop); the kernel sends it SIGTERM when the parent dies (``prctl(PR_SET_PDEATHSIG)``). A start
can be aborted (``abort_start``, set by a shutdown request): the child is then stopped the same way.
``shutdown`` asks the child to ramp down and stop the driver, joins it, and terminates/kills it after a timeout.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import multiprocessing as mp
import multiprocessing.connection
import signal
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from multiprocessing.shared_memory import SharedMemory
from typing import Any

import numpy as np

from rtc_controller.control.chunk import Chunk
from rtc_controller.control.executor_types import ExecutorConfig, ExecutorSnapshot
from rtc_controller.control.loop import LoopStats
from rtc_controller.control.servo_child import SubmitAccepted, child_main
from rtc_controller.control.servo_shared_state import HDR_SWITCHES, MODES, read_consistent, shm_size, state_views
from rtc_controller.control.timeline import Rejection, SwitchEvent
from rtc_controller.robots.base import ArmDriver, DriverError

log = logging.getLogger(__name__)

START_EXTRA_S = 30.0  # spawn + imports + driver construction, on top of the driver's connect timeout [s]
CALL_TIMEOUT_S = 2.0  # a command's reply [s] (the child's command thread answers in well under 10 ms)
RESET_TIMEOUT_S = 60.0  # reset_fault waits for the robot to clear its fault [s]
JOIN_EXTRA_S = 5.0  # beyond the ramp-down, before the child is terminated [s]
KILL_WAIT_S = 2.0


class ServoProcessError(RuntimeError):
    """The servo process did not answer or refused a command."""


class ServoProcessDied(ServoProcessError):
    """The servo process is not running (crashed, killed, or never started)."""


def _start_resource_tracker() -> None:
    """Start multiprocessing's resource tracker (it unlinks the shared memory if this process is killed) with SIGHUP
    ignored, as it already ignores SIGINT and SIGTERM: a SIGHUP to the process group (a closed terminal) killed
    it, and the segment's unlink at shutdown then printed a relaunch warning and a KeyError traceback.
    SIG_IGN survives the tracker's exec; a handler would not. Main thread only (elsewhere: left as it is)."""
    from multiprocessing import resource_tracker

    if threading.current_thread() is not threading.main_thread():
        resource_tracker.ensure_running()
        return
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        resource_tracker.ensure_running()
    finally:
        signal.signal(signal.SIGHUP, previous)


@contextlib.contextmanager
def _main_module_hidden() -> Iterator[None]:
    """Spawn without re-running the parent's ``__main__`` in the child.

    ``spawn`` normally imports the parent's main module in the child (as ``__mp_main__``): for the node that is
    ``rtc_controller.ros.executor_node`` (rclpy and all message modules: slower start, ROS in the servo process),
    and a script without an ``if __name__ == "__main__"`` guard would even run again. The child's entry point lives
    in ``servo_child``, so the main module is not needed: hide it while ``Process.start`` collects its preparation data.
    """
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


class ServoProcess:
    """Proxy for an :class:`Executor` running in a child process: an ``executor_core.ExecutorCore``, as
    ``Executor`` is (``submit`` returns :class:`SubmitAccepted` | :class:`Rejection`)."""

    def __init__(
        self,
        config: ExecutorConfig,
        driver_factory: Callable[[], ArmDriver],
        *,
        process_fifo_priority: int = 0,
        start_timeout_s: float = START_EXTRA_S,
        call_timeout_s: float = CALL_TIMEOUT_S,
        log_level: int = logging.INFO,
        abort_start: threading.Event | None = None,
    ) -> None:
        if start_timeout_s <= 0 or call_timeout_s <= 0:
            raise ValueError("timeouts must be > 0")
        self.config = config
        self._driver_factory = driver_factory
        self._fifo = process_fifo_priority
        self._start_timeout_s = start_timeout_s
        self._call_timeout_s = call_timeout_s
        self._log_level = log_level
        self._abort_start = abort_start
        self._ad = len(config.timeline.names)
        self._ctx = mp.get_context("spawn")
        self._proc: mp.process.BaseProcess | None = None
        self._conn: mp.connection.Connection | None = None
        self._shm: SharedMemory | None = None
        self._hdr: np.ndarray | None = None
        self._vals: np.ndarray | None = None
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._offset_s = time.time() - time.monotonic()
        self._d = 0
        self._has_estimate = False
        self._stopped = False
        self._switches_seen = 0
        self.fault_message = ""
        self.resume_refusal = ""  # why the last resume() was refused (Executor.resume_refusal)
        self.warnings: list[str] = []

    # ---- lifecycle ---------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Spawn the child, which connects the driver and starts the loop. Raises DriverError / ServoProcessError."""
        if self._proc is not None:
            raise RuntimeError("servo process already started")
        _start_resource_tracker()
        self._shm = SharedMemory(create=True, size=shm_size(self._ad))
        self._hdr, self._vals = state_views(self._shm.buf, self._ad)
        self._hdr[:] = 0
        self._vals[:] = math.nan
        parent, child = self._ctx.Pipe(duplex=True)
        self._conn = parent
        self._proc = self._ctx.Process(
            target=child_main,
            args=(child, self._shm.name, self.config, self._driver_factory, self._fifo, self._log_level),
            name="rtc_servo",
            daemon=True,  # multiprocessing terminates it at interpreter exit if shutdown was never called
        )
        with _main_module_hidden():
            self._proc.start()
        child.close()  # only the child holds that end now: EOF on either side means the other is gone
        end = time.monotonic() + self._start_timeout_s
        try:
            while not parent.poll(0.05):
                if not self._proc.is_alive():
                    raise ServoProcessDied(f"servo process exited during start (exit code {self._proc.exitcode})")
                if time.monotonic() > end:
                    raise ServoProcessError(f"servo process did not start within {self._start_timeout_s:.0f} s")
                if self._abort_start is not None and self._abort_start.is_set():
                    raise ServoProcessError("start aborted: shutdown requested")
            msg = parent.recv()
        except EOFError as exc:
            self._reap(KILL_WAIT_S)
            raise ServoProcessDied(f"servo process exited during start (exit code {self.exitcode})") from exc
        except BaseException:
            parent.close()  # the child's "ready" then fails: it ramps down (if it got that far) and exits
            self._reap(self._start_timeout_s)
            raise
        if msg[1] == "error":
            self._reap(KILL_WAIT_S)
            if msg[3]:
                raise DriverError(msg[2])
            raise ServoProcessError(f"servo process failed to start: {msg[2]}")
        info = msg[2]
        self._offset_s = info["offset_s"]
        self._d, self._has_estimate = info["d"], info["has_estimate"]
        self.warnings = list(info["warnings"])  # real-time options the child could not apply (the caller logs them)

    def shutdown(self, ramp_down_s: float | None = None, *, timeout_s: float | None = None) -> None:
        """Ask the child to ramp down (at most ``ramp_down_s``) and stop the driver; join it (terminate, then kill,
        after ``timeout_s``, default ramp + 5 s). Idempotent; never raises for a dead child."""
        if self._proc is None or self._stopped:
            self._stopped = True
            return
        ramp = self.config.ramp_down_s if ramp_down_s is None else ramp_down_s
        wait = ramp + JOIN_EXTRA_S if timeout_s is None else timeout_s
        if self._proc.is_alive():
            try:
                self._call("shutdown", ramp, timeout_s=wait)
            except ServoProcessDied:
                self._proc.join(KILL_WAIT_S)
                if self._proc.exitcode != 0:
                    log.error("servo process died during shutdown (exit code %s)", self._proc.exitcode)
                # else: it ramped down and exited by itself (SIGTERM sent to the whole process group, e.g. systemd)
            except ServoProcessError as exc:
                log.error("servo process did not shut down cleanly: %s", exc)
        self._reap(wait)
        self._stopped = True

    def _reap(self, join_s: float) -> None:
        """Join the child (terminate, then kill if it lingers) and release the pipe and shared memory."""
        p = self._proc
        if p is not None:
            p.join(join_s)
            if p.is_alive():
                log.error("servo process %s did not exit: terminating it", p.pid)
                p.terminate()
                p.join(KILL_WAIT_S)
            if p.is_alive():
                log.error("servo process %s ignored SIGTERM: killing it", p.pid)
                p.kill()
                p.join(KILL_WAIT_S)
        if self._conn is not None:
            self._conn.close()
        self._hdr = self._vals = None
        if self._shm is not None:
            self._shm.close()
            self._shm.unlink()
            self._shm = None

    @property
    def alive(self) -> bool:
        """True while the child runs and has not been shut down."""
        return self._proc is not None and not self._stopped and self._proc.is_alive()

    @property
    def shm_name(self) -> str | None:
        """The shared-memory segment's name (``/dev/shm/<name>`` on Linux) while it exists."""
        return self._shm.name if self._shm is not None else None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def exitcode(self) -> int | None:
        return self._proc.exitcode if self._proc is not None else None

    @property
    def location(self) -> str:
        return f"process {self.pid} (shared memory {self.shm_name})"

    @property
    def needs_shutdown(self) -> bool:
        """Always until shut down: the child is reaped and its shared memory released even when it already
        reported "stopped" (a group SIGTERM reached it first)."""
        return not self._stopped

    def lift_other_threads(self, priority: int) -> list[str]:
        """Nothing to do here: the child applied ``process_fifo_priority`` to its own threads."""
        return []

    # ---- commands ----------------------------------------------------------------------------------------------
    def _call(self, name: str, *args: Any, timeout_s: float | None = None) -> Any:
        if self._proc is None or self._stopped or self._conn is None:
            raise ServoProcessDied("servo process not running")
        timeout = self._call_timeout_s if timeout_s is None else timeout_s
        with self._lock:
            req_id = next(self._ids)
            try:
                self._conn.send((req_id, name, args))
                end = time.monotonic() + timeout
                while True:
                    left = end - time.monotonic()
                    if left <= 0 or not self._conn.poll(min(left, 0.1)):
                        if not self._proc.is_alive():
                            raise ServoProcessDied(f"servo process died (exit code {self._proc.exitcode})")
                        if left <= 0:
                            raise ServoProcessError(f"servo process did not answer {name!r} within {timeout:.1f} s")
                        continue
                    rid, status, value = self._conn.recv()
                    if rid == req_id:
                        break  # else a late reply to an earlier, timed-out request: drop it
            except (EOFError, OSError, BrokenPipeError) as exc:
                raise ServoProcessDied(f"servo process died (exit code {self._proc.exitcode}): {exc}") from exc
        if status == "err":
            raise ServoProcessError(f"servo process: {name} failed: {value}")
        return value

    def submit(self, chunk: Chunk, t_arrival_s: float | None = None) -> SubmitAccepted | Rejection:
        """Hand a chunk to the child (arrival = now unless given, on the executor clock); what happened."""
        t_arrival = self.now_s() if t_arrival_s is None else t_arrival_s
        res, self._d, self._has_estimate = self._call("submit", chunk, t_arrival)
        return res

    def hold(self) -> None:
        self._call("hold")

    def resume(self) -> bool:
        ok, self.resume_refusal = self._call("resume")
        return bool(ok)

    def reset_fault(self) -> bool:
        ok, self.fault_message = self._call("reset_fault", timeout_s=RESET_TIMEOUT_S)
        return bool(ok)

    def set_fixed_d(self, fixed_d: int | None) -> None:
        self._d, self._has_estimate = self._call("set_fixed_d", fixed_d)

    def snapshot(self) -> ExecutorSnapshot:
        snap = self._call("snapshot")
        self.fault_message = snap.fault_message
        return snap

    def drain_switch_events(self) -> list[SwitchEvent]:
        """Switch events since the last call (asks the child only when the shared switch count moved)."""
        if self._hdr is None:
            return []
        n = int(self._hdr[HDR_SWITCHES])
        if n == self._switches_seen:
            return []
        events = self._call("drain_switch_events")
        self._switches_seen = n
        return events

    def reset_loop_stats(self) -> None:
        self._call("reset_loop_stats")

    def loop_records(self) -> tuple[LoopStats, np.ndarray, np.ndarray]:
        return self._call("loop_records", timeout_s=10.0)

    # ---- shared state ------------------------------------------------------------------------------------------
    def _read_shared(self) -> tuple[float, np.ndarray, int, float]:
        hdr, vals = self._hdr, self._vals
        if hdr is None or vals is None:
            raise ServoProcessDied("servo process not running")
        got = read_consistent(hdr, vals)
        if got is None:
            raise ServoProcessError("shared state stayed inconsistent (writer stalled mid-update)")
        return got

    def latest_state(self) -> tuple[float, np.ndarray]:
        """(stamp [s, executor clock], measured state copy ``[ad]``): NaN stamp before the first tick."""
        stamp, state, _, _ = self._read_shared()
        return stamp, state

    @property
    def mode(self) -> str:
        """The child's mode; "stopped" after shutdown, "dead" when the child is gone otherwise."""
        if self._stopped:
            return "stopped"
        if not self.alive:
            return "dead" if self._proc is not None else "idle"
        return MODES[self._read_shared()[2]]

    @property
    def active_t_obs_s(self) -> float:
        return self._read_shared()[3]

    @property
    def d(self) -> int:
        """d [steps] as of the last submit / set_fixed_d reply (d only changes there)."""
        return self._d

    @property
    def has_estimate(self) -> bool:
        return self._has_estimate

    def now_s(self) -> float:
        """Executor time [s]: the child's clock (monotonic + the child's offset)."""
        return time.monotonic() + self._offset_s

    def to_executor_time(self, monotonic_s: float) -> float:
        return monotonic_s + self._offset_s

    def __del__(self) -> None:  # last resort; shutdown() is the way
        p = getattr(self, "_proc", None)
        if p is not None and not getattr(self, "_stopped", True) and p.is_alive():
            p.kill()
