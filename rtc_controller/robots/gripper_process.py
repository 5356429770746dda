"""Gripper commands in their own process with their own robot connection: no blocking RDK call while streaming.

Why: ``Gripper.Move`` is ``[Blocking]`` ("blocks until the request is successfully delivered") and
a pybind11 call may hold the GIL for all of it, so a gripper call from a thread of the streaming process stalls
the 1 kHz loop (a blocking ``Robot()`` call held another thread of the process for one tick in 2.5 s). The RDK
allows several connections to one robot (``Robot.__init__``: "Creating multiple instances of rdk::Robot that
connect to the same robot is allowed"), so the gripper gets a process of its own with its own ``Robot`` and
``Gripper``; the streaming process only reads and writes a few numbers in shared memory. (A *lite* instance would
be cheaper but "does not receive robot states", and the measured finger width is part of the robot state we
publish, so the gripper connection is a normal one by default.)

Layout: the driver (parent, in the servo process) owns a :class:`GripperProcess`; the child is a plain Python
subprocess (``subprocess.Popen``, not ``multiprocessing``: the servo process is a daemonic multiprocessing child,
which may not have multiprocessing children). It receives its backend factory pickled on stdin, builds the
backend (``GripperBackend``: connect, enable, read params; e.g. ``robots/flexiv_gripper.py``), and then loops every
``poll_s``: a new width request per arm -> ``backend.move`` (blocking: fine here), then the measured state into
shared memory. It exits when asked, when its parent process is gone, or when its connection is lost.

Shared memory (float64 slots; one writer each): per arm ``wanted`` width [m] and request number (parent), and
``width`` [m], ``force`` [N], ``moving``, ``sent``, ``errors`` (child); a header with the child's state and a
heartbeat; the last error as text. The parent writes only its slots and reads the child's without locks (a
torn read of one float is impossible on x86-64; a stale one is harmless).
"""

from __future__ import annotations

import logging
import math
import os
import pickle
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing import resource_tracker
from multiprocessing.shared_memory import SharedMemory
from typing import Protocol

import numpy as np

from rtc_controller.robots.base import DEFAULT_GRIPPER_MIN_CHANGE_M, DriverError

log = logging.getLogger(__name__)

POLL_S = 0.002  # the child's loop period [s]
SETTLED_TOL_M = 1e-6  # a settled width closer than this to the last one sent is not sent again [m]
START_TIMEOUT_S = 30.0  # interpreter start + imports + connect + enable [s]
STOP_WAIT_S = 2.0
ERROR_TEXT_BYTES = 400
# header slots
H_STATE, H_HEARTBEAT, H_STOP, H_ERR_LEN, H_LEN = 0, 1, 2, 3, 4
STARTING, READY, FAILED, EXITED = 0.0, 1.0, 2.0, 3.0
# per-arm slots
A_WANTED, A_SEQ, A_WIDTH, A_FORCE, A_MOVING, A_SENT, A_ERRORS, A_MIN_W, A_MAX_W, A_LEN = range(10)


class GripperBackend(Protocol):
    """What the gripper process drives (built in the child; every call may block)."""

    def connect(self) -> list[tuple[float, float] | None]:
        """Connect, enable, initialise; per arm the valid width range [m] (None: no gripper on that arm)."""

    def move(self, arm: int, width_m: float) -> None:
        """Move ``arm``'s fingers to ``width_m`` (clamped to the gripper's own ranges)."""

    def read(self, arm: int) -> tuple[float, float, bool]:
        """(width [m], force [N], moving) of ``arm``'s gripper."""

    def healthy(self) -> str:
        """"" while the connection is fine, else why the process should exit."""

    def close(self) -> None: ...


@dataclass(frozen=True)
class GripperStatus:
    """For diagnostics: the child's state, counters and the last error ("" = none)."""

    state: str
    sent: int
    errors: int
    last_error: str
    width_range_m: tuple[tuple[float, float] | None, ...]


def _layout(num_arms: int) -> tuple[int, int]:
    """(float slots before the text, total bytes)."""
    n = H_LEN + A_LEN * num_arms
    return n, 8 * n + ERROR_TEXT_BYTES


class GripperProcess:
    """The parent side (servo process). ``start()`` blocks until the child is ready (before streaming);
    ``request``/``width`` are non-blocking (servo thread); ``status`` is cheap; ``close`` ends the child."""

    def __init__(self, backend_factory: Callable[[], GripperBackend], num_arms: int, *,
                 min_change_m: float = DEFAULT_GRIPPER_MIN_CHANGE_M, start_timeout_s: float = START_TIMEOUT_S,
                 poll_s: float = POLL_S) -> None:  # fmt: skip
        if min_change_m < 0 or start_timeout_s <= 0 or poll_s <= 0:
            raise ValueError("min_change_m >= 0, start_timeout_s > 0 and poll_s > 0 required")
        self._factory = backend_factory
        self.num_arms = num_arms
        self._min = min_change_m
        self._timeout = start_timeout_s
        self._poll = poll_s
        self._proc: subprocess.Popen | None = None
        self._shm: SharedMemory | None = None
        self._v: np.ndarray | None = None
        self._requested: list[float | None] = [None] * num_arms  # the last width sent
        self._latest: list[float | None] = [None] * num_arms  # the width of the previous request call
        self._seq = [0] * num_arms
        self.width_range_m: tuple[tuple[float, float] | None, ...] = (None,) * num_arms

    def start(self) -> None:
        """Spawn the child and wait until its backend is connected (DriverError with the child's reason)."""
        n, size = _layout(self.num_arms)
        self._shm = SharedMemory(create=True, size=size)
        self._v = np.ndarray((n,), dtype=np.float64, buffer=self._shm.buf)
        self._v[:] = 0.0
        for arm in range(self.num_arms):
            self._v[H_LEN + A_LEN * arm + A_WIDTH] = math.nan
        payload = pickle.dumps((list(sys.path), self._shm.name, self.num_arms, self._poll, os.getpid(),
                                pickle.dumps(self._factory)))  # fmt: skip
        self._proc = subprocess.Popen(
            [sys.executable, "-c", "from rtc_controller.robots.gripper_process import child_main; child_main()"],
            stdin=subprocess.PIPE,
        )
        assert self._proc.stdin is not None
        self._proc.stdin.write(payload)
        self._proc.stdin.close()
        end = time.monotonic() + self._timeout
        while self._v[H_STATE] == STARTING:
            if self._proc.poll() is not None or time.monotonic() > end:
                break
            time.sleep(0.01)
        if self._v[H_STATE] != READY:
            reason = self._error_text() or (f"exited with code {self._proc.poll()}" if self._proc.poll() is not None
                                            else f"not ready after {self._timeout:.0f} s")  # fmt: skip
            self.close()
            raise DriverError(f"gripper process: {reason}")
        ranges = []
        for arm in range(self.num_arms):
            lo, hi = self._arm(arm, A_MIN_W), self._arm(arm, A_MAX_W)
            ranges.append((lo, hi) if math.isfinite(lo) and math.isfinite(hi) else None)
        self.width_range_m = tuple(ranges)
        for arm in range(self.num_arms):  # the grippers' current widths count as sent
            w = self._arm(arm, A_WIDTH)
            self._requested[arm] = w if math.isfinite(w) else None

    def _arm(self, arm: int, slot: int) -> float:
        assert self._v is not None
        return float(self._v[H_LEN + A_LEN * arm + slot])

    # ---- servo thread (non-blocking) ---------------------------------------------------------------------------
    def request(self, arm: int, width_m: float) -> None:
        """Ask for ``width_m`` on ``arm``: sent when it moved by at least ``min_change_m`` since the last one sent, or
        when it stopped changing (so the end of a ramp is always sent, never left up to min_change_m short)."""
        last, prev = self._requested[arm], self._latest[arm]
        self._latest[arm] = width_m
        if self._v is None or (last is not None and abs(width_m - last) < self._min
                               and (width_m != prev or abs(width_m - last) <= SETTLED_TOL_M)):  # fmt: skip
            return
        self._requested[arm] = width_m
        base = H_LEN + A_LEN * arm
        self._seq[arm] += 1
        self._v[base + A_WANTED] = width_m
        self._v[base + A_SEQ] = self._seq[arm]  # written last: the child reads the width after seeing it

    def width(self, arm: int) -> float:
        """The measured finger width [m] (NaN until known)."""
        return self._arm(arm, A_WIDTH) if self._v is not None else math.nan

    # ---- diagnostics and lifecycle -----------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None and self._v is not None and (
            self._v[H_STATE] == READY)  # fmt: skip

    def status(self) -> GripperStatus:
        if self._v is None:
            return GripperStatus("not started", 0, 0, "", self.width_range_m)
        state = {STARTING: "starting", READY: "ready", FAILED: "failed", EXITED: "exited"}.get(float(self._v[H_STATE]))
        if self._proc is not None and self._proc.poll() is not None and state == "ready":
            state = f"died (exit code {self._proc.poll()})"
        sent = sum(int(self._arm(a, A_SENT)) for a in range(self.num_arms))
        errors = sum(int(self._arm(a, A_ERRORS)) for a in range(self.num_arms))
        return GripperStatus(state or "unknown", sent, errors, self._error_text(), self.width_range_m)

    def _error_text(self) -> str:
        if self._shm is None or self._v is None:
            return ""
        n, _ = _layout(self.num_arms)
        k = int(self._v[H_ERR_LEN])
        return bytes(self._shm.buf[8 * n : 8 * n + k]).decode("utf-8", "replace")

    def close(self) -> None:
        """Ask the child to exit (then terminate/kill it) and release the shared memory; idempotent."""
        p = self._proc
        if p is not None and p.poll() is None:
            if self._v is not None:
                self._v[H_STOP] = 1.0
            try:
                p.wait(STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                p.terminate()
                try:
                    p.wait(STOP_WAIT_S)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(STOP_WAIT_S)
        self._proc = None
        self._v = None
        if self._shm is not None:
            self._shm.close()
            self._shm.unlink()
            self._shm = None


# ---- child -----------------------------------------------------------------------------------------------------
def _set_error(shm: SharedMemory, v: np.ndarray, n: int, text: str) -> None:
    data = text.encode("utf-8", "replace")[:ERROR_TEXT_BYTES]
    shm.buf[8 * n : 8 * n + len(data)] = data
    v[H_ERR_LEN] = len(data)


def _serve(backend: GripperBackend, shm: SharedMemory, v: np.ndarray, n: int, arms: list[int], poll_s: float,
           parent_pid: int) -> None:  # fmt: skip
    """The child's loop: forward new width requests, publish the measured state, exit when told or orphaned."""
    seen = [0.0] * (max(arms) + 1 if arms else 0)
    while v[H_STOP] == 0.0 and os.getppid() == parent_pid:
        for arm in arms:
            base = H_LEN + A_LEN * arm
            seq = float(v[base + A_SEQ])
            if seq != seen[arm]:
                seen[arm] = seq
                try:
                    backend.move(arm, float(v[base + A_WANTED]))
                    v[base + A_SENT] += 1
                except Exception as exc:  # reported in diagnostics; the next request is tried again
                    v[base + A_ERRORS] += 1
                    _set_error(shm, v, n, f"arm {arm}: {type(exc).__name__}: {exc}")
                    log.warning("gripper command failed on arm %d: %s", arm, exc)
            try:
                width, force, moving = backend.read(arm)
            except Exception as exc:
                _set_error(shm, v, n, f"arm {arm} state: {exc}")
                continue
            v[base + A_WIDTH], v[base + A_FORCE], v[base + A_MOVING] = width, force, float(moving)
        if reason := backend.healthy():
            _set_error(shm, v, n, reason)
            return
        v[H_HEARTBEAT] += 1
        time.sleep(poll_s)


def child_main() -> None:
    """Entry point of the gripper process (reads its setup from stdin; see the module docstring)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the parent decides
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    logging.basicConfig(level=logging.INFO, format="[gripper_process %(process)d] %(levelname)s %(name)s: %(message)s")
    path, shm_name, num_arms, poll_s, parent_pid, blob = pickle.loads(sys.stdin.buffer.read())
    sys.path[:] = path
    shm = SharedMemory(name=shm_name)
    resource_tracker.unregister(shm._name, "shared_memory")  # the parent owns (and unlinks) it
    n, _ = _layout(num_arms)
    v = np.ndarray((n,), dtype=np.float64, buffer=shm.buf)
    backend: GripperBackend | None = None
    try:
        backend = pickle.loads(blob)()
        ranges = backend.connect()
        for arm, r in enumerate(ranges):
            base = H_LEN + A_LEN * arm
            v[base + A_MIN_W], v[base + A_MAX_W] = r if r is not None else (math.nan, math.nan)
            if r is not None:
                v[base + A_WIDTH] = backend.read(arm)[0]
        v[H_STATE] = READY
        _serve(backend, shm, v, n, [a for a, r in enumerate(ranges) if r is not None], poll_s, parent_pid)
        v[H_STATE] = EXITED
    except Exception as exc:
        _set_error(shm, v, n, f"{type(exc).__name__}: {exc}")
        v[H_STATE] = FAILED
    finally:
        if backend is not None:
            try:
                backend.close()
            except Exception:
                log.exception("gripper backend close failed")
        del v
        shm.close()

