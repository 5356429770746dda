"""``make demo-sim`` (``rtc-demo --scene sim``): the simulated dual-arm rig end to end, once per guidance mode, and a
report. (``make demo``, ``rtc-demo`` with the default ``--scene twin``, runs the trained π0.5 on the MuJoCo twin:
``tools/demo_twin.py``; it reuses this module's bag analysis and figures.)

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
import math
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rtc_controller import topics
from rtc_controller.config_files import config_path
from rtc_controller.rtc import GUIDANCE_MODES
from rtc_controller.ros.bringup import load_config, parse_overrides, start_rig
from rtc_controller.bags.bag_messages import read_diagnostics, read_states
from rtc_controller.bags.bag_reader import BagReader
from rtc_controller.tools.demo_plots import conclusion, write_plots

FIRST_CHUNK_LINE = "first chunk published"  # logged once by the inference node after warm-up
WARMUP_TIMEOUT_S = 300.0
LOOP_STATUS_SUFFIX = ": servo loop"
CHUNK_STATUS_SUFFIX = ": chunks"


@dataclass(frozen=True)
class SwitchRecord:
    """One chunk switch as the executor reported it (times in seconds on the executor clock)."""

    t_switch_s: float
    delay_s: float
    k_star: int
    guided_d: int
    jump: float  # ‖new − old‖ over all action dims at the switch instant
    jump_linear_m: float
    jump_angular_rad: float
    from_hold: bool  # the first chunk after start: "old" is the held start pose, not a chunk


@dataclass
class ModeRun:
    """What one guidance mode's run produced."""

    mode: str
    switches: list[SwitchRecord]
    delay_times_s: np.ndarray  # log times of δ samples, relative to the first chunk [s]
    delay_steps: np.ndarray  # δ / Δt [action steps]
    d_times_s: np.ndarray
    d_values: np.ndarray  # d published by the executor [action steps]
    state_times_s: np.ndarray  # robot-state stamps, executor clock [s]
    states: np.ndarray  # [N, D] measured TCP state
    state_names: tuple[str, ...]
    lateness_p99_us: np.ndarray  # per diagnostics message
    lateness_max_us: np.ndarray
    late_window_fraction: float
    rejected_chunks: int
    episode_starts: tuple[int, ...] = ()  # where each episode's loop diagnostics begin (merged runs)

    @property
    def chunk_switches(self) -> list[SwitchRecord]:
        """Switches from one chunk to the next (the start from the held pose excluded)."""
        return [s for s in self.switches if not s.from_hold]

    def summary(self) -> dict[str, float]:
        jumps = np.array([s.jump for s in self.chunk_switches])
        lin = np.array([s.jump_linear_m for s in self.chunk_switches])
        return {
            "switches": len(self.chunk_switches),
            "mean_jump": _stat(np.mean, jumps),
            "p95_jump": _stat(lambda a: np.quantile(a, 0.95), jumps),
            "mean_jump_linear_m": _stat(np.mean, lin),
            "p95_jump_linear_m": _stat(lambda a: np.quantile(a, 0.95), lin),
            "median_delay_steps": _stat(np.median, self.delay_steps),
            "median_d": _stat(np.median, self.d_values),
            "rejected_chunks": self.rejected_chunks,
            "loop_lateness_p99_us": _stat(np.max, self.lateness_p99_us),
            "loop_worst_window_late_fraction": self.late_window_fraction,
        }


def _stat(fn, a: np.ndarray) -> float:
    return float(fn(a)) if len(a) else math.nan


def _float(values: dict[str, str], key: str, default: float = math.nan) -> float:
    try:
        return float(values[key])
    except (KeyError, ValueError):
        return default


def analyse_bag(bag_dir: Path, *, mode: str, dt_s: float, t0_s: float | None = None) -> ModeRun:
    """Read one run's bag. ``t0_s`` (log time of the first chunk) is subtracted from every time axis."""
    with BagReader(bag_dir) as bag:
        chunk_logs = [log for log, _ in bag.messages(topics.CHUNK)] if bag.resolve(topics.CHUNK) else []
        t0 = t0_s if t0_s is not None else (chunk_logs[0] / 1e9 if chunk_logs else bag.start_ns / 1e9)
        switches = []
        if bag.resolve(topics.SWITCH_EVENTS):
            for _, st in bag.messages(topics.SWITCH_EVENTS):
                v = {kv.key: kv.value for kv in st.values}
                switches.append(SwitchRecord(
                    t_switch_s=_float(v, "t_switch_s"), delay_s=_float(v, "delay_s"),
                    k_star=int(_float(v, "k_star", -1)), guided_d=int(_float(v, "guided_d", -1)),
                    jump=_float(v, "jump_norm"), jump_linear_m=_float(v, "jump_linear_m"),
                    jump_angular_rad=_float(v, "jump_angular_rad"), from_hold=_float(v, "from_hold", 0) > 0,
                ))  # fmt: skip
        delays = [(log / 1e9 - t0, msg.data / dt_s) for log, msg in bag.messages(topics.MEASURED_DELAY)] \
            if bag.resolve(topics.MEASURED_DELAY) else []
        ds = [(log / 1e9 - t0, msg.data) for log, msg in bag.messages(topics.INFERENCE_DELAY)] \
            if bag.resolve(topics.INFERENCE_DELAY) else []
        states = read_states(bag)
        diags = read_diagnostics(bag)
    loop = [s for s in diags if s.name.endswith(LOOP_STATUS_SUFFIX)]
    chunk_status = [s for s in diags if s.name.endswith(CHUNK_STATUS_SUFFIX)]
    delay_arr = np.array(delays, dtype=float).reshape(-1, 2)
    d_arr = np.array(ds, dtype=float).reshape(-1, 2)
    return ModeRun(
        mode=mode,
        switches=switches,
        delay_times_s=delay_arr[:, 0],
        delay_steps=delay_arr[:, 1],
        d_times_s=d_arr[:, 0],
        d_values=d_arr[:, 1],
        state_times_s=states.stamps_s,
        states=states.positions,
        state_names=states.names,
        lateness_p99_us=np.array([_float(s.values, "lateness_p99_us") for s in loop]),
        lateness_max_us=np.array([_float(s.values, "lateness_max_us") for s in loop]),
        late_window_fraction=max([_float(s.values, "worst_window_late_fraction", 0.0) for s in loop], default=math.nan),
        rejected_chunks=int(_float(chunk_status[-1].values, "rejected_total", 0)) if chunk_status else 0,
    )


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


def figure_sections(files: dict[str, str], *, trajectory: str = "", jumps: str = "") -> list[str]:
    """The report's figure sections (Markdown lines) for the files ``write_plots`` returned; ``trajectory`` /
    ``jumps`` qualify those headings (e.g. which episodes they show)."""
    return [
        f"## Executed trajectory{trajectory} (switches dotted)", f"![trajectory]({files['trajectory']})", "",
        f"## Jumps at switches{jumps}", f"![jumps]({files['jumps']})", "",
        "## Inference delay: measured δ and the d used for the next inference", f"![delay]({files['delay']})", "",
        "## Servo loop lateness", f"![lateness]({files['lateness']})", "",
    ]  # fmt: skip


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
