"""Simulated arms: second-order tracking, speed caps, noise, fault injection, lost connection."""

import math

import numpy as np
import pytest

from rtc_controller.geometry import so3
from rtc_controller.robots.base import ArmDriver, DriverError
from rtc_controller.robots.sim import SimConfig, SimDriver, home_state

from executor_setup import FakeClock


def make(**kw):
    clock = FakeClock()
    d = SimDriver(SimConfig(**kw), clock=clock)
    d.connect()
    return d, clock


def step(d, clock, cmd, seconds, dt=0.001):
    out = np.zeros(len(cmd))
    xs = []
    for _ in range(round(seconds / dt)):
        clock.t += dt
        d.command(cmd)
        d.read_state(out)
        xs.append(d.true_state())
    return np.array(xs)


def test_is_an_arm_driver():
    assert isinstance(SimDriver(), ArmDriver)
    with pytest.raises(ValueError):
        SimConfig(initial_state=(0.0,) * 3)


def test_tracks_a_step_with_speed_cap_and_settles():
    d, clock = make(noise_pos_m=0, noise_rot_rad=0, noise_gripper_m=0)
    home = home_state()
    cmd = home.copy()
    cmd[0] += 0.5
    cmd[3:6] = so3.rotvec_near(so3.quat_to_rotvec(so3.quat_mul(so3.rotvec_to_quat(home[3:6]),
                                                                so3.rotvec_to_quat(np.array([0, 0.3, 0])))), home[3:6])
    cmd[6] = 0.08
    xs = step(d, clock, cmd, 2.0)
    v = np.diff(xs[:, 0]) / 0.001
    assert np.max(np.abs(v)) <= 1.2 + 1e-6
    np.testing.assert_allclose(xs[-1, :3], cmd[:3], atol=1e-3)
    assert so3.angle_between(so3.rotvec_to_quat(xs[-1, 3:6]), so3.rotvec_to_quat(cmd[3:6])) < 1e-3
    assert xs[-1, 6] == pytest.approx(0.08, abs=1e-6)
    np.testing.assert_allclose(xs[-1, 7:], home[7:], atol=1e-9)  # the other arm did not move
    assert np.max(xs[:, 0]) < cmd[0] + 0.01  # critically damped: no large overshoot


def test_sensor_noise_has_the_configured_std():
    d, clock = make(noise_pos_m=1e-3, seed=3)
    out = np.zeros(14)
    samples = []
    for _ in range(2000):
        d.read_state(out)
        samples.append(out[0])
    assert np.std(samples) == pytest.approx(1e-3, rel=0.1)


def test_fault_at_time_stops_following_and_reports():
    d, clock = make(fault_at_s=0.5, noise_pos_m=0)
    cmd = home_state()
    cmd[0] += 0.3
    out = np.zeros(14)
    clock.t += 0.4
    assert d.read_state(out) is True
    clock.t += 0.2
    assert d.read_state(out) is False
    assert d.status().fault
    frozen = d.true_state()
    step(d, clock, cmd, 0.2)
    np.testing.assert_allclose(d.true_state(), frozen)  # commands ignored while faulted
    assert d.commands_while_faulted > 0
    assert d.clear_fault() and d.read_state(out) is True


def test_lost_connection_raises():
    d, clock = make(disconnect_at_s=0.1)
    out = np.zeros(14)
    d.read_state(out)
    clock.t += 0.2
    with pytest.raises(DriverError):
        d.read_state(out)
    with pytest.raises(DriverError):
        d.command(home_state())
    assert not d.status().connected
    assert d.clear_fault() is False


def test_non_finite_command_refused():
    d, _ = make()
    bad = home_state()
    bad[0] = math.nan
    with pytest.raises(DriverError):
        d.command(bad)


def test_joint_space():
    d, clock = make(kind="joint", noise_rot_rad=0, noise_gripper_m=0)
    cmd = home_state("joint")
    cmd[2] += 0.5
    xs = step(d, clock, cmd, 2.0)
    assert xs[-1, 2] == pytest.approx(cmd[2], abs=1e-3)
    assert np.max(np.abs(np.diff(xs[:, 2]))) / 0.001 <= 2.0 + 1e-6
