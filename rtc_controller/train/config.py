"""The training configuration (``config/train/*.yaml``): model size, data, tokenizer, optimiser, loop.

Every section is a frozen dataclass validated on construction; unknown or misspelt keys are refused with the
nearest valid name (``config_check``). ``--set section.key=value`` overrides apply before validation.

Units: steps are optimiser steps, except ``data.horizon`` (action steps); times in seconds.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
from dataclasses import dataclass, field
from typing import Any

from rtc_controller.config_check import ConfigError, check_known_keys, load_yaml
from rtc_controller.policy.pi05.norm_stats import NORM_MODES
from rtc_controller.policy.pi05.policy_section import make_bool_mask
from rtc_controller.policy.pi05.state_map import Segment, VectorMap, segments_from_yaml, segments_to_yaml
from rtc_controller.train.model_config import ModelSize
from rtc_controller.train.optim import OptimizerConfig


@dataclass(frozen=True)
class DataConfig:
    """What the model learns from the dataset."""

    horizon: int = 50  # H: actions per chunk [action steps]
    normalization: str = "quantile"  # quantile (π0.5) | mean_std
    delta_action_mask: tuple[bool, ...] = ()  # True: that action dim is learnt relative to the state (YAML: booleans,
    # or openpi's make_bool_mask ints, e.g. [3, -4, 3, -4]: each arm's x, y, z relative, rotation and gripper absolute)
    state: tuple[Segment, ...] = ()  # the model's state vector: the policy section's segments (YAML: [{names: [...],
    # as: identity}, {zeros: 3}, ...]); () = the recorded state as it is. Delta dim i adds state dim i (openpi).
    state_pad_dim: int | None = None  # zero-pad the state to this many dims (None: as recorded)
    val_fraction: float = 0.1  # episodes held out for the validation loss
    successful_only: bool = True  # train on successful episodes only
    asset_id: str = "rtc"  # norm stats go to assets/<asset_id>/norm_stats.json

    def __post_init__(self) -> None:
        if self.horizon < 2:
            raise ValueError(f"data.horizon must be >= 2 action steps, got {self.horizon}")
        if self.normalization not in NORM_MODES:
            raise ValueError(f"data.normalization must be one of {NORM_MODES}, got {self.normalization!r}")
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"data.val_fraction must be in [0, 1), got {self.val_fraction}")
        if not self.asset_id or "/" in self.asset_id:
            raise ValueError(f"data.asset_id must be a non-empty name without '/', got {self.asset_id!r}")
        if self.state_pad_dim is not None and self.state_pad_dim < 1:
            raise ValueError(f"data.state_pad_dim must be positive or null, got {self.state_pad_dim}")
        if self.state and self.state_pad_dim is not None and self.state_pad_dim < VectorMap(self.state).dim:
            raise ValueError(f"data.state_pad_dim {self.state_pad_dim} < the state segments' {VectorMap(self.state).dim} dims")

    def state_vector(self, names: tuple[str, ...]):
        """recorded states [..., len(names)] -> the model's state vectors (None: the recorded state as it is)."""
        if not self.state:
            return None
        vmap = VectorMap(self.state)
        vmap.check_names(names, what="data.state")
        return lambda states: vmap.encode(states, names)


@dataclass(frozen=True)
class TokenizerConfig:
    vocab_size: int = 400  # upper bound on SentencePiece pieces
    max_token_len: int = 0  # token budget of the prompt; 0: the longest training prompt rounded up to 8

    def __post_init__(self) -> None:
        if self.vocab_size < 8:
            raise ValueError(f"tokenizer.vocab_size must be >= 8, got {self.vocab_size}")
        if self.max_token_len < 0:
            raise ValueError(f"tokenizer.max_token_len must be >= 0, got {self.max_token_len}")


@dataclass(frozen=True)
class LoopConfig:
    num_steps: int = 3000
    batch_size: int = 32
    seed: int = 0  # model init, data order, noise and flow times all derive from it
    log_every: int = 25  # loss.csv row (mean over the interval)
    eval_every: int = 250  # validation loss (EMA weights, fixed noise); 0: never
    save_every: int = 500  # resumable checkpoint
    keep_checkpoints: int = 2  # the newest this many stay on disk (the final one always)
    time_budget_s: float = 0.0  # stop (with a resumable checkpoint) after this long; 0: no limit

    def __post_init__(self) -> None:
        for name in ("num_steps", "batch_size", "log_every", "save_every", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ValueError(f"loop.{name} must be >= 1, got {getattr(self, name)}")
        if self.eval_every < 0:
            raise ValueError(f"loop.eval_every must be >= 0, got {self.eval_every}")
        if not (math.isfinite(self.time_budget_s) and self.time_budget_s >= 0):
            raise ValueError(f"loop.time_budget_s must be finite and >= 0, got {self.time_budget_s}")


@dataclass(frozen=True)
class ObjectiveConfig:
    """rtc_training_max_delay: training-time RTC (``objective.py``): a clean prefix of up to this many actions
    [action steps] per sample (0: openpi's objective); init_from: start from the weights, norm stats and tokenizer
    of an exported policy (its folder; '' = random weights): fine-tuning, e.g. training-time RTC on a trained
    checkpoint."""

    rtc_training_max_delay: int = 0
    init_from: str = ""

    def __post_init__(self) -> None:
        if self.rtc_training_max_delay < 0:
            raise ValueError(f"objective.rtc_training_max_delay must be >= 0, got {self.rtc_training_max_delay}")


@dataclass(frozen=True)
class TrainConfig:
    model: ModelSize = field(default_factory=ModelSize)
    data: DataConfig = field(default_factory=DataConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    loop: LoopConfig = field(default_factory=LoopConfig)

    def __post_init__(self) -> None:
        if self.objective.rtc_training_max_delay >= self.data.horizon:
            raise ValueError(f"objective.rtc_training_max_delay {self.objective.rtc_training_max_delay} must be below "
                             f"data.horizon {self.data.horizon}")  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["data"]["delta_action_mask"] = list(self.data.delta_action_mask)
        out["data"]["state"] = segments_to_yaml(self.data.state)
        return out


SECTIONS: dict[str, type] = {f.name: f.default_factory().__class__ for f in dataclasses.fields(TrainConfig)}


def _coerce(kind: str, value: Any, where: str) -> Any:
    """``value`` as the field type ``kind`` (the annotation's text); YAML reads ``1e-3`` as a string."""
    if value is None and kind.endswith("| None"):
        return None
    base = kind.removesuffix(" | None")
    if base == "float" and not isinstance(value, bool):
        try:
            return float(value)
        except (TypeError, ValueError):
            pass
    elif base == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    elif base == "bool" and isinstance(value, bool):
        return value
    elif base == "str" and isinstance(value, str):
        return value
    elif base.startswith("tuple[Segment") and isinstance(value, (list, tuple)):
        return segments_from_yaml(value, where=where)
    elif base.startswith("tuple[bool") and isinstance(value, (list, tuple)):
        if all(isinstance(v, bool) for v in value):
            return tuple(value)
        if all(isinstance(v, int) and not isinstance(v, bool) and v != 0 for v in value):
            return make_bool_mask(*value)  # openpi's make_bool_mask: [3, -4] -> 3 × True, 4 × False
    raise ConfigError(f"{where}: expected {kind}, got {value!r}")


def _section(cls: type, raw: Any, where: str) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(raw).__name__}")
    kinds = {f.name: str(f.type) for f in dataclasses.fields(cls)}
    check_known_keys(raw, kinds, where=where)
    values = {k: _coerce(kinds[k], v, f"{where}.{k}") for k, v in raw.items()}
    try:
        return cls(**values)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: {e}") from None


def config_from_dict(raw: Any, *, where: str = "train config") -> TrainConfig:
    """A TrainConfig from a mapping of sections (missing sections/keys take the defaults)."""
    raw = raw or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping of sections {sorted(SECTIONS)}")
    check_known_keys(raw, SECTIONS, where=where)
    return TrainConfig(**{name: _section(cls, raw.get(name), f"{where}: {name}") for name, cls in SECTIONS.items()})


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``["loop.num_steps=100", …]`` applied onto the raw sections (values parsed as YAML)."""
    import yaml

    out = {k: dict(v or {}) for k, v in (raw or {}).items()}
    for item in overrides:
        target, sep, value = item.partition("=")
        section, dot, key = target.partition(".")
        if not sep or not dot or not section or not key:
            raise ConfigError(f"override {item!r} is not SECTION.KEY=VALUE")
        check_known_keys({section: None}, SECTIONS, where=f"override {item!r}")
        out.setdefault(section, {})[key] = yaml.safe_load(value) if value.strip() else ""
    return out


def load_train_config(path: str | pathlib.Path | None, overrides: list[str] = ()) -> TrainConfig:
    """Read ``path`` (None: all defaults), apply ``overrides``, validate."""
    raw = load_yaml(path) if path is not None else {}
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections {sorted(SECTIONS)}")
    return config_from_dict(apply_overrides(raw or {}, list(overrides)), where=str(path or "train config"))
