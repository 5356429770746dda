"""The robot side of the flexivrdk stand-ins: per-serial state shared by every connection, and the Robot API both
RDK generations share (see ``flexiv_standins.py`` for what is modelled and why)."""

from __future__ import annotations

import functools
import math
import re
import threading
from typing import Any

from flexiv_standin_devices import floats
from flexiv_standin_motion import NrtPlanner

SN_RE = re.compile(r"^([A-Za-z][A-Za-z0-9]*(?:[ -][A-Za-z0-9]+)*?)[ -](\d{6})$")
RDK2_MODELS = {"Enlight-L": "Enlight_L", "Enlight-LL": "Enlight_LL", "MICO-Core": "MICO_Core",
               "MICO-Plus": "MICO_Plus", "MICO-Ultra": "MICO_Ultra"}  # fmt: skip
HOME_POSE = [0.45, 0.0, 0.35, 0.0, 1.0, 0.0, 0.0]  # TCP pointing down: 180° about x
HOME_Q = [0.0, -0.7, 0.0, 1.57, 0.0, 0.7, 0.0]
Q_LIMIT = 2.7
OPERATIONAL_AFTER_POLLS = 3
ZERO_FT_POLLS = 2
FT_OFFSET = [1.5, -2.0, 4.0, 0.1, -0.1, 0.05]  # what an un-zeroed sensor reads at rest [N, Nm]
MOTION_MODES = ("RT_CARTESIAN_MOTION_FORCE", "RT_JOINT_POSITION", "NRT_CARTESIAN_MOTION_FORCE", "NRT_JOINT_POSITION")


def model_of(sn: str) -> str:
    m = SN_RE.match(sn)
    if not m:
        raise ValueError(f"invalid serial number format: {sn!r}")
    return m.group(1).replace(" ", "-")


class ArmSide:
    """One arm (joint group) of a robot: TCP, joints (external axes first on RDK 1.9), wrench, planner."""

    def __init__(self, index: int, ext_axes: int) -> None:
        pose = list(HOME_POSE)
        pose[1] = -0.3 + 0.6 * index
        self.ext = [0.25] * ext_axes
        self.q = list(HOME_Q)
        self.planner = NrtPlanner(pose)
        self.external = [0.0] * 6  # contact wrench on the TCP [N, Nm]
        self.ft_offset = list(FT_OFFSET)
        self.contact_limit: list[float] | None = None
        self.tool = "Flange"

    @property
    def pose(self) -> list[float]:
        return self.planner.pose

    def wrench(self) -> list[float]:
        return [a + b for a, b in zip(self.external, self.ft_offset)]


class RobotSide:
    """The robot behind a serial number (shared by all connections to it)."""

    def __init__(self, ns: Any, sn: str, generation: int) -> None:
        self.ns, self.rdk, self.sn, self.generation = ns, ns.real, sn, generation
        self.model = model_of(sn)
        n_arms = 2 if generation == 2 and not ns.single_arm else 1
        self.groups = [self.rdk.JointGroup.ARM_1, self.rdk.JointGroup.ARM_2][:n_arms] if generation == 2 else [None]
        self.arms = {g: ArmSide(i, ns.ext_axes if generation == 1 else 0) for i, g in enumerate(self.groups)}
        self.fault = ns.fault_at_connect
        self.estop = False
        self.reduced = False
        self.recovery = False
        self.enabled = False
        self.polls = 0
        self.mode = self.rdk.Mode.IDLE
        self.streaming = False
        self.blocking_while_streaming: list[str] = []
        self.calls: list[tuple[str, Any]] = []
        self.events: list[str] = []
        self.fail_stop = False
        self.primitive: str | None = None
        self.primitive_polls = 0
        self.timeliness_pct: float | None = None
        self.send_times: list[float] = []
        self.sends: list[tuple] = []  # RDK 1.9 NRT sends (pose or q, velocity / caps)
        self.overrate_sends = 0
        self.stream_count = 0
        self.stream_threads: set[int] = set()

    # -- what happens to the robot (tests) -----------------------------------------------------------------------
    def press_estop(self) -> None:
        self.estop = self.fault = True
        self.enabled = self.streaming = False
        self.events.append("E-stop pressed")

    def release_estop(self) -> None:
        self.estop = False

    def inject_fault(self, what: str = "joint torque limit exceeded") -> None:
        self.fault = True
        self.streaming = False
        self.events.append(what)

    def operational(self) -> bool:
        if not self.enabled or self.fault or self.estop or self.reduced or self.recovery:
            return False
        self.polls += 1
        return self.polls >= OPERATIONAL_AFTER_POLLS

    def status_name(self) -> str:
        if self.estop:
            return "ESTOP_NOT_RELEASED"
        if self.recovery:
            return "IN_RECOVERY_STATE"
        if self.fault:
            return "MINOR_FAULT"
        if self.reduced:
            return "IN_REDUCED_STATE"
        if not self.enabled:
            return "NOT_ENABLED" if self.generation == 1 else "NOT_SERVO_ON"
        return "READY" if self.polls >= OPERATIONAL_AFTER_POLLS else "RELEASING_BRAKE"

    def blocking(self, name: str) -> None:
        self.calls.append((name, None))
        if self.streaming:
            self.blocking_while_streaming.append(name)


def _api(blocking: bool = False):
    """A Robot method: needs a live connection; ``blocking`` ones are recorded while streaming."""

    def wrap(fn):
        @functools.wraps(fn)
        def inner(self, *args, **kwargs):
            if not self._connected:
                raise RuntimeError(f"{fn.__name__}: not connected")
            if blocking:
                self.side.blocking(fn.__name__)
            return fn(self, *args, **kwargs)

        return inner

    return wrap


class _Robot:
    """API shared by both generations (the subclasses below add each one's own calls and signatures)."""

    ns: Any = None
    GENERATION = 0

    def _init(self, robot_sn: Any, lite: bool) -> None:
        if not isinstance(robot_sn, str):
            raise TypeError("robot_sn must be str")
        ns = self.ns
        key = robot_sn.replace(" ", "-")
        side = ns.sides.get(key) or RobotSide(ns, key, self.GENERATION)
        self._check_model(side)
        ns.sides[key] = side
        self.side = side
        self.rdk = ns.real
        self._connected = True
        self._lite = lite
        ns.instances.append(self)

    def disconnect(self) -> None:
        """The network connection is lost (the robot side keeps its state)."""
        self._connected = False
        self.side.streaming = False

    # -- non-blocking ----------------------------------------------------------------------------------------------
    def connected(self) -> bool:
        return self._connected

    @_api()
    def fault(self) -> bool:
        return self.side.fault

    @_api()
    def operational(self) -> bool:
        return self.side.operational()

    @_api()
    def operational_status(self) -> Any:
        return getattr(self.rdk.OperationalStatus, self.side.status_name())

    @_api()
    def estop_released(self) -> bool:
        return not self.side.estop

    @_api()
    def reduced(self) -> bool:
        return self.side.reduced

    @_api()
    def recovery(self) -> bool:
        return self.side.recovery

    @_api()
    def mode(self) -> Any:
        return self.side.mode

    @_api()
    def lite(self) -> bool:
        return self._lite

    @_api()
    def event_log(self) -> list:
        out = []
        for d in self.side.events:
            e = self.rdk.RobotEvent()
            e.description = d
            out.append(e)
        return out

    # -- blocking ----------------------------------------------------------------------------------------------
    @_api(blocking=True)
    def ClearFault(self, timeout_sec: int = 30) -> bool:
        if not isinstance(timeout_sec, int):
            raise TypeError("timeout_sec must be int")
        s = self.side
        if s.estop or s.recovery:  # needs the E-stop released / a recovery first
            return False
        s.fault = False
        s.enabled = False
        return True

    @_api(blocking=True)
    def SwitchMode(self, mode: Any) -> None:
        if not isinstance(mode, self.rdk.Mode):
            raise TypeError(f"mode must be flexivrdk.Mode, got {type(mode).__name__}")
        if not self.side.operational():
            raise RuntimeError("SwitchMode: robot is not operational")
        self.side.calls[-1] = ("SwitchMode", mode)
        self.side.mode = mode
        self.side.streaming = False

    @_api(blocking=True)
    def Stop(self) -> None:
        if self.side.fail_stop:
            raise RuntimeError("failed to stop the robot")
        self.side.mode = self.rdk.Mode.IDLE
        self.side.streaming = False

    def _power_on(self, what: str) -> None:
        s = self.side
        if s.estop:
            raise RuntimeError(f"{what}: E-stop is not released")
        s.enabled = True
        s.polls = 0

    def _require(self, mode_name: str, what: str) -> None:
        if self.side.mode != getattr(self.rdk.Mode, mode_name):
            raise RuntimeError(f"{what}: robot is not in {mode_name} (in {self.side.mode})")
        if not self.side.operational():
            raise RuntimeError(f"{what}: robot is not operational")

    def _stream(self, now: float) -> None:
        s = self.side
        s.streaming = True
        s.stream_count += 1
        s.stream_threads.add(threading.get_ident())
        if s.send_times and now - s.send_times[-1] < 0.9 / self.ns.NRT_MAX_RATE_HZ:
            s.overrate_sends += 1
        s.send_times.append(now)

    def _zero_ft_done(self) -> bool:
        s = self.side
        if s.primitive == "ZeroFTSensor":
            s.primitive_polls += 1
            if s.primitive_polls >= ZERO_FT_POLLS:
                for arm in s.arms.values():
                    arm.ft_offset = [0.0] * 6
                return True
        return False

    def _start_primitive(self, name: str) -> None:
        self._require_mode("NRT_PRIMITIVE_EXECUTION", "ExecutePrimitive")
        self.side.primitive = name
        self.side.primitive_polls = 0

    def _require_mode(self, mode_name: str, what: str) -> None:
        if self.side.mode != getattr(self.rdk.Mode, mode_name):
            raise RuntimeError(f"{what}: robot is not in the correct control mode ({mode_name})")

    def _set_contact(self, arm: ArmSide, max_wrench: Any) -> None:
        w = floats(max_wrench, 6, "max_wrench")
        if any(x < 0 for x in w):
            raise ValueError("max_wrench contains a negative value")
        if self.side.mode.name not in ("RT_CARTESIAN_MOTION_FORCE", "NRT_CARTESIAN_MOTION_FORCE"):
            raise RuntimeError("SetMaxContactWrench: robot is not in the correct control mode")
        arm.contact_limit = w



def robot_info(side: RobotSide) -> Any:
    """The real RobotInfo for a stand-in robot (model, DoF, joint limits)."""
    rdk = side.rdk
    info = rdk.RobotInfo()
    info.serial_num = side.sn
    if side.generation == 1:
        n_e = side.ns.ext_axes
        info.model_name = side.model.replace("-", "")
        info.DoF, info.DoF_e, info.DoF_m = 7 + n_e, n_e, 7
        info.q_min = [-math.pi] * n_e + [-Q_LIMIT] * 7
        info.q_max = [math.pi] * n_e + [Q_LIMIT] * 7
        info.has_FT_sensor = True
    else:
        info.product_model = getattr(rdk.ProductModel, RDK2_MODELS[side.model])
        info.DoF = {g: 7 for g in side.groups}
        info.q_min = {g: [-Q_LIMIT] * 7 for g in side.groups}
        info.q_max = {g: [Q_LIMIT] * 7 for g in side.groups}
        info.single_arm_groups = {g: rdk.kJointGroupNames[g] for g in side.groups}
    return info


