"""The policy section: every openpi training setting that changes a π0.5 checkpoint's actions, in one validated
place (a YAML file, e.g. ``config/policy/*.yaml``), read by the inference node (``policy_config``),
``rtc-replay`` and ``rtc-policy-check``.

An openpi checkpoint holds only ``params/`` and ``assets/<asset_id>/norm_stats.json``; the rest is fixed by the
lab's ``TrainConfig``. Each field below names the openpi setting it mirrors:

==================== ======================================================================================
field                openpi
==================== ======================================================================================
checkpoint           the ``checkpoint_dir`` given to ``policy_config.create_trained_policy``
tokenizer            ``PaligemmaTokenizer``'s ``gs://big_vision/paligemma_tokenizer.model`` (a local copy)
action_horizon       ``Pi0Config.action_horizon`` (the training horizon; 50 for π0.5, 10 for pi05_libero)
max_token_len        ``Pi0Config.max_token_len`` (200 for π0.5)
num_steps            ``Policy(sample_kwargs={"num_steps": …})`` (``sample_actions`` default 10)
dtype                ``Pi0Config.dtype``; ``create_trained_policy`` restores the weights as bfloat16
discrete_state_input ``Pi0Config.discrete_state_input`` (True: ``Task: …, State: …;\\nAction: ``; False: the
                     prompt alone, as ``pi05_libero``)
normalization        ``DataConfig.use_quantile_norm``: ``quantile`` (π0.5's default) or ``z-score``
asset_id             ``DataConfig.asset_id`` / ``AssetsConfig.asset_id``: ``assets/<asset_id>/norm_stats.json``
delta_action_mask    ``DeltaActions`` / ``AbsoluteActions`` mask; ints are ``make_bool_mask`` arguments
                     ([6, -1, 6, -1] -> 6 × True, False, 6 × True, False), or a list of booleans
state                what the lab's ``*Inputs`` put in ``data["state"]``: segments of robot-state names in a
                     representation (``state_map.py``); [] = the executor's state vector as it is
state_pad_dim        zero-padding of that state inside the lab's ``*Inputs`` (``transforms.pad_to_dim``)
actions              what the lab's ``*Outputs`` read from ``data["actions"]``, mapped back to the executor's
                     action names; [] = model action i -> action_names[i]
cameras              the lab's ``*Inputs`` image mapping: model slot (``base_0_rgb``, ``left_wrist_0_rgb``,
                     ``right_wrist_0_rgb``) -> {topic, resolution: [h, w]}; slots not listed are masked (as
                     ``LiberoInputs`` masks ``right_wrist_0_rgb``); {} = every slot on ``rtc/camera/<slot>``
lora                 ``gemma.get_config(variant).lora_configs["attn"]`` per expert: {paligemma, action_expert}
                     -> {alpha (null = rank, openpi's variants), rslora}
prompt_buckets       not openpi: prompt-length buckets of the prefix pass (null: 32, 64, … , max_token_len)
rtc_training_max_    not openpi: training-time RTC (LeRobot's ``rtc_training_max_delay``): the checkpoint was
delay                trained with a clean prefix of up to this many actions at flow time 0; > 0 allows
                     ``guidance_mode: trained``; 0 = an ordinary checkpoint
==================== ======================================================================================

``save_policy_section`` / ``load_policy_section`` round-trip a ``Pi05PolicyConfig``.
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import yaml

from rtc_controller import topics
from rtc_controller.action_space import action_names as default_action_names
from rtc_controller.config_check import ConfigError, check_known_keys, load_yaml
from rtc_controller.policy.pi05.config import DTYPES, IMAGE_KEYS, Dtype
from rtc_controller.policy.pi05.lora import LoraScaling, LoraSettings
from rtc_controller.policy.pi05.norm_stats import NORM_MODES, NormMode
from rtc_controller.policy.pi05.state_map import Segment, VectorMap, segments_from_yaml, segments_to_yaml

POLICY_CONFIG_DIR = "policy"  # bare names are looked up as config/policy/<name>(.yaml)


def make_bool_mask(*dims: int) -> tuple[bool, ...]:
    """openpi ``transforms.make_bool_mask``: (2, -2, 2) -> (True, True, False, False, True, True)."""
    return tuple(b for d in dims for b in ([True] * d if d > 0 else [False] * -d))


@dataclass(frozen=True)
class CameraSlot:
    """One model camera slot's source: topic ('' = ``rtc/camera/<slot>``) and frame size (h, w) [px] or None."""

    topic: str = ""
    resolution: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.resolution is not None:
            object.__setattr__(self, "resolution", tuple(int(x) for x in self.resolution))
            if len(self.resolution) != 2 or min(self.resolution) < 1:
                raise ValueError(f"camera resolution must be [height, width] in pixels, got {list(self.resolution)}")


@dataclass(frozen=True)
class Pi05PolicyConfig:
    """How to load and drive a π0.5 checkpoint on the rig (the policy section; module docstring for each field).

    checkpoint_dir / tokenizer_path: the YAML's ``checkpoint`` / ``tokenizer``. action_names: the executor's action
    names (the chunk's dims, in order; ``actions`` maps onto them; the observed state uses the same names).
    """

    checkpoint_dir: str
    tokenizer_path: str
    action_names: tuple[str, ...] = default_action_names("cartesian")
    asset_id: str | None = None
    action_horizon: int = 50
    max_token_len: int = 200
    num_steps: int = 10
    dtype: Dtype = "bfloat16"
    discrete_state_input: bool = True
    normalization: NormMode = "quantile"
    delta_action_mask: tuple[bool, ...] = ()
    state: tuple[Segment, ...] = ()
    state_pad_dim: int | None = None
    actions: tuple[Segment, ...] = ()
    cameras: Mapping[str, CameraSlot] = field(default_factory=dict)
    lora: LoraSettings = field(default_factory=LoraSettings)
    prompt_buckets: tuple[int, ...] | None = None
    rtc_training_max_delay: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "action_names", tuple(self.action_names))
        d = self.rtc_training_max_delay
        if isinstance(d, bool) or not isinstance(d, int) or not 0 <= d < self.action_horizon:
            raise ValueError(f"rtc_training_max_delay must be an int in [0, action_horizon = {self.action_horizon}), "
                             f"got {d!r}")  # fmt: skip
        object.__setattr__(self, "delta_action_mask", tuple(bool(b) for b in self.delta_action_mask))
        if not self.action_names or len(set(self.action_names)) != len(self.action_names):
            raise ValueError(f"action_names must be non-empty and unique, got {self.action_names}")
        for name in ("action_horizon", "max_token_len", "num_steps"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        if self.normalization not in NORM_MODES:
            raise ValueError(f"normalization must be one of {NORM_MODES}, got {self.normalization!r}")
        if self.state_pad_dim is not None and self.state_pad_dim <= 0:
            raise ValueError(f"state_pad_dim must be positive, got {self.state_pad_dim}")
        if self.state_pad_dim is not None and self.state_pad_dim < self.state_map.dim:
            raise ValueError(f"state_pad_dim {self.state_pad_dim} < the state vector's {self.state_map.dim} dims")
        unknown = sorted(set(self.cameras) - set(IMAGE_KEYS))
        if unknown:
            raise ValueError(f"cameras: unknown model slots {unknown}; π0.5 has {list(IMAGE_KEYS)}")
        self.state_map.check_names(self.action_names, what="state")
        self.action_map.check_names(self.action_names, what="actions", exactly=True)
        n = len(self.delta_action_mask)
        if n > min(self.state_dim, self.action_map.dim):
            raise ValueError(f"delta_action_mask has {n} entries but the state has {self.state_dim} dims and the "
                             f"actions {self.action_map.dim}: delta dim i adds state dim i")

    @property
    def state_map(self) -> VectorMap:
        return VectorMap(self.state) if self.state else VectorMap.identity(self.action_names)

    @property
    def action_map(self) -> VectorMap:
        return VectorMap(self.actions) if self.actions else VectorMap.identity(self.action_names)

    @property
    def state_dim(self) -> int:
        """Dims of the state vector the model was trained on (segments, then ``state_pad_dim``)."""
        return self.state_pad_dim or self.state_map.dim

    @property
    def camera_slots(self) -> tuple[str, ...]:
        """The model slots in the prefix (IMAGE_KEYS order)."""
        return tuple(k for k in IMAGE_KEYS if not self.cameras or k in self.cameras)

    @property
    def camera_topics(self) -> dict[str, str]:
        """slot -> camera topic of each listed camera (its ``topic``, else ``rtc/camera/<slot>``); {} when the
        section lists none (the node's ``camera_slots`` decide)."""
        return {slot: c.topic or topics.camera_topic(slot) for slot, c in self.cameras.items()}


# --- YAML ------------------------------------------------------------------------------------------------

_RENAMED = {"checkpoint": "checkpoint_dir", "tokenizer": "tokenizer_path"}  # YAML key -> field
_FIELD_TO_YAML = {v: k for k, v in _RENAMED.items()}


def _delta_mask(value: Any, where: str) -> tuple[bool, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, int) for v in value):
        raise ConfigError(f"{where}: delta_action_mask must be make_bool_mask ints like [6, -1] or booleans, "
                          f"got {value!r}")
    if all(isinstance(v, bool) for v in value):
        return tuple(value)
    if any(isinstance(v, bool) for v in value) or 0 in value:
        raise ConfigError(f"{where}: delta_action_mask mixes booleans and ints or has a 0: {value!r}")
    return make_bool_mask(*value)


def _cameras(value: Any, where: str) -> dict[str, CameraSlot]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: cameras must map model slots to {{topic, resolution}}, got {value!r}")
    check_known_keys(value, IMAGE_KEYS, where=f"{where}: cameras")
    out = {}
    for slot, entry in value.items():
        entry = entry or {}
        check_known_keys(entry, ("topic", "resolution"), where=f"{where}: cameras.{slot}")
        out[slot] = CameraSlot(str(entry.get("topic", "")), entry.get("resolution"))
    return out


def _lora(value: Any, where: str) -> LoraSettings:
    value = value or {}
    check_known_keys(value, ("paligemma", "action_expert"), where=f"{where}: lora")
    parts = {}
    for expert, entry in value.items():
        entry = entry or {}
        check_known_keys(entry, ("alpha", "rslora"), where=f"{where}: lora.{expert}")
        parts[expert] = LoraScaling(entry.get("alpha"), bool(entry.get("rslora", False)))
    return LoraSettings(**parts)


def policy_section_from_mapping(raw: Mapping[str, Any], *, where: str,
                                base_dir: pathlib.Path | None = None) -> Pi05PolicyConfig:
    """A validated config from the section's mapping (ConfigError naming ``where``, the key and the value).

    Relative ``checkpoint`` / ``tokenizer`` paths are resolved against ``base_dir``.
    """
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping of policy settings, got {type(raw).__name__}")
    known = {_FIELD_TO_YAML.get(f.name, f.name) for f in fields(Pi05PolicyConfig)}
    check_known_keys(raw, known, where=where)
    kw: dict[str, Any] = {}
    for key, value in raw.items():
        name = _RENAMED.get(key, key)
        if name in ("checkpoint_dir", "tokenizer_path"):
            path = pathlib.Path(str(value)).expanduser()
            value = str(path if path.is_absolute() or base_dir is None else (base_dir / path).resolve())
        elif name == "delta_action_mask":
            value = _delta_mask(value, where)
        elif name in ("state", "actions"):
            value = segments_from_yaml(value or [], where=f"{where}: {key}")
        elif name == "cameras":
            value = _cameras(value, where)
        elif name == "lora":
            value = _lora(value, where)
        elif name in ("action_names", "prompt_buckets") and value is not None:
            value = tuple(value)
        kw[name] = value
    for required in ("checkpoint_dir", "tokenizer_path"):
        if required not in kw:
            raise ConfigError(f"{where}: missing key {_FIELD_TO_YAML[required]!r}")
    try:
        return Pi05PolicyConfig(**kw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def resolve_policy_config_path(name: str) -> pathlib.Path:
    """A path as given, or a bare name looked up as ``config/policy/<name>`` (``.yaml`` optional), then as the
    policy of a trained model shipped with the package, ``models/<name>/policy.yaml`` (e.g. ``twin_pi05``)."""
    path = pathlib.Path(name).expanduser()
    if path.is_file() or path.parent != pathlib.Path("."):
        return path
    from rtc_controller.config_files import config_path, model_path

    for candidate in (name, f"{name}.yaml"):
        try:
            return config_path(f"{POLICY_CONFIG_DIR}/{candidate}")
        except FileNotFoundError:
            continue
    try:
        return model_path(name)
    except FileNotFoundError:
        pass
    raise ConfigError(f"no such policy config {name!r}: not a file, and not found as "
                      f"config/{POLICY_CONFIG_DIR}/{name} or models/{name}/policy.yaml")


def load_policy_section(path: str | pathlib.Path, **overrides: Any) -> Pi05PolicyConfig:
    """Read a policy section file (see the module docstring); ``overrides`` replace fields (e.g. action_names)."""
    path = resolve_policy_config_path(str(path))
    raw = load_yaml(path)
    if raw is None:
        raise ConfigError(f"{path}: empty policy config")
    cfg = policy_section_from_mapping(raw, where=str(path), base_dir=path.parent)
    if overrides:
        from dataclasses import replace

        try:
            cfg = replace(cfg, **overrides)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{path}: {exc}") from None
    return cfg


def cross_check(cfg: Pi05PolicyConfig, *, horizon: int, checkpoint: str, tokenizer: str,
                num_steps: int) -> list[str]:
    """Where a node's own parameters contradict the policy section (each names both values); '' = not set."""
    problems = []
    if horizon != cfg.action_horizon:
        problems.append(f"horizon {horizon} differs from the policy section's action_horizon {cfg.action_horizon} "
                        "(the checkpoint's training horizon)")
    for what, given, want in (("checkpoint", checkpoint, cfg.checkpoint_dir),
                              ("tokenizer_path", tokenizer, cfg.tokenizer_path)):
        if given and pathlib.Path(given).expanduser().resolve() != pathlib.Path(want).resolve():
            problems.append(f"{what} {given!r} differs from the policy section's {want!r}")
    if num_steps != cfg.num_steps:
        problems.append(f"num_steps {num_steps} differs from the policy section's num_steps {cfg.num_steps}")
    return problems


def policy_section_to_mapping(cfg: Pi05PolicyConfig) -> dict[str, Any]:
    """The YAML mapping of ``cfg`` (inverse of ``policy_section_from_mapping``)."""
    out: dict[str, Any] = {}
    for f in fields(Pi05PolicyConfig):
        value = getattr(cfg, f.name)
        if f.name in ("state", "actions"):
            value = segments_to_yaml(value)
        elif f.name == "cameras":
            value = {slot: {"topic": c.topic, **({"resolution": list(c.resolution)} if c.resolution else {})}
                     for slot, c in value.items()}
        elif f.name == "lora":
            value = {e: {"alpha": getattr(value, e).alpha, "rslora": getattr(value, e).rslora}
                     for e in ("paligemma", "action_expert")}
        elif isinstance(value, tuple):
            value = list(value)
        out[_FIELD_TO_YAML.get(f.name, f.name)] = value
    return out


def save_policy_section(path: str | pathlib.Path, cfg: Pi05PolicyConfig) -> pathlib.Path:
    """Write ``cfg`` as a policy section file (for tools that train or export a checkpoint)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(policy_section_to_mapping(cfg), sort_keys=False))
    return path

