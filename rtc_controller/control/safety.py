"""Safety filter between the timeline and the driver: workspace box, speed/acceleration limits, gripper range.

Axis legend: ad = action dimension, n = arms. Called once per servo tick (dt = 1/servo_rate_hz).

Per arm the filter clamps the target into the workspace box and the gripper range, then moves the command toward
the target with bounded speed and acceleration instead of jumping: the command follows the target's own velocity
(feed-forward, capped at the speed limit) plus a feedback term on the remaining lag that never asks for more than
the braking velocity ≈ sqrt(2·a_max·|lag|); the resulting velocity change per tick is capped at a_max·dt and the
speed at v_max. Rotations are handled on SO(3) (body-frame rotation vectors), joints element-wise.
Defaults follow Flexiv's streaming guidance: 1 m/s, 1.5 m/s², 300 °/s.
Every tick that changes the command by more than a small tolerance counts as an intervention (per kind);
a non-finite target is replaced by the last target, and the output is always finite.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import get_args, Literal

import numpy as np

from rtc_controller.action_space import ActionSpaceKind, arm_slices
from rtc_controller.control import so3
from rtc_controller.control.so3 import Vec3

DEFAULT_MAX_LINEAR_SPEED_M_S = 1.0
DEFAULT_MAX_LINEAR_ACC_M_S2 = 1.5
DEFAULT_MAX_ANGULAR_SPEED_RAD_S = math.radians(300.0)
DEFAULT_MAX_ANGULAR_ACC_RAD_S2 = 5.0  # RDK SendCartesianMotionForce's default max_angular_acc
DEFAULT_MAX_JOINT_SPEED_RAD_S = 1.0
DEFAULT_MAX_JOINT_ACC_RAD_S2 = 5.0
DEFAULT_MAX_GRIPPER_SPEED_M_S = 0.1
INTERVENTION_TOL_M = 1e-4  # a command moved by less than this (or 1e-3 rad) is not counted as an intervention
INTERVENTION_TOL_RAD = 1e-3
TINY = 1e-12

InterventionKind = Literal["non_finite", "workspace", "gripper_range", "linear", "angular", "joint", "gripper_speed"]
INTERVENTION_KINDS: tuple[str, ...] = get_args(InterventionKind)


@dataclass(frozen=True)
class ArmLimits:
    """Limits for one arm. Positions [m] in the robot base frame, angles [rad]."""

    workspace_min_m: tuple[float, float, float] = (-1.0, -1.0, 0.0)
    workspace_max_m: tuple[float, float, float] = (1.0, 1.0, 1.5)
    max_linear_speed_m_s: float = DEFAULT_MAX_LINEAR_SPEED_M_S
    max_linear_acc_m_s2: float = DEFAULT_MAX_LINEAR_ACC_M_S2
    max_angular_speed_rad_s: float = DEFAULT_MAX_ANGULAR_SPEED_RAD_S
    max_angular_acc_rad_s2: float = DEFAULT_MAX_ANGULAR_ACC_RAD_S2
    max_joint_speed_rad_s: float = DEFAULT_MAX_JOINT_SPEED_RAD_S
    max_joint_acc_rad_s2: float = DEFAULT_MAX_JOINT_ACC_RAD_S2
    gripper_min_m: float = 0.0
    gripper_max_m: float = 0.1
    max_gripper_speed_m_s: float = DEFAULT_MAX_GRIPPER_SPEED_M_S

    def __post_init__(self) -> None:
        if len(self.workspace_min_m) != 3 or len(self.workspace_max_m) != 3:
            raise ValueError("workspace bounds need 3 values each")
        if any(lo >= hi for lo, hi in zip(self.workspace_min_m, self.workspace_max_m)):
            raise ValueError(f"workspace_min_m {self.workspace_min_m} must be below workspace_max_m {self.workspace_max_m}")
        rates = (
            self.max_linear_speed_m_s, self.max_linear_acc_m_s2, self.max_angular_speed_rad_s,
            self.max_angular_acc_rad_s2, self.max_joint_speed_rad_s, self.max_joint_acc_rad_s2,
            self.max_gripper_speed_m_s,
        )  # fmt: skip
        if not all(r > 0 and math.isfinite(r) for r in rates):
            raise ValueError("speed and acceleration limits must be finite and > 0")
        if not 0.0 <= self.gripper_min_m < self.gripper_max_m:
            raise ValueError(f"need 0 <= gripper_min_m < gripper_max_m, got {self.gripper_min_m}, {self.gripper_max_m}")


@dataclass(frozen=True)
class SafetyConfig:
    """Attributes: servo_dt_s [s] between calls; arms: one ArmLimits per arm; kind: the action space."""

    servo_dt_s: float
    arms: tuple[ArmLimits, ...] = (ArmLimits(), ArmLimits())
    kind: ActionSpaceKind = "cartesian"

    def __post_init__(self) -> None:
        if not (self.servo_dt_s > 0 and math.isfinite(self.servo_dt_s)):
            raise ValueError(f"servo_dt_s must be > 0, got {self.servo_dt_s}")
        if not self.arms:
            raise ValueError("at least one arm")


def _braking_speed(dist: float, amax: float, dt: float) -> float:
    """The fastest speed from which braking at ``amax`` in ticks of ``dt`` stops within ``dist``.

    Discrete form of sqrt(2·a·dist): v = a·dt·(sqrt(1/4 + 2·dist/(a·dt²)) − 1/2), so the command lands without
    overshoot-and-return.
    """
    adt = amax * dt
    return adt * (math.sqrt(0.25 + 2.0 * dist / (adt * dt)) - 0.5)


def _limit3(lag: Vec3, v_ff: Vec3, v_prev: Vec3, vmax: float, amax: float, dt: float) -> Vec3:
    """Bounded velocity toward a target moving at ``v_ff`` with remaining ``lag`` (3-vectors, plain floats).

    Returns v with |v| ≤ vmax and |v − v_prev| ≤ amax·dt (Euclidean norms).
    """
    fx, fy, fz = v_ff
    fn = math.sqrt(fx * fx + fy * fy + fz * fz)
    if fn > vmax:
        k = vmax / fn
        fx, fy, fz = fx * k, fy * k, fz * k
    lx, ly, lz = lag
    ln = math.sqrt(lx * lx + ly * ly + lz * lz)
    if ln > TINY:
        fb = min(ln / dt, _braking_speed(ln, amax, dt)) / ln
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


def _limit1(lag: float, v_ff: float, v_prev: float, vmax: float, amax: float, dt: float) -> float:
    """One-dimensional :func:`_limit3` (joints)."""
    v_ff = min(max(v_ff, -vmax), vmax)
    a = abs(lag)
    if a > TINY:
        v_ff += math.copysign(min(a / dt, _braking_speed(a, amax, dt)), lag)
    step = amax * dt
    v = min(max(v_ff, v_prev - step), v_prev + step)
    return min(max(v, -vmax), vmax)


@dataclass
class SafetyCounters:
    ticks: int = 0
    interventions: dict[str, int] = field(default_factory=lambda: {k: 0 for k in INTERVENTION_KINDS})

    @property
    def total(self) -> int:
        return sum(self.interventions.values())


class SafetyFilter:
    """Stateful per-tick filter: ``filter(target[ad], out[ad])``. Call ``reset(measured)`` before streaming.

    The hot path works on plain Python floats (numpy's per-call overhead would dominate a 1 kHz tick).
    """

    def __init__(self, config: SafetyConfig) -> None:
        self.config = config
        n = len(config.arms)
        self._sl = arm_slices(config.kind, n)
        self._dt = config.servo_dt_s
        self._cart = config.kind == "cartesian"
        self.ad = n * (7 if self._cart else 8)
        self._n = n
        self._cmd = [0.0] * self.ad
        self._last_good = [0.0] * self.ad
        self._target_prev = [0.0] * self.ad
        self._q_cmd: list[so3.Quat] = [(1.0, 0.0, 0.0, 0.0)] * n
        self._q_target_prev: list[so3.Quat] = [(1.0, 0.0, 0.0, 0.0)] * n
        self._v_lin: list[Vec3] = [(0.0, 0.0, 0.0)] * n
        self._v_ang: list[Vec3] = [(0.0, 0.0, 0.0)] * n
        self._v_j = [0.0] * self.ad
        self.counters = SafetyCounters()
        self.ready = False

    def reset(self, measured: np.ndarray | list[float]) -> None:
        """Start from the measured state ``[ad]`` at rest (must be finite)."""
        m = np.asarray(measured, dtype=np.float64)
        if m.shape != (self.ad,) or not np.all(np.isfinite(m)):
            raise ValueError(f"reset needs a finite state of shape ({self.ad},), got {m}")
        m = m.tolist()
        self._cmd[:] = m
        self._last_good[:] = m
        self._target_prev[:] = m
        for i, s in enumerate(self._sl):
            if s.rotation is not None:
                q = so3.rotvec_to_quat_s(tuple(m[s.rotation]))
                self._q_cmd[i] = q
                self._q_target_prev[i] = q
        self._v_lin = [(0.0, 0.0, 0.0)] * self._n
        self._v_ang = [(0.0, 0.0, 0.0)] * self._n
        self._v_j = [0.0] * self.ad
        self.ready = True

    @property
    def command(self) -> np.ndarray:
        """The last emitted command ``[ad]`` (a copy)."""
        return np.array(self._cmd)

    @property
    def speed(self) -> np.ndarray:
        """Current command speed per arm: linear [m/s] (Cartesian) or the fastest joint [rad/s] (joint)."""
        if self._cart:
            return np.array([math.sqrt(sum(c * c for c in v)) for v in self._v_lin])
        return np.array([max(abs(self._v_j[j]) for j in range(s.joints.start, s.joints.stop)) for s in self._sl])

    def stopping_target(self) -> np.ndarray:
        """Where the command comes to rest when braking at the acceleration limits from its current velocity.

        Holding this target (instead of the current command) stops without overshoot-and-return.
        """
        out = list(self._cmd)
        for i, s in enumerate(self._sl):
            lim = self.config.arms[i]
            if self._cart:
                v = self._v_lin[i]
                vn = math.sqrt(v[0] ** 2 + v[1] ** 2 + v[2] ** 2)
                k = vn / (2.0 * lim.max_linear_acc_m_s2) + 0.5 * self._dt  # discrete braking distance
                p0 = s.position.start
                for j in range(3):
                    out[p0 + j] += v[j] * k
                w = self._v_ang[i]
                wn = math.sqrt(w[0] ** 2 + w[1] ** 2 + w[2] ** 2)
                k = wn / (2.0 * lim.max_angular_acc_rad_s2) + 0.5 * self._dt
                q = so3.quat_mul_s(self._q_cmd[i], so3.rotvec_to_quat_s((w[0] * k, w[1] * k, w[2] * k)))
                r0 = s.rotation.start
                out[r0 : r0 + 3] = so3.rotvec_near_s(so3.quat_to_rotvec_s(q), tuple(self._cmd[r0 : r0 + 3]))
            else:
                for j in range(s.joints.start, s.joints.stop):
                    out[j] += self._v_j[j] * abs(self._v_j[j]) / (2.0 * lim.max_joint_acc_rad_s2)
        return np.array(out)

    def filter(self, target: np.ndarray, out: np.ndarray) -> None:
        """One tick: move the command toward ``target[ad]`` within limits, write it to ``out[ad]``."""
        if not self.ready:
            raise RuntimeError("SafetyFilter.reset(measured) must be called before filter()")
        dt = self._dt
        cnt = self.counters.interventions
        self.counters.ticks += 1
        t = target.tolist()
        total = sum(t)
        if total - total != 0.0:  # NaN or ±inf somewhere
            tp = self._target_prev
            for i, v in enumerate(t):
                if not math.isfinite(v):
                    t[i] = tp[i]
            cnt["non_finite"] += 1
        cmd = self._cmd
        tp = self._target_prev
        hit_ws = hit_gr = hit_lin = hit_ang = hit_j = hit_gs = False
        for i, s in enumerate(self._sl):
            lim = self.config.arms[i]
            g = s.gripper
            gc = min(max(t[g], lim.gripper_min_m), lim.gripper_max_m)
            if gc != t[g]:
                hit_gr = True
                t[g] = gc
            if self._cart:
                p0 = s.position.start
                lo, hi = lim.workspace_min_m, lim.workspace_max_m
                pc = [min(max(t[p0 + j], lo[j]), hi[j]) for j in range(3)]
                if pc[0] != t[p0] or pc[1] != t[p0 + 1] or pc[2] != t[p0 + 2]:
                    hit_ws = True
                    t[p0], t[p0 + 1], t[p0 + 2] = pc
                lag = (tp[p0] - cmd[p0], tp[p0 + 1] - cmd[p0 + 1], tp[p0 + 2] - cmd[p0 + 2])
                vff = ((pc[0] - tp[p0]) / dt, (pc[1] - tp[p0 + 1]) / dt, (pc[2] - tp[p0 + 2]) / dt)
                v = _limit3(lag, vff, self._v_lin[i], lim.max_linear_speed_m_s, lim.max_linear_acc_m_s2, dt)
                self._v_lin[i] = v
                for j in range(3):
                    nx = min(max(cmd[p0 + j] + v[j] * dt, lo[j]), hi[j])
                    if abs(nx - pc[j]) > INTERVENTION_TOL_M:
                        hit_lin = True
                    cmd[p0 + j] = nx
                r0 = s.rotation.start
                r_t = (t[r0], t[r0 + 1], t[r0 + 2])
                q_t = so3.rotvec_to_quat_s(r_t)
                wff = so3.relative_rotvec_s(self._q_target_prev[i], q_t)
                wff = (wff[0] / dt, wff[1] / dt, wff[2] / dt)
                lag = so3.relative_rotvec_s(self._q_cmd[i], self._q_target_prev[i])
                w = _limit3(lag, wff, self._v_ang[i], lim.max_angular_speed_rad_s, lim.max_angular_acc_rad_s2, dt)
                self._v_ang[i] = w
                q_new = so3.quat_mul_s(self._q_cmd[i], so3.rotvec_to_quat_s((w[0] * dt, w[1] * dt, w[2] * dt)))
                qn = math.sqrt(sum(c * c for c in q_new))
                q_new = (q_new[0] / qn, q_new[1] / qn, q_new[2] / qn, q_new[3] / qn)
                if so3.angle_between_s(q_new, q_t) > INTERVENTION_TOL_RAD:
                    hit_ang = True
                cmd[r0], cmd[r0 + 1], cmd[r0 + 2] = so3.rotvec_near_s(so3.quat_to_rotvec_s(q_new), r_t)
                self._q_cmd[i] = q_new
                self._q_target_prev[i] = q_t
            else:
                vmax, amax = lim.max_joint_speed_rad_s, lim.max_joint_acc_rad_s2
                for j in range(s.joints.start, s.joints.stop):
                    v = _limit1(tp[j] - cmd[j], (t[j] - tp[j]) / dt, self._v_j[j], vmax, amax, dt)
                    self._v_j[j] = v
                    cmd[j] += v * dt
                    if abs(cmd[j] - t[j]) > INTERVENTION_TOL_RAD:
                        hit_j = True
            step = lim.max_gripper_speed_m_s * dt
            cmd[g] += min(max(gc - cmd[g], -step), step)
            if abs(cmd[g] - gc) > INTERVENTION_TOL_M:
                hit_gs = True
        tp[:] = t
        if hit_ws:
            cnt["workspace"] += 1
        if hit_gr:
            cnt["gripper_range"] += 1
        if hit_lin:
            cnt["linear"] += 1
        if hit_ang:
            cnt["angular"] += 1
        if hit_j:
            cnt["joint"] += 1
        if hit_gs:
            cnt["gripper_speed"] += 1
        total = sum(cmd)
        if total - total != 0.0:  # not expected with finite inputs; never emit it anyway
            cnt["non_finite"] += 1
            self.reset(self._last_good)
        else:
            self._last_good[:] = cmd
        out[:] = self._cmd
