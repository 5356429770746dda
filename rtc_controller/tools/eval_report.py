"""``rtc-eval``'s report: the table (markdown) and the success-vs-delay figure per mode (the RTC paper's style)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

MODE_STYLE = {"none": ("tab:red", "o"), "stop": ("tab:purple", "s"), "full": ("tab:blue", "^"), "hard": ("tab:green", "D")}


def table(summary: dict) -> str:
    """Markdown table, one row per (mode, d)."""
    rows = ["| mode | d | success | 95 % CI | completion [s] | mean jump | p95 jump | mean TCP jump | jerk RMS [m/s³] | "
            "safety interventions | failures |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for mode in summary["modes"]:
        for d in summary["delays"]:
            c = summary["cells"][mode][str(d)]
            lo, hi = c["success_ci95"]
            fails = ", ".join(f"{k} {v}" for k, v in c["failures"].items()) or "-"
            rows.append(f"| {mode} | {d} | {c['successes']}/{c['episodes']} ({c['success_rate']:.0%}) | "
                        f"{lo:.2f}–{hi:.2f} | {c['completion_time_s']:.2f} | {c['jump_mean']:.3f} | {c['jump_p95']:.3f} | "
                        f"{c['jump_linear_mean_m'] * 1e3:.1f} mm | {c['jerk_rms_m_s3']:.1f} | "
                        f"{c['safety_interventions']:.0f} | {fails} |")  # fmt: skip
    return "\n".join(rows)


def figure(summary: dict, path: Path) -> None:
    """Success rate vs d per mode with the Wilson 95 % intervals (left; modes dodged sideways so the intervals stay
    readable), and the mean TCP jump at chunk switches vs d (right)."""
    fig, (ax, ax_j) = plt.subplots(1, 2, figsize=(10, 3.8))
    modes = summary["modes"]
    ds = summary["delays"]
    span = (max(ds) - min(ds)) or 1
    for k, mode in enumerate(modes):
        color, marker = MODE_STYLE.get(mode, ("black", "o"))
        cells = [summary["cells"][mode][str(d)] for d in ds]
        rate = [c["success_rate"] for c in cells]
        err = [[r - c["success_ci95"][0] for r, c in zip(rate, cells)], [c["success_ci95"][1] - r for r, c in zip(rate, cells)]]
        dodge = (k - (len(modes) - 1) / 2) * 0.012 * span
        ax.errorbar([d + dodge for d in ds], rate, yerr=err, label=mode, color=color, marker=marker, capsize=3)
        ax_j.plot(ds, [c["jump_linear_mean_m"] * 1e3 for c in cells], label=mode, color=color, marker=marker)
    ax.set_xlabel("inference delay d [action steps]")
    ax.set_ylabel("success rate (Wilson 95 %)")
    ax.set_ylim(-0.02, 1.02)
    ax_j.set_xlabel("inference delay d [action steps]")
    ax_j.set_ylabel("mean TCP jump at chunk switches [mm]")
    n = len(summary["config"]["seeds"])
    fig.suptitle(f"twin task, policy {summary['config']['policy']}, β = {summary['config']['max_guidance_weight']:g}, "
                 f"{n} episodes per point")  # fmt: skip
    for a in (ax, ax_j):
        a.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(summary: dict, out: Path) -> None:
    figure(summary, out / "success_vs_delay.png")
    cfg = summary["config"]
    text = [f"# rtc-eval: {cfg['policy']} on the MuJoCo twin", "",
            f"{len(cfg['seeds'])} episodes per cell (seeds {cfg['seeds'][0]}…{cfg['seeds'][-1]}, the same in every "
            f"cell), H = {cfg['horizon']}, s = {cfg['execution_horizon']}, Δt = {1 / cfg['action_rate_hz'] * 1e3:.0f} ms, "
            f"n = {cfg['num_steps']}, β = {cfg['max_guidance_weight']:g}, time limit {cfg['time_limit_s']:g} s. "
            + ("Real processes over DDS (`--dds`; jerk of the measured TCP, d is a lower bound of k*)."
               if cfg.get("dds") else "In-process fast path (simulated time)."), "", "![success vs d](success_vs_delay.png)", "", table(summary), ""]  # fmt: skip
    (out / "report.md").write_text("\n".join(text))
