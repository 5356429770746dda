"""``rtc-eval``'s cell configuration, built from the parameter file the nodes load (ROS-free).

A cell runs the executor node's and the inference node's parameters from ``EvalConfig.config`` (default
``config/twin.yaml``: the twin's executor with ``driver: mujoco``, its safety limits, delay estimation and servo
rate; the inference node's policy, β, schedule, n, ``inference_delay``), with the cell's own settings on top
(:func:`node_overrides`: the policy, mode, H, s, Δt, β, the injected latency). The in-process runner and the
``--dds`` path take the same overrides, so they differ only in transport and wall-clock timing.

The injected latency of delay d is d·Δt (the chunk reaches the executor d action steps after its observation and
switches in at k* = d); over DDS, half a step of it is left to the transport (``DDS_TRANSPORT_STEPS``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rtc_controller.chunk_timing import ChunkTiming
from rtc_controller import topics
from rtc_controller.config_files import config_path

DEFAULT_CONFIG = "twin.yaml"
DDS_TRANSPORT_STEPS = 0.5  # of the injected latency, left to DDS transport and sampling time [action steps]


@dataclass(frozen=True)
class EvalConfig:
    """What defines a cell's results (a cell file made with another config, or another parameter/world file, is
    re-run). Empty strings and None leave the parameter file's value."""

    policy: str = "twin"
    horizon: int = 50
    execution_horizon: int = 25
    action_rate_hz: float = 50.0
    servo_rate_hz: float = 1000.0
    num_steps: int = 10
    max_guidance_weight: float = 10.0
    schedule: str = "exp"
    seeds: tuple[int, ...] = tuple(range(10))
    time_limit_s: float = 15.0
    camera_slots: tuple[str, ...] = ()
    checkpoint: str = ""
    tokenizer_path: str = ""
    policy_config: str = ""
    policy_params: tuple[tuple[str, Any], ...] = ()  # extra make_policy parameters (pi05), e.g. dtype=float32
    dds: bool = False
    twin_config: str = ""  # the world file (scene: / task:; '' = the defaults); the time limit is time_limit_s
    config: str = ""  # the nodes' parameter file ('' = config/twin.yaml)
    trained_policy_config: str = ""  # method ``trained``: the training-time-RTC policy section ('' = policy_config's)

    def __post_init__(self) -> None:
        self.timing  # noqa: B018 — H, s, Δt checked by chunk_timing (ValueError naming the value)

    @property
    def dt_s(self) -> float:
        return 1.0 / self.action_rate_hz

    @property
    def timing(self) -> ChunkTiming:
        """H, s, Δt of the cells (each cell's s may differ: ``dataclasses.replace``)."""
        return ChunkTiming(self.horizon, self.execution_horizon, self.dt_s)

    @property
    def config_file(self) -> Path:
        return Path(self.config) if self.config else config_path(DEFAULT_CONFIG)


def node_overrides(cfg: EvalConfig, *, mode: str, delay: int, transport_steps: float = 0.0) -> dict[str, dict]:
    """The per-node parameters a cell sets over the parameter file: everything of the cell's config that the
    nodes take (the policy and its section or checkpoint, its cameras, H, s, Δt, n, β, the schedule, the guidance
    mode, the servo rate, the world file) and the injected latency (d − ``transport_steps``)·Δt."""
    inference = {"policy": cfg.policy, "guidance_mode": mode, "max_guidance_weight": cfg.max_guidance_weight,
                 "prefix_schedule": cfg.schedule, "num_steps": cfg.num_steps,
                 "extra_latency_s": max(0.0, (delay - transport_steps) * cfg.dt_s), "horizon": cfg.horizon,
                 "execution_horizon": cfg.execution_horizon, "action_rate_hz": cfg.action_rate_hz}  # fmt: skip
    if cfg.policy == "pi05":
        inference |= {k: v for k, v in (("policy_config", cfg.policy_config), ("checkpoint", cfg.checkpoint),
                                        ("tokenizer_path", cfg.tokenizer_path)) if v}  # fmt: skip
        slots = cfg.camera_slots
        if cfg.policy_config:  # the node takes the section's cameras (and refuses other camera_slots)
            from rtc_controller.policy.pi05.policy_section import load_policy_section

            slots = load_policy_section(cfg.policy_config).camera_slots
        if slots:
            inference["camera_slots"] = list(slots)
    executor = {"horizon": cfg.horizon, "execution_horizon": cfg.execution_horizon,
                "action_rate_hz": cfg.action_rate_hz, "servo_rate_hz": cfg.servo_rate_hz}  # fmt: skip
    if cfg.twin_config:
        executor["twin_config"] = cfg.twin_config
    return {topics.EXECUTOR_NODE: executor, topics.INFERENCE_NODE: inference}


def _file_values(path: Path, node: str) -> dict[str, Any]:
    from rtc_controller.app.node_tables import check_params_file

    return check_params_file(path).get(node, {})


def executor_values(cfg: EvalConfig) -> dict[str, Any]:
    """The executor node's parameter values in a cell: defaults, the parameter file, the cell's overrides."""
    from rtc_controller.sim.twin_config import twin_executor_values

    return twin_executor_values(cfg.config_file, **node_overrides(cfg, mode="none", delay=0)[topics.EXECUTOR_NODE])


def inference_values(cfg: EvalConfig, *, mode: str, delay: int) -> dict[str, Any]:
    """The inference node's parameter values in a cell: defaults, the parameter file, the cell's overrides."""
    from rtc_controller.app.inference_params import PARAMETERS, changes_refusal

    values = {k: spec.default for k, spec in PARAMETERS.items()}
    values |= _file_values(cfg.config_file, topics.INFERENCE_NODE)
    values |= node_overrides(cfg, mode=mode, delay=delay)[topics.INFERENCE_NODE]
    if (reason := changes_refusal(values, values, horizon=int(values["horizon"]))) is not None:
        raise ValueError(f"{cfg.config_file}: inference_node: {reason}")
    return values


def _digest(path: str | Path) -> str:
    p = Path(path)
    return hashlib.sha256(p.read_bytes()).hexdigest()[:16] if p.is_file() else ""


def fingerprint(cfg: EvalConfig) -> dict:
    """The cell files' record of what made them: the config and the digests of the parameter and world files and of
    the policy section (a retrained checkpoint records other losses there: its cells run again)."""
    digests = {"config_sha256": _digest(cfg.config_file),
               "twin_config_sha256": _digest(cfg.twin_config) if cfg.twin_config else "",
               "policy_config_sha256": _policy_digest(cfg.policy_config)}  # fmt: skip
    return json.loads(json.dumps(asdict(cfg))) | digests


def _policy_digest(name: str) -> str:
    if not name:
        return ""
    from rtc_controller.policy.pi05.policy_section import resolve_policy_config_path

    return _digest(resolve_policy_config_path(name))
