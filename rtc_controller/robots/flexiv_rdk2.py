"""Flexiv RDK 2.x driver (Enlight, MICO): one dual-arm robot with joint groups ARM_1/ARM_2, or one robot per arm.

Start-up and reset: ``flexiv_common.py`` (power on = ``ServoOn``; ``Tool.Switch(group, name)``; the
``ZeroFTSensor`` primitive per group; ``SwitchMode(RT_CARTESIAN_MOTION_FORCE)`` or ``RT_JOINT_POSITION``;
``SetMaxContactWrench(group, wrench)``; ``SetTimelinessFailureLimit``). The product model (``RobotInfo
.product_model``: Enlight/MICO) and the joint groups (``single_arm_groups``) are checked; Rizon arms need RDK 1.9.

Real-time streaming: the robot expects a command every 1 ms and faults when more than
``timeliness_failure_limit_pct`` of a 1-s window arrive late, so ``servo_rate_hz`` must be 1000 (checked by the
executor parameters). Every servo tick: ``StreamCartesianMotionForce({group: RtCartesianCmd(pose)})`` (pose =
[x, y, z, qw, qx, qy, qz], world frame; twist left 0: "maximizes robustness") or
``StreamJointPosition({group: RtJointPositionCmd(q, dq, ddq)})``. The executor reports the late fraction of the
last 1-s window against the limit in its diagnostics; ``reached_timeliness_failure_limit`` is in ours.
Joint space: DoF and limits per group from ``RobotInfo`` (external axes are their own group, not commanded).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from rtc_controller.robots.base import DriverError, action_to_pose, pose_to_action
from rtc_controller.robots.flexiv_api import ApiUse, call, serial_model
from rtc_controller.robots.flexiv_common import FlexivCommonConfig, FlexivDriverBase
from rtc_controller.robots.flexiv_gripper import FlexivGripperSpec

JOINTS_PER_ARM = 7  # the joint action space's joints per arm (action_space.py)
CARTESIAN_MODE = "RT_CARTESIAN_MOTION_FORCE"
JOINT_MODE = "RT_JOINT_POSITION"
PRODUCT_MODELS = ("Enlight_L", "Enlight_LL", "MICO_Core", "MICO_Plus", "MICO_Ultra")
RIZON = "Rizon"

API_USED: tuple[ApiUse, ...] = (
    ApiUse("Robot", "__init__", ("robot_sn", "verbose", "lite")),
    *(ApiUse("Robot", n, ()) for n in ("fault", "ServoOn", "operational", "connected", "states", "Stop", "info",
                                       "estop_released", "reduced", "recovery", "operational_status", "event_log",
                                       "mode", "primitive_states", "reached_timeliness_failure_limit")),  # fmt: skip
    ApiUse("Robot", "ClearFault", ("timeout_sec",)),
    ApiUse("Robot", "SwitchMode", ("mode",)),
    ApiUse("Robot", "SetTimelinessFailureLimit", ("percentage",)),
    ApiUse("Robot", "SetMaxContactWrench", ("group", "max_wrench")),
    ApiUse("Robot", "ExecutePrimitive", ("primitive_args",)),
    ApiUse("Robot", "StreamCartesianMotionForce", ("cmds",)),
    ApiUse("Robot", "StreamJointPosition", ("cmds",)),
    ApiUse("RtCartesianCmd", "__init__", ("pose_d",)),
    ApiUse("RtJointPositionCmd", "__init__", ("q_d", "dq_d", "ddq_d")),
    ApiUse("RtCartesianCmd", "pose_d"),
    ApiUse("RtJointPositionCmd", "q_d"),
    ApiUse("PrimitiveArgs", "__init__", ("pt_name", "input_params")),
    ApiUse("PrimitiveStates", "names_and_values"),
    *(ApiUse("RobotStates", n) for n in ("tcp_pose", "q", "tcp_wrench")),
    *(ApiUse("RobotInfo", n) for n in ("product_model", "single_arm_groups", "DoF", "q_min", "q_max")),
    ApiUse("RobotEvent", "description"),
    *(ApiUse("ProductModel", n) for n in PRODUCT_MODELS),
    *(ApiUse("Mode", n) for n in (CARTESIAN_MODE, JOINT_MODE, "IDLE", "NRT_PRIMITIVE_EXECUTION")),
    ApiUse("JointGroup", "ARM_1"),
    ApiUse("JointGroup", "ARM_2"),
    ApiUse("Tool", "__init__", ("robot",)),
    ApiUse("Tool", "Switch", ("group", "name")),
    ApiUse("Tool", "exist", ("name",)),
    ApiUse("Gripper", "__init__", ("robot",)),
    ApiUse("Gripper", "Enable", ("group", "name")),
    ApiUse("Gripper", "Init", ("group",)),
    ApiUse("Gripper", "Move", ("group", "width", "velocity", "force_limit")),
    ApiUse("Gripper", "states", ()),
    ApiUse("Gripper", "params", ()),
    *(ApiUse("GripperStates", n) for n in ("width", "force", "is_moving")),
    *(ApiUse("GripperParams", n) for n in ("min_width", "max_width", "min_vel", "max_vel", "min_force", "max_force")),
)


@dataclass(frozen=True)
class FlexivRdk2Config(FlexivCommonConfig):
    """RDK 2.x settings (the shared ones: :class:`FlexivCommonConfig`).

    serial_numbers: one serial (a dual-arm robot, arms = joint_groups) or one per arm, e.g. ("Enlight-LL-123456",).
    joint_groups: JointGroup names per arm, e.g. ("ARM_1", "ARM_2"); with one robot per arm usually ("ARM_1", "ARM_1").
    timeliness_failure_limit_pct: SetTimelinessFailureLimit [%] of late RT commands in a 1-s window.
    """

    joint_groups: tuple[str, ...] = ("ARM_1", "ARM_2")
    timeliness_failure_limit_pct: float = 2.0

    def __post_init__(self) -> None:
        if not self.joint_groups:
            raise ValueError("at least one joint group")
        self._check_common(self.num_arms)
        if len(self.serial_numbers) not in (1, len(self.joint_groups)):
            raise ValueError("give one serial (dual-arm robot) or one per joint group")
        for sn in self.serial_numbers:
            if serial_model(sn).startswith(RIZON):
                raise ValueError(f"serial {sn!r} is a Rizon arm: Rizon arms need flexiv_rdk: 1 (RDK 1.9)")
        if not 0.0 <= self.timeliness_failure_limit_pct <= 100.0:
            raise ValueError("timeliness_failure_limit_pct must be in [0, 100]")

    @property
    def num_arms(self) -> int:
        return len(self.joint_groups)


class FlexivRdk2Driver(FlexivDriverBase):
    """ArmDriver for flexivrdk 2.x. ``rdk`` injects a stand-in module (tests); default: ``import flexivrdk``."""

    LABEL = "flexivrdk 2"
    ACTIVE_MESSAGE = "streaming"
    CARTESIAN_MODE = CARTESIAN_MODE
    JOINT_MODE = JOINT_MODE
    GENERATION = 2
    DRIVER = "RDK 2 (Enlight/MICO)"
    HINT = "Rizon arms need flexiv_rdk: 1 (RDK 1.9)"
    API = API_USED

    def __init__(self, config: FlexivRdk2Config, *, rdk: ModuleType | None = None) -> None:
        super().__init__(config, config.num_arms, rdk)
        self._arm_robot = [0 if len(config.serial_numbers) == 1 else i for i in range(self.num_arms)]
        self._groups: list[Any] = []  # JointGroup per arm
        self._cmds: list[dict[Any, Any]] = []  # per robot {group: preallocated command}

    # ---- start-up hooks ----------------------------------------------------------------------------------------
    def _check_model(self, robot: Any, sn: str) -> None:
        info = robot.info()
        model = getattr(info.product_model, "name", str(info.product_model))
        if model not in PRODUCT_MODELS:
            raise DriverError(f"{sn}: product model {model} is not supported by RDK 2 (Enlight/MICO); {self.HINT}")

    def _setup_arms(self) -> None:
        rdk, c = self._rdk, self.config
        try:
            self._groups = [getattr(rdk.JointGroup, g) for g in c.joint_groups]
        except AttributeError as exc:
            raise DriverError(f"unknown joint group in {c.joint_groups}") from exc
        infos = [r.info() for r in self._robots]
        q_min, q_max = [], []
        for arm, group in enumerate(self._groups):
            info = infos[self._arm_robot[arm]]
            if group not in info.single_arm_groups:
                have = ", ".join(str(n) for n in info.single_arm_groups.values()) or "none"
                raise DriverError(f"{c.joint_groups[arm]} is not a single-arm joint group of "
                                  f"{c.serial_numbers[self._arm_robot[arm]]} (it has: {have})")  # fmt: skip
            if self.kind == "joint":
                dof = info.DoF[group]
                if dof != JOINTS_PER_ARM:
                    raise DriverError(f"{c.joint_groups[arm]} has {dof} joints; the joint action space has "
                                      f"{JOINTS_PER_ARM} per arm")  # fmt: skip
                q_min.append(list(info.q_min[group]))
                q_max.append(list(info.q_max[group]))
        self._joint_limits = (q_min, q_max) if self.kind == "joint" else None
        self._cmds = [{} for _ in self._robots]
        for arm, group in enumerate(self._groups):
            if self.kind == "cartesian":
                cmd = rdk.RtCartesianCmd([0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0])
            else:
                zeros = [0.0] * JOINTS_PER_ARM
                cmd = rdk.RtJointPositionCmd(zeros, zeros, zeros)
            self._cmds[self._arm_robot[arm]][group] = cmd

    def _power_on(self, robot: Any) -> None:
        call("ServoOn", robot.ServoOn)

    def _switch_tools(self, ri: int) -> None:
        names = self.config.tool_names
        if not names or not any(names[a] for a in self._arms_of(ri)):
            return
        tool = call("Tool", self._rdk.Tool, self._robots[ri])
        for a in self._arms_of(ri):
            if names[a]:
                if not call("Tool.exist", tool.exist, names[a]):
                    raise DriverError(f"tool {names[a]!r} does not exist on {self.config.serial_numbers[ri]} "
                                      "(Flexiv Elements: Settings > Tools)")  # fmt: skip
                call(f"Tool.Switch {names[a]}", tool.Switch, self._groups[a], names[a])

    def _start_zero_ft(self, ri: int) -> None:
        args = {self._groups[a]: self._rdk.PrimitiveArgs("ZeroFTSensor", {}) for a in self._arms_of(ri)}
        call("ExecutePrimitive ZeroFTSensor", self._robots[ri].ExecutePrimitive, args)

    def _zero_ft_done(self, ri: int) -> bool:
        states = call("primitive_states", self._robots[ri].primitive_states)
        return all(bool(states[g].names_and_values.get("terminated", 0)) for g in states) and bool(states)

    def _after_mode_switch(self, ri: int) -> None:
        robot = self._robots[ri]
        call("SetTimelinessFailureLimit", robot.SetTimelinessFailureLimit, float(self.config.timeliness_failure_limit_pct))
        if self.kind != "cartesian":
            return
        for a in self._arms_of(ri):
            wrench = self.config.contact_wrench(a)
            if wrench is not None:
                call("SetMaxContactWrench", robot.SetMaxContactWrench, self._groups[a], wrench)

    def _gripper_spec(self) -> FlexivGripperSpec:
        c = self.config
        return FlexivGripperSpec(generation=2, serial_numbers=c.serial_numbers, arm_robot=tuple(self._arm_robot),
                                 joint_groups=c.joint_groups, gripper_names=c.gripper_names,
                                 velocity_m_s=c.gripper_velocity_m_s, force_n=c.gripper_force_n, init=c.gripper_init,
                                 rdk_factory=self._rdk_factory())  # fmt: skip

    def _extra_details(self) -> list[tuple[str, str]]:
        out = [("timeliness_failure_limit_pct", f"{self.config.timeliness_failure_limit_pct:g}")]
        for ri, robot in enumerate(self._robots):
            if robot.connected():
                out.append((f"robot{ri}_reached_timeliness_failure_limit", str(robot.reached_timeliness_failure_limit())))
        return out

    # ---- servo thread ------------------------------------------------------------------------------------------
    def read_state(self, out: np.ndarray) -> bool:
        healthy = True
        states = []
        for robot in self._robots:
            if not robot.connected():
                raise DriverError("flexivrdk 2: connection lost")
            healthy = healthy and robot.operational()
            states.append(robot.states())
        hold = ""
        for arm, sl in enumerate(self._sl):
            st = states[self._arm_robot[arm]][self._groups[arm]]
            if sl.rotation is not None:
                pose_to_action(st.tcp_pose, sl, out, self._last_rot[arm])
                r = sl.rotation.start
                self._last_rot[arm] = (out[r], out[r + 1], out[r + 2])
            else:
                out[sl.joints] = st.q
            out[sl.gripper] = self._gripper_state(arm)
            hold = self._contact(arm, st.tcp_wrench) or hold
        self._hold_reason = hold
        return healthy

    def command(self, cmd: np.ndarray) -> None:
        c = cmd.tolist()
        for arm, sl in enumerate(self._sl):
            target = self._cmds[self._arm_robot[arm]][self._groups[arm]]
            if sl.rotation is not None:
                target.pose_d = action_to_pose(c, sl)
            else:
                target.q_d = c[sl.joints]
        self._request_grippers(c)
        for ri, (robot, cmds) in enumerate(zip(self._robots, self._cmds)):
            try:
                if self.kind == "cartesian":
                    robot.StreamCartesianMotionForce(cmds)
                else:
                    robot.StreamJointPosition(cmds)
            except (RuntimeError, ValueError, TypeError) as exc:
                raise self._refused("flexivrdk 2 stream", ri, exc) from exc

