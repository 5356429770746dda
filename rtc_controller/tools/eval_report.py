"""``rtc-eval``'s report: the tables (markdown), the paired tests and the success-vs-delay figure (the RTC paper's
style: success against d, one line per method with its Wilson 95 % band, one panel per execution-horizon row)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

METHOD_STYLE = {"none": ("tab:red", "o"), "stop": ("tab:purple", "s"), "full": ("tab:blue", "^"),
                "hard": ("tab:green", "D"), "trained": ("tab:orange", "v"), "bid": ("tab:brown", "P")}  # fmt: skip
SIGNIFICANCE = 0.05  # paired tests: p below this is reported as a difference


def _style(method: str, k: int) -> tuple[str, str, str]:
    mode, _, beta = method.partition("@")
    color, marker = METHOD_STYLE.get(mode, ("black", "o"))
    return color, marker, ("-" if not beta else (":", "--", "-.")[k % 3])


def _cells(summary: dict):
    """(method, row, d, cell metrics) in table order."""
    for row in summary["rows"]:
        for d in summary["delays"]:
            for m in summary["methods"]:
                c = summary["cells"].get(m, {}).get(row["name"], {}).get(str(d))
                if c is not None:
                    yield m, row, d, c


def table(summary: dict) -> str:
    """Markdown table, one row per cell."""
    out = ["| method | s | d | success | 95 % CI | vs none (only / none only, p) | completion [s] | mean TCP jump | "
           "jerk RMS [m/s³] | interventions [ticks, runs] | failures |", "|---" * 11 + "|"]
    for m, row, d, c in _cells(summary):
        lo, hi = c["success_ci95"]
        fails = ", ".join(f"{k} {v}" for k, v in (c.get("failure_phases") or c["failures"]).items()) or "-"
        t = summary["paired_vs_none"].get(row["name"], {}).get(str(d), {}).get(m)
        vs = "-" if t is None else f"{t['a_only']} / {t['b_only']}, p = {t['p_value']:.3g}"
        s = summary["s"][row["name"]][str(d)]
        out.append(f"| {m} | {s} | {d} | {c['successes']}/{c['episodes']} ({c['success_rate']:.0%}) | {lo:.2f}–{hi:.2f} | "
                   f"{vs} | {c['completion_time_s']:.2f} | {c['jump_linear_mean_m'] * 1e3:.1f} mm | "
                   f"{c['jerk_rms_m_s3']:.1f} | {c['safety_interventions']:.0f}, {c.get('intervention_events', 0):.0f} | "
                   f"{fails} |")  # fmt: skip
    return "\n".join(out)


def significant_differences(summary: dict) -> list[str]:
    """The paired tests with p < ``SIGNIFICANCE``: one line each (method, row, d, the counts, p)."""
    lines = []
    for row in summary["rows"]:
        for d, tests in summary["paired_vs_none"].get(row["name"], {}).items():
            for m, t in tests.items():
                if t["p_value"] < SIGNIFICANCE:
                    better = "more" if t["a_only"] > t["b_only"] else "fewer"
                    lines.append(f"{m} at {row['label']}, d = {d}: {better} successes than none "
                                 f"({t['a_only']} seeds only {m}, {t['b_only']} only none; p = {t['p_value']:.3g})")
    return lines


def plot_success(ax, points: Mapping[int, dict], method: str, k: int) -> None:
    """One method's success rate against x (d or s) with its Wilson 95 % band; ``points``: x -> cell, ``k``: the
    method's index (line style of a β variant). Nothing is drawn without points."""
    xs = sorted(points)
    if not xs:
        return
    color, marker, line = _style(method, k)
    ax.plot(xs, [points[x]["success_rate"] for x in xs], color=color, marker=marker, linestyle=line, label=method)
    ax.fill_between(xs, [points[x]["success_ci95"][0] for x in xs], [points[x]["success_ci95"][1] for x in xs],
                    color=color, alpha=0.12)  # fmt: skip


def figure(summary: dict, path: Path) -> None:
    """One panel per execution-horizon row: success rate vs d per method with the Wilson 95 % band."""
    rows = summary["rows"]
    fig, axes = plt.subplots(1, len(rows), figsize=(4.6 * len(rows), 4.0), squeeze=False, sharey=True)
    for ax, row in zip(axes[0], rows):
        for k, m in enumerate(summary["methods"]):
            cells = summary["cells"].get(m, {}).get(row["name"], {})
            plot_success(ax, {int(d): c for d, c in cells.items()}, m, k)
        ax.set_title(row["label"])
        ax.set_xlabel("inference delay d [action steps of 20 ms]")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("success rate (Wilson 95 % band)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 8), frameon=False)
    n = len(summary["config"]["seeds"])
    fig.suptitle(f"twin task, {summary['config']['policy_config'] or summary['config']['policy']}: {n} episodes per "
                 "point, the same seeds in every cell")  # fmt: skip
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=120, bbox_inches="tight")  # the suptitle and the legend below the axes stay inside
    plt.close(fig)


def delay_effects(summary: dict) -> list[str]:
    """The paired tests of a method at d against itself at d = 0 with p < ``SIGNIFICANCE``: one line each."""
    lines = []
    for row in summary["rows"]:
        for d, tests in summary.get("paired_vs_d0", {}).get(row["name"], {}).items():
            for m, t in tests.items():
                if t["p_value"] < SIGNIFICANCE:
                    change = "more" if t["a_only"] > t["b_only"] else "fewer"
                    lines.append(f"{m} at {row['label']}, d = {d}: {change} successes than at d = 0 "
                                 f"({t['a_only']} seeds only at d = {d}, {t['b_only']} only at 0; p = {t['p_value']:.3g})")
    return lines


def write_report(summary: dict, out: Path) -> None:
    figure(summary, out / "success_vs_delay.png")
    cfg = summary["config"]
    seeds = cfg["seeds"]
    diffs = significant_differences(summary)
    text = [f"# rtc-eval: {cfg['policy_config'] or cfg['policy']} on the MuJoCo twin", "",
            f"{len(seeds)} episodes per cell (seeds {seeds[0]}…{seeds[-1]}, the same in every cell), H = "
            f"{cfg['horizon']}, Δt = {1 / cfg['action_rate_hz'] * 1e3:.0f} ms, n = {cfg['num_steps']}, β = "
            f"{cfg['max_guidance_weight']:g} unless a method says @β, time limit {cfg['time_limit_s']:g} s, parameter "
            f"file {cfg['config'] or 'config/twin.yaml'}. "
            + ("Real processes over DDS (`--dds`; jerk of the measured TCP, d is a lower bound of k*)."
               if cfg.get("dds") else "In-process: the executor core and the inference loop in simulated time."),
            "", "![success vs d](success_vs_delay.png)", "", table(summary), "",
            "Paired tests: exact McNemar test (two-sided binomial on the discordant seeds) of each method against "
            f"none at the same s and d; p < {SIGNIFICANCE}:", ""]  # fmt: skip
    text += [f"- {line}" for line in diffs] or ["- none: no method differs from none at p < 0.05 in any cell."]
    text += ["", "Each method against itself at d = 0 (same seeds), exact McNemar; p < "
             f"{SIGNIFICANCE}:", ""]
    text += [f"- {line}" for line in delay_effects(summary)] or ["- none: no method's success changes with d at "
                                                                 f"p < {SIGNIFICANCE}."]
    text += ["", "Result: " + conclusion(summary), ""]
    (out / "report.md").write_text("\n".join(text))


def conclusion(summary: dict) -> str:
    """One sentence on what the grid shows, from the paired tests."""
    diffs = significant_differences(summary)
    better = sorted({line.split(" at ")[0] for line in diffs if ": more successes" in line})
    worse = sorted({line.split(" at ")[0] for line in diffs if ": fewer successes" in line})
    if not diffs:
        return f"with {len(summary['config']['seeds'])} seeds per cell, no method separates from none on success."
    parts = []
    if better:
        parts.append(f"{', '.join(better)} beat none in {sum(': more' in x for x in diffs)} cells")
    if worse:
        parts.append(f"{', '.join(worse)} fall behind none in {sum(': fewer' in x for x in diffs)} cells")
    return "; ".join(parts) + f" (paired tests, p < {SIGNIFICANCE}); the other cells do not separate."
