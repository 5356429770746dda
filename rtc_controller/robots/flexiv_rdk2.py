"""Flexiv RDK 2.x driver (Enlight, MICO): one dual-arm robot with joint groups ARM_1/ARM_2, or one robot per arm.

Start-up: connect (``Robot(serial)``), ``ClearFault`` when faulted, ``ServoOn``, wait for ``operational()``
with a timeout, ``SwitchMode(RT_CARTESIAN_MOTION_FORCE)`` (or ``RT_JOINT_POSITION`` for the joint action space),
``SetTimelinessFailureLimit``. Every servo tick: ``StreamCartesianMotionForce({group: RtCartesianCmd(pose)})``
(pose = [x, y, z, qw, qx, qy, qz]) or ``StreamJointPosition({group: RtJointPositionCmd(q, dq, ddq)})``.
Grippers (``Gripper(robot)``, ``Enable(group, name)``, ``Move(group, width, velocity, force_limit)``) are driven
from a worker thread, only when the commanded width changes meaningfully.
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
CARTESIAN_MODE = "RT_CARTESIAN_MOTION_FORCE"
JOINT_MODE = "RT_JOINT_POSITION"

API_USED: tuple[ApiUse, ...] = (
    ApiUse("Robot", "__init__", ("robot_sn",)),
    ApiUse("Robot", "fault", ()),
    ApiUse("Robot", "ClearFault", ("timeout_sec",)),
    ApiUse("Robot", "ServoOn", ()),
    ApiUse("Robot", "operational", ()),
    ApiUse("Robot", "connected", ()),
    ApiUse("Robot", "SwitchMode", ("mode",)),
    ApiUse("Robot", "SetTimelinessFailureLimit", ("percentage",)),
    ApiUse("Robot", "StreamCartesianMotionForce", ("cmds",)),
    ApiUse("Robot", "StreamJointPosition", ("cmds",)),
    ApiUse("Robot", "states", ()),
    ApiUse("Robot", "Stop", ()),
    ApiUse("RtCartesianCmd", "__init__", ("pose_d",)),
    ApiUse("RtJointPositionCmd", "__init__", ("q_d", "dq_d", "ddq_d")),
    ApiUse("RtCartesianCmd", "pose_d"),
    ApiUse("RtJointPositionCmd", "q_d"),
    ApiUse("RobotStates", "tcp_pose"),
    ApiUse("RobotStates", "q"),
    ApiUse("Mode", CARTESIAN_MODE),
    ApiUse("Mode", JOINT_MODE),
    ApiUse("JointGroup", "ARM_1"),
    ApiUse("JointGroup", "ARM_2"),
    ApiUse("Gripper", "__init__", ("robot",)),
    ApiUse("Gripper", "Enable", ("group", "name")),
    ApiUse("Gripper", "Move", ("group", "width", "velocity", "force_limit")),
    ApiUse("Gripper", "states", ()),
    ApiUse("GripperStates", "width"),
)


@dataclass(frozen=True)
class FlexivRdk2Config:
    """Attributes:
    serial_numbers: one serial (a dual-arm robot, arms = joint_groups) or one per arm.
    joint_groups: JointGroup names per arm, e.g. ("ARM_1", "ARM_2"); with one robot per arm usually ("ARM_1", "ARM_1").
    kind: the action space.
    connect_timeout_s: wait for operational() after ServoOn [s].
    clear_fault_timeout_s: ClearFault's timeout [s] (int, as the RDK takes it).
    timeliness_failure_limit_pct: SetTimelinessFailureLimit [%] of late RT commands in a 1-s window.
    gripper_names: per arm the gripper to enable ("" or () = no gripper commands).
    gripper_velocity_m_s, gripper_force_n: Gripper.Move's velocity and force limit.
    gripper_min_change_m: only send gripper widths that moved at least this much.
    """

    serial_numbers: tuple[str, ...]
    joint_groups: tuple[str, ...] = ("ARM_1", "ARM_2")
    kind: ActionSpaceKind = "cartesian"
    connect_timeout_s: float = 20.0
    clear_fault_timeout_s: int = 30
    timeliness_failure_limit_pct: float = 2.0
    gripper_names: tuple[str, ...] = ()
    gripper_velocity_m_s: float = 0.1
    gripper_force_n: float = 20.0
    gripper_min_change_m: float = DEFAULT_GRIPPER_MIN_CHANGE_M

    def __post_init__(self) -> None:
        if not self.serial_numbers or not all(self.serial_numbers):
            raise ValueError("at least one non-empty serial number")
        if not self.joint_groups:
            raise ValueError("at least one joint group")
        if len(self.serial_numbers) not in (1, len(self.joint_groups)):
            raise ValueError("give one serial (dual-arm robot) or one per joint group")
        if self.gripper_names and len(self.gripper_names) != len(self.joint_groups):
            raise ValueError("gripper_names needs one name per arm (or none)")
        if not 0.0 <= self.timeliness_failure_limit_pct <= 100.0:
            raise ValueError("timeliness_failure_limit_pct must be in [0, 100]")
        if self.connect_timeout_s <= 0:
            raise ValueError("connect_timeout_s must be > 0")

    @property
    def num_arms(self) -> int:
        return len(self.joint_groups)


class FlexivRdk2Driver(FlexivDriverBase):
    """ArmDriver for flexivrdk 2.x. ``rdk`` injects a stand-in module (tests); default: ``import flexivrdk``."""

    LABEL = "flexivrdk 2"
    ACTIVE_MESSAGE = "streaming"
    CARTESIAN_MODE = CARTESIAN_MODE
    JOINT_MODE = JOINT_MODE

    def __init__(self, config: FlexivRdk2Config, *, rdk: ModuleType | None = None) -> None:
        self.config = config
        self.kind: ActionSpaceKind = config.kind
        self.num_arms = config.num_arms
        super().__init__()
        self._rdk_in = rdk
        self._rdk: Any = None
        self._sl = arm_slices(config.kind, self.num_arms)
        self._arm_robot: list[int] = []  # robot index per arm
        self._groups: list[Any] = []  # JointGroup per arm
        self._cmds: list[dict[Any, Any]] = []  # per robot {group: preallocated command}
        self._grippers: list[Any] = []  # per robot Gripper (or None)
        self._gripper_width = [math.nan] * self.num_arms
        self._last_rot = [(0.0, 0.0, 0.0)] * self.num_arms

    # ---- lifecycle ---------------------------------------------------------------------------------------------
    def connect(self) -> None:
        rdk = self._rdk = import_rdk(self._rdk_in)
        problems = check_api(rdk, API_USED)
        if problems:  # e.g. the other RDK generation is installed
            version = getattr(rdk, "__version__", "?")
            raise DriverError(f"flexivrdk {version} lacks what this driver (2.x) needs: " + "; ".join(problems[:3]))
        c = self.config
        self._robots = [call(f"connect {sn}", rdk.Robot, sn) for sn in c.serial_numbers]
        self._arm_robot = [0 if len(self._robots) == 1 else i for i in range(self.num_arms)]
        try:
            self._groups = [getattr(rdk.JointGroup, g) for g in c.joint_groups]
        except AttributeError as exc:
            raise DriverError(f"unknown joint group in {c.joint_groups}") from exc
        for robot in self._robots:
            self._enable(robot)
        self._cmds = [{} for _ in self._robots]
        for arm, group in enumerate(self._groups):
            if self.kind == "cartesian":
                cmd = rdk.RtCartesianCmd([0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0])
            else:
                zeros = [0.0] * JOINTS_PER_ARM
                cmd = rdk.RtJointPositionCmd(zeros, zeros, zeros)
            self._cmds[self._arm_robot[arm]][group] = cmd
        if c.gripper_names and any(c.gripper_names):
            self._grippers = [call("Gripper", rdk.Gripper, r) for r in self._robots]
            for arm, name in enumerate(c.gripper_names):
                if name:
                    call(f"Gripper.Enable {name}", self._grippers[self._arm_robot[arm]].Enable, self._groups[arm], name)
            initial = []
            for arm, group in enumerate(self._groups):
                gs = self._grippers[self._arm_robot[arm]].states()
                initial.append(gs[group].width if group in gs else None)
            self._gripper_worker = GripperWorker(
                self._send_gripper, self.num_arms, min_change_m=c.gripper_min_change_m, initial_m=initial
            )
        self._enabled = True
        self._message = self.ACTIVE_MESSAGE

    def _power_on(self, robot: Any) -> None:
        call("ServoOn", robot.ServoOn)

    def _after_mode_switch(self, robot: Any) -> None:
        call("SetTimelinessFailureLimit", robot.SetTimelinessFailureLimit, float(self.config.timeliness_failure_limit_pct))

    def _send_gripper(self, arm: int, width_m: float) -> None:  # worker thread
        c = self.config
        g = self._grippers[self._arm_robot[arm]]
        g.Move(self._groups[arm], float(width_m), float(c.gripper_velocity_m_s), float(c.gripper_force_n))

    # ---- servo thread ------------------------------------------------------------------------------------------
    def read_state(self, out: np.ndarray) -> bool:
        healthy = True
        states = []
        for robot in self._robots:
            if not robot.connected():
                raise DriverError("flexivrdk 2: connection lost")
            healthy = healthy and not robot.fault()
            states.append(robot.states())
        gstates = [g.states() for g in self._grippers] if self._grippers else None
        for arm, sl in enumerate(self._sl):
            ri = self._arm_robot[arm]
            st = states[ri][self._groups[arm]]
            if sl.rotation is not None:
                pose_to_action(st.tcp_pose, sl, out, self._last_rot[arm])
                r = sl.rotation.start
                self._last_rot[arm] = (out[r], out[r + 1], out[r + 2])
            else:
                out[sl.joints] = st.q
            width = self._gripper_width[arm]
            if gstates is not None and self._groups[arm] in gstates[ri]:
                width = gstates[ri][self._groups[arm]].width
            out[sl.gripper] = width if math.isfinite(width) else 0.0
        return healthy

    def command(self, cmd: np.ndarray) -> None:
        c = cmd.tolist()
        for arm, sl in enumerate(self._sl):
            target = self._cmds[self._arm_robot[arm]][self._groups[arm]]
            if sl.rotation is not None:
                target.pose_d = action_to_pose(c, sl)
            else:
                target.q_d = c[sl.joints]
            self._gripper_width[arm] = c[sl.gripper]  # reported as the state when no gripper states exist
            if self._gripper_worker is not None and self.config.gripper_names[arm]:
                self._gripper_worker.request(arm, c[sl.gripper])
        try:
            for robot, cmds in zip(self._robots, self._cmds):
                if self.kind == "cartesian":
                    robot.StreamCartesianMotionForce(cmds)
                else:
                    robot.StreamJointPosition(cmds)
        except (RuntimeError, ValueError, TypeError) as exc:
            raise DriverError(f"flexivrdk 2 stream: {exc}") from exc
