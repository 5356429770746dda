"""Safety filter: workspace clamp, speed/acceleration limits, gripper range, intervention counts, finiteness."""

import math

import numpy as np
import pytest

from rtc_controller.action_space import action_names
from rtc_controller.control import so3
from rtc_controller.control.safety import ArmLimits, SafetyConfig, SafetyFilter

DT = 0.001
HOME = np.array([0.5, 0.0, 0.4, 0.0, 0.0, 0.0, 0.04, 0.5, 0.3, 0.4, 0.0, 0.0, 0.0, 0.04])


def make(**limits):
    f = SafetyFilter(SafetyConfig(servo_dt_s=DT, arms=(ArmLimits(**limits), ArmLimits(**limits))))
    f.reset(HOME)
    return f


def run(f, targets):
    out = np.zeros(14)
    outs = []
    for t in targets:
        f.filter(t, out)
        outs.append(out.copy())
    return np.array(outs)


def test_config_validation():
    with pytest.raises(ValueError):
        ArmLimits(workspace_min_m=(0, 0, 0), workspace_max_m=(1, -1, 1))
    with pytest.raises(ValueError):
        ArmLimits(max_linear_speed_m_s=0)
    with pytest.raises(ValueError):
        ArmLimits(gripper_min_m=0.1, gripper_max_m=0.05)
    with pytest.raises(ValueError):
        SafetyConfig(servo_dt_s=0)


def test_smooth_target_within_limits_passes_through_unchanged():
    f = make()
    t = np.arange(2000) * DT
    targets = np.repeat(HOME[None], len(t), 0)
    targets[:, 0] += 0.05 * (1 - np.cos(2 * t))  # peak 0.1 m/s, 0.2 m/s²
    targets[:, 5] += 0.2 * (1 - np.cos(2 * t))
    outs = run(f, targets)
    np.testing.assert_allclose(outs, targets, atol=1e-6)
    assert f.counters.total == 0


def test_step_is_rate_limited_with_bounded_speed_and_acceleration():
    f = make()
    target = HOME.copy()
    target[0] += 0.3  # a 30 cm jump
    outs = run(f, [target] * 3000)
    x = outs[:, 0]
    v = np.diff(np.r_[HOME[0], x]) / DT
    a = np.diff(np.r_[0.0, v]) / DT
    assert np.max(np.abs(v)) <= 1.0 + 1e-9
    assert np.max(np.abs(a)) <= 1.5 + 1e-6
    assert x[0] - HOME[0] < 1e-5  # no jump on the first tick
    assert x[-1] == pytest.approx(HOME[0] + 0.3, abs=2e-3)  # arrives (≈0.9 s at 1.5 m/s²)
    assert np.max(x) <= HOME[0] + 0.3 + 5e-3  # negligible overshoot
    assert f.counters.interventions["linear"] > 100


def test_angular_speed_limit_and_short_arc():
    f = make(max_angular_acc_rad_s2=1000.0)
    target = HOME.copy()
    target[3:6] = [0.0, 0.0, 1.0]  # 1 rad about z
    outs = run(f, [target] * 400)
    q = so3.rotvec_to_quat(outs[:, 3:6])
    rate = so3.angle_between(q[1:], q[:-1]) / DT
    assert np.max(rate) <= math.radians(300) + 1e-6
    assert so3.angle_between(q[-1], so3.rotvec_to_quat(target[3:6])) < 1e-3


def test_workspace_and_gripper_range_are_clamped():
    f = make(workspace_min_m=(0.3, -0.5, 0.1), workspace_max_m=(0.6, 0.5, 0.8), gripper_max_m=0.08)
    target = HOME.copy()
    target[0] = 2.0  # far outside x_max
    target[6] = 0.5  # wider than the gripper
    outs = run(f, [target] * 3000)
    assert np.max(outs[:, 0]) <= 0.6 + 1e-12
    assert outs[-1, 0] == pytest.approx(0.6, abs=1e-3)
    assert np.max(outs[:, 6]) <= 0.08 + 1e-12
    assert f.counters.interventions["workspace"] == 3000
    assert f.counters.interventions["gripper_range"] == 3000


def test_non_finite_target_never_reaches_the_output():
    f = make()
    bad = HOME.copy()
    bad[2] = np.nan
    bad[9] = np.inf
    outs = run(f, [bad] * 10)
    assert np.all(np.isfinite(outs))
    np.testing.assert_allclose(outs[-1], HOME, atol=1e-12)
    assert f.counters.interventions["non_finite"] == 10


def test_joint_space_limits_each_joint():
    names = action_names("joint")
    f = SafetyFilter(SafetyConfig(servo_dt_s=DT, kind="joint", arms=(ArmLimits(), ArmLimits())))
    f.reset(np.full(16, 0.04))
    target = np.full(16, 0.04)
    target[0] = 1.0
    out = np.zeros(16)
    xs = []
    for _ in range(500):
        f.filter(target, out)
        xs.append(out[0])
    v = np.diff(np.r_[0.04, xs]) / DT
    assert len(names) == 16 and np.max(np.abs(v)) <= 1.0 + 1e-9
    assert f.counters.interventions["joint"] > 0


def test_filter_requires_reset():
    f = SafetyFilter(SafetyConfig(servo_dt_s=DT))
    with pytest.raises(RuntimeError):
        f.filter(HOME, np.zeros(14))
    with pytest.raises(ValueError):
        f.reset(np.full(14, np.nan))


def test_stopping_target_brakes_without_return():
    f = make()
    target = HOME.copy()
    target[0] += 1.0
    run(f, [target] * 400)  # moving at speed
    assert f.speed[0] > 0.3
    stop = f.stopping_target()
    outs = run(f, [stop] * 1500)
    x = outs[:, 0]
    v = np.diff(x) / DT
    assert np.all(v >= -1e-3)  # never turns back (beyond float noise)
    assert x[-1] == pytest.approx(stop[0], abs=2e-3)
    assert np.max(np.abs(np.diff(v))) / DT <= 1.5 + 1e-6
