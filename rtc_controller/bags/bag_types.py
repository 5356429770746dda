"""The message types of the rig's rosbag2 recordings (ROS-free): standard type names, our topics' types, the
typestore and the storage formats.

Type names are spelled as ``ros2 bag record`` stores them; topic names are relative, as in ``topics.py``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Literal, get_args

from rosbags.typesys import Stores, get_typestore
from rosbags.typesys.store import Typestore

from rtc_controller import topics

__all__ = [
    "COMPRESSED_IMAGE",
    "DIAGNOSTIC_ARRAY",
    "DIAGNOSTIC_STATUS",
    "FLOAT64",
    "HEADER",
    "IMAGE",
    "INT32",
    "JOINT_STATE",
    "JOINT_TRAJECTORY",
    "NS_PER_S",
    "STORAGES",
    "STRING",
    "Storage",
    "TOPIC_TYPES",
    "default_typestore",
    "topic_types",
]

Storage = Literal["mcap", "sqlite3"]
STORAGES: tuple[str, ...] = get_args(Storage)
NS_PER_S = 1_000_000_000
COMPRESSED_SUFFIX = "/compressed"  # a camera topic's compressed variant (image_transport)

# Standard ROS 2 message type names (as ros2 bag record stores them).
JOINT_TRAJECTORY = "trajectory_msgs/msg/JointTrajectory"
JOINT_STATE = "sensor_msgs/msg/JointState"
STRING = "std_msgs/msg/String"
IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
DIAGNOSTIC_ARRAY = "diagnostic_msgs/msg/DiagnosticArray"
DIAGNOSTIC_STATUS = "diagnostic_msgs/msg/DiagnosticStatus"
INT32 = "std_msgs/msg/Int32"
FLOAT64 = "std_msgs/msg/Float64"
HEADER = "std_msgs/msg/Header"


# The package's own topics and their types (names relative, as in topics.py).
TOPIC_TYPES: Mapping[str, str] = {
    topics.CHUNK: JOINT_TRAJECTORY,
    topics.CHUNK_UNGUIDED: JOINT_TRAJECTORY,
    topics.ROBOT_STATE: JOINT_STATE,
    topics.PROMPT: STRING,
    topics.DIAGNOSTICS: DIAGNOSTIC_ARRAY,
    topics.INFERENCE_DELAY: INT32,
    topics.MEASURED_DELAY: FLOAT64,
    topics.ACTIVE_CHUNK: HEADER,
    topics.SWITCH_EVENTS: DIAGNOSTIC_STATUS,
    topics.POLICY_IDENTITY: STRING,  # latched, once per inference node start
    topics.TWIN_TASK: DIAGNOSTIC_STATUS,  # the MuJoCo twin's task status (twin_node)
}


@functools.cache
def default_typestore() -> Typestore:
    """rosbags' ROS 2 Jazzy typestore (the standard message definitions; same hashes as Kilted for ours)."""
    return get_typestore(Stores.ROS2_JAZZY)


def topic_types(camera_topics: Sequence[str] = ()) -> dict[str, str]:
    """Our topics (relative names) -> standard type names, plus the camera topics: ``sensor_msgs/Image``, or
    ``CompressedImage`` for a topic ending in ``/compressed`` (image_transport's convention)."""
    out = dict(TOPIC_TYPES)
    for topic in camera_topics:
        out[topic] = COMPRESSED_IMAGE if topic.endswith(COMPRESSED_SUFFIX) else IMAGE
    return out
