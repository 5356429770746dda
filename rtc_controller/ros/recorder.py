"""rtc-record: record the rig's topics to a rosbag2 (MCAP or SQLite3) without rosbag2, with ``rosbags``.

Raw subscriptions (``raw=True``): the CDR bytes rclpy hands over are stored as they are, with the standard type
name (e.g. ``trajectory_msgs/msg/JointTrajectory``), its message definition and RIHS01 hash, like
``ros2 bag record`` does; the log time of a message is its receive time on this node's clock (ROS time, so
``use_sim_time`` works). Ctrl-C (SIGINT) or SIGTERM closes the bag cleanly (index and metadata.yaml written).

Topics: by default every topic of ``rtc_controller.topics`` (chunk, unguided chunk, robot state, prompt,
executor delay/active chunk, /diagnostics) plus the camera topics of the inference node's config
(``--config`` → ``inference_node.ros__parameters.camera_slots`` / ``use_compressed_images``, or ``--cameras``).
Our topics have a fixed type table; other topics named with ``--topics`` get their type from the ROS graph
once a publisher appears. Relative names resolve in the recorder's namespace (``--ros-args -r __ns:=/rig``).

Usage: ``rtc-record --output out/bag [--storage mcap|sqlite3] [--topics T …] [--config config/sim.yaml]
[--duration S]``; also ``python -m rtc_controller.ros.recorder``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import rclpy
import yaml
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from rclpy.utilities import remove_ros_args
from rosbags.typesys import get_types_from_msg
from rosbags.typesys.store import Typestore

from rtc_controller import topics
from rtc_controller.tools.bag_io import STORAGES, BagWriter, default_typestore, topic_types

__all__ = ["Recorder", "default_topics", "main", "message_class", "typestore_with"]

QUEUE_DEPTH = 100  # per-topic subscription queue (messages) — room for bursts while the bag writes
DISCOVERY_PERIOD_S = 0.5  # how often the graph is polled for topics still without a type / publisher QoS
SPIN_TIMEOUT_S = 0.1  # the main loop checks the stop flag at least this often
EXIT_BAD_INPUT = 2


def message_class(msgtype: str) -> type:
    """``"pkg/msg/Name"`` -> the rclpy message class (ImportError/AttributeError with the type named)."""
    pkg, kind, name = msgtype.split("/")
    module = importlib.import_module(f"{pkg}.{kind}")
    return getattr(module, name)


def _msg_file(pkg: str, name: str) -> Path | None:
    """The installed ``.msg`` file of ``pkg/msg/name`` (AMENT_PREFIX_PATH, then this interpreter's prefix)."""
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p] + [sys.prefix]
    for prefix in prefixes:
        path = Path(prefix) / "share" / pkg / "msg" / f"{name}.msg"
        if path.exists():
            return path
    return None


def typestore_with(msgtype: str, store: Typestore | None = None) -> Typestore:
    """A typestore that knows ``msgtype``: rosbags' ROS 2 Jazzy store, extended from the installed ``.msg`` files
    (dependencies included) for types it does not have. Raises LookupError when a definition is missing."""
    store = store or default_typestore()
    pending = [msgtype]
    found: dict = {}
    while pending:
        typ = pending.pop()
        if typ in store.fielddefs or typ in found:
            continue
        pkg, _, name = typ.split("/")
        path = _msg_file(pkg, name)
        if path is None:
            raise LookupError(f"no message definition for {typ} (no {pkg}/msg/{name}.msg installed)")
        typs = get_types_from_msg(path.read_text(), typ)
        found.update(typs)
        for _, fields in typs.values():
            for _, desc in fields:
                pending.extend(_referenced(desc))
    if found:
        extended = Typestore()
        extended.register(store.fielddefs)
        extended.register(found)
        return extended
    return store


def _referenced(desc: Any) -> list[str]:
    """Message type names a rosbags field description refers to."""
    out = []
    if isinstance(desc, tuple):
        for part in desc:
            if isinstance(part, str) and part.count("/") == 2:
                out.append(part)
            elif isinstance(part, tuple):
                out.extend(_referenced(part))
    return out


def default_topics(camera_slots: Sequence[str] = (), *, compressed: bool = False) -> dict[str, str]:
    """Our topics (relative) and their types, plus the camera topics of ``camera_slots``."""
    return topic_types(camera_slots, compressed=compressed)


def cameras_from_config(path: str | Path) -> tuple[tuple[str, ...], bool]:
    """(camera_slots, use_compressed_images) from the inference node's section of a parameter file."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    params = (data.get(topics.INFERENCE_NODE) or {}).get("ros__parameters") or {}
    slots = tuple(str(s) for s in params.get("camera_slots") or () if str(s))
    return slots, bool(params.get("use_compressed_images", False))


class Recorder(Node):
    """Subscribes raw to each requested topic and writes every message to a ``BagWriter``."""

    def __init__(self, writer: BagWriter, requested: Mapping[str, str | None]) -> None:
        super().__init__(topics.RECORDER_NODE)
        self.writer = writer
        self._types: dict[str, str | None] = {}  # resolved name -> type (None until discovered)
        self._subs: dict[str, Any] = {}
        self._defs: dict[str, tuple[str, str]] = {}  # resolved name -> (message definition, RIHS01 hash)
        self._qos_from_publishers: dict[str, bool] = {}  # whether the QoS was chosen from publishers' offers
        for name, msgtype in requested.items():
            self._types[self.resolve_topic_name(name)] = msgtype
        self._discover()
        self._timer = self.create_timer(DISCOVERY_PERIOD_S, self._discover)

    @property
    def counts(self) -> dict[str, int]:
        return dict(self.writer.counts)

    def _qos(self, name: str) -> QoSProfile:
        """Reliable/volatile unless every publisher offers best effort / transient local (as ros2 bag adapts)."""
        infos = self.get_publishers_info_by_topic(name)
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=QUEUE_DEPTH)
        offered = [i.qos_profile for i in infos]
        best_effort = bool(offered) and all(q.reliability == ReliabilityPolicy.BEST_EFFORT for q in offered)
        latched = bool(offered) and all(q.durability == DurabilityPolicy.TRANSIENT_LOCAL for q in offered)
        qos.reliability = ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE
        qos.durability = DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE
        return qos

    def _discover(self) -> None:
        """Subscribe to topics whose type is now known; re-subscribe when the first publishers need another QoS."""
        graph = None
        for name, msgtype in self._types.items():
            if msgtype is None:
                graph = graph if graph is not None else dict(self.get_topic_names_and_types())
                types = graph.get(name)
                if not types:
                    continue
                if len(types) > 1:
                    self.get_logger().warn(f"{name} has several types {types}; recording {types[0]}")
                msgtype = types[0]
                self._types[name] = msgtype
            if name not in self._subs:
                self._subscribe(name, msgtype)
            elif self._subs[name] is not None and not self._qos_from_publishers[name]:
                qos = self._qos(name)
                if self.get_publishers_info_by_topic(name):
                    self._qos_from_publishers[name] = True
                    if (qos.reliability, qos.durability) != (self._subs[name].qos_profile.reliability,
                                                             self._subs[name].qos_profile.durability):  # fmt: skip
                        self.destroy_subscription(self._subs[name])
                        self._create(name, msgtype, qos)

    def _subscribe(self, name: str, msgtype: str) -> None:
        try:
            store = typestore_with(msgtype)
            self._defs[name] = (store.generate_msgdef(msgtype, ros_version=2)[0], store.hash_rihs01(msgtype))
            message_class(msgtype)
        except (ImportError, AttributeError, LookupError, ValueError) as err:
            self.get_logger().error(f"cannot record {name} [{msgtype}]: {err}")
            self._subs[name] = None
            return
        self._qos_from_publishers[name] = bool(self.get_publishers_info_by_topic(name))
        self._create(name, msgtype, self._qos(name))
        self.get_logger().info(f"recording {name} [{msgtype}]")

    def _create(self, name: str, msgtype: str, qos: QoSProfile) -> None:
        callback = partial(self._on_message, name, msgtype)
        self._subs[name] = self.create_subscription(message_class(msgtype), name, callback, qos, raw=True)

    def _on_message(self, name: str, msgtype: str, data: bytes) -> None:
        if name not in self.writer.counts:  # the topic enters the bag with its first message, as in ros2 bag
            msgdef, rihs01 = self._defs[name]
            self.writer.add_topic(name, msgtype, msgdef=msgdef, rihs01=rihs01)
        self.writer.write_raw(name, msgtype, data, self.get_clock().now().nanoseconds)


def _topic_list(values: Sequence[str]) -> list[str]:
    return [t for v in values for t in v.split(",") if t]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rtc-record", description="Record the rig's topics to a rosbag2 with rosbags.")
    p.add_argument("--output", "-o", type=Path, help="bag directory to create (default rtc_bag_<date>_<time>)")
    p.add_argument("--storage", "-s", choices=STORAGES, default="mcap", help="storage format (default mcap)")
    p.add_argument("--topics", nargs="+", default=[], help="topics to record (default: all rtc topics + cameras)")
    p.add_argument("--config", type=Path, help="parameter file whose inference_node camera_slots are recorded")
    p.add_argument("--cameras", default="", help="comma-separated camera slots (rtc/camera/<slot>)")
    p.add_argument("--compressed", action="store_true", help="record rtc/camera/<slot>/compressed instead")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    return p


def main(args: Sequence[str] | None = None) -> int:
    """Console script ``rtc-record``; returns the exit status (0 after a clean close)."""
    argv = list(sys.argv if args is None else ["rtc-record", *args])
    opts = build_parser().parse_args(remove_ros_args(argv)[1:])
    slots = tuple(s for s in opts.cameras.split(",") if s)
    compressed = opts.compressed
    if opts.config is not None:
        try:
            cfg_slots, cfg_compressed = cameras_from_config(opts.config)
        except (OSError, yaml.YAMLError) as err:
            print(f"rtc-record: error: cannot read {opts.config}: {err}", file=sys.stderr)
            return EXIT_BAD_INPUT
        slots, compressed = slots or cfg_slots, compressed or cfg_compressed
    known = default_topics(slots, compressed=compressed)
    if opts.topics:
        requested = {t: known.get(t) for t in _topic_list(opts.topics)}
    else:
        requested = dict(known)
    output = opts.output or Path(datetime.now().strftime("rtc_bag_%Y%m%d_%H%M%S"))
    if output.exists():
        print(f"rtc-record: error: {output} exists already; choose a new --output", file=sys.stderr)
        return EXIT_BAD_INPUT

    stop = {"signal": None}

    def request_stop(signum, _frame):
        stop["signal"] = signum

    rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    writer = BagWriter(output, storage=opts.storage)
    node = None
    try:
        writer.open()
        node = Recorder(writer, requested)
        node.get_logger().info(f"writing {opts.storage} bag {output} ({len(requested)} topics requested)")
        print(f"rtc-record: recording to {output}", flush=True)
        deadline = None if opts.duration is None else time.monotonic() + opts.duration
        while stop["signal"] is None and rclpy.ok():
            if deadline is not None and time.monotonic() >= deadline:
                break
            rclpy.spin_once(node, timeout_sec=SPIN_TIMEOUT_S)
    finally:
        writer.close()  # index + metadata.yaml: the bag is readable after Ctrl-C
        counts = dict(writer.counts)
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
        for s, handler in previous.items():
            signal.signal(s, handler)
    summary = ", ".join(f"{t}: {n}" for t, n in sorted(counts.items())) or "no messages"
    print(f"rtc-record: closed {output} ({summary})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
