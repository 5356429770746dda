"""The demos' report figures and closing line (ROS-free; ``demo`` and ``demo_twin`` write them).

Times [s] on the executor clock; jumps: all 14 dims (m and rad together) and the TCP part in mm. A ``ModeRun`` may
hold several episodes (``demo_twin.merge_runs``): ``episode_starts`` are the indices where each episode's 1 Hz loop
diagnostics begin, and the trajectory shows the first episode with only the switches inside its time span.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from rtc_controller.analysis.stats import wilson_interval

__all__ = ["MODE_COLORS", "PLOT_DIMS", "conclusion", "write_plots"]

MODE_COLORS = {"none": "tab:red", "stop": "tab:purple", "full": "tab:orange", "hard": "tab:green"}
PLOT_DIMS = ("left_x", "left_y", "left_z", "left_gripper")  # the left arm (the right one mirrors it)
MM_PER_M = 1e3


def _plot_trajectory(plt, runs: Sequence):
    """Executed left-arm TCP and gripper per mode (first episode), its own switches dotted."""
    dims = [n for n in PLOT_DIMS if runs and n in runs[0].state_names]
    fig, axes = plt.subplots(len(dims), len(runs), figsize=(4.5 * len(runs), 1.8 * len(dims) + 0.6), sharex="col",
                             squeeze=False)  # fmt: skip
    for c, run in enumerate(runs):
        t = run.state_times_s
        t0, t1 = (t[0], t[-1]) if len(t) else (0.0, 0.0)  # executor clock, as the switch stamps
        own = [sw.t_switch_s - t0 for sw in run.switches if t0 <= sw.t_switch_s <= t1]
        for r, name in enumerate(dims):
            ax = axes[r, c]
            ax.plot(t - t0, run.states[:, run.state_names.index(name)], color=MODE_COLORS.get(run.mode, "k"), lw=1)
            for ts in own:
                ax.axvline(ts, color="grey", lw=0.5, ls=":")
            ax.set_ylabel(f"{name} [m]", fontsize=7)
            ax.tick_params(labelsize=6)
            ax.grid(alpha=0.3)
        axes[0, c].set_title(f"{run.mode}: left arm TCP and gripper, switches dotted", fontsize=9)
        axes[-1, c].set_xlabel("time since the episode's first state [s]", fontsize=7)
    return fig


def _plot_jumps(plt, runs: Sequence):
    """Jump distribution per mode: all dimensions, and the TCP jump in mm (as the table)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    for ax, key, scale, label in ((axes[0], "jump", 1.0, "jump at switch, all 14 dims [m, rad]"),
                                  (axes[1], "jump_linear_m", MM_PER_M, "TCP jump at switch, larger arm [mm]")):  # fmt: skip
        data = [[getattr(s, key) * scale for s in run.chunk_switches] or [np.nan] for run in runs]
        ax.boxplot(data, tick_labels=[r.mode for r in runs], showfliers=True)
        ax.set_ylabel(label, fontsize=8)
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    return fig


def _plot_delay(plt, runs: Sequence):
    """δ and d over time per mode."""
    fig, axes = plt.subplots(1, len(runs), figsize=(4.5 * len(runs), 3), squeeze=False, sharey=True)
    for ax, run in zip(axes[0], runs):
        ax.plot(run.delay_times_s, run.delay_steps, ".", ms=3, color=MODE_COLORS.get(run.mode, "k"),
                label="δ/Δt (measured)")  # fmt: skip
        ax.step(run.d_times_s, run.d_values, where="post", color="k", lw=1, label="d (next inference)")
        ax.set_title(run.mode, fontsize=9)
        ax.set_xlabel("time since the episode's first chunk [s]", fontsize=7)
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("action steps", fontsize=8)
    axes[0, 0].legend(fontsize=7)
    return fig


def _plot_lateness(plt, runs: Sequence):
    """Servo-loop lateness per 1 s diagnostics window (p99 and max), episodes separated, legend outside."""
    fig, ax = plt.subplots(figsize=(7.5, 3))
    for run in runs:
        color = MODE_COLORS.get(run.mode, "k")
        ax.plot(run.lateness_p99_us, color=color, label=f"{run.mode} p99")
        ax.plot(run.lateness_max_us, color=color, ls=":", lw=0.8, label=f"{run.mode} max")
    starts = sorted({i for run in runs for i in getattr(run, "episode_starts", ())[1:]})
    for i in starts:
        ax.axvline(i - 0.5, color="k", lw=0.6, alpha=0.5)
    ax.set_yscale("log")
    what = "episodes separated by vertical lines" if starts else "one run per mode"
    ax.set_xlabel(f"diagnostics message (1 Hz; {what})", fontsize=8)
    ax.set_ylabel("servo-loop lateness [µs]", fontsize=8)
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    ax.grid(alpha=0.3)
    return fig


def write_plots(runs: Sequence, out: Path) -> dict[str, str]:
    """PNG figures for the report; returns {name: file name}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = {}
    for name, draw in (("trajectory", _plot_trajectory), ("jumps", _plot_jumps), ("delay", _plot_delay),
                       ("lateness", _plot_lateness)):  # fmt: skip
        fig = draw(plt, runs)
        fig.tight_layout()
        files[name] = f"{name}.png"
        fig.savefig(out / files[name], dpi=90, bbox_inches="tight")
        plt.close(fig)
    return files


def _jump_order(summary: Mapping[str, Mapping]) -> str:
    ranked = sorted((s.get("mean_jump", math.nan), m) for m, s in summary.items() if math.isfinite(s.get("mean_jump", math.nan)))
    return " < ".join(f"{m} {v:.3g}" for v, m in ranked)


def conclusion(summary: Mapping[str, Mapping]) -> str:
    """One line stating what the run shows: the mean-jump order, and (with episodes) whether success separates
    the modes (Wilson 95 % intervals of every pair disjoint or not)."""
    line = f"What this run shows: mean jump at chunk switches {_jump_order(summary) or 'n/a'}"
    with_success = {m: s for m, s in summary.items() if "successes" in s}
    if with_success:
        iv = {m: wilson_interval(int(s["successes"]), int(s["episodes"])) for m, s in with_success.items()}
        modes = list(iv)
        apart = [(a, b) for i, a in enumerate(modes) for b in modes[i + 1:] if iv[a][1] < iv[b][0] or iv[b][1] < iv[a][0]]
        n = max(int(s["episodes"]) for s in with_success.values())
        rates = ", ".join(f"{m} {int(s['successes'])}/{int(s['episodes'])}" for m, s in with_success.items())
        verdict = (f"success ({rates}) separates {', '.join(f'{a}/{b}' for a, b in apart)}" if apart else
                   f"success ({rates}): {n} episode(s) per mode do not separate the modes (Wilson 95 % intervals overlap)")
        line += f"; {verdict}"
    return line + "."
