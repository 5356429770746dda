"""executor_node: runs the 1 kHz servo loop on the robot and executes RTC chunks.

Declares and validates parameters (the table and checks: ``control/executor_params.py``), builds the ROS-free
executor core (``control/executor.py``) and a driver
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

import math
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.exceptions import ParameterException
from rclpy.executors import Executor as RosExecutor
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64, Header, Int32
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from rtc_controller import topics
from rtc_controller.control.executor import Executor, ExecutorSnapshot
from rtc_controller.control.executor_params import (
    PARAMS,
    build_config,
    build_driver,
    check_consistency,
    check_param,
    driver_factory,
)
from rtc_controller.control.loop import set_process_fifo_priority
from rtc_controller.control.servo_process import ServoProcess, ServoProcessError
from rtc_controller.control.timeline import Rejection, SwitchEvent
from rtc_controller.robots.base import DriverError
from rtc_controller.ros.conversions import msg_to_chunk, s_to_stamp, state_to_msg
from rtc_controller.ros.param_files import check_node_overrides
from rtc_controller.ros.spin import EXIT_BAD_INPUT, EXIT_FAILED, NodeExit, run_node

DIAGNOSTICS_PERIOD_S = 1.0
LATENESS_P99_TARGET_US = 200.0
LATE_WINDOW_LIMIT = 0.02  # Flexiv: > 2 % late commands in any 1-second window faults the robot
CHUNK_QOS_DEPTH = 2
SERVO_PROCESS_START_S = 30.0  # spawn + imports in the servo process, on top of the robot's connect timeout [s]
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


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


def snapshot_to_diagnostics(s: ExecutorSnapshot, name: str, hw_id: str, *,
                            timeliness_limit_pct: float = 100 * LATE_WINDOW_LIMIT) -> list[DiagnosticStatus]:  # fmt: skip
    """Executor snapshot -> DiagnosticStatus list (loop timing, chunks/δ/d, safety, startup, driver).

    The servo loop's timeliness against Flexiv's rule: ``late_pct_last_1s`` (the last 1-s window),
    ``late_pct_worst_1s`` (the worst since the statistics started), ``timeliness_limit_pct`` and
    ``timeliness_margin_pct`` (limit − the larger of the two; RDK 2 faults the robot at 0)."""
    ok, warn, err = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR
    lp = s.loop
    loop_bad = lp.worst_window_late_fraction > LATE_WINDOW_LIMIT or lp.lateness_p99_us > LATENESS_P99_TARGET_US
    last_pct, worst_pct = 100 * lp.last_window_late_fraction, 100 * lp.worst_window_late_fraction
    loop = DiagnosticStatus(
        level=err if s.tick_error else (warn if loop_bad else ok),
        name=f"{name}: servo loop",
        hardware_id=hw_id,
        message=f"{s.tick_error}: holding (call ~/resume)" if s.tick_error else ("timing above target" if loop_bad else "ok"),
        values=[_kv(k, v) for k, v in lp.as_dict().items()]
        + [_kv("late_pct_last_1s", last_pct), _kv("late_pct_worst_1s", worst_pct),
           _kv("timeliness_limit_pct", timeliness_limit_pct),
           _kv("timeliness_margin_pct", timeliness_limit_pct - max(last_pct, worst_pct)),
           _kv("tick_errors", s.tick_errors)],  # fmt: skip
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
        + [_kv(f"interventions_{k}", c) for k, c in s.safety_interventions.items()]
        + [_kv(f"arm{i}_outside_workspace_m", e) for i, e in enumerate(s.workspace_excess_m)],
    )
    st = s.startup or {}
    startup = DiagnosticStatus(
        level=warn if (st.get("approach_phase") == "refused" or s.hold_reason) else ok,
        name=f"{name}: startup",
        hardware_id=hw_id,
        message=s.hold_reason or str(st.get("approach_message", "")) or "ok",
        values=[_kv(k, v) for k, v in st.items()] + [_kv("hold_reason", s.hold_reason)],
    )
    d = s.driver
    driver_level = err if (s.mode == "faulted" or d.fault or not d.connected) else ok
    driver = DiagnosticStatus(
        level=driver_level,
        name=f"{name}: driver",
        hardware_id=hw_id,
        message=s.fault_message or d.message,
        values=[_kv("mode", s.mode), _kv("connected", d.connected), _kv("enabled", d.enabled), _kv("fault", d.fault),
                _kv("driver_message", d.message)] + [_kv(k, v) for k, v in d.details],  # fmt: skip
    )
    return [loop, chunks, safety, startup, driver]


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

    def __init__(self, *, abort_start: threading.Event | None = None, **kwargs: Any) -> None:
        """``abort_start``: set by a shutdown request; it stops waiting for the servo process to start."""
        super().__init__(topics.EXECUTOR_NODE, **kwargs)
        for name, p in PARAMS.items():
            self.declare_parameter(name, p.default, ParameterDescriptor(description=p.description,
                                                                        dynamic_typing=False))  # fmt: skip
        self.values = {name: self.get_parameter(name).value for name in PARAMS}
        # a misspelt key (max_linear_sped_m_s) or section would otherwise leave a limit at its default: refuse
        check_node_overrides(self.get_name(), self._parameters, self._parameter_overrides, sys.argv)
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
                abort_start=abort_start,
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
        ex = self.executor_core
        where = f"process {ex.pid} (shared memory {ex.shm_name})" if isinstance(ex, ServoProcess) else "thread"
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
            return  # a rejected chunk's δ is not a measurement of this rig's inference
        self.delta_pub.publish(Float64(data=float(r.delay_s)))  # PreparedChunk (thread) or SubmitAccepted (process)
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
            arr.status = snapshot_to_diagnostics(snap, self.get_name(), self.values["driver"],
                                                 timeliness_limit_pct=self.values["timeliness_failure_limit_pct"])
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
                             lambda: self.executor_core.resume_refusal or f"cannot resume in mode {self.executor_core.mode}")

    def _srv_reset_fault(self, _req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        return self._trigger(res, self.executor_core.reset_fault, "fault cleared, holding (call ~/resume)",
                             lambda: f"reset failed: {self.executor_core.fault_message}")

    def shutdown(self) -> None:
        """Ramp down, stop the driver and (process mode) join the servo process, releasing its shared memory
        (idempotent)."""
        ex = self.executor_core
        if ex.mode != "stopped":
            self.get_logger().info(f"shutting down: ramp-down (at most {self.values['ramp_down_s']} s), driver stop")
            ex.shutdown()
            code = f", servo process exit code {ex.exitcode}" if isinstance(ex, ServoProcess) else ""
            self.get_logger().info(f"shut down: ramp-down done, driver stopped{code}")


def make_ros_executor() -> RosExecutor:
    """The executor that spins this node: single-threaded on purpose.

    Every Python thread that spins ROS competes with the servo thread for the GIL; all callbacks here are short
    hand-overs, so one thread suffices. Measured (sim, no chunks, SCHED_FIFO): servo tick p99 688 µs with a
    3-thread MultiThreadedExecutor vs 431 µs single-threaded (199 µs with no ROS at all).
    Caveat: a blocking ``~/reset_fault`` (ClearFault waits up to its timeout) pauses state publication meanwhile.
    """
    return SingleThreadedExecutor()


def _make_node(signals) -> ExecutorNode:
    try:
        return ExecutorNode(abort_start=signals.requested)
    except (ValueError, ParameterException) as exc:  # invalid parameters: a clear message, exit 2
        raise NodeExit(EXIT_BAD_INPUT, str(exc)) from None
    except (DriverError, ServoProcessError) as exc:
        raise NodeExit(EXIT_FAILED, f"could not start the robot: {exc}") from None


def main(args: list[str] | None = None) -> int:
    """Run the node until SIGINT/SIGTERM/SIGHUP or the parent's exit (any number of them); then ramp down, stop the
    driver, release the servo process's shared memory and exit 0 (``rtc_controller.ros.spin``).

    Exit codes: 2 = invalid parameters (the reason is printed), 1 = the robot could not be started.
    """
    return run_node(_make_node, name=topics.EXECUTOR_NODE, args=args, cleanup=ExecutorNode.shutdown,
                    make_executor=make_ros_executor)  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
