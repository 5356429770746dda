"""RDK 1.9 non-real-time Cartesian motion as the documentation describes it, for the stand-ins.

``SendCartesianMotionForce``: "Discretely send Cartesian motion ... The robot's internal motion generator will
smoothen the discrete commands"; ``velocity``: "Target TCP velocity ... when reaching the target pose ... Leaving
this input 0 can maximize robustness at the cost of reduced tracking performance". Each send re-plans: the TCP heads
for a reference that passes the new target with the target velocity (the target extrapolated along it), at most
``max_linear_vel`` and ``max_linear_acc``, braking so that it could stop at the reference. With a zero target
velocity every waypoint is a planned stop: a moving target is followed with a lag of about v²/(2·a). Rotation is
ideal (it jumps to the target), position is what the tests look at.
"""

from __future__ import annotations

import math

SUBSTEP_S = 0.001
TINY = 1e-12


class NrtPlanner:
    """One arm's TCP under NRT re-planning. ``send`` a new target; ``advance(now)`` integrates to ``now`` [s]."""

    def __init__(self, pose: list[float]) -> None:
        self.pose = list(pose)
        self.v = [0.0, 0.0, 0.0]
        self.target = list(pose[:3])
        self.vt = [0.0, 0.0, 0.0]
        self.vmax, self.amax = 0.5, 2.0
        self.t_send: float | None = None
        self.t: float | None = None

    def send(self, pose: list[float], velocity: list[float], vmax: float, amax: float, now: float) -> None:
        self.advance(now)
        self.target = list(pose[:3])
        self.vt = list(velocity[:3])
        self.vmax, self.amax = vmax, amax
        self.t_send = now
        self.pose[3:7] = pose[3:7]

    def jump(self, pose: list[float]) -> None:
        """Place the TCP (real-time streaming: the stand-ins track RT commands exactly)."""
        self.pose = list(pose)
        self.target = list(pose[:3])
        self.vt = [0.0, 0.0, 0.0]
        self.v = [0.0, 0.0, 0.0]

    def advance(self, now: float) -> None:
        if self.t is None or self.t_send is None:
            self.t = now
            return
        total = now - self.t
        if total <= 0:
            return
        n = max(1, math.ceil(total / SUBSTEP_S))
        h = total / n
        for k in range(n):
            self._step(h, self.t + (k + 1) * h)
        self.t = now

    def _step(self, h: float, t: float) -> None:
        x, v, a = self.pose, self.v, self.amax
        ref = [self.target[j] + self.vt[j] * (t - self.t_send) for j in range(3)]
        e = [ref[j] - x[j] for j in range(3)]
        d = math.sqrt(sum(c * c for c in e))
        vd = list(self.vt)
        if d > TINY:
            s = math.sqrt(2.0 * a * d)
            vd = [vd[j] + e[j] / d * s for j in range(3)]
        n = math.sqrt(sum(c * c for c in vd))
        if n > self.vmax:
            vd = [c * self.vmax / n for c in vd]
        dv = [vd[j] - v[j] for j in range(3)]
        dn = math.sqrt(sum(c * c for c in dv))
        if dn > a * h:
            dv = [c * a * h / dn for c in dv]
        for j in range(3):
            v[j] += dv[j]
            x[j] += v[j] * h
