"""When the executor approaches instead of following the policy: the start-up sequence (ROS-free, servo thread).

The executor asks this supervisor at three moments (see ``control/approach.py`` for the why and the motion):
- ``resume`` from holding: refuse (with the reason) while an arm's measured TCP is too far outside its workspace
  box; otherwise, once after start and after every fault reset, approach the ``ready_pose`` (if configured);
- the first chunk switch after a hold (no chunk was active): approach its commanded pose when it is far from the
  current command, or refuse (hold) when the approach would be longer than ``max_distance_m``. Only one such
  approach per take-over: after it, the next chunk takes over directly (its first action moves on from where
  the policy saw the arm, which a fixed threshold cannot tell from a jump, so a second check could loop);
- ``rearm`` after a fault reset: the ready pose is due again.

Phases (reported in diagnostics): ``idle`` (nothing planned), ``ready_pose`` / ``first_pose`` (approaching),
``refused`` (the last request was refused; the reason is in ``message``).
"""

from __future__ import annotations

import logging
import math

import numpy as np

from rtc_controller.action_space import ActionSpaceKind, arm_slices
from rtc_controller.geometry import so3
from rtc_controller.control.approach import Approach, ApproachConfig, clamp_into_boxes, outside_reason
from rtc_controller.control.safety import ArmLimits
from rtc_controller.control.timeline import ChunkTimeline

log = logging.getLogger(__name__)
ARM_NAMES = ("left", "right")


class StartupSupervisor:
    """Decides approaches and refusals; holds the active :class:`Approach`. See the module docstring."""

    def __init__(self, config: ApproachConfig, arms: tuple[ArmLimits, ...], kind: ActionSpaceKind) -> None:
        self.config = config
        self.arms = arms
        self.kind = kind
        self.num_arms = len(arms)
        self._sl = arm_slices(kind, self.num_arms)
        self.arm_names = ARM_NAMES[: self.num_arms] if self.num_arms <= len(ARM_NAMES) else tuple(
            f"arm{i}" for i in range(self.num_arms))  # fmt: skip
        if config.ready_pose and len(config.ready_pose) != (7 if kind == "cartesian" else 8) * self.num_arms:
            raise ValueError(f"ready_pose has {len(config.ready_pose)} values, need one {kind} pose per arm")
        for lim in arms:  # the filter would reshape a faster approach (and lag behind it)
            for name, value, limit_name, limit in (
                ("linear_speed_m_s", config.linear_speed_m_s, "max_linear_speed_m_s", lim.max_linear_speed_m_s),
                ("linear_acc_m_s2", config.linear_acc_m_s2, "max_linear_acc_m_s2", lim.max_linear_acc_m_s2),
                ("angular_speed_rad_s", config.angular_speed_rad_s, "max_angular_speed_rad_s", lim.max_angular_speed_rad_s),
                ("angular_acc_rad_s2", config.angular_acc_rad_s2, "max_angular_acc_rad_s2", lim.max_angular_acc_rad_s2),
                ("joint_speed_rad_s", config.joint_speed_rad_s, "max_joint_speed_rad_s", lim.max_joint_speed_rad_s),
                ("joint_acc_rad_s2", config.joint_acc_rad_s2, "max_joint_acc_rad_s2", lim.max_joint_acc_rad_s2),
                ("gripper_speed_m_s", config.gripper_speed_m_s, "max_gripper_speed_m_s", lim.max_gripper_speed_m_s),
            ):  # fmt: skip
                if value > limit:
                    raise ValueError(f"approach_{name} {value:g} exceeds {limit_name} {limit:g}")
        if config.ready_pose:
            reason = outside_reason(np.asarray(config.ready_pose), arms, kind=kind, max_outside_m=0.0,
                                    arm_names=self.arm_names)  # fmt: skip
            if reason:
                raise ValueError(f"ready_pose is outside the workspace: {reason.split(':')[0]}")
        self.active: Approach | None = None
        self.phase = "idle"
        self.message = ""
        self.approaches = 0
        self.refusals = 0
        self.dropped_chunks = 0
        self._ready_due = bool(config.ready_pose)
        self._first_pose_checked = False

    def rearm(self) -> None:
        """After start or a fault reset: the ready pose (if any) is due again, the take-over is checked again."""
        self.active = None
        self.phase = "idle"
        self._ready_due = bool(self.config.ready_pose)
        self._first_pose_checked = False

    def hold(self) -> None:
        """An operator hold: the next take-over is checked again (the ready pose is not due again)."""
        self.active = None
        if self.phase != "refused":
            self.phase = "idle"
        self._first_pose_checked = False

    def resume_refusal(self, measured: np.ndarray) -> str:
        """Why resuming from ``measured[ad]`` is refused ("" = allowed)."""
        reason = outside_reason(measured, self.arms, kind=self.kind, max_outside_m=self.config.max_outside_m,
                                arm_names=self.arm_names)  # fmt: skip
        if reason:
            self._refuse(reason)
        elif self.phase == "refused":
            self.phase, self.message = "idle", ""
        return reason

    def ready_approach(self, command: np.ndarray, t_s: float) -> Approach | None:
        """The approach to the ready pose if it is due and the arms are not there yet (None = go on)."""
        if not self._ready_due:
            return None
        self._ready_due = False
        goal = np.asarray(self.config.ready_pose, dtype=float)
        if not self.far(command, goal):
            return None
        return self._begin(Approach(command, goal, t_s, kind=self.kind, num_arms=self.num_arms, config=self.config,
                                    reason="ready pose"), "ready_pose")  # fmt: skip

    def first_pose(self, command: np.ndarray, commanded: np.ndarray, t_s: float) -> Approach | str | None:
        """At the first switch after a hold: an approach to ``commanded[ad]``, a refusal reason, or None (take
        over; also when this take-over already had its approach)."""
        if self._first_pose_checked:
            return None
        self._first_pose_checked = True
        goal = clamp_into_boxes(commanded, self.arms, self.kind)
        if not self.far(command, goal):
            return None
        plan = Approach(command, goal, t_s, kind=self.kind, num_arms=self.num_arms, config=self.config,
                        reason="first commanded pose")  # fmt: skip
        if plan.linear_m > self.config.max_distance_m:
            return self._refuse(
                f"the policy's first commanded pose is {plan.linear_m:.3f} m from the current pose (more than "
                f"approach_max_distance_m {self.config.max_distance_m:.3f}): holding; check the policy's frame and "
                "normalisation, or move the arms closer (ready_pose)"
            )
        return self._begin(plan, "first_pose")

    # ---- servo tick ---------------------------------------------------------------------------------------------
    def drop(self, slot: object) -> None:
        """A chunk handed over while approaching is not executed (counted); returns the emptied slot (None)."""
        if slot is not None:
            self.dropped_chunks += 1
        return None

    def step(self, t_s: float, target: np.ndarray, timeline: ChunkTimeline) -> bool:
        """Approaching: the planned pose for ``t_s`` into ``target[ad]``; True when done (the timeline then holds the
        goal until the next chunk)."""
        plan = self.active
        if plan is not None and not plan.sample(t_s, target):
            return False
        if plan is not None:
            self.message = f"approach to the {plan.reason} done ({plan.duration_s:.2f} s)"
        timeline.set_hold(target)
        self.active = None
        self.phase = "idle"
        return True

    def take_over(self, command: np.ndarray, commanded: np.ndarray, t_s: float, timeline: ChunkTimeline,
                  target: np.ndarray) -> str:  # fmt: skip
        """The first switch after a hold, to ``commanded[ad]``: "" (take over), "approach" (its chunk is dropped,
        ``target`` = the approach's first pose) or a refusal reason (the caller holds)."""
        decision = self.first_pose(command, commanded, t_s)
        if decision is None:
            return ""
        timeline.set_hold(command)  # the chunk is not executed
        if isinstance(decision, str):
            log.warning("take-over refused: %s", decision)
            return decision
        decision.sample(t_s, target)
        return "approach"

    def far(self, a: np.ndarray, b: np.ndarray) -> bool:
        """True when any arm of ``a`` and ``b`` differs by more than the approach thresholds (gripper ignored)."""
        c = self.config
        for sl in self._sl:
            if sl.rotation is None:
                if np.max(np.abs(a[sl.joints] - b[sl.joints])) > c.threshold_rad:
                    return True
                continue
            if float(np.linalg.norm(a[sl.position] - b[sl.position])) > c.threshold_m:
                return True
            qa = so3.rotvec_to_quat_s(tuple(a[sl.rotation]))
            qb = so3.rotvec_to_quat_s(tuple(b[sl.rotation]))
            if so3.angle_between_s(qa, qb) > c.threshold_rad:
                return True
        return False

    def _begin(self, plan: Approach, phase: str) -> Approach:
        self.active = plan
        self.phase = phase
        self.approaches += 1
        self.message = (f"approaching the {plan.reason}: {plan.linear_m:.3f} m in {plan.duration_s:.2f} s "
                        f"(approach_linear_speed_m_s {self.config.linear_speed_m_s:g})")  # fmt: skip
        return plan

    def _refuse(self, reason: str) -> str:
        self.refusals += 1
        self.phase = "refused"
        self.message = reason
        return reason

    def status(self) -> dict[str, str | int | float]:
        """For diagnostics: phase, counters, the last message, the active approach's progress."""
        a = self.active
        return {
            "approach_phase": self.phase,
            "approaches": self.approaches,
            "approach_refusals": self.refusals,
            "chunks_dropped_approaching": self.dropped_chunks,
            "approach_duration_s": a.duration_s if a is not None else math.nan,
            "approach_message": self.message,
        }
