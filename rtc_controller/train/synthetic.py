"""Synthetic demonstrations for tests and dry runs: the sim policy's two-arm pick-and-place scene, smooth and
multimodal, with cameras drawn by NumPy (``render``).

Per arm, an episode repeats: move to the pick spot (gripper open), close the gripper, carry the item to one
of the bins (chosen uniformly at random, not visible in the images before the arm moves: the multimodality
RTC guidance has to cope with), open the gripper, return. Moves follow minimum-jerk profiles
(s = 10τ³ − 15τ⁴ + 6τ⁵) at an episode-dependent mean speed, so positions, speeds and accelerations are
continuous. The command for step t is the action; the state at step t is the command of step t − 1 plus a
little sensor noise (the arm follows one step behind). Rotations are held (tool down, with a small
per-episode tilt). Every episode is a pure function of (seed, episode index).

Action/state layout: the executor's Cartesian action space (``action_space``): per arm x, y, z [m], rotation
vector [rad], gripper width [m]; 14 dims for two arms.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from rtc_controller.action_space import action_names
from rtc_controller.policy.pi05.config import IMAGE_KEYS
from rtc_controller.policy.sim_policy import SimPolicyConfig
from rtc_controller.train.dataset import CameraInfo, DatasetInfo, DatasetWriter, Episode
from rtc_controller.train.render import SceneFrame, View, render

GENERATOR_NAME = "synthetic"
DEFAULT_PROMPT = "put the items in the bins"
TOOL_DOWN_ROTVEC = (math.pi, 0.0, 0.0)  # tool pointing down (rotation of π about x)
BASE_VIEW = View(0.2, 0.8, -0.7, 0.7)  # the base camera's window [m]
WRIST_VIEW_HALF_M = 0.15  # a wrist camera sees ±this around its TCP
WRIST_SLOTS = {"left_wrist_0_rgb": 0, "right_wrist_0_rgb": 1}
CARRY_DROP_M = 0.03  # a carried item hangs this far below the TCP
NUM_ARMS = 2
ARM_DIMS = 7


@dataclass(frozen=True)
class SyntheticConfig:
    """Size and randomness of a synthetic dataset. Units: steps are action steps, speeds m/s, lengths m."""

    num_episodes: int = 20
    episode_steps: int = 200  # T
    fps: float = 50.0  # action rate [Hz]
    camera_every: int = 2  # a camera frame every this many action steps
    cameras: tuple[str, ...] = IMAGE_KEYS
    image_height: int = 48
    image_width: int = 64
    prompts: tuple[str, ...] = (DEFAULT_PROMPT,)
    mean_speed_m_s: float = 0.15  # average speed of a move (min-jerk peak = 1.875×)
    speed_jitter: float = 0.2  # per-episode speed factor in [1 − j, 1 + j]
    gripper_time_s: float = 0.5  # closing / opening the gripper
    start_jitter_m: float = 0.05  # start position around the hover point above the pick spot
    tilt_std_rad: float = 0.02  # per-episode tool tilt
    state_noise_m: float = 5e-4  # sensor noise on the state (positions and widths) [m]
    seed: int = 0
    scene: SimPolicyConfig = field(default_factory=SimPolicyConfig)

    def __post_init__(self) -> None:
        if self.num_episodes < 1 or self.episode_steps < 2 or self.camera_every < 1:
            raise ValueError("need num_episodes >= 1, episode_steps >= 2, camera_every >= 1")
        if not self.fps > 0 or not self.mean_speed_m_s > 0 or not self.gripper_time_s > 0:
            raise ValueError("fps, mean_speed_m_s and gripper_time_s must be > 0")
        if not 0 <= self.speed_jitter < 1:
            raise ValueError(f"speed_jitter must be in [0, 1), got {self.speed_jitter}")
        unknown = set(self.cameras) - set(IMAGE_KEYS)
        if not self.cameras or unknown:
            raise ValueError(f"cameras must be π0.5 slots {IMAGE_KEYS}, got {self.cameras}")
        if not self.prompts or not all(p.strip() for p in self.prompts):
            raise ValueError("prompts must be non-empty strings")

    def info(self) -> DatasetInfo:
        names = action_names("cartesian")
        cam = CameraInfo(self.image_height, self.image_width, self.fps / self.camera_every)
        generator = {"name": GENERATOR_NAME, "seed": self.seed, "episode_steps": self.episode_steps,
                     "mean_speed_m_s": self.mean_speed_m_s, "camera_every": self.camera_every}
        return DatasetInfo(fps=self.fps, state_names=names, action_names=names,
                           cameras={slot: cam for slot in self.cameras}, prompts=self.prompts, generator=generator)


def min_jerk(n: int) -> np.ndarray:
    """Progress s ∈ (0, 1] at the n steps of a minimum-jerk move: s(τ) = 10τ³ − 15τ⁴ + 6τ⁵, τ = (i + 1)/n."""
    tau = np.arange(1, n + 1) / n
    return tau**3 * (10 - 15 * tau + 6 * tau**2)


@dataclass
class _ArmPath:
    pos: list[np.ndarray] = field(default_factory=list)
    grip: list[float] = field(default_factory=list)
    carrying: list[bool] = field(default_factory=list)

    def move(self, target: np.ndarray, steps: int, *, carrying: bool) -> None:
        start = self.pos[-1]
        for s in min_jerk(steps):
            self.pos.append(start + s * (target - start))
            self.grip.append(self.grip[-1])
            self.carrying.append(carrying)

    def gripper(self, width: float, steps: int, *, carrying: bool) -> None:
        start = self.grip[-1]
        for s in min_jerk(steps):
            self.pos.append(self.pos[-1])
            self.grip.append(start + s * (width - start))
            self.carrying.append(carrying)


def _arm_path(cfg: SyntheticConfig, arm: int, rng: np.random.Generator, speed_m_s: float) -> _ArmPath:
    """Positions, widths and carrying flags for T + 1 steps (the extra one seeds the state lag)."""
    scene = cfg.scene
    pick = np.asarray(scene.pick_m[arm])
    bins = [np.asarray(b) for b in scene.bins_m[arm]]
    hover = pick + np.array([0.0, 0.0, 0.1])
    path = _ArmPath([hover + rng.uniform(-cfg.start_jitter_m, cfg.start_jitter_m, 3)], [scene.gripper_open_m], [False])
    grip_steps = max(1, round(cfg.gripper_time_s * cfg.fps))

    def steps_to(target: np.ndarray) -> int:
        return max(2, math.ceil(np.linalg.norm(target - path.pos[-1]) / speed_m_s * cfg.fps))

    while len(path.pos) <= cfg.episode_steps:
        path.move(pick, steps_to(pick), carrying=False)
        path.gripper(scene.gripper_closed_m, grip_steps, carrying=False)
        target = bins[rng.integers(len(bins))]
        path.move(target, steps_to(target), carrying=True)
        path.gripper(scene.gripper_open_m, grip_steps, carrying=True)
    return path


def _frame(cfg: SyntheticConfig, paths: Sequence[_ArmPath], t: int) -> SceneFrame:
    scene = cfg.scene
    tcps = [p.pos[t] for p in paths]
    items = [tcp - np.array([0, 0, CARRY_DROP_M]) if p.carrying[t] else np.asarray(scene.pick_m[a])
             for a, (p, tcp) in enumerate(zip(paths, tcps, strict=True))]
    return SceneFrame(picks=[np.asarray(p) for p in scene.pick_m], bins=[[np.asarray(b) for b in arm] for arm in scene.bins_m],
                      items=items, tcps=tcps, grippers=[p.grip[t] for p in paths])


def _images(cfg: SyntheticConfig, paths: Sequence[_ArmPath], steps: np.ndarray) -> dict[str, np.ndarray]:
    out = {slot: np.empty((steps.size, cfg.image_height, cfg.image_width, 3), np.uint8) for slot in cfg.cameras}
    for i, t in enumerate(steps):
        frame = _frame(cfg, paths, int(t))  # step t's image shows the arm where the state says it is
        for slot in cfg.cameras:
            if slot in WRIST_SLOTS:
                tcp = frame.tcps[WRIST_SLOTS[slot]]
                view = View.around(float(tcp[0]), float(tcp[1]), WRIST_VIEW_HALF_M)
            else:
                view = BASE_VIEW
            out[slot][i] = render(frame, view, cfg.image_height, cfg.image_width)
    return out


def make_episode(cfg: SyntheticConfig, index: int) -> Episode:
    """Episode ``index`` of the dataset ``cfg`` describes (a pure function of ``cfg.seed`` and ``index``)."""
    rng = np.random.default_rng([cfg.seed, index])
    speed = cfg.mean_speed_m_s * rng.uniform(1 - cfg.speed_jitter, 1 + cfg.speed_jitter)
    paths = [_arm_path(cfg, arm, rng, speed) for arm in range(NUM_ARMS)]
    t_total = cfg.episode_steps + 1
    commands = np.zeros((t_total, NUM_ARMS * ARM_DIMS))
    for arm, path in enumerate(paths):
        base = arm * ARM_DIMS
        commands[:, base:base + 3] = np.asarray(path.pos[:t_total])
        commands[:, base + 3:base + 6] = np.asarray(TOOL_DOWN_ROTVEC) + rng.normal(0, cfg.tilt_std_rad, 3)
        commands[:, base + 6] = np.asarray(path.grip[:t_total])
    # path index 0 is where the arm starts; the command for step t is path index t + 1, the state is index t.
    actions = commands[1:]
    state = commands[:-1].copy()
    noisy = np.ones(NUM_ARMS * ARM_DIMS, bool)
    noisy[[3, 4, 5, 10, 11, 12]] = False  # rotations: no noise (the tilt already varies per episode)
    state[:, noisy] += rng.normal(0, cfg.state_noise_m, (cfg.episode_steps, int(noisy.sum())))
    frame_index = np.arange(0, cfg.episode_steps, cfg.camera_every, dtype=np.int64)
    prompt = cfg.prompts[int(rng.integers(len(cfg.prompts)))]
    return Episode(state=state.astype(np.float32), actions=actions.astype(np.float32), frame_index=frame_index,
                   images=_images(cfg, paths, frame_index), prompt=prompt, success=True, seed=index)


def write_synthetic_dataset(root, cfg: SyntheticConfig, *, overwrite: bool = False, progress=None) -> DatasetInfo:
    """Write ``cfg.num_episodes`` synthetic episodes to ``root``; ``progress(i)`` is called after each."""
    writer = DatasetWriter(root, cfg.info(), overwrite=overwrite)
    for i in range(cfg.num_episodes):
        writer.add(make_episode(cfg, i))
        if progress is not None:
            progress(i)
    return writer.info
