"""The scripted expert: plans one arm's motion from privileged state (item, grasp, conveyor), one plan per bin choice.

A plan is a deterministic rollout over H action steps of Δt from the observed TCP position, velocity and gripper
width, Markov in (position, velocity, width, held, placed), so a plan made later along the same bin choice
continues the same motion. Phases, decided from the state at every step:
- item placed (or released in this rollout): back to the ready pose, gripper open;
- item free: over the item (approach height), gripper open; descend; close; the item counts as held once the
  commanded width reaches the item size (the world's grasp assist engages there too);
- item held: squeeze to ``gripper_closed_m``; lift; carry to the hover point of the chosen bin (its position at
  each step's time, y clamped to the arm's window: the arm waits at the window's entry for a bin still upstream);
  once over the bin, descend with it to the release height and open.
Motion: velocity toward the phase's target, min(cruise, √(2·brake·distance)) plus the target's own velocity,
changed by at most a·Δt per step, positions advanced by the step's mean velocity: within the executor's limits (its
acceleration limit and its workspace walls' braking envelope), so that its safety filter does not intervene.

Bin choice ("slot"): the bins in the order they leave the arm's window, skipping those that leave before the arm
could reach them and release; slot 0 = the first feasible bin, slot 1 = the next. Both exist at any time, so the
mixture policy always has the same number of modes.

Units: [m], [m/s], [s]; positions in the world frame; t = episode time [s] (conveyor phase reference).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rtc_controller.sim.scene import ARMS, GRASP_OPEN_MARGIN_M, SceneConfig
from rtc_controller.sim.task import TaskConfig, TaskInstance, bin_positions, in_bin

NUM_SLOTS = 2
LIFT_RADIUS_M = 0.03  # within this of the pick spot a held item is first lifted straight up
GRIP_TOL_M = 0.003  # a measured width within this of a target has reached it (finger servo error)


@dataclass(frozen=True)
class ExpertConfig:
    """Motion and grasp parameters of the scripted expert (see the module docstring)."""

    cruise_speed_m_s: float = 0.35
    accel_m_s2: float = 1.2
    # Braking toward a target: below the executor's wall deceleration (max_linear_acc_m_s2/√3 = 0.87 m/s² at the
    # twin's 1.5 m/s²), so that a descent to the table never runs into the workspace floor's braking envelope.
    brake_m_s2: float = 0.8
    approach_height_m: float = 0.07
    carry_height_m: float = 0.19
    release_height_m: float = 0.12
    grasp_height_m: float = 0.0  # TCP z above the item centre when grasping
    gripper_open_m: float = 0.08
    gripper_closed_m: float = 0.025
    gripper_speed_m_s: float = 0.09  # below the executor's rate limit (0.1 m/s)
    arrive_tol_m: float = 0.006
    release_tol_m: float = 0.02
    window_margin_m: float = 0.04
    release_time_s: float = 1.0  # descend + open + fall, for the feasibility of a bin
    ready_tcp_m: tuple[tuple[float, float, float], ...] = ((0.45, 0.19, 0.22), (0.45, -0.19, 0.22))

    def __post_init__(self) -> None:
        if not self.gripper_open_m > self.gripper_closed_m >= 0:
            raise ValueError("expert: need gripper_open_m > gripper_closed_m >= 0")


@dataclass(frozen=True)
class Privileged:
    """The world state the expert sees at episode time ``t_s``: items ``[n, 3]``, ``held[n]`` (arm or −1),
    ``placed[n]`` (bool), the commanded TCP velocities ``[n, 3]`` [m/s], positions ``[n, 3]`` [m] and gripper widths
    ``[n]`` [m] (the robot's current targets: a plan continues the command, which the measured state lags, and a
    gripper blocked by an item measures the item's size whatever it was commanded), and the task instance."""

    t_s: float
    item_pos: np.ndarray
    held: np.ndarray
    placed: np.ndarray
    tcp_vel: np.ndarray
    instance: TaskInstance
    cmd_pos: np.ndarray | None = None
    cmd_width: np.ndarray | None = None


def placed_items(scene: SceneConfig, item_pos: np.ndarray, held: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """``[n]`` bool: each item is free and inside a bin (the expert's "done"; the monitor also wants it at rest)."""
    return np.array([held[i] < 0 and in_bin(scene, p, bins) >= 0 for i, p in enumerate(item_pos)])


def privileged_from_sample(sample, scene: SceneConfig, instance: TaskInstance, t_episode_s: float | None = None):
    """``Privileged`` from a ``snapshot.WorldSample`` (the twin policies in another process than the world)."""
    t = sample.t_episode_s if t_episode_s is None else t_episode_s
    bins = bin_positions(scene, instance.conveyor_phase_m, t)
    placed = placed_items(scene, sample.item_pos, sample.held, bins)
    return Privileged(t, sample.item_pos, sample.held, placed, sample.cmd_vel, instance, sample.cmd_pos, sample.cmd_width)


def bin_slots(scene: SceneConfig, task: TaskConfig, ex: ExpertConfig, arm: int, tcp: np.ndarray,
              t_s: float, phase_m: float) -> list[int]:  # fmt: skip
    """Bin indices for slots 0 … NUM_SLOTS−1 of ``arm`` at time ``t_s`` (see the module docstring)."""
    lo, hi = task.windows_m[arm]
    v = scene.conveyor_speed_m_s
    length = scene.conveyor_y_max_m - scene.conveyor_y_min_m
    bins = bin_positions(scene, phase_m, t_s)
    exit_in = []
    for b, p in enumerate(bins):
        dy = hi - ex.window_margin_m - p[1]
        if dy < 0:  # already past the window: it comes back after wrapping around
            dy += length
        reach_y = min(max(p[1], lo + ex.window_margin_m), hi - ex.window_margin_m)
        dist = math.hypot(tcp[0] - p[0], tcp[1] - reach_y)
        # A bin the arm is already over only needs the rest of the release (no switching away at the last moment).
        need = 0.5 * ex.release_time_s if dist < ex.release_tol_m else dist / ex.cruise_speed_m_s + ex.release_time_s
        exit_in.append((dy / v, b, dy / v >= need))
    feasible = [b for t_exit, b, ok in sorted(exit_in) if ok]
    return feasible[:NUM_SLOTS] if len(feasible) >= NUM_SLOTS else [b for _, b, _ in sorted(exit_in)][:NUM_SLOTS]


def _grasp_step(ex: ExpertConfig, p: list, g: float, ip: list) -> tuple[tuple, float]:
    """Item free: (target, gripper target) — over the item, descend with the gripper open, close at the bottom."""
    over = math.hypot(p[0] - ip[0], p[1] - ip[1]) < ex.arrive_tol_m
    grasp_z = ip[2] + ex.grasp_height_m
    if over and abs(p[2] - grasp_z) < ex.arrive_tol_m:
        return (ip[0], ip[1], grasp_z), ex.gripper_closed_m
    if over and g >= ex.gripper_open_m - GRIP_TOL_M:
        return (ip[0], ip[1], grasp_z), ex.gripper_open_m  # descend with the gripper open
    if over:
        return (ip[0], ip[1], p[2]), ex.gripper_open_m  # open before descending
    return (ip[0], ip[1], max(grasp_z + ex.approach_height_m, min(p[2], ex.carry_height_m))), ex.gripper_open_m


def _carry_step(scene: SceneConfig, ex: ExpertConfig, *, p: list, g: float, pick, bin_y: float,
                window: tuple[float, float]) -> tuple[tuple, float, tuple]:  # fmt: skip
    """Item held: (target, gripper target, target velocity) — close, lift at the pick spot, carry to the bin's
    hover point (y clamped to the window), descend with the bin once over it, open at the release height."""
    lo, hi = window
    hy = min(max(bin_y, lo + ex.window_margin_m), hi - ex.window_margin_m)
    tracking = hy == bin_y
    near_pick = math.hypot(p[0] - pick[0], p[1] - pick[1]) < LIFT_RADIUS_M
    still = (0.0, 0.0, 0.0)
    if near_pick and g > scene.item_size_m + GRIP_TOL_M:
        return (p[0], p[1], p[2]), ex.gripper_closed_m, still  # close on the item before lifting
    if near_pick and p[2] < ex.carry_height_m - ex.arrive_tol_m:
        return (p[0], p[1], ex.carry_height_m), ex.gripper_closed_m, still  # lift straight up from the pick spot
    over = tracking and math.hypot(p[0] - scene.conveyor_x_m, p[1] - bin_y) < ex.release_tol_m
    z = ex.release_height_m if over or p[2] < ex.carry_height_m - ex.arrive_tol_m else ex.carry_height_m
    release = over and abs(p[2] - ex.release_height_m) < ex.arrive_tol_m
    ff = (0.0, scene.conveyor_speed_m_s, 0.0) if tracking else still
    return (scene.conveyor_x_m, hy, z), ex.gripper_open_m if release else ex.gripper_closed_m, ff


def plan_arm(scene: SceneConfig, task: TaskConfig, ex: ExpertConfig, *, arm: int, pos: np.ndarray, width: float,
             priv: Privileged, bin_index: int, horizon: int, dt_s: float) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """One arm's plan: TCP positions ``[H, 3]`` and gripper widths ``[H]``; step 0 = the current command
    (``priv.cmd_pos``/``cmd_width``; the observed ``pos``/``width`` where the command is unknown)."""
    p = [float(x) for x in (pos if priv.cmd_pos is None else priv.cmd_pos[arm])]
    v = [float(x) for x in priv.tcp_vel[arm]]
    g = float(width if priv.cmd_width is None else priv.cmd_width[arm])
    item = arm
    held = bool(priv.held[item] == arm)
    done = bool(priv.placed[item]) or (priv.held[item] < 0 and priv.item_pos[item][2] > scene.item_size_m)
    ip = [float(x) for x in priv.item_pos[item]]
    pick = priv.instance.item_start_m[item]
    length = scene.conveyor_y_max_m - scene.conveyor_y_min_m
    b0 = priv.instance.conveyor_phase_m + bin_index * scene.bin_spacing_m
    ps, gs = np.zeros((horizon, 3)), np.zeros(horizon)
    gstep = ex.gripper_speed_m_s * dt_s
    for k in range(horizon):
        ps[k], gs[k] = p, g
        ff = (0.0, 0.0, 0.0)
        if done:
            target, g_target = ex.ready_tcp_m[arm], ex.gripper_open_m
        elif not held:
            target, g_target = _grasp_step(ex, p, g, ip)
        else:
            bin_y = scene.conveyor_y_min_m + (b0 + scene.conveyor_speed_m_s * (priv.t_s + (k + 1) * dt_s)) % length
            target, g_target, ff = _carry_step(scene, ex, p=p, g=g, pick=pick, bin_y=bin_y, window=task.windows_m[arm])
        g += min(max(g_target - g, -gstep), gstep)
        if held and g > scene.item_size_m + GRASP_OPEN_MARGIN_M:
            held, done = False, True  # released (the world's grasp assist lets go here too)
        elif not held and not done and g_target == ex.gripper_closed_m and g <= scene.item_size_m:
            held = True
        if held:
            ip = [p[0], p[1], p[2] - ex.grasp_height_m]
        p, v = _move(p, v, target, ff, ex, dt_s)
    return ps, gs


def _move(p: list, v: list, target, ff, ex: ExpertConfig, dt: float) -> tuple[list, list]:
    """One acceleration-limited step toward ``target`` (moving at ``ff``): new position and velocity.

    The position advances by the mean of the old and new velocity (exact at the step's constant acceleration), so
    the plan's positions are samples of a velocity-continuous motion that starts at the observed velocity ``v``:
    the executor's cubic interpolation through them reproduces that motion, and a plan made later along the same
    motion continues it without a velocity step."""
    d = [target[i] - p[i] for i in range(3)]
    dist = math.sqrt(d[0] ** 2 + d[1] ** 2 + d[2] ** 2)
    speed = min(ex.cruise_speed_m_s, math.sqrt(2.0 * ex.brake_m_s2 * dist), dist / dt)
    want = [ff[i] + (d[i] / dist * speed if dist > 1e-9 else 0.0) for i in range(3)]
    dv = [want[i] - v[i] for i in range(3)]
    n = math.sqrt(dv[0] ** 2 + dv[1] ** 2 + dv[2] ** 2)
    amax = ex.accel_m_s2 * dt
    if n > amax:
        dv = [x * amax / n for x in dv]
    v_new = [v[i] + dv[i] for i in range(3)]
    return [p[i] + 0.5 * (v[i] + v_new[i]) * dt for i in range(3)], v_new


def plan_chunk(scene: SceneConfig, task: TaskConfig, ex: ExpertConfig, *, state: np.ndarray, priv: Privileged,
               slots: tuple[int, ...], horizon: int, dt_s: float, rot_ref: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """A two-arm chunk ``[H, 14]`` in the action space for one bin slot per arm; rotations held at the observed
    values (``rot_ref`` overrides them, e.g. the TCP pointing down)."""
    chunk = np.broadcast_to(np.asarray(state, float), (horizon, 7 * len(ARMS))).copy()
    for arm, slot in enumerate(slots):
        o = 7 * arm
        tcp = np.asarray(state[o : o + 3], float)
        order = bin_slots(scene, task, ex, arm, tcp, priv.t_s, priv.instance.conveyor_phase_m)
        ps, gs = plan_arm(scene, task, ex, arm=arm, pos=tcp, width=float(state[o + 6]), priv=priv,
                          bin_index=order[min(slot, len(order) - 1)], horizon=horizon, dt_s=dt_s)  # fmt: skip
        chunk[:, o : o + 3] = ps
        chunk[:, o + 6] = gs
        if rot_ref is not None:
            chunk[:, o + 3 : o + 6] = rot_ref[arm]
    return chunk
