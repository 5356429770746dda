"""rtc-record: record the rig's topics to a rosbag2 (MCAP or SQLite3) without rosbag2, with ``rosbags``.

Raw subscriptions (``raw=True``): the CDR bytes rclpy hands over are stored as they are, with the standard type
name (e.g. ``trajectory_msgs/msg/JointTrajectory``), its message definition and RIHS01 hash, like
``ros2 bag record`` does; the log time of a message is its receive time on this node's clock (ROS time, so
``use_sim_time`` works). Every shutdown path (one or several SIGINT, SIGTERM, SIGHUP, the parent's exit, the
``--duration``) closes the bag cleanly (index and metadata.yaml written); a write error stops recording with
exit status 1, and messages lost before recording are counted and reported (:class:`Recorder`).

Topics: by default every topic of ``rtc_controller.topics`` (chunk, unguided chunk, robot state, prompt,
executor delay/active chunk, /diagnostics) plus the camera topics the inference node of ``--config`` subscribes
(its ``camera_slots`` / ``use_compressed_images``, or its π0.5 policy section's cameras), or ``--cameras``.
Our topics have a fixed type table; other topics named with ``--topics`` get their type from the ROS graph
once a publisher appears. Relative names resolve in the recorder's namespace (``--ros-args -r __ns:=/rig``).

Usage: ``rtc-record --output out/bag [--storage mcap|sqlite3] [--topics T …] [--config config/sim.yaml]
[--duration S]``; also ``python -m rtc_controller.ros.recorder``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.utilities import remove_ros_args
from rosbags.typesys import get_types_from_msg
from rosbags.typesys.store import Typestore

from rtc_controller import topics
from rtc_controller.ros.spin import run_node
from rtc_controller.config_check import ConfigError
from rtc_controller.app.node_tables import check_params_file
from rtc_controller.bags.bag_types import COMPRESSED_SUFFIX, STORAGES, default_typestore, topic_types
from rtc_controller.bags.bag_writer import BagWriter
from rtc_controller.bags.sequence_gaps import SequenceGaps

__all__ = ["Recorder", "camera_topics_from_config", "default_topics", "main", "message_class", "typestore_with"]

QUEUE_DEPTH = 100  # per-topic subscription queue (messages) — room for bursts while the bag writes
DISCOVERY_PERIOD_S = 0.5  # how often the graph is polled for topics still without a type / publisher QoS
DIAGNOSTICS_PERIOD_S = 1.0
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
    """Our topics (relative) and their types, plus the camera topics of ``camera_slots`` (rtc/camera/<slot>)."""
    suffix = COMPRESSED_SUFFIX if compressed else ""
    return topic_types([topics.camera_topic(s) + suffix for s in camera_slots])


def camera_topics_from_config(path: str | Path, *, compressed: bool = False) -> tuple[str, ...]:
    """The camera topics the inference node of parameter file ``path`` subscribes: its ``camera_slots``, or its π0.5
    policy section's cameras (``inference_params.configured_camera_topics``). ConfigError naming the file."""
    from rtc_controller.app.inference_params import configured_camera_topics  # loads JAX: only with --config

    section = check_params_file(path).get(topics.INFERENCE_NODE, {})
    return configured_camera_topics(section, compressed=compressed)


class Recorder(Node):
    """Subscribes raw to each requested topic and writes every message to a ``BagWriter``.

    Failures are never silent: a write error (disk full, the bag's directory gone) stops recording, is logged,
    reported in diagnostics and makes ``rtc-record`` exit 1 after closing what it wrote (``on_error(reason)`` is
    called once); messages lost before they reached the recorder are counted per topic from the publishers'
    sequence numbers (``bags/sequence_gaps.py``), logged, reported and listed in the closing summary.
    Diagnostics: ``/diagnostics`` status ``rtc_recorder: recording`` at 1 Hz (OK, WARN = messages lost, ERROR =
    write error).
    """

    def __init__(
        self, writer: BagWriter, requested: Mapping[str, str | None], *, on_error: Callable[[str], None] | None = None
    ) -> None:
        super().__init__(topics.RECORDER_NODE)
        self.writer = writer
        self.gaps = SequenceGaps()
        self.write_error = ""
        self._on_error = on_error
        self._single_publisher: dict[str, bool] = {}  # resolved name -> exactly one publisher (gap counting)
        self._diag_pub = self.create_publisher(DiagnosticArray, topics.DIAGNOSTICS, 10)
        self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics)
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
            if name in self._subs:
                self._single_publisher[name] = len(self.get_publishers_info_by_topic(name)) == 1
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

    def _on_message(self, name: str, msgtype: str, data: bytes, info: Mapping[str, Any]) -> None:
        if self.write_error:
            return
        gid = info.get("publisher_gid")  # Kilted and later; Jazzy's MessageInfo has none
        key = tuple(gid.get("data") or ()) if isinstance(gid, dict) else None
        lost = self.gaps.add(name, info.get("publication_sequence_number"), key=key,
                             single_publisher=self._single_publisher.get(name, False))  # fmt: skip
        if lost:
            self.get_logger().warning(f"{lost} message(s) on {name} lost before recording "
                                      f"({self.gaps.lost[name]} on this topic so far)", throttle_duration_sec=1.0)  # fmt: skip
        try:
            if name not in self.writer.counts:  # the topic enters the bag with its first message, as in ros2 bag
                msgdef, rihs01 = self._defs[name]
                self.writer.add_topic(name, msgtype, msgdef=msgdef, rihs01=rihs01)
            self.writer.write_raw(name, msgtype, data, self.get_clock().now().nanoseconds)
        except Exception as exc:  # noqa: BLE001 — OSError (disk full), rosbags' writer errors: stop, say so
            self.write_error = f"writing {name} to {self.writer.path} failed: {type(exc).__name__}: {exc}"
            self.get_logger().error(f"{self.write_error}; recording stopped")
            self._publish_diagnostics()
            if self._on_error is not None:
                self._on_error("write error")

    def _publish_diagnostics(self) -> None:
        level = DiagnosticStatus.ERROR if self.write_error else (DiagnosticStatus.WARN if self.gaps.total else DiagnosticStatus.OK)
        message = self.write_error or (f"{self.gaps.total} message(s) lost before recording" if self.gaps.total else "recording")
        values = [KeyValue(key="bag", value=str(self.writer.path)),
                  KeyValue(key="messages", value=str(sum(self.writer.counts.values()))),
                  KeyValue(key="lost_total", value=str(self.gaps.total))]  # fmt: skip
        values += [KeyValue(key=f"lost {t}", value=str(n)) for t, n in sorted(self.gaps.lost.items())]
        status = DiagnosticStatus(level=level, name=f"{self.get_name()}: recording", hardware_id="rosbag2",
                                  message=message, values=values)  # fmt: skip
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(array)

    def close(self) -> None:
        """Close the bag (index + metadata.yaml); a failure to do so is a write error too."""
        try:
            self.writer.close()
        except Exception as exc:  # noqa: BLE001
            self.write_error = self.write_error or f"closing {self.writer.path} failed: {type(exc).__name__}: {exc}"


def _topic_list(values: Sequence[str]) -> list[str]:
    return [t for v in values for t in v.split(",") if t]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rtc-record", description="Record the rig's topics to a rosbag2 with rosbags.")
    p.add_argument("--output", "-o", type=Path, help="bag directory to create (default rtc_bag_<date>_<time>)")
    p.add_argument("--storage", "-s", choices=STORAGES, default="mcap", help="storage format (default mcap)")
    p.add_argument("--topics", nargs="+", default=[], help="topics to record (default: all rtc topics + cameras)")
    p.add_argument("--config", type=Path, help="parameter file whose inference_node cameras are recorded (its "
                   "camera_slots, or its policy section's cameras)")
    p.add_argument("--cameras", default="", help="comma-separated camera slots (rtc/camera/<slot>)")
    p.add_argument("--compressed", action="store_true", help="record rtc/camera/<slot>/compressed instead")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    return p


def main(args: Sequence[str] | None = None) -> int:
    """Console script ``rtc-record``; returns the exit status: 0 after a clean close (any number of SIGINT/SIGTERM/
    SIGHUP, or the parent's exit: ``rtc_controller.ros.spin``), 1 after a write error, 2 for bad arguments."""
    argv = list(sys.argv if args is None else ["rtc-record", *args])
    opts = build_parser().parse_args(remove_ros_args(argv)[1:])
    slots = tuple(s for s in opts.cameras.split(",") if s)
    known = default_topics(slots, compressed=opts.compressed)
    if opts.config is not None and not slots:
        try:
            known = topic_types(camera_topics_from_config(opts.config, compressed=opts.compressed))
        except (OSError, ConfigError) as err:
            print(f"rtc-record: error: cannot read {opts.config}: {err}", file=sys.stderr)
            return EXIT_BAD_INPUT
    requested = {t: known.get(t) for t in _topic_list(opts.topics)} if opts.topics else dict(known)
    output = opts.output or Path(datetime.now().strftime("rtc_bag_%Y%m%d_%H%M%S"))
    if output.exists():
        print(f"rtc-record: error: {output} exists already; choose a new --output", file=sys.stderr)
        return EXIT_BAD_INPUT
    writer = BagWriter(output, storage=opts.storage)
    try:
        writer.open()
    except Exception as exc:  # noqa: BLE001 — a bad path, no permission, no space
        print(f"rtc-record: error: cannot create the bag {output}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT

    def make(signals) -> Recorder:
        node = Recorder(writer, requested, on_error=signals.request)
        if opts.duration is not None:
            node.create_timer(opts.duration, lambda: signals.request("duration elapsed"))
        node.get_logger().info(f"writing {opts.storage} bag {output} ({len(requested)} topics requested)")
        print(f"rtc-record: recording to {output}", flush=True)
        return node

    nodes: list[Recorder] = []
    code = run_node(lambda signals: nodes.append(make(signals)) or nodes[-1], name="rtc-record", args=argv,
                    cleanup=Recorder.close, exit_code=lambda n: 1 if n.write_error else 0)  # fmt: skip
    writer.close()  # idempotent: also when the node never started
    counts = dict(writer.counts)
    summary = ", ".join(f"{t}: {n}" for t, n in sorted(counts.items())) or "no messages"
    print(f"rtc-record: closed {output} ({summary})", flush=True)
    if nodes and nodes[0].gaps.total:
        lost = ", ".join(f"{t}: {n}" for t, n in sorted(nodes[0].gaps.lost.items()))
        print(f"rtc-record: warning: messages lost before recording ({lost})", file=sys.stderr, flush=True)
    if nodes and nodes[0].write_error:
        print(f"rtc-record: error: {nodes[0].write_error}", file=sys.stderr, flush=True)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
