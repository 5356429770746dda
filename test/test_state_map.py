"""state_map's quaternion segments use geometry.so3 (one rotvec<->quat rule): the module docstring's example,
round trips in both quaternion orders, w >= 0 also beyond π, and a model's zero quaternion read as no rotation."""

import numpy as np
import pytest

from rtc_controller.policy.pi05.state_map import Segment, VectorMap

ROT = ("left_rx", "left_ry", "left_rz")


def test_docstring_example():
    vm = VectorMap((Segment(("left_x", "left_y", "left_z")), Segment(ROT, "quat_wxyz"),
                    Segment(("left_gripper",), "gripper_closed", range_m=(0.0, 0.1))))
    names = ("left_x", "left_y", "left_z", *ROT, "left_gripper")
    out = vm.encode(np.array([0.5, 0, 0.3, 0, 0, np.pi / 2, 0.025]), names)
    np.testing.assert_allclose(out, [0.5, 0, 0.3, np.sqrt(0.5), 0, 0, np.sqrt(0.5), 0.75], atol=1e-12)


@pytest.mark.parametrize("rep", ["quat_wxyz", "quat_xyzw"])
def test_quaternion_round_trip_and_hemisphere(rep):
    rng = np.random.default_rng(0)
    axes = rng.normal(size=(64, 3))
    axes /= np.linalg.norm(axes, axis=-1, keepdims=True)
    rv = axes * rng.uniform(0.0, 0.99 * np.pi, size=(64, 1))
    seg = Segment(ROT, rep)
    q = seg.encode(rv)
    w = q[..., 0] if rep == "quat_wxyz" else q[..., 3]
    assert np.all(w >= 0)
    np.testing.assert_allclose(seg.decode(q), rv, atol=1e-9)
    np.testing.assert_allclose(seg.decode(-q), rv, atol=1e-9)  # either sign of a model's output


def test_beyond_pi_is_canonical_and_zero_quaternion_is_identity():
    seg = Segment(ROT, "quat_wxyz")
    q = seg.encode(np.array([0.0, 0.0, 1.5 * np.pi]))
    assert q[0] >= 0
    np.testing.assert_allclose(seg.decode(q), [0.0, 0.0, -0.5 * np.pi], atol=1e-12)
    np.testing.assert_allclose(seg.decode(np.zeros(4)), np.zeros(3))
    np.testing.assert_allclose(seg.decode(seg.encode(np.zeros(3))), np.zeros(3))
