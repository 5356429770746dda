"""rtc-replay's reconstruction: what the inference node saw at every recorded chunk switch.

For each recorded chunk (``trajectory_msgs/msg/JointTrajectory``, stamp = t_obs): the robot state stamped at t_obs
(or the latest before it), the camera frames and the prompt at that time, the previous chunk, and the delay d it
was guided with (``header.frame_id = "rtc_d=<d>"``, else ``--delay``, else the executor's ``inference_delay``
topic). Prefix and weights follow the inference node (DESIGN.md): Y[i] = A_prev[i + m],
m = round((t_obs − t_obs_prev)/Δt), W = prefix_weights(d, H − s, H, schedule) zeroed where Y has no data.

Axes: H = horizon, D = action dim (physical). Times [s] unless ``_ns``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from rtc_controller import topics
from rtc_controller.control.chunk import Chunk
from rtc_controller.policy.base import Observation
from rtc_controller.policy.chunk_sampler import GuidanceSettings, PreviousChunk, build_guidance
from rtc_controller.rtc.prefix import Prefix

from . import metrics as M
from rtc_controller.bags.bag_messages import ImageSample, StateSeries, read_chunks, read_images, read_prompts, read_states
from rtc_controller.bags.bag_reader import BagReader
from .replay_config import ReplayConfig, ReplayError

__all__ = ["HISTORY_STEPS", "LoadedSwitches", "SwitchInput", "load_switches", "load_switches_counted"]

HISTORY_STEPS = M.JERK_ORDER  # old-chunk actions before t_obs kept for the jerk across the switch
NS_PER_S = 1_000_000_000
IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")


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


@dataclass(frozen=True)
class LoadedSwitches:
    """The switches to replay and how many selected chunks were skipped for want of an earlier robot state."""

    switches: list[SwitchInput]
    skipped_no_state: int  # chunks recorded before the recorder's first robot state (their t_obs precede it)


@dataclass(frozen=True)
class _Recorded:
    """The bag's inputs besides the chunks, read once; each switch picks what was latest at its time."""

    states: StateSeries
    prompts: list[tuple[float, str]]  # (log_s, text)
    prompt_times: np.ndarray  # [s]
    delays: list[tuple[float, int]]  # (log_s, d) from the delay topic
    delay_times: np.ndarray  # [s]
    frames: dict[str, list[ImageSample]]  # slot -> the frames the selected switches see


def _camera_topics(bag: BagReader, cameras: Mapping[str, str] | None) -> dict[str, str]:
    if cameras is not None:
        return {slot: bag.require(t, IMAGE_TYPES) for slot, t in cameras.items()}
    out = {}
    for name, msgtype in bag.topics.items():
        key = name.split("/" + topics.CAMERA_PREFIX, 1)
        if len(key) == 2 and msgtype in IMAGE_TYPES:
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


def _check_topics(bag: BagReader, cfg: ReplayConfig) -> tuple[bool, bool, dict[str, str]]:
    """Check the required topics and their types before reading anything: (has prompt, has delay topic,
    slot -> camera topic)."""
    bag.require(cfg.chunk_topic, "trajectory_msgs/msg/JointTrajectory")
    bag.require(cfg.state_topic, "sensor_msgs/msg/JointState")
    has_prompt = bag.resolve(cfg.prompt_topic) is not None
    if has_prompt:
        bag.require(cfg.prompt_topic, "std_msgs/msg/String")
    has_delay_topic = bag.resolve(cfg.delay_topic) is not None
    if has_delay_topic:
        bag.require(cfg.delay_topic, "std_msgs/msg/Int32")
    return has_prompt, has_delay_topic, _camera_topics(bag, cfg.cameras)


def _select_switches(bag: BagReader, cfg: ReplayConfig, log_ns: np.ndarray) -> list[int]:
    """Indices of the new chunks to replay: in the time range, as ``cfg.switches`` asks, at most ``max_switches``."""
    start_ns, stop_ns = _range_ns(bag, cfg)
    in_range = [
        i for i in range(1, len(log_ns))
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
    return selected


def _check_chunks(chunks: Sequence[Chunk], selected: Sequence[int]) -> tuple[tuple[str, ...], int]:
    """(names, H) shared by every selected chunk and its predecessor; ReplayError otherwise."""
    first = chunks[selected[0]]
    names, horizon = first.names, first.horizon
    for i in selected:
        c, p = chunks[i], chunks[i - 1]
        if c.names != names or p.names != names or c.horizon != horizon or p.horizon != horizon:
            raise ReplayError(f"chunk {i} has different names or horizon than chunk {selected[0]}")
        if not (np.isfinite(c.actions).all() and np.isfinite(p.actions).all() and c.dt_s > 0):
            raise ReplayError(f"chunk {i} or its predecessor is not finite or has no time step")
    return names, horizon


def _read_recorded(bag: BagReader, cfg: ReplayConfig, *, names: Sequence[str], stamps_s: Sequence[float],
                   has_prompt: bool, has_delay_topic: bool, cameras: Mapping[str, str]) -> _Recorded:  # fmt: skip
    """States, prompts, delays and the camera frames seen at ``stamps_s`` (the selected switches' t_obs)."""
    states = read_states(bag, cfg.state_topic, names=names)
    if len(states) == 0:
        raise ReplayError(f"{cfg.state_topic} has no robot states")
    prompts = read_prompts(bag, cfg.prompt_topic) if has_prompt else []
    delays: list[tuple[float, int]] = []
    if has_delay_topic and cfg.delay is None:
        delays = [(ln / NS_PER_S, int(m.data)) for ln, m in bag.messages(cfg.delay_topic)]
    frames = {slot: read_images(bag, t, at_s=stamps_s) for slot, t in cameras.items()}
    return _Recorded(states, prompts, np.array([t for t, _ in prompts]), delays, np.array([t for t, _ in delays]),
                     frames)  # fmt: skip


def _delay(i: int, new: Chunk, t_log_s: float, cfg: ReplayConfig, rec: _Recorded) -> tuple[int, str]:
    """(d, where it came from) for chunk ``i``: ``--delay``, else its frame_id, else the delay topic."""
    if cfg.delay is not None:
        return cfg.delay, "--delay"
    if new.guided_d is not None:
        return new.guided_d, "frame_id"
    if rec.delays and (j := _latest_before(rec.delay_times, t_log_s)) is not None:
        return rec.delays[j][1], cfg.delay_topic
    raise ReplayError(
        f"chunk {i} carries no delay (frame_id {'rtc_d=<d>'} missing) and the bag has no "
        f"{cfg.delay_topic}; pass --delay D"
    )


def _observation(i: int, new: Chunk, t_log_s: float, cfg: ReplayConfig, rec: _Recorded) -> Observation:
    """The robot state, prompt and camera frames the inference node had at chunk ``i``'s t_obs."""
    k = rec.states.index_at(new.t_obs_s)
    if k is None:
        raise ReplayError(f"chunk {i} (t_obs {new.t_obs_s:.6f} s) has no robot state at or before its stamp")
    if cfg.prompt is not None:
        prompt = cfg.prompt
    elif rec.prompts and (j := _latest_before(rec.prompt_times, t_log_s)) is not None:
        prompt = rec.prompts[j][1]
    else:
        prompt = ""
    images = {}
    for slot, samples in rec.frames.items():
        ts = np.array([f.stamp_s for f in samples])
        if samples and (j := _latest_before(ts, new.t_obs_s)) is not None:
            images[slot] = samples[j].rgb
    return Observation(state=rec.states.positions[k].copy(), stamp_s=new.t_obs_s, prompt=prompt, images=images)


def _switch_input(i: int, chunks: Sequence[Chunk], t_log_s: float, cfg: ReplayConfig, rec: _Recorded, *, s: int,
                  horizon: int) -> SwitchInput:  # fmt: skip
    """Switch ``i`` (chunk i−1 -> chunk i) with Y and W exactly as the inference node builds them."""
    new, prev = chunks[i], chunks[i - 1]
    d, d_source = _delay(i, new, t_log_s, cfg, rec)
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
    obs = _observation(i, new, t_log_s, cfg, rec)
    return SwitchInput(i, new, prev, int(d), d_source, prefix, w, int(s), history, obs)


def load_switches(bag: BagReader, cfg: ReplayConfig) -> list[SwitchInput]:
    """Rebuild the inference node's input for every selected switch (BagError / ReplayError on bad input)."""
    return load_switches_counted(bag, cfg).switches


def load_switches_counted(bag: BagReader, cfg: ReplayConfig) -> LoadedSwitches:
    """:func:`load_switches` with the count of chunks skipped because no robot state precedes their t_obs (a
    recorder that discovered the state topic after the chunk topic); ReplayError only when none is left."""
    has_prompt, has_delay_topic, cameras = _check_topics(bag, cfg)
    recorded = read_chunks(bag, cfg.chunk_topic)
    if len(recorded) < 2:
        raise ReplayError(f"{cfg.chunk_topic} has {len(recorded)} chunk(s) in the bag; a switch needs at least 2")
    log_ns = np.array([ln for ln, _ in recorded])
    chunks = [c for _, c in recorded]
    selected = _select_switches(bag, cfg, log_ns)
    names, horizon = _check_chunks(chunks, selected)
    s = cfg.execution_horizon or _infer_execution_horizon(chunks)
    if s is None or not 1 <= s <= horizon:
        raise ReplayError(f"cannot infer the execution horizon from the chunk cadence (got {s}); pass --execution-horizon")
    rec = _read_recorded(bag, cfg, names=names, stamps_s=[chunks[i].t_obs_s for i in selected], has_prompt=has_prompt,
                         has_delay_topic=has_delay_topic, cameras=cameras)  # fmt: skip
    kept = [i for i in selected if rec.states.index_at(chunks[i].t_obs_s) is not None]
    if not kept:
        raise ReplayError(
            f"none of the {len(selected)} selected chunk(s) has a robot state at or before its t_obs (first state "
            f"{rec.states.stamps_s[0]:.3f} s, last chunk t_obs {chunks[selected[-1]].t_obs_s:.3f} s)"
        )
    switches = [_switch_input(i, chunks, log_ns[i] / NS_PER_S, cfg, rec, s=s, horizon=horizon) for i in kept]
    return LoadedSwitches(switches, len(selected) - len(kept))
