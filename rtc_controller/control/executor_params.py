"""The executor node's parameters (ROS-free): the table (one ``param_schema.Param`` each: default, description,
unit, validator, run-time change), the cross-parameter checks that refuse bad values with a reason, and the
mapping to the executor core's frozen configs (the driver the parameters name is built by ``app.drivers``).

Units are in the names too (``_s``, ``_hz``, ``_m``, ``_rad``, ``_us``, ``_pct``); per-arm arrays are flat, three
values per arm (left then right). H, s and Δt are ``chunk_timing.TIMING_PARAMS`` (shared with the inference node).
``config/sim.yaml``, ``config/rig.yaml`` and ``config/twin.yaml`` document every parameter with its description.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from rtc_controller.action_space import action_names
from rtc_controller.chunk_timing import MAX_HORIZON, TIMING_PARAMS
from rtc_controller.control.approach import ApproachConfig
from rtc_controller.control.delay_estimator import DelayEstimatorConfig
from rtc_controller.control.executor import ExecutorConfig
from rtc_controller.control.loop import LoopConfig
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
from rtc_controller.control.timeline import TimelineConfig
from rtc_controller.param_schema import (
    Param,
    field_default,
    in_range,
    layered,
    non_negative,
    one_of,
    positive,
    refusals,
)


# Where a core config has a default, the parameter's default is it (declared once): the approach's, one arm's
# limits (two arms by default), the delay estimator's, the loop's, the timeline's.
APPROACH = ApproachConfig()
ARM = ArmLimits()


def _triples(v: Any) -> str | None:
    return None if len(v) > 0 and len(v) % 3 == 0 else f"needs 3 values per arm, got {len(v)}"


def _wrench(v: Any) -> str | None:
    if len(v) % 6 or not v:
        return f"needs 6 values [fx, fy, fz, mx, my, mz] (all arms) or 6 per arm, got {len(v)}"
    return None if all(x >= 0 for x in v) else f"must be >= 0 (.inf = unlimited), got {list(v)}"


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
    "driver": Param("sim", "robot backend: sim | flexiv | mujoco (the MuJoCo twin)", one_of("sim", "flexiv", "mujoco")),
    "flexiv_rdk": Param(1, "flexivrdk generation: 1 (1.9.x, Rizon 4/4s) or 2 (2.x, Enlight/MICO)", one_of(1, 2)),
    "serial_numbers": Param(["Rizon4s-000000", "Rizon4s-000001"], "robot serial numbers (RDK 1.9: one per arm; "
                            "RDK 2 dual-arm: one)",
                            lambda v: None if len(v) >= 1 else "at least one serial number"),  # fmt: skip
    "joint_groups": Param(["ARM_1", "ARM_2"], "RDK 2 joint groups per arm (one robot with two arms)"),
    "connect_timeout_s": Param(20.0, "how long to wait for the robot to become operational", positive, unit="s"),
    "timeliness_failure_limit_pct": Param(2.0, "RDK 2: late RT commands in a 1-s window that fault the robot",
                                          in_range(0.0, 100.0), unit="%"),  # fmt: skip
    "gripper_names": Param([""], "gripper device name per arm ([''] = do not command grippers)"),
    "gripper_velocity_m_s": Param(0.1, "gripper Move velocity", positive, unit="m/s"),
    "gripper_force_n": Param(20.0, "gripper Move force limit", positive, unit="N"),
    "rdk1_command_rate_hz": Param(100.0, "RDK 1.9: NRT send rate, 1..100 as Flexiv documents (each send re-plans "
                                  "the motion); divides servo_rate_hz", in_range(1.0, 100.0), unit="Hz"),
    "rdk1_target_velocity": Param(True, "RDK 1.9: send the filtered command's velocity with each target (false: "
                                  "zeros: every waypoint a planned stop)"),
    "gripper_min_change_m": Param(0.002, "gripper commands smaller than this change are not sent",
                                  non_negative, unit="m"),
    "gripper_init": Param(False, "call Gripper.Init at start (grippers that do not initialise at power-on)"),
    "tool_names": Param([""], "tool per arm to switch to at start (TCP and mass compensation; [''] = keep the "
                        "robot's active tool)"),
    "zero_ft_sensor": Param(True, "zero the force/torque sensors at start (ZeroFTSensor; nothing may touch the robot)"),
    "clear_fault_timeout_s": Param(30, "ClearFault timeout", in_range(1, 600), unit="s"),
    "max_contact_wrench": Param([math.inf] * 6, "SetMaxContactWrench [fx, fy, fz, mx, my, mz] (all arms) or 6 per "
                                "arm (.inf = unlimited: left to the robot)", _wrench, unit="N, Nm"),
    "contact_force_limit_n": Param(0.0, "hold when an arm's measured external force exceeds this (0 = off)",
                                   non_negative, unit="N"),  # fmt: skip
    "contact_moment_limit_nm": Param(0.0, "hold when an arm's measured external moment exceeds this (0 = off)",
                                     non_negative, unit="Nm"),  # fmt: skip
    # action space and timing
    "action_space": Param("cartesian", "cartesian (x,y,z,rotvec,gripper per arm) | joint (7 joints + gripper)",
                          one_of("cartesian", "joint")),  # fmt: skip
    "num_arms": Param(2, "number of arms", in_range(1, 2)),
    "action_names": Param([""], "action dimension names in order ([''] = the default names for action_space)"),
    "servo_rate_hz": Param(1000.0, "servo loop rate", in_range(1.0, 4000.0), unit="Hz"),
    "state_rate_hz": Param(50.0, "robot-state publication rate", in_range(1.0, 1000.0), unit="Hz"),
    **TIMING_PARAMS,  # horizon, execution_horizon, action_rate_hz: shared with the inference node
    "future_tolerance_s": Param(field_default(TimelineConfig, "future_tolerance_s"),
                                "chunks stamped further in the future than this are rejected",
                                non_negative, unit="s"),
    # delay estimation
    "delay_quantile": Param(field_default(DelayEstimatorConfig, "quantile"),
                            "quantile of δ over the window used for d", in_range(0.01, 1.0)),
    "delay_window": Param(field_default(DelayEstimatorConfig, "window"),
                          "number of recent δ samples", in_range(1, 100_000)),
    "delay_warmup_samples": Param(field_default(DelayEstimatorConfig, "warmup_samples"), "δ samples ignored after "
                                  "start (jit compile, warm-up)", in_range(0, 10_000)),
    "initial_d": Param(-1, "d published before enough δ samples (-1 = none: the inference node uses its "
                           "own latency until the executor has measured δ)", in_range(-1, MAX_HORIZON),
                     unit="action steps"),
    "fixed_d": Param(-1, "fixed d (-1 = estimate from δ; at most H - s)",
                     in_range(-1, MAX_HORIZON), unit="action steps", dynamic=True),  # fmt: skip
    "chunk_source_node": Param("inference_node", "the only node whose chunks are accepted (relative to this node's "
                                                 "namespace, or /ns/name); others: rejected, ERROR and hold"),
    "chunk_liveliness_lease_s": Param(0.0, "> 0: the chunk subscription requests DDS liveliness with this lease "
                                           "and reports a lost chunk publisher in diagnostics (a publisher must offer "
                                           "<= it: the inference node offers 1 s); 0 = off", non_negative, unit="s"),
    # safety (per-arm arrays are flat, 3 values per arm)
    "workspace_min_m": Param(list(ARM.workspace_min_m) * 2, "workspace box lower corner per arm",
                             _triples, unit="m"),
    "workspace_max_m": Param(list(ARM.workspace_max_m) * 2, "workspace box upper corner per arm", _triples,
                             unit="m"),
    "max_linear_speed_m_s": Param(DEFAULT_MAX_LINEAR_SPEED_M_S, "TCP speed limit", positive, unit="m/s"),
    "max_linear_acc_m_s2": Param(DEFAULT_MAX_LINEAR_ACC_M_S2, "TCP acceleration limit", positive, unit="m/s²"),
    "max_angular_speed_rad_s": Param(DEFAULT_MAX_ANGULAR_SPEED_RAD_S, "TCP angular speed limit",
                                     positive, unit="rad/s"),
    "max_angular_acc_rad_s2": Param(DEFAULT_MAX_ANGULAR_ACC_RAD_S2, "TCP angular acceleration limit",
                                    positive, unit="rad/s²"),  # fmt: skip
    "max_joint_speed_rad_s": Param(DEFAULT_MAX_JOINT_SPEED_RAD_S, "joint speed limit", positive, unit="rad/s"),
    "max_joint_acc_rad_s2": Param(DEFAULT_MAX_JOINT_ACC_RAD_S2, "joint acceleration limit", positive, unit="rad/s²"),
    "gripper_min_m": Param(ARM.gripper_min_m, "smallest gripper width", non_negative, unit="m"),
    "gripper_max_m": Param(ARM.gripper_max_m, "largest gripper width", positive, unit="m"),
    "max_gripper_speed_m_s": Param(DEFAULT_MAX_GRIPPER_SPEED_M_S, "gripper width rate limit", positive, unit="m/s"),
    "joint_limit_margin_rad": Param(0.05, "joint space: stay this far inside the robot's joint limits",
                                    non_negative, unit="rad"),  # fmt: skip
    # start-up approach (control/approach.py)
    "ready_pose": Param([0.0], "pose approached on the first resume after start/reset, one action-space pose per "
                        "arm (world frame); [0.0] = none"),
    "approach_linear_speed_m_s": Param(APPROACH.linear_speed_m_s, "approach: peak TCP speed", positive, unit="m/s"),
    "approach_linear_acc_m_s2": Param(APPROACH.linear_acc_m_s2, "approach: peak TCP acceleration",
                                      positive, unit="m/s²"),
    "approach_angular_speed_rad_s": Param(APPROACH.angular_speed_rad_s, "approach: peak TCP angular speed",
                                          positive, unit="rad/s"),
    "approach_angular_acc_rad_s2": Param(APPROACH.angular_acc_rad_s2, "approach: peak TCP angular acceleration",
                                         positive, unit="rad/s²"),
    "approach_joint_speed_rad_s": Param(APPROACH.joint_speed_rad_s, "approach: peak joint speed",
                                        positive, unit="rad/s"),
    "approach_joint_acc_rad_s2": Param(APPROACH.joint_acc_rad_s2, "approach: peak joint acceleration",
                                       positive, unit="rad/s²"),
    "approach_gripper_speed_m_s": Param(APPROACH.gripper_speed_m_s, "approach: gripper speed", positive, unit="m/s"),
    "approach_threshold_m": Param(APPROACH.threshold_m, "a first commanded pose closer than this (and "
                                  "approach_threshold_rad) is "
                                  "taken over without an approach", non_negative, unit="m"),
    "approach_threshold_rad": Param(APPROACH.threshold_rad, "rotation/joint threshold of the same",
                                    non_negative, unit="rad"),
    "approach_max_outside_m": Param(APPROACH.max_outside_m, "refuse to resume while a measured TCP is farther "
                                    "outside its workspace "
                                    "box", non_negative, unit="m"),
    "approach_max_distance_m": Param(APPROACH.max_distance_m, "refuse an approach longer than this",
                                     positive, unit="m"),
    # real-time options
    "sched_fifo_priority": Param(field_default(LoopConfig, "sched_fifo_priority"),
                                 "SCHED_FIFO priority of the servo thread (0 = off; warns if not permitted)",
                                 in_range(0, 99)),  # fmt: skip
    "process_fifo_priority": Param(0, "SCHED_FIFO priority for all other threads of this process, below the servo "
                                   "thread's (0 = off): keeps GIL holders from being preempted", in_range(0, 98)),
    "cpu_affinity": Param("", "CPUs for the servo thread, e.g. '1' or '2,3' ('' = any)", _cpu_list),
    "spin_us": Param(50, "busy-wait before each deadline", in_range(0, 999), unit="µs"),
    "switch_interval_us": Param(50, "sys.setswitchinterval while running", in_range(1, 5000), unit="µs"),
    "stats_window_s": Param(10.0, "servo timing percentiles cover the last this many seconds",
                            in_range(1.0, 3600.0), unit="s"),  # fmt: skip
    "gc_mode": Param(field_default(LoopConfig, "gc_mode"),
                     "freeze (gc off, collected in slack) | normal", one_of("freeze", "normal")),
    "ramp_down_s": Param(0.5, "longest braking time on shutdown", non_negative, unit="s"),
    "servo_process": Param(True, "run the servo loop in its own process (no GIL shared with rclpy; state via shared "
                                 "memory); false = a thread in this process (for comparison)"),
    "start_holding": Param(False, "start in hold (call ~/resume to follow chunks)"),
    # simulation
    "sim_fault_at_s": Param(-1.0, "sim: fault this long after connect (-1 = never)", unit="s"),
    "sim_disconnect_at_s": Param(-1.0, "sim: lose the connection this long after connect (-1 = never)", unit="s"),
    "sim_noise_pos_m": Param(1e-5, "sim: position sensor noise std", non_negative, unit="m"),
    "sim_noise_rot_rad": Param(1e-4, "sim: rotation sensor noise std", non_negative, unit="rad"),
    "sim_gripper_block_s": Param(0.0, "sim: > 0: gripper commands block this long holding the GIL, like "
                                 "Gripper.Move, in a gripper channel", non_negative, unit="s"),
    "sim_gripper_channel": Param("process", "sim: where those gripper commands run: process (as the Flexiv drivers) "
                                 "| thread (in the servo process: comparison only)", one_of("process", "thread")),
    # the MuJoCo twin (driver: mujoco); sim_fault_at_s / sim_disconnect_at_s apply to it too
    "twin_config": Param("", "mujoco: YAML file with the twin's scene: and task: sections ('' = defaults)"),
    "twin_seed": Param(0, "mujoco: episode seed (item positions, conveyor phase)", in_range(0, 2**31 - 1)),
    "twin_snapshot": Param("", "mujoco: shared-memory name of the world snapshot ('' = rtc_twin_<ROS_DOMAIN_ID>)"),
}


def check_param(name: str, value: Any) -> str | None:
    """Reason why ``value`` is not acceptable for parameter ``name`` (None when fine)."""
    p = PARAMS.get(name)
    return None if p is None else p.refusal(name, value)


def values_with(*layers: dict[str, Any], where: str = "executor_node") -> dict[str, Any]:
    """The defaults with each layer of values on top (a parameter file's section, then overrides), checked: a bad
    value or combination raises ValueError naming ``where``, the key and the value."""
    values = layered(PARAMS, *layers)
    if bad := refusals(PARAMS, values):
        raise ValueError(f"{where}: {bad[0]}")
    if (reason := check_consistency(values)) is not None:
        raise ValueError(f"{where}: {reason}")
    return values


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
    for name in ("fixed_d", "initial_d"):
        if v[name] > v["horizon"] - v["execution_horizon"]:
            return (f"{name} {v[name]} must be <= H - s = {v['horizon'] - v['execution_horizon']} "
                    "(d beyond it is clamped: refused instead of silently changed)")
    if v["gripper_min_m"] >= v["gripper_max_m"]:
        return "gripper_min_m must be < gripper_max_m"
    width = (7 if v["action_space"] == "cartesian" else 8) * v["num_arms"]
    names = v["action_names"]
    if names != [""] and len(names) != width:
        return f"action_names has {len(names)} names for {v['num_arms']} {v['action_space']} arms"
    if list(v["ready_pose"]) != [0.0] and len(v["ready_pose"]) != width:
        return f"ready_pose needs one {v['action_space']} pose per arm ({width} values) or [0.0] (none)"
    return _rig_consistency(v)


def _rig_consistency(v: dict[str, Any]) -> str | None:
    """The Flexiv driver's cross-parameter rules: RDK generation vs the serials, rates, per-arm lists."""
    if v["driver"] != "flexiv":
        return None
    from rtc_controller.robots.flexiv_api import serial_model

    models = [serial_model(sn) for sn in v["serial_numbers"]]
    if v["flexiv_rdk"] == 2:
        if any(m.startswith("Rizon") for m in models):
            return f"serial_numbers {v['serial_numbers']}: Rizon arms need flexiv_rdk: 1 (RDK 1.9)"
        if v["servo_rate_hz"] != 1000.0:
            return (f"RDK 2 streams real-time commands, which the robot expects every 1 ms: servo_rate_hz must be "
                    f"1000, got {v['servo_rate_hz']:g}")  # fmt: skip
    else:
        if any(m.startswith(("Enlight", "MICO")) for m in models):
            return f"serial_numbers {v['serial_numbers']}: Enlight/MICO robots need flexiv_rdk: 2 (RDK 2.x)"
        if len(v["serial_numbers"]) < v["num_arms"]:
            return f"RDK 1.9 drives one robot per arm: {v['num_arms']} serial_numbers needed"
        ratio = v["servo_rate_hz"] / v["rdk1_command_rate_hz"]
        if abs(ratio - round(ratio)) > 1e-9:
            return f"rdk1_command_rate_hz {v['rdk1_command_rate_hz']:g} must divide servo_rate_hz {v['servo_rate_hz']:g}"
    for name in ("gripper_names", "tool_names"):
        if v[name] != [""] and len(v[name]) != v["num_arms"]:
            return f"{name} needs one name per arm ({v['num_arms']}) or [''], got {len(v[name])}"
    if len(v["max_contact_wrench"]) not in (6, 6 * v["num_arms"]):
        return f"max_contact_wrench needs 6 values or 6 per arm ({6 * v['num_arms']})"
    return None


def same_named(cls: type, v: dict[str, Any], **explicit: Any) -> Any:
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
        same_named(
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
                                future_tolerance_s=v["future_tolerance_s"],
                                workspace_boxes_m=tuple(a.workspace_min_m + a.workspace_max_m for a in arms)),  # fmt: skip
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
        approach=approach_config(v),
        joint_limit_margin_rad=v["joint_limit_margin_rad"],
    )


def approach_config(v: dict[str, Any]) -> ApproachConfig:
    """The ``approach_*`` parameters and ``ready_pose`` -> ApproachConfig."""
    fields = {f.name: v[f"approach_{f.name}"] for f in dataclasses.fields(ApproachConfig) if f.name != "ready_pose"}
    ready = tuple(v["ready_pose"]) if list(v["ready_pose"]) != [0.0] else ()
    return ApproachConfig(ready_pose=ready, **fields)
