"""Interpolation between action steps: the cubic curve passes through the actions, keeps the velocity continuous
at action boundaries and the chunk's own acceleration, and rotates on SO(3); linear steps its velocity."""

import numpy as np
import pytest

from rtc_controller.action_space import action_names
from rtc_controller.geometry import so3
from rtc_controller.control.chunk import Chunk
from rtc_controller.control.interpolation import evaluate, prepare_segments
from rtc_controller.control.timeline import ChunkTimeline, PreparedChunk, TimelineConfig

NAMES = action_names()
DT = 0.02
SERVO_DT = 0.001
ROT = [slice(3, 6), slice(10, 13)]


def accelerating_chunk(h=20, acc=1.2, yaw_rate=2.0):
    """x at constant acceleration [m/s²] from rest, z still, yaw at a constant rate [rad/s], gripper closing."""
    t = DT * np.arange(h)
    a = np.zeros((h, 14))
    for o in (0, 7):
        a[:, o] = 0.4 + 0.5 * acc * t**2
        a[:, o + 2] = 0.3
        a[:, o + 3 : o + 6] = np.stack([np.zeros(h), np.zeros(h), 0.1 + yaw_rate * t], 1)
        a[:, o + 6] = 0.08 - 0.05 * t
    return a


def sampled(a, interpolation):
    """The servo-rate command of chunk ``a`` from t = 0 to its end, ``[ticks, 14]``."""
    tl = ChunkTimeline(TimelineConfig(names=NAMES, action_rate_hz=1 / DT, max_horizon=50, interpolation=interpolation))
    tl.reset(a[0])
    p = tl.check(Chunk(NAMES, a, 0.0, DT), 0.0)
    assert isinstance(p, PreparedChunk) and tl.accept(p) is None
    out = np.zeros(14)
    rows = []
    for i in range(int(round((len(a) - 1) * DT / SERVO_DT)) + 1):
        tl.sample(i * SERVO_DT, out)
        rows.append(out.copy())
    return np.array(rows)


def test_worked_example_of_the_docstring():
    a = np.array([[0.0], [1.0], [4.0], [9.0]])
    seg = prepare_segments(a, [], "cubic")
    assert evaluate(seg, 1, 0.5, []) == pytest.approx([2.25])


def test_cubic_passes_through_every_action():
    a = accelerating_chunk()
    cmd = sampled(a, "cubic")
    per_step = round(DT / SERVO_DT)
    np.testing.assert_allclose(cmd[::per_step], a, atol=1e-12)


def test_cubic_keeps_the_chunks_acceleration_where_linear_steps_its_velocity():
    a = accelerating_chunk(acc=1.2)
    acc = {}
    for method in ("cubic", "linear"):
        x = sampled(a, method)[:, 0]
        acc[method] = np.abs(np.diff(x, n=2)) / SERVO_DT**2
    assert np.max(acc["cubic"]) == pytest.approx(1.2, rel=1e-3)
    # linear: the whole velocity change of a step lands in one servo tick, 20× the chunk's acceleration
    assert np.max(acc["linear"]) > 15 * 1.2


def test_cubic_velocity_is_continuous_across_action_boundaries():
    a = accelerating_chunk()
    x = sampled(a, "cubic")[:, 0]
    v = np.diff(x) / SERVO_DT
    dv = np.abs(np.diff(v))
    assert np.max(dv) < 1.2 * SERVO_DT * 1.01  # never more than the chunk's acceleration in one tick


def test_cubic_rotation_is_on_so3_and_smooth():
    a = accelerating_chunk(yaw_rate=2.0)
    cmd = sampled(a, "cubic")
    q = so3.rotvec_to_quat(cmd[:, 3:6])
    rel = so3.relative_rotvec(q[:-1], q[1:])
    rate = np.linalg.norm(rel, axis=1) / SERVO_DT
    np.testing.assert_allclose(rate, 2.0, rtol=1e-3)  # a constant-rate yaw stays constant-rate between steps


def test_cubic_rotation_takes_the_short_arc_across_the_wrap():
    a = np.zeros((4, 14))
    a[:, 5] = [3.0, 3.1, -3.1, -3.0]  # left_rz crossing ±π
    seg = prepare_segments(a, ROT, "cubic")
    mid = evaluate(seg, 1, 0.5, ROT)
    q = so3.rotvec_to_quat(np.array(mid[3:6]))
    assert so3.angle_between(q, so3.rotvec_to_quat(np.array([0, 0, np.pi]))) < 1e-3
    assert mid[5] > 3.0  # on the branch of action 1: no flip


def test_grippers_are_linear_whatever_the_method():
    a = accelerating_chunk()
    cmd = sampled(a, "cubic")
    per_step = round(DT / SERVO_DT)
    g = cmd[:, 6]
    rate = np.abs(np.diff(g)) / SERVO_DT
    np.testing.assert_allclose(rate, 0.05, rtol=1e-6)  # the chunk's own rate, never more
    np.testing.assert_allclose(g[::per_step], a[:, 6], atol=1e-12)
