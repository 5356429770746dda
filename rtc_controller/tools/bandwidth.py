"""Bandwidth each topic needs between the two hosts at the configured rates (docs/two_hosts.md). ROS-free.

Message sizes are computed with the CDR rules DDS serialises with (XCDR1: a 4-byte encapsulation header, strings
as uint32 length + bytes + NUL, sequences as uint32 count + elements, every primitive aligned to its own size);
a test checks them against rclpy's own serialisation. On the wire each message also carries the RTPS and
UDP/IPv4 headers (``WIRE_OVERHEAD_BYTES``), and a datagram larger than the MTU is split into IP fragments of
``MTU_PAYLOAD_BYTES`` with 20 bytes of IP header each.

Usage: ``python -m rtc_controller.tools.bandwidth [--config config/sim.yaml] [--camera-px 224] [--camera-rate-hz 30]
[--jpeg-bytes 9000]`` prints one markdown table: topic, direction (A = robot PC, B = GPU host), size [bytes],
rate [Hz], Mbit/s.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import dataclass

from rtc_controller.action_space import action_names

ENCAPSULATION_BYTES = 4
WIRE_OVERHEAD_BYTES = 20 + 12 + 24 + 8 + 20  # RTPS header, INFO_TS, DATA submessage, UDP, IPv4 [bytes]
MTU_PAYLOAD_BYTES = 1480  # IPv4 payload of one 1500-byte Ethernet frame [bytes]
IP_HEADER_BYTES = 20
DIAGNOSTICS_BYTES = 3000  # one executor DiagnosticArray (six statuses, ~70 key-values), measured order [bytes]
DEFAULT_JPEG_BYTES = 9000  # a 224² twin frame at quality 90 (measured: 6–10 kB) [bytes]


class CdrSize:
    """Running size of a CDR body (alignment relative to the body start, as DDS does)."""

    def __init__(self) -> None:
        self.n = 0

    def _prim(self, size: int, count: int = 1) -> CdrSize:
        self.n += (-self.n) % size + size * count
        return self

    def u8s(self, count: int) -> CdrSize:
        self._prim(4)
        self.n += count
        return self

    def u32(self) -> CdrSize:
        return self._prim(4)

    def f64s(self, count: int) -> CdrSize:
        self._prim(4)
        self._prim(8, count)  # Fast CDR aligns the elements to 8 even for an empty sequence
        return self

    def string(self, text: str) -> CdrSize:
        self._prim(4)
        self.n += len(text.encode()) + 1
        return self

    def strings(self, texts: Sequence[str]) -> CdrSize:
        self._prim(4)
        for t in texts:
            self.string(t)
        return self

    def header(self, frame_id: str = "") -> CdrSize:
        return self.u32().u32().string(frame_id)  # stamp (sec, nanosec), frame_id

    @property
    def total(self) -> int:
        return ENCAPSULATION_BYTES + self.n


def joint_state_bytes(names: Sequence[str]) -> int:
    """sensor_msgs/JointState with ``names`` and their positions (no velocity, no effort)."""
    return CdrSize().header().strings(names).f64s(len(names)).f64s(0).f64s(0).total


def chunk_bytes(names: Sequence[str], horizon: int, frame_id: str = "rtc_d=16") -> int:
    """trajectory_msgs/JointTrajectory: ``horizon`` points of positions only, time_from_start each."""
    c = CdrSize().header(frame_id).strings(names).u32()
    for _ in range(horizon):
        c.f64s(len(names)).f64s(0).f64s(0).f64s(0).u32().u32()
    return c.total


def image_bytes(height_px: int, width_px: int, encoding: str = "rgb8") -> int:
    """sensor_msgs/Image, 3 bytes per pixel."""
    c = CdrSize().header("base_0_rgb").u32().u32().string(encoding)
    c.n += 1  # is_bigendian (uint8)
    return c.u32().u8s(3 * height_px * width_px).total


def compressed_image_bytes(data_bytes: int) -> int:
    """sensor_msgs/CompressedImage (``jpeg``) with ``data_bytes`` of image data."""
    return CdrSize().header("base_0_rgb").string("jpeg").u8s(data_bytes).total


def wire_bytes(message_bytes: int) -> int:
    """One message on the wire: RTPS/UDP/IP headers, plus an IP header per extra fragment."""
    datagram = message_bytes + WIRE_OVERHEAD_BYTES
    return datagram + IP_HEADER_BYTES * (math.ceil((datagram - IP_HEADER_BYTES) / MTU_PAYLOAD_BYTES) - 1)


@dataclass(frozen=True)
class TopicLoad:
    topic: str
    direction: str  # "A->B" (robot PC to GPU host) or "B->A"
    message_bytes: int
    rate_hz: float

    @property
    def mbit_s(self) -> float:
        """On the wire [Mbit/s]."""
        return wire_bytes(self.message_bytes) * self.rate_hz * 8 / 1e6


def topic_loads(*, names: Sequence[str], horizon: int, execution_horizon: int, action_rate_hz: float,
                state_rate_hz: float, cameras: Sequence[str], camera_px: int, camera_rate_hz: float,
                jpeg_bytes: int) -> list[TopicLoad]:  # fmt: skip
    """Every topic that crosses the link at the configured rates; a chunk every s·Δt."""
    chunk_rate = action_rate_hz / execution_horizon
    loads = [
        TopicLoad("rtc/robot_state", "A->B", joint_state_bytes(names), state_rate_hz),
        TopicLoad("rtc/chunk", "B->A", chunk_bytes(names, horizon), chunk_rate),
        TopicLoad("executor_node/active_chunk", "A->B", CdrSize().header().total, chunk_rate),
        TopicLoad("executor_node/inference_delay", "A->B", CdrSize().u32().total, chunk_rate),
        TopicLoad("/diagnostics (executor)", "A->B", DIAGNOSTICS_BYTES, 1.0),
    ]
    for slot in cameras:
        loads.append(TopicLoad(f"rtc/camera/{slot} (raw)", "A->B", image_bytes(camera_px, camera_px), camera_rate_hz))
        loads.append(TopicLoad(f"rtc/camera/{slot}/compressed", "A->B", compressed_image_bytes(jpeg_bytes),
                               camera_rate_hz))  # fmt: skip
    return loads


def table(loads: Sequence[TopicLoad]) -> str:
    rows = ["| topic | direction | message [bytes] | rate [Hz] | Mbit/s |", "|---|---|---|---|---|"]
    rows += [f"| `{t.topic}` | {t.direction} | {t.message_bytes} | {t.rate_hz:g} | {t.mbit_s:.3f} |" for t in loads]
    raw = sum(t.mbit_s for t in loads if "compressed" not in t.topic)
    jpeg = sum(t.mbit_s for t in loads if "(raw)" not in t.topic)
    return "\n".join(rows + [f"\nTotal with raw cameras: {raw:.2f} Mbit/s; with JPEG cameras: {jpeg:.2f} Mbit/s"])


def main(args: list[str] | None = None) -> int:
    from rtc_controller.config_files import config_path
    from rtc_controller.app.bringup import load_config

    p = argparse.ArgumentParser(prog="rtc-bandwidth", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", help="parameter file (default config/sim.yaml)")
    p.add_argument("--cameras", nargs="*", default=["base_0_rgb", "left_wrist_0_rgb", "right_wrist_0_rgb"])
    p.add_argument("--camera-px", type=int, default=224, help="square camera frames of this size [px]")
    p.add_argument("--camera-rate-hz", type=float, default=30.0)
    p.add_argument("--jpeg-bytes", type=int, default=DEFAULT_JPEG_BYTES, help="JPEG data per frame [bytes]")
    a = p.parse_args(args)
    cfg = load_config(a.config or config_path("sim.yaml"))
    ex, inf = cfg["executor_node"], cfg["inference_node"]
    print(table(topic_loads(
        names=action_names(), horizon=int(inf.get("horizon", 50)), execution_horizon=int(inf.get("execution_horizon", 25)),
        action_rate_hz=float(inf.get("action_rate_hz", 50.0)), state_rate_hz=float(ex.get("state_rate_hz", 50.0)),
        cameras=a.cameras, camera_px=a.camera_px, camera_rate_hz=a.camera_rate_hz, jpeg_bytes=a.jpeg_bytes,
    )))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
