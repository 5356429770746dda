"""Bounded-velocity, bounded-acceleration steps toward a target, and the braking envelope of a box (pure floats).

Used by the safety filter once per servo tick (dt [s]); plain Python floats because numpy's per-call overhead
would dominate a 1 kHz tick. Vectors are 3-tuples; norms are Euclidean.

Guarantees (each function's docstring): a returned velocity v satisfies |v| ≤ vmax and |v − v_prev| ≤ amax·dt,
so the command it integrates never steps and never accelerates harder than the limits.
"""

from __future__ import annotations

import math

from rtc_controller.geometry.so3 import Vec3

TINY = 1e-12
SQRT3 = math.sqrt(3.0)


def braking_speed(dist: float, amax: float, dt: float) -> float:
    """The fastest speed [m/s or rad/s] from which braking at ``amax`` in ticks of ``dt`` stops within ``dist``.

    Discrete form of sqrt(2·a·dist): v = a·dt·(sqrt(1/4 + 2·dist/(a·dt²)) − 1/2); braking from it lands exactly,
    without overshoot-and-return: braking_speed(d − braking_speed(d)·dt) = braking_speed(d) − a·dt.
    """
    adt = amax * dt
    return adt * (math.sqrt(0.25 + 2.0 * dist / (adt * dt)) - 0.5)


def limit3(lag: Vec3, v_ff: Vec3, v_prev: Vec3, vmax: float, amax: float, dt: float) -> Vec3:
    """Bounded velocity toward a target moving at ``v_ff`` with remaining ``lag`` (3-vectors).

    Feed-forward (capped at vmax) plus a feedback term on the lag that never asks for more than the braking
    speed; then |v − v_prev| ≤ amax·dt and |v| ≤ vmax (the speed cap is a projection onto a ball that contains
    v_prev, so it keeps the acceleration bound).
    """
    fx, fy, fz = v_ff
    fn = math.sqrt(fx * fx + fy * fy + fz * fz)
    if fn > vmax:
        k = vmax / fn
        fx, fy, fz = fx * k, fy * k, fz * k
    lx, ly, lz = lag
    ln = math.sqrt(lx * lx + ly * ly + lz * lz)
    if ln > TINY:
        fb = min(ln / dt, braking_speed(ln, amax, dt)) / ln
        fx, fy, fz = fx + lx * fb, fy + ly * fb, fz + lz * fb
    px, py, pz = v_prev
    dx, dy, dz = fx - px, fy - py, fz - pz
    dn = math.sqrt(dx * dx + dy * dy + dz * dz)
    step = amax * dt
    if dn > step:
        k = step / dn
        fx, fy, fz = px + dx * k, py + dy * k, pz + dz * k
    vn = math.sqrt(fx * fx + fy * fy + fz * fz)
    if vn > vmax:
        k = vmax / vn
        fx, fy, fz = fx * k, fy * k, fz * k
    return (fx, fy, fz)


def limit1(lag: float, v_ff: float, v_prev: float, vmax: float, amax: float, dt: float) -> float:
    """One-dimensional :func:`limit3` (joints, gripper-like axes)."""
    v_ff = min(max(v_ff, -vmax), vmax)
    a = abs(lag)
    if a > TINY:
        v_ff += math.copysign(min(a / dt, braking_speed(a, amax, dt)), lag)
    step = amax * dt
    v = min(max(v_ff, v_prev - step), v_prev + step)
    return min(max(v, -vmax), vmax)


def wall_speed(dist: float, amax: float, dt: float, free_dist: float) -> float:
    """Largest speed toward a wall ``dist`` ahead [m] that can still stop at it (braking at ``amax``).

    ``free_dist``: beyond it the wall does not constrain (returns +inf). Never more than ``dist/dt``, so one tick
    cannot cross the wall.
    """
    if dist >= free_dist:
        return math.inf
    if dist <= 0.0:
        return 0.0
    return min(braking_speed(dist, amax, dt), dist / dt)


def wall_free_distance(vmax: float, amax: float, dt: float) -> float:
    """Distance [m] from a wall beyond which :func:`wall_speed` ≥ vmax (no need to compute it)."""
    return vmax * vmax / (2.0 * amax) + 2.0 * vmax * dt


def keep_in_box3(
    v: Vec3, v_prev: Vec3, lo_speed: Vec3, hi_speed: Vec3, amax: float, dt: float
) -> tuple[Vec3, bool]:
    """Clip velocity ``v`` into the per-axis envelope [−lo_speed, hi_speed] without breaking |v − v_prev| ≤ amax·dt.

    The envelope comes from :func:`wall_speed` with the walls' deceleration amax/√3, so that braking toward all
    three walls of a corner at once is still within amax. Given that ``v_prev`` respected the previous tick's
    envelope, clip(v_prev) is within amax·dt of v_prev and inside the envelope; when clip(v) is too far from v_prev,
    the result is the point on the segment clip(v_prev) → clip(v) farthest along it that keeps the acceleration
    bound. Both end points are inside the envelope and the speed ball (clipping toward 0 only shrinks components),
    so the result is too. Returns (velocity, clipped?).
    """
    clipped = False
    c = [0.0, 0.0, 0.0]
    p = [0.0, 0.0, 0.0]
    for j in range(3):
        lo, hi = -lo_speed[j], hi_speed[j]
        vj = v[j]
        if vj > hi or vj < lo:
            clipped = True
            vj = min(max(vj, lo), hi)
        c[j] = vj
        p[j] = min(max(v_prev[j], lo), hi)
    if not clipped:
        return v, False
    step = amax * dt
    dx, dy, dz = c[0] - v_prev[0], c[1] - v_prev[1], c[2] - v_prev[2]
    if dx * dx + dy * dy + dz * dz <= step * step:
        return (c[0], c[1], c[2]), True
    u = (c[0] - p[0], c[1] - p[1], c[2] - p[2])
    w = (p[0] - v_prev[0], p[1] - v_prev[1], p[2] - v_prev[2])
    uu = u[0] * u[0] + u[1] * u[1] + u[2] * u[2]
    uw = u[0] * w[0] + u[1] * w[1] + u[2] * w[2]
    ww = w[0] * w[0] + w[1] * w[1] + w[2] * w[2]
    lam = 0.0
    if uu > TINY * TINY:  # largest λ with |w + λ·u| ≤ step (|w| ≤ step, so the root is real and ≥ 0)
        lam = min(1.0, max(0.0, (-uw + math.sqrt(max(0.0, uw * uw - uu * (ww - step * step)))) / uu))
    return (p[0] + lam * u[0], p[1] + lam * u[1], p[2] + lam * u[2]), True
