"""``rtc-eval``: closed-loop evaluation on the MuJoCo twin: task success vs inference delay, per guidance method.

Grid (``tools/eval_grid.py``): methods (``--methods``: ``none``, ``stop``, ``stop@1`` …, ``full``, ``hard``,
``trained``) × execution horizons (``--execution-horizons``: ``25``, ``10``, ``max5`` = max(d, 5)) × delays d
(``--delays``, action steps at Δt = 1/``--action-rate``; injected exactly: each chunk reaches the executor d·Δt after
its observation), the same seeds in every cell. Each episode runs in-process (``sim.episode``): the executor core
and the inference node's loop, configured from the nodes' parameter file (``--config``, default
``config/twin.yaml``: ``tools/eval_config.py``), on the twin world in simulated time (faster than real time,
deterministic from the seed), in ``--workers`` processes. ``--dds`` runs each episode through the real processes
instead (``tools/eval_dds.py``: a fresh ``rtc-bringup`` per episode with the same parameter overrides; slow, for
spot checks).

Output (``--out``): ``cells/<method>_<row>_d<d>.json`` (each episode's metrics; a finished cell is not re-run: the
grid resumes), ``summary.json`` (per-cell metrics and the paired tests of every method against ``none`` on the
same seeds), ``report.md`` and ``success_vs_delay.png``.

    rtc-eval --out out/eval --delays 0,4,8,16,24 --methods none,stop,full,hard --seeds 20
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rtc_controller.chunk_timing import ChunkTiming
from rtc_controller.config_files import world_file
from rtc_controller.tools.eval_config import EvalConfig, fingerprint
from rtc_controller.tools.eval_grid import Cell, HorizonRow, Method, grid_cells, read_cell
from rtc_controller.tools.eval_run import Evaluator, Progress, run_cells
from rtc_controller.analysis.stats import paired_test, summarize_cell

__all__ = ["EvalConfig", "Evaluator", "main", "run_grid", "summarize_grid"]

DEFAULT_DELAYS = (0, 4, 8, 16, 24)
BASELINE = "none"  # the paired tests compare every method with naive asynchronous chunking


def summarize_grid(cfg: EvalConfig, cells: list[Cell], out: Path) -> dict:
    """Per-cell metrics and, per (row, d), each method's exact McNemar test against ``none`` on the same seeds and
    against itself at d = 0."""
    methods = list(dict.fromkeys(c.method.name for c in cells))
    rows = list(dict.fromkeys(c.row for c in cells))
    episodes = {c.key: read_cell(c, out) for c in cells}
    metrics: dict = {}
    paired: dict = {}
    vs_zero: dict = {}  # each method at d against itself at d = 0 (same seeds): is a delay effect real?
    for c in cells:
        metrics.setdefault(c.method.name, {}).setdefault(c.row.name, {})[str(c.delay)] = summarize_cell(episodes[c.key])
        base = next((b for b in cells if b.method.name == BASELINE and b.row == c.row and b.delay == c.delay), None)
        if base is not None and c.method.name != BASELINE:
            ok = [e["success"] for e in episodes[c.key]]
            ok_base = [e["success"] for e in episodes[base.key]]
            paired.setdefault(c.row.name, {}).setdefault(str(c.delay), {})[c.method.name] = paired_test(ok, ok_base)
        zero = next((b for b in cells if b.method == c.method and b.row == c.row and b.delay == 0), None)
        if zero is not None and c.delay != 0:
            ok, ok_zero = ([e["success"] for e in episodes[x.key]] for x in (c, zero))
            vs_zero.setdefault(c.row.name, {}).setdefault(str(c.delay), {})[c.method.name] = paired_test(ok, ok_zero)
    return {"config": fingerprint(cfg), "methods": methods,
            "rows": [{"name": r.name, "label": r.label} for r in rows],
            "delays": sorted({c.delay for c in cells}),
            "s": {r.name: {str(c.delay): c.execution_horizon for c in cells if c.row == r} for r in rows},
            "cells": metrics, "paired_vs_none": paired, "paired_vs_d0": vs_zero}  # fmt: skip


def run_grid(cfg: EvalConfig, *, methods: list[Method], rows: list[HorizonRow], delays, out: Path,
             workers: int = 1, progress: bool = True) -> dict:  # fmt: skip
    """Run (or resume) every cell, then write ``summary.json``, ``report.md`` and the figure; returns the summary."""
    out.mkdir(parents=True, exist_ok=True)
    cells = grid_cells(methods, rows, list(delays))
    if not cells:
        raise ValueError("the grid has no cell: every delay exceeds its fixed execution horizon")
    bar = Progress(len(cells), sys.stderr if progress else open("/dev/null", "w"))  # noqa: SIM115
    run_cells(cfg, cells, out, workers=workers, on_cell=bar.step)
    summary = summarize_grid(cfg, cells, out)
    import json

    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    from rtc_controller.tools.eval_report import write_report

    write_report(summary, out)
    return summary


def _policy_param(text: str) -> tuple[str, Any]:
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, yaml.safe_load(value)


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rtc-eval", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="out/eval", help="output folder (resumes the cells already there)")
    p.add_argument("--config", default="", help="the nodes' parameter file (default config/twin.yaml)")
    p.add_argument("--policy", default="", help="twin | twin_expert | pi05 (default: pi05 with --policy-config or "
                                                "--checkpoint, else twin)")
    p.add_argument("--delays", default=",".join(map(str, DEFAULT_DELAYS)), help="d values [action steps]")
    p.add_argument("--methods", "--modes", dest="methods", default="none,stop,full,hard",
                   help="guidance methods, <mode> or <mode>@<β> (e.g. none,hard,full,stop,stop@1,stop@100,trained)")
    p.add_argument("--execution-horizons", "--execution-horizon", dest="rows", default="25",
                   help="execution horizon rows: s values and/or max<N> (s = max(d, N)), e.g. 10,25,max5")
    p.add_argument("--seeds", type=int, default=10, help="episodes per cell (the same seeds in every cell)")
    p.add_argument("--seed-start", type=int, default=0, help="first seed (seeds start … start + N − 1)")
    p.add_argument("--beta", type=float, default=10.0, help="β, max guidance weight (methods without @β)")
    p.add_argument("--horizon", type=int, default=50)
    p.add_argument("--num-steps", type=int, default=10)
    p.add_argument("--servo-rate", type=float, default=1000.0,
                   help="executor core rate [Hz] (timeline + safety filter); the physics stays at 1 kHz, holding the "
                        "command between ticks (500: about 1.5x faster episodes)")
    p.add_argument("--time-limit", type=float, default=15.0, help="episode time limit [s]")
    p.add_argument("--cameras", default="", help="camera slots rendered into observations (pi05), comma-separated")
    p.add_argument("--policy-config", default="", help="pi05: a policy section (file or config/policy name)")
    p.add_argument("--trained-policy-config", default="",
                   help="method trained: the training-time-RTC policy section (default: --policy-config)")
    p.add_argument("--policy-param", type=_policy_param, action="append", default=[], metavar="KEY=VALUE",
                   help="extra pi05 make_policy parameter (repeatable; YAML value), e.g. dtype=float32")
    p.add_argument("--checkpoint", default="")
    p.add_argument("--tokenizer", default="")
    p.add_argument("--twin-config", default="", help="world file (path or config/ name; default: the twin's "
                                                      "defaults), e.g. twin_world_learned.yaml")
    p.add_argument("--workers", type=int, default=1, help="processes running cells (2 uses both cores)")
    p.add_argument("--dds", action="store_true", help="each episode through the real processes over DDS (slow)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _grid(o: argparse.Namespace, p: argparse.ArgumentParser) -> tuple[list[Method], list[HorizonRow], tuple[int, ...]]:
    try:
        methods = [Method.parse(m) for m in o.methods.split(",") if m.strip()]
        rows = [HorizonRow.parse(r) for r in o.rows.split(",") if r.strip()]
    except ValueError as exc:
        p.error(str(exc))
    delays = _ints(o.delays)
    if not methods or not rows or not delays:
        p.error(f"need methods, execution horizons and delays, got {o.methods!r}, {o.rows!r}, {o.delays!r}")
    if any(not 0 <= d < o.horizon for d in delays):
        p.error(f"delays must be in [0, H = {o.horizon}) action steps, got {list(delays)}")
    dropped = [(r.label, d) for r in rows for d in delays if not r.allows(d)]
    if dropped:
        print(f"rtc-eval: left out (RTC needs d <= s): {dropped}", file=sys.stderr)
    if o.workers < 1:
        p.error(f"--workers must be >= 1, got {o.workers}")
    return methods, rows, delays


def _config(o: argparse.Namespace, p: argparse.ArgumentParser, rows: list[HorizonRow]) -> EvalConfig:
    if o.servo_rate not in (1000.0, 500.0, 250.0):
        p.error(f"--servo-rate must divide the 1 kHz physics: 1000, 500 or 250, got {o.servo_rate}")
    o.policy = o.policy or ("pi05" if o.policy_config or o.checkpoint else "twin")
    if o.policy_config and o.policy != "pi05":
        p.error(f"--policy-config is a π0.5 policy section: it needs --policy pi05, got --policy {o.policy}")
    if o.dds and o.policy_param:
        p.error("--policy-param sets the in-process policy only (the inference node has no such parameter): put the "
                "setting in a policy section (--policy-config) for --dds")
    cameras = tuple(c for c in o.cameras.split(",") if c)
    if not cameras and o.policy == "pi05":  # π0.5 sees the twin's three cameras unless told otherwise
        from rtc_controller.sim.scene import CAMERAS

        cameras = CAMERAS
    try:
        o.twin_config = world_file(o.twin_config)
    except FileNotFoundError as exc:
        p.error(f"--twin-config: {exc}")
    try:
        for row in rows:  # each row's s at d = 0 (Δt is EvalConfig's own check)
            ChunkTiming(o.horizon, row.s_for(0), 1.0)
    except ValueError as exc:
        p.error(f"--horizon/--execution-horizons: {exc}")
    return EvalConfig(policy=o.policy, horizon=o.horizon, execution_horizon=rows[0].s_for(0), num_steps=o.num_steps,
                      servo_rate_hz=o.servo_rate, max_guidance_weight=o.beta,
                      seeds=tuple(range(o.seed_start, o.seed_start + o.seeds)), time_limit_s=o.time_limit,
                      camera_slots=cameras, policy_params=tuple(o.policy_param), checkpoint=o.checkpoint,
                      tokenizer_path=o.tokenizer, policy_config=o.policy_config, dds=o.dds,
                      twin_config=o.twin_config, config=o.config,
                      trained_policy_config=o.trained_policy_config)  # fmt: skip


def main(args: list[str] | None = None) -> int:
    p = build_parser()
    o = p.parse_args(args)
    methods, rows, delays = _grid(o, p)
    cfg = _config(o, p, rows)
    try:
        summary = run_grid(cfg, methods=methods, rows=rows, delays=delays, out=Path(o.out), workers=o.workers,
                           progress=not o.quiet)  # fmt: skip
    except (ValueError, RuntimeError) as exc:
        p.error(str(exc))
    from rtc_controller.tools.eval_report import table

    print(table(summary))
    print(f"rtc-eval: report in {Path(o.out) / 'report.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
