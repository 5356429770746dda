"""``make demo-sim`` (``rtc-demo --scene sim``): the simulated dual-arm rig end to end, once per guidance mode, and a
report. (``make demo``, ``rtc-demo`` with the default ``--scene twin``, runs the trained π0.5 on the MuJoCo twin:
``tools/demo_twin.py``.) The bag analysis, figures and report pieces are ``rtc_controller.analysis``'s.

For each mode (``none``, ``stop``, ``full``) it starts, as separate processes talking over DDS, the executor node
(sim driver), the inference node (sim policy with an injected latency so that d ≈ 16 at H = 100, Δt = 20 ms)
and the recorder (``rtc-record``, MCAP); waits until the first chunk is published (jit warm-up excluded), runs
``--seconds`` more, stops everything and analyses the bag:
- per switch (the executor's ``executor_node/switch`` events): k*, the d the chunk was guided with, the jump
  between the old and the new command at the switch instant (norm over all 14 dims, m and rad as in the seed's
  plots; linear [m] and angular [rad] parts separately);
- δ (``executor_node/measured_delay``) and d (``executor_node/inference_delay``) over time;
- loop lateness and rejected chunks (``/diagnostics``).
Writes ``OUT/report.md`` with PNG plots, ``OUT/summary.json`` and prints a summary table.

Run: ``python -m rtc_controller.tools.demo --scene sim --out out/demo_sim [--seconds 30] [--modes none,stop,full]``
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path


from rtc_controller import topics
from rtc_controller.config_files import config_path
from rtc_controller.rtc import GUIDANCE_MODES
from rtc_controller.app.bringup import load_config, parse_overrides, start_rig
from rtc_controller.analysis.plots import conclusion, write_plots
from rtc_controller.analysis.report import figure_sections, summary_table
from rtc_controller.analysis.runs import ModeRun, analyse_bag

FIRST_CHUNK_LINE = "first chunk published"  # logged once by the inference node after warm-up
WARMUP_TIMEOUT_S = 300.0


_last_line = [0.0]
NON_TTY_PROGRESS_PERIOD_S = 5.0


def _progress(label: str, done_s: float, total_s: float, extra: str = "") -> None:
    """A progress bar on a terminal (redrawn in place); a line every few seconds in a log."""
    width = 30
    filled = int(width * min(done_s / total_s, 1.0)) if total_s > 0 else width
    line = f"  {label:<6} [{'#' * filled}{'.' * (width - filled)}] {done_s:5.1f}/{total_s:.0f} s {extra:<30}"
    if sys.stderr.isatty():
        sys.stderr.write("\r" + line)
    elif time.monotonic() - _last_line[0] >= NON_TTY_PROGRESS_PERIOD_S:
        _last_line[0] = time.monotonic()
        sys.stderr.write(line.rstrip() + "\n")
    sys.stderr.flush()


def _wait_for_line(rig, log_path: Path, line: str, timeout_s: float, label: str) -> float:
    """Wait until ``line`` shows in a child's log; returns the wall time it appeared. Raises if a node dies."""
    t_start = time.monotonic()
    while time.monotonic() - t_start < timeout_s:
        if log_path.exists() and line in log_path.read_text(errors="replace"):
            return time.time()
        dead = rig.dead()
        if dead:
            raise RuntimeError(f"{label}: node(s) exited during warm-up: {dead} (logs in {log_path.parent})")
        _progress(label, 0.0, 1.0, f"warming up (jit) {time.monotonic() - t_start:4.0f} s")
        time.sleep(0.5)
    raise RuntimeError(f"{label}: no chunk after {timeout_s:.0f} s (see {log_path})")


def run_mode(mode: str, *, config: Path, out: Path, seconds: float, overrides: dict) -> Path:
    """Start the sim rig with ``guidance_mode = mode`` and the recorder; returns the bag directory."""
    bag_dir, log_dir = out / "bags" / mode, out / "logs" / mode
    shutil.rmtree(bag_dir, ignore_errors=True)
    shutil.rmtree(log_dir, ignore_errors=True)
    bag_dir.parent.mkdir(parents=True, exist_ok=True)
    node_overrides = {k: dict(v) for k, v in overrides.items()}
    node_overrides.setdefault(topics.INFERENCE_NODE, {})["guidance_mode"] = mode
    with start_rig(config, overrides=node_overrides, record_dir=bag_dir, log_dir=log_dir) as rig:
        _wait_for_line(rig, rig.log_paths[topics.INFERENCE_NODE], FIRST_CHUNK_LINE, WARMUP_TIMEOUT_S, mode)
        t_start = time.monotonic()
        while (elapsed := time.monotonic() - t_start) < seconds:
            dead = rig.dead()
            if dead:
                raise RuntimeError(f"{mode}: node(s) exited: {dead} (logs in {log_dir})")
            _progress(mode, elapsed, seconds, "running")
            time.sleep(0.25)
        _progress(mode, seconds, seconds, "stopping")
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    return bag_dir


def write_report(out: Path, runs: Sequence[ModeRun], *, config: Path, seconds: float, params: dict) -> dict:
    summary = {run.mode: run.summary() for run in runs}
    (out / "summary.json").write_text(json.dumps({"modes": summary, "config": str(config), "seconds": seconds,
                                                  "parameters": params}, indent=2))
    files = write_plots(runs, out)
    table = summary_table(summary)
    lines = [
        "# Simulated dual-arm rig: RTC guidance modes",
        "",
        f"Config `{config}`, {seconds:.0f} s per mode after warm-up; H = {params.get('horizon')}, "
        f"s = {params.get('execution_horizon')}, β = {params.get('max_guidance_weight')}, "
        f"Δt = {1e3 / params.get('action_rate_hz', 50):.0f} ms, injected extra latency "
        f"{params.get('extra_latency_s')} s. Reproduce: `make demo-sim` "
        f"(or `rtc-demo --scene sim --seconds {seconds:.0f}`).",
        "",
        "The jump is the difference between the old and the new command at the switch instant, as the executor "
        "measured it (norm over all 14 dims, metres and radians together as in the seed's plots; the linear part "
        "in mm, the largest of the two arms). Switches count chunk-to-chunk switches: the first chunk after start "
        "(from the held start pose, approached under the safety filter's rate limits) is left out.",
        "",
        table,
        "",
        *figure_sections(files),
        "Bags: `bags/<mode>/` (replay them with `rtc-replay`); node logs: `logs/<mode>/`.",
        "",
        conclusion(summary),
    ]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    return summary


SCENES = ("twin", "sim")


def main(args: list[str] | None = None) -> int:
    """``rtc-demo [--scene twin|sim] …``: the twin with the trained π0.5 (default), or the fast sim-policy demo, on
    a private DDS domain unless ``ROS_DOMAIN_ID`` is set (``demo_dds``)."""
    from rtc_controller.tools.demo_dds import isolate_dds

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--scene", choices=SCENES, default="twin")
    known, rest = pre.parse_known_args(sys.argv[1:] if args is None else args)
    print(isolate_dds(), flush=True)
    if known.scene == "twin":
        from rtc_controller.tools.demo_twin import main as twin_main

        return twin_main(rest)
    return main_sim(rest)


def main_sim(args: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="rtc-demo --scene sim", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("out/demo_sim"))
    p.add_argument("--config", type=Path, help="parameter file (default: the package's config/sim.yaml)")
    p.add_argument("--seconds", type=float, default=30.0, help="run time per mode after warm-up [s]")
    p.add_argument("--modes", default=",".join(("none", "stop", "full")))
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="NODE.PARAM=VALUE")
    a = p.parse_args(args)
    modes = [m.strip() for m in a.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in GUIDANCE_MODES]
    if bad or not modes:
        p.error(f"unknown mode(s) {bad}; expected a list of {GUIDANCE_MODES}")
    try:
        a.config = a.config or config_path("sim.yaml")
    except FileNotFoundError as exc:
        p.error(str(exc))
    if not a.config.exists():
        p.error(f"config {a.config} not found")
    overrides = parse_overrides(a.overrides)
    params = {**load_config(a.config).get(topics.INFERENCE_NODE, {}), **overrides.get(topics.INFERENCE_NODE, {})}
    dt_s = 1.0 / float(params.get("action_rate_hz", 50.0))
    a.out.mkdir(parents=True, exist_ok=True)
    print(f"simulated rig, {len(modes)} mode(s) x {a.seconds:.0f} s (+ jit warm-up each); output in {a.out}/",
          flush=True)
    runs = []
    for mode in modes:
        bag = run_mode(mode, config=a.config, out=a.out, seconds=a.seconds, overrides=overrides)
        run = analyse_bag(bag, mode=mode, dt_s=dt_s)
        runs.append(run)
        s = run.summary()
        print(f"  {mode}: {s['switches']} switches, mean jump {s['mean_jump']:.4f}, median δ "
              f"{s['median_delay_steps']:.1f} steps, {s['rejected_chunks']} rejected", flush=True)
    summary = write_report(a.out, runs, config=a.config, seconds=a.seconds, params=params)
    print()
    print(summary_table(summary))
    print(f"\nreport: {a.out / 'report.md'}; summary: {a.out / 'summary.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
