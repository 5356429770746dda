"""The twin's YAML file (``twin_config``: sections ``scene:`` and ``task:``, keys = ``SceneConfig`` / ``TaskConfig``
fields; unknown keys are refused with the nearest valid name) and the driver config built from the executor's
parameters."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rtc_controller.config_check import ConfigError, check_known_keys, load_yaml
from rtc_controller.sim.scene import SceneConfig
from rtc_controller.sim.task import TaskConfig


def with_tuples(raw: Mapping[str, Any]) -> dict[str, Any]:
    """YAML/JSON lists -> tuples (a list of lists -> a tuple of tuples), as the frozen configs' fields are typed."""
    return {k: tuple(tuple(x) if isinstance(x, list) else x for x in v) if isinstance(v, list) else v
            for k, v in raw.items()}  # fmt: skip


def _build(cls, raw: Any, where: str):
    if raw is None:
        return cls()
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(raw).__name__}")
    check_known_keys(raw, {f.name for f in dataclasses.fields(cls)}, where=where)
    try:
        return cls(**with_tuples(raw))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def load_twin_config(path: str | Path | None) -> tuple[SceneConfig, TaskConfig]:
    """(scene, task) from ``path`` ('' or None: the defaults); ConfigError names the file, section and key."""
    if not path:
        return SceneConfig(), TaskConfig()
    data = load_yaml(path) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with scene: and task:")
    check_known_keys(data, {"scene", "task"}, where=str(path))
    return _build(SceneConfig, data.get("scene"), f"{path}: scene"), _build(TaskConfig, data.get("task"), f"{path}: task")


def driver_config(v: dict[str, Any]):
    """Executor parameters -> ``MujocoDriverConfig``."""
    from rtc_controller.sim.mujoco_driver import MujocoDriverConfig

    scene, task = load_twin_config(v.get("twin_config", ""))
    return MujocoDriverConfig(
        scene=scene,
        task=task,
        seed=int(v.get("twin_seed", 0)),
        snapshot_name=str(v.get("twin_snapshot", "")),
        fault_at_s=v["sim_fault_at_s"] if v.get("sim_fault_at_s", -1.0) >= 0 else None,
        disconnect_at_s=v["sim_disconnect_at_s"] if v.get("sim_disconnect_at_s", -1.0) >= 0 else None,
        kind=v.get("action_space", "cartesian"),
        num_arms=int(v.get("num_arms", 2)),
    )


def twin_executor_values(config: str | Path | None = None, **overrides: Any) -> dict[str, Any]:
    """The executor node's parameter values of the twin's parameter file (``config/twin.yaml`` by default) with
    ``overrides`` on top, checked: what ``rtc-train collect`` and ``rtc-eval`` build the executor core from."""
    from rtc_controller import topics
    from rtc_controller.config_files import config_path
    from rtc_controller.control.executor_params import values_with
    from rtc_controller.control.executor_params import PARAMS
    from rtc_controller.param_files import check_node_section

    path = Path(config) if config else config_path("twin.yaml")
    file_values = check_node_section(path, topics.EXECUTOR_NODE, PARAMS)
    return values_with(file_values, overrides, where=f"{path}: {topics.EXECUTOR_NODE}")
