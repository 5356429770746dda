"""twin_node: the MuJoCo twin's cameras and task status, from the world snapshot the ``mujoco`` driver writes.

Wiring only (the logic is ROS-free: ``sim.snapshot``, ``sim.render``, ``sim.task``):
- a render thread (it owns the offscreen GL context) reads the latest snapshot at ``camera_rate_hz``, renders
  ``camera_slots`` and publishes ``sensor_msgs/Image`` (rgb8) on ``rtc/camera/<slot>`` or, with
  ``publish_compressed``, ``sensor_msgs/CompressedImage`` (JPEG at ``jpeg_quality``) on
  ``rtc/camera/<slot>/compressed`` (what the inference node reads with ``use_compressed_images``), stamped with the
  snapshot's time on the executor's clock (``time.monotonic()`` + the offset every process computes alike);
- a timer at ``status_rate_hz`` runs the task monitor and publishes ``rtc/twin/task`` (DiagnosticStatus: status,
  reason, items, elapsed) and the same status in ``/diagnostics``; the time limit counts from the arms' first
  motion; the final outcome is also written to ``status_file`` (JSON) when set.
The physics never waits for this node: rendering runs here, not in the servo loop.
"""

from __future__ import annotations

import json
import math
import os
import sys
import threading
import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image

from rtc_controller import topics
from rtc_controller.app.node_tables import TWIN_PARAMS
from rtc_controller.param_files import check_node_overrides
from rtc_controller.param_schema import refusals
from rtc_controller.ros.conversions import s_to_stamp
from rtc_controller.ros.param_declare import declare_table
from rtc_controller.ros.spin import EXIT_BAD_INPUT, NodeExit, run_node

START_MOTION_M = 0.01  # the episode clock starts when a commanded TCP moved this far from its start


def image_msg(frame: np.ndarray, stamp_s: float, frame_id: str) -> Image:
    """uint8 ``[h, w, 3]`` RGB -> sensor_msgs/Image (rgb8)."""
    h, w, _ = frame.shape
    msg = Image(height=h, width=w, encoding="rgb8", is_bigendian=0, step=3 * w, data=frame.tobytes())
    msg.header.stamp = s_to_stamp(stamp_s)
    msg.header.frame_id = frame_id
    return msg


def compressed_msg(frame: np.ndarray, stamp_s: float, frame_id: str, *, quality: int) -> CompressedImage:
    """uint8 ``[h, w, 3]`` RGB -> sensor_msgs/CompressedImage (format ``jpeg``, Pillow at ``quality`` 1..95)."""
    import io

    from PIL import Image as PILImage

    buf = io.BytesIO()
    PILImage.fromarray(frame).save(buf, format="JPEG", quality=int(quality))
    msg = CompressedImage(format="jpeg", data=buf.getvalue())
    msg.header.stamp = s_to_stamp(stamp_s)
    msg.header.frame_id = frame_id
    return msg


class TwinNode(Node):
    def __init__(self) -> None:
        super().__init__(topics.TWIN_NODE)
        self.p = declare_table(self, TWIN_PARAMS)
        check_node_overrides(self.get_name(), self._parameters, self._parameter_overrides, sys.argv)
        if reasons := refusals(TWIN_PARAMS, self.p):
            raise ValueError("; ".join(reasons))
        from rtc_controller.sim.snapshot import SnapshotReader
        from rtc_controller.sim.task import TaskMonitor

        self.get_logger().info("waiting for the twin world snapshot (executor_node with driver: mujoco)")
        self.reader = SnapshotReader(self.p["snapshot"] or None, wait_s=float(self.p["snapshot_wait_s"]))
        self.scene, self.task, instance = self.reader.world()
        self.monitor = TaskMonitor(self.scene, self.task, instance)
        self.offset_s = time.time() - time.monotonic()
        self.start_s = math.nan
        self.cmd0: np.ndarray | None = None
        self.written = False
        self.frames = 0
        msg_type, suffix = (CompressedImage, "/compressed") if self.p["publish_compressed"] else (Image, "")
        self.cam_pubs = {s: self.create_publisher(msg_type, topics.camera_topic(s) + suffix, qos_profile_sensor_data)
                         for s in self.p["camera_slots"]}  # fmt: skip
        self.task_pub = self.create_publisher(DiagnosticStatus, topics.TWIN_TASK, 10)
        self.diag_pub = self.create_publisher(DiagnosticArray, topics.DIAGNOSTICS, 10)
        self.create_timer(1.0 / self.p["status_rate_hz"], self._status)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._render_loop, name="twin_render", daemon=True)
        self._thread.start()

    def _render_loop(self) -> None:
        import mujoco

        from rtc_controller.sim.render import CameraRenderer
        from rtc_controller.sim.scene import build_mjcf

        model = mujoco.MjModel.from_xml_string(build_mjcf(self.scene))
        r = CameraRenderer(model, self.scene, height=self.p["camera_height_px"] or None,
                           width=self.p["camera_width_px"] or None)  # fmt: skip
        period = 1.0 / self.p["camera_rate_hz"]
        next_t = time.monotonic()
        while not self._stop.is_set():
            sample = self.reader.read()
            if sample is not None:
                frames = r.render_sample(sample, tuple(self.cam_pubs))
                stamp = sample.t_mono_s + self.offset_s
                for slot, frame in frames.items():
                    self.cam_pubs[slot].publish(self._frame_msg(frame, stamp, slot))
                self.frames += 1
            next_t += period
            self._stop.wait(max(0.0, next_t - time.monotonic()))
            next_t = max(next_t, time.monotonic() - period)
        r.close()

    def _frame_msg(self, frame: np.ndarray, stamp_s: float, slot: str) -> Image | CompressedImage:
        if self.p["publish_compressed"]:
            return compressed_msg(frame, stamp_s, slot, quality=self.p["jpeg_quality"])
        return image_msg(frame, stamp_s, slot)

    def _status(self) -> None:
        s = self.reader.read()
        if s is None:
            return
        if self.cmd0 is None:
            self.cmd0 = s.cmd_pos.copy()
        if math.isnan(self.start_s) and float(np.max(np.linalg.norm(s.cmd_pos - self.cmd0, axis=1))) > START_MOTION_M:
            self.start_s = s.t_episode_s
        start = s.t_episode_s if math.isnan(self.start_s) else self.start_s
        st = self.monitor.update(s.t_episode_s, s.item_pos, s.item_speed, s.held, start_s=start)
        level = {"running": DiagnosticStatus.OK, "success": DiagnosticStatus.OK}.get(st.status, DiagnosticStatus.WARN)
        values = {"status": st.status, "reason": st.reason, "items": ",".join(st.items),
                  "elapsed_s": f"{s.t_episode_s - start:.3f}", "episode_time_s": f"{s.t_episode_s:.3f}",
                  "end_time_s": f"{st.end_time_s - start:.3f}" if st.done else "", "fault": str(s.fault),
                  "frames": str(self.frames), "seed": str(self.monitor.instance.seed)}  # fmt: skip
        msg = DiagnosticStatus(level=level, name=f"{self.get_name()}: task", hardware_id="rtc_twin",
                               message=st.status + (f": {st.reason}" if st.reason else ""),
                               values=[KeyValue(key=k, value=v) for k, v in values.items()])  # fmt: skip
        self.task_pub.publish(msg)
        arr = DiagnosticArray(status=[msg])
        arr.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(arr)
        if st.done and not self.written and self.p["status_file"]:
            self.written = True
            path = self.p["status_file"]
            with open(path + ".tmp", "w") as f:  # written whole, then renamed: a reader never sees half a file
                json.dump({**st.as_dict(), "start_s": start, "seed": self.monitor.instance.seed}, f)
            os.replace(path + ".tmp", path)

    def shutdown(self) -> None:
        self._stop.set()
        self._thread.join(5.0)
        self.reader.close()


def _make(signals) -> TwinNode:
    try:
        return TwinNode()
    except (ValueError, FileNotFoundError) as exc:  # a refused parameter, or no world to show
        raise NodeExit(EXIT_BAD_INPUT, str(exc)) from None


def main(args: list[str] | None = None) -> int:
    """Run until SIGINT/SIGTERM/SIGHUP or the parent's exit; exit 0 (2: refused parameters or no world snapshot)."""
    return run_node(_make, name=topics.TWIN_NODE, args=args, cleanup=TwinNode.shutdown)


if __name__ == "__main__":
    sys.exit(main())
