"""Gripper and Tool stand-ins (RDK 2.1 and 1.9 signatures) and the argument checks the binding does.

Gripper (docstrings): ``Enable`` fails for an unknown gripper; ``Init`` starts the initialisation and returns;
``Move`` is [Blocking] until delivered and refuses values outside ``GripperParams`` ("Valid range:
[min_width, max_width]" ...): here it also holds the GIL while it blocks (``hold_gil``); ``params``/``states`` are
non-blocking value copies. Tool: ``Switch`` needs IDLE mode and an existing tool; ``exist``/``list``/``name``.
Each call goes through the robot connection it was built on (a lost connection raises).
"""

from __future__ import annotations

import math
import threading
from typing import Any

from rtc_controller.robots.sim_gripper import hold_gil

UNIT_QUAT_TOL = 1e-6
GRIPPER_VEL_RANGE = (0.01, 0.2)
GRIPPER_FORCE_RANGE = (5.0, 60.0)
INITIAL_WIDTH_M = 0.04


def floats(v: Any, n: int | None, what: str) -> list[float]:
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


def unit_quat(pose: list[float], what: str) -> None:
    if abs(math.sqrt(sum(c * c for c in pose[3:7])) - 1.0) > UNIT_QUAT_TOL:
        raise ValueError(f"{what}: quaternion {pose[3:7]} is not unit length")


class _GripperDevice:
    """One enabled gripper: params, state, the moves it received (with the calling thread)."""

    def __init__(self, rdk: Any, name: str, width_range: tuple[float, float]) -> None:
        self.params = rdk.GripperParams()
        self.params.name = name
        self.params.min_width, self.params.max_width = width_range
        self.params.min_vel, self.params.max_vel = GRIPPER_VEL_RANGE
        self.params.min_force, self.params.max_force = GRIPPER_FORCE_RANGE
        self.states = rdk.GripperStates()
        self.states.width = INITIAL_WIDTH_M
        self.initialised = False

    def move(self, width: float, velocity: float, force: float, block_s: float, moves: list) -> None:
        p = self.params
        if not (p.min_width <= width <= p.max_width and p.min_vel <= velocity <= p.max_vel
                and p.min_force <= force <= p.max_force):  # fmt: skip
            raise ValueError("Move: an input parameter is outside its valid range")
        hold_gil(block_s)
        moves.append((width, velocity, force, threading.get_ident()))
        self.states.width = width


class _GripperBase:
    ns: Any = None

    def __init__(self, robot: Any) -> None:
        if not isinstance(robot, self.ns.Robot):
            raise TypeError("Gripper(robot): robot must be flexivrdk.Robot")
        self.robot = robot
        self.rdk = self.ns.real
        self.devices: dict = {}
        self.moves: list = []

    def _enable(self, key: Any, name: str) -> None:
        if not isinstance(name, str):
            raise TypeError("name must be str")
        self.robot.side.blocking("Gripper.Enable")
        if name not in self.ns.grippers:
            raise ValueError(f"the specified gripper {name!r} does not exist")
        self.devices[key] = _GripperDevice(self.rdk, name, self.ns.grippers[name])

    def _device(self, key: Any, what: str) -> _GripperDevice:
        if not self.robot.connected():
            raise RuntimeError(f"{what}: not connected")
        if key not in self.devices:
            raise RuntimeError(f"{what}: no gripper is enabled")
        return self.devices[key]


class Gripper2(_GripperBase):
    """flexivrdk 2.1 Gripper: calls take the joint group first; params/states are dicts by group."""

    def Enable(self, group: Any, name: str) -> None:
        if not isinstance(group, self.rdk.JointGroup):
            raise TypeError("Enable(group: JointGroup, name: str)")
        if group not in self.robot.side.groups:
            raise ValueError(f"{group} is not an existing single-arm joint group")
        self._enable(group, name)

    def Init(self, group: Any) -> None:
        self.robot.side.blocking("Gripper.Init")
        self._device(group, "Init").initialised = True

    def Move(self, group: Any, width: float, velocity: float, force_limit: float) -> None:
        if not isinstance(group, self.rdk.JointGroup):
            raise TypeError("Move: group must be JointGroup")
        w, v, f = floats([width, velocity, force_limit], 3, "Move")
        self.robot.side.blocking("Gripper.Move")
        self._device(group, "Move").move(w, v, f, self.ns.gripper_block_s, self.moves)

    def params(self) -> dict:
        return {g: d.params for g, d in self.devices.items()}

    def states(self) -> dict:
        return {g: d.states for g, d in self.devices.items()}


class Gripper19(_GripperBase):
    """flexivrdk 1.9 Gripper: one gripper per robot; params/states are single structs."""

    def Enable(self, name: str) -> None:
        if self.devices:
            raise RuntimeError("a gripper is already enabled")
        self._enable(0, name)

    def Init(self) -> None:
        self.robot.side.blocking("Gripper.Init")
        self._device(0, "Init").initialised = True

    def Move(self, width: float, velocity: float, force_limit: float) -> None:
        w, v, f = floats([width, velocity, force_limit], 3, "Move")
        self.robot.side.blocking("Gripper.Move")
        self._device(0, "Move").move(w, v, f, self.ns.gripper_block_s, self.moves)

    def params(self) -> Any:
        return self.devices[0].params if self.devices else self.rdk.GripperParams()

    def states(self) -> Any:
        return self.devices[0].states if self.devices else self.rdk.GripperStates()


class _ToolBase:
    ns: Any = None

    def __init__(self, robot: Any) -> None:
        if not isinstance(robot, self.ns.Robot):
            raise TypeError("Tool(robot): robot must be flexivrdk.Robot")
        self.robot = robot

    def _switch(self, arm: Any, name: str) -> None:
        side = self.robot.side
        side.blocking("Tool.Switch")
        if side.mode != self.ns.real.Mode.IDLE:
            raise RuntimeError("Tool.Switch: robot is not in the correct control mode (IDLE)")
        if name not in self.ns.tools:
            raise ValueError(f"the specified tool {name!r} does not exist")
        arm.tool = name

    def exist(self, name: str) -> bool:
        self.robot.side.blocking("Tool.exist")
        return name in self.ns.tools

    def list(self) -> list:
        self.robot.side.blocking("Tool.list")
        return sorted(self.ns.tools)


class Tool2(_ToolBase):
    def Switch(self, group: Any, name: str) -> None:
        side = self.robot.side
        if group not in side.groups:
            raise ValueError(f"{group} is not an existing single-arm joint group")
        self._switch(side.arms[group], name)

    def name(self, group: Any) -> str:
        return self.robot.side.arms[group].tool


class Tool19(_ToolBase):
    def Switch(self, name: str) -> None:
        self._switch(self.robot.side.arms[None], name)

    def name(self) -> str:
        return self.robot.side.arms[None].tool
