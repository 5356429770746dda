"""The twin's task: each arm picks its item from the table and places it in any bin on the moving conveyor, within
a time limit. Randomised from a seed; success and failure are decided from the world state alone.

Multimodal: every bin that passes through an arm's window is a valid target. Dynamic: the bins move at
``SceneConfig.conveyor_speed_m_s``, so a plan is only valid at the time it was made for. Time limit:
``time_limit_s`` from the episode start.

Per item the monitor reports one of ``waiting`` (on the table), ``held`` (welded to a gripper), ``moving`` (free,
not at rest: falling or sliding), ``placed`` (at rest inside a bin: final), ``dropped`` (at rest outside a bin
after it left its spot: final). The episode is ``running`` until every item is placed (``success``), an item is
dropped (``failure``, reason ``dropped``) or the time runs out (``failure``, reason ``timeout``); the outcome and its
time are latched.

Conveyor: bin i is at y_i(t) = y_min + ((phase + i·spacing + v·t) mod L), L = y_max − y_min, at x = conveyor_x,
resting on the belt (t [s] since the episode start; phase [m] from the seed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from rtc_controller.sim.scene import ARMS, SceneConfig

ItemStatus = Literal["waiting", "held", "moving", "placed", "dropped"]
EpisodeStatus = Literal["running", "success", "failure"]
ITEM_STATUSES: tuple[str, ...] = ("waiting", "held", "moving", "placed", "dropped")
EPISODE_STATUSES: tuple[str, ...] = ("running", "success", "failure")
REST_SPEED_M_S = 0.02  # an item slower than this is at rest
MOVED_M = 0.02  # an item this far from its start has left its spot
PLACE_TOL_M = 0.005  # slack of the "inside the bin" footprint test
DEFAULT_PROMPT = "put the red cube and the blue cube into any yellow bin on the conveyor"


@dataclass(frozen=True)
class TaskConfig:
    """Randomisation ranges and rules. item_x_m: x range of the items [m]; item_dy_m: y range around the point in
    front of each arm [m]; windows: per arm the y range [m] in which it may place (keeps the arms apart);
    time_limit_s: episode length limit [s]; prompt: the instruction given to the policy."""

    item_x_m: tuple[float, float] = (0.42, 0.50)
    item_dy_m: tuple[float, float] = (-0.05, 0.05)
    item_y_offset_m: float = -0.11  # the item row sits this far from each arm's base y (toward the centre ...)
    windows_m: tuple[tuple[float, float], ...] = ((0.10, 0.52), (-0.52, -0.10))
    time_limit_s: float = 20.0
    prompt: str = DEFAULT_PROMPT

    def __post_init__(self) -> None:
        if not self.time_limit_s > 0:
            raise ValueError(f"task: time_limit_s must be > 0, got {self.time_limit_s}")
        if len(self.windows_m) != len(ARMS) or any(lo >= hi for lo, hi in self.windows_m):
            raise ValueError("task: one (low, high) y window per arm")
        if self.item_x_m[0] > self.item_x_m[1] or self.item_dy_m[0] > self.item_dy_m[1]:
            raise ValueError("task: empty item ranges")


@dataclass(frozen=True)
class TaskInstance:
    """One randomised episode: item start positions ``[arms, 3]`` [m] and the conveyor phase [m]."""

    seed: int
    item_start_m: tuple[tuple[float, float, float], ...]
    conveyor_phase_m: float

    @staticmethod
    def sample(seed: int, scene: SceneConfig, task: TaskConfig) -> TaskInstance:
        rng = np.random.default_rng(seed)
        items = []
        for arm in range(len(ARMS)):
            base_y = scene.arm_base(arm)[1]
            y = base_y + (task.item_y_offset_m if arm == 0 else -task.item_y_offset_m) + rng.uniform(*task.item_dy_m)
            items.append((float(rng.uniform(*task.item_x_m)), float(y), scene.item_size_m / 2))
        length = scene.conveyor_y_max_m - scene.conveyor_y_min_m
        return TaskInstance(seed, tuple(items), float(rng.uniform(0.0, length)))


def bin_positions(scene: SceneConfig, phase_m: float, t_s: float) -> np.ndarray:
    """Bin positions ``[num_bins, 3]`` [m] at episode time ``t_s`` (see the module docstring)."""
    length = scene.conveyor_y_max_m - scene.conveyor_y_min_m
    i = np.arange(scene.num_bins)
    y = scene.conveyor_y_min_m + np.mod(phase_m + i * scene.bin_spacing_m + scene.conveyor_speed_m_s * t_s, length)
    return np.stack([np.full(scene.num_bins, scene.conveyor_x_m), y, np.full(scene.num_bins, scene.belt_top_z_m)], 1)


@dataclass
class TaskState:
    """What the monitor reports: per-item status, the episode status, its reason and time [s]."""

    items: list[str] = field(default_factory=lambda: ["waiting"] * len(ARMS))
    status: str = "running"
    reason: str = ""
    end_time_s: float = math.nan
    placed_time_s: list[float] = field(default_factory=lambda: [math.nan] * len(ARMS))

    @property
    def done(self) -> bool:
        return self.status != "running"

    def as_dict(self) -> dict:
        return {"status": self.status, "reason": self.reason, "end_time_s": self.end_time_s,
                "items": list(self.items), "placed_time_s": list(self.placed_time_s)}  # fmt: skip


def in_bin(scene: SceneConfig, item_pos: np.ndarray, bins: np.ndarray) -> int:
    """Index of the bin whose inside holds ``item_pos`` [3] (below the rim), or −1."""
    reach = scene.bin_inner_m / 2 - scene.item_size_m / 2 + PLACE_TOL_M
    for b, c in enumerate(bins):
        if abs(item_pos[0] - c[0]) <= reach and abs(item_pos[1] - c[1]) <= reach and item_pos[2] < c[2] + scene.bin_height_m:
            return b
    return -1


class TaskMonitor:
    """Decides the per-item and episode status from world samples (``update``); outcomes are latched."""

    def __init__(self, scene: SceneConfig, task: TaskConfig, instance: TaskInstance) -> None:
        self.scene, self.task, self.instance = scene, task, instance
        self.state = TaskState()

    def update(self, t_s: float, item_pos: np.ndarray, item_speed: np.ndarray, held: np.ndarray,
               start_s: float = 0.0) -> TaskState:  # fmt: skip
        """One sample at episode time ``t_s``: item positions ``[n, 3]`` [m], speeds ``[n]`` [m/s], ``held[n]``
        (the arm holding each item, −1 = free). The time limit counts from ``start_s`` (the twin process starts it
        at the arms' first motion, so a policy's warm-up does not count)."""
        st = self.state
        if st.done:
            return st
        bins = bin_positions(self.scene, self.instance.conveyor_phase_m, t_s)
        for i, p in enumerate(item_pos):
            if st.items[i] in ("placed", "dropped"):
                continue
            if held[i] >= 0:
                st.items[i] = "held"
                continue
            resting = item_speed[i] < REST_SPEED_M_S
            moved = float(np.linalg.norm(p[:2] - np.asarray(self.instance.item_start_m[i][:2]))) > MOVED_M
            if resting and in_bin(self.scene, p, bins) >= 0:
                st.items[i], st.placed_time_s[i] = "placed", t_s
            elif resting and (moved or p[2] < 0):
                st.items[i] = "dropped"
            elif not resting:
                st.items[i] = "moving"
            elif not moved:
                st.items[i] = "waiting"
        if any(s == "dropped" for s in st.items):
            st.status, st.reason, st.end_time_s = "failure", "dropped", t_s
        elif all(s == "placed" for s in st.items):
            st.status, st.reason, st.end_time_s = "success", "", t_s
        elif t_s - start_s >= self.task.time_limit_s:
            st.status, st.reason, st.end_time_s = "failure", "timeout", t_s
        return st
