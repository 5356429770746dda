"""Flexiv RDK 1.9.x driver (Rizon 4/4s): two robots, one serial number each.

Start-up per robot: connect (``Robot(serial)``), ``ClearFault`` when faulted, ``Enable``, wait for
``operational()`` with a timeout, ``SwitchMode(NRT_CARTESIAN_MOTION_FORCE)`` (``NRT_JOINT_POSITION`` for the joint
action space). The RDK 1.9 Python binding has no real-time streaming: the servo loop's commands are forwarded with
``SendCartesianMotionForce(pose, wrench, velocity, max_linear_vel, max_angular_vel, max_linear_acc,
max_angular_acc)`` at ``command_rate_hz`` (≤ 1 kHz, every ``servo_rate_hz / command_rate_hz``-th tick) with the
velocity/acceleration caps, or ``SendJointPosition(positions, velocities, max_vel, max_acc)``.
Grippers (``Gripper(robot)``, ``Enable(name)``, ``Move(width, velocity, force_limit)``) run on a worker thread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from rtc_controller.action_space import ActionSpaceKind, arm_slices
from rtc_controller.robots.base import (
    DEFAULT_GRIPPER_MIN_CHANGE_M,
    DriverError,
    GripperWorker,
    action_to_pose,
    pose_to_action,
)
from rtc_controller.robots.flexiv_common import ApiUse, FlexivDriverBase, call, check_api, import_rdk


JOINTS_PER_ARM = 7
MAX_COMMAND_RATE_HZ = 1000.0
CARTESIAN_MODE = "NRT_CARTESIAN_MOTION_FORCE"
JOINT_MODE = "NRT_JOINT_POSITION"
ZERO6 = [0.0] * 6

API_USED: tuple[ApiUse, ...] = (
    ApiUse("Robot", "__init__", ("robot_sn",)),
    ApiUse("Robot", "fault", ()),
    ApiUse("Robot", "ClearFault", ("timeout_sec",)),
    ApiUse("Robot", "Enable", ()),
    ApiUse("Robot", "operational", ()),
    ApiUse("Robot", "connected", ()),
    ApiUse("Robot", "SwitchMode", ("mode",)),
    ApiUse(
        "Robot",
        "SendCartesianMotionForce",
        ("pose", "wrench", "velocity", "max_linear_vel", "max_angular_vel", "max_linear_acc", "max_angular_acc"),
    ),
    ApiUse("Robot", "SendJointPosition", ("positions", "velocities", "max_vel", "max_acc")),
    ApiUse("Robot", "states", ()),
    ApiUse("Robot", "Stop", ()),
    ApiUse("RobotStates", "tcp_pose"),
    ApiUse("RobotStates", "q"),
    ApiUse("Mode", CARTESIAN_MODE),
    ApiUse("Mode", JOINT_MODE),
    ApiUse("Gripper", "__init__", ("robot",)),
    ApiUse("Gripper", "Enable", ("name",)),
    ApiUse("Gripper", "Move", ("width", "velocity", "force_limit")),
    ApiUse("Gripper", "states", ()),
    ApiUse("GripperStates", "width"),
)


@dataclass(frozen=True)
class FlexivRdk1Config:
    """Attributes:
    serial_numbers: one per arm (left, right), e.g. ("Rizon4s-123456", "Rizon4s-123457").
    kind: the action space.
    command_rate_hz: SendCartesianMotionForce/SendJointPosition call rate [Hz] (≤ 1000, divides servo_rate_hz).
    servo_rate_hz: the executor's servo rate [Hz] (command() is called at this rate).
    connect_timeout_s, clear_fault_timeout_s: start-up timeouts [s].
    max_linear_speed_m_s, max_angular_speed_rad_s, max_linear_acc_m_s2, max_angular_acc_rad_s2: the RDK's caps.
    max_joint_speed_rad_s, max_joint_acc_rad_s2: SendJointPosition's caps.
    gripper_names: per arm ("" / () = no gripper commands); gripper_velocity_m_s, gripper_force_n: Move's args.
    """

    serial_numbers: tuple[str, ...]
    kind: ActionSpaceKind = "cartesian"
    command_rate_hz: float = MAX_COMMAND_RATE_HZ
    servo_rate_hz: float = 1000.0
    connect_timeout_s: float = 20.0
    clear_fault_timeout_s: int = 30
    max_linear_speed_m_s: float = 1.0
    max_angular_speed_rad_s: float = math.radians(300.0)
    max_linear_acc_m_s2: float = 1.5
    max_angular_acc_rad_s2: float = 5.0
    max_joint_speed_rad_s: float = 1.0
    max_joint_acc_rad_s2: float = 5.0
    gripper_names: tuple[str, ...] = ()
    gripper_velocity_m_s: float = 0.1
    gripper_force_n: float = 20.0
    gripper_min_change_m: float = DEFAULT_GRIPPER_MIN_CHANGE_M

    def __post_init__(self) -> None:
        if not self.serial_numbers or not all(self.serial_numbers):
            raise ValueError("one non-empty serial number per arm")
        if not 0 < self.command_rate_hz <= MAX_COMMAND_RATE_HZ:
            raise ValueError(f"command_rate_hz must be in (0, {MAX_COMMAND_RATE_HZ}], got {self.command_rate_hz}")
        if self.command_rate_hz > self.servo_rate_hz:
            raise ValueError("command_rate_hz cannot exceed servo_rate_hz")
        if self.gripper_names and len(self.gripper_names) != len(self.serial_numbers):
            raise ValueError("gripper_names needs one name per arm (or none)")
        caps = (self.max_linear_speed_m_s, self.max_angular_speed_rad_s, self.max_linear_acc_m_s2,
                self.max_angular_acc_rad_s2, self.max_joint_speed_rad_s, self.max_joint_acc_rad_s2)  # fmt: skip
        if not all(v > 0 for v in caps):
            raise ValueError("velocity/acceleration caps must be > 0 (the RDK refuses non-positive values)")

    @property
    def decimation(self) -> int:
        """Send every n-th servo tick."""
        return max(1, round(self.servo_rate_hz / self.command_rate_hz))


class FlexivRdk1Driver(FlexivDriverBase):
    """ArmDriver for flexivrdk 1.9.x. ``rdk`` injects a stand-in module (tests); default: ``import flexivrdk``."""

    LABEL = "flexivrdk 1.9"
    ACTIVE_MESSAGE = "sending"
    CARTESIAN_MODE = CARTESIAN_MODE
    JOINT_MODE = JOINT_MODE

    def __init__(self, config: FlexivRdk1Config, *, rdk: ModuleType | None = None) -> None:
        self.config = config
        self.kind: ActionSpaceKind = config.kind
        self.num_arms = len(config.serial_numbers)
        super().__init__()
        self._rdk_in = rdk
        self._rdk: Any = None
        self._sl = arm_slices(config.kind, self.num_arms)
        self._grippers: list[Any] = []
        self._gripper_width = [0.0] * self.num_arms
        self._last_rot = [(0.0, 0.0, 0.0)] * self.num_arms
        self._tick = 0
        c = config
        self._jcaps = ([c.max_joint_speed_rad_s] * JOINTS_PER_ARM, [c.max_joint_acc_rad_s2] * JOINTS_PER_ARM)
        self._zero_j = [0.0] * JOINTS_PER_ARM

    def connect(self) -> None:
        rdk = self._rdk = import_rdk(self._rdk_in)
        problems = check_api(rdk, API_USED)
        if problems:  # e.g. the other RDK generation is installed
            version = getattr(rdk, "__version__", "?")
            raise DriverError(f"flexivrdk {version} lacks what this driver (1.9.x) needs: " + "; ".join(problems[:3]))
        c = self.config
        self._robots = [call(f"connect {sn}", rdk.Robot, sn) for sn in c.serial_numbers]
        for robot in self._robots:
            self._enable(robot)
        if c.gripper_names and any(c.gripper_names):
            self._grippers = [call("Gripper", rdk.Gripper, r) for r in self._robots]
            for g, name in zip(self._grippers, c.gripper_names):
                if name:
                    call(f"Gripper.Enable {name}", g.Enable, name)
            initial = [g.states().width if name else None for g, name in zip(self._grippers, c.gripper_names)]
            self._gripper_worker = GripperWorker(
                self._send_gripper, self.num_arms, min_change_m=c.gripper_min_change_m, initial_m=initial
            )
        self._enabled = True
        self._message = self.ACTIVE_MESSAGE

    def _power_on(self, robot: Any) -> None:
        call("Enable", robot.Enable)

    def _send_gripper(self, arm: int, width_m: float) -> None:  # worker thread
        c = self.config
        self._grippers[arm].Move(float(width_m), float(c.gripper_velocity_m_s), float(c.gripper_force_n))

    # ---- servo thread ------------------------------------------------------------------------------------------
    def read_state(self, out: np.ndarray) -> bool:
        healthy = True
        for arm, (robot, sl) in enumerate(zip(self._robots, self._sl)):
            if not robot.connected():
                raise DriverError("flexivrdk 1.9: connection lost")
            healthy = healthy and not robot.fault()
            st = robot.states()
            if sl.rotation is not None:
                pose_to_action(st.tcp_pose, sl, out, self._last_rot[arm])
                r = sl.rotation.start
                self._last_rot[arm] = (out[r], out[r + 1], out[r + 2])
            else:
                out[sl.joints] = st.q
            has_gripper = bool(self._grippers) and bool(self.config.gripper_names[arm])
            out[sl.gripper] = self._grippers[arm].states().width if has_gripper else self._gripper_width[arm]
        return healthy

    def command(self, cmd: np.ndarray) -> None:
        self._tick += 1
        c = cmd.tolist()
        for arm, sl in enumerate(self._sl):
            self._gripper_width[arm] = c[sl.gripper]
            if self._gripper_worker is not None and self.config.gripper_names[arm]:
                self._gripper_worker.request(arm, c[sl.gripper])
        if self._tick % self.config.decimation:
            return
        cfg = self.config
        try:
            for robot, sl in zip(self._robots, self._sl):
                if sl.rotation is not None:
                    robot.SendCartesianMotionForce(
                        action_to_pose(c, sl), ZERO6, ZERO6, cfg.max_linear_speed_m_s, cfg.max_angular_speed_rad_s,
                        cfg.max_linear_acc_m_s2, cfg.max_angular_acc_rad_s2,
                    )  # fmt: skip
                else:
                    robot.SendJointPosition(c[sl.joints], self._zero_j, self._jcaps[0], self._jcaps[1])
        except (RuntimeError, ValueError, TypeError) as exc:
            raise DriverError(f"flexivrdk 1.9 send: {exc}") from exc
