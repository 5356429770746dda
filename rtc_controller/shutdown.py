"""One clean shutdown path for every process of the rig, whatever stops it (ROS-free).

A process asks :class:`ShutdownSignals` whether it should stop instead of being interrupted by an exception:
- SIGINT, SIGTERM and SIGHUP set a flag (:attr:`ShutdownSignals.requested`) and never raise. The process finishes
  what it is doing, then shuts down in its normal code path: ramp down, release shared memory, close the bag,
  exit 0. A ``KeyboardInterrupt`` raised inside a ``finally`` (the second Ctrl-C, or launch forwarding SIGINT to a
  process group that the terminal or ``timeout -s INT`` already signalled) cut those paths short before.
- Further signals while shutting down are counted and ignored; one line on stderr says so. SIGKILL (and
  Ctrl-\\, SIGQUIT, left at its default) remain the ways to force an exit.
- The parent exiting (``ros2 launch``/``rtc-bringup`` killed) is a shutdown request too: on Linux the kernel sends
  ``PARENT_DEATH_SIGNAL`` when the parent dies (``prctl(PR_SET_PDEATHSIG)``); elsewhere a thread polls the parent
  pid.
- A SIGHUP inherited as ignored (``nohup``) stays ignored, and then the parent is not watched either.
- ``interrupt_again``: for work whose state is safe at any moment (training: the last checkpoint is on disk), a
  second SIGINT interrupts at once (``KeyboardInterrupt`` in the main thread) instead of being ignored.

Usage (the ROS nodes go through ``rtc_controller.ros.spin.run_node``, which does this around rclpy)::

    with ShutdownSignals("rtc-bringup") as signals:
        while not signals.wait(0.1):
            ...                              # work
        cleanup()                            # runs to the end, whatever signals arrive meanwhile
    return 0
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from types import FrameType

HANDLED_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
PARENT_POLL_S = 0.5  # where prctl is not available: how often the parent pid is checked [s]
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
PARENT_EXITED = "parent exited"
# The kernel's parent-death signal: a real-time signal of its own, so it is never mistaken for a SIGTERM sent to
# the process group (systemd, docker); glibc's SIGRTMIN already excludes the ones NPTL reserves.
PARENT_DEATH_SIGNAL = signal.SIGRTMIN + 3 if hasattr(signal, "SIGRTMIN") else None
_PROCESS: ShutdownSignals | None = None  # the process's instance, installed by for_process()


def set_parent_death_signal(sig: int) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent dies (Linux); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


class ShutdownSignals:
    """Turns SIGINT/SIGTERM/SIGHUP and the parent's exit into one shutdown request (see the module docstring).

    ``name`` prefixes the stderr lines. ``on_request(reason)`` callbacks run once, in the main thread (inside the
    signal handler) or in the parent-watch thread: keep them short and non-blocking (set an event, wake a loop).
    """

    def __init__(
        self,
        name: str,
        *,
        signals: Sequence[signal.Signals] = HANDLED_SIGNALS,
        watch_parent: bool = True,
        on_request: Callable[[str], None] | None = None,
        interrupt_again: bool = False,
    ) -> None:
        self.name = name
        self.interrupt_again = interrupt_again
        self.signals = tuple(signals)
        self.watch_parent = watch_parent
        self.requested = threading.Event()
        self.reason = ""
        self.count = 0  # shutdown requests received (signals, the parent's exit, request())
        self._callbacks: list[Callable[[str], None]] = [on_request] if on_request is not None else []
        self._previous: dict[int, object] = {}
        self._parent_pid = os.getppid()
        self._installed = False
        self._lock = threading.RLock()  # a handler may interrupt request() in the same (main) thread

    @classmethod
    def for_process(cls, name: str) -> ShutdownSignals:
        """The process's one instance, installed: the first call (``rtc_controller.ros.entry``, before the heavy
        imports, so that a signal during them is a request too, not a KeyboardInterrupt) creates it; later calls
        (``run_node``) adopt it under their name."""
        global _PROCESS
        if _PROCESS is None:
            _PROCESS = cls(name)
        _PROCESS.name = name
        return _PROCESS.install()

    # ---- install / uninstall -----------------------------------------------------------------------------------
    def install(self) -> ShutdownSignals:
        """Install the handlers (main thread only) and start watching the parent."""
        if self._installed:
            return self
        watch = self.watch_parent
        for sig in self.signals:
            current = signal.getsignal(sig)
            if sig == signal.SIGHUP and current == signal.SIG_IGN:  # nohup: keep running when the terminal goes
                watch = False
                continue
            self._previous[sig] = current
            signal.signal(sig, self._handle)
        self._installed = True
        if watch and self._parent_pid > 1:
            self._watch_parent()
        return self

    def uninstall(self) -> None:
        """Restore the handlers that were there before ``install`` (the parent watch ends with the process)."""
        if PARENT_DEATH_SIGNAL in self._previous:
            set_parent_death_signal(0)  # no parent-death signal without its handler (its default would kill)
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous.clear()
        self._installed = False

    def finish(self) -> None:
        """Everything is cleaned up: ignore further signals until the process is gone. (Interpreter teardown resets
        Python handlers to the default action, so a late SIGHUP or SIGTERM would otherwise kill the process
        during it and turn a clean exit 0 into -1; SIG_IGN is kept through teardown.)"""
        for sig in list(self._previous):
            signal.signal(sig, signal.SIG_IGN)

    def __enter__(self) -> ShutdownSignals:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.uninstall()

    def _watch_parent(self) -> None:
        if PARENT_DEATH_SIGNAL is not None:
            self._previous[PARENT_DEATH_SIGNAL] = signal.signal(PARENT_DEATH_SIGNAL, lambda *_: self.request(PARENT_EXITED))
            if set_parent_death_signal(PARENT_DEATH_SIGNAL):
                if os.getppid() != self._parent_pid:  # it died before prctl took effect
                    self.request(PARENT_EXITED)
                return
        threading.Thread(target=self._poll_parent, name=f"{self.name}_parent_watch", daemon=True).start()

    def _poll_parent(self) -> None:
        while not self.requested.wait(PARENT_POLL_S):
            if os.getppid() != self._parent_pid:
                self.request(PARENT_EXITED)

    # ---- requests ----------------------------------------------------------------------------------------------
    def add_callback(self, callback: Callable[[str], None]) -> None:
        """Also call ``callback(reason)`` on the first request (at once if it was requested already)."""
        self._callbacks.append(callback)
        if self.requested.is_set():
            callback(self.reason)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.interrupt_again and signum == signal.SIGINT and self.requested.is_set():
            self._say("SIGINT again: interrupting at once")
            raise KeyboardInterrupt
        self.request(signal.Signals(signum).name)

    def request(self, reason: str) -> None:
        """Request shutdown (the first reason is kept); later requests are counted and reported once each."""
        with self._lock:
            self.count += 1
            first = not self.requested.is_set()
            if first:
                self.reason = reason
                self.requested.set()
        if first:
            self._say(f"{reason}: shutting down")
            for callback in list(self._callbacks):
                callback(reason)
        else:
            self._say(f"{reason} again (#{self.count}): ignored, still shutting down cleanly ({self.reason})")

    def _say(self, text: str) -> None:
        # os.write, not print: a handler may run while the main thread is inside print (reentrant call error).
        try:
            os.write(sys.stderr.fileno(), f"[{self.name}] {text}\n".encode())
        except (OSError, ValueError, AttributeError):
            pass

    def wait(self, timeout_s: float | None = None) -> bool:
        """True once shutdown is requested (waits at most ``timeout_s``)."""
        return self.requested.wait(timeout_s)
