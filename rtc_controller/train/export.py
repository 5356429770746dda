"""The trained policy, ready for the inference node: ``<run>/pi05/`` with an openpi-layout checkpoint, the
tokenizer and the policy section of the config.

    <run>/pi05/params/                          orbax, the EMA weights (``load_pi05`` reads it)
    <run>/pi05/assets/<asset_id>/norm_stats.json
    <run>/pi05/tokenizer.model                  SentencePiece, PaliGemma's special ids
    <run>/pi05/policy.yaml                      the policy section (paths relative to this file)

The policy section names every setting that changes the actions (``Pi05PolicyConfig``'s fields: horizon,
token budget, dtype, normalisation, asset id, delta mask, state padding, action names) plus what the
inference node must match (camera slots, action rate, the training prompt), and how it was made (the command,
the steps done of those planned). ``load_policy_section`` reads it
back; the folder can be moved or committed as a whole.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import shutil
from dataclasses import dataclass
from typing import Any

import yaml

from rtc_controller.config_check import ConfigError, check_known_keys, load_yaml
from rtc_controller.policy.pi05.norm_stats import NormStats
from rtc_controller.policy.pi05.params import Params
from rtc_controller.policy.pi05.policy import Pi05PolicyConfig
from rtc_controller.train.checkpoints import write_inference_checkpoint
from rtc_controller.train.tokenizer import TOKENIZER_FILE

EXPORT_DIR = "pi05"
POLICY_FILE = "policy.yaml"
NODE_KEYS = ("policy", "camera_slots", "action_rate_hz", "prompt", "trained_by", "trained_steps")
PATH_KEYS = ("checkpoint_dir", "tokenizer_path")


@dataclass(frozen=True)
class PolicySection:
    """The policy section: the π0.5 settings and what the inference node must be configured with."""

    pi05: Pi05PolicyConfig
    camera_slots: tuple[str, ...]
    action_rate_hz: float
    prompt: str
    trained_by: str = ""  # the command that made it
    trained_steps: str = ""  # "<steps done>/<steps planned>": less than planned when the run stopped early

    def to_yaml_dict(self, relative_to: pathlib.Path) -> dict[str, Any]:
        body: dict[str, Any] = {"policy": "pi05"}
        for f in dataclasses.fields(self.pi05):
            v = getattr(self.pi05, f.name)
            if f.name in PATH_KEYS:
                v = os.path.relpath(pathlib.Path(v).resolve(), relative_to.resolve())
            body[f.name] = list(v) if isinstance(v, tuple) else v
        body.update(camera_slots=list(self.camera_slots), action_rate_hz=self.action_rate_hz, prompt=self.prompt,
                    trained_by=self.trained_by, trained_steps=self.trained_steps)
        return body


def write_policy_section(path: str | pathlib.Path, section: PolicySection) -> pathlib.Path:
    path = pathlib.Path(path)
    header = "# π0.5 policy section written by rtc-train; paths are relative to this file.\n"
    path.write_text(header + yaml.safe_dump(section.to_yaml_dict(path.parent), sort_keys=False, width=120))
    return path


def load_policy_section(path: str | pathlib.Path) -> PolicySection:
    """Read a policy section; relative paths resolve against the file's folder. Unknown keys are refused."""
    path = pathlib.Path(path)
    raw = load_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping")
    fields = [f.name for f in dataclasses.fields(Pi05PolicyConfig)]
    check_known_keys(raw, [*fields, *NODE_KEYS], where=str(path))
    if raw.get("policy", "pi05") != "pi05":
        raise ConfigError(f"{path}: policy {raw.get('policy')!r} is not 'pi05'")
    pi05 = {k: raw[k] for k in fields if k in raw}
    for k in PATH_KEYS:
        if k in pi05:
            pi05[k] = str((path.parent / str(pi05[k])).resolve())
    pi05 = {k: tuple(v) if isinstance(v, list) else v for k, v in pi05.items()}
    try:
        return PolicySection(pi05=Pi05PolicyConfig(**pi05), camera_slots=tuple(raw.get("camera_slots", ())),
                             action_rate_hz=float(raw["action_rate_hz"]), prompt=str(raw.get("prompt", "")),
                             trained_by=str(raw.get("trained_by", "")),
                             trained_steps=str(raw.get("trained_steps", "")))
    except KeyError as e:
        raise ConfigError(f"{path}: missing key {e.args[0]!r}") from None
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{path}: {e}") from None


def export_policy(run_dir: str | pathlib.Path, params: Params, *, norm_stats: dict[str, NormStats],
                  tokenizer_path: pathlib.Path, section: PolicySection) -> pathlib.Path:
    """Write ``<run>/pi05/`` (replacing an older export); returns the policy section's path."""
    out = pathlib.Path(run_dir) / EXPORT_DIR
    tmp = out.with_name(f".{EXPORT_DIR}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    write_inference_checkpoint(tmp, params, norm_stats, section.pi05.asset_id)
    shutil.copyfile(tokenizer_path, tmp / TOKENIZER_FILE)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    final = dataclasses.replace(section, pi05=dataclasses.replace(
        section.pi05, checkpoint_dir=str(out), tokenizer_path=str(out / TOKENIZER_FILE)))
    return write_policy_section(out / POLICY_FILE, final)
