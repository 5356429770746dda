"""The twin over DDS: rtc-bringup --config config/twin.yaml runs the executor (driver: mujoco), the inference node
(the twin's expert) and twin_node; cameras arrive as images stamped on the executor clock, the task succeeds."""

import json
import time

import numpy as np
import pytest

from rtc_controller import topics
from rtc_controller.app.bringup import default_nodes, start_rig

TWIN = "config/twin.yaml"


def test_bringup_starts_the_twin_node_from_the_twin_config():
    assert default_nodes(TWIN) == ["executor_node", "inference_node", "twin_node"]
    assert default_nodes("config/sim.yaml") == ["executor_node", "inference_node"]


def test_image_message_layout():
    from rtc_controller.ros.conversions import image_to_array
    from rtc_controller.ros.twin_node import image_msg

    frame = np.random.default_rng(0).integers(0, 255, (4, 6, 3), dtype=np.uint8)
    msg = image_msg(frame, 12.5, "base_0_rgb")
    assert msg.encoding == "rgb8" and msg.step == 18 and msg.header.stamp.sec == 12
    np.testing.assert_array_equal(image_to_array(msg), frame)  # what the inference node decodes


@pytest.mark.dds
@pytest.mark.slow
def test_twin_rig_runs_the_expert_to_success_with_cameras(tmp_path):
    import rclpy
    from diagnostic_msgs.msg import DiagnosticStatus
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image, JointState

    from test_inference_node import _spin_for

    status_file = tmp_path / "status.json"
    rig = start_rig(TWIN, nodes=default_nodes(TWIN), log_dir=tmp_path,
                    overrides={"twin_node": {"status_file": str(status_file)}, "executor_node": {"twin_seed": 4},
                               "inference_node": {"compilation_cache_dir": ""}})  # fmt: skip
    rclpy.init()
    node = rclpy.create_node("twin_test")
    images, states, task = [], [], []
    node.create_subscription(Image, topics.camera_topic("left_wrist_0_rgb"), images.append, qos_profile_sensor_data)
    node.create_subscription(JointState, topics.ROBOT_STATE, states.append, 10)
    node.create_subscription(DiagnosticStatus, topics.TWIN_TASK, task.append, 10)
    try:
        ok = _spin_for(node, 240, until=lambda: status_file.exists() or bool(rig.dead()))
        logs = {n: p.read_text()[-3000:] for n, p in rig.log_paths.items()}
        assert ok and not rig.dead(), f"no outcome, or a node died: {rig.dead()} {logs}"
        outcome = json.loads(status_file.read_text())
        assert outcome["status"] == "success", (outcome, logs)
        assert images and images[-1].height == 96 and images[-1].width == 96 and images[-1].encoding == "rgb8"
        assert np.frombuffer(bytes(images[-1].data), np.uint8).std() > 5  # not blank
        img_t = images[-1].header.stamp.sec + 1e-9 * images[-1].header.stamp.nanosec
        assert abs(img_t - time.time()) < 5.0  # stamped on the executor clock (which reads like the system clock)
        assert _spin_for(node, 5, until=lambda: any(m.message == "success" for m in task)), [m.message for m in task[-3:]]
        assert states
        from test_sros2_policy import check_graph_against_policy

        missing = check_graph_against_policy(node, names=("executor_node", "inference_node", "twin_node"))
        assert missing == [], "the SROS2 policy must allow what the twin rig's nodes use"
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        codes = rig.stop()
    assert all(c == 0 for c in codes.values()), codes
