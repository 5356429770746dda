"""rtc-replay: re-run recorded rig data offline, plot every chunk switch, choose the guidance weight β.

For each recorded chunk the tool rebuilds what the inference node saw (``replay_switches``) and re-samples the
chunk with the chosen policy for every guidance mode and β, from one noise draw per switch shared by every variant
(``replay_resample``); it then writes the per-switch figures, the metrics table and the recommended β
(``replay_outputs``). Options and exit status: ``replay_cli`` (the console script).

Prefix and weights follow the inference node (DESIGN.md): Y[i] = A_prev[i + m], m = round((t_obs − t_obs_prev)/Δt),
W = prefix_weights(d, H − s, H, schedule) zeroed where Y has no data; the executor runs Y[:d] and switches at d.

Axes: b = batch (1), H = horizon, D = action dim (physical), Dm = model action dim. Flow time t = 1 is noise.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from rtc_controller.policy.base import FlowPolicy
from rtc_controller.policy.chunk_sampler import ChunkSampler

from . import metrics as M
from rtc_controller.bags.bag_reader import BagReader
from .replay_config import ReplayConfig
from .replay_outputs import plot_switch, print_report, switch_row, variant_table, write_outputs
from .replay_resample import make_replay_policy, resample_switch
from .replay_switches import SwitchInput, load_switches_counted

__all__ = ["Progress", "ReplayResult", "run_replay"]


@dataclass
class ReplayResult:
    """Per-switch metrics, the per-(mode, β) table, recommendations, written files."""

    switches: list[SwitchInput]
    per_switch: list[dict[str, Any]]
    table: list[dict[str, Any]]
    recommendations: dict[str, M.BetaRecommendation]
    figures: list[Path]
    output: Path
    skipped_no_state: int = 0  # chunks recorded before the first robot state (not replayed)


class Progress:
    """A plain stderr progress bar (a redrawn line on a terminal, a line per 10 % otherwise)."""

    WIDTH = 30

    def __init__(self, total: int, label: str, *, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.total, self.label, self.done = max(total, 1), label, 0
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.t0 = time.monotonic()
        self._last_decile = -1

    def step(self, n: int = 1) -> None:
        self.done += n
        if not self.enabled:
            return
        frac = min(self.done / self.total, 1.0)
        elapsed = time.monotonic() - self.t0
        eta = elapsed / frac - elapsed if frac > 0 else math.nan
        filled = int(round(frac * self.WIDTH))
        line = (
            f"{self.label}: [{'#' * filled}{'.' * (self.WIDTH - filled)}] {self.done}/{self.total} "
            f"{elapsed:5.1f} s, eta {eta:4.0f} s"
        )
        if self.tty:
            self.stream.write("\r" + line + ("\n" if self.done >= self.total else ""))
        elif int(frac * 10) != self._last_decile or self.done >= self.total:
            self._last_decile = int(frac * 10)
            self.stream.write(line + "\n")
        self.stream.flush()


def _plotted(cfg: ReplayConfig, switches: list[SwitchInput]) -> set[int]:
    """Indices of the switches to plot: ``cfg.figures`` of them, evenly spaced over the replayed ones."""
    if cfg.figures <= 0:
        return set()
    pick = np.round(np.linspace(0, len(switches) - 1, min(cfg.figures, len(switches)))).astype(int)
    return {switches[int(p)].index for p in pick}


def _replay_all(cfg: ReplayConfig, policy: FlowPolicy, switches: list[SwitchInput]):
    """Re-sample and measure every switch: (per-switch rows, {(mode, β): metrics per switch}, figures)."""
    plot_at = _plotted(cfg, switches)
    per_switch: list[dict[str, Any]] = []
    by_variant: dict[tuple[str, float], list[M.SwitchMetrics]] = {(m, b): [] for m in cfg.modes for b in cfg.betas}
    figures: list[Path] = []
    progress = Progress(len(switches), "rtc-replay", enabled=cfg.progress)
    samplers: dict[float, ChunkSampler] = {}  # one per recorded Δt (the jit caches are shared anyway)
    for sw in switches:
        if sw.chunk.dt_s not in samplers:
            samplers[sw.chunk.dt_s] = ChunkSampler(policy, dt_s=sw.chunk.dt_s, num_steps=cfg.num_steps)
        unguided, variants = resample_switch(
            samplers[sw.chunk.dt_s], sw, modes=cfg.modes, betas=cfg.betas, schedule=cfg.schedule, seed=cfg.seed
        )
        tail_start = sw.chunk.horizon - sw.execution_horizon
        for (mode, beta), new in variants.items():
            met = M.switch_metrics(
                new=new, prefix=sw.prefix.actions, weights=sw.weights, d=sw.d, unguided=unguided,
                dt_s=sw.chunk.dt_s, tail_start=tail_start, history=sw.history,
            )  # fmt: skip
            by_variant[(mode, beta)].append(met)
            per_switch.append(switch_row(sw, mode, beta, met))
        if sw.index in plot_at:
            figures += plot_switch(sw, unguided, variants, cfg.output / "switches")
        progress.step()
    return per_switch, by_variant, figures


def run_replay(cfg: ReplayConfig, *, policy: FlowPolicy | None = None, stdout: TextIO | None = None) -> ReplayResult:
    """Run the whole replay; ``policy`` overrides ``cfg.policy`` (tests, notebooks)."""
    stdout = stdout or sys.stdout
    with BagReader(cfg.bag) as bag:
        loaded = load_switches_counted(bag, cfg)
    switches = loaded.switches
    if loaded.skipped_no_state:
        print(f"rtc-replay: skipped {loaded.skipped_no_state} chunk(s) recorded before the first robot state",
              file=stdout)  # fmt: skip
    if policy is None:
        policy = make_replay_policy(cfg, switches[0])
    cfg.output.mkdir(parents=True, exist_ok=True)
    per_switch, by_variant, figures = _replay_all(cfg, policy, switches)
    table, recs = variant_table(cfg, by_variant)
    write_outputs(cfg, switches, per_switch, table, recs, figures, skipped_no_state=loaded.skipped_no_state)
    print_report(cfg, table, recs, figures, stdout)
    return ReplayResult(switches, per_switch, table, recs, figures, cfg.output, loaded.skipped_no_state)
