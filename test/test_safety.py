"""Safety filter: workspace clamp, speed/acceleration limits, gripper range, intervention counts, finiteness."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtc_controller.action_space import action_names
from rtc_controller.geometry import so3
from rtc_controller.control.safety import ArmLimits, SafetyConfig, SafetyFilter

DT = 0.001
HOME = np.array([0.5, 0.0, 0.4, 0.0, 0.0, 0.0, 0.04, 0.5, 0.3, 0.4, 0.0, 0.0, 0.0, 0.04])


def make(**limits):
    f = SafetyFilter(SafetyConfig(servo_dt_s=DT, arms=(ArmLimits(**limits), ArmLimits(**limits))))
    f.reset(HOME)
    return f


def run(f, targets):
    out = np.zeros(f.ad)
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
    assert f.counters.total == 0 and f.counters.intervened_ticks == 0 and f.counters.ticks == len(t)


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
    # a tick counts once however many arms and kinds it changed, and only while the command differs from the target
    assert f.counters.intervened_ticks == f.counters.interventions["linear"] < f.counters.ticks


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


# ---- the command never steps, whatever the start (issue: start outside the box, target far outside) ------------
BOX_MIN, BOX_MAX = (0.3, -0.4, 0.1), (0.7, 0.4, 0.6)
VMAX, AMAX = 0.5, 1.5
FLOAT_TOL = 1e-9


def box_filter():
    lim = ArmLimits(workspace_min_m=BOX_MIN, workspace_max_m=BOX_MAX, max_linear_speed_m_s=VMAX,
                    max_linear_acc_m_s2=AMAX)  # fmt: skip
    return SafetyFilter(SafetyConfig(servo_dt_s=DT, arms=(lim, lim)))


def assert_never_steps(start, outs):
    """Every tick: linear step <= v_max·dt and velocity change <= a_max·dt per arm (Euclidean), from rest."""
    for p in (slice(0, 3), slice(7, 10)):
        x = np.vstack([start[None, p], outs[:, p]])
        v = np.diff(x, axis=0) / DT
        dv = np.diff(np.vstack([np.zeros(3), v]), axis=0)
        assert np.max(np.linalg.norm(v, axis=1)) <= VMAX * (1 + FLOAT_TOL)
        assert np.max(np.linalg.norm(dv, axis=1)) <= AMAX * DT * (1 + 1e-6)


def excess(x):
    """Per tick, how far the left arm's command is outside the box [m]."""
    return np.max(np.maximum(np.asarray(BOX_MIN) - x[:, 0:3], x[:, 0:3] - np.asarray(BOX_MAX)).clip(0), axis=1)


def test_start_outside_the_box_and_hold_does_not_step_or_move_out():
    f = box_filter()
    start = HOME.copy()
    start[0] = BOX_MAX[0] + 0.15  # 150 mm outside in x (the old filter clamped this onto the edge in one tick)
    f.reset(start)
    outs = run(f, [start] * 1000)
    assert_never_steps(start, outs)
    np.testing.assert_allclose(outs[:, 0], start[0], atol=1e-12)  # holds: no step, no drift


def test_start_outside_with_a_target_inside_moves_in_within_the_limits():
    f = box_filter()
    start = HOME.copy()
    start[0] = BOX_MAX[0] + 0.15
    start[2] = BOX_MIN[2] - 0.05  # outside on two axes
    f.reset(start)
    target = HOME.copy()
    outs = run(f, [target] * 3000)
    assert_never_steps(start, outs)
    e = excess(outs)
    assert np.all(np.diff(e) <= 1e-12)  # only ever toward the box
    np.testing.assert_allclose(outs[-1, :3], target[:3], atol=1e-3)  # and arrives


def test_target_far_outside_is_followed_up_to_the_wall_without_a_step():
    f = box_filter()
    f.reset(HOME)
    target = HOME.copy()
    target[0] = BOX_MAX[0] + 0.5  # 0.5 m outside
    outs = run(f, [target] * 3000)
    assert_never_steps(HOME, outs)
    assert np.max(outs[:, 0]) <= BOX_MAX[0] + FLOAT_TOL  # never beyond the wall
    assert outs[-1, 0] == pytest.approx(BOX_MAX[0], abs=1e-3)


def test_a_target_running_into_a_wall_at_full_speed_brakes_before_it():
    """The old position clamp stopped the command at the wall in one tick (a velocity step of v_max)."""
    f = box_filter()
    f.reset(HOME)
    t = np.arange(3000) * DT
    targets = np.repeat(HOME[None], len(t), 0)
    targets[:, 0] = np.minimum(HOME[0] + 0.4 * t, 2.0)  # 0.4 m/s straight through the wall at x = 0.7
    outs = run(f, targets)
    assert_never_steps(HOME, outs)
    assert np.max(outs[:, 0]) <= BOX_MAX[0] + FLOAT_TOL


@settings(max_examples=40, deadline=None)
@given(
    start_out=st.lists(st.floats(-0.3, 0.3), min_size=3, max_size=3),
    waypoints=st.lists(st.lists(st.floats(-0.8, 0.8), min_size=3, max_size=3), min_size=1, max_size=4),
    hold_ticks=st.integers(50, 400),
)
def test_property_never_steps_and_never_moves_out(start_out, waypoints, hold_ticks):
    """Random starts (up to 0.3 m outside on each axis) and targets that jump anywhere (inside or far outside)."""
    f = box_filter()
    start = HOME.copy()
    start[0:3] = np.clip(np.asarray(BOX_MIN) + (np.asarray(BOX_MAX) - np.asarray(BOX_MIN)) * 0.5 + start_out, -2, 2)
    f.reset(start)
    targets = []
    for w in waypoints:
        tgt = HOME.copy()
        tgt[0:3] = np.asarray(HOME[0:3]) + w
        targets += [tgt] * hold_ticks
    outs = run(f, targets)
    assert_never_steps(start, outs)
    e = np.r_[excess(start[None]), excess(outs)]
    assert np.all(np.diff(e) <= 1e-12)  # the distance outside the box never grows (inside stays inside)


def test_joint_limits_from_the_robot_act_like_walls():
    from rtc_controller.control.safety import with_joint_limits

    base = SafetyConfig(servo_dt_s=DT, kind="joint", arms=(ArmLimits(), ArmLimits()))
    cfg = with_joint_limits(base, [[-1.0] * 7] * 2, [[0.5] * 7] * 2, margin_rad=0.05)
    assert cfg.arms[0].joint_max_rad[0] == pytest.approx(0.45)
    f = SafetyFilter(cfg)
    start = np.zeros(16)
    start[0] = 0.6  # outside its limit at start: may only move back in
    f.reset(start)
    target = np.zeros(16)
    target[0], target[1] = 0.9, 3.0  # beyond the limits
    outs = run(f, [target] * 3000)
    q = np.vstack([start[None], outs])
    v = np.diff(q, axis=0) / DT
    assert np.max(np.abs(v)) <= 1.0 + FLOAT_TOL and np.max(np.abs(np.diff(np.vstack([np.zeros(16), v]), axis=0))) <= 5.0 * DT * (1 + 1e-6)
    assert np.all(np.diff(q[:, 0]) <= 1e-12)  # never further out
    assert np.max(outs[:, 1]) <= 0.45 + FLOAT_TOL and outs[-1, 1] == pytest.approx(0.45, abs=1e-3)
    assert f.counters.interventions["joint_range"] > 0
