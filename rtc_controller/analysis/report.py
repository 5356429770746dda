"""Report pieces every demo writes (ROS-free): the per-mode summary table and the figure sections."""

from __future__ import annotations

import math

__all__ = ["figure_sections", "summary_table"]


def summary_table(summary: dict[str, dict[str, float]]) -> str:
    cols = [("switches", "switches", "{:.0f}"), ("mean_jump", "mean jump", "{:.4f}"), ("p95_jump", "p95 jump", "{:.4f}"),
            ("mean_jump_linear_m", "mean lin [mm]", "{:.2f}"), ("median_delay_steps", "median δ [steps]", "{:.1f}"),
            ("median_d", "median d", "{:.0f}"), ("rejected_chunks", "rejected", "{:.0f}"),
            ("loop_lateness_p99_us", "loop p99 [µs]", "{:.0f}")]
    head = "| mode | " + " | ".join(c[1] for c in cols) + " |"
    rows = [head, "|" + "---|" * (len(cols) + 1)]
    for mode, s in summary.items():
        vals = []
        for key, _, fmt in cols:
            v = s.get(key, math.nan)
            v = v * 1e3 if key == "mean_jump_linear_m" else v
            vals.append("n/a" if isinstance(v, float) and math.isnan(v) else fmt.format(v))
        rows.append(f"| {mode} | " + " | ".join(vals) + " |")
    return "\n".join(rows)


def figure_sections(files: dict[str, str], *, trajectory: str = "", jumps: str = "") -> list[str]:
    """The report's figure sections (Markdown lines) for the files ``write_plots`` returned; ``trajectory`` /
    ``jumps`` qualify those headings (e.g. which episodes they show)."""
    return [
        f"## Executed trajectory{trajectory} (switches dotted)", f"![trajectory]({files['trajectory']})", "",
        f"## Jumps at switches{jumps}", f"![jumps]({files['jumps']})", "",
        "## Inference delay: measured δ and the d used for the next inference", f"![delay]({files['delay']})", "",
        "## Servo loop lateness", f"![lateness]({files['lateness']})", "",
    ]  # fmt: skip
