"""The trained policy, ready for the inference node: ``<run>/pi05/`` with an openpi-layout checkpoint, the
tokenizer and the policy section.

    <run>/pi05/params/                          orbax, the EMA weights (``load_pi05`` reads it)
    <run>/pi05/assets/<asset_id>/norm_stats.json
    <run>/pi05/tokenizer.model                  SentencePiece, PaliGemma's special ids
    <run>/pi05/policy.yaml                      the policy section (``policy/pi05/policy_section.py``), with
                                                ``checkpoint: .`` and ``tokenizer: tokenizer.model``
    <run>/pi05/training.yaml                    how it was made: the command, the steps done of those planned,
                                                the dataset (and the command that collects it), its action rate
                                                and prompt, the losses
    <run>/pi05/training_config.yaml  loss.png   the training config and the loss curve of the run

The section names every setting that changes the actions (horizon, token budget, dtype, normalisation, asset
id, delta mask, state padding, camera slots and their frame size). Its paths are relative to the file, so the
folder can be moved or committed as a whole; ``load_policy_section`` resolves them.
"""

from __future__ import annotations

import dataclasses
import pathlib
import shutil
from typing import Any

import yaml

from rtc_controller.policy.pi05.norm_stats import NormStats
from rtc_controller.policy.pi05.params import Params
from rtc_controller.policy.pi05.policy_section import Pi05PolicyConfig, save_policy_section
from rtc_controller.train.checkpoints import write_inference_checkpoint
from rtc_controller.train.tokenizer import TOKENIZER_FILE

EXPORT_DIR = "pi05"
POLICY_FILE = "policy.yaml"
RECORD_FILE = "training.yaml"


def export_policy(run_dir: str | pathlib.Path, params: Params, *, norm_stats: dict[str, NormStats],
                  tokenizer_path: pathlib.Path, policy: Pi05PolicyConfig, record: dict[str, Any],
                  extra_files: dict[str, pathlib.Path] | None = None) -> pathlib.Path:
    """Write ``<run>/pi05/`` (replacing an older export) atomically; returns the policy section's path.
    ``extra_files``: name in the export -> file to copy there (the loss curve, the training config), when it exists."""
    out = pathlib.Path(run_dir) / EXPORT_DIR
    tmp = out.with_name(f".{EXPORT_DIR}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    write_inference_checkpoint(tmp, params, norm_stats, policy.asset_id)
    shutil.copyfile(tokenizer_path, tmp / TOKENIZER_FILE)
    save_policy_section(tmp / POLICY_FILE, dataclasses.replace(policy, checkpoint_dir=".",
                                                               tokenizer_path=TOKENIZER_FILE))
    (tmp / RECORD_FILE).write_text(yaml.safe_dump(record, sort_keys=False))
    for name, src in (extra_files or {}).items():
        if pathlib.Path(src).is_file():
            shutil.copyfile(src, tmp / name)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out / POLICY_FILE


def read_record(export_dir: str | pathlib.Path) -> dict[str, Any]:
    """``training.yaml`` of an export."""
    return yaml.safe_load((pathlib.Path(export_dir) / RECORD_FILE).read_text())
