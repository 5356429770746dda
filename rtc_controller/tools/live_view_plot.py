"""Draw the live view's published paths from a bag (what RViz shows), e.g. for the README (ROS-free).

    rtc-bringup --nodes executor_node inference_node rtc_live_view --duration 25 \\
        --record out/live_bag --topics rtc/live_view/left/active_chunk …   # README, "Live view"
    python -m rtc_controller.tools.live_view_plot out/live_bag -o out/live_view.png

For each arm, the last published ``active_chunk`` (purple), ``previous_chunk`` over the overlap (green),
``frozen_prefix`` (grey, thick) and ``executed`` (black), plus the switch markers (red), top view (x, y) and
side view (x, z), in the frame of the messages.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from rtc_controller.bags.bag_reader import BagError, BagReader

STYLE = {  # path -> (colour, line width, label): the seed's colours
    "frozen_prefix": ("0.6", 6.0, "frozen prefix (first d)"),
    "previous_chunk": ("tab:green", 1.8, "previous chunk (overlap)"),
    "active_chunk": ("tab:purple", 1.8, "active (guided) chunk"),
    "executed": ("black", 1.2, "executed (measured TCP)"),
}


def last_paths(bag: BagReader, arm: str) -> dict[str, np.ndarray]:
    """``{path: positions [n, 3]}``: the last non-empty message of each of the arm's path topics."""
    out = {}
    for path in STYLE:
        topic = f"/rtc/live_view/{arm}/{path}"
        if bag.resolve(topic) is None:
            continue
        for _, msg in bag.messages(topic):
            if msg.poses:
                out[path] = np.array([[p.pose.position.x, p.pose.position.y, p.pose.position.z] for p in msg.poses])
    return out


def switch_points(bag: BagReader, arm: str) -> np.ndarray:
    """Positions [n, 3] of the arm's sphere markers in the last MarkerArray on ``rtc/live_view/switches``."""
    if bag.resolve("/rtc/live_view/switches") is None:
        return np.zeros((0, 3))
    last = None
    for _, msg in bag.messages("/rtc/live_view/switches"):
        last = msg
    spheres = [m for m in (last.markers if last else []) if m.ns == f"{arm}/switches"]
    return np.array([[m.pose.position.x, m.pose.position.y, m.pose.position.z] for m in spheres]).reshape(-1, 3)


def plot(bag_dir: str | Path, out: str | Path, arms: tuple[str, ...] = ("left", "right")) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with BagReader(bag_dir) as bag:
        paths = {arm: last_paths(bag, arm) for arm in arms}
        switches = {arm: switch_points(bag, arm) for arm in arms}
    fig, axes = plt.subplots(len(arms), 2, figsize=(11, 4.2 * len(arms)), squeeze=False)
    for row, arm in enumerate(arms):
        for col, (i, j, label) in enumerate(((0, 1, "y [m]"), (0, 2, "z [m]"))):
            ax = axes[row][col]
            for name, (colour, width, text) in STYLE.items():
                if name in paths[arm]:
                    p = paths[arm][name]
                    ax.plot(p[:, i], p[:, j], color=colour, lw=width, label=text, solid_capstyle="round")
            if len(switches[arm]):
                s = switches[arm]
                ax.scatter(s[:, i], s[:, j], c="tab:red", s=14, zorder=5, label="switch (a_k*)")
            ax.set_xlabel("x [m]")
            ax.set_ylabel(label)
            ax.set_title(f"{arm} arm, {'top' if col == 0 else 'side'} view (world frame)")
            ax.set_aspect("equal", adjustable="datalim")
            ax.grid(alpha=0.3)
    axes[0][0].legend(loc="best", fontsize=8)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(args: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="live_view_plot", description=__doc__.split("\n\n")[0])
    parser.add_argument("bag", help="bag directory with the rtc/live_view topics")
    parser.add_argument("-o", "--out", default="out/live_view.png", help="PNG to write")
    opts = parser.parse_args(args)
    try:
        print(plot(opts.bag, opts.out))
    except (BagError, OSError) as exc:
        print(f"live_view_plot: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
