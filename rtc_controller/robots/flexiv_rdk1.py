"""Flexiv RDK 1.9.x driver (Rizon 4/4s): two robots, one serial number each, non-real-time commands.

Start-up and reset: ``flexiv_common.py`` (power on = ``Enable``; ``Tool.Switch(name)``; the ``ZeroFTSensor``
primitive; ``SwitchMode(NRT_CARTESIAN_MOTION_FORCE)`` or ``NRT_JOINT_POSITION``; ``SetMaxContactWrench``). The model
(``RobotInfo.model_name``) must be a Rizon; Enlight/MICO robots need RDK 2.

NRT the way Flexiv documents it: the 1.9 Python binding has no real-time streaming; its NRT examples accept 1–100 Hz,
and each ``SendCartesianMotionForce``/``SendJointPosition`` re-plans the robot's motion toward the new target. So
the servo loop's filtered command is forwarded every ``servo_rate_hz / command_rate_hz``-th tick at
``command_rate_hz`` ≤ 100 (validated), with
- the target velocity = the filtered command's own velocity (its difference over one servo tick, i.e. exactly the
  velocity the safety filter commands; linear and world-frame angular). Zero would make every waypoint a planned
  stop: the robot would brake toward each one and trail a moving target by about v²/(2·a). The filter's velocity
  rather than the timeline's raw chunk velocity, because it is consistent with the poses actually sent (it already
  follows the chunk's velocity wherever the chunk is within the limits). ``target_velocity: false`` sends zeros
  (the RDK's most robust setting) if the rig prefers it.
- the speed and acceleration caps of the safety limits (``max_linear_speed_m_s`` etc.), so the robot's planner
  never moves faster than the filter allows.
Joint space: ``SendJointPosition`` with DoF from ``RobotInfo`` (``DoF_m`` must be 7; external axes come first in
the joint vectors and are held at their measured positions), joint limits from ``RobotInfo.q_min``/``q_max``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from rtc_controller.action_space import ArmSlices
from rtc_controller.geometry import so3
from rtc_controller.robots.base import DriverError, action_to_pose, pose_to_action
from rtc_controller.robots.flexiv_api import ApiUse, call, serial_model
from rtc_controller.robots.flexiv_common import FlexivCommonConfig, FlexivDriverBase
from rtc_controller.robots.flexiv_gripper import FlexivGripperSpec

JOINTS_PER_ARM = 7  # the joint action space's joints per arm (action_space.py)
MAX_NRT_RATE_HZ = 100.0  # Flexiv's NRT examples: "Command frequency, 1 to 100 [Hz]"
MIN_NRT_RATE_HZ = 1.0
CARTESIAN_MODE = "NRT_CARTESIAN_MOTION_FORCE"
JOINT_MODE = "NRT_JOINT_POSITION"
RDK2_MODEL_PREFIXES = ("Enlight", "MICO")
RIZON = "Rizon"
ZERO6 = [0.0] * 6

API_USED: tuple[ApiUse, ...] = (
    ApiUse("Robot", "__init__", ("robot_sn", "network_interface_whitelist", "verbose", "lite")),
    *(ApiUse("Robot", n, ()) for n in ("fault", "Enable", "operational", "connected", "states", "Stop", "info",
                                       "estop_released", "reduced", "recovery", "operational_status", "event_log",
                                       "mode", "primitive_states")),  # fmt: skip
    ApiUse("Robot", "ClearFault", ("timeout_sec",)),
    ApiUse("Robot", "SwitchMode", ("mode",)),
    ApiUse("Robot", "ExecutePrimitive", ("primitive_name", "input_params")),
    ApiUse("Robot", "SetMaxContactWrench", ("max_wrench",)),
    ApiUse(
        "Robot",
        "SendCartesianMotionForce",
        ("pose", "wrench", "velocity", "max_linear_vel", "max_angular_vel", "max_linear_acc", "max_angular_acc"),
    ),
    ApiUse("Robot", "SendJointPosition", ("positions", "velocities", "max_vel", "max_acc")),
    *(ApiUse("RobotStates", n) for n in ("tcp_pose", "q", "ext_wrench_in_world")),
    *(ApiUse("RobotInfo", n) for n in ("model_name", "DoF", "DoF_e", "DoF_m", "q_min", "q_max")),
    ApiUse("RobotEvent", "description"),
    *(ApiUse("Mode", n) for n in (CARTESIAN_MODE, JOINT_MODE, "IDLE", "NRT_PRIMITIVE_EXECUTION")),
    ApiUse("Tool", "__init__", ("robot",)),
    ApiUse("Tool", "Switch", ("name",)),
    ApiUse("Tool", "exist", ("name",)),
    ApiUse("Gripper", "__init__", ("robot",)),
    ApiUse("Gripper", "Enable", ("name",)),
    ApiUse("Gripper", "Init", ()),
    ApiUse("Gripper", "Move", ("width", "velocity", "force_limit")),
    ApiUse("Gripper", "states", ()),
    ApiUse("Gripper", "params", ()),
    *(ApiUse("GripperStates", n) for n in ("width", "force", "is_moving")),
    *(ApiUse("GripperParams", n) for n in ("min_width", "max_width", "min_vel", "max_vel", "min_force", "max_force")),
)


@dataclass(frozen=True)
class FlexivRdk1Config(FlexivCommonConfig):
    """RDK 1.9 settings (the shared ones: :class:`FlexivCommonConfig`).

    serial_numbers: one per arm (left, right), e.g. ("Rizon4s-123456", "Rizon4s-123457").
    command_rate_hz: NRT send rate [Hz], 1..100 (Flexiv's documented range), dividing servo_rate_hz.
    servo_rate_hz: the executor's servo rate [Hz] (command() is called at this rate).
    target_velocity: send the filtered command's velocity with each target (False: zeros).
    max_linear_speed_m_s, max_angular_speed_rad_s, max_linear_acc_m_s2, max_angular_acc_rad_s2: the planner's caps.
    max_joint_speed_rad_s, max_joint_acc_rad_s2: SendJointPosition's caps.
    """

    command_rate_hz: float = MAX_NRT_RATE_HZ
    servo_rate_hz: float = 1000.0
    target_velocity: bool = True
    max_linear_speed_m_s: float = 1.0
    max_angular_speed_rad_s: float = math.radians(300.0)
    max_linear_acc_m_s2: float = 1.5
    max_angular_acc_rad_s2: float = 5.0
    max_joint_speed_rad_s: float = 1.0
    max_joint_acc_rad_s2: float = 5.0

    def __post_init__(self) -> None:
        self._check_common(len(self.serial_numbers))
        for sn in self.serial_numbers:
            if serial_model(sn).startswith(RDK2_MODEL_PREFIXES):
                raise ValueError(f"serial {sn!r} is an Enlight/MICO robot: those need flexiv_rdk: 2 (RDK 2.x)")
        if not MIN_NRT_RATE_HZ <= self.command_rate_hz <= MAX_NRT_RATE_HZ:
            raise ValueError(f"command_rate_hz must be in [{MIN_NRT_RATE_HZ:g}, {MAX_NRT_RATE_HZ:g}] Hz (each NRT "
                             f"command re-plans the robot's motion), got {self.command_rate_hz:g}")  # fmt: skip
        ratio = self.servo_rate_hz / self.command_rate_hz
        if abs(ratio - round(ratio)) > 1e-9:
            raise ValueError(f"command_rate_hz {self.command_rate_hz:g} must divide servo_rate_hz {self.servo_rate_hz:g}")
        caps = (self.max_linear_speed_m_s, self.max_angular_speed_rad_s, self.max_linear_acc_m_s2,
                self.max_angular_acc_rad_s2, self.max_joint_speed_rad_s, self.max_joint_acc_rad_s2)  # fmt: skip
        if not all(v > 0 for v in caps):
            raise ValueError("velocity/acceleration caps must be > 0 (the RDK refuses non-positive values)")

    @property
    def decimation(self) -> int:
        """Send every n-th servo tick."""
        return max(1, round(self.servo_rate_hz / self.command_rate_hz))


def world_twist(prev: list[float], cur: list[float], sl: ArmSlices, dt: float) -> list[float]:
    """[vx, vy, vz, wx, wy, wz] (world frame) of one arm's command moving from ``prev`` to ``cur`` in ``dt`` [s]."""
    p, r = sl.position.start, sl.rotation.start  # type: ignore[union-attr]
    q0 = so3.rotvec_to_quat_s((prev[r], prev[r + 1], prev[r + 2]))
    q1 = so3.rotvec_to_quat_s((cur[r], cur[r + 1], cur[r + 2]))
    wb = so3.relative_rotvec_s(q0, q1)  # body frame: q1 = q0 ⊗ exp(wb)
    ww = so3.quat_mul_s(so3.quat_mul_s(q0, (0.0, wb[0], wb[1], wb[2])), so3.quat_conj_s(q0))  # rotated into world
    return [(cur[p + j] - prev[p + j]) / dt for j in range(3)] + [ww[1] / dt, ww[2] / dt, ww[3] / dt]


class FlexivRdk1Driver(FlexivDriverBase):
    """ArmDriver for flexivrdk 1.9.x. ``rdk`` injects a stand-in module (tests); default: ``import flexivrdk``."""

    LABEL = "flexivrdk 1.9"
    ACTIVE_MESSAGE = "sending"
    CARTESIAN_MODE = CARTESIAN_MODE
    JOINT_MODE = JOINT_MODE
    GENERATION = 1
    DRIVER = "RDK 1.9 (Rizon)"
    HINT = "Enlight/MICO robots need flexiv_rdk: 2 (RDK 2.x)"
    API = API_USED

    def __init__(self, config: FlexivRdk1Config, *, rdk: ModuleType | None = None) -> None:
        super().__init__(config, len(config.serial_numbers), rdk)
        self._arm_robot = list(range(self.num_arms))
        self._tick = 0
        self._prev: list[float] | None = None
        self._dt = 1.0 / config.servo_rate_hz
        self._ext_q: list[list[float]] = [[] for _ in range(self.num_arms)]  # external axes, held [rad or m]
        self._jcaps: tuple[list[float], list[float]] = ([], [])

    # ---- start-up hooks ----------------------------------------------------------------------------------------
    def _check_model(self, robot: Any, sn: str) -> None:
        model = str(robot.info().model_name)
        if not model.startswith(RIZON):
            raise DriverError(f"{sn} is a {model or 'robot of unknown model'}: the RDK 1.9 driver drives Rizon "
                              f"arms; {self.HINT}")  # fmt: skip

    def _setup_arms(self) -> None:
        c = self.config
        q_min, q_max = [], []
        for arm, robot in enumerate(self._robots):
            info = robot.info()
            n_e = int(info.DoF_e)
            self._ext_q[arm] = list(robot.states().q[:n_e])
            if self.kind == "joint":
                if int(info.DoF_m) != JOINTS_PER_ARM:
                    raise DriverError(f"{c.serial_numbers[arm]} has {info.DoF_m} joints; the joint action space has "
                                      f"{JOINTS_PER_ARM} per arm")  # fmt: skip
                q_min.append(list(info.q_min[n_e:]))
                q_max.append(list(info.q_max[n_e:]))
        self._joint_limits = (q_min, q_max) if self.kind == "joint" else None
        n = JOINTS_PER_ARM + max((len(e) for e in self._ext_q), default=0)
        self._jcaps = ([c.max_joint_speed_rad_s] * n, [c.max_joint_acc_rad_s2] * n)

    def _power_on(self, robot: Any) -> None:
        call("Enable", robot.Enable)

    def _switch_tools(self, ri: int) -> None:
        names = self.config.tool_names
        if not names or not names[ri]:
            return
        tool = call("Tool", self._rdk.Tool, self._robots[ri])
        if not call("Tool.exist", tool.exist, names[ri]):
            raise DriverError(f"tool {names[ri]!r} does not exist on {self.config.serial_numbers[ri]} "
                              "(Flexiv Elements: Settings > Tools)")  # fmt: skip
        call(f"Tool.Switch {names[ri]}", tool.Switch, names[ri])

    def _start_zero_ft(self, ri: int) -> None:
        call("ExecutePrimitive ZeroFTSensor", self._robots[ri].ExecutePrimitive, "ZeroFTSensor", {})

    def _zero_ft_done(self, ri: int) -> bool:
        return bool(call("primitive_states", self._robots[ri].primitive_states).get("terminated", 0))

    def _after_mode_switch(self, ri: int) -> None:
        wrench = self.config.contact_wrench(ri)
        if self.kind == "cartesian" and wrench is not None:
            call("SetMaxContactWrench", self._robots[ri].SetMaxContactWrench, wrench)

    def _gripper_spec(self) -> FlexivGripperSpec:
        c = self.config
        return FlexivGripperSpec(generation=1, serial_numbers=c.serial_numbers, arm_robot=tuple(self._arm_robot),
                                 joint_groups=("",) * self.num_arms, gripper_names=c.gripper_names,
                                 velocity_m_s=c.gripper_velocity_m_s, force_n=c.gripper_force_n, init=c.gripper_init,
                                 rdk_factory=self._rdk_factory())  # fmt: skip

    def _extra_details(self) -> list[tuple[str, str]]:
        return [("nrt_command_rate_hz", f"{self.config.command_rate_hz:g}"),
                ("nrt_target_velocity", str(self.config.target_velocity))]  # fmt: skip

    # ---- servo thread ------------------------------------------------------------------------------------------
    def read_state(self, out: np.ndarray) -> bool:
        healthy = True
        hold = ""
        for arm, (robot, sl) in enumerate(zip(self._robots, self._sl)):
            if not robot.connected():
                raise DriverError("flexivrdk 1.9: connection lost")
            healthy = healthy and robot.operational()
            st = robot.states()
            if sl.rotation is not None:
                pose_to_action(st.tcp_pose, sl, out, self._last_rot[arm])
                r = sl.rotation.start
                self._last_rot[arm] = (out[r], out[r + 1], out[r + 2])
            else:
                out[sl.joints] = st.q[len(self._ext_q[arm]) :]
            out[sl.gripper] = self._gripper_state(arm)
            hold = self._contact(arm, st.ext_wrench_in_world) or hold
        self._hold_reason = hold
        return healthy

    def command(self, cmd: np.ndarray) -> None:
        c = cmd.tolist()
        prev = self._prev if self._prev is not None else c
        self._prev = c
        self._request_grippers(c)
        self._tick += 1
        if self._tick % self.config.decimation:
            return
        cfg, dt, arm = self.config, self._dt, 0
        try:
            for arm, (robot, sl) in enumerate(zip(self._robots, self._sl)):
                if sl.rotation is not None:
                    vel = world_twist(prev, c, sl, dt) if cfg.target_velocity else ZERO6
                    robot.SendCartesianMotionForce(
                        action_to_pose(c, sl), ZERO6, vel, cfg.max_linear_speed_m_s, cfg.max_angular_speed_rad_s,
                        cfg.max_linear_acc_m_s2, cfg.max_angular_acc_rad_s2,
                    )  # fmt: skip
                else:
                    ext = self._ext_q[arm]
                    j = sl.joints
                    dq = [(a - b) / dt for a, b in zip(c[j], prev[j])] if cfg.target_velocity else [0.0] * len(c[j])
                    n = len(ext) + len(dq)
                    robot.SendJointPosition(ext + c[j], [0.0] * len(ext) + dq, self._jcaps[0][:n], self._jcaps[1][:n])
        except (RuntimeError, ValueError, TypeError) as exc:
            raise self._refused("flexivrdk 1.9 send", arm, exc) from exc
