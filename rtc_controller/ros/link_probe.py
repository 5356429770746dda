"""link_probe: a listener on one host that writes what it sees as JSON lines, for tests across hosts.

A test process outside the network namespaces cannot subscribe inside them; this node runs on a host (the robot
PC side in the two-host tests) and appends one line per message to ``--out`` (flushed, so the test reads it
while the run goes on). ``rx`` is this process's ``time.monotonic()`` [s] (one clock for every namespace of the
machine); stamps are on the executor's clock [s]. Lines (``kind``):
- ``chunk``: ``stamp`` (t_obs), ``frame_id`` (``rtc_d=<d>``), ``points``;
- ``switch``: the executor's switch event (``executor_node/switch``: k_star, delay_s, jump_norm, jump_linear_m, …);
- ``delta``: ``value_s``, the executor's δ of the last accepted chunk;
- ``state``: ``stamp``, ``position`` (the action-space part, at the state rate);
- ``diag``: ``name``, ``level``, ``message`` and ``values`` of every /diagnostics status of the executor and the
  inference node;
- ``image`` (with ``--cameras``): ``slot``, ``bytes`` (the image data), ``stamp``, ``format`` (``raw`` or the
  compressed format), on ``rtc/camera/<slot>`` and ``rtc/camera/<slot>/compressed``.

Usage: ``python -m rtc_controller.ros.link_probe --out probe.jsonl [--cameras base_0_rgb …]`` (stops on
SIGINT/SIGTERM).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import IO, Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Float64
from trajectory_msgs.msg import JointTrajectory

from rtc_controller import topics
from rtc_controller.ros.conversions import stamp_to_s
from rtc_controller.ros.spin import run_node

NODE_NAME = "rtc_link_probe"
QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.BEST_EFFORT)  # matches reliable and best-effort offers
DIAG_SOURCES = (topics.EXECUTOR_NODE, topics.INFERENCE_NODE)


class LinkProbe(Node):
    def __init__(self, out: IO[str], cameras: list[str]) -> None:
        super().__init__(NODE_NAME)
        self._out = out
        for slot in cameras:
            topic = topics.camera_topic(slot)
            self.create_subscription(Image, topic, lambda m, s=slot: self._on_image(s, m, "raw"), QOS)
            self.create_subscription(CompressedImage, topic + "/compressed",
                                     lambda m, s=slot: self._on_image(s, m, m.format), QOS)  # fmt: skip
        self.create_subscription(JointTrajectory, topics.CHUNK, self._on_chunk, QOS)
        self.create_subscription(DiagnosticStatus, topics.SWITCH_EVENTS, self._on_switch, QOS)
        self.create_subscription(Float64, topics.MEASURED_DELAY, self._on_delta, QOS)
        self.create_subscription(JointState, topics.ROBOT_STATE, self._on_state, QOS)
        self.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, self._on_diag, QOS)

    def _write(self, kind: str, **fields: Any) -> None:
        self._out.write(json.dumps({"kind": kind, "rx": time.monotonic(), **fields}) + "\n")
        self._out.flush()

    def _on_chunk(self, m: JointTrajectory) -> None:
        self._write("chunk", stamp=stamp_to_s(m.header.stamp), frame_id=m.header.frame_id, points=len(m.points))

    def _on_switch(self, m: DiagnosticStatus) -> None:
        self._write("switch", **{kv.key: _number(kv.value) for kv in m.values})

    def _on_delta(self, m: Float64) -> None:
        self._write("delta", value_s=float(m.data))

    def _on_state(self, m: JointState) -> None:
        self._write("state", stamp=stamp_to_s(m.header.stamp), position=[float(v) for v in m.position])

    def _on_image(self, slot: str, m: Image | CompressedImage, fmt: str) -> None:
        self._write("image", slot=slot, bytes=len(m.data), stamp=stamp_to_s(m.header.stamp), format=fmt)

    def _on_diag(self, m: DiagnosticArray) -> None:
        for s in m.status:
            if s.name.split(":")[0] in DIAG_SOURCES:
                self._write("diag", name=s.name, level=int.from_bytes(s.level, "little") if isinstance(s.level, bytes)
                            else int(s.level), message=s.message, values={kv.key: kv.value for kv in s.values})  # fmt: skip


def _number(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text


def main(args: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rtc-link-probe", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="JSON-lines file to append to")
    parser.add_argument("--cameras", nargs="*", default=[], help="camera slots to log (raw and compressed)")
    opts, ros_args = parser.parse_known_args(sys.argv[1:] if args is None else args)
    out = open(opts.out, "a")  # noqa: SIM115 — closed after the node
    try:
        return run_node(lambda signals: LinkProbe(out, opts.cameras), name=NODE_NAME, args=[NODE_NAME, *ros_args])
    finally:
        out.close()


if __name__ == "__main__":
    raise SystemExit(main())
