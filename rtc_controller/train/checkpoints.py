"""Resumable training checkpoints in openpi's layout.

``<run>/checkpoints/<step>/`` holds, as openpi's ``training/checkpoints.py`` writes it:
- ``params/``: the weights for inference (the EMA when enabled), orbax, training layout (keys end in
  ``value``), loadable by ``load_pi05``;
- ``assets/<asset_id>/norm_stats.json``;
- ``train_state/``: what resuming needs besides ``params/``: ``state.npz`` (the raw weights when ``params/``
  holds the EMA, the optimiser state's leaves) and ``meta.json`` (step, the run's fingerprint, data order).

A checkpoint is written into a hidden temporary folder and renamed when complete, so a killed run never leaves
a half-written one; ``latest_step`` only sees complete ones. The data order and every random draw are pure
functions of (seed, step), so a resumed run continues exactly as an uninterrupted one.
"""

from __future__ import annotations

import json
import pathlib
import shutil
from typing import Any, NamedTuple

import jax
import numpy as np

from rtc_controller.policy.pi05.checkpoint import load_params, save_params
from rtc_controller.policy.pi05.norm_stats import NORM_STATS_FILE, NormStats, save_norm_stats
from rtc_controller.policy.pi05.params import Params, flatten, unflatten

CHECKPOINTS_DIR = "checkpoints"
TRAIN_STATE_DIR = "train_state"
STATE_FILE = "state.npz"
META_FILE = "meta.json"
RAW_PREFIX = "params/"
OPT_PREFIX = "opt/"


class ResumeError(ValueError):
    """A checkpoint that cannot be resumed (missing, incomplete, or from a different run)."""


class TrainState(NamedTuple):
    """Everything that changes during training (a pytree; ``ema`` is None without an EMA)."""

    step: Any  # int32 scalar: optimiser steps done
    params: Params
    opt_state: Any
    ema: Params | None


def inference_params(state: TrainState) -> Params:
    """What ``params/`` holds: the EMA when there is one (openpi's ``_split_params``)."""
    return state.ema if state.ema is not None else state.params


def step_dir(run_dir: str | pathlib.Path, step: int) -> pathlib.Path:
    return pathlib.Path(run_dir) / CHECKPOINTS_DIR / str(int(step))


def complete_steps(run_dir: str | pathlib.Path) -> list[int]:
    """Steps with a complete checkpoint, ascending."""
    root = pathlib.Path(run_dir) / CHECKPOINTS_DIR
    if not root.is_dir():
        return []
    return sorted(int(p.name) for p in root.iterdir()
                  if p.name.isdigit() and (p / TRAIN_STATE_DIR / META_FILE).is_file())


def write_inference_checkpoint(directory: pathlib.Path, params: Params, norm_stats: dict[str, NormStats],
                               asset_id: str) -> None:
    """``params/`` (orbax, training layout) and ``assets/<asset_id>/norm_stats.json`` under ``directory``."""
    save_params(directory / "params", jax.device_get(params), layout="training")
    save_norm_stats(directory / "assets" / asset_id / NORM_STATS_FILE, norm_stats)


def save_checkpoint(run_dir: str | pathlib.Path, state: TrainState, *, norm_stats: dict[str, NormStats],
                    asset_id: str, meta: dict[str, Any], keep: int) -> pathlib.Path:
    """Write ``checkpoints/<step>/`` atomically and delete all but the newest ``keep`` complete checkpoints."""
    step = int(state.step)
    final = step_dir(run_dir, step)
    tmp = final.parent / f".tmp_{step}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    host = jax.device_get(state)
    write_inference_checkpoint(tmp, inference_params(host), norm_stats, asset_id)
    arrays = {OPT_PREFIX + f"{i:05d}": np.asarray(x) for i, x in enumerate(jax.tree.leaves(host.opt_state))}
    if host.ema is not None:
        arrays.update({RAW_PREFIX + k: np.asarray(v) for k, v in flatten(host.params).items()})
    (tmp / TRAIN_STATE_DIR).mkdir()
    np.savez(tmp / TRAIN_STATE_DIR / STATE_FILE, **arrays)
    (tmp / TRAIN_STATE_DIR / META_FILE).write_text(json.dumps({**meta, "step": step, "ema": host.ema is not None},
                                                              indent=2))
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    for old in complete_steps(run_dir)[:-keep]:
        shutil.rmtree(step_dir(run_dir, old), ignore_errors=True)
    return final


def read_meta(run_dir: str | pathlib.Path, step: int) -> dict[str, Any]:
    return json.loads((step_dir(run_dir, step) / TRAIN_STATE_DIR / META_FILE).read_text())


def restore_checkpoint(run_dir: str | pathlib.Path, step: int, template: TrainState) -> TrainState:
    """The state saved at ``step``, shaped like ``template`` (a freshly initialised state of the same run)."""
    directory = step_dir(run_dir, step)
    meta = read_meta(run_dir, step)
    if meta["ema"] != (template.ema is not None):
        raise ResumeError(f"{directory}: saved with ema={meta['ema']}, the config says ema={template.ema is not None}")
    saved = load_params(directory / "params")
    with np.load(directory / TRAIN_STATE_DIR / STATE_FILE) as z:
        arrays = {k: z[k] for k in z.files}
    if template.ema is not None:
        ema = _like(saved, template.params, directory / "params")
        raw = {k[len(RAW_PREFIX):]: v for k, v in arrays.items() if k.startswith(RAW_PREFIX)}
        params = _like(unflatten(raw), template.params, directory / TRAIN_STATE_DIR)
    else:
        ema, params = None, _like(saved, template.params, directory / "params")
    leaves, treedef = jax.tree.flatten(template.opt_state)
    opt = [arrays[OPT_PREFIX + f"{i:05d}"] for i in range(sum(k.startswith(OPT_PREFIX) for k in arrays))]
    if len(opt) != len(leaves) or any(np.shape(a) != np.shape(b) for a, b in zip(opt, leaves, strict=True)):
        raise ResumeError(f"{directory / TRAIN_STATE_DIR}: optimiser state does not match this run's optimiser")
    opt = [np.asarray(a, np.asarray(b).dtype) for a, b in zip(opt, leaves, strict=True)]
    return TrainState(step=np.int32(meta["step"]), params=params, opt_state=jax.tree.unflatten(treedef, opt), ema=ema)


def _like(tree: Params, template: Params, where: pathlib.Path) -> Params:
    got, want = flatten(tree), flatten(template)
    if set(got) != set(want) or any(got[k].shape != want[k].shape for k in want):
        missing = sorted(set(want) - set(got))[:3]
        raise ResumeError(f"{where}: parameters do not match this run's model (e.g. missing {missing})")
    return unflatten({k: np.asarray(got[k], np.asarray(want[k]).dtype) for k in want})
