"""A simulated gripper for the gripper process, whose commands block like the real ``Gripper.Move``.

``Gripper.Move`` is ``[Blocking]`` until the request is delivered, and a pybind11 binding may keep the GIL for all
of it. :func:`hold_gil` models exactly that: it sleeps in C *with the GIL held* (``ctypes.PyDLL`` does not release
it), so every other thread of the calling process stops meanwhile. The sim driver (``robots/sim.py``) and the
Flexiv stand-ins (``test/flexiv_standins.py``) use it; the servo-loop benchmark shows what it does to a servo loop
in the same process and that the gripper process removes it.
"""

from __future__ import annotations

import ctypes
import math
import time

_LIBC = ctypes.PyDLL(None)  # PyDLL: calls keep the GIL
US_PER_S = 1_000_000
DEFAULT_WIDTH_M = 0.04


def hold_gil(seconds: float) -> None:
    """Block the calling thread for ``seconds`` while holding the GIL (models a blocking SDK call)."""
    if seconds > 0:
        _LIBC.usleep(ctypes.c_uint(int(seconds * US_PER_S)))


class SimGripperBackend:
    """``GripperBackend`` for the gripper process: ``num_arms`` grippers whose width moves at ``speed_m_s``
    toward the last target; ``move`` blocks for ``move_block_s`` holding the GIL."""

    def __init__(self, num_arms: int = 2, *, move_block_s: float = 0.01, speed_m_s: float = 0.1,
                 width_range_m: tuple[float, float] = (0.0, 0.1), initial_m: float = DEFAULT_WIDTH_M) -> None:  # fmt: skip
        self.num_arms = num_arms
        self.move_block_s = move_block_s
        self.speed_m_s = speed_m_s
        self.range = width_range_m
        self._width = [initial_m] * num_arms
        self._target = [initial_m] * num_arms
        self._t = time.monotonic()
        self.moves = 0

    def connect(self) -> list[tuple[float, float] | None]:
        return [self.range] * self.num_arms

    def _advance(self) -> None:
        now = time.monotonic()
        step = self.speed_m_s * (now - self._t)
        self._t = now
        for arm in range(self.num_arms):
            d = self._target[arm] - self._width[arm]
            self._width[arm] += math.copysign(min(abs(d), step), d)

    def move(self, arm: int, width_m: float) -> None:
        hold_gil(self.move_block_s)
        self._advance()
        self._target[arm] = min(max(width_m, self.range[0]), self.range[1])
        self.moves += 1

    def read(self, arm: int) -> tuple[float, float, bool]:
        self._advance()
        return self._width[arm], 0.0, self._width[arm] != self._target[arm]

    def healthy(self) -> str:
        return ""

    def close(self) -> None:
        pass


class InProcessGripper:
    """The layout the gripper process replaces, kept for comparison only (``bench_executor_loop.py
    --gripper-thread``, a test): the backend's blocking ``move`` runs on a thread of the streaming process.
    Same interface as ``GripperProcess``: ``start``, ``request``, ``width``, ``status``, ``close``."""

    def __init__(self, backend: SimGripperBackend, num_arms: int, *, min_change_m: float = 0.002) -> None:
        import threading

        self._backend = backend
        self.num_arms = num_arms
        self._min = min_change_m
        self._wanted: list[float | None] = [None] * num_arms
        self._requested: list[float | None] = [None] * num_arms
        self._cv = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="gripper_thread", daemon=True)
        self.sent = 0

    def start(self) -> None:
        self._backend.connect()
        self._requested = [self._backend.read(a)[0] for a in range(self.num_arms)]
        self._thread.start()

    def request(self, arm: int, width_m: float) -> None:
        last = self._requested[arm]
        if last is not None and abs(width_m - last) < self._min:  # (the comparison layout: no settle rule)
            return
        self._requested[arm] = width_m
        with self._cv:
            self._wanted[arm] = width_m
            self._cv.notify()

    def width(self, arm: int) -> float:
        return self._backend.read(arm)[0]

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._stop and all(w is None for w in self._wanted):
                    self._cv.wait()
                if self._stop:
                    return
                jobs = [(a, w) for a, w in enumerate(self._wanted) if w is not None]
                self._wanted = [None] * self.num_arms
            for arm, width in jobs:
                self._backend.move(arm, width)
                self.sent += 1

    def close(self) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify()
        self._thread.join(2.0)
