"""tools/bandwidth: the CDR sizes equal rclpy's serialisation; the raw cameras are what needs the bandwidth."""

import numpy as np
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header, Int32

from rtc_controller.action_space import action_names
from rtc_controller.ros.conversions import chunk_to_msg, state_to_msg
from rtc_controller.tools import bandwidth as B

NAMES = action_names()


def test_sizes_are_what_dds_serialises():
    state = state_to_msg(np.zeros(14), NAMES, 12.5)
    assert B.joint_state_bytes(NAMES) == len(serialize_message(state))
    chunk = chunk_to_msg(np.zeros((100, 14)), NAMES, 12.5, 0.02, guided_d=16)
    assert B.chunk_bytes(NAMES, 100, chunk.header.frame_id) == len(serialize_message(chunk))
    img = Image(height=224, width=224, encoding="rgb8", step=672, data=bytes(224 * 224 * 3))
    img.header.frame_id = "base_0_rgb"
    assert B.image_bytes(224, 224) == len(serialize_message(img))
    jpeg = CompressedImage(format="jpeg", data=bytes(9001))
    jpeg.header.frame_id = "base_0_rgb"
    assert B.compressed_image_bytes(9001) == len(serialize_message(jpeg))
    assert B.CdrSize().header().total == len(serialize_message(Header()))
    assert B.CdrSize().u32().total == len(serialize_message(Int32()))


def test_wire_bytes_add_headers_and_fragments():
    assert B.wire_bytes(100) == 100 + B.WIRE_OVERHEAD_BYTES
    big = B.image_bytes(224, 224)
    assert B.wire_bytes(big) > big + 100 * B.IP_HEADER_BYTES  # ~102 IP fragments


def test_raw_cameras_exceed_a_100_mbit_link_jpeg_does_not():
    loads = B.topic_loads(names=NAMES, horizon=100, execution_horizon=50, action_rate_hz=50.0, state_rate_hz=50.0,
                          cameras=("a", "b", "c"), camera_px=224, camera_rate_hz=30.0, jpeg_bytes=9000)  # fmt: skip
    raw = sum(t.mbit_s for t in loads if "compressed" not in t.topic)
    jpeg = sum(t.mbit_s for t in loads if "(raw)" not in t.topic)
    assert raw > 100 and jpeg < 10  # the issue: 3 × 224² RGB against 50–100 Mbit/s
    chunk = next(t for t in loads if t.topic == "rtc/chunk")
    assert chunk.rate_hz == 1.0 and chunk.mbit_s < 0.2  # 100 × 14 doubles once per s·Δt = 1 s
    assert "Total with raw cameras" in B.table(loads)
