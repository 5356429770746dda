"""Typed readers of the rig's recordings (ROS-free): deserialised messages -> chunks, robot states, prompts,
camera frames and diagnostics.

Chunks (``trajectory_msgs/msg/JointTrajectory``), robot states (``sensor_msgs/msg/JointState``), prompts
(``std_msgs/msg/String``), images (``sensor_msgs/msg/Image`` / ``CompressedImage``) and diagnostics
(``diagnostic_msgs/msg/DiagnosticArray``), from a :class:`~rtc_controller.bags.bag_reader.BagReader`.

Time: every ``*_s`` value is float seconds. ``stamp_s`` is a header stamp (executor clock for chunks and
states); ``log_s`` is the receive time the recorder logged. Chunk action k is due at t_obs_s + k·dt_s.
Axes: H = horizon (action steps), D = action dim, N = number of samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rtc_controller import topics
from rtc_controller.control.chunk import GUIDED_D_PREFIX, Chunk, chunk_from_trajectory, parse_guided_d

from .bag_reader import BagError, BagReader
from .bag_types import COMPRESSED_IMAGE, DIAGNOSTIC_ARRAY, IMAGE, JOINT_STATE, JOINT_TRAJECTORY, NS_PER_S, STRING

__all__ = [
    "DiagnosticStatusSample",
    "GUIDED_D_PREFIX",
    "ImageSample",
    "StateSeries",
    "chunk_from_msg",
    "decode_image",
    "parse_guided_d",
    "read_chunks",
    "read_diagnostics",
    "read_images",
    "read_prompts",
    "read_states",
]


def _stamp_s(stamp: Any) -> float:
    return float(stamp.sec) + float(stamp.nanosec) * 1e-9


def chunk_from_msg(msg: Any) -> Chunk:
    """A deserialised ``JointTrajectory`` -> :class:`Chunk` (``control.chunk.chunk_from_trajectory``)."""
    return chunk_from_trajectory(msg)


def read_chunks(
    bag: BagReader, topic: str = topics.CHUNK, *, start_ns: int | None = None, stop_ns: int | None = None
) -> list[tuple[int, Chunk]]:
    """``(log_time_ns, Chunk)`` for every chunk, sorted by t_obs."""
    name = bag.require(topic, JOINT_TRAJECTORY)
    out = [(log_ns, chunk_from_msg(msg)) for log_ns, msg in bag.messages(name, start_ns=start_ns, stop_ns=stop_ns)]
    out.sort(key=lambda item: (item[1].t_obs_s, item[0]))
    return out


@dataclass(frozen=True)
class StateSeries:
    """Robot states in the action space: ``positions[N, D]`` ordered as ``names``, stamps ``[N]`` ascending [s]."""

    names: tuple[str, ...]
    stamps_s: np.ndarray
    positions: np.ndarray

    def __len__(self) -> int:
        return int(self.stamps_s.shape[0])

    def index_at(self, t_s: float, *, tolerance_s: float = 1e-6) -> int | None:
        """Index of the state stamped at ``t_s`` or the latest before it (None when all are later)."""
        i = int(np.searchsorted(self.stamps_s, t_s + tolerance_s, side="right")) - 1
        return i if i >= 0 else None


def read_states(
    bag: BagReader,
    topic: str = topics.ROBOT_STATE,
    *,
    names: Sequence[str] | None = None,
    start_ns: int | None = None,
    stop_ns: int | None = None,
) -> StateSeries:
    """All robot states, picked and ordered by ``names`` (default: the first message's names), sorted by stamp."""
    name = bag.require(topic, JOINT_STATE)
    stamps: list[float] = []
    rows: list[np.ndarray] = []
    want: tuple[str, ...] | None = tuple(names) if names is not None else None
    for _, msg in bag.messages(name, start_ns=start_ns, stop_ns=stop_ns):
        msg_names = list(msg.name)
        pos = np.asarray(msg.position, dtype=np.float64)
        if len(msg_names) != pos.shape[0]:
            raise BagError(f"a JointState on {name} has {len(msg_names)} names and {pos.shape[0]} positions")
        if want is None:
            want = tuple(msg_names)
        index = {n: i for i, n in enumerate(msg_names)}
        missing = [n for n in want if n not in index]
        if missing:
            raise BagError(f"a JointState on {name} lacks {missing}")
        stamps.append(_stamp_s(msg.header.stamp))
        rows.append(pos[[index[n] for n in want]])
    dim = len(want or ())
    stamps_a = np.asarray(stamps, dtype=np.float64)
    pos_a = np.asarray(rows, dtype=np.float64).reshape(len(rows), dim)
    order = np.argsort(stamps_a, kind="stable")
    return StateSeries(want or (), stamps_a[order], pos_a[order])


def read_prompts(
    bag: BagReader, topic: str = topics.PROMPT, *, start_ns: int | None = None, stop_ns: int | None = None
) -> list[tuple[float, str]]:
    """``(log_s, text)`` of every prompt (``std_msgs/String`` has no stamp: the receive time is used)."""
    name = bag.require(topic, STRING)
    return [(log_ns / NS_PER_S, str(msg.data)) for log_ns, msg in bag.messages(name, start_ns=start_ns, stop_ns=stop_ns)]


@dataclass(frozen=True)
class ImageSample:
    """One camera frame: ``rgb`` uint8 ``[height, width, 3]``, header stamp and receive time [s]."""

    stamp_s: float
    log_s: float
    rgb: np.ndarray


def decode_image(msg: Any, msgtype: str) -> np.ndarray:
    """A deserialised ``Image`` (rgb8, bgr8, rgba8, bgra8, mono8) or ``CompressedImage`` -> uint8 ``[h, w, 3]``."""
    if msgtype == COMPRESSED_IMAGE:
        try:
            import io

            from PIL import Image as PILImage
        except ImportError as err:  # pragma: no cover - Pillow comes with matplotlib
            raise BagError("decoding CompressedImage needs Pillow (pip install pillow)") from err
        with PILImage.open(io.BytesIO(bytes(np.asarray(msg.data, dtype=np.uint8)))) as img:
            return np.asarray(img.convert("RGB"), dtype=np.uint8)
    enc = str(msg.encoding).lower()
    channels = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1, "8uc1": 1, "8uc3": 3}.get(enc)
    if channels is None:
        raise BagError(f"unsupported image encoding {msg.encoding!r} (rgb8, bgr8, rgba8, bgra8, mono8)")
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    data = np.asarray(msg.data, dtype=np.uint8)
    if data.size < h * step or step < w * channels:
        raise BagError(f"image data of {data.size} bytes too short for {h}x{w} {enc} (step {step})")
    px = data[: h * step].reshape(h, step)[:, : w * channels].reshape(h, w, channels)
    if channels == 1:
        return np.repeat(px, 3, axis=2)
    if enc.startswith("bgr"):
        px = px[..., [2, 1, 0]]
    return np.ascontiguousarray(px[..., :3])


def read_images(
    bag: BagReader,
    topic: str,
    *,
    at_s: Sequence[float] | None = None,
    start_ns: int | None = None,
    stop_ns: int | None = None,
) -> list[ImageSample]:
    """Camera frames of one topic, sorted by stamp.

    With ``at_s`` (stamps [s]) only the frame each of those times would see is kept (the latest stamped at or
    before it) — memory stays bounded by ``len(at_s)`` on long bags. The result then has one entry per time that
    has a frame (duplicates removed).
    """
    name = bag.require(topic, (IMAGE, COMPRESSED_IMAGE))
    msgtype = bag.topics[name]
    if at_s is None:
        out = [
            ImageSample(_stamp_s(m.header.stamp), log_ns / NS_PER_S, decode_image(m, msgtype))
            for log_ns, m in bag.messages(name, start_ns=start_ns, stop_ns=stop_ns)
        ]
        return sorted(out, key=lambda s: s.stamp_s)
    targets = np.sort(np.asarray(list(at_s), dtype=np.float64))
    # First pass: stamps only (cheap), pick for each target the latest frame at or before it.
    stamps = np.asarray(
        [_stamp_s(m.header.stamp) for _, m in bag.messages(name, start_ns=start_ns, stop_ns=stop_ns)], dtype=np.float64
    )
    if stamps.size == 0:
        return []
    order = np.argsort(stamps, kind="stable")
    pos = np.searchsorted(stamps[order], targets + 1e-6, side="right") - 1
    keep = {int(order[p]) for p in pos if p >= 0}
    out = []
    for i, (log_ns, m) in enumerate(bag.messages(name, start_ns=start_ns, stop_ns=stop_ns)):
        if i in keep:
            out.append(ImageSample(_stamp_s(m.header.stamp), log_ns / NS_PER_S, decode_image(m, msgtype)))
    return sorted(out, key=lambda s: s.stamp_s)


@dataclass(frozen=True)
class DiagnosticStatusSample:
    """One ``DiagnosticStatus`` of a ``DiagnosticArray``: level (0 OK, 1 WARN, 2 ERROR, 3 STALE), key/values."""

    stamp_s: float
    name: str
    level: int
    message: str
    values: dict[str, str] = field(default_factory=dict)


def read_diagnostics(
    bag: BagReader, topic: str = topics.DIAGNOSTICS, *, start_ns: int | None = None, stop_ns: int | None = None
) -> list[DiagnosticStatusSample]:
    """Every status of every ``DiagnosticArray``, in log order."""
    name = bag.require(topic, DIAGNOSTIC_ARRAY)
    out = []
    for _, msg in bag.messages(name, start_ns=start_ns, stop_ns=stop_ns):
        stamp = _stamp_s(msg.header.stamp)
        for st in msg.status:
            level = st.level
            level = int.from_bytes(level, "little") if isinstance(level, (bytes, bytearray)) else int(level)
            out.append(
                DiagnosticStatusSample(stamp, str(st.name), level, str(st.message), {kv.key: kv.value for kv in st.values})
            )
    return out
