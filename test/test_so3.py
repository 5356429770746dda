"""SO(3) helpers: round trips, quaternion order [w, x, y, z], slerp the short way across ±π."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtc_controller.geometry import so3

vec3 = st.lists(st.floats(-3.1, 3.1), min_size=3, max_size=3).map(np.array)


def test_quaternion_order_is_w_first():
    q = so3.rotvec_to_quat(np.array([0.0, 0.0, np.pi / 2]))
    np.testing.assert_allclose(q, [np.cos(np.pi / 4), 0, 0, np.sin(np.pi / 4)], atol=1e-12)
    np.testing.assert_allclose(so3.rotvec_to_quat(np.zeros(3)), [1, 0, 0, 0])


@settings(max_examples=200, deadline=None)
@given(vec3)
def test_round_trip_rotvec_quat(r):
    if np.linalg.norm(r) >= np.pi:
        r = r / np.linalg.norm(r) * (np.pi - 1e-3)
    back = so3.quat_to_rotvec(so3.rotvec_to_quat(r))
    np.testing.assert_allclose(back, r, atol=1e-9)


def test_quat_to_rotvec_sign_invariant_and_small_angles():
    q = so3.rotvec_to_quat(np.array([0.1, -0.2, 0.3]))
    np.testing.assert_allclose(so3.quat_to_rotvec(-q), so3.quat_to_rotvec(q), atol=1e-12)
    tiny = np.array([1e-9, 0, 0])
    np.testing.assert_allclose(so3.quat_to_rotvec(so3.rotvec_to_quat(tiny)), tiny, atol=1e-15)


def test_slerp_across_the_pi_wrap_takes_the_short_arc():
    r0 = np.array([0.0, 0.0, 3.1])
    r1 = np.array([0.0, 0.0, -3.1])  # 2π − 6.2 = 0.083 rad away on SO(3)
    mid = so3.rotvec_slerp(r0, r1, 0.5)
    q_mid = so3.rotvec_to_quat(mid)
    # the midpoint is the rotation of π about z, not the identity (naive component-wise interpolation)
    assert so3.angle_between(q_mid, so3.rotvec_to_quat(np.array([0, 0, np.pi]))) < 1e-9
    naive = 0.5 * (r0 + r1)
    assert np.linalg.norm(naive) < 1e-12
    # every interpolated point lies within the short arc
    for a in np.linspace(0, 1, 11):
        q = so3.rotvec_to_quat(so3.rotvec_slerp(r0, r1, a))
        assert so3.angle_between(q, so3.rotvec_to_quat(r0)) <= (2 * np.pi - 6.2) * a + 1e-9
    # the result stays on r0's side of the wrap: no sign flip of the rotation vector
    assert mid[2] > 3.0


def test_slerp_endpoints_and_constant_angular_rate():
    r0, r1 = np.array([0.2, 0.0, 0.1]), np.array([-0.4, 1.0, 0.3])
    np.testing.assert_allclose(so3.rotvec_slerp(r0, r1, 0.0), r0, atol=1e-12)
    np.testing.assert_allclose(so3.rotvec_slerp(r0, r1, 1.0), r1, atol=1e-12)
    q0, q1 = so3.rotvec_to_quat(r0), so3.rotvec_to_quat(r1)
    total = so3.angle_between(q0, q1)
    for a in (0.25, 0.5, 0.75):
        qa = so3.quat_slerp(q0, q1, a)
        assert so3.angle_between(q0, qa) == pytest.approx(a * total, abs=1e-9)


def test_batched_over_arms():
    r0 = np.array([[0, 0, 3.1], [0.1, 0, 0]])
    r1 = np.array([[0, 0, -3.1], [0.3, 0, 0]])
    out = so3.rotvec_slerp(r0, r1, 0.5)
    assert out.shape == (2, 3)
    np.testing.assert_allclose(out[1], [0.2, 0, 0], atol=1e-12)


def test_rotvec_near_picks_equivalent_closest_to_reference():
    r = np.array([0.0, 0.0, -3.1])
    near = so3.rotvec_near(r, np.array([0.0, 0.0, 3.0]))
    np.testing.assert_allclose(near, [0, 0, 2 * np.pi - 3.1], atol=1e-12)
    assert so3.angle_between(so3.rotvec_to_quat(near), so3.rotvec_to_quat(r)) < 1e-9
    np.testing.assert_allclose(so3.rotvec_near(np.zeros(3), np.ones(3)), np.zeros(3))


@settings(max_examples=100, deadline=None)
@given(vec3, vec3)
def test_scalar_versions_agree_with_array_versions(r0, r1):
    q0, q1 = so3.rotvec_to_quat(r0), so3.rotvec_to_quat(r1)
    np.testing.assert_allclose(so3.rotvec_to_quat_s(tuple(r0)), q0, atol=1e-12)
    np.testing.assert_allclose(so3.quat_to_rotvec_s(tuple(q0)), so3.quat_to_rotvec(q0), atol=1e-9)
    np.testing.assert_allclose(so3.quat_mul_s(tuple(q0), tuple(q1)), so3.quat_mul(q0, q1), atol=1e-12)
    np.testing.assert_allclose(so3.relative_rotvec_s(tuple(q0), tuple(q1)), so3.relative_rotvec(q0, q1), atol=1e-8)
    assert so3.angle_between_s(tuple(q0), tuple(q1)) == pytest.approx(float(so3.angle_between(q0, q1)), abs=1e-9)
    np.testing.assert_allclose(so3.rotvec_near_s(tuple(r1), tuple(r0)), so3.rotvec_near(r1, r0), atol=1e-9)
