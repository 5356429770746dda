"""Running ``rtc-eval``'s cells in-process (ROS-free): the evaluator of one policy and the cell runner.

:class:`Evaluator` builds the twin world, the policy and its sampler once, and an executor core configuration per
execution horizon; :func:`run_cells` runs grid cells with it, in this process or in worker processes.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rtc_controller.tools.eval_config import EvalConfig, executor_values, inference_values
from rtc_controller.tools.eval_grid import Cell, is_done, write_cell

TRAINED_MODE = "trained"


def _make_policy(cfg: EvalConfig, p: dict[str, Any], world):
    """The inference node's policy for parameter values ``p``; a policy that reads the twin's privileged state
    reads the in-process world instead of a snapshot."""
    from rtc_controller.app.inference_params import policy_params, policy_section
    from rtc_controller.app.policies import entry, make_policy

    kind = entry(p["policy"])
    if not kind.runs_on_twin:
        raise ValueError(f"rtc-eval: policy {p['policy']!r} does not run on the twin")
    params = policy_params(p, section=policy_section(p, cfg.horizon), horizon=cfg.horizon, dt_s=cfg.dt_s,
                           names=tuple(p["action_names"]))  # fmt: skip
    if kind.privileged_state:
        from rtc_controller.sim.twin_policy import WorldSource

        params = {k: v for k, v in params.items() if k != "snapshot"} | {"source": WorldSource(world)}
    return make_policy(p["policy"], **params, **dict(cfg.policy_params))


class Evaluator:
    """The world, the policy and its sampler of one config, built once; episodes of any (mode, d, s, β)."""

    def __init__(self, cfg: EvalConfig) -> None:
        from rtc_controller.policy.chunk_sampler import ChunkSampler
        from rtc_controller.sim.twin_config import load_twin_config
        from rtc_controller.sim.world import TwinWorld

        self.cfg = cfg
        self._executor: dict[int, tuple[dict, Any]] = {}
        values, self.executor_config = self.executor(cfg.execution_horizon)
        scene, task = load_twin_config(values["twin_config"])
        self.world = TwinWorld(scene=scene, task=dataclasses.replace(task, time_limit_s=cfg.time_limit_s))
        p = inference_values(cfg, mode="none", delay=0)
        self.policy = _make_policy(cfg, p, self.world)
        if self.policy.horizon != cfg.horizon:
            raise ValueError(f"the policy's horizon is {self.policy.horizon}, rtc-eval runs --horizon {cfg.horizon}")
        self.sampler = ChunkSampler(self.policy, dt_s=cfg.dt_s, num_steps=int(p["num_steps"]),
                                    bid_samples=int(p["bid_samples"]))
        self.renderer = None
        if cfg.camera_slots:
            from rtc_controller.sim.render import CameraRenderer

            self.renderer = CameraRenderer(self.world.model, self.world.scene)

    def executor(self, execution_horizon: int):
        """(the executor node's parameter values, its core's config) for s = ``execution_horizon`` (cached)."""
        if execution_horizon not in self._executor:
            from rtc_controller.control.executor_params import build_config

            values = executor_values(dataclasses.replace(self.cfg, execution_horizon=execution_horizon))
            self._executor[execution_horizon] = (values, build_config(values))
        return self._executor[execution_horizon]

    def run_episode(self, seed: int, *, mode: str, delay: int, execution_horizon: int | None = None,
                    beta: float | None = None, record: bool = False):  # fmt: skip
        """One episode: the executor core and the inference loop on twin seed ``seed`` (also the seed of the
        sampling noise, so every cell sees the same noise); s and β default to the config's."""
        from rtc_controller.policy.inference_loop import InferenceLoop, LoopSettings
        from rtc_controller.sim.episode import EpisodeConfig, EpisodeRunner

        s = self.cfg.execution_horizon if execution_horizon is None else execution_horizon
        cfg = dataclasses.replace(self.cfg, execution_horizon=s,
                                  max_guidance_weight=self.cfg.max_guidance_weight if beta is None else beta)
        values, executor = self.executor(s)
        p = inference_values(cfg, mode=mode, delay=delay)
        episode = EpisodeConfig(latency_s=float(p["extra_latency_s"]), state_rate_hz=values["state_rate_hz"],
                                camera_slots=cfg.camera_slots, record=record)  # fmt: skip
        runner = EpisodeRunner(self.world, executor, episode, renderer=self.renderer)
        loop = InferenceLoop(cfg.horizon, cfg.dt_s, history_capacity=int(p["chunk_history"]), seed=seed)
        sampler = self.sampler
        return runner.run(seed, loop=loop, settings=LoopSettings.from_params(p, cfg.horizon),
                          make_chunk=lambda obs, plan: loop.sample(sampler, obs, plan).actions)  # fmt: skip


def config_for(cfg: EvalConfig, cell: Cell) -> EvalConfig:
    """The config whose policy runs ``cell``: the trained-RTC policy for method ``trained`` (when given)."""
    if cell.method.mode == TRAINED_MODE and cfg.trained_policy_config:
        return dataclasses.replace(cfg, policy_config=cfg.trained_policy_config)
    return cfg


class _Evaluators:
    """One evaluator per policy config, built on first use."""

    def __init__(self) -> None:
        self._by_policy: dict[str, Evaluator] = {}

    def run(self, cfg: EvalConfig, cell: Cell) -> list[dict]:
        c = config_for(cfg, cell)
        if c.policy_config not in self._by_policy:
            self._by_policy[c.policy_config] = Evaluator(c)
        ev = self._by_policy[c.policy_config]
        return [ev.run_episode(seed, mode=cell.method.mode, delay=cell.delay, execution_horizon=cell.execution_horizon,
                               beta=cell.config(cfg).max_guidance_weight).summary() for seed in cfg.seeds]


_WORKER: _Evaluators | None = None


def _worker_init() -> None:
    global _WORKER
    _WORKER = _Evaluators()


def _worker_run(args: tuple[EvalConfig, Cell, str]) -> str:
    cfg, cell, out = args
    assert _WORKER is not None
    write_cell(cfg, cell, Path(out), _WORKER.run(cfg, cell))
    return cell.key


def run_cells(cfg: EvalConfig, cells: list[Cell], out: Path, *, workers: int = 1,
              on_cell: Callable[[str], None] = lambda key: None) -> None:  # fmt: skip
    """Run the cells not done yet (``eval_grid.is_done``), writing each cell's file as it finishes."""
    todo = [c for c in cells if not is_done(cfg, c, out)]
    if not todo:
        return
    if cfg.dds:
        from rtc_controller.tools.eval_dds import run_dds_episode

        for cell in todo:
            c = cell.config(cfg)
            write_cell(cfg, cell, out, [run_dds_episode(c, seed=s, mode=cell.method.mode, delay=cell.delay, out=out)
                                        for s in cfg.seeds])  # fmt: skip
            on_cell(cell.key)
        return
    if workers <= 1:
        evaluators = _Evaluators()
        for cell in todo:
            write_cell(cfg, cell, out, evaluators.run(cfg, cell))
            on_cell(cell.key)
        return
    import multiprocessing as mp

    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    with mp.get_context("spawn").Pool(workers, initializer=_worker_init) as pool:
        for key in pool.imap_unordered(_worker_run, [(cfg, c, str(out)) for c in todo]):
            on_cell(key)


class Progress:
    """One-line progress bar on stderr: cells done, elapsed and estimated remaining time."""

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
