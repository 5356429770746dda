"""Read and write rosbag2 recordings of the rig without ROS (the pure-Python ``rosbags`` library only).

Reads bags written by ``ros2 bag record`` (MCAP or SQLite3) or by ``rtc-record``: chunks
(``trajectory_msgs/msg/JointTrajectory``), robot states (``sensor_msgs/msg/JointState``), prompts
(``std_msgs/msg/String``), images (``sensor_msgs/msg/Image`` / ``CompressedImage``) and diagnostics
(``diagnostic_msgs/msg/DiagnosticArray``), deserialised with the message definitions embedded in the bag
(falling back to rosbags' ROS 2 Jazzy typestore), so the replay runs where ROS is not installed.

Time: every ``*_s`` value is float seconds. ``stamp_s`` is a header stamp (executor clock for chunks and
states); ``log_s`` is the receive time the recorder logged. Chunk action k is due at t_obs_s + k·dt_s.
Axes: H = horizon (action steps), D = action dim, N = number of samples.

``BagWriter`` writes bags with the standard message types, definitions and type hashes the way
``ros2 bag record`` stores them (rosbag2 format version 9, CDR, MCAP or SQLite3); the tests and the
recorder use it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, get_args

import numpy as np
from rosbags.interfaces import Connection, Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_idl, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from rtc_controller import topics
from rtc_controller.control.chunk import GUIDED_D_PREFIX, Chunk, chunk_from_trajectory, format_guided_d, parse_guided_d

__all__ = [
    "BagError",
    "BagReader",
    "BagWriter",
    "DiagnosticStatusSample",
    "ImageSample",
    "StateSeries",
    "Storage",
    "STORAGES",
    "TOPIC_TYPES",
    "GUIDED_D_PREFIX",
    "default_typestore",
    "parse_guided_d",
    "read_chunks",
    "read_diagnostics",
    "read_images",
    "read_prompts",
    "read_states",
    "topic_types",
]

Storage = Literal["mcap", "sqlite3"]
STORAGES: tuple[str, ...] = get_args(Storage)
_PLUGINS = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
ROSBAG2_VERSION = 9  # what ros2 bag record writes since Jazzy
NS_PER_S = 1_000_000_000

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
    topics.TWIN_TASK: DIAGNOSTIC_STATUS,  # the MuJoCo twin's task status (twin_node)
}

# Default QoS offered by a publisher (reliable, volatile, keep last 10), stored like ros2 bag record does.
_ZERO = QosTime(0, 0)
_DEFAULT_QOS = Qos(
    QosHistory.KEEP_LAST, 10, QosReliability.RELIABLE, QosDurability.VOLATILE, _ZERO, _ZERO,
    QosLiveliness.AUTOMATIC, _ZERO, False,
)  # fmt: skip


class BagError(RuntimeError):
    """A bag cannot be used as asked (missing topic, unknown message type, empty range, unreadable bag)."""


@functools.cache
def default_typestore() -> Typestore:
    """rosbags' ROS 2 Jazzy typestore (the standard message definitions; same hashes as Kilted for ours)."""
    return get_typestore(Stores.ROS2_JAZZY)


def topic_types(camera_slots: Sequence[str] = (), *, compressed: bool = False) -> dict[str, str]:
    """Our topics (relative names) -> standard type names, plus one camera topic per slot."""
    out = dict(TOPIC_TYPES)
    for slot in camera_slots:
        if compressed:
            out[topics.camera_topic(slot) + "/compressed"] = COMPRESSED_IMAGE
        else:
            out[topics.camera_topic(slot)] = IMAGE
    return out


def _stamp_s(stamp: Any) -> float:
    return float(stamp.sec) + float(stamp.nanosec) * 1e-9


def _split_ns(ns: int) -> tuple[int, int]:
    return ns // NS_PER_S, ns % NS_PER_S


def _to_ns(t_s: float) -> int:
    if not math.isfinite(t_s):
        raise ValueError(f"time must be finite, got {t_s}")
    return int(round(t_s * NS_PER_S))


# --------------------------------------------------------------------------------------------- reading


def _parse_embedded(connection: Connection) -> dict | None:
    """The type definitions embedded in the bag for one connection (None when absent or unparsable)."""
    fmt = getattr(connection.msgdef.format, "name", "NONE")
    data = connection.msgdef.data
    try:
        if fmt == "MSG" and data:
            return dict(get_types_from_msg(data, connection.msgtype))
        if fmt == "IDL" and data:
            sep = "=" * 80 + "\n"
            typs: dict = {}
            if data.startswith(f"{sep}IDL: "):
                for part in data.split(sep)[1:]:
                    _, idl = part.split("\n", 1)
                    typs.update(get_types_from_idl(idl))
            else:
                typs.update(get_types_from_idl(data))
            return typs
    except Exception:  # noqa: BLE001 - an unparsable definition falls back to the default typestore
        return None
    return None


class BagReader:
    """A rosbag2 directory (MCAP or SQLite3) opened for reading; use as a context manager.

    Topic names may be given relative (``rtc/chunk``, matched against ``/rtc/chunk`` or ``/<ns>/rtc/chunk``)
    or absolute (``/rtc/chunk``, exact).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise BagError(f"bag {self.path} does not exist")
        if self.path.is_dir() and not (self.path / "metadata.yaml").exists():
            raise BagError(f"{self.path} is not a rosbag2 directory (no metadata.yaml)")
        try:
            self._reader = Reader(self.path)
            self._reader.open()
        except Exception as err:  # rosbags raises several error types for broken bags
            raise BagError(f"cannot open bag {self.path}: {err}") from err
        self._stores: dict[int, Typestore | None] = {}
        embedded = Typestore()
        for conn in self._reader.connections:
            typs = _parse_embedded(conn)
            store: Typestore | None = None
            if typs:
                try:
                    embedded.register(typs)
                    store = embedded
                except Exception:  # noqa: BLE001 - conflicting definitions: use the standard ones
                    store = None
            if store is None and conn.msgtype in default_typestore().fielddefs:
                store = default_typestore()
            self._stores[conn.id] = store

    # -- context manager
    def __enter__(self) -> BagReader:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None):
        self.close()

    def close(self) -> None:
        if self._reader.is_open:
            self._reader.close()

    # -- metadata
    @property
    def topics(self) -> dict[str, str]:
        """Absolute topic name -> message type name."""
        return {c.topic: c.msgtype for c in self._reader.connections}

    @property
    def start_ns(self) -> int:
        return int(self._reader.start_time)

    @property
    def end_ns(self) -> int:
        return int(self._reader.end_time)

    def message_count(self, topic: str) -> int:
        name = self.resolve(topic)
        return 0 if name is None else sum(c.msgcount for c in self._reader.connections if c.topic == name)

    def resolve(self, topic: str) -> str | None:
        """The bag's name for ``topic`` (None when absent); BagError when a relative name matches several."""
        names = sorted(self.topics)
        if topic.startswith("/"):
            return topic if topic in names else None
        matches = [n for n in names if n == "/" + topic or n.endswith("/" + topic)]
        if len(matches) > 1:
            exact = [n for n in matches if n == "/" + topic]
            if exact:
                return exact[0]
            raise BagError(f"topic {topic!r} is ambiguous in {self.path}: {matches}; give the absolute name")
        return matches[0] if matches else None

    def require(self, topic: str, expected_types: str | Sequence[str]) -> str:
        """Resolve ``topic`` and check its type; BagError with the reason otherwise."""
        expected = (expected_types,) if isinstance(expected_types, str) else tuple(expected_types)
        name = self.resolve(topic)
        if name is None:
            have = ", ".join(f"{n} [{t}]" for n, t in sorted(self.topics.items())) or "none"
            raise BagError(f"bag {self.path} has no topic {topic!r} (topics: {have})")
        msgtype = self.topics[name]
        if msgtype not in expected:
            raise BagError(
                f"unknown message type {msgtype!r} on topic {name} (expected {' or '.join(expected)})"
            )
        return name

    # -- messages
    def messages(
        self, topic: str, *, start_ns: int | None = None, stop_ns: int | None = None
    ) -> Iterator[tuple[int, Any]]:
        """``(log_time_ns, message)`` of one topic in log-time order, deserialised (``[start_ns, stop_ns)``)."""
        name = self.resolve(topic)
        if name is None:
            raise BagError(f"bag {self.path} has no topic {topic!r}")
        conns = [c for c in self._reader.connections if c.topic == name]
        for conn in conns:
            if self._stores[conn.id] is None:
                raise BagError(
                    f"unknown message type {conn.msgtype!r} on topic {name}: the bag carries no usable "
                    "definition and it is not a standard ROS 2 type"
                )
        records = iter(self._reader.messages(conns, start=start_ns, stop=stop_ns))
        while True:
            try:
                conn, log_ns, raw = next(records)
            except StopIteration:
                return
            except Exception as err:  # noqa: BLE001 — a corrupted file raises ReaderError, OverflowError, struct.error…
                raise BagError(f"cannot read {name} from {self.path} (corrupted?): {type(err).__name__}: {err}") from err
            store = self._stores[conn.id]
            try:
                msg = deserialize_cdr(store, raw, conn.msgtype)
            except Exception as err:  # noqa: BLE001
                raise BagError(f"cannot deserialise a {conn.msgtype} message on {name}: {err}") from err
            yield int(log_ns), msg


CDR_HEADER_BYTES = 4  # encapsulation kind (2) + options (2)


def deserialize_cdr(store: Typestore, raw: bytes | memoryview, msgtype: str) -> Any:
    """CDR bytes -> a rosbags message object, tolerating trailing bytes after the message.

    rclpy's ``serialize_message`` (and DDS serialized takes) may hand over a buffer longer than the message
    (zero padding; seen with rclpy 9 / Fast CDR 2: 140 bytes for a 112-byte JointTrajectory); rosbags'
    ``deserialize_cdr`` refuses more than 3 trailing bytes, so the message is parsed here directly.
    """
    if len(raw) < CDR_HEADER_BYTES or bytes(raw[:2]) not in (b"\x00\x00", b"\x00\x01"):
        raise ValueError("invalid or unsupported CDR encapsulation")
    msgdef = store.get_msgdef(msgtype)
    func = msgdef.deserialize_cdr_le if raw[1] else msgdef.deserialize_cdr_be
    message, pos = func(memoryview(raw)[CDR_HEADER_BYTES:], 0, msgdef.cls, store)
    if pos + CDR_HEADER_BYTES > len(raw):
        raise ValueError(f"truncated {msgtype} message")
    return message


# --------------------------------------------------------------------------------------------- typed readers


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


# --------------------------------------------------------------------------------------------- writing


class BagWriter:
    """Write a rosbag2 directory with standard message types, as ``ros2 bag record`` stores them.

    Format version 9, CDR, the message definition and RIHS01 type hash of every type (from ``typestore``,
    default rosbags' ROS 2 Jazzy store), the offered QoS. Log times are in ns; ``log_time_ns=None`` uses the
    message's header stamp. Use as a context manager: leaving it closes the bag (index + metadata.yaml).
    """

    def __init__(self, path: str | Path, *, storage: Storage = "mcap", typestore: Typestore | None = None) -> None:
        if storage not in STORAGES:
            raise ValueError(f"unknown storage {storage!r}; expected one of {STORAGES}")
        self.path = Path(path)
        self.storage = storage
        self.typestore = typestore or default_typestore()
        self._writer = Writer(self.path, version=ROSBAG2_VERSION, storage_plugin=_PLUGINS[storage])
        self._connections: dict[str, Connection] = {}
        self._open = False
        self.counts: dict[str, int] = {}

    def __enter__(self) -> BagWriter:
        self.open()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None):
        self.close()

    def open(self) -> None:
        self._writer.open()
        self._open = True

    def close(self) -> None:
        """Write the index and metadata.yaml; idempotent."""
        if self._open:
            self._open = False
            self._writer.close()

    def add_topic(
        self, topic: str, msgtype: str, *, msgdef: str | None = None, rihs01: str | None = None, qos: Sequence[Qos] = ()
    ) -> Connection:
        """Register ``topic`` (absolute name; a relative one gets a leading '/') once; returns its connection."""
        topic = topic if topic.startswith("/") else "/" + topic
        conn = self._connections.get(topic)
        if conn is not None:
            if conn.msgtype != msgtype:
                raise ValueError(f"topic {topic} already has type {conn.msgtype}, not {msgtype}")
            return conn
        if msgdef is None and msgtype not in self.typestore.fielddefs:
            raise ValueError(f"unknown message type {msgtype!r}: not in the typestore and no definition given")
        conn = self._writer.add_connection(
            topic,
            msgtype,
            typestore=self.typestore,
            msgdef=msgdef,
            rihs01=rihs01,
            serialization_format="cdr",
            offered_qos_profiles=list(qos) or [_DEFAULT_QOS],
        )
        self._connections[topic] = conn
        self.counts[topic] = 0
        return conn

    def write_raw(self, topic: str, msgtype: str, data: bytes | memoryview, log_time_ns: int) -> None:
        """Write already-serialised CDR bytes (what rclpy's raw subscriptions deliver)."""
        conn = self.add_topic(topic, msgtype)
        self._writer.write(conn, int(log_time_ns), data)
        self.counts[conn.topic] += 1

    def write(self, topic: str, msgtype: str, msg: Any, log_time_ns: int) -> None:
        """Serialise a rosbags message object and write it."""
        self.write_raw(topic, msgtype, self.typestore.serialize_cdr(msg, msgtype), log_time_ns)

    # -- message builders for our types
    def _t(self, name: str):
        return self.typestore.types[name]

    def _time(self, t_s: float):
        sec, nsec = _split_ns(_to_ns(t_s))
        return self._t("builtin_interfaces/msg/Time")(sec=sec, nanosec=nsec)

    def _header(self, stamp_s: float, frame_id: str = ""):
        return self._t(HEADER)(stamp=self._time(stamp_s), frame_id=frame_id)

    def write_chunk(
        self,
        chunk: Chunk,
        *,
        topic: str = topics.CHUNK,
        log_time_ns: int | None = None,
    ) -> None:
        """A chunk as ``JointTrajectory`` (stamp = t_obs, frame_id = ``rtc_d=<d>`` when guided_d is set)."""
        duration = self._t("builtin_interfaces/msg/Duration")
        point = self._t("trajectory_msgs/msg/JointTrajectoryPoint")
        empty = np.zeros(0, dtype=np.float64)
        pts = []
        for k in range(chunk.horizon):
            sec, nsec = _split_ns(_to_ns(k * chunk.dt_s))
            pts.append(
                point(
                    positions=np.asarray(chunk.actions[k], dtype=np.float64),
                    velocities=empty,
                    accelerations=empty,
                    effort=empty,
                    time_from_start=duration(sec=sec, nanosec=nsec),
                )
            )
        frame_id = format_guided_d(chunk.guided_d)
        msg = self._t(JOINT_TRAJECTORY)(
            header=self._header(chunk.t_obs_s, frame_id), joint_names=list(chunk.names), points=pts
        )
        self.write(topic, JOINT_TRAJECTORY, msg, _to_ns(chunk.t_obs_s) if log_time_ns is None else log_time_ns)

    def write_state(
        self,
        positions: np.ndarray,
        names: Sequence[str],
        stamp_s: float,
        *,
        topic: str = topics.ROBOT_STATE,
        log_time_ns: int | None = None,
    ) -> None:
        """A robot state ``positions[D]`` as ``JointState`` stamped ``stamp_s``."""
        p = np.asarray(positions, dtype=np.float64).reshape(-1)
        if p.shape[0] != len(names):
            raise ValueError(f"{p.shape[0]} positions for {len(names)} names")
        empty = np.zeros(0, dtype=np.float64)
        msg = self._t(JOINT_STATE)(
            header=self._header(stamp_s), name=list(names), position=p, velocity=empty, effort=empty
        )
        self.write(topic, JOINT_STATE, msg, _to_ns(stamp_s) if log_time_ns is None else log_time_ns)

    def write_prompt(self, text: str, log_time_ns: int, *, topic: str = topics.PROMPT) -> None:
        self.write(topic, STRING, self._t(STRING)(data=text), log_time_ns)

    def write_int32(self, topic: str, value: int, log_time_ns: int) -> None:
        self.write(topic, INT32, self._t(INT32)(data=int(value)), log_time_ns)

    def write_image(
        self, rgb: np.ndarray, stamp_s: float, *, topic: str, log_time_ns: int | None = None, frame_id: str = ""
    ) -> None:
        """An ``[h, w, 3]`` uint8 frame as ``sensor_msgs/Image`` (rgb8)."""
        a = np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))
        if a.ndim != 3 or a.shape[2] != 3:
            raise ValueError(f"rgb must be [height, width, 3], got {a.shape}")
        h, w, _ = a.shape
        msg = self._t(IMAGE)(
            header=self._header(stamp_s, frame_id), height=h, width=w, encoding="rgb8", is_bigendian=0,
            step=3 * w, data=a.reshape(-1),
        )  # fmt: skip
        self.write(topic, IMAGE, msg, _to_ns(stamp_s) if log_time_ns is None else log_time_ns)

    def write_diagnostics(
        self,
        statuses: Sequence[tuple[str, int, str, Mapping[str, str]]],
        stamp_s: float,
        *,
        topic: str = topics.DIAGNOSTICS,
        log_time_ns: int | None = None,
    ) -> None:
        """``(name, level, message, values)`` tuples as one ``DiagnosticArray``."""
        status = self._t("diagnostic_msgs/msg/DiagnosticStatus")
        kv = self._t("diagnostic_msgs/msg/KeyValue")
        msg = self._t(DIAGNOSTIC_ARRAY)(
            header=self._header(stamp_s),
            status=[
                status(level=int(lvl), name=n, message=m, hardware_id="", values=[kv(key=k, value=v) for k, v in vals.items()])
                for n, lvl, m, vals in statuses
            ],
        )
        self.write(topic, DIAGNOSTIC_ARRAY, msg, _to_ns(stamp_s) if log_time_ns is None else log_time_ns)
