"""RDK 1.9 driver cases; run by test_flexiv_drivers.py in a subprocess with PYTHONPATH=.venv/flexivrdk-1.9 so
that the stand-ins use the real flexivrdk 1.9.4.1 data classes (Mode, RobotStates, GripperStates)."""

import threading
import time

import flexivrdk
import numpy as np
import pytest
from flexiv_standins import make_standin

from rtc_controller.robots.base import DriverError
from rtc_controller.robots.flexiv_rdk1 import FlexivRdk1Config, FlexivRdk1Driver

SNS = ("Rizon4s-123456", "Rizon4s-123457")


def test_running_against_the_19_wheel():
    assert flexivrdk.__version__.startswith("1.9")
    assert not hasattr(flexivrdk, "JointGroup")


def make(**kw):
    rdk = make_standin(flexivrdk, 1)
    cfg = dict(serial_numbers=SNS, connect_timeout_s=1.0)
    cfg.update(kw)
    return FlexivRdk1Driver(FlexivRdk1Config(**cfg), rdk=rdk), rdk


def test_config_validation():
    with pytest.raises(ValueError):
        FlexivRdk1Config(serial_numbers=SNS, command_rate_hz=2000)
    with pytest.raises(ValueError):
        FlexivRdk1Config(serial_numbers=SNS, max_linear_speed_m_s=0)


def test_startup_enables_and_switches_to_nrt_cartesian():
    d, rdk = make()
    rdk.Robot.fault_at_connect = True
    d.connect()
    for robot in rdk.Robot.instances:
        assert [c[0] for c in robot.calls] == ["ClearFault", "Enable", "SwitchMode"]
        assert robot.calls[-1][1] == flexivrdk.Mode.NRT_CARTESIAN_MOTION_FORCE


def test_sends_at_the_configured_rate_with_caps():
    d, rdk = make(command_rate_hz=250.0, servo_rate_hz=1000.0, max_linear_speed_m_s=0.4)
    d.connect()
    state = np.zeros(14)
    d.read_state(state)
    for i in range(100):
        cmd = state.copy()
        cmd[0] += 1e-4 * i
        d.command(cmd)
    left, right = rdk.Robot.instances
    assert len(left.sends) == 25 and len(right.sends) == 25  # every 4th tick
    pose, caps, _ = left.sends[-1]
    assert caps[0] == pytest.approx(0.4)
    assert pose[0] == pytest.approx(state[0] + 1e-4 * 99)
    back = np.zeros(14)
    d.read_state(back)
    np.testing.assert_allclose(back[:6], (state + np.r_[1e-4 * 99, np.zeros(13)])[:6], atol=1e-12)


def test_joint_space_uses_send_joint_position():
    d, rdk = make(kind="joint")
    d.connect()
    state = np.zeros(16)
    d.read_state(state)
    d.command(state)
    assert rdk.Robot.instances[0]._mode == flexivrdk.Mode.NRT_JOINT_POSITION
    assert len(rdk.Robot.instances[0].sends) == 1


def test_gripper_move_on_worker_thread_only_on_change():
    d, rdk = make(gripper_names=("Flexiv-GN01", "Flexiv-GN01"))
    d.connect()
    state = np.zeros(14)
    d.read_state(state)
    for _ in range(50):
        cmd = state.copy()
        cmd[6] = 0.07
        d.command(cmd)
    time.sleep(0.1)
    g_left = d._grippers[0]
    assert len(g_left.moves) == 1 and g_left.moves[0][3] != threading.get_ident()
    assert len(d._grippers[1].moves) == 0  # right width unchanged (0.04 in the stand-in state)
    d.close()


def test_fault_and_lost_connection():
    d, rdk = make()
    d.connect()
    state = np.zeros(14)
    d.read_state(state)
    rdk.Robot.instances[1].inject_fault()
    assert d.read_state(state) is False
    with pytest.raises(DriverError):
        d.command(state)
    assert d.clear_fault()
    rdk.Robot.instances[0].disconnect()
    with pytest.raises(DriverError):
        d.read_state(state)
