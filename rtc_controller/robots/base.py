"""The ArmDriver interface every robot backend implements, plus helpers shared by the drivers.

State and commands are flat vectors in the action space (``action_space.py``): per arm x, y, z [m], rotation
vector [rad], gripper width [m] (Cartesian) or 7 joint positions [rad] + gripper width [m] (joint).
The Flexiv RDK wants poses as [x, y, z, qw, qx, qy, qz]: convert at the driver boundary with
:func:`action_to_pose` / :func:`pose_to_action`.

Threading: ``command``, ``read_state`` and ``hold_request`` are called from the servo thread every tick and must
not block. Blocking SDK calls (connecting, enabling, mode switches, stopping, clearing faults) happen only while no
command stream runs: in ``connect``, ``stop``, ``clear_fault`` and ``close``. Gripper moves block on the real
hardware, so drivers send them from a gripper process (``robots/gripper_process.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from rtc_controller.action_space import ActionSpaceKind, ArmSlices
from rtc_controller.geometry import so3

log = logging.getLogger(__name__)

DEFAULT_GRIPPER_MIN_CHANGE_M = 0.002  # gripper commands closer than this to the last sent one are not sent


class DriverError(RuntimeError):
    """Connection lost, enabling failed, or the robot refused a command."""


@dataclass(frozen=True)
class DriverStatus:
    """Driver health for diagnostics. ``fault`` = the robot reports a fault (commands are not executed).

    ``details``: (key, value) pairs for the diagnostics, e.g. per arm ``left_estop_released``,
    ``left_operational_status``, ``left_last_event``, gripper and timeliness figures (driver-specific).
    """

    connected: bool
    enabled: bool
    fault: bool
    message: str = ""
    details: tuple[tuple[str, str], ...] = ()


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

    # Optional (the executor uses them when present):
    # def hold_request(self) -> str: "" while fine, else why the executor should hold (e.g. the external wrench
    #     above its limit); non-blocking, called every tick after read_state.
    # def joint_limits(self) -> tuple[list[list[float]], list[list[float]]] | None: per arm (q_min, q_max) [rad]
    #     from the robot (joint action space), read at connect.


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
