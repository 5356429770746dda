"""The live view: per-arm paths from chunks, the active stamp, switches and states (core), then the node over DDS
against the real sim rig (executor + inference node)."""

import numpy as np
import pytest

from rtc_controller.action_space import action_names
from rtc_controller.control.chunk import Chunk
from rtc_controller.control.live_view import LiveView, LiveViewConfig, poses

NAMES = action_names()
DT = 0.02
H = 10


def _chunk(t_obs, offset, d=None):
    a = np.zeros((H, 14))
    a[:, 0] = offset + np.arange(H) * 0.01  # left x advances 1 cm per step
    a[:, 7] = 0.5  # right x
    a[:, 3] = 0.1  # left rx
    return Chunk(NAMES, a, t_obs, DT, guided_d=d)


def test_paths_are_the_seed_figure_per_arm():
    view = LiveView(LiveViewConfig(names=NAMES, arms=("left", "right"), dt_s=DT, executed_window_s=1.0))
    assert all(p.shape == (0, 7) for p in view.paths(0).values())
    view.add_chunk(_chunk(10.0, 0.0))
    view.set_active(10.0)
    view.add_chunk(_chunk(10.0 + 3 * DT, 0.1, d=2))  # published, not yet executed: nothing changes
    assert view.paths(0)["active"][:, 0].tolist() == pytest.approx(np.arange(H) * 0.01)
    view.set_active(10.0 + 3 * DT)
    p = view.paths(0)
    assert p["active"][:, 0].tolist() == pytest.approx(0.1 + np.arange(H) * 0.01)
    assert p["frozen"].shape == (2, 7) and np.allclose(p["frozen"], p["active"][:2]), "the guided d carried by the chunk"
    # the previous chunk over the overlap: its actions from the active t_obs on (m = 3)
    assert p["previous"][:, 0].tolist() == pytest.approx(np.arange(3, H) * 0.01)
    np.testing.assert_allclose(p["active"][0, 3:], [np.cos(0.05), np.sin(0.05), 0, 0])  # quaternion w, x, y, z
    assert view.paths(1)["active"][:, 0].tolist() == pytest.approx([0.5] * H), "the right arm's own columns"
    # a switch marker at the new chunk's a_{k*}, per arm
    view.add_switch(t_switch_s=10.1, t_obs_s=10.0 + 3 * DT, k_star=2, guided_d=2, jump_linear_m=0.004)
    (sw,) = view.switches()
    np.testing.assert_allclose(sw.positions, [[0.12, 0, 0], [0.5, 0, 0]])
    view.add_switch(t_switch_s=10.2, t_obs_s=99.0, k_star=2, guided_d=2, jump_linear_m=0.0)  # unknown chunk: ignored
    assert len(view.switches()) == 1


def test_executed_path_keeps_a_window_and_the_frozen_prefix_falls_back_to_k_star():
    view = LiveView(LiveViewConfig(names=NAMES, arms=("left", "right"), dt_s=DT, executed_window_s=1.0))
    for k in range(100):
        state = np.zeros(14)
        state[0] = k * 1e-3
        view.add_state(k * 0.05, state)
    executed = view.paths(0)["executed"]
    assert executed.shape[0] == 21 and executed[-1, 0] == pytest.approx(0.099)
    view.add_chunk(_chunk(1.0, 0.0))  # no guided d in the chunk
    view.set_active(1.0)
    view.add_switch(t_switch_s=1.1, t_obs_s=1.0, k_star=4, guided_d=-1, jump_linear_m=0.0)
    assert view.paths(0)["frozen"].shape == (4, 7)
    with pytest.raises(ValueError):
        view.add_chunk(Chunk(tuple(reversed(NAMES)), np.zeros((H, 14)), 2.0, DT))
    assert poses(np.zeros((1, 14)), 1).shape == (1, 7)


@pytest.mark.dds
@pytest.mark.slow
def test_live_view_node_publishes_paths_of_the_running_rig(tmp_path):
    import rclpy
    from nav_msgs.msg import Path
    from visualization_msgs.msg import MarkerArray

    from rtc_controller import topics
    from rtc_controller.app.bringup import start_rig
    from rtc_controller.ros.live_view_node import SWITCH_TOPIC, path_topic
    from test_inference_node import _spin_for

    rig = start_rig("config/sim.yaml", overrides={"executor_node": {"horizon": 100, "execution_horizon": 50}},
                    nodes=(topics.EXECUTOR_NODE, topics.INFERENCE_NODE, topics.LIVE_VIEW_NODE), log_dir=tmp_path)
    rclpy.init()
    node = rclpy.create_node("live_view_test")
    got = {}
    for arm in ("left", "right"):
        for path in ("active", "previous", "frozen", "executed"):
            node.create_subscription(Path, path_topic(arm, path), lambda m, k=(arm, path): got.__setitem__(k, m), 10)
    markers = []
    node.create_subscription(MarkerArray, SWITCH_TOPIC, markers.append, 10)
    try:
        def complete():
            return len(got) == 8 and all(len(m.poses) > 0 for m in got.values()) and len(markers) >= 2

        ok = _spin_for(node, 240, until=lambda: complete() or bool(rig.dead()))
        logs = {n: p.read_text()[-2000:] for n, p in rig.log_paths.items()}
        assert ok and not rig.dead(), f"{ {k: len(m.poses) for k, m in got.items()} } {rig.dead()} {logs}"
        active = got[("left", "active")]
        assert active.header.frame_id == "world" and len(active.poses) == 100
        frozen = got[("left", "frozen")]
        assert 0 < len(frozen.poses) < 50, "the first d actions"
        labels = [m.text for m in markers[-1].markers if m.type == m.TEXT_VIEW_FACING]
        assert labels and all(t.startswith("k*=") for t in labels)
        assert {m.ns for m in markers[-1].markers} >= {"left/switches", "right/switches"}
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        codes = rig.stop()
    assert set(codes.values()) == {0}, codes


def test_rviz_and_foxglove_layouts_show_the_published_topics():
    import json
    from pathlib import Path

    import yaml

    from rtc_controller import topics
    from rtc_controller.ros.live_view_node import PATH_TOPICS, SWITCH_TOPIC, path_topic

    config = Path(__file__).resolve().parents[1] / "config"
    published = {"/" + path_topic(a, p) for a in ("left", "right") for p in PATH_TOPICS} | {"/" + SWITCH_TOPIC}
    rviz = yaml.safe_load((config / "rtc.rviz").read_text())
    displays = rviz["Visualization Manager"]["Displays"]
    assert {d["Topic"]["Value"] for d in displays if "Topic" in d} == published
    assert rviz["Visualization Manager"]["Global Options"]["Fixed Frame"] == "world"
    layout = json.loads((config / "rtc_foxglove_layout.json").read_text())
    panels = layout["configById"]
    assert set(panels["3D!rtc_live_view"]["topics"]) == published
    others = {"/" + topics.MEASURED_DELAY, "/" + topics.INFERENCE_DELAY, "/" + topics.SWITCH_EVENTS, topics.DIAGNOSTICS}
    used = {p["value"].split(".")[0] for p in panels["Plot!rtc_delay"]["paths"]}
    used |= {panels["RawMessages!rtc_switch"]["topicPath"], panels["DiagnosticSummary!rtc_diagnostics"]["topicToRender"]}
    assert used <= others
