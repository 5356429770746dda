"""Seed-style figures of a chunk switch (matplotlib, Agg; ROS-free).

One panel per action dimension (with its unit), x = action step i of the new chunk (0 … H−1):
- purple: the new chunk sampled with guidance,
- green: the previous chunk used for guidance (the prefix Y, re-indexed to the new chunk's time base),
- red dashed: the new chunk sampled from the same noise without guidance,
- grey dashed vertical line: the inference delay d (the executor switches to the new chunk there).
Axes: H = horizon, D = action dim. Arrays are ``[H, D]`` in physical units.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

__all__ = ["COLORS", "count_panels", "plot_chunk_switch", "save_figure", "unit_for", "update_guided"]

COLORS: Mapping[str, str] = {"guided": "purple", "previous": "green", "unguided": "red", "delay": "grey"}
PANEL_SIZE_IN = (3.6, 1.7)  # width, height of one panel [inch]
MIN_WIDTH_IN = 6.5  # room for the title and the legend on one-column figures [inch]
HEADER_IN = 0.6  # title line + legend line above the panels [inch]
PANELS_KEY = "Panels"  # PNG text key carrying the number of data panels (tests and tools read it back)

_ROTATION_FIELDS = ("rx", "ry", "rz")
_POSITION_FIELDS = ("x", "y", "z", "gripper")


def unit_for(name: str) -> str:
    """Unit of an action dimension from its name (action_space layout): m for x/y/z/gripper, rad otherwise
    for rx/ry/rz and joints j1…j7; '' when unknown."""
    field = name.rsplit("_", 1)[-1]
    if field in _POSITION_FIELDS:
        return "m"
    if field in _ROTATION_FIELDS or (field.startswith("j") and field[1:].isdigit()):
        return "rad"
    return ""


def _grid(dim: int) -> tuple[int, int]:
    """Rows, columns: two columns (left arm | right arm) when the dims split evenly, else one column per 7."""
    if dim >= 4 and dim % 2 == 0:
        return dim // 2, 2
    cols = max(1, math.ceil(dim / 7))
    return math.ceil(dim / cols), cols


def plot_chunk_switch(
    new: np.ndarray,
    previous: np.ndarray,
    unguided: np.ndarray | None,
    d: int,
    *,
    names: Sequence[str],
    units: Sequence[str] | None = None,
    title: str = "",
    valid: np.ndarray | None = None,
    fig: Figure | None = None,
) -> Figure:
    """Draw one switch, one panel per dimension; returns the figure (caller saves/closes it).

    new: guided chunk ``[H, D]``; previous: the prefix Y ``[H, D]`` (plotted where ``valid`` ``[H]`` is True);
    unguided: same-noise unguided chunk ``[H, D]`` or None; d: inference delay [steps];
    units: one per dim (default from ``unit_for``); title: e.g. ``"stop, β=10, d=16, H=100"``.
    With the default two-column layout the left arm is the left column.
    """
    a = np.asarray(new, dtype=np.float64)
    y = np.asarray(previous, dtype=np.float64)
    horizon, dim = a.shape
    if y.shape != a.shape or len(names) != dim:
        raise ValueError(f"shapes disagree: new {a.shape}, previous {y.shape}, {len(names)} names")
    u = None if unguided is None else np.asarray(unguided, dtype=np.float64)
    units = [unit_for(n) for n in names] if units is None else list(units)
    ok = np.ones(horizon, bool) if valid is None else np.asarray(valid, bool)
    rows, cols = _grid(dim)
    if fig is None:
        width = max(PANEL_SIZE_IN[0] * cols, MIN_WIDTH_IN)
        fig = plt.figure(figsize=(width, PANEL_SIZE_IN[1] * rows + HEADER_IN))
    axes = fig.subplots(rows, cols, sharex=True, squeeze=False)
    steps = np.arange(horizon)
    # Fill column-major when two columns (left arm down the left column), row-major otherwise.
    order = [axes[i % rows, i // rows] for i in range(rows * cols)] if cols == 2 else list(axes.ravel())
    guided_lines = []
    for j in range(dim):
        y_plot = np.where(ok, y[:, j], np.nan)
        guided_lines.extend(_draw_panel(order[j], steps, y_plot, None if u is None else u[:, j], a[:, j], d,
                                        name=names[j], unit=units[j]))  # fmt: skip
    for ax in order[dim:]:
        ax.remove()
    for ax in (axes[-1, c] for c in range(cols)):
        if ax in fig.axes:
            ax.set_xlabel("action step", fontsize=7)
    _add_header(fig, order[0], title)
    fig.rtc_guided_lines = guided_lines  # for update_guided
    return fig


def _draw_panel(ax, steps: np.ndarray, previous: np.ndarray, unguided: np.ndarray | None, guided: np.ndarray, d: int,
                *, name: str, unit: str) -> list:  # fmt: skip
    """One dimension's panel: the guidance target, the unguided and the guided chunk ``[H]``, d marked; returns
    the guided line."""
    ax.plot(steps, previous, color=COLORS["previous"], lw=1.4, label="previous chunk (guidance target)")
    if unguided is not None:
        ax.plot(steps, unguided, color=COLORS["unguided"], ls="--", lw=1.1, label="without guidance")
    lines = ax.plot(steps, guided, color=COLORS["guided"], lw=1.4, label="with guidance")
    ax.axvline(d, color=COLORS["delay"], ls="--", lw=1.0, label=f"inference delay d={d}")
    ax.set_title(name, fontsize=8, pad=2)
    ax.set_ylabel(f"[{unit}]" if unit else "", fontsize=7)
    ax.tick_params(labelsize=6)
    ax.grid(alpha=0.3)
    return lines


def _add_header(fig: Figure, first_ax, title: str) -> None:
    """The title on the first line, the legend (``first_ax``'s) on the second; the panels below them."""
    height = fig.get_figheight()
    handles, labels = first_ax.get_legend_handles_labels()
    # fig.text/legend: tight_layout leaves them.
    fig.rtc_title = fig.text(0.01, 1 - 0.08 / height, title, ha="left", va="top", fontsize=9)
    fig.legend(handles, labels, loc="upper left", bbox_to_anchor=(0.0, 1 - 0.32 / height), fontsize=7, ncol=4,
               frameon=False)  # fmt: skip
    fig.tight_layout(rect=(0, 0, 1, 1 - HEADER_IN / height))


def update_guided(fig: Figure, new: np.ndarray, *, title: str) -> Figure:
    """Replace the guided (purple) chunk ``[H, D]`` and the title of a ``plot_chunk_switch`` figure in place.

    Drawing one switch's variants (modes, βs) on one figure this way is about twice as fast as new figures.
    """
    a = np.asarray(new, dtype=np.float64)
    lines = fig.rtc_guided_lines
    if a.ndim != 2 or a.shape[1] != len(lines):
        raise ValueError(f"new must be [H, {len(lines)}], got {a.shape}")
    for j, line in enumerate(lines):
        line.set_ydata(a[:, j])
        line.axes.relim()
        line.axes.autoscale_view()
    fig.rtc_title.set_text(title)
    return fig


def count_panels(fig: Figure) -> int:
    """Number of axes that carry data lines."""
    return sum(1 for ax in fig.axes if ax.lines)


def save_figure(
    fig: Figure, path: str | Path, *, dpi: int = 90, metadata: Mapping[str, str] | None = None, close: bool = True
) -> Path:
    """Save as PNG with the title and the panel count as PNG text (``Title``, ``Panels``); close it unless asked."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    title = getattr(fig, "rtc_title", None) or fig._suptitle
    meta = {"Title": title.get_text() if title is not None else "", PANELS_KEY: str(count_panels(fig))}
    meta.update(metadata or {})
    fig.savefig(path, dpi=dpi, metadata=meta)
    if close:
        plt.close(fig)
    return path
