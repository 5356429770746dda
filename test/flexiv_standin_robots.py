"""The two generations' Robot stand-ins: RDK 2.1 (Enlight/MICO, joint groups, RT streaming) and RDK 1.9 (Rizon,
one robot per arm, NRT commands). Signatures mirror the real wheels' (``check_api`` accepts them)."""

from __future__ import annotations

from typing import Any

from flexiv_standin_devices import floats, unit_quat
from flexiv_standin_robot import RDK2_MODELS, _api, _Robot, robot_info

JOINTS = 7


class StandInRobot2(_Robot):
    """flexivrdk 2.1 Robot: one robot with joint groups ARM_1 (and ARM_2)."""

    GENERATION = 2

    def __init__(self, robot_sn: str, verbose: bool = True, lite: bool = False) -> None:
        self._init(robot_sn, lite)

    def _check_model(self, side: Any) -> None:
        if side.model not in RDK2_MODELS:
            raise ValueError(f"invalid serial number {side.sn!r}: not a supported product model "
                             f"({', '.join(RDK2_MODELS)})")  # fmt: skip

    @_api(blocking=True)
    def ServoOn(self) -> None:
        self._power_on("ServoOn")

    @_api()
    def info(self) -> Any:
        return robot_info(self.side)

    @_api()
    def states(self) -> dict:
        out = {}
        for g, arm in self.side.arms.items():
            s = self.rdk.RobotStates()
            s.tcp_pose = list(arm.pose)
            s.q = list(arm.q)
            s.tcp_wrench = arm.wrench()
            out[g] = s
        return out

    def SetTimelinessFailureLimit(self, percentage: float = 2.0) -> None:
        if not isinstance(percentage, (int, float)) or not 0.0 <= percentage <= 100.0:
            raise ValueError("percentage must be in [0, 100]")
        self.side.timeliness_pct = percentage

    @_api()
    def reached_timeliness_failure_limit(self) -> bool:
        return False

    def _check_cmds(self, cmds: Any, cls: Any, what: str) -> None:
        if not isinstance(cmds, dict):
            raise TypeError(f"{what}: cmds must be dict[JointGroup, {cls.__name__}]")
        for g, c in cmds.items():
            if not isinstance(g, self.rdk.JointGroup):
                raise TypeError(f"{what}: key {g!r} is not a JointGroup")
            if not isinstance(c, cls):
                raise TypeError(f"{what}: value for {g} is {type(c).__name__}, not {cls.__name__}")
            if g not in self.side.groups:
                raise ValueError(f"{what}: {g} is not an existing single-arm joint group")

    @_api()
    def StreamCartesianMotionForce(self, cmds: dict) -> None:
        self._check_cmds(cmds, self.rdk.RtCartesianCmd, "StreamCartesianMotionForce")
        self._require("RT_CARTESIAN_MOTION_FORCE", "StreamCartesianMotionForce")
        for g, c in cmds.items():
            pose = list(c.pose_d)
            unit_quat(pose, "pose_d")
            self.side.arms[g].planner.jump(pose)
        self._stream(self.ns.clock())

    @_api()
    def StreamJointPosition(self, cmds: dict) -> None:
        self._check_cmds(cmds, self.rdk.RtJointPositionCmd, "StreamJointPosition")
        self._require("RT_JOINT_POSITION", "StreamJointPosition")
        for g, c in cmds.items():
            for field in ("q_d", "dq_d", "ddq_d"):
                if len(getattr(c, field)) != JOINTS:
                    raise ValueError(f"StreamJointPosition: {field} size does not match robot DoF {JOINTS}")
            self.side.arms[g].q = list(c.q_d)
        self._stream(self.ns.clock())

    @_api(blocking=True)
    def ExecutePrimitive(self, primitive_args: dict, block_until_started: bool = True) -> None:
        for g, a in primitive_args.items():
            if g not in self.side.groups or not isinstance(a, self.rdk.PrimitiveArgs):
                raise ValueError("ExecutePrimitive: needs {single-arm JointGroup: PrimitiveArgs}")
            self._start_primitive(a.pt_name)

    @_api(blocking=True)
    def primitive_states(self) -> dict:
        done = self._zero_ft_done()
        out = {}
        for g in self.side.groups:
            st = self.rdk.PrimitiveStates()
            st.pt_name = self.side.primitive or ""
            st.names_and_values = {"terminated": int(done)}
            out[g] = st
        return out

    @_api(blocking=True)
    def SetMaxContactWrench(self, group: Any, max_wrench: list) -> None:
        if group not in self.side.groups:
            raise ValueError(f"{group} is not an existing single-arm joint group")
        self._set_contact(self.side.arms[group], max_wrench)


class StandInRobot19(_Robot):
    """flexivrdk 1.9 Robot: one arm per robot (external axes first in joint vectors), NRT commands only."""

    GENERATION = 1

    def __init__(self, robot_sn: str, network_interface_whitelist: list = [], verbose: bool = True,
                 lite: bool = False) -> None:  # fmt: skip
        self._init(robot_sn, lite)

    def _check_model(self, side: Any) -> None:
        if side.model in RDK2_MODELS:
            raise RuntimeError(f"the connected robot {side.sn} is incompatible with this RDK library version "
                               "or is an unsupported robot model")  # fmt: skip

    @property
    def arm(self) -> Any:
        return self.side.arms[None]

    @_api(blocking=True)
    def Enable(self) -> None:
        self._power_on("Enable")

    @_api()
    def info(self) -> Any:
        return robot_info(self.side)

    @_api()
    def states(self) -> Any:
        arm = self.arm
        arm.planner.advance(self.ns.clock())
        s = self.rdk.RobotStates()
        s.tcp_pose = list(arm.pose)
        s.q = arm.ext + arm.q
        s.ext_wrench_in_world = arm.wrench()
        return s

    @_api()
    def SendCartesianMotionForce(self, pose: list, wrench: list = [0.0] * 6, velocity: list = [0.0] * 6,
                                 max_linear_vel: float = 0.5, max_angular_vel: float = 1.0,
                                 max_linear_acc: float = 2.0, max_angular_acc: float = 5.0) -> None:  # fmt: skip
        pose = floats(pose, 7, "pose")
        floats(wrench, 6, "wrench")
        vel = floats(velocity, 6, "velocity")
        caps = floats([max_linear_vel, max_angular_vel, max_linear_acc, max_angular_acc], 4, "caps")
        if any(c <= 0 for c in caps):
            raise ValueError("SendCartesianMotionForce: the last 4 parameters must be positive")
        self._require("NRT_CARTESIAN_MOTION_FORCE", "SendCartesianMotionForce")
        unit_quat(pose, "pose")
        now = self.ns.clock()
        self.arm.planner.send(pose, vel, caps[0], caps[2], now)
        self.sends.append((pose, vel, caps))
        self._stream(now)

    @_api()
    def SendJointPosition(self, positions: list, velocities: list, max_vel: list, max_acc: list) -> None:
        dof = JOINTS + len(self.arm.ext)
        q = floats(positions, None, "positions")
        for name, v in (("positions", q), ("velocities", velocities), ("max_vel", max_vel), ("max_acc", max_acc)):
            if len(floats(v, None, name)) != dof:
                raise ValueError(f"SendJointPosition: size of {name} does not match robot DoF {dof}")
        if any(x <= 0 for x in list(max_vel) + list(max_acc)):
            raise ValueError("SendJointPosition: max_vel/max_acc must be positive")
        self._require("NRT_JOINT_POSITION", "SendJointPosition")
        n_e = len(self.arm.ext)
        if q[:n_e] != self.arm.ext:
            raise ValueError("stand-in: the external axes were commanded to move")
        self.arm.q = q[n_e:]
        self.sends.append((q, list(max_vel)))
        self._stream(self.ns.clock())

    @_api(blocking=True)
    def ExecutePrimitive(self, primitive_name: str, input_params: dict, block_until_started: bool = True) -> None:
        self._start_primitive(primitive_name)

    @_api(blocking=True)
    def primitive_states(self) -> dict:
        return {"terminated": int(self._zero_ft_done())}

    @_api(blocking=True)
    def SetMaxContactWrench(self, max_wrench: list) -> None:
        self._set_contact(self.arm, max_wrench)

    @property
    def sends(self) -> list:
        return self.side.sends
