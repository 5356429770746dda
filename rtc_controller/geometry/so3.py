"""Rotations on SO(3): rotation vectors, unit quaternions [w, x, y, z] (the Flexiv RDK's order), slerp.

Shapes: ``r[..., 3]`` rotation vectors (axis·angle [rad]), ``q[..., 4]`` unit quaternions ``[w, x, y, z]``.
All functions broadcast over leading axes (e.g. ``[num_arms, 3]``) and are robust across the ±π wrap:
rotation vectors near +π and −π about the same axis are near each other on SO(3) and interpolate the short way.
"""

from __future__ import annotations

import math

import numpy as np

SMALL_ANGLE_RAD = 1e-6  # below this, sin(θ)/θ uses its Taylor series
TWO_PI = 2.0 * np.pi


def rotvec_to_quat(r: np.ndarray) -> np.ndarray:
    """Rotation vector ``r[..., 3]`` -> unit quaternion ``[..., 4]`` (w, x, y, z), w ≥ 0 for |r| ≤ π."""
    r = np.asarray(r, dtype=np.float64)
    theta = np.linalg.norm(r, axis=-1, keepdims=True)
    half = 0.5 * theta
    small = theta < SMALL_ANGLE_RAD
    safe = np.where(small, 1.0, theta)
    # sin(θ/2)/θ -> 1/2 - θ²/48 for small θ
    k = np.where(small, 0.5 - theta * theta / 48.0, np.sin(half) / safe)
    return np.concatenate([np.cos(half), r * k], axis=-1)


def quat_to_rotvec(q: np.ndarray) -> np.ndarray:
    """Unit quaternion ``[..., 4]`` (w, x, y, z) -> rotation vector ``[..., 3]`` with angle in [0, π]."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.maximum(np.linalg.norm(q, axis=-1, keepdims=True), SMALL_ANGLE_RAD)  # a zero q -> zero rotation
    q = np.where(q[..., :1] < 0.0, -q, q)  # q and -q are the same rotation: pick w >= 0 -> angle <= π
    w = q[..., :1]
    v = q[..., 1:]
    s = np.linalg.norm(v, axis=-1, keepdims=True)
    theta = 2.0 * np.arctan2(s, w)
    small = s < SMALL_ANGLE_RAD
    k = np.where(small, 2.0 / np.where(w == 0.0, 1.0, w), theta / np.where(small, 1.0, s))
    return v * k


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product ``a ⊗ b`` of quaternions ``[..., 4]`` (w, x, y, z): apply b first, then a."""
    aw, ax, ay, az = np.moveaxis(np.asarray(a, dtype=np.float64), -1, 0)
    bw, bx, by, bz = np.moveaxis(np.asarray(b, dtype=np.float64), -1, 0)
    return np.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        axis=-1,
    )


def quat_conj(q: np.ndarray) -> np.ndarray:
    """Conjugate (= inverse for unit quaternions)."""
    q = np.asarray(q, dtype=np.float64)
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def relative_rotvec(q0: np.ndarray, q1: np.ndarray) -> np.ndarray:
    """Body-frame rotation vector w with ``q1 = q0 ⊗ exp(w)``, the short way (|w| ≤ π)."""
    return quat_to_rotvec(quat_mul(quat_conj(q0), q1))


def angle_between(q0: np.ndarray, q1: np.ndarray) -> np.ndarray:
    """Geodesic angle [rad] in [0, π] between two rotations ``[..., 4]`` -> ``[...]``."""
    rel = quat_mul(quat_conj(q0), q1)  # atan2 form: accurate near 0 where arccos is not
    return 2.0 * np.arctan2(np.linalg.norm(rel[..., 1:], axis=-1), np.abs(rel[..., 0]))


def quat_slerp(q0: np.ndarray, q1: np.ndarray, alpha: float | np.ndarray) -> np.ndarray:
    """Spherical linear interpolation ``q0 -> q1`` at ``alpha`` in [0, 1], along the shorter arc.

    Example: slerp(rz = +3.1, rz = −3.1, 0.5) is the rotation of π about z (the 0.083 rad short arc through the
    wrap), not the identity that component-wise interpolation of rotation vectors would give.
    """
    w = relative_rotvec(q0, q1)
    a = np.asarray(alpha, dtype=np.float64)
    if a.ndim:
        a = a[..., None]
    return quat_mul(q0, rotvec_to_quat(w * a))


def rotvec_near(r: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """The rotation vector equivalent to ``r`` (same rotation) closest to ``ref``.

    Rotation vectors r and r − 2π·r̂·n describe one rotation; this keeps a stream of commands free of
    artificial ±π flips when the reference (e.g. the chunk's own action) sits on the other side of the wrap.
    """
    r = np.asarray(r, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    theta = np.linalg.norm(r, axis=-1, keepdims=True)
    ref_n = np.linalg.norm(ref, axis=-1, keepdims=True)
    # the identity's equivalents are 2π·n·u for any axis u: measure along ref's axis then
    axis_src = np.where(theta < SMALL_ANGLE_RAD, ref, r)
    axis_n = np.where(theta < SMALL_ANGLE_RAD, ref_n, theta)
    axis = np.where(axis_n < SMALL_ANGLE_RAD, 0.0, axis_src / np.where(axis_n < SMALL_ANGLE_RAD, 1.0, axis_n))
    proj = np.sum(ref * axis, axis=-1, keepdims=True)
    theta_signed = np.sum(r * axis, axis=-1, keepdims=True)
    n = np.round((proj - theta_signed) / TWO_PI)
    return r + axis * (n * TWO_PI)


def rotvec_slerp(r0: np.ndarray, r1: np.ndarray, alpha: float | np.ndarray) -> np.ndarray:
    """Slerp between two rotation vectors; the result is expressed near ``r0``'s side of the wrap."""
    q = quat_slerp(rotvec_to_quat(r0), rotvec_to_quat(r1), alpha)
    return rotvec_near(quat_to_rotvec(q), r0)


# ---- scalar versions for the servo hot path -------------------------------------------------------------------
# numpy's per-call overhead (µs per tiny op) dominates at 1 kHz; these work on plain float tuples instead
# (3-tuples for rotation vectors, 4-tuples (w, x, y, z) for quaternions) and agree with the array versions above.

Vec3 = tuple[float, float, float]
Quat = tuple[float, float, float, float]


def rotvec_to_quat_s(r: Vec3) -> Quat:
    """Scalar :func:`rotvec_to_quat`."""
    rx, ry, rz = r
    theta = math.sqrt(rx * rx + ry * ry + rz * rz)
    if theta < SMALL_ANGLE_RAD:
        k = 0.5 - theta * theta / 48.0
    else:
        k = math.sin(0.5 * theta) / theta
    return (math.cos(0.5 * theta), rx * k, ry * k, rz * k)


def quat_to_rotvec_s(q: Quat) -> Vec3:
    """Scalar :func:`quat_to_rotvec` (normalises; angle in [0, π])."""
    w, x, y, z = q
    n = math.sqrt(w * w + x * x + y * y + z * z)
    if w < 0.0:
        n = -n
    w, x, y, z = w / n, x / n, y / n, z / n
    s = math.sqrt(x * x + y * y + z * z)
    if s < SMALL_ANGLE_RAD:
        k = 2.0 / w
    else:
        k = 2.0 * math.atan2(s, w) / s
    return (x * k, y * k, z * k)


def quat_mul_s(a: Quat, b: Quat) -> Quat:
    """Scalar Hamilton product a ⊗ b."""
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return (
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    )


def quat_conj_s(q: Quat) -> Quat:
    return (q[0], -q[1], -q[2], -q[3])


def relative_rotvec_s(q0: Quat, q1: Quat) -> Vec3:
    """Scalar :func:`relative_rotvec`: w with q1 = q0 ⊗ exp(w), |w| ≤ π."""
    return quat_to_rotvec_s(quat_mul_s(quat_conj_s(q0), q1))


def angle_between_s(q0: Quat, q1: Quat) -> float:
    """Scalar :func:`angle_between` [rad]."""
    w, x, y, z = quat_mul_s(quat_conj_s(q0), q1)
    return 2.0 * math.atan2(math.sqrt(x * x + y * y + z * z), abs(w))


def rotvec_near_s(r: Vec3, ref: Vec3) -> Vec3:
    """Scalar :func:`rotvec_near`."""
    rx, ry, rz = r
    theta = math.sqrt(rx * rx + ry * ry + rz * rz)
    src, n = (r, theta) if theta >= SMALL_ANGLE_RAD else (ref, math.sqrt(ref[0] ** 2 + ref[1] ** 2 + ref[2] ** 2))
    if n < SMALL_ANGLE_RAD:
        return r
    ux, uy, uz = src[0] / n, src[1] / n, src[2] / n
    proj = ref[0] * ux + ref[1] * uy + ref[2] * uz
    signed = rx * ux + ry * uy + rz * uz
    m = round((proj - signed) / TWO_PI) * TWO_PI
    return (rx + ux * m, ry + uy * m, rz + uz * m)
