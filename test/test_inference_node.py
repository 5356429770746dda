"""The inference node: parameter validation, image conversion, and the real node over DDS.

The DDS test runs the node as its own process against a minimal stand-in executor in the test process
(it follows the chunks it receives, publishes the robot state, its d and its active chunk), so the node is
tested on its own; the full rig (real executor) is exercised in test_bringup.py.
"""

import os
import subprocess
import sys
import time

import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image

from rtc_controller import topics
from rtc_controller.ros.conversions import image_to_array
from rtc_controller.app.inference_params import PARAMETERS, validate_parameter

H = 100


def test_validation_refuses_bad_values_with_a_reason():
    good = {
        "max_guidance_weight": [0.0, 5, 100.0],
        "guidance_mode": ["stop", "full", "none", "bid"],
        "bid_samples": [1, 8, 64],
        "prefix_schedule": ["exp", "linear", "ones", "zeros"],
        "execution_horizon": [1, 50, H],
        "inference_delay": ["auto", 0, 16, "16", H],
        "num_steps": [1, 10],
        "extra_latency_s": [0.0, 0.3],
        "policy": ["sim", "pi05"],
    }
    bad = {
        "max_guidance_weight": [-1.0, float("nan"), float("inf"), True],
        "guidance_mode": ["foo", ""],
        "prefix_schedule": ["cubic"],
        "execution_horizon": [0, H + 1, 2.5],
        "inference_delay": [-1, H + 1, "later"],
        "num_steps": [0, 1001, 2.0],
        "bid_samples": [0, 65, 2.5],
        "extra_latency_s": [-0.1, float("nan")],
        "max_observation_age_s": [0.0],
        "policy": ["gpt"],
    }
    for name, values in good.items():
        for v in values:
            assert validate_parameter(name, v, horizon=H) is None, (name, v)
    for name, values in bad.items():
        assert name in PARAMETERS
        for v in values:
            reason = validate_parameter(name, v, horizon=H)
            assert reason and name in reason, (name, v, reason)


def test_a_change_is_checked_against_the_values_it_leaves():
    from rtc_controller.app.inference_params import changes_refusal

    current = {"horizon": H, "action_rate_hz": 50.0, "execution_horizon": 50, "inference_delay": 40}
    assert changes_refusal({"max_guidance_weight": 5.0}, current, horizon=H) is None
    # a fixed d of 40 fits H - s = 50; s = 70 would leave H - s = 30 < 40: refused, not clamped later
    reason = changes_refusal({"execution_horizon": 70}, current, horizon=H)
    assert reason == ("execution_horizon 70: inference_delay 40 must be <= H - s = 30 (RTC needs the frozen prefix "
                      "inside the overlap; it would be clamped)")
    assert changes_refusal({"execution_horizon": 70, "inference_delay": "auto"}, current, horizon=H) is None
    assert "must be <= H - s = 30" in changes_refusal({"inference_delay": 31}, {**current, "execution_horizon": 70},
                                                      horizon=H)  # fmt: skip
    assert "H·Δt = 2 s" in changes_refusal({"extra_latency_s": 2.5}, current, horizon=H)


def test_every_default_is_valid():
    for name, spec in PARAMETERS.items():
        assert validate_parameter(name, spec.default, horizon=H) is None, name


def test_image_to_array_encodings():
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    msg = Image(height=2, width=3, encoding="rgb8", step=3 * 3 + 2, data=np.pad(rgb.reshape(2, 9), ((0, 0), (0, 2))).tobytes())
    np.testing.assert_array_equal(image_to_array(msg), rgb)  # row padding (step > width·3) dropped
    msg = Image(height=2, width=3, encoding="bgr8", step=9, data=rgb[..., ::-1].tobytes())
    np.testing.assert_array_equal(image_to_array(msg), rgb)
    mono = Image(height=2, width=3, encoding="mono8", step=3, data=bytes(range(6)))
    assert image_to_array(mono).shape == (2, 3, 3)
    with pytest.raises(ValueError, match="encoding"):
        image_to_array(Image(height=1, width=1, encoding="32FC1", step=4, data=bytes(4)))
    import io

    from PIL import Image as PILImage

    buf = io.BytesIO()
    PILImage.fromarray(np.full((4, 5, 3), 200, np.uint8)).save(buf, format="PNG")
    out = image_to_array(CompressedImage(format="png", data=buf.getvalue()))
    assert out.shape == (4, 5, 3) and out.dtype == np.uint8 and np.all(out == 200)


# --- over DDS -------------------------------------------------------------------------------------------------

DT = 0.02
S = 25  # execution horizon: a chunk every 0.5 s
EXECUTOR_D = 7


def _start_node(extra_args=()):
    cmd = [
        sys.executable, "-m", "rtc_controller.ros.inference_node", "--ros-args",
        "-p", f"execution_horizon:={S}", "-p", "extra_latency_s:=0.05", "-p", "publish_unguided:=true",
        "-p", "max_observation_age_s:=0.3", "--log-level", "warn", *extra_args,
    ]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ))


def _stop(proc):
    if proc.poll() is None:
        proc.send_signal(2)  # SIGINT: the node shuts down cleanly
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.stdout.read() if proc.stdout else ""


class StandInExecutor:
    """Publishes the robot state at 1/Δt following the newest chunk, its d and the active chunk's stamp."""

    def __init__(self, node, policy_state):
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Header, Int32
        from trajectory_msgs.msg import JointTrajectory

        self.node = node
        self.state = policy_state.copy()
        self.active = None  # (t_obs_s, actions [H, D])
        self.chunks, self.unguided, self.diagnostics, self.state_stamps = [], [], [], set()
        self.publish_state = True
        self.pub_state = node.create_publisher(JointState, topics.ROBOT_STATE, 10)
        self.pub_d = node.create_publisher(Int32, topics.INFERENCE_DELAY, 10)
        self.pub_active = node.create_publisher(Header, topics.ACTIVE_CHUNK, 10)
        node.create_subscription(JointTrajectory, topics.CHUNK, self.on_chunk, 10)
        node.create_subscription(JointTrajectory, topics.CHUNK_UNGUIDED, lambda m: self.unguided.append(m), 10)
        from diagnostic_msgs.msg import DiagnosticArray

        node.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, self.on_diagnostics, 10)
        node.create_timer(DT, self.tick)
        self.Int32, self.Header = Int32, Header

    def now_s(self):
        return self.node.get_clock().now().nanoseconds * 1e-9

    def on_chunk(self, msg):
        from rtc_controller.ros.conversions import msg_to_chunk

        chunk = msg_to_chunk(msg)
        self.chunks.append((self.now_s(), msg, chunk))
        if self.active is None or chunk.t_obs_s > self.active[0]:
            self.active = (chunk.t_obs_s, chunk.actions)
            self.pub_active.publish(self.Header(stamp=msg.header.stamp))

    def on_diagnostics(self, msg):
        for status in msg.status:
            if status.name.startswith(topics.INFERENCE_NODE):
                self.diagnostics.append({kv.key: kv.value for kv in status.values})

    def last_chunk_diagnostics(self):
        return next(d for d in reversed(self.diagnostics) if "d_used" in d)

    def tick(self):
        from rtc_controller.action_space import action_names
        from rtc_controller.ros.conversions import state_to_msg

        now = self.now_s()
        if self.active is not None:
            k = min(int(round((now - self.active[0]) / DT)), H - 1)
            self.state = self.active[1][k]
        self.pub_d.publish(self.Int32(data=EXECUTOR_D))
        if self.publish_state:
            msg = state_to_msg(self.state, action_names(), now)
            self.state_stamps.add((msg.header.stamp.sec, msg.header.stamp.nanosec))
            self.pub_state.publish(msg)


def _spin_for(node, seconds, until=None):
    import rclpy

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.01)
        if until is not None and until():
            return True
    return False


def _set_params(node, values):
    """Set the inference node's parameters through its SetParameters service; returns the results."""
    import rclpy
    from rcl_interfaces.srv import SetParameters
    from rclpy.parameter import Parameter

    client = node.create_client(SetParameters, f"/{topics.INFERENCE_NODE}/set_parameters")
    assert _spin_for(node, 20, until=client.service_is_ready), "set_parameters service not found"
    req = SetParameters.Request(parameters=[Parameter(k, value=v).to_parameter_msg() for k, v in values.items()])
    future = client.call_async(req)
    rclpy.spin_until_future_complete(node, future, timeout_sec=10)
    assert future.done(), "set_parameters timed out"
    node.destroy_client(client)
    return future.result().results


@pytest.mark.dds
@pytest.mark.slow
def test_node_publishes_guided_chunks_at_the_cadence_and_takes_parameters():
    import rclpy

    from rtc_controller.policy.sim_policy import SimPolicy

    proc = _start_node()
    rclpy.init()
    node = rclpy.create_node("stand_in_executor")
    try:
        ex = StandInExecutor(node, SimPolicy().fake_observation().state)
        assert _spin_for(node, 90, until=lambda: len(ex.chunks) >= 5 or proc.poll() is not None), "no chunks"
        assert proc.poll() is None, "the node died"
        stamps = [c.t_obs_s for _, _, c in ex.chunks]
        gaps = np.diff(stamps) / DT
        # one chunk every s steps; a worker delayed by a loaded machine samples a few steps late (not 2s, not s/2)
        assert np.all(np.abs(gaps[1:] - S) <= 5), f"one chunk every s = {S} steps: {gaps}"
        assert all(m.header.frame_id == f"rtc_d={EXECUTOR_D}" for _, m, _ in ex.chunks[1:]), "d travels in frame_id"
        assert all(c.actions.shape == (H, 14) and np.isfinite(c.actions).all() for _, _, c in ex.chunks)
        delays = [(rx - c.t_obs_s) for rx, _, c in ex.chunks[1:]]
        assert 0.05 <= np.median(delays) < 1.0, f"δ = extra latency + sampling (a bound: load slows it): {delays}"
        assert len(ex.unguided) >= 4
        assert all((m.header.stamp.sec, m.header.stamp.nanosec) in ex.state_stamps for _, m, _ in ex.chunks), \
            "each chunk is stamped with the robot-state stamp it was conditioned on"
        diag = ex.last_chunk_diagnostics()
        assert diag["prefix_source"] == "active" and diag["guided"] == "True" and diag["d_source"] == "executor"
        assert float(diag["frozen_error"]) < 0.2 * float(diag["unguided_frozen_error"]), diag
        assert diag["max_guidance_weight"] == "10"

        # β and mode at run time: accepted; bad values refused with a reason.
        ok = _set_params(node, {"max_guidance_weight": 5.0})
        assert ok[0].successful
        for name, value, needle in (("max_guidance_weight", -1.0, "max_guidance_weight"),
                                     ("guidance_mode", "foo", "guidance_mode"),
                                     ("guidance_mode", "trained", "training-time RTC"),  # the sim policy: not so trained
                                     ("execution_horizon", 0, "execution_horizon")):
            res = _set_params(node, {name: value})
            assert not res[0].successful and needle in res[0].reason, res[0].reason
        res = _set_params(node, {"policy": "pi05"})
        assert not res[0].successful, "the policy is fixed at start-up"
        n_before = len(ex.chunks)
        assert _spin_for(node, 10, until=lambda: len(ex.chunks) >= n_before + 2)
        assert ex.last_chunk_diagnostics()["max_guidance_weight"] == "5", "the next chunks use the new β"

        # BID at run time: the best of bid_samples unguided chunks, reported per chunk.
        assert _set_params(node, {"guidance_mode": "bid"})[0].successful
        n_before = len(ex.chunks)
        assert _spin_for(node, 20, until=lambda: len(ex.chunks) >= n_before + 3)
        diag = ex.last_chunk_diagnostics()
        assert diag["mode"] == "bid" and diag["bid_candidates"] == "8", diag
        assert float(diag["bid_loss_kept"]) <= float(diag["bid_loss_median"]), diag
        assert _set_params(node, {"guidance_mode": "stop"})[0].successful

        # A silent robot-state topic: no chunks from stale observations; chunks again once it is back.
        ex.publish_state = False
        _spin_for(node, 0.5)
        n_silent = len(ex.chunks)
        _spin_for(node, 1.5)
        assert len(ex.chunks) == n_silent and proc.poll() is None, "waits, does not publish, keeps running"
        ex.publish_state = True
        assert _spin_for(node, 10, until=lambda: len(ex.chunks) > n_silent), "resumes"
    finally:
        out = _stop(proc)
        node.destroy_node()
        rclpy.try_shutdown()
    assert proc.returncode == 0, out
    assert "inference_node: parameter max_guidance_weight 5.0 -> -1.0 refused: " in out, "refusals are logged"


def test_values_that_broke_the_rig_are_refused_with_a_reason():
    from rtc_controller.ros.inference_guards import executor_mismatch

    assert "[0, 1000]" in validate_parameter("max_guidance_weight", 1e300, horizon=H)  # overflowed float32
    assert validate_parameter("extra_latency_s", 1.0, horizon=H, dt_s=0.02) is None
    assert "H·Δt = 2" in validate_parameter("extra_latency_s", 1e10, horizon=H, dt_s=0.02)  # killed the worker
    assert validate_parameter("inference_delay", 50, horizon=H, execution_horizon=50) is None
    assert "H - s = 50" in validate_parameter("inference_delay", 51, horizon=H, execution_horizon=50)
    ours = {"horizon": 100, "execution_horizon": 50, "action_rate_hz": 50.0}
    assert executor_mismatch(ours, None) is None, "unknown executor settings: nothing to compare yet"
    assert executor_mismatch(ours, dict(ours)) is None
    assert "execution_horizon 40 != executor_node's 50" in executor_mismatch({**ours, "execution_horizon": 40}, ours)
    assert "reject every chunk" in executor_mismatch(ours, {**ours, "horizon": 50})
    assert "action_rate_hz" in executor_mismatch(ours, {**ours, "action_rate_hz": 25.0})


@pytest.mark.dds
@pytest.mark.slow
def test_a_robot_state_stamped_an_hour_ahead_does_not_stall_the_node():
    import rclpy

    from rtc_controller.action_space import action_names
    from rtc_controller.policy.sim_policy import SimPolicy
    from rtc_controller.ros.conversions import state_to_msg

    proc = _start_node()
    rclpy.init()
    node = rclpy.create_node("stand_in_executor")
    try:
        ex = StandInExecutor(node, SimPolicy().fake_observation().state)
        assert _spin_for(node, 90, until=lambda: len(ex.chunks) >= 2 or proc.poll() is not None), "no chunks"
        ex.pub_state.publish(state_to_msg(ex.state, action_names(), ex.now_s() + 3600.0))
        n = len(ex.chunks)
        assert _spin_for(node, 10, until=lambda: len(ex.chunks) >= n + 3), "the node stalled on the future stamp"
        assert all(c.t_obs_s < ex.now_s() + 60 for _, _, c in ex.chunks), "no chunk conditioned on the bad state"
        assert _spin_for(node, 10, until=lambda: any(d.get("state_stamp_anomalies") == "1" for d in ex.diagnostics))
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        out = _stop(proc)
    assert proc.returncode == 0, out[-2000:]
