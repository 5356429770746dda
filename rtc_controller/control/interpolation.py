"""Interpolation of a chunk between its action steps, for the servo loop (pure floats on the hot path).

Axis legend: h = horizon (action steps), ad = action dimension, n = arms.
Time: segment k runs from action k to action k + 1; ``alpha`` ∈ [0, 1] is the fraction of Δt elapsed.

Two methods (``Interpolation``):
- ``cubic`` (default): a cubic Hermite segment per step with Catmull-Rom tangents
  m_k = (a_{k+1} − a_{k−1})/2 [per action step] (second-order one-sided at the chunk's ends). The command passes through
  every action, its velocity is continuous at every action boundary inside a chunk, and its acceleration is the
  chunk's own (exact for motion at constant acceleration). So a chunk that respects the speed and acceleration
  limits at the action rate yields a 1 kHz command that respects them too, and the safety filter only acts where
  a chunk really exceeds a limit (or at a switch between two chunks).
- ``linear``: positions, joints and gripper linearly, rotations by slerp. Its velocity steps at every action
  boundary: an acceleration of Δv/servo period that no arm can follow, which the safety filter then smooths on
  nearly every tick.
Gripper widths are interpolated linearly by both methods: a gripper takes discrete width targets (Flexiv's
``Gripper.Move``), and a straight segment never exceeds the chunk's own rate, where a cubic overshoots it by up to
12.5 % at the end of a ramp. Rotations (Cartesian space) are interpolated on SO(3), never component-wise on rotation vectors: segment k is
q(α) = q_k ⊗ exp(h(α)), with h the same Hermite curve in the body frame of q_k from 0 to
r_k = log(q_k⁻¹ q_{k+1}) (short arc) with tangents w_k = (r_{k−1} + r_k)/2 (slerp: h = α·r_k).

Hermite basis on α: h01 = α²(3 − 2α), h10 = α(1 − α)², h11 = −α²(1 − α); a segment is
a_k + h01·(a_{k+1} − a_k) + h10·m_k + h11·m_{k+1}. Worked example (one column, a = 0, 1, 4, 9, i.e. constant
acceleration): m_1 = 2, m_2 = 4 and at α = 1/2 the segment gives 1 + 1.5 + 0.25 − 0.5 = 2.25 = 1.5² (exact).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from rtc_controller.geometry import so3

Interpolation = Literal["cubic", "linear"]
INTERPOLATIONS: tuple[str, ...] = get_args(Interpolation)


@dataclass(frozen=True, eq=False)
class Segments:
    """A chunk prepared for :func:`evaluate` (built off the hot path; plain nested lists of floats).

    rows ``[h][ad]``: the actions; deltas ``[h−1][ad]``: a_{k+1} − a_k; tangents ``[h][ad]``: m_k per action step
    (cubic; empty for linear); quats ``[h][n]``: each arm's rotation as a quaternion tuple; rels ``[h−1][n]``:
    body-frame rotation vector from step k to k + 1 (short arc); rot_tangents ``[h][n]``: w_k (cubic; empty for
    linear); linear_columns: interpolated linearly whatever the method (the grippers). Rotation columns of
    deltas/tangents are unused.
    """

    method: Interpolation
    linear_columns: tuple[int, ...]
    rows: list
    deltas: list
    tangents: list
    quats: list
    rels: list
    rot_tangents: list


def _tangents(a: np.ndarray) -> np.ndarray:
    """Catmull-Rom tangents ``[h, ad]`` per action step of ``a[h, ad]``: central differences inside, second-order
    one-sided differences at the ends (exact for constant acceleration, like the inside; h = 2: the chord)."""
    m = np.empty_like(a)
    if len(a) == 2:
        m[:] = a[1] - a[0]
        return m
    m[1:-1] = 0.5 * (a[2:] - a[:-2])
    m[0] = 0.5 * (-3.0 * a[0] + 4.0 * a[1] - a[2])
    m[-1] = 0.5 * (3.0 * a[-1] - 4.0 * a[-2] + a[-3])
    return m


def prepare_segments(a: np.ndarray, rotation_columns: list[slice], method: Interpolation,
                     linear_columns: tuple[int, ...] = ()) -> Segments:  # fmt: skip
    """Precompute the segments of actions ``a[h, ad]`` (h ≥ 2); ``rotation_columns``: each arm's rotation-vector
    columns (empty in joint space); ``linear_columns``: always linear (the grippers)."""
    if method not in INTERPOLATIONS:
        raise ValueError(f"unknown interpolation {method!r}; expected one of {INTERPOLATIONS}")
    h = a.shape[0]
    rot = np.stack([a[:, c] for c in rotation_columns], axis=1) if rotation_columns else np.zeros((h, 0, 3))
    quats = so3.rotvec_to_quat(rot)  # [h, n, 4]
    rels = so3.relative_rotvec(quats[:-1], quats[1:])  # [h-1, n, 3]
    tangents: list = []
    rot_tangents: list = []
    if method == "cubic":
        tangents = _tangents(a).tolist()
        w = np.empty((h, rels.shape[1], 3))
        w[1:-1] = 0.5 * (rels[:-1] + rels[1:])
        w[0], w[-1] = rels[0], rels[-1]
        rot_tangents = [[tuple(r) for r in step] for step in w.tolist()]
    return Segments(
        method=method,
        linear_columns=tuple(linear_columns),
        rows=a.tolist(),
        deltas=np.diff(a, axis=0).tolist(),
        tangents=tangents,
        quats=[[tuple(q) for q in step] for step in quats.tolist()],
        rels=[[tuple(r) for r in step] for step in rels.tolist()],
        rot_tangents=rot_tangents,
    )


def evaluate(seg: Segments, k: int, alpha: float, rotation_columns: list[slice]) -> list[float]:
    """The command ``[ad]`` at fraction ``alpha`` ∈ (0, 1) of segment ``k`` (0 ≤ k < h − 1)."""
    a = seg.rows[k]
    if seg.method == "linear":
        cmd = [x + alpha * dx for x, dx in zip(a, seg.deltas[k])]
        for arm, cols in enumerate(rotation_columns):
            w = seg.rels[k][arm]
            _set_rotation(cmd, cols.start, seg.quats[k][arm], (w[0] * alpha, w[1] * alpha, w[2] * alpha), a)
        return cmd
    one_minus = 1.0 - alpha
    h01 = alpha * alpha * (3.0 - 2.0 * alpha)
    h10 = alpha * one_minus * one_minus
    h11 = -alpha * alpha * one_minus
    m0, m1 = seg.tangents[k], seg.tangents[k + 1]
    deltas = seg.deltas[k]
    cmd = [x + h01 * dx + h10 * t0 + h11 * t1 for x, dx, t0, t1 in zip(a, deltas, m0, m1)]
    for c in seg.linear_columns:
        cmd[c] = a[c] + alpha * deltas[c]
    for arm, cols in enumerate(rotation_columns):
        r, w0, w1 = seg.rels[k][arm], seg.rot_tangents[k][arm], seg.rot_tangents[k + 1][arm]
        body = (h01 * r[0] + h10 * w0[0] + h11 * w1[0], h01 * r[1] + h10 * w0[1] + h11 * w1[1],
                h01 * r[2] + h10 * w0[2] + h11 * w1[2])  # fmt: skip
        _set_rotation(cmd, cols.start, seg.quats[k][arm], body, a)
    return cmd


def _set_rotation(cmd: list[float], c0: int, q_k: so3.Quat, body: so3.Vec3, near: list[float]) -> None:
    """cmd[c0:c0+3] = the rotation vector of q_k ⊗ exp(body), on the branch nearest action k's (no wrap flips)."""
    q = so3.quat_mul_s(q_k, so3.rotvec_to_quat_s(body))
    cmd[c0 : c0 + 3] = so3.rotvec_near_s(so3.quat_to_rotvec_s(q), (near[c0], near[c0 + 1], near[c0 + 2]))
