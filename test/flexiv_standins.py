"""Stand-ins for flexivrdk's Robot and Gripper that check arguments as the real binding does.

They are built around the REAL flexivrdk module passed in (its Mode, JointGroup, RtCartesianCmd,
RtJointPositionCmd, RobotStates, GripperStates), so a driver that builds the wrong data class, passes a wrong
size, a wrong enum or calls in the wrong mode fails here as it would on the robot. Signatures mirror the real
ones (``check_api`` accepts the stand-ins). Motion is ideal: the TCP/joints jump to the command.
Not a test module (no ``test_`` prefix): imported by test_flexiv_drivers.py and rdk19_driver_cases.py.
"""

from __future__ import annotations

import math
import re
import threading
import time
import types
from typing import Any

SN_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*([ -][A-Za-z0-9]+)*-\d{6}$")
HOME_POSE = [0.45, 0.0, 0.35, 0.0, 1.0, 0.0, 0.0]  # TCP pointing down: 180° about x
OPERATIONAL_AFTER_POLLS = 3
GRIPPER_MOVE_S = 0.01  # Move blocks this long (the real call blocks until delivered)
UNIT_QUAT_TOL = 1e-6


def _floats(v: Any, n: int | None, what: str) -> list[float]:
    if isinstance(v, (str, bytes)) or not hasattr(v, "__len__"):
        raise TypeError(f"{what}: expected a sequence of floats, got {type(v).__name__}")
    if n is not None and len(v) != n:
        raise TypeError(f"{what}: expected {n} values (FixedSize({n})), got {len(v)}")
    out = []
    for x in v:
        if not isinstance(x, (int, float)) or isinstance(x, bool):
            raise TypeError(f"{what}: {x!r} is not a float")
        out.append(float(x))
    return out


def _unit_quat(pose: list[float], what: str) -> None:
    if abs(math.sqrt(sum(c * c for c in pose[3:7])) - 1.0) > UNIT_QUAT_TOL:
        raise ValueError(f"{what}: quaternion {pose[3:7]} is not unit length")


class _RobotBase:
    """Shared state machine: connected -> (fault?) -> enabled -> operational after a few polls -> mode."""

    rdk: Any = None
    fault_at_connect = False
    estop_pressed = False
    instances: list = []

    def _init(self, robot_sn: Any) -> None:
        if not isinstance(robot_sn, str):
            raise TypeError("robot_sn must be str")
        if not SN_RE.match(robot_sn):
            raise ValueError(f"invalid serial number format: {robot_sn!r}")
        self.sn = robot_sn
        self.calls: list[tuple[str, Any]] = []
        self._connected = True
        self._fault = type(self).fault_at_connect
        self._enabled = False
        self._polls = 0
        self._mode = self.rdk.Mode.IDLE
        self.stream_count = 0
        self.stream_threads: set[int] = set()
        type(self).instances.append(self)

    # -- the robot's view --------------------------------------------------------------------------------------
    def inject_fault(self) -> None:
        self._fault = True

    def disconnect(self) -> None:
        self._connected = False

    def _require(self, mode_name: str, what: str) -> None:
        if not self._connected:
            raise RuntimeError(f"{what}: not connected")
        if self._mode != getattr(self.rdk.Mode, mode_name):
            raise RuntimeError(f"{what}: robot is not in {mode_name} (in {self._mode})")
        if not self.operational():
            raise RuntimeError(f"{what}: robot is not operational")

    # -- API shared by both generations --------------------------------------------------------------------------
    def fault(self) -> bool:
        return self._fault

    def connected(self) -> bool:
        return self._connected

    def operational(self) -> bool:
        if not (self._connected and self._enabled) or self._fault or type(self).estop_pressed:
            return False
        self._polls += 1
        return self._polls >= OPERATIONAL_AFTER_POLLS

    def ClearFault(self, timeout_sec: int = 30) -> bool:
        if not isinstance(timeout_sec, int):
            raise TypeError("timeout_sec must be int")
        self.calls.append(("ClearFault", timeout_sec))
        self._fault = False
        self._enabled = False
        return True

    def SwitchMode(self, mode: Any) -> None:
        if not isinstance(mode, self.rdk.Mode):
            raise TypeError(f"mode must be flexivrdk.Mode, got {type(mode).__name__}")
        if not self.operational():
            raise RuntimeError("SwitchMode: robot is not operational")
        self.calls.append(("SwitchMode", mode))
        self._mode = mode

    def Stop(self) -> None:
        self.calls.append(("Stop", None))
        self._mode = self.rdk.Mode.IDLE


class StandInRobot2(_RobotBase):
    """flexivrdk 2.x Robot: a dual-arm robot (ARM_1, ARM_2) unless ``single_arm`` is set on the class."""

    single_arm = False

    def __init__(self, robot_sn: str, verbose: bool = True, lite: bool = False) -> None:
        self._init(robot_sn)
        jg = self.rdk.JointGroup
        self.groups = [jg.ARM_1] if type(self).single_arm else [jg.ARM_1, jg.ARM_2]
        self._states = {}
        for i, g in enumerate(self.groups):
            s = self.rdk.RobotStates()
            pose = list(HOME_POSE)
            pose[1] = -0.3 + 0.6 * i
            s.tcp_pose = pose
            s.q = [0.0, -0.7, 0.0, 1.57, 0.0, 0.7, 0.0]
            self._states[g] = s
        self.timeliness_pct = None
        self.last_cmds: dict = {}

    def ServoOn(self) -> None:
        if not self._connected or type(self).estop_pressed:
            raise RuntimeError("ServoOn: not connected or E-stop not released")
        self.calls.append(("ServoOn", None))
        self._enabled = True
        self._polls = 0

    def SetTimelinessFailureLimit(self, percentage: float = 2.0) -> None:
        if not isinstance(percentage, (int, float)) or not 0.0 <= percentage <= 100.0:
            raise ValueError("percentage must be in [0, 100]")
        self.calls.append(("SetTimelinessFailureLimit", percentage))
        self.timeliness_pct = percentage

    def _check_cmds(self, cmds: Any, cls: Any, what: str) -> None:
        if not isinstance(cmds, dict):
            raise TypeError(f"{what}: cmds must be dict[JointGroup, {cls.__name__}]")
        for g, c in cmds.items():
            if not isinstance(g, self.rdk.JointGroup):
                raise TypeError(f"{what}: key {g!r} is not a JointGroup")
            if not isinstance(c, cls):
                raise TypeError(f"{what}: value for {g} is {type(c).__name__}, not {cls.__name__}")
            if g not in self.groups:
                raise ValueError(f"{what}: {g} is not an existing single-arm joint group")

    def StreamCartesianMotionForce(self, cmds: dict) -> None:
        self._check_cmds(cmds, self.rdk.RtCartesianCmd, "StreamCartesianMotionForce")
        self._require("RT_CARTESIAN_MOTION_FORCE", "StreamCartesianMotionForce")
        for g, c in cmds.items():
            pose = list(c.pose_d)
            _unit_quat(pose, "pose_d")
            self._states[g].tcp_pose = pose
            self.last_cmds[g] = pose
        self.stream_count += 1
        self.stream_threads.add(threading.get_ident())

    def StreamJointPosition(self, cmds: dict) -> None:
        self._check_cmds(cmds, self.rdk.RtJointPositionCmd, "StreamJointPosition")
        self._require("RT_JOINT_POSITION", "StreamJointPosition")
        for g, c in cmds.items():
            for field in ("q_d", "dq_d", "ddq_d"):
                if len(getattr(c, field)) != 7:
                    raise ValueError(f"StreamJointPosition: {field} size does not match robot DoF 7")
            self._states[g].q = list(c.q_d)
            self.last_cmds[g] = list(c.q_d)
        self.stream_count += 1
        self.stream_threads.add(threading.get_ident())

    def states(self) -> dict:
        return dict(self._states)


class StandInGripper2:
    """flexivrdk 2.x Gripper: ``Enable(group, name)``, ``Move(group, width, velocity, force_limit)`` (blocking)."""

    def __init__(self, robot: StandInRobot2) -> None:
        if not isinstance(robot, StandInRobot2):
            raise TypeError("Gripper(robot): robot must be flexivrdk.Robot")
        self.robot = robot
        self.rdk = robot.rdk
        self.enabled: dict = {}
        self.moves: list[tuple[Any, float, float, float, int]] = []

    def Enable(self, group: Any, name: str) -> None:
        if not isinstance(group, self.rdk.JointGroup) or not isinstance(name, str):
            raise TypeError("Enable(group: JointGroup, name: str)")
        if group not in self.robot.groups:
            raise ValueError(f"{group} is not an existing single-arm joint group")
        st = self.rdk.GripperStates()
        st.width = 0.04
        self.enabled[group] = st

    def Move(self, group: Any, width: float, velocity: float, force_limit: float) -> None:
        if not isinstance(group, self.rdk.JointGroup):
            raise TypeError("Move: group must be JointGroup")
        _floats([width, velocity, force_limit], 3, "Move")
        if group not in self.enabled:
            raise RuntimeError(f"no gripper is enabled for {group}")
        if not 0.0 <= width <= 0.1 or velocity <= 0 or force_limit <= 0:
            raise ValueError("Move: parameter outside its valid range")
        time.sleep(GRIPPER_MOVE_S)
        self.moves.append((group, width, velocity, force_limit, threading.get_ident()))
        self.enabled[group].width = width

    def states(self) -> dict:
        return dict(self.enabled)


class StandInRobot19(_RobotBase):
    """flexivrdk 1.9.x Robot: one arm per robot, NRT commands only."""

    def __init__(self, robot_sn: str, network_interface_whitelist: list = [], verbose: bool = True,
                 lite: bool = False) -> None:  # fmt: skip
        self._init(robot_sn)
        self._state = self.rdk.RobotStates()
        self._state.tcp_pose = list(HOME_POSE)
        self._state.q = [0.0, -0.7, 0.0, 1.57, 0.0, 0.7, 0.0]
        self.sends: list[tuple] = []

    def Enable(self) -> None:
        if not self._connected or type(self).estop_pressed:
            raise RuntimeError("Enable: not connected or E-stop not released")
        self.calls.append(("Enable", None))
        self._enabled = True
        self._polls = 0

    def SendCartesianMotionForce(self, pose: list, wrench: list = [0.0] * 6, velocity: list = [0.0] * 6,
                                 max_linear_vel: float = 0.5, max_angular_vel: float = 1.0,
                                 max_linear_acc: float = 2.0, max_angular_acc: float = 5.0) -> None:  # fmt: skip
        pose = _floats(pose, 7, "pose")
        _floats(wrench, 6, "wrench")
        _floats(velocity, 6, "velocity")
        caps = _floats([max_linear_vel, max_angular_vel, max_linear_acc, max_angular_acc], 4, "caps")
        if any(c <= 0 for c in caps):
            raise ValueError("SendCartesianMotionForce: the last 4 parameters must be positive")
        self._require("NRT_CARTESIAN_MOTION_FORCE", "SendCartesianMotionForce")
        _unit_quat(pose, "pose")
        self._state.tcp_pose = pose
        self.sends.append((pose, caps, threading.get_ident()))
        self.stream_count += 1

    def SendJointPosition(self, positions: list, velocities: list, max_vel: list, max_acc: list) -> None:
        q = _floats(positions, None, "positions")
        for name, v in (("velocities", velocities), ("max_vel", max_vel), ("max_acc", max_acc)):
            if len(_floats(v, None, name)) != 7:
                raise ValueError(f"SendJointPosition: {name} size does not match robot DoF")
        if len(q) != 7:
            raise ValueError("SendJointPosition: positions size does not match robot DoF")
        if any(x <= 0 for x in list(max_vel) + list(max_acc)):
            raise ValueError("SendJointPosition: max_vel/max_acc must be positive")
        self._require("NRT_JOINT_POSITION", "SendJointPosition")
        self._state.q = q
        self.sends.append((q, list(max_vel), threading.get_ident()))
        self.stream_count += 1

    def states(self) -> Any:
        return self._state


class StandInGripper19:
    """flexivrdk 1.9.x Gripper: ``Enable(name)``, ``Move(width, velocity, force_limit)`` (blocking)."""

    def __init__(self, robot: StandInRobot19) -> None:
        if not isinstance(robot, StandInRobot19):
            raise TypeError("Gripper(robot): robot must be flexivrdk.Robot")
        self.rdk = robot.rdk
        self.name: str | None = None
        self.moves: list[tuple[float, float, float, int]] = []
        self._states = self.rdk.GripperStates()
        self._states.width = 0.04

    def Enable(self, name: str) -> None:
        if not isinstance(name, str):
            raise TypeError("Enable(name: str)")
        self.name = name

    def Move(self, width: float, velocity: float, force_limit: float) -> None:
        _floats([width, velocity, force_limit], 3, "Move")
        if self.name is None:
            raise RuntimeError("no gripper enabled")
        time.sleep(GRIPPER_MOVE_S)
        self.moves.append((width, velocity, force_limit, threading.get_ident()))
        self._states.width = width

    def states(self) -> Any:
        return self._states


def make_standin(real: Any, generation: int) -> types.SimpleNamespace:
    """A module-like namespace: the real data classes/enums + stand-in Robot/Gripper classes (fresh subclasses,
    so class-level switches like ``fault_at_connect`` do not leak between tests)."""
    robot_base, gripper = (StandInRobot2, StandInGripper2) if generation == 2 else (StandInRobot19, StandInGripper19)
    robot = type("Robot", (robot_base,), {"rdk": None, "instances": []})
    ns = types.SimpleNamespace(
        Robot=robot,
        Gripper=gripper,
        Mode=real.Mode,
        RobotStates=real.RobotStates,
        GripperStates=real.GripperStates,
        __version__=f"stand-in for {real.__version__}",
    )
    if generation == 2:
        ns.JointGroup = real.JointGroup
        ns.RtCartesianCmd = real.RtCartesianCmd
        ns.RtJointPositionCmd = real.RtJointPositionCmd
    robot.rdk = ns
    return ns
