"""A top-down camera drawn with NumPy for the synthetic dataset: bins, pick spots, items and the two TCPs.

The view maps the world's x (forward) to image rows and y (left/right) to columns; the ``View`` gives the
world window [m]. A wrist camera is the same drawing with a small window centred on its TCP. Images are
uint8 [h, w, 3]. Nothing here is a physics model: it only has to show what a camera would show (where the
items and grippers are), so that a policy has to read the image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

BACKGROUND = (70, 70, 70)
PICK_COLOR = (220, 200, 40)
ITEM_COLOR = (220, 40, 40)
BIN_COLORS = ((40, 90, 220), (40, 180, 220), (120, 60, 200))
ARM_COLORS = ((40, 200, 60), (220, 60, 220))
GRIPPER_COLOR = (250, 250, 250)
PICK_HALF_M = 0.025
BIN_HALF_M = 0.045
ITEM_RADIUS_M = 0.025
TCP_RADIUS_M = 0.02
TCP_RADIUS_PER_HEIGHT = 0.06  # the TCP disc grows with height z [m per m]: a depth cue
GRIPPER_BAR_SCALE = 0.8  # drawn bar length per metre of gripper width


@dataclass(frozen=True)
class View:
    """World window [m]: rows span x ∈ [x_min, x_max] (top to bottom), columns y ∈ [y_min, y_max]."""

    x_min: float
    x_max: float
    y_min: float
    y_max: float

    @classmethod
    def around(cls, x: float, y: float, half_m: float) -> View:
        return cls(x - half_m, x + half_m, y - half_m, y + half_m)


@dataclass(frozen=True)
class SceneFrame:
    """What the camera sees at one instant (positions [m], widths [m])."""

    picks: Sequence[np.ndarray]  # per arm [3]
    bins: Sequence[Sequence[np.ndarray]]  # per arm, per bin [3]
    items: Sequence[np.ndarray]  # items' positions [3]
    tcps: Sequence[np.ndarray]  # per arm [3]
    grippers: Sequence[float]  # per arm


class Canvas:
    """An image with a world-to-pixel map, and filled shapes in world units."""

    def __init__(self, view: View, height: int, width: int) -> None:
        self.view, self.h, self.w = view, height, width
        self.image = np.empty((height, width, 3), np.uint8)
        self.image[:] = BACKGROUND
        rows = (np.arange(height) + 0.5) / height * (view.x_max - view.x_min) + view.x_min
        cols = (np.arange(width) + 0.5) / width * (view.y_max - view.y_min) + view.y_min
        self._x, self._y = rows[:, None], cols[None, :]

    def disc(self, center: np.ndarray, radius_m: float, color: tuple[int, int, int]) -> None:
        mask = (self._x - center[0]) ** 2 + (self._y - center[1]) ** 2 <= radius_m**2
        self.image[mask] = color

    def square(self, center: np.ndarray, half_m: float, color: tuple[int, int, int], *, outline: bool = False) -> None:
        dx, dy = np.abs(self._x - center[0]), np.abs(self._y - center[1])
        mask = (dx <= half_m) & (dy <= half_m)
        if outline:
            inner = half_m * 0.7
            mask &= (dx > inner) | (dy > inner)
        self.image[mask] = color

    def bar(self, center: np.ndarray, length_m: float, color: tuple[int, int, int]) -> None:
        """A bar along y (the gripper's opening direction), two pixels thick."""
        thick = 1.5 * (self.view.x_max - self.view.x_min) / self.h
        mask = (np.abs(self._x - center[0]) <= thick) & (np.abs(self._y - center[1]) <= length_m / 2)
        self.image[mask] = color


def render(frame: SceneFrame, view: View, height: int, width: int) -> np.ndarray:
    """uint8 [height, width, 3]: bins (outlined, one colour each), pick spots, items, TCP discs with gripper bars."""
    c = Canvas(view, height, width)
    for arm_bins in frame.bins:
        for k, b in enumerate(arm_bins):
            c.square(b, BIN_HALF_M, BIN_COLORS[k % len(BIN_COLORS)], outline=True)
    for p in frame.picks:
        c.square(p, PICK_HALF_M, PICK_COLOR)
    for item in frame.items:
        c.disc(item, ITEM_RADIUS_M, ITEM_COLOR)
    for arm, (tcp, width_m) in enumerate(zip(frame.tcps, frame.grippers, strict=True)):
        c.disc(tcp, TCP_RADIUS_M + TCP_RADIUS_PER_HEIGHT * max(float(tcp[2]), 0.0), ARM_COLORS[arm % 2])
        c.bar(tcp, GRIPPER_BAR_SCALE * float(width_m), GRIPPER_COLOR)
    return c.image
