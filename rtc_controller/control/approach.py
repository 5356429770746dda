"""The start-up approach: a speed-limited, explicit move to the ready pose and to the policy's first commanded pose.

Why: when the policy takes over from a held pose (start, after ``~/hold``/``~/resume`` from a re-arm, after a fault
reset), its first chunk may start far from where the arm is. The safety filter would still never step, but it would
move at the running limits (up to ``max_linear_speed_m_s``) toward a pose the operator did not see coming. Instead:

1. ``ready_pose`` (optional, per arm, world frame): on the first ``resume`` after start or after a fault reset the
   arms move there first (a straight line in position, slerp in rotation, linear gripper and joints).
2. First chunk after a hold: when its command at the switch is farther than ``threshold_m``/``threshold_rad``
   from the current command, that chunk is not executed; the arms approach its first commanded pose instead, then
   hold there. The policy's next chunk, conditioned on the robot at that pose, takes over (and is checked again).
3. Refusals, each with the reason in diagnostics and in the ``~/resume`` reply: an arm's measured TCP farther than
   ``max_outside_m`` outside its workspace box (jog it in first), or an approach longer than ``max_distance_m``.

Time scaling: minimum jerk, s(τ) = 10τ³ − 15τ⁴ + 6τ⁵ for τ = (t − t0)/T in [0, 1]: zero velocity and acceleration
at both ends; peak speed 1.875·L/T and peak acceleration 5.77·L/T² for a path of length L, so T is the smallest
duration that keeps every arm's linear, angular, joint and gripper motion within the approach speeds and
accelerations. Times are on the executor clock [s]. Vectors are ``[ad]`` in the action space.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rtc_controller.action_space import ActionSpaceKind, arm_slices
from rtc_controller.geometry import so3
from rtc_controller.control.safety import ArmLimits

MIN_JERK_PEAK_SPEED = 1.875  # max of ds/dτ
MIN_JERK_PEAK_ACC = 10.0 / math.sqrt(3.0)  # max of |d²s/dτ²|
AXES = ("x", "y", "z")


@dataclass(frozen=True)
class ApproachConfig:
    """Attributes (speeds are the approach's peaks, well below the running limits):
    ready_pose: ``[ad]`` pose to approach on the first resume (world frame, like the action space); () = none.
    linear_speed_m_s, linear_acc_m_s2: TCP translation.
    angular_speed_rad_s, angular_acc_rad_s2: TCP rotation.
    joint_speed_rad_s, joint_acc_rad_s2: joints (joint action space).
    gripper_speed_m_s: gripper width.
    threshold_m, threshold_rad: a first commanded pose closer than both is taken over without an approach.
    max_outside_m: refuse to resume while a measured TCP is farther than this outside its workspace box [m].
    max_distance_m: refuse an approach whose TCP path is longer than this [m].
    """

    ready_pose: tuple[float, ...] = ()
    linear_speed_m_s: float = 0.1
    linear_acc_m_s2: float = 0.5
    angular_speed_rad_s: float = 0.5
    angular_acc_rad_s2: float = 1.0
    joint_speed_rad_s: float = 0.3
    joint_acc_rad_s2: float = 1.0
    gripper_speed_m_s: float = 0.05
    threshold_m: float = 0.05
    threshold_rad: float = 0.2
    max_outside_m: float = 0.05
    max_distance_m: float = 0.8

    def __post_init__(self) -> None:
        rates = (self.linear_speed_m_s, self.linear_acc_m_s2, self.angular_speed_rad_s, self.angular_acc_rad_s2,
                 self.joint_speed_rad_s, self.joint_acc_rad_s2, self.gripper_speed_m_s, self.max_distance_m)  # fmt: skip
        if not all(math.isfinite(r) and r > 0 for r in rates):
            raise ValueError("approach speeds, accelerations and max_distance_m must be finite and > 0")
        if min(self.threshold_m, self.threshold_rad, self.max_outside_m) < 0:
            raise ValueError("approach thresholds and max_outside_m must be >= 0")
        if not all(math.isfinite(v) for v in self.ready_pose):
            raise ValueError(f"ready_pose must be finite, got {self.ready_pose}")


def min_jerk(tau: float) -> float:
    """s(τ) = 10τ³ − 15τ⁴ + 6τ⁵, clamped to [0, 1] outside τ ∈ [0, 1]. E.g. s(0.5) = 0.5, s(0.25) ≈ 0.104."""
    if tau <= 0.0:
        return 0.0
    if tau >= 1.0:
        return 1.0
    return tau * tau * tau * (10.0 + tau * (-15.0 + 6.0 * tau))


def _duration(length: float, speed: float, acc: float) -> float:
    """Shortest min-jerk duration [s] for a path ``length`` within peak ``speed`` and ``acc``."""
    if length <= 0.0:
        return 0.0
    return max(MIN_JERK_PEAK_SPEED * length / speed, math.sqrt(MIN_JERK_PEAK_ACC * length / acc))


@dataclass(frozen=True)
class ArmPath:
    """One arm's approach: lengths [m, rad, m] and, for rotations, the start quaternion and body-frame rotvec."""

    linear_m: float
    angular_rad: float
    joint_rad: float
    gripper_m: float
    q0: so3.Quat | None
    rel: so3.Vec3 | None


class Approach:
    """A planned approach from ``start[ad]`` to ``goal[ad]`` beginning at ``t0_s``; ``sample(t, out)``."""

    def __init__(self, start: np.ndarray, goal: np.ndarray, t0_s: float, *, kind: ActionSpaceKind, num_arms: int,
                 config: ApproachConfig, reason: str) -> None:  # fmt: skip
        self.start = np.asarray(start, dtype=float).copy()
        self.goal = np.asarray(goal, dtype=float).copy()
        self.t0_s = t0_s
        self.reason = reason
        self._sl = arm_slices(kind, num_arms)
        self._delta = (self.goal - self.start).tolist()
        self._start = self.start.tolist()
        self.paths = tuple(self._arm_path(s) for s in self._sl)
        c = config
        self.duration_s = max(
            max(_duration(p.linear_m, c.linear_speed_m_s, c.linear_acc_m_s2),
                _duration(p.angular_rad, c.angular_speed_rad_s, c.angular_acc_rad_s2),
                _duration(p.joint_rad, c.joint_speed_rad_s, c.joint_acc_rad_s2),
                _duration(p.gripper_m, c.gripper_speed_m_s, c.gripper_speed_m_s * 10.0))
            for p in self.paths
        )  # fmt: skip

    def _arm_path(self, s) -> ArmPath:
        d = self._delta
        grip = abs(d[s.gripper])
        if s.rotation is None:
            joint = max(abs(x) for x in d[s.joints])
            return ArmPath(0.0, 0.0, joint, grip, None, None)
        p, r = s.position.start, s.rotation.start
        lin = math.sqrt(sum(x * x for x in d[p : p + 3]))
        q0 = so3.rotvec_to_quat_s(tuple(self.start[r : r + 3]))
        q1 = so3.rotvec_to_quat_s(tuple(self.goal[r : r + 3]))
        rel = so3.relative_rotvec_s(q0, q1)
        return ArmPath(lin, math.sqrt(sum(x * x for x in rel)), 0.0, grip, q0, rel)

    @property
    def linear_m(self) -> float:
        """The longest TCP path of the arms [m] (0 in joint space)."""
        return max(p.linear_m for p in self.paths)

    def done(self, t_s: float) -> bool:
        return t_s >= self.t0_s + self.duration_s

    def sample(self, t_s: float, out: np.ndarray) -> bool:
        """Command at ``t_s`` into ``out[ad]``; True once the approach is complete (``out`` = goal)."""
        if self.duration_s <= 0.0 or t_s >= self.t0_s + self.duration_s:
            out[:] = self.goal
            return True
        s = min_jerk((t_s - self.t0_s) / self.duration_s)
        cmd = [a + s * d for a, d in zip(self._start, self._delta)]
        for sl, path in zip(self._sl, self.paths):
            if path.q0 is not None and path.rel is not None:
                w = path.rel
                q = so3.quat_mul_s(path.q0, so3.rotvec_to_quat_s((w[0] * s, w[1] * s, w[2] * s)))
                r = sl.rotation.start
                cmd[r : r + 3] = so3.rotvec_near_s(so3.quat_to_rotvec_s(q), tuple(self._start[r : r + 3]))
        out[:] = cmd
        return False


def outside_reason(state: np.ndarray, arms: tuple[ArmLimits, ...], *, kind: ActionSpaceKind, max_outside_m: float,
                   arm_names: tuple[str, ...]) -> str:  # fmt: skip
    """Why ``state[ad]`` may not be approached from ("" = fine): an arm's TCP farther than ``max_outside_m`` outside
    its workspace box (Cartesian only; joint space has no box)."""
    if kind != "cartesian":
        return ""
    for name, sl, lim in zip(arm_names, arm_slices(kind, len(arms)), arms):
        p = state[sl.position]
        if lim.excess_m(p) <= max_outside_m:
            continue
        axes = []
        for j, axis in enumerate(AXES):
            if p[j] > lim.workspace_max_m[j]:
                axes.append(f"{axis} {p[j]:.3f} > max {lim.workspace_max_m[j]:.3f}")
            elif p[j] < lim.workspace_min_m[j]:
                axes.append(f"{axis} {p[j]:.3f} < min {lim.workspace_min_m[j]:.3f}")
        return (f"{name} arm TCP is {lim.excess_m(p):.3f} m outside its workspace box ({', '.join(axes)} m, world "
                f"frame; approach_max_outside_m {max_outside_m:.3f}): move it inside (Flexiv Elements: jog or "
                "freedrive), then resume")  # fmt: skip
    return ""


def clamp_into_boxes(pose: np.ndarray, arms: tuple[ArmLimits, ...], kind: ActionSpaceKind) -> np.ndarray:
    """``pose[ad]`` with each arm's TCP position clamped into its workspace box (a copy; joint space unchanged)."""
    out = np.array(pose, dtype=float)
    if kind == "cartesian":
        for sl, lim in zip(arm_slices(kind, len(arms)), arms):
            out[sl.position] = np.clip(out[sl.position], lim.workspace_min_m, lim.workspace_max_m)
    return out
