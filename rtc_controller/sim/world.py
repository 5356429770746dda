"""The twin's world: the MuJoCo model and data, the Cartesian controller, the conveyor, the grasp assist, faults.

Time: ``time_s`` is the episode time [s] since ``reset`` (simulated); one ``step`` advances it by the physics step
(``SceneConfig.physics_dt_s``, 1 ms) and runs the controller once, so the controller runs at the physics rate.

State and commands use the action space (``action_space.py``, two Cartesian arms, world frame): per arm TCP
position [m], rotation vector [rad], gripper width [m].

Grasp assist (documented departure from pure contact physics): the fingers grasp by friction, and in addition a
weld between the palm and the item is switched on while the gripper is commanded closed (width below the item
size) and both finger pads touch the item; it is switched off as soon as the gripper is commanded open again.
Without it, friction grasps of a 4 cm cube at 1 kHz with position-servoed fingers slipped in fast carries.

Faults (as the RDK reports them): ``joint_limit`` when a joint comes within ``FAULT_MARGIN_RAD`` of its limit, or
any injected fault (``inject_fault``). A faulted world holds the arms at their current joint positions and ignores
commands until ``clear_fault``.
"""

from __future__ import annotations

import math

import mujoco
import numpy as np

from rtc_controller.geometry import so3
from rtc_controller.sim import rizon4
from rtc_controller.sim.controller import ArmIndex, CartesianController, ControllerConfig
from rtc_controller.sim.scene import ARMS, GRASP_OPEN_MARGIN_M, SceneConfig, build_mjcf
from rtc_controller.sim.task import TaskConfig, TaskInstance, bin_positions

FAULT_MARGIN_RAD = 0.01
GRASP_CHECK_EVERY = 5  # physics steps between grasp-assist contact checks
LIMIT_CHECK_EVERY = 5  # physics steps between joint-limit checks
READY_TCP_M = ((0.45, 0.19, 0.22), (0.45, -0.19, 0.22))  # ready pose per arm: above the item row
DOWN_ROTVEC = (0.0, math.pi, 0.0)  # TCP z axis pointing down (π about the world y axis)
IK_SOLVE_STEPS = 400
CMD_VEL_WINDOW = 20  # physics steps over which the commanded TCP velocity is measured


class TwinWorld:
    """See the module docstring. ``reset(seed)`` before use."""

    def __init__(self, scene: SceneConfig = SceneConfig(), task: TaskConfig = TaskConfig(),
                 controller: ControllerConfig = ControllerConfig()) -> None:  # fmt: skip
        self.scene, self.task = scene, task
        self.model = mujoco.MjModel.from_xml_string(build_mjcf(scene))
        self.data = mujoco.MjData(self.model)
        m = self.model
        self.arms = [ArmIndex(m, a) for a in ARMS]
        self.controller = CartesianController(m, self.arms, np.array(rizon4.HOME_RAD * len(ARMS)), controller)
        self.item_body = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, f"item{i}") for i in range(len(ARMS))]
        self.item_geom = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, f"item{i}") for i in range(len(ARMS))]
        self.item_qpos = [m.jnt_qposadr[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, f"item{i}_free")]
                          for i in range(len(ARMS))]  # fmt: skip
        self.item_dof = [m.jnt_dofadr[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, f"item{i}_free")]
                         for i in range(len(ARMS))]  # fmt: skip
        self.palm_body = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, f"{a}_palm") for a in ARMS]
        self.pads = [(mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, f"{a}_pad_a"),
                      mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, f"{a}_pad_b")) for a in ARMS]  # fmt: skip
        self.weld = [[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_EQUALITY, f"weld_{a}_item{i}") for i in range(len(ARMS))]
                     for a in ARMS]  # fmt: skip
        self.bin_mocap = [m.body_mocapid[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, f"bin{i}")]
                          for i in range(scene.num_bins)]  # fmt: skip
        self.ready_q = self._solve_ready()
        self.controller.set_feedforward_gain(scene.joint_kv / scene.joint_kp)
        self.instance = TaskInstance.sample(0, scene, task)
        self.time_s = 0.0
        self.fault = ""
        self._steps = 0
        self._rot_ref = [DOWN_ROTVEC] * len(ARMS)
        self._cmd_hist = np.zeros((CMD_VEL_WINDOW, len(ARMS), 3))  # ring of commanded TCP positions

    # ---- setup -------------------------------------------------------------------------------------------------
    def _solve_ready(self) -> np.ndarray:
        """Joint positions ``[arms, 7]`` that put each TCP at its ready pose pointing down (iterated DLS, once)."""
        d = mujoco.MjData(self.model)
        for a in self.arms:
            d.qpos[a.qpos] = rizon4.HOME_RAD
        quat = so3.rotvec_to_quat_s(DOWN_ROTVEC)
        self.controller.set_targets(np.array(READY_TCP_M), np.array([quat] * len(ARMS)), np.zeros(len(ARMS)))
        for _ in range(IK_SOLVE_STEPS):
            mujoco.mj_kinematics(self.model, d)
            mujoco.mj_comPos(self.model, d)
            self.controller.update(d)
            for a in self.arms:
                d.qpos[a.qpos] = d.ctrl[a.act]
        return np.array([d.qpos[a.qpos] for a in self.arms])

    def reset(self, seed: int = 0, instance: TaskInstance | None = None) -> TaskInstance:
        """Arms at the ready pose (grippers open), items and conveyor from ``seed`` (or ``instance``), time 0."""
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        self.instance = instance or TaskInstance.sample(seed, self.scene, self.task)
        for a, q in zip(self.arms, self.ready_q):
            d.qpos[a.qpos] = q
            d.ctrl[a.act] = q
            d.qpos[a.finger_qpos] = self.scene.gripper_max_m * 0.4
        for i, p in enumerate(self.instance.item_start_m):
            d.qpos[self.item_qpos[i] : self.item_qpos[i] + 7] = (*p, 1.0, 0.0, 0.0, 0.0)
        d.eq_active[:] = 0
        self.time_s = 0.0
        self.fault = ""
        self._steps = 0
        self._set_bins()
        mujoco.mj_forward(m, d)
        self.controller.reset()
        self.controller.hold_current(d)
        self.controller.target_width[:] = self.scene.gripper_max_m * 0.8
        self._rot_ref = [DOWN_ROTVEC] * len(ARMS)
        self._cmd_hist[:] = self.controller.target_pos
        return self.instance

    def _set_bins(self) -> None:
        """Move the bins to their conveyor positions at ``time_s`` (scalar math: this runs every physics step)."""
        sc = self.scene
        length = sc.conveyor_y_max_m - sc.conveyor_y_min_m
        s0 = self.instance.conveyor_phase_m + sc.conveyor_speed_m_s * self.time_s
        mp = self.data.mocap_pos
        for k, mid in enumerate(self.bin_mocap):
            mp[mid, 1] = sc.conveyor_y_min_m + (s0 + k * sc.bin_spacing_m) % length
            mp[mid, 0] = sc.conveyor_x_m
            mp[mid, 2] = sc.belt_top_z_m

    # ---- commands and state ------------------------------------------------------------------------------------
    def set_command(self, cmd: np.ndarray) -> None:
        """TCP targets from an action vector ``[14]`` (ignored while faulted)."""
        if self.fault:
            return
        c = self.controller
        for i in range(len(ARMS)):
            o = 7 * i
            c.target_pos[i] = cmd[o : o + 3]
            c.target_quat[i] = so3.rotvec_to_quat_s((cmd[o + 3], cmd[o + 4], cmd[o + 5]))
            c.target_width[i] = min(max(cmd[o + 6], 0.0), self.scene.gripper_max_m)

    def read_state(self, out: np.ndarray) -> None:
        """The measured state ``[14]``: TCP pose (rotation vector nearest the previous reading) and gripper width."""
        d = self.data
        q = np.zeros(4)
        for i, a in enumerate(self.arms):
            o = 7 * i
            out[o : o + 3] = d.site_xpos[a.site]
            mujoco.mju_mat2Quat(q, d.site_xmat[a.site])
            rv = so3.rotvec_near_s(so3.quat_to_rotvec_s(tuple(q)), self._rot_ref[i])
            self._rot_ref[i] = rv
            out[o + 3 : o + 6] = rv
            out[o + 6] = float(np.sum(d.qpos[a.finger_qpos]))

    def state(self) -> np.ndarray:
        out = np.zeros(7 * len(ARMS))
        self.read_state(out)
        return out

    # ---- stepping ----------------------------------------------------------------------------------------------
    def step(self, n: int = 1) -> None:
        """Advance ``n`` physics steps (controller, conveyor, grasp assist, faults, physics)."""
        m, d = self.model, self.data
        for _ in range(n):
            if not self.fault:
                self.controller.update(d)
            self._cmd_hist[self._steps % CMD_VEL_WINDOW] = self.controller.target_pos
            self._steps += 1
            self.time_s = self._steps * m.opt.timestep
            self._set_bins()
            if self._steps % GRASP_CHECK_EVERY == 0:
                self._grasp_assist()
            mujoco.mj_step(m, d)
            if not self.fault and self._steps % LIMIT_CHECK_EVERY == 0:
                self._check_limits()

    def _check_limits(self) -> None:
        for name, a in zip(ARMS, self.arms):
            q = self.data.qpos[a.qpos]
            bad = np.nonzero((q < a.lower + FAULT_MARGIN_RAD) | (q > a.upper - FAULT_MARGIN_RAD))[0]
            if bad.size:
                self.inject_fault(f"joint_limit: {name}_{rizon4.JOINTS[bad[0]].name} at {q[bad[0]]:.3f} rad")
                return

    def inject_fault(self, message: str) -> None:
        """Fault now: hold every joint where it is and ignore commands (like a robot that hit a limit)."""
        self.fault = message or "fault"
        for a in self.arms:
            self.data.ctrl[a.act] = self.data.qpos[a.qpos]

    def clear_fault(self) -> None:
        self.fault = ""
        self.controller.hold_current(self.data)

    # ---- grasp assist ------------------------------------------------------------------------------------------
    def _touching(self, arm: int, item: int) -> bool:
        d = self.data
        n = d.ncon
        if n == 0:
            return False
        g1, g2 = d.contact.geom1[:n], d.contact.geom2[:n]
        ig = self.item_geom[item]
        hit = [bool(np.any(((g1 == p) & (g2 == ig)) | ((g2 == p) & (g1 == ig)))) for p in self.pads[arm]]
        return hit[0] and hit[1]

    def _grasp_assist(self) -> None:
        d = self.data
        closing_below = self.scene.item_size_m
        for arm in range(len(ARMS)):
            width_cmd = self.controller.target_width[arm]
            for item in range(len(ARMS)):
                eq = self.weld[arm][item]
                if d.eq_active[eq]:
                    if width_cmd > closing_below + GRASP_OPEN_MARGIN_M:
                        d.eq_active[eq] = 0
                elif width_cmd < closing_below and self.held_by(item) < 0 and self._touching(arm, item):
                    self._attach(eq, self.palm_body[arm], self.item_body[item])

    def _attach(self, eq: int, body1: int, body2: int) -> None:
        """Switch weld ``eq`` on at the current relative pose of ``body2`` in ``body1``'s frame."""
        d, m = self.data, self.model
        r1 = d.xmat[body1].reshape(3, 3)
        rel_pos = r1.T @ (d.xpos[body2] - d.xpos[body1])
        q1inv, rel_q = np.zeros(4), np.zeros(4)
        mujoco.mju_negQuat(q1inv, d.xquat[body1])
        mujoco.mju_mulQuat(rel_q, q1inv, d.xquat[body2])
        m.eq_data[eq, 0:3] = 0.0
        m.eq_data[eq, 3:6] = rel_pos
        m.eq_data[eq, 6:10] = rel_q
        m.eq_data[eq, 10] = 1.0
        d.eq_active[eq] = 1

    # ---- privileged readings -----------------------------------------------------------------------------------
    def held_by(self, item: int) -> int:
        """The arm whose weld holds ``item``, or −1."""
        for arm in range(len(ARMS)):
            if self.data.eq_active[self.weld[arm][item]]:
                return arm
        return -1

    def held(self) -> np.ndarray:
        return np.array([self.held_by(i) for i in range(len(ARMS))])

    def item_positions(self) -> np.ndarray:
        return np.array([self.data.qpos[a : a + 3] for a in self.item_qpos])

    def item_speeds(self) -> np.ndarray:
        return np.array([float(np.linalg.norm(self.data.qvel[a : a + 3])) for a in self.item_dof])

    def bins(self, t_s: float | None = None) -> np.ndarray:
        """Bin positions ``[num_bins, 3]`` at episode time ``t_s`` (default: now)."""
        return bin_positions(self.scene, self.instance.conveyor_phase_m, self.time_s if t_s is None else t_s)

    def command_velocities(self) -> np.ndarray:
        """Velocities of the commanded TCP positions ``[arms, 3]`` [m/s] now, from the last ``CMD_VEL_WINDOW`` steps.

        A plain average over the window would be the velocity of its middle, ~10 ms old (at 1.2 m/s², 12 mm/s
        behind: a plan continued from it starts with that velocity step). The two halves' averages v₁ (older) and
        v₂ (newer) extrapolate linearly to the newest step, exact at constant acceleration and, being
        window averages, robust to a command that advanced by several physics steps in one servo tick.
        """
        n, dt = CMD_VEL_WINDOW, self.model.opt.timestep
        half = n // 2
        oldest = self._cmd_hist[self._steps % n]
        middle = self._cmd_hist[(self._steps + half - 1) % n]
        newest = self._cmd_hist[(self._steps - 1) % n]
        v1 = (middle - oldest) / ((half - 1) * dt)  # the velocity at step (half − 1)/2 of the window
        v2 = (newest - middle) / ((n - half) * dt)  # at step (half − 1 + n − 1)/2
        c1, c2 = (half - 1) / 2, (half + n - 2) / 2
        return v2 + (v2 - v1) * ((n - 1 - c2) / (c2 - c1))

    def tcp_velocities(self) -> np.ndarray:
        """TCP linear velocities ``[arms, 3]`` [m/s], world frame."""
        res = np.zeros(6)
        out = np.zeros((len(ARMS), 3))
        for i, a in enumerate(self.arms):
            mujoco.mj_objectVelocity(self.model, self.data, mujoco.mjtObj.mjOBJ_SITE, a.site, res, 0)
            out[i] = res[3:]
        return out

    def privileged(self, placed: np.ndarray | None = None):
        """The expert's view of the world now (``sim.expert.Privileged``); ``placed[n]`` from the task monitor."""
        from rtc_controller.sim.expert import Privileged, placed_items

        items, held = self.item_positions(), self.held()
        placed = placed_items(self.scene, items, held, self.bins()) if placed is None else np.asarray(placed, bool)
        c = self.controller
        return Privileged(self.time_s, items, held, placed, self.command_velocities(),
                          self.instance, c.target_pos.copy(), c.target_width.copy())  # fmt: skip

    def tracking_error(self) -> np.ndarray:
        """Per arm (position [m], rotation [rad]) error of the controller at its last update."""
        return self.controller.last_error.copy()
