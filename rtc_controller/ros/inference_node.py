"""The inference node: samples RTC-guided action chunks from the latest observation and publishes them.

Wiring only (the logic is ROS-free: ``policy.chunk_sampler``, ``policy.inference_loop``, ``policy.registry``):
- subscriptions store the latest message: robot state (``topics.ROBOT_STATE``), cameras
  (``topics.camera_topic(slot)`` as ``sensor_msgs/Image``, or ``…/compressed`` as ``CompressedImage``), prompt
  (``topics.PROMPT``), the executor's d (``topics.INFERENCE_DELAY``) and active chunk (``topics.ACTIVE_CHUNK``);
- a worker thread owns JAX: loads the policy, compiles and warms every mode, then loops: wait until the
  latest robot state is s·Δt past the previous chunk's t_obs (executor stamps only: one clock), snapshot the
  observation, guide toward the chunk the executor executes, sample, wait ``extra_latency_s``, publish on
  ``topics.CHUNK`` stamped with the robot-state stamp (t_obs) and ``header.frame_id = "rtc_d=<d>"``;
- parameters are validated in the on-set callback (refused with a reason); β, mode, schedule, s and d apply
  to the next chunk without recompiling (``num_steps`` recompiles once, in the worker);
- diagnostics on ``/diagnostics``: latency, d used and its source, per-chunk statistics.
"""

from __future__ import annotations

import io
import math
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.exceptions import ParameterException, ParameterNotDeclaredException
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Header, Int32, String
from trajectory_msgs.msg import JointTrajectory

from rtc_controller import topics
from rtc_controller.action_space import action_names
from rtc_controller.policy.base import Observation
from rtc_controller.policy.inference_loop import (
    ChunkHistory,
    parse_inference_delay,
    resolve_delay,
    stamp_key,
    trigger_due,
)
from rtc_controller.policy.registry import POLICY_NAMES
from rtc_controller.rtc import GUIDANCE_MODES, PREFIX_SCHEDULES
from rtc_controller.ros.conversions import chunk_to_msg, msg_to_state, stamp_to_s
from rtc_controller.ros.inference_guards import InferenceGuards
from rtc_controller.ros.param_files import check_node_overrides
from rtc_controller.ros.spin import EXIT_BAD_INPUT, EXIT_FAILED, NodeExit, run_node

NODE_NAME = topics.INFERENCE_NODE
MAX_NUM_STEPS = 1000
# β beyond this only adds numerical blow-up (the first step moves by β/n times the prefix error; 1e300 overflowed
# float32 to inf/NaN); the seed and rtc-replay sweep up to 100.
MAX_GUIDANCE_WEIGHT = 1000.0
DIAGNOSTICS_PERIOD_S = 1.0
WORKER_POLL_S = 0.05  # the worker re-checks its inputs at least this often
ERROR_BACKOFF_S = 0.5  # after a failed chunk
JOIN_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class ParamSpec:
    default: Any
    description: str
    read_only: bool = False  # fixed at start-up (the policy, its shapes, the subscriptions)
    dynamic_typing: bool = False


# Every parameter of the node (name -> default, description); config/*.yaml documents the same names.
PARAMETERS: dict[str, ParamSpec] = {
    "policy": ParamSpec("sim", f"flow policy: one of {POLICY_NAMES}", read_only=True),
    "policy_config": ParamSpec("", "π0.5 policy section: YAML path or a name under config/policy/ (checkpoint, "
                               "tokenizer, horizon, state/action mapping, camera topics; policy pi05)", read_only=True),
    "checkpoint": ParamSpec("", "π0.5 openpi checkpoint directory with params/ and assets/ (policy pi05)", read_only=True),
    "tokenizer_path": ParamSpec("", "PaliGemma SentencePiece model file (policy pi05)", read_only=True),
    "horizon": ParamSpec(100, "H, actions per chunk (must match the policy)", read_only=True),
    "action_rate_hz": ParamSpec(50.0, "1/Δt, action steps per second (same as the executor)", read_only=True),
    "action_names": ParamSpec(list(action_names("cartesian")), "chunk dimension names (the executor's)", read_only=True),
    "camera_slots": ParamSpec((), "model camera slots, each subscribed as rtc/camera/<slot>", read_only=True),
    "use_compressed_images": ParamSpec(False, "subscribe rtc/camera/<slot>/compressed (CompressedImage)", read_only=True),
    "chunk_history": ParamSpec(8, "published chunks kept to guide toward the executor's active one", read_only=True),
    "seed": ParamSpec(0, "PRNG seed of the sampling noise", read_only=True),
    "compilation_cache_dir": ParamSpec("", "JAX persistent compilation cache ('' = off; ~ expanded)", read_only=True),
    "num_steps": ParamSpec(10, f"denoising steps n (1..{MAX_NUM_STEPS}); a change recompiles once"),
    "max_guidance_weight": ParamSpec(10.0, "β, the guidance weight clip (finite, >= 0)"),
    "guidance_mode": ParamSpec("stop", f"RTC guidance: one of {GUIDANCE_MODES}"),
    "prefix_schedule": ParamSpec("exp", f"soft-mask schedule: one of {PREFIX_SCHEDULES}"),
    "execution_horizon": ParamSpec(50, "s, action steps between chunks (1..H); the weights end at H - s"),
    "inference_delay": ParamSpec("auto", "d: 'auto' (the executor's estimate) or a fixed int in [0, H]", dynamic_typing=True),
    "prompt": ParamSpec("", "task instruction (also settable on rtc/prompt)"),
    "max_observation_age_s": ParamSpec(0.5, "wait instead of sampling from inputs received longer ago [s] (> 0)"),
    "extra_latency_s": ParamSpec(0.0, "injected latency before publishing [s] (>= 0; sim demo: d ≈ 16)"),
    "publish_unguided": ParamSpec(False, "debug: also publish the unguided chunk from the same noise"),
}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))


def validate_parameter(
    name: str, value: Any, *, horizon: int, dt_s: float | None = None, execution_horizon: int | None = None
) -> str | None:
    """Why ``value`` is refused for parameter ``name`` (None: accepted). Pure, shared with the tests.
    ``dt_s`` bounds ``extra_latency_s`` by H·Δt; ``execution_horizon`` bounds a fixed ``inference_delay`` by H − s."""
    if name == "policy" and value not in POLICY_NAMES:
        return f"policy must be one of {POLICY_NAMES}, got {value!r}"
    if name == "horizon" and not (_is_int(value) and value >= 2):
        return f"horizon must be an int >= 2, got {value!r}"
    if name == "action_rate_hz" and not (_is_number(value) and value > 0):
        return f"action_rate_hz must be finite and > 0, got {value!r}"
    if name == "num_steps" and not (_is_int(value) and 1 <= value <= MAX_NUM_STEPS):
        return f"num_steps must be an int in [1, {MAX_NUM_STEPS}], got {value!r}"
    if name == "max_guidance_weight" and not (_is_number(value) and 0 <= value <= MAX_GUIDANCE_WEIGHT):
        return f"max_guidance_weight must be in [0, {MAX_GUIDANCE_WEIGHT:g}], got {value!r}"
    if name == "guidance_mode" and value not in GUIDANCE_MODES:
        return f"guidance_mode must be one of {GUIDANCE_MODES}, got {value!r}"
    if name == "prefix_schedule" and value not in PREFIX_SCHEDULES:
        return f"prefix_schedule must be one of {PREFIX_SCHEDULES}, got {value!r}"
    if name == "execution_horizon" and not (_is_int(value) and 1 <= value <= horizon):
        return f"execution_horizon must be an int in [1, H = {horizon}], got {value!r}"
    if name == "inference_delay":
        try:
            fixed = parse_inference_delay(value, horizon)
        except ValueError as exc:
            return str(exc)
        if fixed is not None and execution_horizon is not None and fixed > horizon - execution_horizon:
            return (f"inference_delay {fixed} must be <= H - s = {horizon - execution_horizon} "
                    "(RTC needs the frozen prefix inside the overlap; it would be clamped)")  # fmt: skip
    if name == "max_observation_age_s" and not (_is_number(value) and value > 0):
        return f"max_observation_age_s must be finite and > 0, got {value!r}"
    if name == "extra_latency_s" and not (_is_number(value) and value >= 0):
        return f"extra_latency_s must be finite and >= 0, got {value!r}"
    if name == "extra_latency_s" and dt_s is not None and value > horizon * dt_s:
        return f"extra_latency_s must be <= H·Δt = {horizon * dt_s:g} s (every chunk would be stale), got {value!r}"
    if name == "chunk_history" and not (_is_int(value) and value >= 1):
        return f"chunk_history must be an int >= 1, got {value!r}"
    return None


def image_to_array(msg: Image | CompressedImage) -> np.ndarray:
    """Camera message -> uint8 [height, width, 3] RGB (rgb8, bgr8, rgba8, bgra8, mono8; or a compressed image)."""
    if isinstance(msg, CompressedImage):
        from PIL import Image as PILImage  # the pi05 extra; only needed for compressed cameras

        return np.asarray(PILImage.open(io.BytesIO(bytes(msg.data))).convert("RGB"))
    channels = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}.get(msg.encoding)
    if channels is None:
        raise ValueError(f"unsupported image encoding {msg.encoding!r}")
    raw = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.step)[:, : msg.width * channels]
    img = raw.reshape(msg.height, msg.width, channels)
    if channels == 1:
        return np.repeat(img, 3, axis=2)
    if msg.encoding.startswith("bgr"):
        img = img[..., 2::-1]
    return np.ascontiguousarray(img[..., :3])


def _policy_section(p: dict[str, Any], horizon: int):
    """The π0.5 policy section named by ``policy_config`` (None when unset), cross-checked against the node's
    own parameters: a contradiction raises ValueError naming both values."""
    if not p["policy_config"]:
        return None
    if p["policy"] != "pi05":
        raise ValueError(f"policy_config is a π0.5 policy section; set policy: pi05 (got policy {p['policy']!r})")
    from rtc_controller.policy.pi05.policy_section import cross_check, load_policy_section

    section = load_policy_section(p["policy_config"], action_names=tuple(p["action_names"]))
    problems = cross_check(section, horizon=horizon, checkpoint=p["checkpoint"], tokenizer=p["tokenizer_path"],
                           num_steps=int(p["num_steps"]))
    if problems:
        raise ValueError(f"policy_config {p['policy_config']}: " + "; ".join(problems))
    return section


def _camera_topics(p: dict[str, Any], section) -> tuple[tuple[str, ...], dict[str, str]]:
    """(model slots, slot -> topic): the section's camera mapping, else ``camera_slots`` on rtc/camera/<slot>."""
    slots = tuple(p["camera_slots"])
    if section is None or not section.cameras:
        return slots, {s: topics.camera_topic(s) for s in slots}
    if slots and set(slots) != set(section.camera_slots):
        raise ValueError(f"camera_slots {list(slots)} differ from the policy section's cameras "
                         f"{list(section.camera_slots)}")
    return section.camera_slots, {s: c.topic or topics.camera_topic(s) for s, c in section.cameras.items()}


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
        self._diag: dict[str, Any] = {"state": "starting"}
        self._diag_level = DiagnosticStatus.OK
        self.failed = False  # the worker died: main() exits non-zero
        self.add_on_set_parameters_callback(self._validate)
        self.add_post_set_parameters_callback(self._apply)
        for name, spec in PARAMETERS.items():  # horizon is declared before the parameters checked against it
            # Float parameters accept ints too (`ros2 param set /inference_node max_guidance_weight 5`).
            dynamic = spec.dynamic_typing or isinstance(spec.default, float)
            descriptor = ParameterDescriptor(description=spec.description, read_only=spec.read_only, dynamic_typing=dynamic)
            default = Parameter.Type.STRING_ARRAY if spec.default == () else spec.default  # [] would be a byte array
            value = self.declare_parameter(name, default, descriptor).value
            self._params[name] = () if value is None and spec.default == () else value
            if name == "horizon":
                self._horizon = int(value)
        check_node_overrides(self.get_name(), self._parameters, self._parameter_overrides, sys.argv)
        self._inputs.prompt = str(self._params["prompt"])
        p = self._params
        self.dt_s = 1.0 / float(p["action_rate_hz"])
        self.names = tuple(p["action_names"])

        self._chunk_pub = self.create_publisher(JointTrajectory, topics.CHUNK, 10)
        self._unguided_pub = self.create_publisher(JointTrajectory, topics.CHUNK_UNGUIDED, 10)
        self._diag_pub = self.create_publisher(DiagnosticArray, topics.DIAGNOSTICS, 10)
        self.create_subscription(JointState, topics.ROBOT_STATE, self._on_state, QoSProfile(depth=10))
        self.create_subscription(String, topics.PROMPT, self._on_prompt, 10)
        self.create_subscription(Int32, topics.INFERENCE_DELAY, self._on_delay, 10)
        self.create_subscription(Header, topics.ACTIVE_CHUNK, self._on_active, 10)
        self.section = _policy_section(p, self._horizon)
        self.camera_slots, camera_topics = _camera_topics(p, self.section)
        for slot in self.camera_slots:
            if p["use_compressed_images"]:
                topic, msg_type = camera_topics[slot] + "/compressed", CompressedImage
            else:
                topic, msg_type = camera_topics[slot], Image
            self.create_subscription(msg_type, topic, lambda m, s=slot: self._on_image(s, m), qos_profile_sensor_data)
        self.inference_guards = InferenceGuards(self)
        self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics)
        self._worker = threading.Thread(target=self._run_worker, name="inference_worker", daemon=True)
        self._worker.start()

    # --- parameters -------------------------------------------------------------------------------------

    def _validate(self, params: list[Parameter]) -> SetParametersResult:
        p = self._params
        rate = p.get("action_rate_hz")
        for prm in params:
            s = p.get("execution_horizon") if prm.name != "execution_horizon" else None
            reason = validate_parameter(prm.name, prm.value, horizon=self._horizon, dt_s=1.0 / rate if rate else None,
                                        execution_horizon=s)  # fmt: skip
            if reason is None and prm.name == "execution_horizon" and "horizon" in self._params:
                reason = validate_parameter(prm.name, prm.value, horizon=int(self._params["horizon"]))
            if reason is None and prm.name == "execution_horizon" and hasattr(self, "inference_guards"):
                reason = self.inference_guards.refusal(prm.name, prm.value, dict(p))
            if reason is not None:
                return SetParametersResult(successful=False, reason=reason)
        return SetParametersResult(successful=True)

    def _apply(self, params: list[Parameter]) -> None:
        with self._lock:
            for prm in params:
                self._params[prm.name] = prm.value
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

    def _set_diag(self, level: int | None = None, **values: Any) -> None:
        with self._lock:
            self._diag.update(values)
            if level is not None:
                self._diag_level = level

    def _publish_diagnostics(self) -> None:
        with self._lock:
            values, level = {**self._diag, **self.inference_guards.values()}, self._diag_level
        status = DiagnosticStatus(
            level=level,
            name=f"{self.get_name()}: inference",
            hardware_id="rtc_controller",
            message=str(values.get("state", "")),
            values=[KeyValue(key=k, value=f"{v:.6g}" if isinstance(v, float) else str(v)) for k, v in values.items()],
        )
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(array)

    def _run_worker(self) -> None:
        try:
            self._worker_loop()
        except Exception as exc:  # noqa: BLE001 — a dead worker must not go unnoticed
            if self._stop.is_set() or not self.context.ok():
                return  # shutting down (SIGINT invalidates the context before the worker is told to stop)
            self.get_logger().fatal(f"inference worker failed: {type(exc).__name__}: {exc}")
            self.failed = True
            self._set_diag(DiagnosticStatus.ERROR, state=f"failed: {exc}")
            self._publish_diagnostics()
            if self._on_failure is not None:
                self._on_failure("inference worker failed")
            else:
                rclpy.try_shutdown()

    def _worker_loop(self) -> None:
        import jax  # the worker owns JAX

        from rtc_controller.policy.chunk_sampler import ChunkSampler, GuidanceSettings, PreviousChunk
        from rtc_controller.policy.registry import make_policy

        p = dict(self._params)
        if p["compilation_cache_dir"]:  # later starts load the compiled sampler instead of compiling it again
            jax.config.update("jax_compilation_cache_dir", os.path.expanduser(str(p["compilation_cache_dir"])))
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
            jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
        if self.section is not None:
            params = {"policy_config": p["policy_config"], "action_names": self.names}
        elif p["policy"] == "pi05":
            params = {
                "checkpoint_dir": p["checkpoint"],
                "tokenizer_path": p["tokenizer_path"],
                "action_horizon": self._horizon,
                "action_names": self.names,
            }
        else:
            params = {"horizon": self._horizon, "dt_s": self.dt_s, "names": self.names}
        self._set_diag(state="loading policy")
        policy = make_policy(p["policy"], **params)
        if policy.horizon != self._horizon or tuple(policy.action_names) != self.names:
            raise ValueError(
                f"policy has H = {policy.horizon}, names {policy.action_names}; the node is configured for "
                f"H = {self._horizon}, names {self.names}"
            )
        sampler = ChunkSampler(policy, dt_s=self.dt_s, num_steps=int(p["num_steps"]))
        history = ChunkHistory(int(p["chunk_history"]))
        key = jax.random.key(int(p["seed"]))
        can_fake = hasattr(policy, "fake_observation")
        previous_t_obs: float | None = None
        last_latency_s: float | None = None
        counts = {"chunks": 0, "back_to_back": 0, "stale_waits": 0, "errors": 0}
        while not self._stop.is_set():
            with self._lock:
                p = dict(self._params)
            if sampler.num_steps != int(p["num_steps"]):
                sampler.num_steps = int(p["num_steps"])
            if not sampler.is_warm and can_fake:
                self._warmup(sampler, None)
            self._wake.wait(WORKER_POLL_S)
            self._wake.clear()
            if self.inference_guards.rebased.is_set():  # the executor's time base moved: t_obs starts over
                self.inference_guards.rebased.clear()
                previous_t_obs = None
            if (paused := self.inference_guards.pause_reason(p)) is not None:
                self._set_diag(DiagnosticStatus.ERROR, state=f"paused: {paused}")
                continue
            s = int(p["execution_horizon"])
            snapshot = self._snapshot(previous_t_obs, s, float(p["max_observation_age_s"]))
            if snapshot is None:
                continue
            if snapshot == "stale":
                counts["stale_waits"] += 1
                self._set_diag(DiagnosticStatus.WARN, state="waiting: stale observation", **counts)
                continue
            observation, executor_d, active_ns = snapshot
            if not sampler.is_warm:  # a policy without fake inputs warms up on its first real observation
                self._warmup(sampler, observation)
                continue
            fixed = parse_inference_delay(p["inference_delay"], self._horizon)
            d, d_source = resolve_delay(
                fixed, executor_d, last_latency_s=last_latency_s, dt_s=self.dt_s, horizon=self._horizon
            )
            previous, prefix_source = history.select(active_ns)
            settings = GuidanceSettings(
                inference_delay=d,
                execution_horizon=s,
                max_guidance_weight=float(p["max_guidance_weight"]),
                mode=p["guidance_mode"],
                schedule=p["prefix_schedule"],
            )
            key, sub = jax.random.split(key)
            start = time.monotonic()
            try:
                result = sampler.sample(
                    observation, previous=previous, settings=settings, key=sub, with_unguided=bool(p["publish_unguided"])
                )
            except Exception as exc:  # noqa: BLE001 — report, keep the node alive, publish nothing
                counts["errors"] += 1
                self.get_logger().error(f"sampling failed: {type(exc).__name__}: {exc}")
                self._set_diag(DiagnosticStatus.ERROR, state=f"sampling failed: {exc}", **counts)
                self._stop.wait(ERROR_BACKOFF_S)
                continue
            extra = float(p["extra_latency_s"])
            if extra > 0:
                self._stop.wait(max(0.0, extra - (time.monotonic() - start)))
            self._chunk_pub.publish(chunk_to_msg(result.actions, self.names, observation.stamp_s, self.dt_s, guided_d=d))
            if result.unguided is not None:
                self._unguided_pub.publish(
                    chunk_to_msg(result.unguided, self.names, observation.stamp_s, self.dt_s, guided_d=d)
                )
            latency = time.monotonic() - start
            last_latency_s = latency
            history.add(PreviousChunk(result.actions, observation.stamp_s))
            back_to_back = previous_t_obs is not None and d > s
            previous_t_obs = observation.stamp_s
            counts["chunks"] += 1
            if counts["chunks"] == 1:
                self.get_logger().info(f"first chunk published (t_obs {observation.stamp_s:.3f} s, {latency:.3f} s)")
            counts["back_to_back"] += int(back_to_back)
            self._set_diag(
                DiagnosticStatus.WARN if back_to_back else DiagnosticStatus.OK,
                state="back to back: d > s" if back_to_back else "running",
                latency_s=latency,
                prepare_s=result.prepare_s,
                sample_s=result.sample_s,
                extra_latency_s=extra,
                d_used=d,
                d_source=d_source,
                prefix_source=prefix_source,
                shift_steps=-1 if result.shift_steps is None else result.shift_steps,
                guided=result.guided,
                frozen_error=result.frozen_error,
                unguided_frozen_error=result.unguided_frozen_error,
                jump_at_d=result.jump_at_d,
                mode=settings.mode,
                max_guidance_weight=settings.max_guidance_weight,
                prefix_schedule=settings.schedule,
                execution_horizon=s,
                num_steps=sampler.num_steps,
                t_obs_s=observation.stamp_s,
                **counts,
            )
            self._publish_diagnostics()

    def _warmup(self, sampler, observation: Observation | None) -> None:
        self._set_diag(state=f"compiling (num_steps={sampler.num_steps})")
        warm_s = sampler.warmup(observation)
        self.get_logger().info(f"compiled and warmed every mode in {warm_s:.1f} s (num_steps={sampler.num_steps})")
        self._set_diag(state="ready", warmup_s=warm_s)

    def _snapshot(self, previous_t_obs: float | None, s: int, max_age_s: float):
        """(Observation, executor d, active stamp) when a chunk is due; None when not due; "stale" when inputs are old."""
        with self._lock:
            inputs = self._inputs
            state_msg, state_rx = inputs.state, inputs.state_rx_s
            images = dict(inputs.images)
            prompt, executor_d, active_ns = inputs.prompt, inputs.executor_d, inputs.active_stamp_ns
        if state_msg is None:
            return None
        stamp_s = stamp_to_s(state_msg.header.stamp)
        if previous_t_obs is not None and stamp_s <= previous_t_obs:
            return None
        if not trigger_due(stamp_s, previous_t_obs, execution_horizon=s, dt_s=self.dt_s):
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
