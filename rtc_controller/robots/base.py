"""The ArmDriver interface every robot backend implements, plus helpers shared by the drivers.

State and commands are flat vectors in the action space (``action_space.py``): per arm x, y, z [m], rotation
vector [rad], gripper width [m] (Cartesian) or 7 joint positions [rad] + gripper width [m] (joint).
The Flexiv RDK wants poses as [x, y, z, qw, qx, qy, qz]: convert at the driver boundary with
:func:`action_to_pose` / :func:`pose_to_action`.

Threading: ``command`` and ``read_state`` are called from the servo thread every tick and must not block;
gripper moves block on the real hardware, so drivers hand them to a :class:`GripperWorker`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from rtc_controller.action_space import ActionSpaceKind, ArmSlices
from rtc_controller.control import so3

log = logging.getLogger(__name__)

DEFAULT_GRIPPER_MIN_CHANGE_M = 0.002  # gripper commands closer than this to the last sent one are not sent


class DriverError(RuntimeError):
    """Connection lost, enabling failed, or the robot refused a command."""


@dataclass(frozen=True)
class DriverStatus:
    """Driver health for diagnostics. ``fault`` = the robot reports a fault (commands are not executed)."""

    connected: bool
    enabled: bool
    fault: bool
    message: str = ""


@runtime_checkable
class ArmDriver(Protocol):
    """One or two arms behind one interface (see the module docstring for the vector layout)."""

    kind: ActionSpaceKind
    num_arms: int

    def connect(self) -> None:
        """Connect, clear a pending fault, enable/servo on, wait until operational. Raises DriverError."""

    def read_state(self, out: np.ndarray) -> bool:
        """Write the measured state ``[ad]`` into ``out``; True when healthy, False when faulted.

        Raises DriverError when the connection is lost. Non-blocking (servo thread).
        """

    def command(self, cmd: np.ndarray) -> None:
        """Send one servo-tick target ``cmd[ad]`` (absolute, already safety-filtered). Non-blocking."""

    def stop(self) -> None:
        """Stop streaming and bring the arms to rest (keeps the connection)."""

    def clear_fault(self) -> bool:
        """Try to clear a fault and re-enable; True when the robot is operational again."""

    def status(self) -> DriverStatus:
        """Current health (cheap)."""

    def close(self) -> None:
        """Stop and disconnect; idempotent."""


def action_to_pose(cmd: Sequence[float], sl: ArmSlices) -> list[float]:
    """One arm's [x, y, z, rx, ry, rz] from the action vector -> Flexiv pose [x, y, z, qw, qx, qy, qz]."""
    p = sl.position.start
    r = sl.rotation.start  # type: ignore[union-attr]
    q = so3.rotvec_to_quat_s((cmd[r], cmd[r + 1], cmd[r + 2]))
    return [float(cmd[p]), float(cmd[p + 1]), float(cmd[p + 2]), q[0], q[1], q[2], q[3]]


def pose_to_action(pose: Sequence[float], sl: ArmSlices, out: np.ndarray, ref: Sequence[float] | None = None) -> None:
    """Flexiv pose [x, y, z, qw, qx, qy, qz] -> the arm's position + rotation vector in ``out``.

    ``ref`` (a rotation vector) picks the equivalent rotation vector nearest to it (no ±π flips).
    """
    p = sl.position.start
    r = sl.rotation.start  # type: ignore[union-attr]
    out[p : p + 3] = pose[0:3]
    rv = so3.quat_to_rotvec_s((pose[3], pose[4], pose[5], pose[6]))
    if ref is not None:
        rv = so3.rotvec_near_s(rv, (ref[0], ref[1], ref[2]))
    out[r : r + 3] = rv


class GripperWorker:
    """Sends gripper widths from a worker thread, only on meaningful change (blocking calls off the servo thread).

    ``request(arm, width_m)`` is cheap and non-blocking: it keeps the latest width per arm in a slot;
    the worker calls ``send(arm, width_m)`` when the width moved by more than ``min_change_m`` since the last send.
    """

    def __init__(
        self,
        send: Callable[[int, float], None],
        num_arms: int,
        *,
        min_change_m: float = DEFAULT_GRIPPER_MIN_CHANGE_M,
        initial_m: Sequence[float | None] | None = None,
        name: str = "gripper_worker",
    ) -> None:
        """``initial_m``: the grippers' measured widths (None = unknown: the first request is always sent)."""
        self._send = send
        self._min = min_change_m
        self._wanted: list[float | None] = [None] * num_arms
        self._sent: list[float | None] = list(initial_m) if initial_m is not None else [None] * num_arms
        self._requested: list[float | None] = list(self._sent)  # last width accepted for sending (servo thread)
        self._cv = threading.Condition()
        self._stop = False
        self.sent_count = 0
        self.errors = 0
        self.last_error: str = ""
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def request(self, arm: int, width_m: float) -> None:
        last = self._requested[arm]
        if last is not None and abs(width_m - last) < self._min:
            return
        self._requested[arm] = width_m
        with self._cv:
            self._wanted[arm] = width_m
            self._cv.notify()

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._stop and all(w is None for w in self._wanted):
                    self._cv.wait()
                if self._stop:
                    return
                jobs = [(i, w) for i, w in enumerate(self._wanted) if w is not None]
                self._wanted = [None] * len(self._wanted)
            for arm, width in jobs:
                try:
                    self._send(arm, width)
                    self._sent[arm] = width
                    self.sent_count += 1
                except Exception as exc:  # a gripper error must not kill the worker; reported in diagnostics
                    self.errors += 1
                    self.last_error = f"arm {arm}: {exc}"
                    log.warning("gripper command failed: %s", self.last_error)

    def close(self, timeout_s: float = 2.0) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify()
        self._thread.join(timeout_s)
