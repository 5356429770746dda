"""The twin's Cartesian motion controller: plays the role of the RDK's RT Cartesian mode at the physics rate.

Per physics step (1 kHz) and arm, damped-least-squares inverse kinematics on the TCP site:
    e   = [p* − p ; w·log(R* Rᵀ)]                        pose error [m; rad·w], world frame, capped per step
    dq  = J⁺ (e + τ_ff·ẋ*) + (I − J⁺J) · k_null · ∇h(q)   J⁺ = Jᵀ (J Jᵀ + λ² I)⁻¹,  J = [J_p; w·J_r]  (6 × 7)
    q_d = clip(q + clip(dq, ±q̇_max·τ), q_min + m, q_max − m)
and the joint position servos (MuJoCo position actuators with gravity compensation) track q_d. ẋ* is the target's
velocity (its motion since the last step) and τ_ff = kv/kp of the servos, so their damping does not make the arm
lag a moving target. ∇h pulls the posture toward the rest posture, with a barrier that grows near the joint limits
(joint-limit avoidance); it changes slowly and is refreshed every ``NULL_EVERY`` steps. The clip keeps the servo
targets ``limit_margin_rad`` inside the limits. The gripper width w is split into w/2 per finger.

Cost: the hot path is written for few NumPy calls (contiguous slices, one Cholesky solve per arm through MuJoCo's
``mju_cholFactor``/``mju_cholSolve``), because NumPy's per-call overhead, not arithmetic, sets the cost of 6 × 7
algebra at 1 kHz.

Axes: n = 7 joints per arm; poses in the world frame; p [m], R as quaternions (w, x, y, z).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mujoco
import numpy as np

from rtc_controller.sim import rizon4

NULL_EVERY = 10  # physics steps between refreshes of the null-space (posture / joint-limit) term


@dataclass(frozen=True)
class ControllerConfig:
    """damping: λ of the DLS inverse; max_pos_err_m / max_rot_err_rad: error cap per step; null_gain: k_null;
    limit_margin_rad: servo targets stay this far inside the joint limits; speed_horizon_s: τ, the joint step
    per tick is capped at q̇_max·τ; rot_weight [m/rad]: weight w of rotation error vs position error."""

    damping: float = 0.03
    max_pos_err_m: float = 0.03
    max_rot_err_rad: float = 0.2
    null_gain: float = 0.02
    limit_margin_rad: float = 0.05
    speed_horizon_s: float = 0.02
    rot_weight: float = 0.3

    def __post_init__(self) -> None:
        for k, v in vars(self).items():
            if not (np.isfinite(v) and v >= 0):
                raise ValueError(f"controller: {k} must be finite and >= 0, got {v}")


def _span(addrs: list[int]) -> slice:
    if list(addrs) != list(range(addrs[0], addrs[0] + len(addrs))):
        raise ValueError(f"expected contiguous model addresses, got {addrs}")
    return slice(addrs[0], addrs[0] + len(addrs))


class ArmIndex:
    """Model indices of one arm (contiguous joint qpos/dof/actuator slices, the TCP site, the fingers)."""

    def __init__(self, model: mujoco.MjModel, name: str) -> None:
        jid = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, f"{name}_{j.name}") for j in rizon4.JOINTS]
        self.qpos = _span([int(model.jnt_qposadr[j]) for j in jid])
        self.dof = _span([int(model.jnt_dofadr[j]) for j in jid])
        self.act = _span([mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_ACTUATOR, f"{name}_{j.name}")
                          for j in rizon4.JOINTS])  # fmt: skip
        self.lower = np.array([j.lower_rad for j in rizon4.JOINTS])
        self.upper = np.array([j.upper_rad for j in rizon4.JOINTS])
        self.max_speed = np.array([j.max_speed_rad_s for j in rizon4.JOINTS])
        self.site = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, f"{name}_tcp")
        fj = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, f"{name}_finger_{f}") for f in "ab"]
        self.finger_qpos = _span([int(model.jnt_qposadr[j]) for j in fj])
        self.finger_act = _span([mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_ACTUATOR, f"{name}_finger_{f}")
                                 for f in "ab"])  # fmt: skip


class CartesianController:
    """DLS Cartesian control of all arms of a model (see the module docstring). Preallocated; call ``update`` once
    per physics step after setting the targets."""

    def __init__(self, model: mujoco.MjModel, arms: list[ArmIndex], rest_q: np.ndarray,
                 config: ControllerConfig = ControllerConfig()) -> None:  # fmt: skip
        self.model, self.arms, self.config = model, arms, config
        n = len(arms)
        self.target_pos = np.zeros((n, 3))
        self.target_quat = np.tile([1.0, 0.0, 0.0, 0.0], (n, 1))
        self.target_width = np.zeros(n)
        self.rest_q = np.asarray(rest_q, float).reshape(n, 7)
        self._jacp = np.zeros((3, model.nv))
        self._jacr = np.zeros((3, model.nv))
        self._j = np.zeros((6, 7))
        self._a = np.zeros((6, 6))
        self._e = np.zeros(6)
        self._y = np.zeros(6)
        self._q_cur = np.zeros(4)
        self._q_err = np.zeros(4)
        self._q_neg = np.zeros(4)
        self._w = np.zeros(3)
        self._damp = np.eye(6) * config.damping**2
        self._prev_pos = np.zeros((n, 3))
        self._null = np.zeros((n, 7))
        self._lo = [a.lower + config.limit_margin_rad for a in arms]
        self._hi = [a.upper - config.limit_margin_rad for a in arms]
        self._step = [a.max_speed * config.speed_horizon_s for a in arms]
        self._ff_gain = 0.0
        self._count = 0
        self.last_error = np.zeros((n, 2))  # position [m], rotation [rad] error per arm at the last update

    def reset(self) -> None:
        """Forget every episode-to-episode state: the null-space refresh phase, the cached null-space term and the
        last errors (an episode is then a function of its seed alone, whatever ran before it in this world)."""
        self._count = 0
        self._null[:] = 0.0
        self.last_error[:] = 0.0

    def set_feedforward_gain(self, kv_over_kp_s: float) -> None:
        """τ_ff = kv/kp of the joint servos [s]: the servo target leads by τ_ff·q̇_d so damping causes no lag."""
        self._ff_gain = kv_over_kp_s

    def set_targets(self, pos: np.ndarray, quat: np.ndarray, width: np.ndarray) -> None:
        """TCP targets per arm: positions ``[n, 3]`` [m], quaternions ``[n, 4]`` (w, x, y, z), widths ``[n]`` [m]."""
        self.target_pos[:] = pos
        self.target_quat[:] = quat
        self.target_width[:] = width

    def hold_current(self, data: mujoco.MjData) -> None:
        """Targets := the current TCP poses and widths (used on connect, stop and faults)."""
        for i, a in enumerate(self.arms):
            self.target_pos[i] = data.site_xpos[a.site]
            mujoco.mju_mat2Quat(self.target_quat[i], data.site_xmat[a.site])
            self.target_width[i] = float(np.sum(data.qpos[a.finger_qpos]))
            self._prev_pos[i] = self.target_pos[i]
            data.ctrl[a.act] = data.qpos[a.qpos]

    def _null_term(self, i: int, a: ArmIndex, q: np.ndarray) -> None:
        """(I − J⁺J)·k_null·∇h for arm ``i`` (uses the factorised J Jᵀ + λ²I in ``self._a``)."""
        span = a.upper - a.lower
        grad = (self.rest_q[i] - q) / span + 0.05 * (1.0 / (q - a.lower + 1e-3) - 1.0 / (a.upper - q + 1e-3)) * span
        grad *= self.config.null_gain
        j = self._j
        y = j @ grad
        mujoco.mju_cholSolve(y, self._a, y)
        self._null[i] = grad - j.T @ y

    def update(self, data: mujoco.MjData) -> None:
        """One control step: joint servo targets (``data.ctrl``) from the TCP targets (needs kinematics of ``data``)."""
        c, m = self.config, self.model
        refresh_null = self._count % NULL_EVERY == 0
        self._count += 1
        e, j, a_mat, y = self._e, self._j, self._a, self._y
        for i, a in enumerate(self.arms):
            q = data.qpos[a.qpos]
            tp = self.target_pos[i]
            np.subtract(tp, data.site_xpos[a.site], out=e[:3])
            mujoco.mju_mat2Quat(self._q_cur, data.site_xmat[a.site])
            mujoco.mju_negQuat(self._q_neg, self._q_cur)
            mujoco.mju_mulQuat(self._q_err, self.target_quat[i], self._q_neg)
            mujoco.mju_quat2Vel(self._w, self._q_err, 1.0)
            e[3:] = self._w
            pn = math.sqrt(e[0] * e[0] + e[1] * e[1] + e[2] * e[2])
            rn = math.sqrt(e[3] * e[3] + e[4] * e[4] + e[5] * e[5])
            self.last_error[i, 0], self.last_error[i, 1] = pn, rn
            if pn > c.max_pos_err_m:
                e[:3] *= c.max_pos_err_m / pn
            e[3:] *= c.rot_weight * (min(1.0, c.max_rot_err_rad / rn) if rn > 0 else 1.0)
            if self._ff_gain > 0.0:  # + τ_ff·ẋ*: the target's velocity over the last step
                e[:3] += (tp - self._prev_pos[i]) * (self._ff_gain / m.opt.timestep)
            self._prev_pos[i] = tp
            mujoco.mj_jacSite(m, data, self._jacp, self._jacr, a.site)
            j[:3] = self._jacp[:, a.dof]
            np.multiply(self._jacr[:, a.dof], c.rot_weight, out=j[3:])
            np.dot(j, j.T, out=a_mat)
            a_mat += self._damp
            mujoco.mju_cholFactor(a_mat, 0.0)
            mujoco.mju_cholSolve(y, a_mat, e)
            dq = j.T @ y
            if refresh_null:
                self._null_term(i, a, q)
            dq += self._null[i]
            st = self._step[i]
            np.minimum(dq, st, out=dq)
            np.maximum(dq, -st, out=dq)
            dq += q
            np.minimum(dq, self._hi[i], out=dq)
            np.maximum(dq, self._lo[i], out=dq)
            data.ctrl[a.act] = dq
            data.ctrl[a.finger_act] = 0.5 * self.target_width[i]
