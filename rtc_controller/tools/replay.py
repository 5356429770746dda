"""rtc-replay: re-run recorded rig data offline, plot every chunk switch, choose the guidance weight β.

For each recorded chunk (``trajectory_msgs/msg/JointTrajectory``, stamp = t_obs) the tool rebuilds what the
inference node saw — the robot state stamped at t_obs (or the latest before it), the camera frames and the
prompt at that time, the previous chunk, and the delay d it was guided with (``header.frame_id = "rtc_d=<d>"``,
else ``--delay``, else the executor's ``inference_delay`` topic) — and re-samples the chunk with the chosen
policy for every guidance mode and β, from one noise draw per switch shared by every variant.

Prefix and weights follow the inference node (DESIGN.md): Y[i] = A_prev[i + m], m = round((t_obs − t_obs_prev)/Δt),
W = prefix_weights(d, H − s, H, schedule) zeroed where Y has no data; the executor runs Y[:d] and switches at d.

Outputs (``--output DIR``): ``switches/switch_<i>/<mode>_beta<β>.png`` (seed-style, one panel per action
dimension), ``metrics.csv`` (one row per (mode, β), means over switches), ``switch_metrics.csv`` (one row per
switch, mode, β), ``summary.json`` (recommended β per mode with the reason). A table is printed.
Exit status: 0 on success, 2 on bad input (missing topic, unknown message type, empty time range, bad option).

Axes: b = batch (1), H = horizon, D = action dim (physical), Dm = model action dim. Flow time t = 1 is noise.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from rtc_controller import topics
from rtc_controller.control.chunk import Chunk
from rtc_controller.policy.base import FlowPolicy, Observation
from rtc_controller.policy.chunk_sampler import ChunkSampler, GuidanceSettings, PreviousChunk, build_guidance
from rtc_controller.rtc import GUIDANCE_MODES, PREFIX_SCHEDULES, PrefixSchedule
from rtc_controller.rtc.prefix import Prefix

from . import metrics as M
from .bag_io import (
    BagError,
    BagReader,
    read_chunks,
    read_images,
    read_prompts,
    read_states,
)

__all__ = [
    "ReplayConfig",
    "ReplayError",
    "ReplayResult",
    "SwitchInput",
    "load_switches",
    "main",
    "resample_switch",
    "run_replay",
]

HISTORY_STEPS = M.JERK_ORDER  # old-chunk actions before t_obs kept for the jerk across the switch
DEFAULT_FIGURES = 2  # each plotted switch gives one PNG per (mode, β): ~1–2 s each
DEFAULT_BETAS = (1.0, 5.0, 10.0, 100.0)
NS_PER_S = 1_000_000_000
EXIT_BAD_INPUT = 2
# --policy pi05: CLI flag -> the make_policy parameter it sets
PI05_REQUIRED = {"--checkpoint DIR": "checkpoint_dir", "--tokenizer PATH": "tokenizer_path"}


class ReplayError(RuntimeError):
    """The replay cannot run as asked (the message says why)."""


@dataclass(frozen=True)
class ReplayConfig:
    """Everything ``rtc-replay`` takes; times [s], d and s [action steps]."""

    bag: Path
    output: Path
    policy: str = "sim"
    policy_params: Mapping[str, Any] = field(default_factory=dict)  # make_policy params, e.g. pi05's checkpoint_dir
    modes: tuple[str, ...] = ("none", "stop", "full")
    betas: tuple[float, ...] = DEFAULT_BETAS
    delay: int | None = None  # override d for every switch
    execution_horizon: int | None = None  # s; None: inferred from the chunk cadence (median shift)
    schedule: str = "exp"
    num_steps: int = 10
    switches: str | tuple[int, ...] = "all"  # "all" or indices into the chunks in range (switch i = chunk i)
    max_switches: int | None = None  # evenly spaced subset of the selected switches
    figures: int = DEFAULT_FIGURES  # switches to plot (evenly spaced over the replayed ones), 0 = none
    start_s: float | None = None  # offset from the bag's first message (log time)
    end_s: float | None = None
    chunk_topic: str = topics.CHUNK
    state_topic: str = topics.ROBOT_STATE
    prompt_topic: str = topics.PROMPT
    delay_topic: str = topics.INFERENCE_DELAY
    cameras: Mapping[str, str] | None = None  # slot -> topic; None: every rtc/camera/<slot> in the bag
    prompt: str | None = None  # overrides the recorded prompt
    seed: int = 0
    jump_rel_tol: float = M.DEFAULT_JUMP_REL_TOL
    jump_abs_tol: float = M.DEFAULT_JUMP_ABS_TOL
    progress: bool = True

    def __post_init__(self) -> None:
        bad_modes = [m for m in self.modes if m not in GUIDANCE_MODES]
        if not self.modes or bad_modes:
            raise ValueError(f"modes must be a non-empty subset of {GUIDANCE_MODES}, got {list(self.modes)}")
        if not self.betas or any(not (math.isfinite(b) and b >= 0) for b in self.betas):
            raise ValueError(f"betas must be finite values >= 0, got {list(self.betas)}")
        if self.schedule not in PREFIX_SCHEDULES:
            raise ValueError(f"schedule must be one of {PREFIX_SCHEDULES}, got {self.schedule!r}")
        if self.delay is not None and self.delay < 0:
            raise ValueError(f"delay must be >= 0 action steps, got {self.delay}")
        if self.execution_horizon is not None and self.execution_horizon < 1:
            raise ValueError(f"execution horizon must be >= 1 action step, got {self.execution_horizon}")
        if self.num_steps < 1:
            raise ValueError(f"num_steps must be >= 1, got {self.num_steps}")
        if self.max_switches is not None and self.max_switches < 1:
            raise ValueError(f"max_switches must be >= 1, got {self.max_switches}")
        if self.figures < 0:
            raise ValueError(f"figures must be >= 0, got {self.figures}")
        if isinstance(self.switches, str) and self.switches != "all":
            raise ValueError(f"switches must be 'all' or a list of indices, got {self.switches!r}")
        if self.start_s is not None and self.end_s is not None and self.end_s <= self.start_s:
            raise ValueError(f"empty time range: --end {self.end_s} s <= --start {self.start_s} s")
        if self.jump_rel_tol < 0 or self.jump_abs_tol < 0:
            raise ValueError("jump tolerances must be >= 0")


@dataclass(frozen=True)
class SwitchInput:
    """What the inference node saw for one recorded chunk (physical units; arrays ``[H, D]``)."""

    index: int  # index of the new chunk among the recorded chunks (switch i: chunk i−1 -> chunk i)
    chunk: Chunk  # the recorded new chunk
    previous: Chunk  # the chunk before it
    d: int  # inference delay [action steps]
    d_source: str  # "frame_id" | "--delay" | "<delay topic>"
    prefix: Prefix  # Y re-indexed to the new chunk, valid mask, shift m
    weights: np.ndarray  # W [H], zero where Y has no data
    execution_horizon: int  # s used for the weights (prefix attention horizon = H − s)
    history: np.ndarray  # [≤3, D] old-chunk actions just before t_obs (for the jerk across the switch)
    observation: Observation


@dataclass
class ReplayResult:
    """Per-switch metrics, the per-(mode, β) table, recommendations, written files."""

    switches: list[SwitchInput]
    per_switch: list[dict[str, Any]]
    table: list[dict[str, Any]]
    recommendations: dict[str, M.BetaRecommendation]
    figures: list[Path]
    output: Path


# --------------------------------------------------------------------------------------------- progress


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


# --------------------------------------------------------------------------------------------- reconstruction


def _camera_topics(bag: BagReader, cameras: Mapping[str, str] | None) -> dict[str, str]:
    if cameras is not None:
        return {slot: bag.require(t, ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")) for slot, t in cameras.items()}
    out = {}
    for name, msgtype in bag.topics.items():
        key = name.split("/" + topics.CAMERA_PREFIX, 1)
        if len(key) == 2 and msgtype in ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage"):
            slot = key[1].removesuffix("/compressed")
            out.setdefault(slot, name)
    return out


def _infer_execution_horizon(chunks: Sequence[Chunk]) -> int | None:
    """s from the chunk cadence: the median shift m between consecutive chunks (the trigger fires s steps after
    the previous t_obs; longer shifts happen when inference runs back to back)."""
    shifts = [
        round((b.t_obs_s - a.t_obs_s) / a.dt_s)
        for a, b in zip(chunks[:-1], chunks[1:])
        if math.isfinite(a.dt_s) and a.dt_s > 0 and b.t_obs_s > a.t_obs_s
    ]
    return int(np.median(shifts)) if shifts else None


def _latest_before(times: np.ndarray, t: float) -> int | None:
    i = int(np.searchsorted(times, t + 1e-6, side="right")) - 1
    return i if i >= 0 else None


def _range_ns(bag: BagReader, cfg: ReplayConfig) -> tuple[int | None, int | None]:
    start = None if cfg.start_s is None else bag.start_ns + int(round(cfg.start_s * NS_PER_S))
    stop = None if cfg.end_s is None else bag.start_ns + int(round(cfg.end_s * NS_PER_S))
    return start, stop


def load_switches(bag: BagReader, cfg: ReplayConfig) -> list[SwitchInput]:
    """Rebuild the inference node's input for every selected switch (BagError / ReplayError on bad input)."""
    # Check the required topics and their types before reading anything.
    bag.require(cfg.chunk_topic, "trajectory_msgs/msg/JointTrajectory")
    bag.require(cfg.state_topic, "sensor_msgs/msg/JointState")
    has_prompt = bag.resolve(cfg.prompt_topic) is not None
    if has_prompt:
        bag.require(cfg.prompt_topic, "std_msgs/msg/String")
    has_delay_topic = bag.resolve(cfg.delay_topic) is not None
    if has_delay_topic:
        bag.require(cfg.delay_topic, "std_msgs/msg/Int32")
    cameras = _camera_topics(bag, cfg.cameras)

    recorded = read_chunks(bag, cfg.chunk_topic)
    if len(recorded) < 2:
        raise ReplayError(f"{cfg.chunk_topic} has {len(recorded)} chunk(s) in the bag; a switch needs at least 2")
    log_ns = np.array([ln for ln, _ in recorded])
    chunks = [c for _, c in recorded]
    start_ns, stop_ns = _range_ns(bag, cfg)
    in_range = [
        i for i in range(1, len(chunks))
        if (start_ns is None or log_ns[i] >= start_ns) and (stop_ns is None or log_ns[i] < stop_ns)
    ]  # fmt: skip
    if not in_range:
        span = (bag.end_ns - bag.start_ns) / NS_PER_S
        raise ReplayError(
            f"empty time range: no chunk switch between --start {cfg.start_s} s and --end {cfg.end_s} s "
            f"(the bag spans {span:.3f} s from its first message)"
        )
    if cfg.switches != "all":
        bad = [i for i in cfg.switches if i not in in_range]
        if bad:
            raise ReplayError(f"switch indices {bad} are not in the range; valid: {in_range[0]} … {in_range[-1]}")
        selected = sorted(set(cfg.switches))
    else:
        selected = in_range
    if cfg.max_switches is not None and len(selected) > cfg.max_switches:
        pick = np.unique(np.round(np.linspace(0, len(selected) - 1, cfg.max_switches)).astype(int))
        selected = [selected[int(p)] for p in pick]

    first = chunks[selected[0]]
    names, horizon = first.names, first.horizon
    for i in selected:
        c, p = chunks[i], chunks[i - 1]
        if c.names != names or p.names != names or c.horizon != horizon or p.horizon != horizon:
            raise ReplayError(f"chunk {i} has different names or horizon than chunk {selected[0]}")
        if not (np.isfinite(c.actions).all() and np.isfinite(p.actions).all() and c.dt_s > 0):
            raise ReplayError(f"chunk {i} or its predecessor is not finite or has no time step")
    s = cfg.execution_horizon or _infer_execution_horizon(chunks)
    if s is None or not 1 <= s <= horizon:
        raise ReplayError(f"cannot infer the execution horizon from the chunk cadence (got {s}); pass --execution-horizon")

    states = read_states(bag, cfg.state_topic, names=names)
    if len(states) == 0:
        raise ReplayError(f"{cfg.state_topic} has no robot states")
    prompts = read_prompts(bag, cfg.prompt_topic) if has_prompt else []
    prompt_times = np.array([t for t, _ in prompts])
    delays: list[tuple[float, int]] = []
    if has_delay_topic and cfg.delay is None:
        delays = [(ln / NS_PER_S, int(m.data)) for ln, m in bag.messages(cfg.delay_topic)]
    delay_times = np.array([t for t, _ in delays])
    stamps = [chunks[i].t_obs_s for i in selected]
    frames = {slot: read_images(bag, t, at_s=stamps) for slot, t in cameras.items()}

    out = []
    for i in selected:
        new, prev = chunks[i], chunks[i - 1]
        t_log = log_ns[i] / NS_PER_S
        if cfg.delay is not None:
            d, d_source = cfg.delay, "--delay"
        elif new.guided_d is not None:
            d, d_source = new.guided_d, "frame_id"
        elif delays and (j := _latest_before(delay_times, t_log)) is not None:
            d, d_source = delays[j][1], cfg.delay_topic
        else:
            raise ReplayError(
                f"chunk {i} carries no delay (frame_id {'rtc_d=<d>'} missing) and the bag has no "
                f"{cfg.delay_topic}; pass --delay D"
            )
        if not 0 <= d < horizon:
            raise ReplayError(f"chunk {i}: d = {d} is outside [0, H) with H = {horizon}")
        # Y and W exactly as the inference node builds them (policy.chunk_sampler.build_guidance).
        settings = GuidanceSettings(int(d), int(s), schedule=cfg.schedule)
        try:
            guidance = build_guidance(
                PreviousChunk(prev.actions, prev.t_obs_s), t_obs_s=new.t_obs_s, dt_s=new.dt_s, settings=settings,
                horizon=horizon,
            )  # fmt: skip
        except ValueError as err:
            raise ReplayError(f"chunk {i}: cannot rebuild the prefix: {err}") from err
        m = guidance.shift_steps
        prefix = Prefix(guidance.prefix, np.arange(horizon) + m < horizon, m)
        w = np.asarray(guidance.weights, np.float64)
        history = prev.actions[max(0, m - HISTORY_STEPS) : min(m, horizon)]
        k = states.index_at(new.t_obs_s)
        if k is None:
            raise ReplayError(f"chunk {i} (t_obs {new.t_obs_s:.6f} s) has no robot state at or before its stamp")
        if cfg.prompt is not None:
            prompt = cfg.prompt
        elif prompts and (j := _latest_before(prompt_times, t_log)) is not None:
            prompt = prompts[j][1]
        else:
            prompt = ""
        images = {}
        for slot, samples in frames.items():
            ts = np.array([f.stamp_s for f in samples])
            if samples and (j := _latest_before(ts, new.t_obs_s)) is not None:
                images[slot] = samples[j].rgb
        obs = Observation(state=states.positions[k].copy(), stamp_s=new.t_obs_s, prompt=prompt, images=images)
        out.append(SwitchInput(i, new, prev, int(d), d_source, prefix, w, int(s), history, obs))
    return out


# --------------------------------------------------------------------------------------------- re-sampling


def _check_policy(policy: FlowPolicy, sw: SwitchInput) -> None:
    if tuple(policy.action_names) != tuple(sw.chunk.names):
        raise ReplayError(
            f"the policy's action names {list(policy.action_names)} differ from the recorded chunk's "
            f"{list(sw.chunk.names)}"
        )
    if policy.horizon != sw.chunk.horizon:
        raise ReplayError(f"the policy's horizon {policy.horizon} differs from the recorded H = {sw.chunk.horizon}")


def resample_switch(
    sampler: ChunkSampler,
    sw: SwitchInput,
    *,
    modes: Sequence[str],
    betas: Sequence[float],
    schedule: PrefixSchedule,
    seed: int,
) -> tuple[np.ndarray, dict[tuple[str, float], np.ndarray]]:
    """Re-sample one switch: (unguided ``[H, D]``, {(mode, β): guided ``[H, D]``}), one noise for all variants.

    Every variant is ``sampler.sample`` — the inference node's code path (Y and W from the previous chunk, Y to
    model space, ``rtc.sample``, ``policy.to_physical``) — from one ``sampler.prepare(observation)`` per switch
    (π0.5's prefix pass is the expensive part) and one PRNG key per switch (seed, switch index). ``none`` ignores
    β (every β maps to the unguided chunk, as in the inference node).
    """
    import jax

    _check_policy(sampler.policy, sw)
    if not math.isclose(sampler.dt_s, sw.chunk.dt_s, rel_tol=1e-9):
        raise ReplayError(
            f"switch {sw.index}: the sampler's Δt {sampler.dt_s} s differs from the chunk's {sw.chunk.dt_s} s"
        )
    obs = sw.observation
    prepared = sampler.prepare(obs)
    key = jax.random.fold_in(jax.random.key(seed), sw.index)
    previous = PreviousChunk(sw.previous.actions, sw.previous.t_obs_s)

    def run(mode: str, beta: float) -> np.ndarray:
        settings = GuidanceSettings(
            sw.d, sw.execution_horizon, max_guidance_weight=float(beta), mode=mode, schedule=schedule
        )  # fmt: skip
        return sampler.sample(obs, previous=previous, settings=settings, key=key, prepared=prepared).actions

    unguided = run("none", 0.0)
    out: dict[tuple[str, float], np.ndarray] = {}
    for mode in modes:
        for beta in betas:
            out[(mode, beta)] = unguided if mode == "none" else run(mode, beta)
    return unguided, out


# --------------------------------------------------------------------------------------------- outputs


TABLE_COLUMNS = ("mode", "beta", "switches", "mean_mismatch", "mean_jump", "p95_jump", "mean_jerk",
                 "mean_tail_departure", "recommended")  # fmt: skip
SWITCH_COLUMNS = ("switch", "t_obs_s", "d", "d_source", "shift_steps", "execution_horizon", "mode", "beta",
                  "mismatch", "jump", "jerk", "tail_departure")  # fmt: skip


def _plot_switch(sw: SwitchInput, unguided, variants, out_dir: Path) -> list[Path]:
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


def run_replay(cfg: ReplayConfig, *, policy: FlowPolicy | None = None, stdout: TextIO | None = None) -> ReplayResult:
    """Run the whole replay; ``policy`` overrides ``cfg.policy`` (tests, notebooks)."""
    stdout = stdout or sys.stdout
    with BagReader(cfg.bag) as bag:
        switches = load_switches(bag, cfg)
    if policy is None:
        policy = _make_policy(cfg, switches[0])
    cfg.output.mkdir(parents=True, exist_ok=True)
    plot_at = set()
    if cfg.figures > 0:
        pick = np.round(np.linspace(0, len(switches) - 1, min(cfg.figures, len(switches)))).astype(int)
        plot_at = {switches[int(p)].index for p in pick}

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
            per_switch.append({
                "switch": sw.index, "t_obs_s": sw.chunk.t_obs_s, "d": sw.d, "d_source": sw.d_source,
                "shift_steps": sw.prefix.shift_steps, "execution_horizon": sw.execution_horizon,
                "mode": mode, "beta": beta, **asdict(met),
            })  # fmt: skip
        if sw.index in plot_at:
            figures += _plot_switch(sw, unguided, variants, cfg.output / "switches")
        progress.step()

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
    _write_outputs(cfg, switches, per_switch, table, recs, figures)
    print(format_table(table), file=stdout)
    for rec in recs.values():
        print(f"recommended β for {rec.mode}: {rec.beta:g} — {rec.reason}", file=stdout)
    print(f"wrote {cfg.output / 'metrics.csv'}, {len(figures)} figure(s) under {cfg.output / 'switches'}", file=stdout)
    return ReplayResult(switches, per_switch, table, recs, figures, cfg.output)


def _write_outputs(cfg, switches, per_switch, table, recs, figures) -> None:
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
        "delays": sorted({sw.d for sw in switches}),
        "table": [{k: clean(v) for k, v in row.items()} for row in table],
        "recommended_beta": {m: {"beta": r.beta, "mean_jump": clean(r.mean_jump), "reason": r.reason} for m, r in recs.items()},
        "figures": [str(p.relative_to(cfg.output)) for p in figures],
    }
    (cfg.output / "summary.json").write_text(json.dumps(summary, indent=2))


def _make_policy(cfg: ReplayConfig, sw: SwitchInput) -> FlowPolicy:
    try:
        from rtc_controller.policy.registry import make_policy
    except ImportError as err:  # pragma: no cover - the registry ships with the package
        raise ReplayError(f"cannot import the policy registry: {err}") from err
    params = dict(cfg.policy_params)
    if cfg.policy == "sim":  # the sim policy takes the recorded chunk's shape
        params.setdefault("horizon", sw.chunk.horizon)
        params.setdefault("dt_s", sw.chunk.dt_s)
    elif cfg.policy == "pi05":  # its actions are named like the recorded chunks
        if not params.get("policy_config"):  # without a policy section H is taken from the recording
            params.setdefault("action_horizon", sw.chunk.horizon)
        params.setdefault("action_names", tuple(sw.chunk.names))
    try:
        return make_policy(cfg.policy, **params)
    except Exception as err:  # noqa: BLE001 - checkpoint/config errors of any policy become one clear message
        raise ReplayError(f"cannot build policy {cfg.policy!r} with {params}: {type(err).__name__}: {err}") from err


# --------------------------------------------------------------------------------------------- CLI


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from err


def _names(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def _switches(text: str) -> str | tuple[int, ...]:
    if text == "all":
        return "all"
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected 'all' or comma-separated indices, got {text!r}") from err


def _policy_param(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    import yaml

    return key, yaml.safe_load(value)  # numbers, booleans and lists as YAML reads them


def _camera(text: str) -> tuple[str, str]:
    slot, sep, topic = text.partition("=")
    if not sep or not slot or not topic:
        raise argparse.ArgumentTypeError(f"expected SLOT=TOPIC, got {text!r}")
    return slot, topic


def section_cameras(policy_config: str) -> dict[str, str] | None:
    """slot -> topic of a π0.5 policy section's cameras (None: the section lists none)."""
    from rtc_controller.policy.pi05.policy_section import load_policy_section

    section = load_policy_section(policy_config)
    if not section.cameras:
        return None
    return {slot: c.topic or topics.camera_topic(slot) for slot, c in section.cameras.items()}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rtc-replay",
        description="Re-sample recorded chunk switches offline for several guidance modes and β; "
        "plot each switch, write metrics.csv and recommend β.",
    )
    p.add_argument("bag", type=Path, help="rosbag2 directory (MCAP or SQLite3)")
    p.add_argument("--output", "-o", type=Path, default=Path("out/replay"), help="output folder (default out/replay)")
    p.add_argument("--policy", default="sim", help="policy name: sim or pi05 (default sim)")
    p.add_argument("--checkpoint", type=Path, help="π0.5 openpi checkpoint directory (with --policy pi05)")
    p.add_argument("--tokenizer", type=Path, help="PaliGemma SentencePiece model, paligemma_tokenizer.model (with --policy pi05)")
    p.add_argument("--policy-config", help="π0.5 policy section (YAML path or a name under config/policy/); implies "
                   "--policy pi05 and sets the checkpoint, tokenizer, horizon, mappings and camera topics")
    p.add_argument("--policy-param", type=_policy_param, action="append", default=[], metavar="KEY=VALUE",
                   help="extra make_policy parameter (repeatable; YAML value), e.g. asset_id=trossen")  # fmt: skip
    p.add_argument("--modes", type=_names, default=("none", "stop", "full"), help="guidance modes (default none,stop,full)")
    p.add_argument("--beta", type=_floats, default=DEFAULT_BETAS, help="max guidance weights β (default 1,5,10,100)")
    p.add_argument("--delay", type=int, help="d [action steps] for every switch (default: from each chunk's frame_id)")
    p.add_argument("--execution-horizon", type=int, help="s [action steps] (default: inferred from the chunk cadence)")
    p.add_argument("--schedule", default="exp", choices=PREFIX_SCHEDULES, help="prefix weight schedule (default exp)")
    p.add_argument("--num-steps", type=int, default=10, help="denoising steps (default 10)")
    p.add_argument("--switches", type=_switches, default="all", help="'all' or chunk indices, e.g. 3,7,12 (default all)")
    p.add_argument("--max-switches", type=int, help="replay at most N switches, evenly spread")
    p.add_argument("--figures", type=int, default=DEFAULT_FIGURES, help=f"switches to plot (default {DEFAULT_FIGURES})")
    p.add_argument("--start", type=float, help="start [s] after the bag's first message")
    p.add_argument("--end", type=float, help="end [s] after the bag's first message")
    p.add_argument("--chunk-topic", default=topics.CHUNK)
    p.add_argument("--state-topic", default=topics.ROBOT_STATE)
    p.add_argument("--prompt-topic", default=topics.PROMPT)
    p.add_argument("--camera", type=_camera, action="append", help="SLOT=TOPIC (repeatable; default: every rtc/camera/<slot>)")
    p.add_argument("--prompt", help="prompt to use instead of the recorded one")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    p.add_argument("--jump-tolerance", type=float, default=M.DEFAULT_JUMP_REL_TOL,
                   help="β recommendation: relative tolerance on the best mean jump (default 0.1)")  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(args: Sequence[str] | None = None) -> int:
    """Console script ``rtc-replay``; returns the exit status (0 ok, 2 bad input)."""
    parser = build_parser()
    ns = parser.parse_args(args)
    params: dict[str, Any] = dict(ns.policy_param)
    cameras = dict(ns.camera) if ns.camera else None
    if ns.policy_config:
        ns.policy = "pi05"
        params["policy_config"] = ns.policy_config
        try:
            cameras = cameras or section_cameras(ns.policy_config)
        except ValueError as err:
            print(f"rtc-replay: error: {err}", file=sys.stderr)
            return EXIT_BAD_INPUT
    if ns.checkpoint is not None:
        params["checkpoint_dir"] = str(ns.checkpoint)
    if ns.tokenizer is not None:
        params["tokenizer_path"] = str(ns.tokenizer)
    try:
        cfg = ReplayConfig(
            bag=ns.bag, output=ns.output, policy=ns.policy, policy_params=params, modes=ns.modes, betas=ns.beta,
            delay=ns.delay, execution_horizon=ns.execution_horizon, schedule=ns.schedule, num_steps=ns.num_steps,
            switches=ns.switches, max_switches=ns.max_switches, figures=ns.figures, start_s=ns.start, end_s=ns.end,
            chunk_topic=ns.chunk_topic, state_topic=ns.state_topic, prompt_topic=ns.prompt_topic,
            cameras=cameras, prompt=ns.prompt, seed=ns.seed,
            jump_rel_tol=ns.jump_tolerance, progress=not ns.no_progress,
        )  # fmt: skip
        if cfg.policy == "pi05" and "policy_config" not in params:
            missing = [flag for flag, key in PI05_REQUIRED.items() if key not in params]
            if missing:
                raise ValueError(f"--policy pi05 needs {' and '.join(PI05_REQUIRED)}; missing {', '.join(missing)}")
        run_replay(cfg)
    except (BagError, ReplayError, ValueError) as err:
        print(f"rtc-replay: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


if __name__ == "__main__":
    sys.exit(main())
