"""rtc-bringup: overrides, command lines, consistency warnings, shutdown escalation, and the sim rig over DDS."""

import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from rtc_controller import topics
from rtc_controller.app import bringup
from rtc_controller.app.bringup import (
    Rig,
    check_consistency,
    format_value,
    load_config,
    node_command,
    parse_overrides,
    start_rig,
)

SIM = "config/sim.yaml"
# The sim rig at the seed's setting: the executor must accept H = 100 chunks with s = 50.
EXECUTOR_SEED = {"horizon": 100, "execution_horizon": 50}


def test_parse_overrides_reads_yaml_values():
    out = parse_overrides([
        "inference_node.max_guidance_weight=5", "inference_node.guidance_mode=none", "inference_node.prompt=",
        "executor_node.workspace_min_m=[0.1, 0.2]", "inference_node.publish_unguided=true",
    ])
    assert out == {
        "inference_node": {"max_guidance_weight": 5, "guidance_mode": "none", "prompt": "", "publish_unguided": True},
        "executor_node": {"workspace_min_m": [0.1, 0.2]},
    }
    for bad in ("max_guidance_weight=5", "inference_node.=5", "inference_node.beta", "planner.beta=1"):
        with pytest.raises(ValueError):
            parse_overrides([bad])


def test_format_value_is_what_ros_parses():
    assert [format_value(v) for v in (5, 0.3, True, "stop", "16", [1, 2], ["a", "b"])] == [
        "5", "0.3", "true", "stop", "'16'", "[1, 2]", "[a, b]"]


def test_node_command_uses_the_params_file_then_overrides():
    cmd = node_command("inference_node", SIM, {"max_guidance_weight": 5.0, "guidance_mode": "none"})
    assert cmd[0] == sys.executable and "from rtc_controller.ros.entry import inference_node" in cmd[2]
    i = cmd.index("--ros-args")
    assert cmd[i + 1] == "--params-file" and cmd[i + 2].endswith("config/sim.yaml") and cmd[i + 2].startswith("/")
    assert cmd[i + 3:] == ["-p", "max_guidance_weight:=5.0", "-p", "guidance_mode:=none"]


def test_consistency_warnings():
    sections = {"executor_node": {"horizon": 50, "execution_horizon": 25, "action_rate_hz": 50.0},
                "inference_node": {"horizon": 100, "execution_horizon": 50, "action_rate_hz": 50}}
    warnings = check_consistency(sections)
    assert len(warnings) == 2 and "execution_horizon 50 != executor_node's 25" in warnings[0]
    assert "horizon 100 > executor_node's 50: it would reject every chunk" in warnings[1]
    sections["executor_node"].update(EXECUTOR_SEED)
    assert check_consistency(sections) == []
    # a key left out counts with the node's default (both nodes' s is chunk_timing's 50 unless set)
    del sections["executor_node"]["execution_horizon"]
    sections["inference_node"]["execution_horizon"] = 25
    assert check_consistency(sections) == ["inference_node.execution_horizon 25 != executor_node's 50 (the executor "
                                           "clamps d to its H - s)"]
    del sections["inference_node"]["execution_horizon"]
    assert check_consistency(sections) == [], "the two nodes' defaults fit: one declaration"


def test_config_files_have_both_sections():
    for path in (SIM, "config/rig.yaml"):
        assert {"executor_node", "inference_node"} <= set(load_config(path))


def test_start_rig_refuses_bad_requests_before_starting_anything():
    with pytest.raises(ValueError, match="not started"):
        start_rig(SIM, overrides={"inference_node": {"seed": 1}}, nodes=["executor_node"])
    with pytest.raises(FileNotFoundError):
        start_rig("config/nope.yaml")
    with pytest.raises(SystemExit):
        bringup.main(["--config", SIM, "--set", "nonsense"])


def _child(code):
    """A child that prints "ready" once its signal handlers are installed (code runs first, then the wait)."""
    proc = subprocess.Popen([sys.executable, "-c", f"{code}\nprint('ready', flush=True)\nimport time\ntime.sleep(60)"],
                            start_new_session=True, stdout=subprocess.PIPE, text=True)  # fmt: skip
    return proc


def test_stop_order_keeps_the_recorder_last():
    started = ["recorder", "executor_node", "inference_node", "twin_node", "rtc_live_view"]
    assert bringup.stop_order(started) == ["inference_node", "executor_node", "twin_node", "rtc_live_view", "recorder"]


def test_stop_escalates_sigint_sigterm_sigkill():
    """Each child is signalled only after it said its handlers are in place (a child still starting Python on a
    loaded machine would die of the first SIGINT); the timeouts leave a slow exit time to happen."""
    polite = _child("import signal, sys\nsignal.signal(signal.SIGINT, lambda *a: sys.exit(0))")
    stubborn = _child("import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)")
    deaf = _child("import signal\nfor s in (signal.SIGINT, signal.SIGTERM): signal.signal(s, signal.SIG_IGN)")
    for child in (polite, stubborn, deaf):
        assert child.stdout.readline().strip() == "ready"
    rig = Rig(processes={"inference_node": polite, "executor_node": stubborn, "recorder": deaf})
    start = time.monotonic()
    codes = rig.stop(sigint_timeout_s=3.0, sigterm_timeout_s=3.0)
    assert codes == {"inference_node": 0, "executor_node": -signal.SIGTERM, "recorder": -signal.SIGKILL}
    assert time.monotonic() - start < 60
    assert rig.stop() == codes  # idempotent


# --- the sim rig over DDS -----------------------------------------------------------------------------------


@pytest.mark.dds
@pytest.mark.slow
def test_sim_rig_chunks_flow_and_parameters_are_validated(tmp_path):
    import rclpy
    from std_msgs.msg import Header
    from trajectory_msgs.msg import JointTrajectory

    from test_inference_node import _set_params, _spin_for

    rig = start_rig(SIM, overrides={"executor_node": EXECUTOR_SEED}, log_dir=tmp_path)
    assert rig.warnings == []
    rclpy.init()
    node = rclpy.create_node("bringup_test")
    chunks, active = [], []
    node.create_subscription(JointTrajectory, topics.CHUNK, lambda m: chunks.append(m), 10)
    node.create_subscription(Header, topics.ACTIVE_CHUNK, lambda m: active.append(m), 10)
    try:
        ok = _spin_for(node, 120, until=lambda: len(chunks) >= 4 or bool(rig.dead()))
        logs = {n: p.read_text()[-3000:] for n, p in rig.log_paths.items()}
        assert ok and not rig.dead(), f"no chunks, or a node died: {rig.dead()} {logs}"
        chunk_stamps = lambda: {(m.header.stamp.sec, m.header.stamp.nanosec) for m in chunks}  # noqa: E731
        active_stamps = lambda: {(h.stamp.sec, h.stamp.nanosec) for h in active}  # noqa: E731
        assert _spin_for(node, 20, until=lambda: len(active_stamps() & chunk_stamps()) >= 3), "executor accepts them"
        assert all(m.header.frame_id.startswith("rtc_d=") for m in chunks)
        from test_sros2_policy import check_graph_against_policy

        assert check_graph_against_policy(node) == [], "the SROS2 policy must allow what the nodes use"
        assert all(len(m.points) == 100 and len(m.joint_names) == 14 for m in chunks)
        t = np.array([m.header.stamp.sec + 1e-9 * m.header.stamp.nanosec for m in chunks])
        assert np.all(np.abs(np.diff(t)[1:] - 50 * 0.02) < 0.1), f"one chunk per s·Δt = 1 s: {np.diff(t)}"

        res = _set_params(node, {"max_guidance_weight": 5.0})
        assert res[0].successful
        for name, value in (("max_guidance_weight", -1.0), ("guidance_mode", "foo")):
            res = _set_params(node, {name: value})
            assert not res[0].successful and name in res[0].reason
        n = len(chunks)
        assert _spin_for(node, 20, until=lambda: len(chunks) > n), "still running after the parameter changes"
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        codes = rig.stop()
    assert codes == {"executor_node": 0, "inference_node": 0}, {n: p.read_text()[-3000:] for n, p in rig.log_paths.items()}


@pytest.mark.dds
@pytest.mark.slow
def test_a_recorder_that_fails_stops_the_run(tmp_path):
    """A recording run records or stops: the recorder exiting on its own (here: its bag exists already) stops the
    nodes and rtc-bringup exits 1 saying why."""
    existing = tmp_path / "bag"
    existing.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "rtc_controller.app.bringup", "--config", SIM, "--nodes", "executor_node",
         "--record", str(existing), "--duration", "300", "--log-dir", str(tmp_path / "logs")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "recorder (exit code 2) exited on its own" in proc.stderr
    assert "'executor_node': 0" in proc.stdout, "the executor was stopped cleanly"
