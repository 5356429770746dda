"""Read a rosbag2 recording without ROS (the pure-Python ``rosbags`` library only): :class:`BagReader`.

Reads bags written by ``ros2 bag record`` (MCAP or SQLite3) or by ``rtc-record``, deserialised with the message
definitions embedded in the bag (falling back to rosbags' ROS 2 Jazzy typestore), so the replay runs where ROS is
not installed. The typed readers (chunks, states, images, …) are in ``bag_messages``.

Time: log times are int nanoseconds (``*_ns``), the receive time the recorder logged.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from rosbags.interfaces import Connection
from rosbags.rosbag2 import Reader
from rosbags.typesys import get_types_from_idl, get_types_from_msg
from rosbags.typesys.store import Typestore

from .bag_types import default_typestore

__all__ = ["BagError", "BagReader", "deserialize_cdr"]


class BagError(RuntimeError):
    """A bag cannot be used as asked (missing topic, unknown message type, empty range, unreadable bag)."""


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
