"""Safety filter between the timeline and the driver: workspace box, speed/acceleration limits, gripper range.

Axis legend: ad = action dimension, n = arms. Called once per servo tick (dt = 1/servo_rate_hz).
Frames: positions and workspace boxes are in the **world frame** the RDK reports ``tcp_pose`` in (``RobotStates``:
"w.r.t. world frame"); each arm has its own box (RDK 2 dual-arm: one world frame for both arms; RDK 1.9: each
Rizon's own world frame, its base frame unless set otherwise in Flexiv Elements).

The command never steps, whatever the start: every tick it moves by at most v_max·dt and changes its velocity by
at most a_max·dt (linear: Euclidean norms; angular on SO(3); joints and gripper per element).
- Per arm the target is clamped into the workspace box and the gripper range, then the command moves toward it:
  the target's own velocity (feed-forward, capped) plus a feedback term on the remaining lag that never asks for
  more than the braking speed ≈ sqrt(2·a_max·|lag|) (``rate_limits.limit3``).
- The box is a constraint on the command's velocity, not a clamp of its position: toward each wall the command
  may move only as fast as it can still stop at the wall (braking at a_max/√3 per axis, so that a corner is still
  within a_max), so a target that runs into a wall is followed up to the wall without a velocity step.
- A command outside the box (the measured pose at start or after a fault reset) may only move toward the box or
  hold: the box is grown to contain the command (on the outer side the wall is the command itself), so holding
  the measured pose holds, a target inside is approached within the limits, and a target further out holds that
  axis. The box shrinks back as the command moves in.
- Joint space: the same per joint, with optional joint position limits (``joint_min_rad``/``joint_max_rad``, e.g.
  the RDK's ``RobotInfo.q_min``/``q_max``).
Defaults follow Flexiv's streaming guidance: 1 m/s, 1.5 m/s², 300 °/s.
Every tick that changes the command by more than a small tolerance counts as an intervention (per kind);
a non-finite target is replaced by the last target, and the output is always finite.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import get_args, Literal

import numpy as np

from rtc_controller.action_space import ActionSpaceKind, arm_slices
from rtc_controller.geometry import so3
from rtc_controller.geometry.so3 import Vec3
from rtc_controller.control.rate_limits import SQRT3, keep_in_box3, limit1, limit3, wall_free_distance, wall_speed

DEFAULT_MAX_LINEAR_SPEED_M_S = 1.0
DEFAULT_MAX_LINEAR_ACC_M_S2 = 1.5
DEFAULT_MAX_ANGULAR_SPEED_RAD_S = math.radians(300.0)
DEFAULT_MAX_ANGULAR_ACC_RAD_S2 = 5.0  # RDK SendCartesianMotionForce's default max_angular_acc
DEFAULT_MAX_JOINT_SPEED_RAD_S = 1.0
DEFAULT_MAX_JOINT_ACC_RAD_S2 = 5.0
DEFAULT_MAX_GRIPPER_SPEED_M_S = 0.1
INTERVENTION_TOL_M = 1e-4  # a command moved by less than this (or 1e-3 rad) is not counted as an intervention
INTERVENTION_TOL_RAD = 1e-3

InterventionKind = Literal[
    "non_finite", "workspace", "gripper_range", "linear", "angular", "joint", "gripper_speed", "joint_range"
]
INTERVENTION_KINDS: tuple[str, ...] = get_args(InterventionKind)


@dataclass(frozen=True)
class ArmLimits:
    """Limits for one arm. Positions [m] in the world frame (see the module docstring), angles [rad].

    ``joint_min_rad``/``joint_max_rad``: joint position limits for the joint action space (None = none; the
    Flexiv drivers fill them from ``RobotInfo`` at start, see :func:`with_joint_limits`).
    """

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
    joint_min_rad: tuple[float, ...] | None = None
    joint_max_rad: tuple[float, ...] | None = None

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
        if (self.joint_min_rad is None) != (self.joint_max_rad is None):
            raise ValueError("give both joint_min_rad and joint_max_rad, or neither")
        if self.joint_min_rad is not None and self.joint_max_rad is not None:
            if len(self.joint_min_rad) != len(self.joint_max_rad) or not all(
                lo < hi for lo, hi in zip(self.joint_min_rad, self.joint_max_rad)
            ):
                raise ValueError(f"joint limits {self.joint_min_rad} .. {self.joint_max_rad}: need lo < hi per joint")

    def excess_m(self, position: tuple[float, float, float] | list[float] | np.ndarray) -> float:
        """How far ``position[3]`` [m, world frame] lies outside this arm's workspace box (0 inside; per axis max)."""
        lo, hi = self.workspace_min_m, self.workspace_max_m
        return max(0.0, *(max(lo[j] - float(position[j]), float(position[j]) - hi[j]) for j in range(3)))


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


def with_joint_limits(
    config: SafetyConfig, q_min: list[list[float]], q_max: list[list[float]], *, margin_rad: float = 0.0
) -> SafetyConfig:
    """``config`` with per-arm joint position limits ``[n][joints]`` (shrunk by ``margin_rad`` on each side)."""
    arms = tuple(
        dataclasses.replace(
            lim,
            joint_min_rad=tuple(float(q) + margin_rad for q in lo),
            joint_max_rad=tuple(float(q) - margin_rad for q in hi),
        )
        for lim, lo, hi in zip(config.arms, q_min, q_max)
    )
    return dataclasses.replace(config, arms=arms)


@dataclass
class SafetyCounters:
    ticks: int = 0
    intervened_ticks: int = 0  # ticks in which the filter changed the command (any kind, any arm)
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
        # walls decelerate at a_max/√3 per axis: braking toward the three walls of a corner at once stays <= a_max
        self._wall_acc = [lim.max_linear_acc_m_s2 / SQRT3 for lim in config.arms]
        self._wall_free = [
            wall_free_distance(lim.max_linear_speed_m_s, lim.max_linear_acc_m_s2 / SQRT3, self._dt) for lim in config.arms
        ]
        self._joint_free = max(wall_free_distance(lim.max_joint_speed_rad_s, lim.max_joint_acc_rad_s2, self._dt)
                               for lim in config.arms)  # fmt: skip
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

    def workspace_excess_m(self) -> tuple[float, ...]:
        """Per arm, how far the command is outside its workspace box [m] (Cartesian; () in joint space)."""
        if not self._cart:
            return ()
        return tuple(lim.excess_m(self._cmd[s.position]) for lim, s in zip(self.config.arms, self._sl))

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
        hits = 0
        for i, s in enumerate(self._sl):
            lim = self.config.arms[i]
            hits |= self._gripper_range(s.gripper, lim, t)
            if self._cart:
                hits |= self._linear(i, s.position.start, lim, t) | self._angular(i, s.rotation.start, lim, t)
            else:
                hits |= self._joints(s.joints, lim, t)
            hits |= self._gripper_rate(s.gripper, lim, t)
        self._target_prev[:] = t
        if hits:
            self.counters.intervened_ticks += 1
            for bit, kind in _HIT_KINDS:
                if hits & bit:
                    cnt[kind] += 1
        cmd = self._cmd
        total = sum(cmd)
        if total - total != 0.0:  # not expected with finite inputs; never emit it anyway
            cnt["non_finite"] += 1
            self.reset(self._last_good)
        else:
            self._last_good[:] = cmd
        out[:] = self._cmd

    # ---- per-arm parts of a tick (write the command in place; return intervention bits) -------------------------
    def _gripper_range(self, g: int, lim: ArmLimits, t: list[float]) -> int:
        gc = min(max(t[g], lim.gripper_min_m), lim.gripper_max_m)
        if gc != t[g]:
            t[g] = gc
            return _GRIPPER_RANGE
        return 0

    def _gripper_rate(self, g: int, lim: ArmLimits, t: list[float]) -> int:
        cmd = self._cmd
        step = lim.max_gripper_speed_m_s * self._dt
        cmd[g] += min(max(t[g] - cmd[g], -step), step)
        return _GRIPPER_SPEED if abs(cmd[g] - t[g]) > INTERVENTION_TOL_M else 0

    def _linear(self, i: int, p0: int, lim: ArmLimits, t: list[float]) -> int:
        """Position: target clamped into the box grown to contain the command, bounded velocity, wall envelope."""
        dt, cmd, tp = self._dt, self._cmd, self._target_prev
        hits = 0
        c = (cmd[p0], cmd[p0 + 1], cmd[p0 + 2])
        lo = [min(lim.workspace_min_m[j], c[j]) for j in range(3)]  # a command outside: its wall is itself
        hi = [max(lim.workspace_max_m[j], c[j]) for j in range(3)]
        pc = [min(max(t[p0 + j], lo[j]), hi[j]) for j in range(3)]
        if pc[0] != t[p0] or pc[1] != t[p0 + 1] or pc[2] != t[p0 + 2]:
            hits |= _WORKSPACE
            t[p0], t[p0 + 1], t[p0 + 2] = pc
        lag = (tp[p0] - c[0], tp[p0 + 1] - c[1], tp[p0 + 2] - c[2])
        vff = ((pc[0] - tp[p0]) / dt, (pc[1] - tp[p0 + 1]) / dt, (pc[2] - tp[p0 + 2]) / dt)
        vmax, amax = lim.max_linear_speed_m_s, lim.max_linear_acc_m_s2
        v_prev = self._v_lin[i]
        v = limit3(lag, vff, v_prev, vmax, amax, dt)
        aw, free = self._wall_acc[i], self._wall_free[i]
        v, clipped = keep_in_box3(
            v, v_prev,
            tuple(wall_speed(c[j] - lo[j], aw, dt, free) for j in range(3)),
            tuple(wall_speed(hi[j] - c[j], aw, dt, free) for j in range(3)),
            amax, dt,
        )  # fmt: skip
        if clipped:
            hits |= _WORKSPACE
        self._v_lin[i] = v
        for j in range(3):
            nx = c[j] + v[j] * dt
            if abs(nx - pc[j]) > INTERVENTION_TOL_M:
                hits |= _LINEAR
            cmd[p0 + j] = nx
        return hits

    def _angular(self, i: int, r0: int, lim: ArmLimits, t: list[float]) -> int:
        """Rotation on SO(3): body-frame angular velocity toward the target, bounded speed and acceleration."""
        dt, cmd = self._dt, self._cmd
        r_t = (t[r0], t[r0 + 1], t[r0 + 2])
        q_t = so3.rotvec_to_quat_s(r_t)
        wff = so3.relative_rotvec_s(self._q_target_prev[i], q_t)
        wff = (wff[0] / dt, wff[1] / dt, wff[2] / dt)
        lag = so3.relative_rotvec_s(self._q_cmd[i], self._q_target_prev[i])
        w = limit3(lag, wff, self._v_ang[i], lim.max_angular_speed_rad_s, lim.max_angular_acc_rad_s2, dt)
        self._v_ang[i] = w
        q_new = so3.quat_mul_s(self._q_cmd[i], so3.rotvec_to_quat_s((w[0] * dt, w[1] * dt, w[2] * dt)))
        qn = math.sqrt(sum(c * c for c in q_new))
        q_new = (q_new[0] / qn, q_new[1] / qn, q_new[2] / qn, q_new[3] / qn)
        cmd[r0], cmd[r0 + 1], cmd[r0 + 2] = so3.rotvec_near_s(so3.quat_to_rotvec_s(q_new), r_t)
        self._q_cmd[i] = q_new
        self._q_target_prev[i] = q_t
        return _ANGULAR if so3.angle_between_s(q_new, q_t) > INTERVENTION_TOL_RAD else 0

    def _joints(self, joints: slice, lim: ArmLimits, t: list[float]) -> int:
        """Joints element-wise; with joint limits, each joint's range acts like a wall (1-D envelope)."""
        dt, cmd, tp = self._dt, self._cmd, self._target_prev
        vmax, amax = lim.max_joint_speed_rad_s, lim.max_joint_acc_rad_s2
        qlo, qhi = lim.joint_min_rad, lim.joint_max_rad
        hits = 0
        for k, j in enumerate(range(joints.start, joints.stop)):
            c = cmd[j]
            if qlo is not None and qhi is not None:
                lo, hi = min(qlo[k], c), max(qhi[k], c)
                tc = min(max(t[j], lo), hi)
                if tc != t[j]:
                    hits |= _JOINT_RANGE
                    t[j] = tc
            v = limit1(tp[j] - c, (t[j] - tp[j]) / dt, self._v_j[j], vmax, amax, dt)
            if qlo is not None and qhi is not None:  # 1-D: a plain clip keeps |Δv| <= amax·dt
                free = self._joint_free
                v = min(max(v, -wall_speed(c - lo, amax, dt, free)), wall_speed(hi - c, amax, dt, free))
            self._v_j[j] = v
            cmd[j] = c + v * dt
            if abs(cmd[j] - t[j]) > INTERVENTION_TOL_RAD:
                hits |= _JOINT
        return hits


_NON_FINITE, _WORKSPACE, _GRIPPER_RANGE, _LINEAR, _ANGULAR, _JOINT, _GRIPPER_SPEED, _JOINT_RANGE = (
    1 << k for k in range(8)
)
_HIT_KINDS = (
    (_WORKSPACE, "workspace"), (_GRIPPER_RANGE, "gripper_range"), (_LINEAR, "linear"), (_ANGULAR, "angular"),
    (_JOINT, "joint"), (_GRIPPER_SPEED, "gripper_speed"), (_JOINT_RANGE, "joint_range"),
)  # fmt: skip
