"""Round trips between numpy chunks/states and the ROS messages (DESIGN.md, "Messages")."""

import math

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from rtc_controller.action_space import action_names
from rtc_controller.ros.conversions import (
    chunk_to_msg,
    msg_to_chunk,
    msg_to_state,
    s_to_duration,
    s_to_stamp,
    stamp_to_s,
    state_to_msg,
    duration_to_s,
)

NAMES = action_names()


def test_stamp_round_trip_to_the_nanosecond():
    for t in (0.0, 1.5, 1_700_000_000.123456789, 12.999999999):
        back = stamp_to_s(s_to_stamp(t))
        assert abs(back - t) < 1e-6
    st = s_to_stamp(3.25)
    assert (st.sec, st.nanosec) == (3, 250_000_000)
    with pytest.raises(ValueError):
        s_to_stamp(-1.0)
    with pytest.raises(ValueError):
        s_to_stamp(float("nan"))


def test_duration_round_trip_including_negative():
    for t in (0.0, 0.02, 1.98, -0.5):
        assert abs(duration_to_s(s_to_duration(t)) - t) < 1e-9


def test_chunk_round_trip_keeps_layout_and_time_base():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(50, 14))
    msg = chunk_to_msg(a, NAMES, t_obs_s=100.25, dt_s=0.02, guided_d=4)
    assert isinstance(msg, JointTrajectory)
    assert list(msg.joint_names) == list(NAMES)
    assert stamp_to_s(msg.header.stamp) == pytest.approx(100.25)
    assert duration_to_s(msg.points[7].time_from_start) == pytest.approx(7 * 0.02)
    chunk = msg_to_chunk(msg)
    np.testing.assert_array_equal(chunk.actions, a)
    assert chunk.names == NAMES
    assert chunk.dt_s == pytest.approx(0.02)
    assert chunk.t_obs_s == pytest.approx(100.25)
    assert chunk.guided_d == 4
    assert chunk.horizon == 50 and chunk.action_dim == 14


def test_chunk_without_guided_d_and_wrong_shape_refused():
    msg = chunk_to_msg(np.zeros((3, 14)), NAMES, 1.0, 0.02)
    assert msg_to_chunk(msg).guided_d is None
    with pytest.raises(ValueError):
        chunk_to_msg(np.zeros((3, 13)), NAMES, 1.0, 0.02)


def test_malformed_messages_become_chunks_the_timeline_can_reject():
    msg = JointTrajectory()
    msg.joint_names = list(NAMES)
    msg.header.stamp = Time(sec=1)
    chunk = msg_to_chunk(msg)
    assert chunk.actions.shape == (0, 14) and math.isnan(chunk.dt_s)
    # ragged points: padded with NaN instead of raising
    p0, p1 = JointTrajectoryPoint(), JointTrajectoryPoint()
    p0.positions = [0.0] * 14
    p1.positions = [0.0] * 13
    p1.time_from_start = s_to_duration(0.02)
    msg.points = [p0, p1]
    chunk = msg_to_chunk(msg)
    assert chunk.actions.shape == (2, 14)
    assert np.isnan(chunk.actions[1, 13])


def test_state_round_trip_with_joint_state_appended_and_reordering():
    q = np.arange(14.0)
    msg = state_to_msg(q, NAMES, 5.5, joint_names=["left_joint1"], joint_positions=np.array([0.3]))
    assert isinstance(msg, JointState)
    s = msg_to_state(msg)
    assert s.names[-1] == "left_joint1" and s.positions[-1] == pytest.approx(0.3)
    sub = msg_to_state(msg, names=["right_x", "left_x"])
    np.testing.assert_array_equal(sub.positions, [7.0, 0.0])
    assert sub.stamp_s == pytest.approx(5.5)
    with pytest.raises(KeyError):
        msg_to_state(msg, names=["nope"])
    with pytest.raises(ValueError):
        state_to_msg(q[:3], NAMES, 0.0)
