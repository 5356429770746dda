"""``rtc-eval``: closed-loop evaluation on the MuJoCo twin: task success vs inference delay, per guidance mode.

Grid: delays d ∈ ``--delays`` (action steps at Δt = 1/``--action-rate``; injected exactly: each chunk reaches the
executor d·Δt after its observation) × modes (``none``, ``stop``, ``full``, ``hard``) × the same seeds in every
cell. Each episode runs in-process (``sim.episode``): the executor core and the inference node's loop, configured
from the nodes' parameter file (``--config``, default ``config/twin.yaml``: ``tools/eval_config.py``), on the twin
world in simulated time (faster than real time, deterministic from the seed). ``--dds`` runs each episode through
the real processes instead (``tools/eval_dds.py``: a fresh ``rtc-bringup`` per episode with the same parameter
overrides; slow, for spot checks).

Output (``--out``): ``cells/<mode>_d<d>.json`` (each episode's metrics; a finished cell is not re-run: the run
is resumable), ``summary.json`` (per-cell metrics), ``report.md`` (table) and ``success_vs_delay.png``.

    rtc-eval --out out/eval --delays 0,4,8,16,24 --modes none,stop,full,hard --seeds 20
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

from rtc_controller.config_files import world_file
from rtc_controller.rtc import GUIDANCE_MODES
from rtc_controller.tools.eval_config import EvalConfig, executor_values, fingerprint, inference_values
from rtc_controller.tools.eval_stats import summarize_cell

DEFAULT_DELAYS = (0, 4, 8, 16, 24)


class Progress:
    """One-line progress bar on stderr: cells and episodes done, elapsed and estimated remaining time."""

    def __init__(self, total: int, stream=sys.stderr) -> None:
        self.total, self.done, self.stream, self.t0 = total, 0, stream, time.monotonic()

    def step(self, label: str) -> None:
        self.done += 1
        el = time.monotonic() - self.t0
        eta = el / self.done * (self.total - self.done)
        bar = "#" * int(30 * self.done / max(self.total, 1))
        self.stream.write(f"\r[{bar:<30}] {self.done}/{self.total} {label} {el:.0f} s, ~{eta:.0f} s left   ")
        self.stream.flush()
        if self.done == self.total:
            self.stream.write("\n")


def _make_policy(cfg: EvalConfig, p: dict[str, Any], world):
    """The inference node's policy for parameter values ``p`` (the twin policies read the in-process world)."""
    from rtc_controller.policy.registry import make_policy
    from rtc_controller.ros.inference_params import policy_params, policy_section

    names = tuple(p["action_names"])
    if p["policy"] in ("twin", "twin_expert"):
        from rtc_controller.sim.twin_policy import WorldSource

        return make_policy(p["policy"], horizon=cfg.horizon, dt_s=cfg.dt_s, names=names, source=WorldSource(world))
    if p["policy"] != "pi05":
        raise ValueError(f"rtc-eval: policy {p['policy']!r} does not run on the twin (twin, twin_expert, pi05)")
    section = policy_section(p, cfg.horizon)
    return make_policy("pi05", **policy_params(p, section=section, horizon=cfg.horizon, dt_s=cfg.dt_s, names=names),
                       **dict(cfg.policy_params))  # fmt: skip


class Evaluator:
    """Builds the world, the executor configuration, the policy and its sampler once, then runs episodes of cells
    (see the module docstring)."""

    def __init__(self, cfg: EvalConfig) -> None:
        from rtc_controller.control.executor_params import build_config
        from rtc_controller.policy.chunk_sampler import ChunkSampler
        from rtc_controller.sim.twin_config import load_twin_config
        from rtc_controller.sim.world import TwinWorld

        self.cfg = cfg
        self.executor_values = executor_values(cfg)
        self.executor_config = build_config(self.executor_values)
        scene, task = load_twin_config(self.executor_values["twin_config"])
        self.world = TwinWorld(scene=scene, task=dataclasses.replace(task, time_limit_s=cfg.time_limit_s))
        p = inference_values(cfg, mode="none", delay=0)
        self.policy = _make_policy(cfg, p, self.world)
        if self.policy.horizon != cfg.horizon:
            raise ValueError(f"the policy's horizon is {self.policy.horizon}, rtc-eval runs --horizon {cfg.horizon}")
        self.sampler = ChunkSampler(self.policy, dt_s=cfg.dt_s, num_steps=int(p["num_steps"]))
        self.renderer = None
        if cfg.camera_slots:
            from rtc_controller.sim.render import CameraRenderer

            self.renderer = CameraRenderer(self.world.model, self.world.scene)

    def run_episode(self, seed: int, *, mode: str, delay: int, record: bool = False):
        """One episode of cell (``mode``, ``delay``): the executor core and the inference loop on twin seed ``seed``
        (also the seed of the sampling noise, so every cell sees the same noise)."""
        from rtc_controller.policy.inference_loop import InferenceLoop, LoopSettings
        from rtc_controller.sim.episode import EpisodeConfig, EpisodeRunner

        p = inference_values(self.cfg, mode=mode, delay=delay)
        episode = EpisodeConfig(latency_s=float(p["extra_latency_s"]), state_rate_hz=self.executor_values["state_rate_hz"],
                                camera_slots=self.cfg.camera_slots, record=record)  # fmt: skip
        runner = EpisodeRunner(self.world, self.executor_config, episode, renderer=self.renderer)
        loop = InferenceLoop(self.cfg.horizon, self.cfg.dt_s, history_capacity=int(p["chunk_history"]), seed=seed)
        sampler = self.sampler
        return runner.run(seed, loop=loop, settings=LoopSettings.from_params(p, self.cfg.horizon),
                          make_chunk=lambda obs, plan: loop.sample(sampler, obs, plan).actions)  # fmt: skip


def cell_path(out: Path, mode: str, delay: int) -> Path:
    return out / "cells" / f"{mode}_d{delay}.json"


def run_grid(cfg: EvalConfig, *, modes, delays, out: Path, progress: bool = True) -> dict:
    """Run (or resume) every cell; returns ``{"config", "cells": {mode: {d: metrics}}}`` and writes the outputs."""
    out.mkdir(parents=True, exist_ok=True)
    todo = []
    for mode in modes:
        for d in delays:
            p = cell_path(out, mode, d)
            if p.exists() and json.loads(p.read_text()).get("config") == fingerprint(cfg):
                continue
            todo.append((mode, d))
    bar = Progress(len(todo) * len(cfg.seeds), sys.stderr if progress else open("/dev/null", "w"))  # noqa: SIM115
    ev = Evaluator(cfg) if todo and not cfg.dds else None
    for mode, d in todo:
        episodes = []
        for seed in cfg.seeds:
            if cfg.dds:
                from rtc_controller.tools.eval_dds import run_dds_episode

                episodes.append(run_dds_episode(cfg, seed=seed, mode=mode, delay=d, out=out))
            else:
                episodes.append(ev.run_episode(seed, mode=mode, delay=d).summary())  # type: ignore[union-attr]
            bar.step(f"{mode} d={d} seed {seed}")
        p = cell_path(out, mode, d)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps({"config": fingerprint(cfg), "mode": mode, "delay": d, "episodes": episodes}))
    cells: dict = {}
    for mode in modes:
        for d in delays:
            data = json.loads(cell_path(out, mode, d).read_text())
            cells.setdefault(mode, {})[str(d)] = summarize_cell(data["episodes"])
    summary = {"config": fingerprint(cfg), "delays": list(delays), "modes": list(modes), "cells": cells}
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


def main(args: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="rtc-eval", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="out/eval", help="output folder (resumes the cells already there)")
    p.add_argument("--policy", default="", help="twin | twin_expert | pi05 (default: pi05 with --policy-config or "
                                                "--checkpoint, else twin)")
    p.add_argument("--delays", default=",".join(map(str, DEFAULT_DELAYS)), help="d values [action steps]")
    p.add_argument("--modes", default="none,stop,full,hard", help=f"subset of {GUIDANCE_MODES}")
    p.add_argument("--seeds", type=int, default=10, help="episodes per cell (seeds 0 … N−1, the same in every cell)")
    p.add_argument("--seed-start", type=int, default=0)
    p.add_argument("--beta", type=float, default=10.0, help="β, max guidance weight")
    p.add_argument("--horizon", type=int, default=50)
    p.add_argument("--execution-horizon", type=int, default=25)
    p.add_argument("--num-steps", type=int, default=10)
    p.add_argument("--servo-rate", type=float, default=1000.0,
                   help="executor core rate [Hz] (timeline + safety filter); the physics stays at 1 kHz, holding the "
                        "command between ticks (500: about 1.5x faster episodes)")
    p.add_argument("--time-limit", type=float, default=15.0, help="episode time limit [s]")
    p.add_argument("--cameras", default="", help="camera slots rendered into observations (pi05), comma-separated")
    p.add_argument("--policy-config", default="", help="pi05: a policy section (file or config/policy name)")
    p.add_argument("--policy-param", type=_policy_param, action="append", default=[], metavar="KEY=VALUE",
                   help="extra pi05 make_policy parameter (repeatable; YAML value), e.g. dtype=float32")
    p.add_argument("--checkpoint", default="")
    p.add_argument("--tokenizer", default="")
    p.add_argument("--twin-config", default="", help="world file (path or config/ name; default: the twin's "
                                                      "defaults), e.g. twin_world_learned.yaml for models/twin_pi05")
    p.add_argument("--dds", action="store_true", help="each episode through the real processes over DDS (slow)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    o = p.parse_args(args)
    modes = tuple(m for m in o.modes.split(",") if m)
    bad = [m for m in modes if m not in GUIDANCE_MODES]
    if bad:
        p.error(f"unknown mode(s) {bad}; expected a subset of {GUIDANCE_MODES}")
    delays = _ints(o.delays)
    if any(d < 0 or d > o.execution_horizon for d in delays):
        p.error(f"delays must be in [0, execution horizon {o.execution_horizon}], got {list(delays)}")
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
    cfg = EvalConfig(policy=o.policy, horizon=o.horizon, execution_horizon=o.execution_horizon, num_steps=o.num_steps,
                     servo_rate_hz=o.servo_rate,
                     max_guidance_weight=o.beta, seeds=tuple(range(o.seed_start, o.seed_start + o.seeds)),
                     time_limit_s=o.time_limit, camera_slots=cameras, policy_params=tuple(o.policy_param),
                     checkpoint=o.checkpoint, tokenizer_path=o.tokenizer, policy_config=o.policy_config,
                     dds=o.dds, twin_config=o.twin_config)  # fmt: skip
    try:
        summary = run_grid(cfg, modes=modes, delays=delays, out=Path(o.out), progress=not o.quiet)
    except (ValueError, RuntimeError) as exc:
        p.error(str(exc))
    from rtc_controller.tools.eval_report import table

    print(table(summary))
    print(f"rtc-eval: report in {Path(o.out) / 'report.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
