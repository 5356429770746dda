"""Bag I/O (bag_types, bag_reader, bag_messages, bag_writer): rosbag2 round trips in both storage formats with
standard types, ROS-free reading, rclpy CDR compatibility."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import yaml

from rtc_controller import topics
from rtc_controller.control.chunk import Chunk
from rtc_controller.bags import bag_messages, bag_types
from rtc_controller.bags.bag_reader import BagError, BagReader
from rtc_controller.bags.bag_types import STORAGES
from rtc_controller.bags.bag_writer import BagWriter

NAMES = ("left_x", "left_y", "left_gripper")


def _chunk(t_obs_s=10.0, d=7, horizon=6):
    actions = np.arange(horizon * len(NAMES), dtype=np.float64).reshape(horizon, len(NAMES)) * 0.01
    return Chunk(NAMES, actions, t_obs_s, 0.02, d)


@pytest.fixture(params=STORAGES)
def bag(request, tmp_path):
    path = tmp_path / f"bag_{request.param}"
    rgb = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    with BagWriter(path, storage=request.param) as w:
        w.write_prompt("pick", 9_000_000_000)
        w.write_prompt("place", 11_000_000_000)
        w.write_state([3.0, 2.0, 1.0], ("left_gripper", "left_y", "left_x"), 10.02, log_time_ns=10_021_000_000)
        w.write_state([0.1, 0.2, 0.3], NAMES, 10.0, log_time_ns=10_030_000_000)  # logged later, stamped earlier
        w.write_chunk(_chunk(10.0, 7), log_time_ns=10_150_000_000)
        w.write_chunk(_chunk(9.8, None), log_time_ns=9_950_000_000)
        w.write_image(rgb, 10.0, topic=topics.camera_topic("base_0_rgb"))
        w.write_image(rgb + 1, 10.04, topic=topics.camera_topic("base_0_rgb"))
        w.write_diagnostics([("executor: loop", 1, "late ticks", {"late_fraction": "0.02"})], 10.1)
    return path


def test_round_trip(bag):
    with BagReader(bag) as r:
        assert r.topics["/rtc/chunk"] == "trajectory_msgs/msg/JointTrajectory"
        assert r.topics["/rtc/robot_state"] == "sensor_msgs/msg/JointState"
        assert r.message_count("rtc/chunk") == 2
        chunks = bag_messages.read_chunks(r)
        assert [c.t_obs_s for _, c in chunks] == [9.8, 10.0]  # sorted by stamp
        assert [c.guided_d for _, c in chunks] == [None, 7]
        log_ns, c = chunks[1]
        assert log_ns == 10_150_000_000
        assert c.names == NAMES and c.dt_s == pytest.approx(0.02)
        np.testing.assert_array_equal(c.actions, _chunk().actions)

        states = bag_messages.read_states(r, names=NAMES)
        assert states.stamps_s.tolist() == [10.0, 10.02]
        np.testing.assert_array_equal(states.positions, [[0.1, 0.2, 0.3], [1.0, 2.0, 3.0]])  # reordered by name
        assert states.index_at(10.01) == 0 and states.index_at(10.02) == 1 and states.index_at(9.0) is None

        assert bag_messages.read_prompts(r) == [(9.0, "pick"), (11.0, "place")]

        frames = bag_messages.read_images(r, topics.camera_topic("base_0_rgb"))
        assert [f.stamp_s for f in frames] == [10.0, 10.04]
        assert frames[0].rgb.shape == (4, 5, 3) and frames[1].rgb[0, 0, 0] == 1
        picked = bag_messages.read_images(r, topics.camera_topic("base_0_rgb"), at_s=[10.01, 10.02])
        assert [f.stamp_s for f in picked] == [10.0]  # both times see the first frame, kept once

        (diag,) = bag_messages.read_diagnostics(r)
        assert (diag.name, diag.level, diag.message, diag.values) == (
            "executor: loop", 1, "late ticks", {"late_fraction": "0.02"}
        )


def test_metadata_is_what_ros2_bag_writes(bag):
    meta = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["version"] == 9
    assert meta["storage_identifier"] in STORAGES
    store = bag_types.default_typestore()
    by_topic = {t["topic_metadata"]["name"]: t["topic_metadata"] for t in meta["topics_with_message_count"]}
    tm = by_topic["/rtc/chunk"]
    assert tm["type"] == "trajectory_msgs/msg/JointTrajectory"
    assert tm["serialization_format"] == "cdr"
    assert tm["type_description_hash"] == store.hash_rihs01("trajectory_msgs/msg/JointTrajectory")
    assert tm["offered_qos_profiles"][0]["reliability"] == "reliable"
    with BagReader(bag) as r:
        conn = next(c for c in r._reader.connections if c.topic == "/rtc/chunk")
        assert conn.msgdef.format.name == "MSG" and "JointTrajectoryPoint" in conn.msgdef.data


def test_topic_resolution_and_errors(tmp_path):
    path = tmp_path / "ns"
    with BagWriter(path, storage="mcap") as w:
        w.write_chunk(_chunk(), topic="/rig/rtc/chunk")
        w.write_prompt("x", 1, topic="/a/rtc/prompt")
        w.write_prompt("y", 2, topic="/b/rtc/prompt")
    with BagReader(path) as r:
        assert r.resolve("rtc/chunk") == "/rig/rtc/chunk"  # namespaced rig
        assert r.resolve("/rtc/chunk") is None  # absolute names are exact
        with pytest.raises(BagError, match="ambiguous"):
            r.resolve("rtc/prompt")
        with pytest.raises(BagError, match="has no topic 'rtc/robot_state'"):
            r.require("rtc/robot_state", "sensor_msgs/msg/JointState")
        with pytest.raises(BagError, match="unknown message type 'trajectory_msgs/msg/JointTrajectory'"):
            r.require("rtc/chunk", "sensor_msgs/msg/JointState")
    with pytest.raises(BagError, match="does not exist"):
        BagReader(tmp_path / "nothing")
    (tmp_path / "plain").mkdir()
    with pytest.raises(BagError, match="not a rosbag2 directory"):
        BagReader(tmp_path / "plain")


def test_image_encodings(tmp_path):
    path = tmp_path / "enc"
    store = bag_types.default_typestore()
    image_t, header_t, time_t = (store.types[n] for n in (bag_types.IMAGE, bag_types.HEADER, "builtin_interfaces/msg/Time"))
    rgb = np.random.default_rng(0).integers(0, 255, (3, 4, 3), dtype=np.uint8)
    padded_bgr = np.zeros((3, 16), np.uint8)  # step 16 > 12: row padding
    padded_bgr[:, :12] = rgb[..., ::-1].reshape(3, 12)
    with BagWriter(path, storage="sqlite3") as w:
        for i, (enc, data, step) in enumerate([("bgr8", padded_bgr, 16), ("mono8", rgb[..., 0], 4)]):
            msg = image_t(header=header_t(stamp=time_t(sec=i, nanosec=0), frame_id=""), height=3, width=4,
                          encoding=enc, is_bigendian=0, step=step, data=np.ascontiguousarray(data).reshape(-1))  # fmt: skip
            w.write("cam", bag_types.IMAGE, msg, i + 1)
    with BagReader(path) as r:
        bgr, mono = bag_messages.read_images(r, "cam")
    np.testing.assert_array_equal(bgr.rgb, rgb)
    np.testing.assert_array_equal(mono.rgb, np.repeat(rgb[..., :1], 3, axis=2))


def test_reading_needs_no_ros(bag):
    """The replay path imports nothing from ROS: run it with every ROS module made unimportable."""
    code = f"""
import sys, importlib.abc
ROS = ("rclpy", "builtin_interfaces", "std_msgs", "sensor_msgs", "trajectory_msgs", "diagnostic_msgs", "rosidl")
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0].startswith(ROS):
            raise ImportError("ROS is not installed: " + name)
sys.meta_path.insert(0, Block())
from rtc_controller.bags import bag_messages, bag_reader, bag_types, bag_writer
from rtc_controller.tools import replay, replay_cli, plots, metrics
with bag_reader.BagReader({str(bag)!r}) as r:
    chunks = bag_messages.read_chunks(r)
assert len(chunks) == 2, chunks
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_reads_rclpy_serialised_messages(tmp_path):
    """What the recorder stores (rclpy's CDR bytes) reads back to the same chunk and state."""
    pytest.importorskip("rclpy")
    from rclpy.serialization import serialize_message

    from rtc_controller.ros import conversions

    assert conversions.GUIDED_D_PREFIX == bag_messages.GUIDED_D_PREFIX
    chunk = _chunk(12.5, 16)
    msg = conversions.chunk_to_msg(chunk.actions, chunk.names, chunk.t_obs_s, chunk.dt_s, guided_d=16)
    state = conversions.state_to_msg(np.array([1.0, 2.0, 3.0]), NAMES, 12.5)
    path = tmp_path / "rclpy"
    with BagWriter(path, storage="mcap") as w:
        w.write_raw("rtc/chunk", bag_types.JOINT_TRAJECTORY, serialize_message(msg), 1)
        w.write_raw("rtc/robot_state", bag_types.JOINT_STATE, serialize_message(state), 2)
    with BagReader(path) as r:
        (_, got), = bag_messages.read_chunks(r)
        states = bag_messages.read_states(r)
    ref = conversions.msg_to_chunk(msg)
    assert (got.names, got.t_obs_s, got.guided_d) == (ref.names, ref.t_obs_s, 16)
    assert got.dt_s == pytest.approx(ref.dt_s)
    np.testing.assert_array_equal(got.actions, ref.actions)
    np.testing.assert_array_equal(states.positions, [[1.0, 2.0, 3.0]])


def test_writer_refuses_bad_input(tmp_path):
    with pytest.raises(ValueError, match="storage"):
        BagWriter(tmp_path / "x", storage="rosbag1")
    with BagWriter(tmp_path / "y") as w:
        with pytest.raises(ValueError, match="unknown message type"):
            w.add_topic("t", "my_msgs/msg/Nope")
        w.write_prompt("a", 1, topic="t2")
        with pytest.raises(ValueError, match="already has type"):
            w.add_topic("t2", bag_types.INT32)
        with pytest.raises(ValueError, match="positions"):
            w.write_state([1.0], NAMES, 1.0)
