"""Message <-> numpy conversions shared by the nodes, the recorder and the replay tool.

Pure functions (numpy + message types, no rclpy node, no validation side effects; validation of chunks lives in
``rtc_controller.control.timeline``).

Conventions (DESIGN.md, "Messages"):
- Chunk = ``trajectory_msgs/JointTrajectory``: ``header.stamp`` = t_obs (executor clock), ``joint_names`` = action
  names, ``points[k].positions`` = a_k in physical units, ``points[k].time_from_start`` = k·dt.
  Optionally ``header.frame_id = "rtc_d=<int>"`` carries the inference delay d [steps] the chunk was guided with.
- Robot state = ``sensor_msgs/JointState``: ``name`` = action names (optionally followed by joint-space names),
  ``position`` = values in the same units, ``header.stamp`` = the executor's clock when the state was read.
- Camera frame = ``sensor_msgs/Image`` (rgb8, bgr8, rgba8, bgra8, mono8) or ``CompressedImage`` -> uint8
  ``[height, width, 3]`` RGB (what the inference node gives the policy).
- Stamps are float seconds (``_s``) on the ROS clock of the executor.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from builtin_interfaces.msg import Duration, Time
from sensor_msgs.msg import CompressedImage, Image, JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from rtc_controller.control.chunk import GUIDED_D_PREFIX, Chunk, chunk_from_trajectory, format_guided_d

__all__ = [
    "Chunk",
    "RobotStateSample",
    "GUIDED_D_PREFIX",
    "stamp_to_s",
    "s_to_stamp",
    "duration_to_s",
    "s_to_duration",
    "chunk_to_msg",
    "max_chunk_bytes",
    "msg_to_chunk",
    "state_to_msg",
    "msg_to_state",
    "image_to_array",
]

NS_PER_S = 1_000_000_000
CHUNK_BYTES_FIXED = 4096  # header, names, CDR overhead [bytes]
CHUNK_BYTES_PER_VALUE = 4 * 8  # positions, and room for velocities, accelerations, efforts [bytes per value]
CHUNK_BYTES_PER_POINT = 64  # time_from_start, sequence lengths, alignment [bytes]


def stamp_to_s(stamp: Time) -> float:
    """``builtin_interfaces/Time`` -> float seconds."""
    return float(stamp.sec) + float(stamp.nanosec) * 1e-9


def s_to_stamp(t_s: float) -> Time:
    """Float seconds (≥ 0) -> ``builtin_interfaces/Time`` (rounded to the nearest ns)."""
    if not np.isfinite(t_s) or t_s < 0.0:
        raise ValueError(f"stamp must be finite and >= 0 s, got {t_s}")
    ns = int(round(t_s * NS_PER_S))
    return Time(sec=ns // NS_PER_S, nanosec=ns % NS_PER_S)


def duration_to_s(d: Duration) -> float:
    """``builtin_interfaces/Duration`` -> float seconds."""
    return float(d.sec) + float(d.nanosec) * 1e-9


def s_to_duration(t_s: float) -> Duration:
    """Float seconds -> ``builtin_interfaces/Duration`` (sec may be negative, nanosec in [0, 1e9))."""
    ns = int(round(t_s * NS_PER_S))
    return Duration(sec=ns // NS_PER_S, nanosec=ns % NS_PER_S)


def chunk_to_msg(
    actions: np.ndarray,
    names: Sequence[str],
    t_obs_s: float,
    dt_s: float,
    *,
    guided_d: int | None = None,
) -> JointTrajectory:
    """Chunk ``actions[h, ad]`` -> ``JointTrajectory`` (stamp = t_obs_s, time_from_start = k·dt_s).

    ``guided_d`` (optional) is written to ``header.frame_id`` as ``"rtc_d=<d>"``.
    """
    a = np.asarray(actions, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != len(names):
        raise ValueError(f"actions must be [horizon, {len(names)}], got shape {a.shape}")
    msg = JointTrajectory()
    msg.header.stamp = s_to_stamp(t_obs_s)
    msg.header.frame_id = format_guided_d(guided_d)
    msg.joint_names = list(names)
    points = []
    for k in range(a.shape[0]):
        p = JointTrajectoryPoint()
        p.positions = a[k].tolist()
        p.time_from_start = s_to_duration(k * dt_s)
        points.append(p)
    msg.points = points
    return msg


def max_chunk_bytes(horizon: int, action_dim: int) -> int:
    """The most bytes a serialised chunk of ``horizon`` points of ``action_dim`` values may take (with room for
    velocities, accelerations and efforts): a larger one is refused before it is deserialised."""
    return CHUNK_BYTES_FIXED + horizon * (CHUNK_BYTES_PER_POINT + CHUNK_BYTES_PER_VALUE * action_dim)


def msg_to_chunk(msg: JointTrajectory) -> Chunk:
    """``JointTrajectory`` -> :class:`Chunk` (see ``control.chunk.chunk_from_trajectory``: no validation, uneven
    points padded with NaN, dt from time_from_start, guided d from frame_id)."""
    return chunk_from_trajectory(msg)


@dataclass(frozen=True)
class RobotStateSample:
    """Robot state in the action space: ``positions[ad]`` ordered as ``names``, read at ``stamp_s`` [s]."""

    names: tuple[str, ...]
    positions: np.ndarray
    stamp_s: float


def state_to_msg(
    positions: np.ndarray,
    names: Sequence[str],
    stamp_s: float,
    *,
    joint_names: Sequence[str] = (),
    joint_positions: np.ndarray | None = None,
) -> JointState:
    """Action-space state ``positions[ad]`` (+ optional joint-space state appended) -> ``JointState``."""
    p = np.asarray(positions, dtype=np.float64).reshape(-1)
    if p.shape[0] != len(names):
        raise ValueError(f"positions has {p.shape[0]} values for {len(names)} names")
    msg = JointState()
    msg.header.stamp = s_to_stamp(stamp_s)
    all_names = list(names)
    values = p.tolist()
    if joint_names:
        if joint_positions is None:
            raise ValueError("joint_names given without joint_positions")
        jp = np.asarray(joint_positions, dtype=np.float64).reshape(-1)
        if jp.shape[0] != len(joint_names):
            raise ValueError(f"joint_positions has {jp.shape[0]} values for {len(joint_names)} joint names")
        all_names += list(joint_names)
        values += jp.tolist()
    msg.name = all_names
    msg.position = values
    return msg


def msg_to_state(msg: JointState, names: Sequence[str] | None = None) -> RobotStateSample:
    """``JointState`` -> :class:`RobotStateSample`.

    With ``names`` the values are picked and ordered by name (KeyError naming the missing ones otherwise);
    without, all of the message's names and positions are returned as they are.
    """
    stamp_s = stamp_to_s(msg.header.stamp)
    pos = np.asarray(msg.position, dtype=np.float64)
    if len(msg.name) != pos.shape[0]:
        raise ValueError(f"JointState has {len(msg.name)} names and {pos.shape[0]} positions")
    if names is None:
        return RobotStateSample(tuple(msg.name), pos.copy(), stamp_s)
    index = {n: i for i, n in enumerate(msg.name)}
    missing = [n for n in names if n not in index]
    if missing:
        raise KeyError(f"JointState lacks {missing}")
    return RobotStateSample(tuple(names), pos[[index[n] for n in names]], stamp_s)


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
