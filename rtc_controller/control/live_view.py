"""The seed's figure, live (ROS-free): what RTC does at each chunk switch, as per-arm paths in the world frame.

Inputs (what the rig already publishes): the chunks (``rtc/chunk``), which one the executor executes (its
``active_chunk`` stamp), its switch events (k*, guided d, jump) and the robot state (measured TCP poses).
Per arm, :meth:`LiveView.paths` gives poses ``[n, 7]`` (x, y, z [m], qw, qx, qy, qz; world frame, as the action
space and both RDKs) for four paths:
- ``active``: the chunk being executed, all H actions (the guided chunk, purple in the seed's plots);
- ``previous``: the chunk it replaced, over the overlap only: its actions from the active chunk's t_obs on
  (re-indexed by m = round((t_obs − t_obs_prev)/Δt), as the prefix Y is built; green);
- ``frozen``: the active chunk's first d actions (d = the guided d the chunk carries, else k*): the frozen
  prefix the guidance pulled toward the previous chunk (grey);
- ``executed``: the measured TCP positions over the last ``executed_window_s`` (black).
Switch events become markers at the new chunk's a_{k*} per arm (:meth:`LiveView.switches`). Cartesian action
spaces only (a joint-space chunk has no TCP path).
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass

import numpy as np

from rtc_controller.action_space import arm_slices
from rtc_controller.geometry import so3
from rtc_controller.control.chunk import Chunk

PATH_NAMES = ("active", "previous", "frozen", "executed")
STAMP_TOL_S = 1e-6  # two stamps this close are the same chunk's [s]


@dataclass(frozen=True)
class LiveViewConfig:
    """names: the action names (cartesian, 7 per arm); arms: the arm prefixes (``left``, ``right``); dt_s: Δt [s];
    executed_window_s: how much measured path to keep [s]; max_chunks: recent chunks kept to find the active one;
    max_switches: switch markers kept."""

    names: tuple[str, ...]
    arms: tuple[str, ...]
    dt_s: float
    executed_window_s: float = 5.0
    max_chunks: int = 16
    max_switches: int = 20

    def __post_init__(self) -> None:
        if len(self.names) != 7 * len(self.arms) or not self.arms:
            raise ValueError(f"{len(self.names)} action names for {len(self.arms)} cartesian arms (7 each)")
        if not (self.dt_s > 0 and math.isfinite(self.dt_s)):
            raise ValueError(f"dt_s must be > 0, got {self.dt_s}")
        if not (self.executed_window_s > 0 and self.max_chunks >= 2 and self.max_switches >= 1):
            raise ValueError("executed_window_s > 0, max_chunks >= 2 and max_switches >= 1 are needed")


@dataclass(frozen=True)
class SwitchMarker:
    """One chunk switch: where each arm's command went (positions [arms, 3] of a_{k*}) and what happened."""

    t_switch_s: float
    positions: np.ndarray
    k_star: int
    guided_d: int
    jump_linear_m: float


def poses(actions: np.ndarray, arm: int) -> np.ndarray:
    """One arm's poses ``[h, 7]`` (x, y, z, qw, qx, qy, qz) from cartesian actions ``[h, 7·arms]``."""
    sl = arm_slices("cartesian", arm + 1)[arm]
    a = np.asarray(actions, dtype=np.float64)
    return np.concatenate([a[:, sl.position], so3.rotvec_to_quat(a[:, sl.rotation])], axis=1)


class LiveView:
    """Keeps the recent chunks, the active stamp, switch markers and the executed path; see the module docstring."""

    def __init__(self, config: LiveViewConfig) -> None:
        self.config = config
        self._chunks: collections.deque[Chunk] = collections.deque(maxlen=config.max_chunks)
        self._active_t_obs = math.nan
        self._previous: Chunk | None = None
        self._active: Chunk | None = None
        self._k_star = 0
        self._switches: collections.deque[SwitchMarker] = collections.deque(maxlen=config.max_switches)
        self._executed: collections.deque[tuple[float, np.ndarray]] = collections.deque()

    def add_chunk(self, chunk: Chunk) -> None:
        """A chunk as published (validated by the caller: names and shape as configured)."""
        if tuple(chunk.names) != self.config.names:
            raise ValueError("chunk action names differ from the live view's")
        self._chunks.append(chunk)
        self._resolve()

    def set_active(self, t_obs_s: float) -> None:
        """The executor's active chunk changed (its t_obs [s])."""
        if not abs(t_obs_s - self._active_t_obs) <= STAMP_TOL_S:  # NaN (none yet) counts as a change
            self._active_t_obs = t_obs_s
            self._resolve()

    def _find(self, t_obs_s: float) -> Chunk | None:
        return next((c for c in reversed(self._chunks) if abs(c.t_obs_s - t_obs_s) <= STAMP_TOL_S), None)

    def _resolve(self) -> None:
        found = self._find(self._active_t_obs) if math.isfinite(self._active_t_obs) else None
        if found is not None and found is not self._active:
            self._previous, self._active = self._active, found

    def add_switch(self, *, t_switch_s: float, t_obs_s: float, k_star: int, guided_d: int, jump_linear_m: float) -> None:
        """A switch event (the executor's ``switch`` topic); a marker at the new chunk's a_{k*} when it is known."""
        chunk = self._find(t_obs_s)
        if chunk is None or not 0 <= k_star < chunk.actions.shape[0]:
            return
        if abs(t_obs_s - self._active_t_obs) <= STAMP_TOL_S:
            self._k_star = k_star
        at = np.stack([poses(chunk.actions[k_star : k_star + 1], i)[0, :3] for i in range(len(self.config.arms))])
        self._switches.append(SwitchMarker(t_switch_s, at, k_star, guided_d, jump_linear_m))

    def add_state(self, stamp_s: float, positions: np.ndarray) -> None:
        """A measured state ``[ad]`` (action space) at ``stamp_s`` [s]; older than the window is dropped."""
        self._executed.append((stamp_s, np.asarray(positions, dtype=np.float64).copy()))
        while self._executed and stamp_s - self._executed[0][0] > self.config.executed_window_s:
            self._executed.popleft()

    def switches(self) -> list[SwitchMarker]:
        return list(self._switches)

    def paths(self, arm: int) -> dict[str, np.ndarray]:
        """``{path name: poses [n, 7]}`` for arm index ``arm`` (empty arrays where nothing is known yet)."""
        empty = np.zeros((0, 7))
        out = dict.fromkeys(PATH_NAMES, empty)
        active, previous = self._active, self._previous
        if active is not None:
            out["active"] = poses(active.actions, arm)
            d = active.guided_d if active.guided_d is not None else self._k_star
            out["frozen"] = out["active"][: max(0, min(d, active.actions.shape[0]))]
            if previous is not None:
                m = round((active.t_obs_s - previous.t_obs_s) / self.config.dt_s)
                if 0 <= m < previous.actions.shape[0]:
                    out["previous"] = poses(previous.actions[m:], arm)
        if self._executed:
            out["executed"] = poses(np.stack([p for _, p in self._executed]), arm)
        return out
