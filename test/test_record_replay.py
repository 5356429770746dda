"""A bag freshly recorded through the real recorder replays without flags: chunks published before the recorder's
first robot state are skipped with a count, and the recorded (latched) policy identity picks the policy."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from rtc_controller import topics
from rtc_controller.tools import replay_cli

H, DT_S, D, EVERY, N_STEPS, FIRST_STATE = 8, 0.02, 2, 4, 24, 10
PROC_TIMEOUT_S = 60.0

PUBLISHER = textwrap.dedent(
    f"""
    import sys, time
    import numpy as np
    import rclpy
    from rclpy.qos import DurabilityPolicy, QoSProfile
    from sensor_msgs.msg import JointState
    from std_msgs.msg import String
    from trajectory_msgs.msg import JointTrajectory
    from rtc_controller.action_space import action_names
    from rtc_controller.policy.identity import PolicyIdentity
    from rtc_controller.app.policies import make_policy
    from rtc_controller.ros import conversions

    rclpy.init()
    node = rclpy.create_node("fake_rig")
    names = list(action_names("cartesian"))
    state0 = make_policy("sim", horizon={H}, dt_s={DT_S}).fake_observation().state
    ident = node.create_publisher(String, "{topics.POLICY_IDENTITY}",
                                  QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL))
    ident.publish(String(data=PolicyIdentity("sim").to_json()))
    chunk = node.create_publisher(JointTrajectory, "{topics.CHUNK}", 50)
    state = node.create_publisher(JointState, "{topics.ROBOT_STATE}", 50)
    deadline = time.monotonic() + 20.0
    while chunk.get_subscription_count() == 0 or state.get_subscription_count() == 0:
        if time.monotonic() > deadline:
            sys.exit("recorder never subscribed")
        rclpy.spin_once(node, timeout_sec=0.05)
    time.sleep(1.0)  # the recorder re-subscribes the latched topic with the publisher's QoS
    for k in range({N_STEPS}):
        t = 50.0 + k * {DT_S}
        if k >= {FIRST_STATE}:  # states reach the recorder late, as in a fresh bringup
            state.publish(conversions.state_to_msg(state0, names, t))
        if k % {EVERY} == 0:
            a = np.tile(state0, ({H}, 1))
            chunk.publish(conversions.chunk_to_msg(a, names, t, {DT_S}, guided_d={D}))
        time.sleep(0.005)
    time.sleep(1.0)
    print("published", flush=True)
    node.destroy_node()
    rclpy.shutdown()
    """
)


@pytest.mark.dds
@pytest.mark.slow
def test_a_fresh_recording_replays_without_flags(tmp_path, capsys):
    out = tmp_path / "bag"
    recorder = subprocess.Popen([sys.executable, "-m", "rtc_controller.ros.recorder", "--output", str(out)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        publisher = subprocess.run([sys.executable, "-c", PUBLISHER], capture_output=True, text=True,
                                   timeout=PROC_TIMEOUT_S)  # fmt: skip
        assert publisher.returncode == 0, publisher.stderr[-2000:]
        recorder.send_signal(2)
        _, stderr = recorder.communicate(timeout=PROC_TIMEOUT_S)
        assert recorder.returncode == 0, stderr[-2000:]
    finally:
        if recorder.poll() is None:
            recorder.kill()
            recorder.wait(timeout=10)
    capsys.readouterr()
    code = replay_cli.main([str(out), "-o", str(tmp_path / "replay"), "--no-progress", "--figures", "0"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "replaying with policy sim (as recorded)" in printed.out
    chunks_before = len(range(EVERY, FIRST_STATE, EVERY))  # switches 1, 2: t_obs before the first state
    assert f"skipped {chunks_before} chunk(s) recorded before the first robot state" in printed.out
    assert (tmp_path / "replay" / "metrics.csv").exists()
