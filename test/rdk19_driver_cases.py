"""RDK 1.9 driver cases; run by test_flexiv_drivers.py in a subprocess with PYTHONPATH=.venv/flexivrdk-1.9 so that
the stand-ins use the real flexivrdk 1.9.4.1 data classes (Mode, RobotStates, RobotInfo, GripperParams, ...)."""

import math
import time

import flexivrdk
import numpy as np
import pytest
from executor_setup import FakeClock
from flexiv_standins import make_standin

from rtc_controller.robots.base import DriverError
from rtc_controller.robots.flexiv_rdk1 import FlexivRdk1Config, FlexivRdk1Driver

SNS = ("Rizon4s-123456", "Rizon4s-123457")
SERVO_DT = 0.001


def make(rdk_options=None, **kw):
    rdk = make_standin(flexivrdk, 1, **(rdk_options or {}))
    cfg = dict(serial_numbers=SNS, connect_timeout_s=1.0)
    cfg.update(kw)
    return FlexivRdk1Driver(FlexivRdk1Config(**cfg), rdk=rdk), rdk


def test_running_against_the_19_wheel():
    assert flexivrdk.__version__.startswith("1.9")
    assert not hasattr(flexivrdk, "JointGroup")


def test_config_validation():
    with pytest.raises(ValueError, match=r"command_rate_hz must be in \[1, 100\] Hz"):
        FlexivRdk1Config(serial_numbers=SNS, command_rate_hz=250)
    with pytest.raises(ValueError, match="must divide servo_rate_hz"):
        FlexivRdk1Config(serial_numbers=SNS, command_rate_hz=30)
    with pytest.raises(ValueError, match="Enlight/MICO robot: those need flexiv_rdk: 2"):
        FlexivRdk1Config(serial_numbers=("Enlight-LL-123456",))
    with pytest.raises(ValueError):
        FlexivRdk1Config(serial_numbers=SNS, max_linear_speed_m_s=0)


def test_startup_enables_zeroes_and_switches_to_nrt_cartesian_with_contact_limits():
    d, rdk = make({"fault_at_connect": True}, tool_names=("Flexiv-GN01", ""), max_contact_wrench=(20.0,) * 3 + (3.0,) * 3)
    d.connect()
    for sn in SNS:
        side = rdk.sides[sn]
        names = [c[0] for c in side.calls]
        assert names[:2] == ["ClearFault", "Enable"] and "ExecutePrimitive" in names
        assert side.mode == flexivrdk.Mode.NRT_CARTESIAN_MOTION_FORCE
        assert side.arms[None].ft_offset == [0.0] * 6 and side.arms[None].contact_limit == [20.0] * 3 + [3.0] * 3
    assert rdk.sides[SNS[0]].arms[None].tool == "Flexiv-GN01" and rdk.sides[SNS[1]].arms[None].tool == "Flange"


def test_model_and_generation_mismatch_are_refused():
    rdk = make_standin(flexivrdk, 1)
    rdk.__version__ = "2.1.0"
    with pytest.raises(DriverError, match=r"needs flexivrdk 1\.x \(Enlight/MICO robots need flexiv_rdk: 2"):
        FlexivRdk1Driver(FlexivRdk1Config(serial_numbers=SNS), rdk=rdk).connect()


def drive(d, clock, x0, speed, seconds):
    """Command a straight line at ``speed`` [m/s] in x every servo tick; returns the lag of the robot [m]."""
    state = np.zeros(14)
    d.read_state(state)
    cmd = state.copy()
    lag = []
    for k in range(round(seconds / SERVO_DT)):
        clock.t += SERVO_DT
        cmd[0] = x0 + speed * k * SERVO_DT
        d.command(cmd)
        d.read_state(state)
        lag.append(cmd[0] - state[0])
    return np.array(lag), state


def test_nrt_at_100_hz_with_the_commands_velocity_and_the_limit_caps():
    clock = FakeClock(1000.0)
    d, rdk = make({"clock": clock}, command_rate_hz=100.0, max_linear_speed_m_s=0.4, max_linear_acc_m_s2=1.5)
    d.connect()
    left = rdk.sides[SNS[0]]
    n0 = len(left.sends)
    lag, _ = drive(d, clock, 0.45, 0.3, 1.0)
    assert len(left.sends) - n0 == 100 and left.overrate_sends == 0  # every 10th tick of 1 kHz
    pose, vel, caps = left.sends[-1]
    assert vel[0] == pytest.approx(0.3, rel=1e-6) and vel[1:] == pytest.approx([0.0] * 5, abs=1e-9)
    assert caps == pytest.approx([0.4, math.radians(300), 1.5, 5.0])
    assert np.max(np.abs(lag[800:])) < 0.002  # after the start transient the re-planning robot tracks within 2 mm


def test_zero_target_velocity_makes_every_waypoint_a_planned_stop():
    clock = FakeClock(1000.0)
    d, rdk = make({"clock": clock}, command_rate_hz=100.0, target_velocity=False, max_linear_acc_m_s2=1.5)
    d.connect()
    lag, _ = drive(d, clock, 0.45, 0.3, 1.0)
    assert rdk.sides[SNS[0]].sends[-1][1] == [0.0] * 6
    assert np.mean(lag[500:]) > 0.02  # trails by about v²/(2a) = 3 cm: why the driver sends the velocity


def test_angular_target_velocity_is_in_the_world_frame():
    d, _ = make()
    from rtc_controller.action_space import arm_slices
    from rtc_controller.robots.flexiv_rdk1 import world_twist

    sl = arm_slices("cartesian", 2)[0]
    prev = [0.0] * 14
    prev[3] = math.pi / 2  # rotated 90° about x
    cur = list(prev)
    cur[3:6] = [math.pi / 2, 0.0, 0.0]
    from rtc_controller.geometry import so3

    q = so3.quat_mul_s(so3.rotvec_to_quat_s((math.pi / 2, 0.0, 0.0)), so3.rotvec_to_quat_s((0.0, 0.0, 0.001)))
    cur[3:6] = so3.quat_to_rotvec_s(q)  # turned 1 mrad about the body z axis = world −y
    tw = world_twist(prev, cur, sl, 0.001)
    assert tw[3:] == pytest.approx([0.0, -1.0, 0.0], abs=1e-6)


def test_stop_stops_every_robot_and_names_the_one_that_failed():
    d, rdk = make()
    d.connect()
    rdk.sides[SNS[0]].fail_stop = True
    with pytest.raises(DriverError, match=r"stop failed on Rizon4s-123456 \(left arm\): Stop: failed to stop"):
        d.stop()
    assert rdk.sides[SNS[1]].mode == flexivrdk.Mode.IDLE


def test_joint_space_with_an_external_axis():
    d, rdk = make({"ext_axes": 1}, kind="joint")
    d.connect()
    q_min, q_max = d.joint_limits()
    assert q_min == [[-2.7] * 7] * 2  # the external axis' limits are not the arm's
    state = np.zeros(16)
    d.read_state(state)
    assert state[0:7] == pytest.approx([0.0, -0.7, 0.0, 1.57, 0.0, 0.7, 0.0])  # arm joints, not the axis
    for _ in range(10):
        state[1] += 0.001
        d.command(state)
    q, max_vel = rdk.sides[SNS[0]].sends[-1]
    assert len(q) == 8 and q[0] == 0.25 and len(max_vel) == 8  # external axis held where it was


def test_gripper_from_the_gripper_process():
    d, rdk = make(gripper_names=("Flexiv-GN01", "Flexiv-GN01"))
    d.connect()
    try:
        state = np.zeros(14)
        d.read_state(state)
        cmd = state.copy()
        cmd[6] = 0.07
        for _ in range(20):
            d.command(cmd)
        end = time.monotonic() + 5.0
        while time.monotonic() < end and not (d.read_state(state) and abs(state[6] - 0.07) < 1e-9):
            time.sleep(0.01)
        assert state[6] == pytest.approx(0.07) and state[13] == pytest.approx(0.04)
        assert dict(d.status().details)["gripper_commands_sent"] == "1"
    finally:
        d.close()


def test_fault_lost_connection_and_reconnect():
    d, rdk = make()
    d.connect()
    state = np.zeros(14)
    d.read_state(state)
    rdk.sides[SNS[1]].inject_fault("joint 3 torque limit")
    assert d.read_state(state) is False
    assert "Rizon4s-123457: MINOR_FAULT (joint 3 torque limit)" in d.status().message
    with pytest.raises(DriverError, match="not operational"):
        for _ in range(10):  # the next send tick (100 Hz)
            d.command(state)
    assert d.clear_fault()
    rdk.instances[0].disconnect()
    with pytest.raises(DriverError):
        d.read_state(state)
    assert d.clear_fault() and d.read_state(state)
