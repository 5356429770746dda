"""The phase of the task in which an episode failed, from the item trajectories the task monitor samples.

Per item: when it was first held (weld on), when it was let go, and whether it left its spot (farther than
``task.MOVED_M`` in x-y from its start) before it was ever held. The failure phase of an episode is that of its
first failing item, one of :data:`FAILURE_PHASES`:

- ``knocked_before_grasp``: the item left its spot without ever being held (the gripper or fingers pushed it);
- ``released_outside_bin``: the item was held, let go and came to rest outside every bin;
- ``timeout_not_grasped`` / ``timeout_holding`` / ``timeout_after_release``: the time ran out with the item on the
  table, in the gripper, or after a release that did not end in a bin.

Times [s] are episode times (the monitor's). ``release_switch_gap_s``: for each release, the time to the nearest
chunk-to-chunk switch (how close a switch came to the moment of letting go).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from rtc_controller.sim.task import MOVED_M

FAILURE_PHASES: tuple[str, ...] = ("knocked_before_grasp", "released_outside_bin", "timeout_not_grasped",
                                   "timeout_holding", "timeout_after_release")  # fmt: skip


@dataclass
class _Item:
    held_s: float = math.nan  # first time held
    released_s: float = math.nan  # last time let go (held -> free)
    knocked_s: float = math.nan  # left its spot while never held
    holding: bool = False


@dataclass
class PhaseTracker:
    """Updated with each monitor sample; :meth:`phase` gives the failure phase at the end."""

    item_start_m: np.ndarray  # [n, 3]
    items: list[_Item] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.item_start_m = np.asarray(self.item_start_m, float)
        self.items = [_Item() for _ in range(len(self.item_start_m))]

    def update(self, t_s: float, item_pos: np.ndarray, held: np.ndarray) -> None:
        """item_pos ``[n, 3]`` [m]; held ``[n]``: the arm holding each item, −1 = free."""
        for i, it in enumerate(self.items):
            now = bool(held[i] >= 0)
            if now and math.isnan(it.held_s):
                it.held_s = t_s
            if it.holding and not now:
                it.released_s = t_s
            it.holding = now
            moved = float(np.linalg.norm(np.asarray(item_pos[i][:2]) - self.item_start_m[i][:2])) > MOVED_M
            if moved and not now and math.isnan(it.held_s) and math.isnan(it.knocked_s):
                it.knocked_s = t_s

    def phase(self, item_statuses: list[str], reason: str) -> str:
        """'' on success, else one of :data:`FAILURE_PHASES` for the first failing item (task monitor statuses)."""
        if not reason:
            return ""
        for it, status in zip(self.items, item_statuses):
            if reason == "dropped" and status == "dropped":
                return "knocked_before_grasp" if math.isnan(it.held_s) else "released_outside_bin"
        if reason == "dropped":
            return "released_outside_bin"
        for it, status in zip(self.items, item_statuses):
            if status == "placed":
                continue
            if it.holding:
                return "timeout_holding"
            return "timeout_not_grasped" if math.isnan(it.held_s) else "timeout_after_release"
        return "timeout_not_grasped"

    def release_times_s(self) -> list[float]:
        return [it.released_s for it in self.items if not math.isnan(it.released_s)]


def nearest_gaps_s(events_s: list[float], switches_s: list[float]) -> list[float]:
    """For each event time, the absolute time [s] to the nearest switch (NaN without switches)."""
    if not switches_s:
        return [math.nan for _ in events_s]
    sw = np.asarray(switches_s, float)
    return [float(np.min(np.abs(sw - e))) for e in events_s]
