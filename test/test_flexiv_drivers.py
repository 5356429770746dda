"""Flexiv drivers against stand-in robots that check arguments like the real binding, built on the REAL flexivrdk
data classes (2.1.0 in this process; the 1.9.4.1 cases run in a subprocess with that wheel on PYTHONPATH)."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

flexivrdk = pytest.importorskip("flexivrdk")  # installed by `make setup` (the [flexiv] extra)

from flexiv_standins import make_standin  # noqa: E402

from rtc_controller.action_space import action_names  # noqa: E402
from rtc_controller.robots.base import ArmDriver, DriverError  # noqa: E402
from rtc_controller.robots.flexiv_rdk2 import FlexivRdk2Config, FlexivRdk2Driver  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RDK19_DIR = ROOT / ".venv" / "flexivrdk-1.9"
SN = "Enlight-L-123456"


def make(**kw):
    rdk = make_standin(flexivrdk, 2)
    cfg = dict(serial_numbers=(SN,), connect_timeout_s=1.0)
    cfg.update(kw)
    return FlexivRdk2Driver(FlexivRdk2Config(**cfg), rdk=rdk), rdk


def test_is_an_arm_driver_and_config_validation():
    d, _ = make()
    assert isinstance(d, ArmDriver)
    with pytest.raises(ValueError):
        FlexivRdk2Config(serial_numbers=())
    with pytest.raises(ValueError):
        FlexivRdk2Config(serial_numbers=(SN, SN, SN))
    with pytest.raises(ValueError):
        FlexivRdk2Config(serial_numbers=(SN,), timeliness_failure_limit_pct=150)


def test_startup_sequence_clears_fault_servos_on_and_switches_to_rt_cartesian():
    d, rdk = make()
    rdk.Robot.fault_at_connect = True
    d.connect()
    robot = rdk.Robot.instances[0]
    names = [c[0] for c in robot.calls]
    assert names == ["ClearFault", "ServoOn", "SwitchMode", "SetTimelinessFailureLimit"]
    assert robot.calls[2][1] == flexivrdk.Mode.RT_CARTESIAN_MOTION_FORCE
    assert robot.timeliness_pct == 2.0
    assert d.status().enabled and not d.status().fault


def test_waits_for_operational_with_a_timeout():
    d, rdk = make(connect_timeout_s=0.2)
    rdk.Robot.estop_pressed = True
    with pytest.raises(DriverError):
        d.connect()


def test_streams_both_arms_as_quaternion_poses_and_reads_them_back():
    d, rdk = make()
    d.connect()
    robot = rdk.Robot.instances[0]
    state = np.zeros(14)
    assert d.read_state(state)
    cmd = state.copy()
    cmd[0] += 0.01
    cmd[3:6] = [0.0, 0.0, 0.5]  # 0.5 rad about z
    cmd[7 + 2] -= 0.02
    d.command(cmd)
    pose = robot.last_cmds[flexivrdk.JointGroup.ARM_1]
    np.testing.assert_allclose(pose[3:], [np.cos(0.25), 0, 0, np.sin(0.25)], atol=1e-12)  # [qw, qx, qy, qz]
    back = np.zeros(14)
    d.read_state(back)
    np.testing.assert_allclose(back[:6], cmd[:6], atol=1e-12)
    np.testing.assert_allclose(back[7:13], cmd[7:13], atol=1e-12)
    assert robot.stream_count == 1


def test_rotation_state_does_not_flip_across_pi():
    d, rdk = make()
    d.connect()
    state = np.zeros(14)
    d.read_state(state)  # home: 180° about x
    for angle in (np.pi - 0.01, np.pi + 0.01):  # cross the wrap
        cmd = state.copy()
        cmd[3:6] = [angle, 0, 0]
        d.command(cmd)
        d.read_state(state)
        assert state[3] > 3.0  # stays on the +π side, no jump to −π


def test_gripper_moves_on_a_worker_thread_only_on_meaningful_change():
    d, rdk = make(gripper_names=("Flexiv-GN01", "Flexiv-GN01"), gripper_min_change_m=0.002)
    d.connect()
    state = np.zeros(14)
    d.read_state(state)
    gripper = d._grippers[0]
    cmd = state.copy()
    for i in range(200):
        cmd[6] = 0.06 + 1e-5 * (i % 3)  # jitter below the threshold
        cmd[13] = 0.04
        d.command(cmd)
    time.sleep(0.1)
    arm1 = [m for m in gripper.moves if m[0] == flexivrdk.JointGroup.ARM_1]
    assert len(arm1) == 1 and arm1[0][1] == pytest.approx(0.06, abs=1e-4)
    assert all(m[4] != threading.get_ident() for m in gripper.moves)  # never on the calling (servo) thread
    d.read_state(state)
    assert state[6] == pytest.approx(arm1[0][1])  # the gripper's own width is reported
    d.close()


def test_fault_is_reported_and_streaming_refused_then_cleared():
    d, rdk = make()
    d.connect()
    robot = rdk.Robot.instances[0]
    state = np.zeros(14)
    d.read_state(state)
    robot.inject_fault()
    assert d.read_state(state) is False
    with pytest.raises(DriverError):
        d.command(state)
    assert d.clear_fault() is True
    assert d.read_state(state) is True
    d.command(state)
    robot.disconnect()
    with pytest.raises(DriverError):
        d.read_state(state)


def test_joint_space_uses_rt_joint_position():
    d, rdk = make(kind="joint")
    d.connect()
    robot = rdk.Robot.instances[0]
    assert robot._mode == flexivrdk.Mode.RT_JOINT_POSITION
    state = np.zeros(16)
    d.read_state(state)
    state[0] += 0.1
    d.command(state)
    assert robot.last_cmds[flexivrdk.JointGroup.ARM_1][0] == pytest.approx(state[0])


def test_one_robot_per_arm():
    rdk = make_standin(flexivrdk, 2)
    rdk.Robot.single_arm = True
    d = FlexivRdk2Driver(
        FlexivRdk2Config(serial_numbers=(SN, "Enlight-L-123457"), joint_groups=("ARM_1", "ARM_1")), rdk=rdk
    )
    d.connect()
    state = np.zeros(14)
    d.read_state(state)
    d.command(state)
    assert [r.stream_count for r in rdk.Robot.instances] == [1, 1]


def test_wrong_rdk_generation_is_refused_with_a_reason():
    if not RDK19_DIR.exists():
        pytest.skip("flexivrdk 1.9 wheel folder missing (make setup installs it)")
    code = (
        "import flexivrdk\n"
        "from rtc_controller.robots.flexiv_rdk2 import FlexivRdk2Config, FlexivRdk2Driver\n"
        "from rtc_controller.robots.base import DriverError\n"
        "try:\n"
        "    FlexivRdk2Driver(FlexivRdk2Config(serial_numbers=('Rizon4s-123456',)), rdk=flexivrdk).connect()\n"
        "except DriverError as e:\n"
        "    print('REFUSED', e)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(RDK19_DIR))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert "REFUSED" in out.stdout and "lacks" in out.stdout, out.stderr


def test_executor_with_rdk2_standin_streams_every_tick_and_stops_on_fault():
    from rtc_controller.control.delay_estimator import DelayEstimatorConfig
    from rtc_controller.control.executor import Executor, ExecutorConfig
    from rtc_controller.control.loop import LoopConfig
    from rtc_controller.control.safety import SafetyConfig
    from rtc_controller.control.timeline import TimelineConfig

    d, rdk = make()
    cfg = ExecutorConfig(
        timeline=TimelineConfig(names=action_names(), action_rate_hz=50, max_horizon=50),
        delay=DelayEstimatorConfig(dt_s=0.02, horizon=50, execution_horizon=25),
        safety=SafetyConfig(servo_dt_s=0.001),
        loop=LoopConfig(rate_hz=1000),
    )
    ex = Executor(cfg, d)
    ex.start()
    try:
        robot = rdk.Robot.instances[0]
        time.sleep(0.3)
        n = robot.stream_count
        assert n > 150 and robot.stream_threads == {ex.loop._thread.ident}
        robot.inject_fault()
        time.sleep(0.1)
        assert ex.mode == "faulted"
        assert robot.calls[-1][0] == "Stop"
        m = robot.stream_count
        time.sleep(0.05)
        assert robot.stream_count == m
    finally:
        ex.shutdown(ramp_down_s=0.0)


@pytest.mark.slow
def test_rdk19_driver_cases_with_the_real_19_wheel():
    if not RDK19_DIR.exists():
        pytest.skip("flexivrdk 1.9 wheel folder missing (make setup installs it)")
    env = dict(os.environ, PYTHONPATH=str(RDK19_DIR))
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(ROOT / "test" / "rdk19_driver_cases.py")],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert " passed" in out.stdout
