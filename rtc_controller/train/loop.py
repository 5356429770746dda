"""The training loop of ``rtc-train fit``: deterministic, resumable, with a progress bar, a loss log and a time budget.

Determinism: the weights start from ``random_params(seed)``; batch k of epoch e is a slice of
``default_rng([seed, e]).permutation(N)`` (the last partial batch of an epoch is dropped); the noise and flow
times of step i come from ``fold_in(key(seed), i)`` (openpi's ``train_step``). So a run resumed from the
checkpoint at step i continues exactly as if it had never stopped.

Run folder (openpi's ``--overwrite`` / ``--resume`` rule: an existing run is refused unless one is given)::

    <run>/checkpoints/<step>/   resumable checkpoints (``checkpoints.py``)
    <run>/pi05/                 the exported policy (``export.py``): the weights at the end of each invocation,
                                so a run stopped by its time budget is usable at once (``training.yaml`` says how far)
    <run>/tokenizer.model  <run>/train_config.yaml  <run>/split.json  <run>/loss.csv  <run>/loss.png
"""

from __future__ import annotations

import contextlib
import json
import pathlib
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax
import yaml

from rtc_controller.policy.pi05.params import Params
from rtc_controller.shutdown import ShutdownSignals
from rtc_controller.train import checkpoints as ckpt
from rtc_controller.train.config import TrainConfig
from rtc_controller.train.collect import generator_command
from rtc_controller.train.curves import LOSS_CSV, LOSS_PNG, LossLog, LossRow, plot_loss
from rtc_controller.train.export import export_policy
from rtc_controller.train.objective import flow_matching_loss
from rtc_controller.train.optim import ema_update, learning_rate, make_optimizer
from rtc_controller.train.prepare import RunSetup, prepare_run
from rtc_controller.train.samples import TrainingSet

CONFIG_FILE = "train_config.yaml"
EXPORT_CONFIG_FILE = "training_config.yaml"  # the run's config, beside the exported policy
SPLIT_FILE = "split.json"  # the training and validation episodes
EVAL_BATCHES = 2  # validation batches (fixed samples, fixed noise) per evaluation
EVAL_KEY_SALT = 0x5EED  # the validation noise differs from every training step's


class RunDirError(ValueError):
    """The run folder exists and neither resume nor overwrite was asked for."""


@dataclass(frozen=True)
class FitResult:
    run_dir: pathlib.Path
    step: int  # optimiser steps done
    completed: bool  # False: stopped early (budget, --stop-at, a signal): resume to continue
    policy_file: pathlib.Path  # the exported policy section (of the weights so far when stopped early)
    train_loss: float  # the last logged training loss
    val_loss: float | None
    elapsed_s: float
    params: Params  # the inference weights (EMA when enabled) as exported, host arrays


def batch_indices(seed: int, step: int, num_samples: int, batch_size: int) -> np.ndarray:
    """The sample indices of optimiser step ``step`` (a pure function: the data order survives a resume)."""
    per_epoch = num_samples // batch_size
    if per_epoch < 1:
        raise ValueError(f"the training set has {num_samples} samples, fewer than one batch ({batch_size})")
    epoch, k = divmod(step, per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(num_samples)
    return order[k * batch_size:(k + 1) * batch_size]


def make_train_step(setup: RunSetup, cfg: TrainConfig, tx: optax.GradientTransformation):
    """jit(state, batch) -> (state, {loss, grad_norm}); the key of step i is fold_in(key(seed), i)."""
    model_cfg, decay, base_key = setup.model_config, cfg.optimizer.ema_decay, jax.random.key(cfg.loop.seed)
    max_delay = cfg.objective.rtc_training_max_delay

    def step(state: ckpt.TrainState, batch: dict):
        key = jax.random.fold_in(base_key, state.step)
        loss, grads = jax.value_and_grad(flow_matching_loss)(state.params, model_cfg, batch, key,
                                                             rtc_training_max_delay=max_delay)  # fmt: skip
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        ema = None if state.ema is None else ema_update(state.ema, params, decay)
        info = {"loss": loss, "grad_norm": jnp.sqrt(sum(jnp.sum(jnp.square(g)) for g in jax.tree.leaves(grads)))}
        return ckpt.TrainState(state.step + 1, params, opt_state, ema), info

    return jax.jit(step, donate_argnums=(0,))


def make_eval_loss(setup: RunSetup, cfg: TrainConfig):
    model_cfg, max_delay = setup.model_config, cfg.objective.rtc_training_max_delay
    return jax.jit(lambda params, batch, key: flow_matching_loss(params, model_cfg, batch, key,
                                                                 rtc_training_max_delay=max_delay))  # fmt: skip


def initial_state(setup: RunSetup, cfg: TrainConfig, tx: optax.GradientTransformation) -> ckpt.TrainState:
    params = jax.tree.map(jnp.asarray, setup.init_params)
    ema = jax.tree.map(jnp.copy, params) if cfg.optimizer.ema_decay is not None else None
    return ckpt.TrainState(jnp.int32(0), params, tx.init(params), ema)


def validation_loss(eval_fn, params, val_set: TrainingSet | None, cfg: TrainConfig) -> float | None:
    """Mean loss over up to ``EVAL_BATCHES`` fixed validation batches with fixed noise and flow times."""
    if val_set is None:
        return None
    b = min(cfg.loop.batch_size, len(val_set))
    n = min(EVAL_BATCHES, len(val_set) // b)
    picks = np.linspace(0, len(val_set) - 1, n * b).round().astype(int)
    key = jax.random.key(cfg.loop.seed + EVAL_KEY_SALT)
    losses = [eval_fn(params, val_set.batch(picks[i * b:(i + 1) * b]), jax.random.fold_in(key, i)) for i in range(n)]
    return float(np.mean(jax.device_get(losses)))


def open_run_dir(run_dir: pathlib.Path, *, resume: bool, overwrite: bool) -> None:
    if resume and overwrite:
        raise RunDirError("choose one of resume and overwrite")
    if run_dir.exists() and any(run_dir.iterdir()):
        if overwrite:
            shutil.rmtree(run_dir)
        elif not resume:
            raise RunDirError(f"{run_dir}: exists; use --resume to continue it or --overwrite to start over")
    run_dir.mkdir(parents=True, exist_ok=True)


@contextlib.contextmanager
def stop_on_signals(log: Callable[[str], None]) -> Iterator[threading.Event]:
    """An event set by the first SIGINT/SIGTERM (the loop then saves a checkpoint and returns); a second SIGINT
    interrupts at once (``shutdown.ShutdownSignals`` with ``interrupt_again``). Outside the main thread nothing is
    installed."""
    signals = ShutdownSignals("rtc-train", signals=(signal.SIGINT, signal.SIGTERM), watch_parent=False,
                              interrupt_again=True, on_request=lambda reason: log(
                                  f"{reason}: stopping after this step with a checkpoint (Ctrl-C again: at once)"))
    if threading.current_thread() is not threading.main_thread():
        yield signals.requested
        return
    with signals:
        yield signals.requested


def _progress(total: int, initial: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, unit="step", dynamic_ncols=True,
                mininterval=1.0 if sys.stderr.isatty() else 30.0, desc="rtc-train")


class _Run:
    """One invocation of the loop: the compiled step, the log, the budget."""

    def __init__(self, setup: RunSetup, cfg: TrainConfig, run_dir: pathlib.Path, log: Callable[[str], None]) -> None:
        self.setup, self.cfg, self.run_dir, self.log = setup, cfg, run_dir, log
        self.tx = make_optimizer(cfg.optimizer, cfg.loop.num_steps)
        self.lr = learning_rate(cfg.optimizer, cfg.loop.num_steps)
        self.train_step = make_train_step(setup, cfg, self.tx)
        self.eval_loss = make_eval_loss(setup, cfg)
        self.loss_log = LossLog(run_dir / LOSS_CSV)
        self.meta = {"fingerprint": setup.fingerprint(cfg), "config": cfg.to_dict(), "seed": cfg.loop.seed,
                     "batch_size": cfg.loop.batch_size, "num_samples": len(setup.train_set)}

    def start_state(self, resume: bool) -> tuple[ckpt.TrainState, float]:
        """(state, elapsed seconds already spent) — from the newest checkpoint when resuming."""
        fresh = initial_state(self.setup, self.cfg, self.tx)
        steps = ckpt.complete_steps(self.run_dir)
        if not resume or not steps:
            self.loss_log.truncate_after(-1)
            return fresh, 0.0
        meta = ckpt.read_meta(self.run_dir, steps[-1])
        if meta.get("fingerprint") != self.meta["fingerprint"]:
            changed = sorted(f"{s}.{k}" for s, sec in self.meta["config"].items() for k, v in sec.items()
                             if meta.get("config", {}).get(s, {}).get(k) != v and k != "time_budget_s")
            what = f"config keys {changed}" if changed else "the dataset or the tokenizer"
            raise ckpt.ResumeError(f"{ckpt.step_dir(self.run_dir, steps[-1])}: {what} changed since this checkpoint; "
                                   "use --overwrite to start over")
        state = ckpt.restore_checkpoint(self.run_dir, steps[-1], fresh)
        self.log(f"resuming from step {steps[-1]}")
        return jax.tree.map(jnp.asarray, state), self.loss_log.truncate_after(steps[-1])

    def save(self, state: ckpt.TrainState) -> None:
        ckpt.save_checkpoint(self.run_dir, state, norm_stats=self.setup.norm_stats, asset_id=self.cfg.data.asset_id,
                             meta=self.meta, keep=self.cfg.loop.keep_checkpoints)
        plot_loss(self.loss_log, self.run_dir / LOSS_PNG, title=f"rtc-train {self.run_dir.name}")

    def validate(self, state: ckpt.TrainState, step: int, elapsed_s: float) -> float | None:
        val = validation_loss(self.eval_loss, ckpt.inference_params(state), self.setup.val_set, self.cfg)
        if val is not None:
            self.loss_log.append(LossRow(step, "val", val, elapsed_s=elapsed_s))
        return val


def run_loop(run: _Run, state: ckpt.TrainState, *, spent_s: float, started: float, progress: bool,
             time_budget_s: float, stop_at: int | None,
             interrupted: threading.Event) -> tuple[ckpt.TrainState, float, float | None, bool]:
    """Steps until ``num_steps``, ``stop_at``, the budget (``started`` on the monotonic clock) or ``interrupted``;
    returns (state, last train loss, last val loss, completed)."""
    loop = run.cfg.loop
    step = int(state.step)
    infos: list[dict] = []
    train_loss, val_loss = float("nan"), None
    bar = _progress(loop.num_steps, step, progress)
    try:
        while step < loop.num_steps:
            batch = run.setup.train_set.batch(batch_indices(loop.seed, step, len(run.setup.train_set), loop.batch_size))
            state, info = run.train_step(state, batch)
            step += 1
            infos.append(info)
            bar.update(1)
            elapsed = spent_s + time.monotonic() - started
            if step % loop.log_every == 0 or step == loop.num_steps:
                got = jax.device_get(infos)
                train_loss = float(np.mean([i["loss"] for i in got]))
                if not np.isfinite(train_loss):
                    raise FloatingPointError(f"training loss became {train_loss} at step {step}; lower optimizer.peak_lr")
                run.loss_log.append(LossRow(step, "train", train_loss, float(np.mean([i["grad_norm"] for i in got])),
                                            float(run.lr(step - 1)), elapsed))
                bar.set_postfix(loss=f"{train_loss:.4f}")
                infos = []
            if loop.eval_every and (step % loop.eval_every == 0 or step == loop.num_steps):
                val_loss = run.validate(state, step, elapsed)
            over_budget = time_budget_s > 0 and time.monotonic() - started >= time_budget_s
            stop = step < loop.num_steps and (over_budget or step == stop_at or interrupted.is_set())
            if step % loop.save_every == 0 or step == loop.num_steps or stop:
                run.save(state)
            if stop:
                why = f"time budget of {time_budget_s:.0f} s reached" if over_budget else "stopped"
                run.log(f"{why} at step {step}/{loop.num_steps}; checkpoint saved, rerun with --resume to continue")
                if infos:  # steps since the last log row: their mean is the latest training loss (not logged)
                    train_loss = float(np.mean([i["loss"] for i in jax.device_get(infos)]))
                return state, train_loss, val_loss, False
    finally:
        bar.close()
    return state, train_loss, val_loss, True


def fit(cfg: TrainConfig, data_root: str | pathlib.Path, run_dir: str | pathlib.Path, *, resume: bool = False,
        overwrite: bool = False, progress: bool = True, stop_at: int | None = None, command: str = "",
        log: Callable[[str], None] = print) -> FitResult:
    """Train a π0.5 on the dataset at ``data_root`` into ``run_dir`` (see the module docstring).

    ``stop_at``: stop (with a resumable checkpoint) once this many steps are done, before ``loop.num_steps``;
    ``command`` is recorded in the policy section (``trained_by``).
    """
    started = time.monotonic()
    run_dir = pathlib.Path(run_dir)
    open_run_dir(run_dir, resume=resume, overwrite=overwrite)
    (run_dir / CONFIG_FILE).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    setup = prepare_run(cfg, data_root, run_dir, log=log)
    (run_dir / SPLIT_FILE).write_text(json.dumps({"data": str(pathlib.Path(data_root).resolve()),
                                                  "train": setup.train_episodes, "val": setup.val_episodes}))
    run = _Run(setup, cfg, run_dir, log)
    state, spent_s = run.start_state(resume)
    budget = cfg.loop.time_budget_s
    with stop_on_signals(log) as interrupted:
        state, train_loss, val_loss, completed = run_loop(run, state, spent_s=spent_s, started=started,
                                                          progress=progress, time_budget_s=budget, stop_at=stop_at,
                                                          interrupted=interrupted)
    info = setup.dataset.info
    steps = f"{int(state.step)}/{cfg.loop.num_steps}"
    record = {"trained_by": command, "trained_steps": steps, "completed": completed,
              "dataset": str(pathlib.Path(data_root).resolve()), "dataset_generator": dict(info.generator),
              "collected_by": generator_command(info, data_root), "action_rate_hz": info.fps,
              "prompt": info.prompts[0] if info.prompts else "", "train_loss": train_loss, "val_loss": val_loss}
    policy_file = export_policy(run_dir, ckpt.inference_params(state), norm_stats=setup.norm_stats,
                                tokenizer_path=setup.tokenizer_path, policy=setup.policy_config, record=record,
                                extra_files={EXPORT_CONFIG_FILE: run_dir / CONFIG_FILE, LOSS_PNG: run_dir / LOSS_PNG})
    log(f"exported the policy after {steps} steps: {policy_file}")
    return FitResult(run_dir, int(state.step), completed, policy_file, train_loss, val_loss,
                     spent_s + time.monotonic() - started, jax.device_get(ckpt.inference_params(state)))
