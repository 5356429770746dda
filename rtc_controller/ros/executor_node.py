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
``/diagnostics`` at 1 Hz. Services (std_srvs/Trigger, ``ros/executor_services.py``): ``~/hold``, ``~/resume``,
``~/reset_fault``.
"""

from __future__ import annotations

import math
import sys
import threading
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.exceptions import ParameterException
from rclpy.executors import Executor as RosExecutor
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.duration import Duration
from rclpy.qos import DurabilityPolicy, LivelinessPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64, Header, Int32
from trajectory_msgs.msg import JointTrajectory

from rtc_controller import topics
from rtc_controller.app.drivers import build_driver, driver_factory
from rtc_controller.control.executor import Executor
from rtc_controller.control.executor_params import (
    PARAMS,
    build_config,
    check_consistency,
    check_param,
)
from rtc_controller.control.executor_core import ExecutorCore
from rtc_controller.control.executor_types import ExecutorConfig
from rtc_controller.control.servo_process import ServoProcess, ServoProcessError
from rtc_controller.control.timeline import Rejection
from rtc_controller.robots.base import DriverError
from rtc_controller.ros.param_declare import declare_table
from rtc_controller.ros.param_log import log_changes
from rtc_controller.ros.conversions import max_chunk_bytes, msg_to_chunk, s_to_stamp, state_to_msg
from rtc_controller.ros.executor_diagnostics import (
    NodeHealth,
    dead_diagnostics,
    snapshot_to_diagnostics,
    switch_event_to_status,
)
from rtc_controller.ros.executor_services import OperatorServices
from rtc_controller.app.graph_guard import (
    ConflictLatch,
    chunk_source_problem,
    graph_conflicts,
    qualified,
    sender_problem,
)
from rtc_controller.param_files import check_node_overrides
from rtc_controller.param_schema import refusals
from rtc_controller.ros.spin import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, NodeExit, run_node

DIAGNOSTICS_PERIOD_S = 1.0
GRAPH_CHECK_PERIOD_S = 0.5
# Room for the policy's chunk beside a burst of others: each is refused in µs (size, then source) before it is
# deserialised, so the queue drains fast; at depth 2 a flood of invalid chunks crowded the policy's out.
CHUNK_QOS_DEPTH = 10
USE_SIM_TIME_REFUSED = ("use_sim_time: the executor stamps robot states and measures δ on its own monotonic clock; "
                        "simulated time would break both (not supported)")
SERVO_PROCESS_START_S = 30.0  # spawn + imports in the servo process, on top of the robot's connect timeout [s]
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


class ExecutorNode(Node):
    """Declare, validate, wire. See the module docstring."""

    def __init__(self, *, abort_start: threading.Event | None = None, **kwargs: Any) -> None:
        """``abort_start``: set by a shutdown request; it stops waiting for the servo process to start."""
        super().__init__(topics.EXECUTOR_NODE, **kwargs)
        self.values = self._declare_param_table()
        self.add_on_set_parameters_callback(self._on_set_parameters)
        config = build_config(self.values)  # ValueError with a reason on bad combinations
        self.names = list(config.timeline.names)
        self.executor_core: ExecutorCore = self._make_core(config, abort_start)
        self._create_interfaces()
        self._last_active = math.nan
        self._last_mode = ""
        self._dead = ""  # why the servo process is gone ("" while it runs)
        self._start_core()

    def _declare_param_table(self) -> dict[str, Any]:
        """Declare every parameter and return the values; ValueError with every reason when any is refused."""
        values = declare_table(self, PARAMS, read_only=False)  # _check_and_apply refuses fixed ones: "restart"
        # a misspelt key (max_linear_sped_m_s) or section would otherwise leave a limit at its default: refuse
        check_node_overrides(self.get_name(), self._parameters, self._parameter_overrides, sys.argv)
        reasons = refusals(PARAMS, values)
        if not reasons and (c := check_consistency(values)):
            reasons.append(c)
        if self.get_parameter("use_sim_time").value:
            reasons.append(USE_SIM_TIME_REFUSED)
        if reasons:
            raise ValueError("invalid parameters: " + "; ".join(reasons))
        return values

    def _make_core(self, config: ExecutorConfig, abort_start: threading.Event | None) -> ExecutorCore:
        """The executor core: in its own servo process (the default) or in this process, its loop a thread."""
        if self.values["servo_process"]:
            return ServoProcess(
                config,
                driver_factory(self.values),
                process_fifo_priority=self.values["process_fifo_priority"],  # the child's non-servo threads
                start_timeout_s=self.values["connect_timeout_s"] + SERVO_PROCESS_START_S,
                abort_start=abort_start,
            )
        return Executor(config, build_driver(self.values))

    def _create_interfaces(self) -> None:
        """Publishers, the chunk subscription, timers and services, with their callback groups."""
        fast = MutuallyExclusiveCallbackGroup()
        slow = MutuallyExclusiveCallbackGroup()
        services = MutuallyExclusiveCallbackGroup()
        self.state_pub = self.create_publisher(JointState, topics.ROBOT_STATE, 10)
        self.d_pub = self.create_publisher(Int32, topics.INFERENCE_DELAY, LATCHED)
        self.delta_pub = self.create_publisher(Float64, topics.MEASURED_DELAY, 10)
        self.active_pub = self.create_publisher(Header, topics.ACTIVE_CHUNK, LATCHED)
        self.diag_pub = self.create_publisher(DiagnosticArray, topics.DIAGNOSTICS, 10)
        self.switch_pub = self.create_publisher(DiagnosticStatus, topics.SWITCH_EVENTS, 50)
        # raw: the size is checked before the message is converted (a 100,000-point chunk stalled the callback 2 s)
        # liveliness events: the inference node's chunk writer lost (its lease ran out) or back (diagnostics)
        events = SubscriptionEventCallbacks(liveliness=lambda e: self.health.on_chunk_liveliness(
            e.alive_count, e.not_alive_count_change, self.get_logger()))  # fmt: skip
        lease = self.values["chunk_liveliness_lease_s"]
        chunk_qos = QoSProfile(depth=CHUNK_QOS_DEPTH, liveliness=LivelinessPolicy.AUTOMATIC,
                               liveliness_lease_duration=Duration(seconds=lease)) if lease > 0 else CHUNK_QOS_DEPTH  # fmt: skip
        self.create_subscription(JointTrajectory, topics.CHUNK, self._on_chunk, chunk_qos, callback_group=fast,
                                 raw=True, event_callbacks=events)  # fmt: skip
        self._max_chunk_bytes = max_chunk_bytes(self.values["horizon"], len(self.names))
        self.chunk_source = self._qualify(self.values["chunk_source_node"])
        self.health = NodeHealth()
        self._latch = ConflictLatch()
        self.create_timer(1.0 / self.values["state_rate_hz"], self._publish_state, callback_group=fast)
        self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics, callback_group=slow)
        self.create_timer(GRAPH_CHECK_PERIOD_S, self._check_graph, callback_group=slow)
        self.operator_services = OperatorServices(self, self.executor_core, latch=self._latch, health=self.health,
                                                  callback_group=services)  # fmt: skip

    def _start_core(self) -> None:
        """Start the core (connects the robot; DriverError / ServoProcessError), lift this process's threads."""
        self.executor_core.start()
        try:
            self._apply_process_priority()
            self._publish_d()
        except BaseException:
            self.executor_core.shutdown()
            raise
        ex = self.executor_core
        self.get_logger().info(
            f"executor running: driver={self.values['driver']}, {len(self.names)} action dims, "
            f"servo {self.values['servo_rate_hz']:.0f} Hz in a {ex.location}, dt {1e3 / self.values['action_rate_hz']:.1f} ms, "
            f"H={self.values['horizon']}, s={self.values['execution_horizon']}"
        )

    def _apply_process_priority(self) -> None:
        ex = self.executor_core
        lifted = ex.lift_other_threads(self.values["process_fifo_priority"])  # a servo thread here: GIL holders too
        for w in list(ex.warnings) + lifted:  # what the servo loop (thread or process) could not apply
            self.get_logger().warning(w)

    def _qualify(self, name: str) -> str:
        return name if name.startswith("/") else qualified(self.get_namespace(), name)

    # ---- parameters --------------------------------------------------------------------------------------------
    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        """Check and apply, then log each change, accepted or refused with the reason."""
        old = {p.name: self.get_parameter(p.name).value for p in params if self.has_parameter(p.name)}
        result = self._check_and_apply(params)
        log_changes(self.get_logger(), self.get_name(), {p.name: p.value for p in params}, old,
                    refused=None if result.successful else result.reason)  # fmt: skip
        return result

    def _check_and_apply(self, params: list[Parameter]) -> SetParametersResult:
        for p in params:
            if p.name == "use_sim_time" and p.value:
                return SetParametersResult(successful=False, reason=USE_SIM_TIME_REFUSED)
            spec = PARAMS.get(p.name)
            if spec is None:
                continue
            if not spec.dynamic:
                return SetParametersResult(successful=False, reason=f"{p.name} cannot change at run time (restart)")
            reason = check_param(p.name, p.value) or check_consistency({**self.values, p.name: p.value})
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
    def _refuse(self, reason: str, detail: str) -> None:
        self.health.rejected[reason] += 1
        self.get_logger().warning(f"chunk rejected ({reason}): {detail}", throttle_duration_sec=1.0)

    def _on_chunk(self, data: bytes, info: dict) -> None:
        ex = self.executor_core
        t_arrival = ex.now_s()
        if len(data) > self._max_chunk_bytes:
            return self._refuse("oversize", f"{len(data)} bytes > {self._max_chunk_bytes} (H = {self.values['horizon']})")
        infos = [(qualified(i.node_namespace, i.node_name), list(i.endpoint_gid))
                 for i in self.get_publishers_info_by_topic(topics.CHUNK)]  # fmt: skip
        problem = chunk_source_problem([n for n, _ in infos], self.chunk_source)
        gid = info.get("publisher_gid")  # Kilted and later: the sender itself, not only the topic's publishers
        if problem is None and isinstance(gid, dict) and gid.get("data"):
            problem = sender_problem(gid["data"], infos, self.chunk_source)
        if problem is not None:
            return self._refuse("source", problem)
        chunk = msg_to_chunk(deserialize_message(data, JointTrajectory))
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

    def _check_graph(self) -> None:
        """Second chunk publisher, executor or inference node: ERROR and hold (see ``graph_guard``)."""
        def names(infos):
            return [qualified(i.node_namespace, i.node_name) for i in infos]

        conflicts = graph_conflicts(
            chunk_publishers=names(self.get_publishers_info_by_topic(topics.CHUNK)),
            state_publishers=names(self.get_publishers_info_by_topic(topics.ROBOT_STATE)),
            node_names=[qualified(ns, n) for n, ns in self.get_node_names_and_namespaces()],
            executor=qualified(self.get_namespace(), self.get_name()),
            inference=self.chunk_source,
        )
        change = self._latch.update(conflicts)
        self.health.interlock, self.health.interlock_needs_resume = self._latch.active, self._latch.needs_resume
        if change == "raised":
            self.get_logger().error("graph conflict, holding the arms: " + "; ".join(self._latch.active))
            try:
                self.executor_core.hold()
            except ServoProcessError as exc:
                self.get_logger().error(f"hold failed: {exc}")
            self._publish_diagnostics()
        elif change == "cleared":
            self.get_logger().warning("graph conflict cleared; holding until ~/resume")

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
        ended = f"died (exit code {ex.exitcode})" if ex.exitcode is not None else "stopped"
        self._dead = f"servo {ex.location} {ended}"
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
            arr.status = snapshot_to_diagnostics(snap, self.get_name(), self.values["driver"], self.health,
                                                 timeliness_limit_pct=self.values["timeliness_failure_limit_pct"])
        else:
            arr.status = dead_diagnostics(self._dead or "servo process unresponsive", self.get_name(),
                                          self.values["driver"])  # fmt: skip
        self.diag_pub.publish(arr)
        if snap is not None:
            self._publish_d()

    def shutdown(self) -> None:
        """Ramp down, stop the driver and (process mode) join the servo process, releasing its shared memory
        (idempotent). The servo process is always reaped: the child reports "stopped" itself when a group SIGTERM
        reached it first, and skipping the proxy's shutdown then leaked the shared-memory segment."""
        ex = self.executor_core
        if ex.needs_shutdown:
            self.get_logger().info(f"shutting down: ramp-down (at most {self.values['ramp_down_s']} s), driver stop")
            ex.shutdown()
            code = f", servo process exit code {ex.exitcode}" if ex.exitcode is not None else ""
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
        if signals.requested.is_set():  # stopped while starting: a clean shutdown, not a failure
            raise NodeExit(EXIT_OK, f"stopped during start-up ({signals.reason})") from None
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
