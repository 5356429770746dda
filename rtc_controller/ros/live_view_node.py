"""live_view_node: the live view of RTC for RViz and Foxglove (wiring only: ``control/live_view.py``).

A process of its own: it only subscribes to what the rig publishes anyway (``rtc/chunk``, the executor's
``active_chunk`` and ``switch`` events, ``rtc/robot_state``), so it adds no work to the executor's loop or to
inference (README, "Live view": measured). Publishes, per arm (``left``, ``right``), ``nav_msgs/Path`` in
``frame_id`` (the world frame of the action space) at ``publish_rate_hz``:
``rtc/live_view/<arm>/active_chunk``, ``…/previous_chunk`` (over the overlap), ``…/frozen_prefix`` (first d
actions), ``…/executed`` (measured TCP, last ``executed_window_s``); and ``rtc/live_view/switches``
(``visualization_msgs/MarkerArray``: per switch and arm, namespace ``<arm>/switches``, a sphere at the new chunk's
a_{k*}, and in ``<arm>/switch_labels`` a text with k*, d and the jump). ``config/rtc.rviz`` and ``config/rtc_foxglove_layout.json`` display them.
"""

from __future__ import annotations

import math
import sys
from typing import Any

from diagnostic_msgs.msg import DiagnosticStatus
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Path
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from std_msgs.msg import Header
from trajectory_msgs.msg import JointTrajectory
from visualization_msgs.msg import Marker, MarkerArray

from rtc_controller import topics
from rtc_controller.action_space import ARM_PREFIXES
from rtc_controller.analysis.diagnostics_schema import SwitchRecord
from rtc_controller.control.live_view import LiveView, LiveViewConfig
from rtc_controller.ros.conversions import msg_to_chunk, msg_to_state, stamp_to_s
from rtc_controller.app.node_tables import LIVE_VIEW_PARAMS
from rtc_controller.param_files import check_node_overrides
from rtc_controller.param_schema import refusals
from rtc_controller.ros.param_declare import declare_table
from rtc_controller.ros.spin import EXIT_BAD_INPUT, NodeExit, run_node

PATH_TOPICS = {"active": "active_chunk", "previous": "previous_chunk", "frozen": "frozen_prefix", "executed": "executed"}
SWITCH_TOPIC = "rtc/live_view/switches"
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
MARKER_SIZE_M = 0.02


def path_topic(arm: str, path: str) -> str:
    return f"rtc/live_view/{arm}/{PATH_TOPICS[path]}"


class LiveViewNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(topics.LIVE_VIEW_NODE, **kwargs)
        p = declare_table(self, LIVE_VIEW_PARAMS)
        check_node_overrides(self.get_name(), self._parameters, self._parameter_overrides, sys.argv)
        if reasons := refusals(LIVE_VIEW_PARAMS, p):
            raise ValueError("; ".join(reasons))
        rate = p["publish_rate_hz"]
        names = tuple(p["action_names"])
        arms = ARM_PREFIXES[: len(names) // 7]
        self.view = LiveView(LiveViewConfig(names=names, arms=arms, dt_s=1.0 / p["action_rate_hz"],
                                            executed_window_s=p["executed_window_s"]))  # fmt: skip
        self.frame_id = p["frame_id"]
        self.arms = arms
        self._path_pubs = {(a, k): self.create_publisher(Path, path_topic(a, k), 1) for a in arms for k in PATH_TOPICS}
        self._marker_pub = self.create_publisher(MarkerArray, SWITCH_TOPIC, LATCHED)
        self.create_subscription(JointTrajectory, topics.CHUNK, self._on_chunk, 10)
        self.create_subscription(Header, topics.ACTIVE_CHUNK, lambda m: self.view.set_active(stamp_to_s(m.stamp)),
                                 LATCHED)  # fmt: skip
        self.create_subscription(DiagnosticStatus, topics.SWITCH_EVENTS, self._on_switch, 50)
        self.create_subscription(JointState, topics.ROBOT_STATE, self._on_state, 10)
        self.create_timer(1.0 / rate, self._publish)

    def _on_chunk(self, msg: JointTrajectory) -> None:
        chunk = msg_to_chunk(msg)
        if chunk.names == self.view.config.names and chunk.actions.ndim == 2 and chunk.actions.shape[0] >= 1:
            self.view.add_chunk(chunk)

    def _on_state(self, msg: JointState) -> None:
        try:
            state = msg_to_state(msg, self.view.config.names)
        except (KeyError, ValueError):
            return
        self.view.add_state(state.stamp_s, state.positions)

    def _on_switch(self, msg: DiagnosticStatus) -> None:
        try:
            sw = SwitchRecord.from_values({kv.key: kv.value for kv in msg.values}, strict=True)
        except (KeyError, ValueError):
            return
        self.view.add_switch(t_switch_s=sw.t_switch_s, t_obs_s=sw.t_obs_s, k_star=sw.k_star, guided_d=sw.guided_d,
                             jump_linear_m=sw.jump_linear_m)  # fmt: skip
        self._publish_markers()

    def _publish(self) -> None:
        stamp = self.get_clock().now().to_msg()
        for i, arm in enumerate(self.arms):
            for name, poses in self.view.paths(i).items():
                msg = Path()
                msg.header.stamp, msg.header.frame_id = stamp, self.frame_id
                msg.poses = [_pose(row, msg.header) for row in poses]
                self._path_pubs[(arm, name)].publish(msg)

    def _publish_markers(self) -> None:
        out = MarkerArray(markers=[Marker(action=Marker.DELETEALL)])
        for n, sw in enumerate(self.view.switches()):
            for i, position in enumerate(sw.positions):
                arm = self.arms[i]
                sphere = _marker(Marker.SPHERE, self.frame_id, f"{arm}/switches", n, position)
                sphere.scale.x = sphere.scale.y = sphere.scale.z = MARKER_SIZE_M
                sphere.color.r, sphere.color.a = 0.9, 0.9
                text = _marker(Marker.TEXT_VIEW_FACING, self.frame_id, f"{arm}/switch_labels", n, position)
                text.pose.position.z += 2 * MARKER_SIZE_M
                text.scale.z = MARKER_SIZE_M
                text.color.r = text.color.g = text.color.b = text.color.a = 1.0
                text.text = f"k*={sw.k_star} d={sw.guided_d} jump={1e3 * sw.jump_linear_m:.1f}mm"
                out.markers += [sphere, text]
        self._marker_pub.publish(out)


def _pose(row, header: Header) -> PoseStamped:
    p = PoseStamped(header=header)
    p.pose.position.x, p.pose.position.y, p.pose.position.z = (float(x) for x in row[:3])
    o = p.pose.orientation
    o.w, o.x, o.y, o.z = (float(x) if math.isfinite(x) else 0.0 for x in row[3:7])
    return p


def _marker(kind: int, frame_id: str, ns: str, marker_id: int, position) -> Marker:
    m = Marker(type=kind, action=Marker.ADD, ns=ns, id=marker_id)
    m.header.frame_id = frame_id
    m.pose.position.x, m.pose.position.y, m.pose.position.z = (float(x) for x in position)
    m.pose.orientation.w = 1.0
    return m


def _make(signals) -> LiveViewNode:
    try:
        return LiveViewNode()
    except ValueError as exc:
        raise NodeExit(EXIT_BAD_INPUT, str(exc)) from None


def main(args: list[str] | None = None) -> int:
    """Run until SIGINT/SIGTERM/SIGHUP or the parent's exit; exit 0 (2: refused parameters)."""
    return run_node(_make, name=topics.LIVE_VIEW_NODE, args=args)


if __name__ == "__main__":
    sys.exit(main())
