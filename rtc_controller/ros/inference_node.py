"""The inference node: samples RTC-guided action chunks from the latest observation and publishes them.

Wiring only (the logic is ROS-free: ``policy.chunk_sampler``, ``policy.inference_loop``, ``app.policies``):
- subscriptions store the latest message: robot state (``topics.ROBOT_STATE``), cameras
  (``topics.camera_topic(slot)`` as ``sensor_msgs/Image``, or ``…/compressed`` as ``CompressedImage``), prompt
  (``topics.PROMPT``), the executor's d (``topics.INFERENCE_DELAY``) and active chunk (``topics.ACTIVE_CHUNK``);
- a worker thread (``inference_worker``) owns JAX: loads the policy, compiles and warms every mode, then loops:
  wait until the latest robot state is s·Δt past the previous chunk's t_obs (executor stamps only: one clock),
  snapshot the observation, guide toward the chunk the executor executes, sample, wait ``extra_latency_s``,
  publish on ``topics.CHUNK`` stamped with the robot-state stamp (t_obs) and ``header.frame_id = "rtc_d=<d>"``;
- parameters (the table and checks: ``inference_params``) are validated in the on-set callback (refused with a
  reason); β, mode, schedule, s and d apply to the next chunk without recompiling (``num_steps`` recompiles once,
  in the worker);
- diagnostics on ``/diagnostics`` (``inference_diagnostics``): latency, d used and its source, per-chunk statistics.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rcl_interfaces.msg import SetParametersResult
from rclpy.exceptions import ParameterException, ParameterNotDeclaredException
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.duration import Duration
from rclpy.qos import DurabilityPolicy, LivelinessPolicy, QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Header, Int32, String
from trajectory_msgs.msg import JointTrajectory

from rtc_controller import topics
from rtc_controller.policy.base import Observation
from rtc_controller.policy.inference_loop import stamp_key
from rtc_controller.ros.conversions import chunk_to_msg, image_to_array, msg_to_state, stamp_to_s
from rtc_controller.ros.inference_diagnostics import InferenceDiagnostics
from rtc_controller.ros.inference_guards import InferenceGuards
from rtc_controller.app.inference_params import (
    PARAMETERS,
    camera_topics,
    changes_refusal,
    policy_identity,
    policy_section,
)
from rtc_controller.ros.inference_worker import InferenceWorker, Snapshot
from rtc_controller.param_files import check_node_overrides
from rtc_controller.ros.param_declare import declare, plain_value
from rtc_controller.ros.param_log import log_changes
from rtc_controller.ros.spin import EXIT_BAD_INPUT, EXIT_FAILED, NodeExit, run_node

NODE_NAME = topics.INFERENCE_NODE
DIAGNOSTICS_PERIOD_S = 1.0
JOIN_TIMEOUT_S = 5.0


@dataclass
class _Inputs:
    """Latest messages with their receive times (monotonic [s]); written by callbacks, read by the worker."""

    state: JointState | None = None
    state_rx_s: float = 0.0
    images: dict[str, tuple[Any, float]] = field(default_factory=dict)
    prompt: str = ""
    executor_d: int | None = None
    active_stamp_ns: int | None = None


class InferenceNode(Node):
    """Declares, validates and wires; the worker thread does the sampling."""

    def __init__(self, *, on_failure: Callable[[str], None] | None = None, **kwargs: Any) -> None:
        """``on_failure(reason)``: called once when the worker dies (``main`` shuts the process down, exit 1)."""
        super().__init__(NODE_NAME, **kwargs)
        self._on_failure = on_failure
        self._lock = threading.Lock()
        self._inputs = _Inputs()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._horizon = int(PARAMETERS["horizon"].default)
        self._params: dict[str, Any] = {}
        self.failed = False  # the worker died: main() exits non-zero
        self.add_on_set_parameters_callback(self._validate)
        self.add_post_set_parameters_callback(self._apply)
        self._declare_param_table()
        check_node_overrides(self.get_name(), self._parameters, self._parameter_overrides, sys.argv)
        self._inputs.prompt = str(self._params["prompt"])
        p = self._params
        self.dt_s = 1.0 / float(p["action_rate_hz"])
        self.names = tuple(p["action_names"])

        chunk_qos = QoSProfile(depth=10, liveliness=LivelinessPolicy.AUTOMATIC,
                               liveliness_lease_duration=Duration(seconds=topics.CHUNK_LIVELINESS_LEASE_S))  # fmt: skip
        self._chunk_pub = self.create_publisher(JointTrajectory, topics.CHUNK, chunk_qos)
        self._unguided_pub = self.create_publisher(JointTrajectory, topics.CHUNK_UNGUIDED, 10)
        diag_pub = self.create_publisher(DiagnosticArray, topics.DIAGNOSTICS, 10)
        self.create_subscription(JointState, topics.ROBOT_STATE, self._on_state, QoSProfile(depth=10))
        self.create_subscription(String, topics.PROMPT, self._on_prompt, 10)
        self.create_subscription(Int32, topics.INFERENCE_DELAY, self._on_delay, 10)
        self.create_subscription(Header, topics.ACTIVE_CHUNK, self._on_active, 10)
        self.section = policy_section(p, self._horizon)
        self._publish_identity(p)
        self._subscribe_cameras(p)
        self.inference_guards = InferenceGuards(self)
        self.diagnostics = InferenceDiagnostics(self, diag_pub, self.inference_guards.values)
        self.create_timer(DIAGNOSTICS_PERIOD_S, self.diagnostics.publish)
        self._inference = InferenceWorker(
            names=self.names, dt_s=self.dt_s, horizon=self._horizon, section=self.section, params=self._params_copy,
            snapshot=self._snapshot, publish=self._publish_chunk, guards=self.inference_guards,
            diagnostics=self.diagnostics, logger=self.get_logger(), wake=self._wake, stop=self._stop,
        )  # fmt: skip
        self._worker = threading.Thread(target=self._run_worker, name="inference_worker", daemon=True)
        self._worker.start()

    def _declare_param_table(self) -> None:
        for name, spec in PARAMETERS.items():  # horizon is declared before the parameters checked against it
            self._params[name] = declare(self, name, spec)
            if name == "horizon":
                self._horizon = int(self._params[name])

    def _publish_identity(self, p: dict[str, Any]) -> None:
        """The policy identity, latched on ``topics.POLICY_IDENTITY`` (rtc-record keeps it for rtc-replay)."""
        identity = policy_identity(p)
        qos = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self._identity_pub = self.create_publisher(String, topics.POLICY_IDENTITY, qos)
        self._identity_pub.publish(String(data=identity.to_json()))
        self.get_logger().info(f"policy {identity.describe()}")

    def _subscribe_cameras(self, p: dict[str, Any]) -> None:
        """One subscription per model camera slot, on the policy section's topics or rtc/camera/<slot>."""
        self.camera_slots, slot_topics = camera_topics(p, self.section)
        for slot in self.camera_slots:
            if p["use_compressed_images"]:
                topic, msg_type = slot_topics[slot] + "/compressed", CompressedImage
            else:
                topic, msg_type = slot_topics[slot], Image
            self.create_subscription(msg_type, topic, lambda m, s=slot: self._on_image(s, m), qos_profile_sensor_data)

    # --- parameters -------------------------------------------------------------------------------------

    def _validate(self, params: list[Parameter]) -> SetParametersResult:
        changes = {prm.name: plain_value(PARAMETERS.get(prm.name), prm.value) for prm in params}
        reason = changes_refusal(changes, self._params, horizon=self._horizon)
        if reason is None and "execution_horizon" in changes and hasattr(self, "inference_guards"):
            reason = self.inference_guards.refusal("execution_horizon", changes["execution_horizon"], dict(self._params))
        if reason is None and "guidance_mode" in changes and hasattr(self, "_inference"):
            reason = self._inference.mode_refusal(changes["guidance_mode"])
        if reason is not None:
            self._log_changes(changes, refused=reason)
            return SetParametersResult(successful=False, reason=reason)
        return SetParametersResult(successful=True)

    def _log_changes(self, changes: dict[str, Any], *, refused: str | None = None) -> None:
        """Log run-time changes (declarations at start-up are not changes)."""
        changes = {k: v for k, v in changes.items() if k in self._params}
        log_changes(self.get_logger(), self.get_name(), changes, self._params, refused=refused)

    def _apply(self, params: list[Parameter]) -> None:
        self._log_changes({prm.name: prm.value for prm in params})
        with self._lock:
            for prm in params:
                self._params[prm.name] = plain_value(PARAMETERS.get(prm.name), prm.value)
                if prm.name == "prompt":
                    self._inputs.prompt = str(prm.value)
        self._wake.set()

    # --- callbacks: store the latest message only ---------------------------------------------------------

    def _on_state(self, msg: JointState) -> None:
        if not self.inference_guards.accept_state(stamp_to_s(msg.header.stamp)):
            return
        with self._lock:
            self._inputs.state, self._inputs.state_rx_s = msg, time.monotonic()
        self._wake.set()

    def _on_image(self, slot: str, msg: Image | CompressedImage) -> None:
        with self._lock:
            self._inputs.images[slot] = (msg, time.monotonic())

    def _on_prompt(self, msg: String) -> None:
        with self._lock:
            self._inputs.prompt = msg.data

    def _on_delay(self, msg: Int32) -> None:
        with self._lock:
            self._inputs.executor_d = int(msg.data)

    def _on_active(self, msg: Header) -> None:
        with self._lock:
            self._inputs.active_stamp_ns = stamp_key(stamp_to_s(msg.stamp))

    # --- worker -------------------------------------------------------------------------------------------

    def _params_copy(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._params)

    def _run_worker(self) -> None:
        try:
            self._inference.run()
        except Exception as exc:  # noqa: BLE001 — a dead worker must not go unnoticed
            if self._stop.is_set() or not self.context.ok():
                return  # shutting down (SIGINT invalidates the context before the worker is told to stop)
            self.get_logger().fatal(f"inference worker failed: {type(exc).__name__}: {exc}")
            self.failed = True
            self.diagnostics.set(DiagnosticStatus.ERROR, state=f"failed: {exc}")
            self.diagnostics.publish()
            if self._on_failure is not None:
                self._on_failure("inference worker failed")
            else:
                rclpy.try_shutdown()

    def _publish_chunk(self, result, t_obs_s: float, d: int) -> None:
        """The guided chunk (and the unguided one when sampled) stamped t_obs, guided with d."""
        self._chunk_pub.publish(chunk_to_msg(result.actions, self.names, t_obs_s, self.dt_s, guided_d=d))
        if result.unguided is not None:
            self._unguided_pub.publish(chunk_to_msg(result.unguided, self.names, t_obs_s, self.dt_s, guided_d=d))

    def _snapshot(self, due: Callable[[float, int], bool], s: int, max_age_s: float) -> Snapshot:
        """(Observation, executor d, active stamp) when ``due(state stamp, s)``; None when not due; "stale" when
        inputs are old."""
        with self._lock:
            inputs = self._inputs
            state_msg, state_rx = inputs.state, inputs.state_rx_s
            images = dict(inputs.images)
            prompt, executor_d, active_ns = inputs.prompt, inputs.executor_d, inputs.active_stamp_ns
        if state_msg is None:
            return None
        stamp_s = stamp_to_s(state_msg.header.stamp)
        if not due(stamp_s, s):
            return None
        now = time.monotonic()
        if now - state_rx > max_age_s:
            return "stale"
        if any(slot not in images or now - images[slot][1] > max_age_s for slot in self.camera_slots):
            return "stale"
        state = msg_to_state(state_msg, self.names)
        arrays = {slot: image_to_array(images[slot][0]) for slot in self.camera_slots}
        return Observation(state=state.positions, stamp_s=stamp_s, prompt=prompt, images=arrays), executor_d, active_ns

    def shutdown_worker(self) -> None:
        self._stop.set()
        self._wake.set()
        self._worker.join(JOIN_TIMEOUT_S)

    @property
    def worker_alive(self) -> bool:
        return self._worker.is_alive()


def _make_node(signals) -> InferenceNode:
    try:
        return InferenceNode(on_failure=signals.request)
    except (ValueError, ParameterException, ParameterNotDeclaredException) as exc:  # refused parameters: say why
        raise NodeExit(EXIT_BAD_INPUT, f"{type(exc).__name__}: {exc}") from None


def _close(node: InferenceNode) -> None:
    """Stop the worker; one still busy (compiling, loading) after ``JOIN_TIMEOUT_S`` is left behind (see main)."""
    node.shutdown_worker()


def main(args: list[str] | None = None) -> int:
    """Run until SIGINT/SIGTERM/SIGHUP or the parent's exit (``rtc_controller.ros.spin``); exit 0, 1 when the
    worker failed, 2 for refused parameters."""
    node_ref: list[InferenceNode] = []

    def make(signals) -> InferenceNode:
        node_ref.append(_make_node(signals))
        return node_ref[0]

    code = run_node(make, name=NODE_NAME, args=args, cleanup=_close,
                    exit_code=lambda n: EXIT_FAILED if n.failed else 0)  # fmt: skip
    if node_ref and node_ref[0].worker_alive:
        # JAX is still compiling or loading in the worker: interpreter teardown under a running XLA thread can
        # abort the process; everything that matters (ROS, the node) is closed, so leave now with the status.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
