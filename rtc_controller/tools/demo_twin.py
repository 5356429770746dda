"""``make demo``: the π0.5 trained on the twin (``models/twin_pi05``) runs the MuJoCo twin end to end through the
real processes over DDS, once per guidance mode, and a report of task success, jumps and timing per mode.

Per mode and episode (twin seeds ``--seed-start`` …): ``rtc-bringup`` of ``config/twin.yaml`` (``tools/eval_dds``):
- ``executor_node`` with ``driver: mujoco`` (the world steps with the 1 kHz servo loop, in its own process);
- ``twin_node`` renders the three cameras offscreen and publishes them on ``rtc/camera/<slot>`` over DDS, and
  decides the task (``rtc/twin/task``, its status file);
- ``inference_node`` with ``policy: pi05`` and ``policy_config`` (the trained checkpoint, its tokenizer, norm stats
  and camera slots): images and state from DDS, the prefix KV cache, guided sampling in the mode, an injected
  latency (``--extra-latency``) so that the executor's measured d is realistic for a GPU-less deployment;
- the recorder (MCAP).
The episode ends when the task monitor decides it (success, a dropped cube, or the time limit from the arms'
first motion). Each episode is a fresh bringup, so the world is reset and the JIT cache is warm after the first.

Outputs in ``--out``: ``report.md`` (table and figures), ``summary.json``, ``bags/<mode>_seed<k>/``, logs.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from rtc_controller import topics
from rtc_controller.config_files import world_file
from rtc_controller.rtc import GUIDANCE_MODES
from rtc_controller.analysis.report import figure_sections
from rtc_controller.analysis.runs import ModeRun
from rtc_controller.analysis.plots import conclusion, write_plots
from rtc_controller.tools.eval_dds import DdsEpisode, dds_episode

DEFAULT_POLICY = "twin_pi05"  # models/twin_pi05/policy.yaml
DEFAULT_WORLD = "twin_world_learned.yaml"  # the world models/twin_pi05 was trained in (narrow item spread)
DEFAULT_TRAINED_POLICY = "twin_pi05_rtc"  # models/twin_pi05_rtc: the same policy fine-tuned with training-time RTC
DEFAULT_MODES = ("none", "stop", "full", "trained", "bid")
DEFAULT_EPISODES = 5
DEFAULT_EXTRA_LATENCY_S = 0.1  # + the CPU's own inference time and the transport: d ≈ 7 at Δt = 20 ms
DEFAULT_EXECUTION_HORIZON = 10  # a new chunk every 0.2 s: the demonstrations' replanning interval (README: at
# s = 10 the modes separate on success; at s = 25 this small policy is too weak for 0.5 s of open loop)
DEFAULT_TIME_LIMIT_S = 15.0
DT_S = 0.02


def merge_runs(runs: Sequence[ModeRun]) -> ModeRun:
    """One mode's episodes as one ``ModeRun`` for the figures: switches, δ, d and loop figures of every episode
    (times relative to each episode's first chunk), the executed trajectory of the first."""
    first = runs[0]
    cat = lambda field: np.concatenate([getattr(r, field) for r in runs])  # noqa: E731
    return replace(first, switches=[s for r in runs for s in r.switches], delay_times_s=cat("delay_times_s"),
                   delay_steps=cat("delay_steps"), d_times_s=cat("d_times_s"), d_values=cat("d_values"),
                   lateness_p99_us=cat("lateness_p99_us"), lateness_max_us=cat("lateness_max_us"),
                   late_window_fraction=max(r.late_window_fraction for r in runs),
                   rejected_chunks=sum(r.rejected_chunks for r in runs),
                   episode_starts=tuple(int(i) for i in np.cumsum([0] + [len(r.lateness_p99_us) for r in runs[:-1]])))  # fmt: skip


def mode_summary(episodes: Sequence[DdsEpisode]) -> dict:
    """Task success, completion time, jumps at chunk switches, δ and d, inference latency and loop timing."""
    merged = merge_runs([e.run for e in episodes])
    s = merged.summary()
    done = [e.duration_s for e in episodes if e.success]
    lat = np.concatenate([e.latencies_s for e in episodes])
    reasons: dict[str, int] = {}
    for e in episodes:
        if not e.success:
            reasons[e.outcome["reason"] or "?"] = reasons.get(e.outcome["reason"] or "?", 0) + 1
    return {**s, "episodes": len(episodes), "successes": sum(e.success for e in episodes),
            "completion_s": float(np.mean(done)) if done else math.nan, "failures": reasons,
            "median_latency_ms": float(np.median(lat) * 1e3) if lat.size else math.nan,
            "seeds": [int(e.outcome.get("seed", -1)) for e in episodes]}  # fmt: skip


COLUMNS = (("success", "success"), ("completion_s", "completion [s]"), ("switches", "switches"),
           ("mean_jump", "mean jump"), ("p95_jump", "p95 jump"), ("mean_jump_linear_m", "mean TCP jump"),
           ("median_delay_steps", "median δ [steps]"), ("median_d", "median d"),
           ("median_latency_ms", "inference [ms]"), ("loop_lateness_p99_us", "loop p99 [µs]"),
           ("rejected_chunks", "rejected"))  # fmt: skip


def _cell(key: str, s: dict) -> str:
    if key == "success":
        fails = ", ".join(f"{k} {v}" for k, v in s["failures"].items())
        return f"{s['successes']}/{s['episodes']}" + (f" ({fails})" if fails else "")
    v = s.get(key, math.nan)
    if isinstance(v, float) and math.isnan(v):
        return "n/a"
    fmt = {"completion_s": "{:.1f}", "mean_jump": "{:.4f}", "p95_jump": "{:.4f}", "median_delay_steps": "{:.1f}",
           "mean_jump_linear_m": "{:.1f} mm", "median_latency_ms": "{:.0f}"}.get(key, "{:.0f}")
    return fmt.format(v * 1e3 if key == "mean_jump_linear_m" else v)


def summary_table(summary: dict[str, dict]) -> str:
    rows = ["| mode | " + " | ".join(label for _, label in COLUMNS) + " |", "|" + "---|" * (len(COLUMNS) + 1)]
    rows += [f"| {mode} | " + " | ".join(_cell(k, s) for k, _ in COLUMNS) + " |" for mode, s in summary.items()]
    return "\n".join(rows)


def write_twin_report(out: Path, by_mode: dict[str, list[DdsEpisode]], *, params: dict) -> dict:
    summary = {mode: mode_summary(eps) for mode, eps in by_mode.items()}
    (out / "summary.json").write_text(json.dumps({"modes": summary, "parameters": params}, indent=2))
    files = write_plots([merge_runs([e.run for e in eps]) for eps in by_mode.values()], out)
    lines = [
        "# The trained π0.5 on the MuJoCo twin, through the real processes over DDS",
        "",
        f"Policy `{params['policy_config']}`"
        + (f" (mode trained: `{params['trained_policy_config']}`)" if params.get("trained_policy_config") else "")
        + f"; {params['episodes']} episode(s) per mode, twin seeds "
        f"{params['seeds']}; H = {params['horizon']}, s = {params['execution_horizon']}, β = {params['beta']}, "
        f"Δt = {DT_S * 1e3:.0f} ms, injected latency {params['extra_latency_s']} s on top of the inference time "
        f"(d: the executor's estimate), cameras at {params['camera_rate_hz']} Hz, time limit "
        f"{params['time_limit_s']} s from the arms' first motion. Reproduce: `make demo`.",
        "",
        "Success is the twin's task monitor (both cubes at rest in a bin). The jump is the command step at a chunk "
        "switch as the executor measured it (all 14 dims, m and rad; the TCP part in mm, the larger arm); the first "
        "chunk after start (from the held pose) is left out. Inference: the inference node's compute time per "
        "chunk (prefix pass and guided sampling, median), without the injected latency.",
        "",
        summary_table(summary),
        "",
        *figure_sections(files, trajectory=", first episode per mode", jumps=" (all episodes)"),
        "Bags: `runs/<mode>_seed<k>/bag/` (replay with `rtc-replay`); node logs: `runs/<mode>_seed<k>/logs/`.",
        "",
        conclusion(summary),
    ]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    return summary


def mode_overrides(overrides: dict[str, dict], mode: str, trained_path: Path | None) -> dict[str, dict]:
    """The nodes' parameters for ``mode``: mode ``trained`` runs the training-time-RTC policy section."""
    if mode != "trained" or trained_path is None:
        return overrides
    out = {name: dict(values) for name, values in overrides.items()}
    out[topics.INFERENCE_NODE]["policy_config"] = str(trained_path)
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rtc-demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("out/demo"))
    p.add_argument("--policy-config", default=DEFAULT_POLICY, help=f"π0.5 policy section (default {DEFAULT_POLICY})")
    p.add_argument("--trained-policy-config", default=DEFAULT_TRAINED_POLICY,
                   help=f"π0.5 policy section of mode trained (default {DEFAULT_TRAINED_POLICY})")
    p.add_argument("--modes", default=",".join(DEFAULT_MODES), help=f"subset of {GUIDANCE_MODES}")
    p.add_argument("--episodes", type=int, default=DEFAULT_EPISODES, help="episodes per mode (twin seeds)")
    p.add_argument("--seed-start", type=int, default=0, help="twin seed of the first episode (the same in every mode)")
    p.add_argument("--execution-horizon", type=int, default=DEFAULT_EXECUTION_HORIZON,
                   help=f"s: action steps between inferences (default {DEFAULT_EXECUTION_HORIZON})")
    p.add_argument("--extra-latency", type=float, default=DEFAULT_EXTRA_LATENCY_S,
                   help="latency injected after sampling [s] (d = the executor's estimate)")
    p.add_argument("--beta", type=float, default=10.0, help="max guidance weight β")
    p.add_argument("--time-limit", type=float, default=DEFAULT_TIME_LIMIT_S, help="episode time limit [s]")
    p.add_argument("--twin-config", default=DEFAULT_WORLD,
                   help=f"world file (path or config/ name; default {DEFAULT_WORLD}: the world the policy was trained in)")
    p.add_argument("--camera-rate", type=float, default=10.0, help="twin_node camera rate [Hz] (default 10: the training data's)")
    return p


def main(args: list[str] | None = None) -> int:
    p = build_parser()
    a = p.parse_args(args)
    modes = [m.strip() for m in a.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in GUIDANCE_MODES]
    if bad or not modes:
        p.error(f"unknown mode(s) {bad}; expected a list of {GUIDANCE_MODES}")
    if a.episodes < 1 or a.extra_latency < 0 or not a.time_limit > 0:
        p.error("need --episodes >= 1, --extra-latency >= 0 and --time-limit > 0")
    from rtc_controller.config_check import ConfigError
    from rtc_controller.policy.pi05.policy_section import load_policy_section, resolve_policy_config_path

    try:
        section_path = resolve_policy_config_path(a.policy_config).resolve()
        section = load_policy_section(section_path)
        trained_path = resolve_policy_config_path(a.trained_policy_config).resolve() if "trained" in modes else None
    except (ConfigError, FileNotFoundError, ValueError) as exc:
        p.error(str(exc))
    try:
        world = world_file(a.twin_config)
    except FileNotFoundError as exc:
        p.error(f"--twin-config: {exc}")
    h = section.action_horizon
    if not 1 <= a.execution_horizon < h:
        p.error(f"--execution-horizon must be in [1, {h}) (the policy's horizon H = {h}), got {a.execution_horizon}")
    seeds = list(range(a.seed_start, a.seed_start + a.episodes))
    params = {"policy_config": str(section_path), "episodes": a.episodes, "seeds": seeds, "horizon": h,
              "execution_horizon": a.execution_horizon, "beta": a.beta, "extra_latency_s": a.extra_latency,
              "camera_rate_hz": a.camera_rate, "twin_config": world, "time_limit_s": a.time_limit, "modes": modes,
              "trained_policy_config": str(trained_path) if trained_path else ""}  # fmt: skip
    inference = {"policy": "pi05", "policy_config": str(section_path), "horizon": h, "execution_horizon": a.execution_horizon,
                 "num_steps": section.num_steps, "max_guidance_weight": a.beta, "extra_latency_s": a.extra_latency,
                 "inference_delay": "auto"}  # fmt: skip
    overrides = {topics.INFERENCE_NODE: inference,
                 topics.EXECUTOR_NODE: {"horizon": h, "execution_horizon": a.execution_horizon},
                 topics.TWIN_NODE: {"camera_rate_hz": a.camera_rate}}  # fmt: skip
    a.out.mkdir(parents=True, exist_ok=True)
    print(f"twin + trained π0.5 over DDS: {len(modes)} mode(s) x {a.episodes} episode(s); output in {a.out}/",
          flush=True)
    by_mode: dict[str, list[DdsEpisode]] = {}
    t0 = time.monotonic()
    for mode in modes:
        for seed in seeds:
            ep = dds_episode(seed=seed, mode=mode, run_dir=a.out / "runs" / f"{mode}_seed{seed}",
                             overrides=mode_overrides(overrides, mode, trained_path),
                             dt_s=DT_S, time_limit_s=a.time_limit, twin_config=world)  # fmt: skip
            ep.outcome.setdefault("seed", seed)
            by_mode.setdefault(mode, []).append(ep)
            jumps = [s.jump_linear_m for s in ep.run.chunk_switches]
            print(f"  {mode} seed {seed}: {ep.outcome['status']} {ep.outcome['reason']} in {ep.duration_s:.1f} s, "
                  f"{len(jumps)} switches, mean TCP jump {1e3 * np.mean(jumps) if jumps else math.nan:.1f} mm "
                  f"({time.monotonic() - t0:.0f} s so far)", file=sys.stderr, flush=True)
    summary = write_twin_report(a.out, by_mode, params=params)
    print()
    print(summary_table(summary))
    print(f"\nreport: {a.out / 'report.md'}; summary: {a.out / 'summary.json'}")
    return 0
