"""rtc-record over real DDS: a publisher process and the recorder process -> bag -> read back with rosbags."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from rtc_controller import topics
from rtc_controller.bags import bag_messages, bag_reader, bag_types

N_CHUNKS, N_STATES = 5, 20
H, DT_S, D = 4, 0.02, 3
T0_S = 50.0
MATCH_TIMEOUT_S = 20.0
PROC_TIMEOUT_S = 60.0

PUBLISHER = textwrap.dedent(
    f"""
    import sys, time
    import numpy as np
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
    from sensor_msgs.msg import JointState
    from std_msgs.msg import String
    from trajectory_msgs.msg import JointTrajectory
    from geometry_msgs.msg import Twist
    from rtc_controller.ros import conversions

    rclpy.init()
    node = rclpy.create_node("fake_rig")
    names = ["left_x", "left_y"]
    chunk = node.create_publisher(JointTrajectory, "{topics.CHUNK}", 50)
    state = node.create_publisher(JointState, "{topics.ROBOT_STATE}", 50)
    # best effort on a fixed-table topic: the recorder subscribed reliable before any publisher existed and must
    # re-subscribe with the publisher's QoS (as ros2 bag adapts)
    prompt = node.create_publisher(String, "{topics.PROMPT}", QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT))
    diag = node.create_publisher(DiagnosticArray, "{topics.DIAGNOSTICS}", 10)
    extra = node.create_publisher(Twist, "extra/cmd", QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT))
    pubs = [chunk, state, prompt, diag, extra]
    deadline = time.monotonic() + {MATCH_TIMEOUT_S}
    while any(p.get_subscription_count() == 0 for p in pubs):
        if time.monotonic() > deadline:
            sys.exit("recorder never subscribed: " + str([p.topic_name for p in pubs if p.get_subscription_count() == 0]))
        rclpy.spin_once(node, timeout_sec=0.05)
    time.sleep(0.5)  # let the extra topic's QoS settle (the recorder adapts to best effort)
    prompt.publish(String(data="sort the bricks"))
    for k in range({N_STATES}):
        state.publish(conversions.state_to_msg(np.array([k, -k]) * 0.01, names, {T0_S} + k * {DT_S}))
        if k % 4 == 0:
            a = np.arange({H} * 2, dtype=float).reshape({H}, 2) + k
            chunk.publish(conversions.chunk_to_msg(a, names, {T0_S} + k * {DT_S}, {DT_S}, guided_d={D}))
        time.sleep(0.005)
    d = DiagnosticArray()
    d.header.stamp = conversions.s_to_stamp({T0_S})
    d.status = [DiagnosticStatus(level=DiagnosticStatus.WARN, name="executor: loop", message="late")]
    diag.publish(d)
    for _ in range(10):
        extra.publish(Twist())
        time.sleep(0.02)
    time.sleep(1.0)  # reliable delivery before exiting
    print("published", flush=True)
    node.destroy_node()
    rclpy.shutdown()
    """
)


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=10)


def _wait_line(proc: subprocess.Popen, text: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if text in line:
            return
        if not line and proc.poll() is not None:
            break
    raise AssertionError(f"process never printed {text!r} (rc {proc.poll()})")


@pytest.mark.dds
@pytest.mark.slow
@pytest.mark.parametrize(("storage", "stop_signal"), [("mcap", signal.SIGINT), ("sqlite3", signal.SIGTERM)])
def test_records_publisher_and_closes_cleanly(tmp_path, storage, stop_signal):
    out = tmp_path / "bag"
    recorder = subprocess.Popen(
        [sys.executable, "-m", "rtc_controller.ros.recorder", "--output", str(out), "--storage", storage,
         "--topics", topics.CHUNK, topics.ROBOT_STATE, topics.PROMPT, topics.DIAGNOSTICS, "/extra/cmd"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    publisher = None
    try:
        _wait_line(recorder, "recording to", PROC_TIMEOUT_S)
        publisher = subprocess.run(
            [sys.executable, "-c", PUBLISHER], capture_output=True, text=True, timeout=PROC_TIMEOUT_S
        )
        assert publisher.returncode == 0, publisher.stderr[-2000:]
        recorder.send_signal(stop_signal)
        stdout, stderr = recorder.communicate(timeout=PROC_TIMEOUT_S)
        assert recorder.returncode == 0, stderr[-2000:]
        assert "closed" in stdout
    finally:
        _kill(recorder)

    meta = yaml.safe_load((out / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["storage_identifier"] == storage
    with bag_reader.BagReader(out) as bag:
        assert bag.topics == {
            "/rtc/chunk": "trajectory_msgs/msg/JointTrajectory",
            "/rtc/robot_state": "sensor_msgs/msg/JointState",
            "/rtc/prompt": "std_msgs/msg/String",
            "/diagnostics": "diagnostic_msgs/msg/DiagnosticArray",
            "/extra/cmd": "geometry_msgs/msg/Twist",  # type discovered from the graph, best-effort QoS matched
        }
        chunks = bag_messages.read_chunks(bag)
        states = bag_messages.read_states(bag)
        prompts = bag_messages.read_prompts(bag)
        (diag,) = [d for d in bag_messages.read_diagnostics(bag) if not d.name.startswith("rtc_recorder")]  # not its own
        assert bag.message_count("/extra/cmd") >= 1
        conns = {c.topic: c for c in bag._reader.connections}
    assert len(chunks) == N_CHUNKS and len(states) == N_STATES
    assert [c.t_obs_s for _, c in chunks] == pytest.approx([T0_S + k * DT_S for k in range(0, N_STATES, 4)])
    assert all(c.guided_d == D and c.names == ("left_x", "left_y") and c.horizon == H for _, c in chunks)
    np.testing.assert_allclose(chunks[1][1].actions, np.arange(H * 2).reshape(H, 2) + 4)
    assert states.stamps_s.tolist() == pytest.approx([T0_S + k * DT_S for k in range(N_STATES)])
    np.testing.assert_allclose(states.positions[3], [0.03, -0.03])
    assert [p for _, p in prompts] == ["sort the bricks"]
    assert (diag.name, diag.level, diag.stamp_s) == ("executor: loop", 1, T0_S)
    # log time = receive time (wall clock now), not the header stamp
    assert all(log_ns > 1e18 for log_ns, _ in chunks)
    # definitions and hashes as ros2 bag stores them
    store = bag_types.default_typestore()
    assert conns["/rtc/chunk"].digest == store.hash_rihs01("trajectory_msgs/msg/JointTrajectory")
    assert "JointTrajectoryPoint" in conns["/rtc/chunk"].msgdef.data


def test_default_topics_and_config_cameras(tmp_path, monkeypatch):
    from rtc_controller.ros import recorder

    cfg = tmp_path / "p.yaml"
    cfg.write_text(yaml.safe_dump({"inference_node": {"ros__parameters": {"camera_slots": ["base_0_rgb", "left_wrist_0_rgb"]}}}))
    assert recorder.camera_topics_from_config(cfg) == ("rtc/camera/base_0_rgb", "rtc/camera/left_wrist_0_rgb")
    # a π0.5 node configured by a policy section subscribes the section's camera topics: those are recorded
    section = yaml.safe_load(Path("config/policy/pi05_no_state_delta.yaml").read_text())
    section["cameras"] = {"base_0_rgb": {"topic": "cams/front"}, "left_wrist_0_rgb": {}}
    (tmp_path / "section.yaml").write_text(yaml.safe_dump(section))
    cfg.write_text(yaml.safe_dump({"inference_node": {"ros__parameters": {
        "policy": "pi05", "policy_config": str(tmp_path / "section.yaml"), "use_compressed_images": True}}}))
    assert recorder.camera_topics_from_config(cfg) == ("cams/front/compressed", "rtc/camera/left_wrist_0_rgb/compressed")
    slots = ("base_0_rgb", "left_wrist_0_rgb")
    table = recorder.default_topics(slots)
    assert table[topics.CHUNK] == "trajectory_msgs/msg/JointTrajectory"
    assert table[topics.DIAGNOSTICS] == "diagnostic_msgs/msg/DiagnosticArray"
    assert table["rtc/camera/base_0_rgb"] == "sensor_msgs/msg/Image"
    assert recorder.default_topics(slots, compressed=True)["rtc/camera/base_0_rgb/compressed"] == (
        "sensor_msgs/msg/CompressedImage"
    )
    # a type rosbags' store lacks is built from the installed .msg files (with its dependencies)
    msg_dir = tmp_path / "prefix" / "share" / "my_msgs" / "msg"
    msg_dir.mkdir(parents=True)
    (msg_dir / "Foo.msg").write_text("geometry_msgs/Vector3 v\nBar[] bars\n")
    (msg_dir / "Bar.msg").write_text("int32 x\n")
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(tmp_path / "prefix"))
    store = recorder.typestore_with("my_msgs/msg/Foo")
    assert {"my_msgs/msg/Foo", "my_msgs/msg/Bar", "geometry_msgs/msg/Vector3"} <= set(store.fielddefs)
    assert store.generate_msgdef("my_msgs/msg/Foo", ros_version=2)[0].count("MSG: ") == 2
    assert recorder.typestore_with("geometry_msgs/msg/Twist") is bag_types.default_typestore()
    with pytest.raises(LookupError, match="no message definition"):
        recorder.typestore_with("nonexistent_msgs/msg/Foo")


def test_refuses_existing_output(tmp_path, capsys):
    from rtc_controller.ros import recorder

    (tmp_path / "bag").mkdir()
    assert recorder.main(["--output", str(tmp_path / "bag")]) == recorder.EXIT_BAD_INPUT
    assert "exists already" in capsys.readouterr().err


STREAMER = textwrap.dedent(
    f"""
    import sys, time
    import numpy as np
    import rclpy
    from sensor_msgs.msg import JointState
    from rtc_controller.ros import conversions

    rclpy.init()
    node = rclpy.create_node("fake_executor")
    pub = node.create_publisher(JointState, "{topics.ROBOT_STATE}", 50)
    deadline = time.monotonic() + {MATCH_TIMEOUT_S}
    while pub.get_subscription_count() == 0:
        if time.monotonic() > deadline:
            sys.exit("recorder never subscribed")
        rclpy.spin_once(node, timeout_sec=0.05)
    names = [f"j{{i}}" for i in range(200)]
    print("streaming", flush=True)
    for k in range(int(sys.argv[1])):
        pub.publish(conversions.state_to_msg(np.full(200, k * 1e-3), names, {T0_S} + k * {DT_S}))
        time.sleep(0.002)
    time.sleep(1.0)
    node.destroy_node()
    rclpy.shutdown()
    """
)


def _limit_file_size(limit_bytes: int):
    """A child whose files cannot grow beyond ``limit_bytes`` (write() fails with EFBIG): a disk that fills up."""
    import resource

    def preexec():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return preexec


@pytest.mark.dds
@pytest.mark.slow
@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_a_write_error_stops_recording_and_says_so(tmp_path, storage):
    out = tmp_path / "bag"
    recorder = subprocess.Popen(
        [sys.executable, "-m", "rtc_controller.ros.recorder", "--output", str(out), "--storage", storage,
         "--topics", topics.ROBOT_STATE],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_limit_file_size(200_000),
    )  # fmt: skip
    try:
        _wait_line(recorder, "recording to", PROC_TIMEOUT_S)
        streamer = subprocess.run([sys.executable, "-c", STREAMER, "600"], capture_output=True, text=True,
                                  timeout=PROC_TIMEOUT_S)  # fmt: skip
        assert streamer.returncode == 0, streamer.stderr[-2000:]
        if recorder.poll() is None:  # the error may only surface when the bag is closed
            recorder.send_signal(signal.SIGINT)
        stdout, stderr = recorder.communicate(timeout=PROC_TIMEOUT_S)
    finally:
        _kill(recorder)
    assert recorder.returncode == 1, stderr[-3000:]
    assert "rtc-record: error: writing" in stderr, stderr[-3000:]
    assert ("File too large" if storage == "mcap" else "disk I/O error") in stderr, stderr[-3000:]
    assert "Traceback" not in stderr


@pytest.mark.dds
@pytest.mark.slow
def test_double_sigint_and_sighup_still_finalise_the_bag(tmp_path):
    out = tmp_path / "bag"
    recorder = subprocess.Popen(
        [sys.executable, "-m", "rtc_controller.ros.recorder", "--output", str(out), "--topics", topics.ROBOT_STATE],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _wait_line(recorder, "recording to", PROC_TIMEOUT_S)
        streamer = subprocess.Popen([sys.executable, "-c", STREAMER, "100000"], stdout=subprocess.PIPE, text=True)
        assert streamer.stdout.readline().strip() == "streaming"
        time.sleep(1.0)
        for sig in (signal.SIGINT, signal.SIGINT, signal.SIGHUP):
            recorder.send_signal(sig)
            time.sleep(0.02)
        stdout, stderr = recorder.communicate(timeout=PROC_TIMEOUT_S)
    finally:
        _kill(recorder)
        _kill(streamer)
    assert recorder.returncode == 0 and "Traceback" not in stderr, stderr[-3000:]
    # the later signals either arrive during the close ("ignored, still shutting down cleanly") or after it (ignored)
    meta = yaml.safe_load((out / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["message_count"] > 10
    with bag_reader.BagReader(out) as bag:
        assert bag.message_count("/" + topics.ROBOT_STATE) == meta["message_count"]


def test_a_bag_that_cannot_be_created_is_an_error_not_a_traceback(tmp_path, capsys):
    from rtc_controller.ros import recorder

    blocker = tmp_path / "file"
    blocker.write_text("")
    assert recorder.main(["--output", str(blocker / "bag")]) == recorder.EXIT_BAD_INPUT
    assert "cannot create the bag" in capsys.readouterr().err


def test_sequence_gaps_count_lost_messages_per_publisher():
    from rtc_controller.bags.sequence_gaps import SequenceGaps

    gaps = SequenceGaps()
    assert [gaps.add("/a", s) for s in (1, 2, 5, 6, 9)] == [0, 0, 2, 0, 2]
    assert gaps.add("/a", 3) == 0  # backwards: the publisher restarted, no loss counted
    assert gaps.add("/a", 4) == 0
    # two publishers interleaving, told apart by their GID
    assert [gaps.add("/b", s, key=k) for s, k in ((1, "p"), (1, "q"), (2, "p"), (4, "q"))] == [0, 0, 0, 2]
    # without identities a topic with several publishers is not tracked (a gap could be the other's messages)
    assert [gaps.add("/c", s, single_publisher=False) for s in (1, 5, 9)] == [0, 0, 0]
    assert gaps.lost == {"/a": 4, "/b": 2} and gaps.total == 6
