"""executor_node: runs the 1 kHz servo loop on the robot and executes RTC chunks.

Declares and validates parameters, builds the ROS-free executor core (``control/executor.py``) and a driver
(``robots/``), and wires topics and services. No math in the callbacks.

Where the servo loop runs (parameter ``servo_process``): by default in its own process
(``control/servo_process.py``: the driver and executor live there, this node talks to it over a pipe and reads
the robot state from shared memory), because a servo thread here would share the GIL with rclpy (measured with
``benchmarks/bench_executor_loop.py``). ``servo_process:=false`` keeps the loop as a thread of this process.
If the servo process dies, the node logs an error, publishes ERROR diagnostics and stops publishing robot state.

Topics (``rtc_controller/topics.py``): subscribes ``rtc/chunk`` (JointTrajectory); publishes ``rtc/robot_state``
(JointState in the action space, stamped by this node's executor clock) at ``state_rate_hz``,
``~/inference_delay`` (Int32 d), ``~/measured_delay`` (Float64 δ [s]), ``~/active_chunk`` (Header, stamp = t_obs
of the executing chunk), ``~/switch`` (DiagnosticStatus per chunk switch: see :func:`switch_event_to_status`) and
``/diagnostics`` at 1 Hz. Services (std_srvs/Trigger): ``~/hold``, ``~/resume``,
``~/reset_fault``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.exceptions import ParameterException
from rclpy.executors import Executor as RosExecutor
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from std_msgs.msg import Float64, Header, Int32
from std_srvs.srv import Trigger
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory

from rtc_controller import topics
from rtc_controller.action_space import action_names
from rtc_controller.control.delay_estimator import DelayEstimatorConfig
from rtc_controller.control.executor import Executor, ExecutorConfig, ExecutorSnapshot
from rtc_controller.control.loop import LoopConfig, set_process_fifo_priority
from rtc_controller.control.safety import (
    DEFAULT_MAX_ANGULAR_ACC_RAD_S2,
    DEFAULT_MAX_ANGULAR_SPEED_RAD_S,
    DEFAULT_MAX_GRIPPER_SPEED_M_S,
    DEFAULT_MAX_JOINT_ACC_RAD_S2,
    DEFAULT_MAX_JOINT_SPEED_RAD_S,
    DEFAULT_MAX_LINEAR_ACC_M_S2,
    DEFAULT_MAX_LINEAR_SPEED_M_S,
    ArmLimits,
    SafetyConfig,
)
from rtc_controller.control.servo_process import ServoProcess, ServoProcessError
from rtc_controller.control.timeline import Rejection, SwitchEvent, TimelineConfig
from rtc_controller.robots.base import ArmDriver, DriverError
from rtc_controller.ros.conversions import msg_to_chunk, s_to_stamp, state_to_msg

DIAGNOSTICS_PERIOD_S = 1.0
LATENESS_P99_TARGET_US = 200.0
LATE_WINDOW_LIMIT = 0.02  # Flexiv: > 2 % late commands in any 1-second window faults the robot
CHUNK_QOS_DEPTH = 2
SERVO_PROCESS_START_S = 30.0  # spawn + imports in the servo process, on top of the robot's connect timeout [s]
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


@dataclass(frozen=True)
class Param:
    """One parameter: default, description, validator (returns a reason when the value is bad), run-time change."""

    default: Any
    description: str
    check: Callable[[Any], str | None] = lambda v: None
    dynamic: bool = False


def _one_of(*choices: str) -> Callable[[Any], str | None]:
    return lambda v: None if v in choices else f"must be one of {choices}, got {v!r}"


def _positive(v: Any) -> str | None:
    return None if isinstance(v, (int, float)) and math.isfinite(v) and v > 0 else f"must be > 0, got {v!r}"


def _non_negative(v: Any) -> str | None:
    return None if isinstance(v, (int, float)) and math.isfinite(v) and v >= 0 else f"must be >= 0, got {v!r}"


def _in_range(lo: float, hi: float) -> Callable[[Any], str | None]:
    return lambda v: None if isinstance(v, (int, float)) and lo <= v <= hi else f"must be in [{lo}, {hi}], got {v!r}"


def _triples(v: Any) -> str | None:
    return None if len(v) > 0 and len(v) % 3 == 0 else f"needs 3 values per arm, got {len(v)}"


def _cpu_list(v: str) -> str | None:
    try:
        _parse_cpus(v)
    except ValueError:
        return f"must be a comma-separated list of CPU indices, got {v!r}"
    return None


def _parse_cpus(v: str) -> tuple[int, ...]:
    return tuple(int(c) for c in v.split(",") if c.strip()) if v.strip() else ()


PARAMS: dict[str, Param] = {
    # driver
    "driver": Param("sim", "robot backend: sim | flexiv", _one_of("sim", "flexiv")),
    "flexiv_rdk": Param(2, "flexivrdk generation: 2 (2.x, Enlight/MICO) or 1 (1.9.x, Rizon 4/4s)", _one_of(1, 2)),
    "serial_numbers": Param(["Rizon4s-000000"], "robot serial numbers (RDK 2 dual-arm: one; RDK 1: one per arm)",
                            lambda v: None if len(v) >= 1 else "at least one serial number"),  # fmt: skip
    "joint_groups": Param(["ARM_1", "ARM_2"], "RDK 2 joint groups per arm (one robot with two arms)"),
    "connect_timeout_s": Param(20.0, "how long to wait for the robot to become operational [s]", _positive),
    "timeliness_failure_limit_pct": Param(2.0, "RDK 2: % of late RT commands in a 1-s window that faults the robot",
                                          _in_range(0.0, 100.0)),  # fmt: skip
    "gripper_names": Param([""], "gripper device name per arm ([''] = do not command grippers)"),
    "gripper_velocity_m_s": Param(0.1, "gripper Move velocity [m/s]", _positive),
    "gripper_force_n": Param(20.0, "gripper Move force limit [N]", _positive),
    "rdk1_command_rate_hz": Param(1000.0, "RDK 1: rate of SendCartesianMotionForce calls [Hz] (<= 1000)",
                                  _in_range(1.0, 1000.0)),  # fmt: skip
    "gripper_min_change_m": Param(0.002, "gripper commands smaller than this change are not sent [m]", _non_negative),
    # action space and timing
    "action_space": Param("cartesian", "cartesian (x,y,z,rotvec,gripper per arm) | joint (7 joints + gripper)",
                          _one_of("cartesian", "joint")),  # fmt: skip
    "num_arms": Param(2, "number of arms", _in_range(1, 2)),
    "action_names": Param([""], "action dimension names in order ([''] = the default names for action_space)"),
    "action_rate_hz": Param(50.0, "1/dt: action steps per second [Hz]", _positive),
    "servo_rate_hz": Param(1000.0, "servo loop rate [Hz]", _in_range(1.0, 4000.0)),
    "state_rate_hz": Param(50.0, "robot-state publication rate [Hz]", _in_range(1.0, 1000.0)),
    "horizon": Param(50, "H: prediction horizon [action steps] (longest chunk accepted)", _in_range(2, 10_000)),
    "execution_horizon": Param(25, "s: execution horizon [action steps]; d is clamped to H - s", _positive),
    "future_tolerance_s": Param(0.05, "chunks stamped further in the future than this are rejected [s]", _non_negative),
    # delay estimation
    "delay_quantile": Param(0.9, "quantile of δ over the window used for d", _in_range(0.01, 1.0)),
    "delay_window": Param(50, "number of recent δ samples", _in_range(1, 100_000)),
    "delay_warmup_samples": Param(3, "δ samples ignored after start (jit compile, warm-up)", _in_range(0, 10_000)),
    "initial_d": Param(-1, "d published before enough δ samples [steps] (-1 = none: the inference node uses its "
                           "own latency until the executor has measured δ)", _in_range(-1, 10_000)),
    "fixed_d": Param(-1, "fixed d [steps] (-1 = estimate from δ); may change at run time", _in_range(-1, 10_000),
                     dynamic=True),  # fmt: skip
    # safety (per-arm arrays are flat, 3 values per arm)
    "workspace_min_m": Param([-1.0, -1.0, 0.0, -1.0, -1.0, 0.0], "workspace box lower corner per arm [m]", _triples),
    "workspace_max_m": Param([1.0, 1.0, 1.5, 1.0, 1.0, 1.5], "workspace box upper corner per arm [m]", _triples),
    "max_linear_speed_m_s": Param(DEFAULT_MAX_LINEAR_SPEED_M_S, "TCP speed limit [m/s]", _positive),
    "max_linear_acc_m_s2": Param(DEFAULT_MAX_LINEAR_ACC_M_S2, "TCP acceleration limit [m/s²]", _positive),
    "max_angular_speed_rad_s": Param(DEFAULT_MAX_ANGULAR_SPEED_RAD_S, "TCP angular speed limit [rad/s]", _positive),
    "max_angular_acc_rad_s2": Param(DEFAULT_MAX_ANGULAR_ACC_RAD_S2, "TCP angular acceleration limit [rad/s²]",
                                    _positive),  # fmt: skip
    "max_joint_speed_rad_s": Param(DEFAULT_MAX_JOINT_SPEED_RAD_S, "joint speed limit [rad/s]", _positive),
    "max_joint_acc_rad_s2": Param(DEFAULT_MAX_JOINT_ACC_RAD_S2, "joint acceleration limit [rad/s²]", _positive),
    "gripper_min_m": Param(0.0, "smallest gripper width [m]", _non_negative),
    "gripper_max_m": Param(0.1, "largest gripper width [m]", _positive),
    "max_gripper_speed_m_s": Param(DEFAULT_MAX_GRIPPER_SPEED_M_S, "gripper width rate limit [m/s]", _positive),
    # real-time options
    "sched_fifo_priority": Param(0, "SCHED_FIFO priority of the servo thread (0 = off; warns if not permitted)",
                                 _in_range(0, 99)),  # fmt: skip
    "process_fifo_priority": Param(0, "SCHED_FIFO priority for all other threads of this process, below the servo "
                                   "thread's (0 = off): keeps GIL holders from being preempted", _in_range(0, 98)),
    "cpu_affinity": Param("", "CPUs for the servo thread, e.g. '1' or '2,3' ('' = any)", _cpu_list),
    "spin_us": Param(50, "busy-wait before each deadline [µs]", _in_range(0, 999)),
    "switch_interval_us": Param(50, "sys.setswitchinterval while running [µs]", _in_range(1, 5000)),
    "stats_window_s": Param(10.0, "servo timing percentiles cover the last this many seconds [s]",
                            _in_range(1.0, 3600.0)),  # fmt: skip
    "gc_mode": Param("freeze", "freeze (gc off, collected in slack) | normal", _one_of("freeze", "normal")),
    "ramp_down_s": Param(0.5, "longest braking time on shutdown [s]", _non_negative),
    "servo_process": Param(True, "run the servo loop in its own process (no GIL shared with rclpy; state via shared "
                                 "memory); false = a thread in this process (for comparison)"),
    "start_holding": Param(False, "start in hold (call ~/resume to follow chunks)"),
    # simulation
    "sim_fault_at_s": Param(-1.0, "sim: fault this long after connect [s] (-1 = never)"),
    "sim_disconnect_at_s": Param(-1.0, "sim: lose the connection this long after connect [s] (-1 = never)"),
    "sim_noise_pos_m": Param(1e-5, "sim: position sensor noise std [m]", _non_negative),
    "sim_noise_rot_rad": Param(1e-4, "sim: rotation sensor noise std [rad]", _non_negative),
}


def check_param(name: str, value: Any) -> str | None:
    """Reason why ``value`` is not acceptable for parameter ``name`` (None when fine)."""
    p = PARAMS.get(name)
    if p is None:
        return None
    default = p.default
    if isinstance(default, bool) != isinstance(value, bool):
        return f"{name}: expected {type(default).__name__}, got {type(value).__name__}"
    if isinstance(default, float) and not isinstance(value, (int, float)):
        return f"{name}: expected a number, got {value!r}"
    reason = p.check(value)
    return f"{name}: {reason}" if reason else None


def check_consistency(v: dict[str, Any]) -> str | None:
    """Cross-parameter rules (reason or None)."""
    if v["execution_horizon"] > v["horizon"]:
        return f"execution_horizon {v['execution_horizon']} must be <= horizon {v['horizon']}"
    if v["servo_rate_hz"] < v["action_rate_hz"]:
        return "servo_rate_hz must be >= action_rate_hz"
    if v["spin_us"] * 1e-6 >= 1.0 / v["servo_rate_hz"]:
        return "spin_us must be shorter than the servo period"
    if len(v["workspace_min_m"]) != 3 * v["num_arms"] or len(v["workspace_max_m"]) != 3 * v["num_arms"]:
        return f"workspace_min_m/workspace_max_m need 3 values per arm ({3 * v['num_arms']})"
    if v["process_fifo_priority"] and v["process_fifo_priority"] >= max(v["sched_fifo_priority"], 1):
        return "process_fifo_priority must be below sched_fifo_priority (the servo thread must stay highest)"
    if v["gripper_min_m"] >= v["gripper_max_m"]:
        return "gripper_min_m must be < gripper_max_m"
    names = v["action_names"]
    if names != [""] and len(names) != (7 if v["action_space"] == "cartesian" else 8) * v["num_arms"]:
        return f"action_names has {len(names)} names for {v['num_arms']} {v['action_space']} arms"
    return None


def _same_named(cls: type, v: dict[str, Any], **explicit: Any) -> Any:
    """``cls(**explicit)`` plus every other field of the dataclass ``cls`` that has a parameter of the same name
    (a shared name means the same quantity in the same unit in the parameters and the core configs)."""
    picked = {f.name: v[f.name] for f in dataclasses.fields(cls) if f.name in v and f.name not in explicit}
    return cls(**picked, **explicit)


def build_config(v: dict[str, Any]) -> ExecutorConfig:
    """Parameters -> the executor core's frozen configs (raises ValueError with a reason)."""
    kind = v["action_space"]
    n = v["num_arms"]
    names = tuple(v["action_names"]) if v["action_names"] != [""] else action_names(kind, ("left", "right")[:n])
    arms = tuple(
        _same_named(
            ArmLimits,
            v,
            workspace_min_m=tuple(v["workspace_min_m"][3 * i : 3 * i + 3]),
            workspace_max_m=tuple(v["workspace_max_m"][3 * i : 3 * i + 3]),
        )
        for i in range(n)
    )
    dt = 1.0 / v["action_rate_hz"]
    servo_dt = 1.0 / v["servo_rate_hz"]
    return ExecutorConfig(
        timeline=TimelineConfig(names=names, action_rate_hz=v["action_rate_hz"], max_horizon=v["horizon"], kind=kind,
                                future_tolerance_s=v["future_tolerance_s"]),  # fmt: skip
        delay=DelayEstimatorConfig(
            dt_s=dt,
            horizon=v["horizon"],
            execution_horizon=v["execution_horizon"],
            quantile=v["delay_quantile"],
            window=v["delay_window"],
            warmup_samples=v["delay_warmup_samples"],
            min_samples=min(3, v["delay_window"]),
            initial_d=None if v["initial_d"] < 0 else v["initial_d"],
            fixed_d=None if v["fixed_d"] < 0 else v["fixed_d"],
        ),
        safety=SafetyConfig(servo_dt_s=servo_dt, arms=arms, kind=kind),
        loop=LoopConfig(
            rate_hz=v["servo_rate_hz"],
            spin_s=v["spin_us"] * 1e-6,
            switch_interval_s=v["switch_interval_us"] * 1e-6,
            sched_fifo_priority=v["sched_fifo_priority"],
            cpu_affinity=_parse_cpus(v["cpu_affinity"]),
            gc_mode=v["gc_mode"],
            stats_capacity=max(10, round(v["stats_window_s"] * v["servo_rate_hz"])),
        ),
        ramp_down_s=v["ramp_down_s"],
        start_holding=v["start_holding"],
    )


def build_driver(v: dict[str, Any]) -> ArmDriver:
    """Parameters -> the configured ArmDriver (not yet connected)."""
    return driver_factory(v)()


def driver_factory(v: dict[str, Any]) -> Callable[[], ArmDriver]:
    """Parameters -> a picklable zero-argument factory of the configured ArmDriver (driver class + its frozen
    config), so that the servo process can build the driver itself."""
    kind, n = v["action_space"], v["num_arms"]
    if v["driver"] == "sim":
        from rtc_controller.robots.sim import SimConfig, SimDriver

        return functools.partial(
            SimDriver,
            SimConfig(
                kind=kind,
                num_arms=n,
                noise_pos_m=v["sim_noise_pos_m"],
                noise_rot_rad=v["sim_noise_rot_rad"],
                fault_at_s=v["sim_fault_at_s"] if v["sim_fault_at_s"] >= 0 else None,
                disconnect_at_s=v["sim_disconnect_at_s"] if v["sim_disconnect_at_s"] >= 0 else None,
            )
        )
    grippers = tuple(v["gripper_names"][:n]) if any(v["gripper_names"]) else ()
    if v["flexiv_rdk"] == 2:
        from rtc_controller.robots.flexiv_rdk2 import FlexivRdk2Config, FlexivRdk2Driver

        return functools.partial(
            FlexivRdk2Driver,
            _same_named(
                FlexivRdk2Config,
                v,
                serial_numbers=tuple(v["serial_numbers"]),
                joint_groups=tuple(v["joint_groups"][:n]),
                kind=kind,
                gripper_names=grippers,
            ),
        )
    from rtc_controller.robots.flexiv_rdk1 import FlexivRdk1Config, FlexivRdk1Driver

    return functools.partial(
        FlexivRdk1Driver,
        _same_named(
            FlexivRdk1Config,
            v,
            serial_numbers=tuple(v["serial_numbers"][:n]),
            kind=kind,
            command_rate_hz=v["rdk1_command_rate_hz"],
            gripper_names=grippers,
        ),
    )


def _kv(key: str, value: Any) -> KeyValue:
    if isinstance(value, float):
        value = repr(value) if key.endswith("_s") and abs(value) > 1e6 else f"{value:.6g}"  # full-precision stamps
    return KeyValue(key=key, value=str(value))


def switch_event_to_status(ev: SwitchEvent, name: str) -> DiagnosticStatus:
    """One chunk switch -> DiagnosticStatus with keys t_switch_s, t_obs_s, delay_s, k_star, guided_d (-1 = unknown),
    jump_norm (‖new − old‖ with rotations as body-frame rotation vectors), jump_linear_m, jump_angular_rad,
    jump_gripper_m (per-arm maxima), from_hold (1 when no chunk was active before: the first chunk)."""
    values = [
        _kv("t_switch_s", ev.t_switch_s),
        _kv("t_obs_s", ev.t_obs_s),
        _kv("delay_s", ev.delay_s),
        _kv("k_star", ev.k_star),
        _kv("guided_d", ev.guided_d if ev.guided_d is not None else -1),
        _kv("jump_norm", float(np.linalg.norm(ev.jump))),
        _kv("jump_linear_m", ev.jump_linear_m),
        _kv("jump_angular_rad", ev.jump_angular_rad),
        _kv("jump_gripper_m", ev.jump_gripper_m),
        _kv("from_hold", int(ev.from_hold)),
    ]
    return DiagnosticStatus(level=DiagnosticStatus.OK, name=f"{name}: switch", message="chunk switch", values=values)


def snapshot_to_diagnostics(s: ExecutorSnapshot, name: str, hw_id: str) -> list[DiagnosticStatus]:
    """Executor snapshot -> DiagnosticStatus list (loop timing, chunks/δ/d, safety, driver)."""
    ok, warn, err = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR
    lp = s.loop
    loop_bad = lp.worst_window_late_fraction > LATE_WINDOW_LIMIT or lp.lateness_p99_us > LATENESS_P99_TARGET_US
    loop = DiagnosticStatus(
        level=warn if loop_bad else ok,
        name=f"{name}: servo loop",
        hardware_id=hw_id,
        message="timing above target" if loop_bad else "ok",
        values=[_kv(k, v) for k, v in lp.as_dict().items()],
    )
    last = s.last_switch
    chunk_level = warn if s.starving else ok
    chunks = DiagnosticStatus(
        level=chunk_level,
        name=f"{name}: chunks",
        hardware_id=hw_id,
        message="starving (holding the last action)" if s.starving else "ok",
        values=[
            _kv("delta_s", s.last_delay_s),
            _kv("delta_quantile_s", s.delay_quantile_s),
            _kv("d", s.d),
            _kv("accepted", s.accepted),
            _kv("switches", s.switches),
            _kv("last_k_star", last.k_star if last else -1),
            _kv("last_guided_d", last.guided_d if last and last.guided_d is not None else -1),
            _kv("last_jump_linear_m", last.jump_linear_m if last else 0.0),
            _kv("last_jump_angular_rad", last.jump_angular_rad if last else 0.0),
            _kv("max_jump_linear_m", s.max_jump_linear_m),
            _kv("max_jump_angular_rad", s.max_jump_angular_rad),
            _kv("starved_ticks", s.starved_ticks),
            _kv("rejected_total", sum(s.rejected.values())),
            *[_kv(f"rejected_{k}", c) for k, c in s.rejected.items()],
            _kv("last_rejection", s.last_rejection),
            _kv("active_t_obs_s", s.active_t_obs_s),
        ],
    )
    safety = DiagnosticStatus(
        level=ok,
        name=f"{name}: safety",
        hardware_id=hw_id,
        message="ok",
        values=[_kv("interventions_total", sum(s.safety_interventions.values()))]
        + [_kv(f"interventions_{k}", c) for k, c in s.safety_interventions.items()],
    )
    d = s.driver
    driver_level = err if (s.mode == "faulted" or d.fault or not d.connected) else ok
    driver = DiagnosticStatus(
        level=driver_level,
        name=f"{name}: driver",
        hardware_id=hw_id,
        message=s.fault_message or d.message,
        values=[_kv("mode", s.mode), _kv("connected", d.connected), _kv("enabled", d.enabled), _kv("fault", d.fault),
                _kv("driver_message", d.message)],  # fmt: skip
    )
    return [loop, chunks, safety, driver]


def dead_diagnostics(reason: str, name: str, hw_id: str) -> list[DiagnosticStatus]:
    """The servo loop is gone: an ERROR on the servo loop and driver statuses (mode = "dead")."""
    err = DiagnosticStatus.ERROR
    return [
        DiagnosticStatus(level=err, name=f"{name}: servo loop", hardware_id=hw_id, message=reason,
                         values=[_kv("mode", "dead")]),  # fmt: skip
        DiagnosticStatus(level=err, name=f"{name}: driver", hardware_id=hw_id, message=reason,
                         values=[_kv("mode", "dead")]),  # fmt: skip
    ]


class ExecutorNode(Node):
    """Declare, validate, wire. See the module docstring."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(topics.EXECUTOR_NODE, **kwargs)
        for name, p in PARAMS.items():
            self.declare_parameter(name, p.default, ParameterDescriptor(description=p.description,
                                                                        dynamic_typing=False))  # fmt: skip
        self.values = {name: self.get_parameter(name).value for name in PARAMS}
        reasons = [r for r in (check_param(k, v) for k, v in self.values.items()) if r]
        if not reasons and (c := check_consistency(self.values)):
            reasons.append(c)
        if reasons:
            raise ValueError("invalid parameters: " + "; ".join(reasons))
        self.add_on_set_parameters_callback(self._on_set_parameters)
        config = build_config(self.values)  # ValueError with a reason on bad combinations
        self.names = list(config.timeline.names)
        self.executor_core: Executor | ServoProcess
        if self.values["servo_process"]:
            self.executor_core = ServoProcess(
                config,
                driver_factory(self.values),
                process_fifo_priority=self.values["process_fifo_priority"],  # the child's non-servo threads
                start_timeout_s=self.values["connect_timeout_s"] + SERVO_PROCESS_START_S,
            )
        else:
            self.executor_core = Executor(config, build_driver(self.values))
        fast = MutuallyExclusiveCallbackGroup()
        slow = MutuallyExclusiveCallbackGroup()
        services = MutuallyExclusiveCallbackGroup()
        self.state_pub = self.create_publisher(JointState, topics.ROBOT_STATE, 10)
        self.d_pub = self.create_publisher(Int32, topics.INFERENCE_DELAY, LATCHED)
        self.delta_pub = self.create_publisher(Float64, topics.MEASURED_DELAY, 10)
        self.active_pub = self.create_publisher(Header, topics.ACTIVE_CHUNK, LATCHED)
        self.diag_pub = self.create_publisher(DiagnosticArray, topics.DIAGNOSTICS, 10)
        self.switch_pub = self.create_publisher(DiagnosticStatus, topics.SWITCH_EVENTS, 50)
        self.create_subscription(JointTrajectory, topics.CHUNK, self._on_chunk, CHUNK_QOS_DEPTH, callback_group=fast)
        self.create_timer(1.0 / self.values["state_rate_hz"], self._publish_state, callback_group=fast)
        self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics, callback_group=slow)
        self.create_service(Trigger, "~/hold", self._srv_hold, callback_group=services)
        self.create_service(Trigger, "~/resume", self._srv_resume, callback_group=services)
        self.create_service(Trigger, "~/reset_fault", self._srv_reset_fault, callback_group=services)
        self._last_active = math.nan
        self._last_mode = ""
        self._dead = ""  # why the servo process is gone ("" while it runs)
        self.executor_core.start()
        try:
            self._apply_process_priority()
            self._publish_d()
        except BaseException:
            self.executor_core.shutdown()
            raise
        where = f"process {self.executor_core.pid}" if isinstance(self.executor_core, ServoProcess) else "thread"
        self.get_logger().info(
            f"executor running: driver={self.values['driver']}, {len(self.names)} action dims, "
            f"servo {self.values['servo_rate_hz']:.0f} Hz in a {where}, dt {1e3 / self.values['action_rate_hz']:.1f} ms, "
            f"H={self.values['horizon']}, s={self.values['execution_horizon']}"
        )

    def _apply_process_priority(self) -> None:
        ex = self.executor_core
        warnings = list(ex.warnings)  # the servo process applied its own real-time options (and reported them)
        if isinstance(ex, Executor):  # servo thread in this process: lift the other threads (GIL holders) too
            time.sleep(0.05)  # let the servo thread apply its own settings first
            loop = ex.loop
            warnings = list(loop.warnings) + set_process_fifo_priority(
                self.values["process_fifo_priority"], exclude_tids=(loop.native_id,) if loop.native_id else ()
            )
        for w in warnings:
            self.get_logger().warning(w)

    # ---- parameters --------------------------------------------------------------------------------------------
    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        for p in params:
            spec = PARAMS.get(p.name)
            if spec is None:
                continue
            if not spec.dynamic:
                return SetParametersResult(successful=False, reason=f"{p.name} cannot change at run time (restart)")
            reason = check_param(p.name, p.value)
            if reason:
                return SetParametersResult(successful=False, reason=reason)
        for p in params:
            if p.name == "fixed_d":
                try:
                    self.executor_core.set_fixed_d(None if p.value < 0 else int(p.value))
                except ServoProcessError as exc:
                    return SetParametersResult(successful=False, reason=f"servo process: {exc}")
                self.values["fixed_d"] = p.value
        return SetParametersResult(successful=True)

    # ---- callbacks (hand over only) ----------------------------------------------------------------------------
    def _on_chunk(self, msg: JointTrajectory) -> None:
        ex = self.executor_core
        t_arrival = ex.now_s()
        chunk = msg_to_chunk(msg)
        try:
            r = ex.submit(chunk, t_arrival)
        except ServoProcessError as exc:
            self.get_logger().error(f"chunk not delivered: {exc}", throttle_duration_sec=1.0)
            return
        if isinstance(r, Rejection):
            self.get_logger().warning(f"chunk rejected ({r.reason}): {r.detail}", throttle_duration_sec=1.0)
            if r.reason != "stale":
                return
            delay = t_arrival - chunk.t_obs_s
        else:
            delay = r.delay_s  # PreparedChunk (thread) or SubmitAccepted (process)
        self.delta_pub.publish(Float64(data=float(delay)))
        self._publish_d()

    def _publish_d(self) -> None:
        if self.executor_core.has_estimate:  # else the inference node falls back to its own latency
            self.d_pub.publish(Int32(data=int(self.executor_core.d)))

    def _check_alive(self) -> bool:
        """False (and one ERROR log line plus ERROR diagnostics) once the servo loop is gone."""
        if self._dead:
            return False
        ex = self.executor_core
        if ex.alive or ex.mode == "stopped":
            return True
        if isinstance(ex, ServoProcess):
            self._dead = f"servo process {ex.pid} died (exit code {ex.exitcode})"
        else:
            self._dead = "servo thread stopped"
        self.get_logger().error(f"{self._dead}: no more commands to the robot, robot state no longer published; "
                                "restart the node")  # fmt: skip
        self._publish_diagnostics()
        return False

    def _publish_state(self) -> None:
        if not self._check_alive():
            return
        ex = self.executor_core
        try:
            stamp_s, state = ex.latest_state()
            events = ex.drain_switch_events()
            active_t_obs = ex.active_t_obs_s
            mode = ex.mode
        except ServoProcessError:
            self._check_alive()
            return
        if math.isfinite(stamp_s):
            self.state_pub.publish(state_to_msg(state, self.names, stamp_s))
        for ev in events:
            self.switch_pub.publish(switch_event_to_status(ev, self.get_name()))
        if math.isfinite(active_t_obs) and active_t_obs != self._last_active:
            self._last_active = active_t_obs
            self.active_pub.publish(Header(stamp=s_to_stamp(active_t_obs), frame_id=""))
        if mode != self._last_mode:
            self._last_mode = mode
            if mode == "faulted":
                self._publish_diagnostics()  # also refreshes fault_message
                self.get_logger().error(f"robot fault, streaming stopped, holding: {ex.fault_message}")

    def _publish_diagnostics(self) -> None:
        arr = DiagnosticArray()
        arr.header.stamp = s_to_stamp(self.executor_core.now_s())
        snap = None
        if not self._dead:
            try:
                snap = self.executor_core.snapshot()
            except ServoProcessError as exc:
                self.get_logger().error(f"servo process unresponsive: {exc}", throttle_duration_sec=1.0)
        if snap is not None:
            arr.status = snapshot_to_diagnostics(snap, self.get_name(), self.values["driver"])
        else:
            arr.status = dead_diagnostics(self._dead or "servo process unresponsive", self.get_name(),
                                          self.values["driver"])  # fmt: skip
        self.diag_pub.publish(arr)
        if snap is not None:
            self._publish_d()

    # ---- services ----------------------------------------------------------------------------------------------
    def _trigger(self, res: Trigger.Response, action: Callable[[], Any], ok: str, failed: Callable[[], str]):
        """Run a Trigger service's action: success unless it returns False or the servo process is gone."""
        try:
            result = action()
        except ServoProcessError as exc:
            res.success, res.message = False, str(exc)
            return res
        res.success = result is not False
        res.message = ok if res.success else failed()
        return res

    def _srv_hold(self, _req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        return self._trigger(res, self.executor_core.hold, "holding", str)

    def _srv_resume(self, _req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        return self._trigger(res, self.executor_core.resume, "running",
                             lambda: f"cannot resume in mode {self.executor_core.mode} (reset the fault first)")

    def _srv_reset_fault(self, _req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        return self._trigger(res, self.executor_core.reset_fault, "fault cleared, holding (call ~/resume)",
                             lambda: f"reset failed: {self.executor_core.fault_message}")

    def shutdown(self) -> None:
        """Ramp down, stop the driver and (process mode) join the servo process (idempotent)."""
        if self.executor_core.mode != "stopped":
            self.executor_core.shutdown()


def make_ros_executor() -> RosExecutor:
    """The executor that spins this node: single-threaded on purpose.

    Every Python thread that spins ROS competes with the servo thread for the GIL; all callbacks here are short
    hand-overs, so one thread suffices. Measured (sim, no chunks, SCHED_FIFO): servo tick p99 688 µs with a
    3-thread MultiThreadedExecutor vs 431 µs single-threaded (199 µs with no ROS at all).
    Caveat: a blocking ``~/reset_fault`` (ClearFault waits up to its timeout) pauses state publication meanwhile.
    """
    return SingleThreadedExecutor()


def _raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(args: list[str] | None = None) -> int:
    """Run the node until SIGINT/SIGTERM; then ramp down, stop the driver and exit 0.

    Exit codes: 2 = invalid parameters (the reason is printed), 1 = the robot could not be started.
    """
    # rclpy handles SIGINT; SIGTERM (systemd, docker stop, launch) takes the same ramp-down path instead of
    # rclpy's context shutdown, which would pull the context from under the spinning executor.
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.SIGINT)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    node: ExecutorNode | None = None
    try:
        node = ExecutorNode()
        executor = make_ros_executor()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (ValueError, ParameterException) as exc:  # invalid parameters: a clear message, nonzero exit
        print(f"executor_node: {exc}", file=sys.stderr)
        return 2
    except (DriverError, ServoProcessError) as exc:
        print(f"executor_node: could not start the robot: {exc}", file=sys.stderr)
        return 1
    finally:
        if node is not None:
            node.shutdown()
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
