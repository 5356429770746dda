"""Write rosbag2 recordings without ROS: :class:`BagWriter`.

Bags with the standard message types, definitions and type hashes the way ``ros2 bag record`` stores them
(rosbag2 format version 9, CDR, MCAP or SQLite3); the tests and the recorder use it.
Time: ``*_s`` float seconds (header stamps), ``log_time_ns`` int nanoseconds. Axes: H = horizon, D = action dim.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from rosbags.interfaces import Connection, Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys.store import Typestore

from rtc_controller import topics
from rtc_controller.control.chunk import Chunk, format_guided_d

from .bag_types import (
    DIAGNOSTIC_ARRAY,
    HEADER,
    IMAGE,
    INT32,
    JOINT_STATE,
    JOINT_TRAJECTORY,
    NS_PER_S,
    STORAGES,
    STRING,
    Storage,
    default_typestore,
)

__all__ = ["BagWriter"]

_PLUGINS = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
ROSBAG2_VERSION = 9  # what ros2 bag record writes since Jazzy

# Default QoS offered by a publisher (reliable, volatile, keep last 10), stored like ros2 bag record does.
_ZERO = QosTime(0, 0)
_DEFAULT_QOS = Qos(
    QosHistory.KEEP_LAST, 10, QosReliability.RELIABLE, QosDurability.VOLATILE, _ZERO, _ZERO,
    QosLiveliness.AUTOMATIC, _ZERO, False,
)  # fmt: skip


def _split_ns(ns: int) -> tuple[int, int]:
    return ns // NS_PER_S, ns % NS_PER_S


def _to_ns(t_s: float) -> int:
    if not math.isfinite(t_s):
        raise ValueError(f"time must be finite, got {t_s}")
    return int(round(t_s * NS_PER_S))


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
