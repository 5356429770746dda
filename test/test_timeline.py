"""Chunk timeline rules: switch at k*, frozen actions never executed, continuity, rejections, interpolation."""

import math

import numpy as np
import pytest

from rtc_controller.action_space import action_names
from rtc_controller.geometry import so3
from rtc_controller.control.chunk import Chunk
from rtc_controller.control.timeline import REJECT_REASONS, ChunkTimeline, PreparedChunk, Rejection, TimelineConfig

NAMES = action_names()
DT = 0.02
H = 10
SERVO_DT = 0.001
POSE_COLUMNS = [i for i in range(14) if i not in (6, 13)]  # not the grippers (plausible widths stay below 1 m)


def trajectory(t):
    """A smooth 14-dim motion as a function of absolute time [s] (positions, rotations, gripper)."""
    t = np.asarray(t, dtype=float)[..., None]
    arm = np.concatenate([0.4 + 0.1 * np.sin(t), 0.1 * np.cos(t), 0.3 + 0 * t, 0.0 * t, 0.0 * t, 0.5 * t, 0.04 + 0 * t], -1)
    return np.concatenate([arm, arm + np.array([0, 0.5, 0, 0, 0, 0, 0])], -1)


def chunk_at(t_obs, h=H, fn=trajectory, **kw):
    return Chunk(NAMES, fn(t_obs + DT * np.arange(h)), t_obs, DT, **kw)


def make(hold=None, interpolation="cubic"):
    tl = ChunkTimeline(TimelineConfig(names=NAMES, action_rate_hz=1 / DT, max_horizon=50, interpolation=interpolation))
    tl.reset(trajectory(0.0) if hold is None else hold)
    return tl


def offer(tl, chunk, t_arrival):
    p = tl.check(chunk, t_arrival)
    assert isinstance(p, PreparedChunk), p
    assert tl.accept(p) is None
    return p


def test_config_validation():
    with pytest.raises(ValueError):
        TimelineConfig(names=NAMES[:5], action_rate_hz=50, max_horizon=10)
    with pytest.raises(ValueError):
        TimelineConfig(names=NAMES, action_rate_hz=0, max_horizon=10)
    with pytest.raises(ValueError):
        TimelineConfig(names=NAMES, action_rate_hz=50, max_horizon=1)
    with pytest.raises(ValueError, match="interpolation"):
        TimelineConfig(names=NAMES, action_rate_hz=50, max_horizon=10, interpolation="spline")


def test_holds_the_initial_pose_before_any_chunk():
    hold = trajectory(1.0)
    tl = make(hold)
    out = np.zeros(14)
    assert tl.sample(5.0, out) is None
    np.testing.assert_array_equal(out, hold)


def test_switch_happens_at_k_star_boundary():
    tl = make()
    old = chunk_at(10.0)
    offer(tl, old, 10.0)
    out = np.zeros(14)
    tl.sample(10.0, out)
    new = Chunk(NAMES, old.actions + 0.01, 10.01, DT)  # distinguishable from the old one
    p = offer(tl, new, 10.01 + 0.045)  # δ = 45 ms -> k* = ceil(2.25) = 3
    assert p.k_star == 3
    assert p.t_switch_s == pytest.approx(10.01 + 3 * DT)
    # until the boundary the old chunk commands
    assert tl.sample(10.069, out) is None
    assert tl.active.chunk is old
    ev = tl.sample(10.07, out)
    assert ev is not None and ev.k_star == 3
    np.testing.assert_allclose(out, new.actions[3], atol=1e-12)
    assert tl.counters.switches == 2


def test_k_star_exact_boundary_and_zero_delay():
    tl = make()
    p = tl.check(chunk_at(1.0), 1.0 + 2 * DT)  # exactly 2 steps: action 2 not yet started
    assert p.k_star == 2
    p = tl.check(chunk_at(1.0), 1.0)
    assert p.k_star == 0
    p = tl.check(chunk_at(1.0), 1.0 - 0.01)  # slightly in the future but within tolerance
    assert p.k_star == 0


def test_frozen_actions_are_never_executed():
    tl = make()
    offer(tl, chunk_at(0.0, h=50), 0.0)
    out = np.zeros(14)
    t = 0.0
    sentinel = 5.0  # far from the motion, within the plausibility bound (MAX_ABS_POSITION_M)
    for i in range(20):
        t_obs = 0.1 * i + 0.1
        delay = 0.013 + 0.007 * (i % 5)
        a = trajectory(t_obs + DT * np.arange(50))
        k_star = math.ceil(delay / DT)
        a[:k_star, POSE_COLUMNS] = sentinel  # frozen part: must never reach the command
        while t < t_obs + delay:
            tl.sample(t, out)
            assert np.all(out[POSE_COLUMNS] < sentinel / 2)
            t += SERVO_DT
        p = offer(tl, Chunk(NAMES, a, t_obs, DT), t_obs + delay)
        assert p.k_star == k_star
    for _ in range(100):
        tl.sample(t, out)
        assert np.all(out[POSE_COLUMNS] < sentinel / 2)
        t += SERVO_DT


def test_continuity_when_new_chunk_agrees_with_old():
    tl = make()
    offer(tl, chunk_at(0.0, h=50), 0.0)
    out = np.zeros(14)
    prev = None
    t = 0.0
    jumps = []
    for i in range(1, 8):
        t_obs = 0.1 * i
        while t < t_obs + 0.03:
            ev = tl.sample(t, out)
            if ev is not None:
                jumps.append(ev)
            if prev is not None:
                # per-tick change bounded by the motion's speed (no steps at switches)
                assert np.max(np.abs(out - prev)) < 2e-3
            prev = out.copy()
            t += SERVO_DT
        offer(tl, chunk_at(t_obs, h=50), t_obs + 0.03)
    assert len(jumps) >= 6
    for ev in jumps:
        assert ev.jump_linear_m < 1e-9 and ev.jump_angular_rad < 1e-9 and ev.jump_gripper_m < 1e-12


def test_switch_event_reports_jump_and_guided_d():
    tl = make()
    offer(tl, chunk_at(0.0), 0.0)
    out = np.zeros(14)
    assert tl.sample(0.0, out).from_hold, "the first chunk starts from the held pose"
    shifted = Chunk(NAMES, chunk_at(0.05).actions + np.r_[0.01, 0, 0, 0, 0, 0, 0, np.zeros(7)], 0.05, DT, guided_d=2)
    offer(tl, shifted, 0.07)
    ev = tl.sample(0.07, out)
    assert ev.guided_d == 2 and ev.k_star == 1 and not ev.from_hold
    assert ev.jump_linear_m == pytest.approx(0.01, abs=1e-5)  # + linear-interpolation error of the old chunk
    assert ev.delay_s == pytest.approx(0.02)


def test_linear_and_slerp_interpolation_between_steps():
    a = np.zeros((3, 14))
    a[1, 0] = 0.1  # left_x
    a[0, 5], a[1, 5] = 3.1, -3.1  # left_rz across the wrap
    a[1, 6] = 0.08  # gripper
    tl = make(np.zeros(14), interpolation="linear")
    offer(tl, Chunk(NAMES, a, 0.0, DT), 0.0)
    out = np.zeros(14)
    tl.sample(DT / 2, out)
    assert out[0] == pytest.approx(0.05)
    assert out[6] == pytest.approx(0.04)
    q = so3.rotvec_to_quat(out[3:6])
    assert so3.angle_between(q, so3.rotvec_to_quat(np.array([0, 0, np.pi]))) < 1e-9  # short arc through π
    assert out[5] > 3.0  # no flip to the other side of the wrap


def test_starvation_holds_last_action_and_is_counted():
    tl = make()
    c = chunk_at(0.0)
    offer(tl, c, 0.0)
    out = np.zeros(14)
    tl.sample((H - 1) * DT - 0.001, out)
    assert not tl.starving
    for i in range(5):
        tl.sample((H - 1) * DT + 0.001 * i, out)
    np.testing.assert_array_equal(out, c.actions[-1])
    assert tl.starving and tl.counters.starved_ticks == 5 and tl.counters.starvation_episodes == 1


@pytest.mark.parametrize(
    "reason, chunk, t_arrival",
    [
        ("names", Chunk(tuple(reversed(NAMES)), trajectory(DT * np.arange(H)), 5.0, DT), 5.0),
        ("dimension", Chunk(NAMES, np.zeros((H, 13)), 5.0, DT), 5.0),
        ("dimension", Chunk(NAMES, np.zeros((51, 14)), 5.0, DT), 5.0),
        ("too_short", Chunk(NAMES, np.zeros((1, 14)), 5.0, float("nan")), 5.0),
        ("non_finite", Chunk(NAMES, np.full((H, 14), np.nan), 5.0, DT), 5.0),
        ("non_finite", Chunk(NAMES, np.zeros((H, 14)), float("inf"), DT), 5.0),
        ("time_base", Chunk(NAMES, np.zeros((H, 14)), 5.0, 0.01), 5.0),
        ("older", Chunk(NAMES, np.zeros((H, 14)), 1.0, DT), 1.0),
        ("stale", Chunk(NAMES, np.zeros((H, 14)), 5.0, DT), 5.0 + H * DT - 0.001),
        ("future", Chunk(NAMES, np.zeros((H, 14)), 5.0, DT), 4.9),
    ],
)
def test_every_rejection_reason_is_named_and_counted(reason, chunk, t_arrival):
    tl = make()
    offer(tl, chunk_at(2.0), 2.0)
    before = dict(tl.counters.rejected)
    active = tl.pending
    r = tl.check(chunk, t_arrival)
    assert isinstance(r, Rejection) and r.reason == reason and r.detail
    assert tl.counters.rejected[reason] == before[reason] + 1
    assert sum(tl.counters.rejected.values()) == sum(before.values()) + 1
    assert tl.pending is active  # nothing changed
    assert set(tl.counters.rejected) == set(REJECT_REASONS)


def test_accept_refuses_a_chunk_superseded_in_between():
    tl = make()
    p_old = tl.check(chunk_at(1.0), 1.01)
    p_new = tl.check(chunk_at(1.1), 1.11)
    assert tl.accept(p_new) is None
    r = tl.accept(p_old)
    assert isinstance(r, Rejection) and r.reason == "older"


def test_joint_space_is_linear():
    names = action_names("joint")
    tl = ChunkTimeline(TimelineConfig(names=names, action_rate_hz=50, max_horizon=10, kind="joint", interpolation="linear"))
    tl.reset(np.zeros(16))
    a = np.zeros((2, 16))
    a[1] = np.arange(16) * 0.05  # joints [rad], grippers [m]: plausible values
    offer(tl, Chunk(names, a, 0.0, DT), 0.0)
    out = np.zeros(16)
    tl.sample(DT * 0.25, out)
    np.testing.assert_allclose(out, 0.25 * 0.05 * np.arange(16))


def test_implausible_magnitudes_are_rejected_with_the_column_named():
    boxes = ((0.1, -0.8, 0.0, 0.8, 0.5, 0.8), (0.1, -0.5, 0.0, 0.8, 0.8, 0.8))
    tl = ChunkTimeline(TimelineConfig(names=NAMES, action_rate_hz=1 / DT, max_horizon=50, workspace_boxes_m=boxes))
    tl.reset(trajectory(0.0))
    for col, value, reason in ((0, 1e155, "left_x"), (3, 1e155, "left_rx"), (9, 2.0, "right_z"), (6, 5.0, "left_gripper")):
        c = chunk_at(1.0)
        c.actions[4, col] = value
        r = tl.check(c, 1.0)
        assert isinstance(r, Rejection) and r.reason == "magnitude" and reason in r.detail, (col, r)
    c = chunk_at(1.0)
    c.actions[4, 0] = 1.5  # outside the box (0.8) but within the margin: the safety filter clamps it
    assert isinstance(tl.check(c, 1.0), PreparedChunk)
    assert tl.counters.rejected["magnitude"] == 4
    with pytest.raises(ValueError, match="one"):
        TimelineConfig(names=NAMES, action_rate_hz=50, max_horizon=50, workspace_boxes_m=boxes[:1])
