"""The RTC paper's two-panel figure from several ``rtc-eval`` summaries: success against the inference delay d on one
execution-horizon row, and success against the execution horizon s at one fixed d, pooled over every summary.

Each point is one cell (50 episodes in the committed grids) with its Wilson 95 % band; a cell met in two summaries
(the grids share cells) is taken once. s and d are in action steps (Δt = 20 ms on the twin).

Run: ``python -m rtc_controller.tools.eval_figure docs/results/*/summary.json --row smax5 --delay 0
--out docs/results/success_vs_d_and_s.png``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rtc_controller.tools.eval_report import plot_success, plt


def cells_by_s(summaries: list[dict], delay: int) -> dict[str, dict[int, dict]]:
    """method -> {s: cell} for every cell at inference delay ``delay`` in ``summaries`` (first one met wins)."""
    out: dict[str, dict[int, dict]] = {}
    for summary in summaries:
        for method, rows in summary["cells"].items():
            for row, by_d in rows.items():
                cell = by_d.get(str(delay))
                if cell is not None:
                    out.setdefault(method, {}).setdefault(int(summary["s"][row][str(delay)]), cell)
    return out


def cells_by_d(summaries: list[dict], row: str) -> dict[str, dict[int, dict]]:
    """method -> {d: cell} on execution-horizon row ``row`` (e.g. ``smax5``, ``s25``) in ``summaries``."""
    out: dict[str, dict[int, dict]] = {}
    for summary in summaries:
        for method, rows in summary["cells"].items():
            for d, cell in rows.get(row, {}).items():
                out.setdefault(method, {}).setdefault(int(d), cell)
    return out


def _panel(ax, series: dict[str, dict[int, dict]], methods: list[str]) -> None:
    for k, m in enumerate(methods):
        plot_success(ax, series.get(m, {}), m, k)
    ax.grid(alpha=0.3)
    ax.set_ylim(-0.02, 1.02)


def figure(summaries: list[dict], path: Path, *, row: str, delay: int, row_label: str) -> list[str]:
    """Write the two-panel figure to ``path``; returns the methods drawn (first-seen order, no β variants)."""
    methods = [m for s in summaries for m in s["methods"] if "@" not in m]
    methods = list(dict.fromkeys(methods))
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True)
    _panel(left, cells_by_d(summaries, row), methods)
    left.set_title(row_label)
    left.set_xlabel("inference delay d [action steps of 20 ms]")
    left.set_ylabel("success rate (Wilson 95 % band)")
    _panel(right, cells_by_s(summaries, delay), methods)
    right.set_title(f"d = {delay}")
    right.set_xlabel("execution horizon s [action steps]")
    handles, labels = left.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return methods


def main(args: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="success vs d (one row) and vs s (one d) from rtc-eval summaries")
    p.add_argument("summaries", nargs="+", type=Path, help="summary.json files of rtc-eval runs")
    p.add_argument("--row", default="smax5", help="execution-horizon row of the d panel (s25, smax5, …)")
    p.add_argument("--delay", type=int, default=0, help="d of the s panel [action steps]")
    p.add_argument("--out", type=Path, default=Path("out/success_vs_d_and_s.png"))
    a = p.parse_args(args)
    summaries = [json.loads(f.read_text()) for f in a.summaries]
    labels = {r["name"]: r["label"] for s in summaries for r in s["rows"]}
    if a.row not in labels:
        p.error(f"no summary has row {a.row!r}; rows: {sorted(labels)}")
    figure(summaries, a.out, row=a.row, delay=a.delay, row_label=labels[a.row])
    print(f"figure: {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
