"""What rtc-replay writes and prints: the per-(mode, β) metrics table with the recommended β, the CSVs,
``summary.json`` and the per-switch figures.

Files under ``--output DIR``: ``switches/switch_<i>/<mode>_beta<β>.png`` (seed-style, one panel per action
dimension), ``metrics.csv`` (one row per (mode, β), means over switches), ``switch_metrics.csv`` (one row per
switch, mode, β), ``summary.json`` (recommended β per mode with the reason).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

from . import metrics as M
from .replay_config import ReplayConfig
from .replay_switches import SwitchInput

__all__ = [
    "SWITCH_COLUMNS",
    "TABLE_COLUMNS",
    "format_table",
    "plot_switch",
    "print_report",
    "switch_row",
    "variant_table",
    "write_outputs",
]

TABLE_COLUMNS = ("mode", "beta", "switches", "mean_mismatch", "mean_jump", "p95_jump", "mean_jerk",
                 "mean_tail_departure", "recommended")  # fmt: skip
SWITCH_COLUMNS = ("switch", "t_obs_s", "d", "d_source", "shift_steps", "execution_horizon", "mode", "beta",
                  "mismatch", "jump", "jerk", "tail_departure")  # fmt: skip


def plot_switch(sw: SwitchInput, unguided, variants, out_dir: Path) -> list[Path]:
    """One PNG per variant of one switch (``none`` once: β has no effect), drawn on one reused figure."""
    import matplotlib.pyplot as plt

    from .plots import plot_chunk_switch, save_figure, update_guided

    paths: list[Path] = []
    horizon = sw.chunk.horizon
    fig = None
    done_none = False
    try:
        for (mode, beta), new in variants.items():
            if mode == "none":
                if done_none:
                    continue
                done_none = True
                label, fname = "none (β has no effect)", "none.png"
            else:
                label, fname = f"{mode}, β={beta:g}", f"{mode}_beta{beta:g}.png"
            title = (
                f"switch {sw.index} (t_obs {sw.chunk.t_obs_s:.3f} s): {label}, d={sw.d}, H={horizon}, "
                f"s={sw.execution_horizon}"
            )
            if fig is None:
                fig = plot_chunk_switch(
                    new, sw.prefix.actions, unguided, sw.d, names=sw.chunk.names, title=title, valid=sw.prefix.valid
                )
            else:
                update_guided(fig, new, title=title)
            paths.append(save_figure(fig, out_dir / f"switch_{sw.index:04d}" / fname, close=False))
    finally:
        if fig is not None:
            plt.close(fig)
    return paths


def switch_row(sw: SwitchInput, mode: str, beta: float, met: M.SwitchMetrics) -> dict[str, Any]:
    """One ``switch_metrics.csv`` row (``SWITCH_COLUMNS``)."""
    return {
        "switch": sw.index, "t_obs_s": sw.chunk.t_obs_s, "d": sw.d, "d_source": sw.d_source,
        "shift_steps": sw.prefix.shift_steps, "execution_horizon": sw.execution_horizon,
        "mode": mode, "beta": beta, **asdict(met),
    }  # fmt: skip


def variant_table(
    cfg: ReplayConfig, by_variant: Mapping[tuple[str, float], Sequence[M.SwitchMetrics]]
) -> tuple[list[dict[str, Any]], dict[str, M.BetaRecommendation]]:
    """(one ``metrics.csv`` row per (mode, β): means over the switches, the recommended β per mode)."""
    table = []
    recs: dict[str, M.BetaRecommendation] = {}
    for mode in cfg.modes:
        summaries = {b: M.summarize(by_variant[(mode, b)]) for b in cfg.betas}
        recs[mode] = M.recommend_beta(
            {b: s["mean_jump"] for b, s in summaries.items()}, mode=mode, rel_tol=cfg.jump_rel_tol,
            abs_tol=cfg.jump_abs_tol,
        )  # fmt: skip
        for b in cfg.betas:
            s = summaries[b]
            table.append({
                "mode": mode, "beta": float(b), "switches": int(s["switches"]), "mean_mismatch": s["mean_mismatch"],
                "mean_jump": s["mean_jump"], "p95_jump": s["p95_jump"], "mean_jerk": s["mean_jerk"],
                "mean_tail_departure": s["mean_tail_departure"], "recommended": recs[mode].beta == float(b),
            })  # fmt: skip
    return table, recs


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4g}"
    return str(v)


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The per-(mode, β) table as aligned text."""
    cols = TABLE_COLUMNS
    cells = [[_fmt(r[c]) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[k]) for row in cells)) for k, c in enumerate(cols)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(cols, widths))]
    lines += ["  ".join(x.rjust(w) for x, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def print_report(cfg: ReplayConfig, table, recs: Mapping[str, M.BetaRecommendation], figures: Sequence[Path],
                 stdout: TextIO) -> None:  # fmt: skip
    """The table, the recommended β per mode and where the files went."""
    print(format_table(table), file=stdout)
    for rec in recs.values():
        print(f"recommended β for {rec.mode}: {rec.beta:g} — {rec.reason}", file=stdout)
    print(f"wrote {cfg.output / 'metrics.csv'}, {len(figures)} figure(s) under {cfg.output / 'switches'}", file=stdout)


def write_outputs(cfg: ReplayConfig, switches, per_switch, table, recs, figures, *, skipped_no_state: int = 0) -> None:
    """``metrics.csv``, ``switch_metrics.csv`` and ``summary.json`` under ``cfg.output``."""
    with open(cfg.output / "metrics.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=TABLE_COLUMNS)
        w.writeheader()
        w.writerows(table)
    with open(cfg.output / "switch_metrics.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=SWITCH_COLUMNS)
        w.writeheader()
        w.writerows(per_switch)

    def clean(v):
        return None if isinstance(v, float) and not math.isfinite(v) else v

    summary = {
        "bag": str(cfg.bag),
        "policy": cfg.policy,
        "num_steps": cfg.num_steps,
        "schedule": cfg.schedule,
        "horizon": switches[0].chunk.horizon,
        "execution_horizon": switches[0].execution_horizon,
        "switches": [sw.index for sw in switches],
        "skipped_before_first_state": skipped_no_state,
        "delays": sorted({sw.d for sw in switches}),
        "table": [{k: clean(v) for k, v in row.items()} for row in table],
        "recommended_beta": {m: {"beta": r.beta, "mean_jump": clean(r.mean_jump), "reason": r.reason} for m, r in recs.items()},
        "figures": [str(p.relative_to(cfg.output)) for p in figures],
    }
    (cfg.output / "summary.json").write_text(json.dumps(summary, indent=2))
