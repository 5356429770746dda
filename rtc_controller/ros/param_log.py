"""One log line per run-time parameter change, accepted or refused (the nodes call it from their callbacks).

    inference_node: parameter max_guidance_weight 10.0 -> 5.0
    inference_node: parameter max_guidance_weight 10.0 -> -1.0 refused: max_guidance_weight must be in [0, 1000], got -1.0
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["change_lines", "log_changes"]


def change_lines(node: str, changes: Mapping[str, Any], current: Mapping[str, Any], *,
                 refused: str | None = None) -> list[str]:  # fmt: skip
    """One line per changed parameter: ``node: parameter name old -> new`` (``… refused: reason``)."""
    tail = f" refused: {refused}" if refused is not None else ""
    return [f"{node}: parameter {name} {current.get(name, '(unset)')!r} -> {value!r}{tail}" for name, value in changes.items()]


def log_changes(logger: Any, node: str, changes: Mapping[str, Any], current: Mapping[str, Any], *,
                refused: str | None = None) -> None:  # fmt: skip
    """Log :func:`change_lines` on an rclpy logger: INFO when accepted, WARN when refused."""
    for line in change_lines(node, changes, current, refused=refused):
        # one call site per severity: rclpy refuses a call site whose severity changes between calls
        if refused is None:
            logger.info(line)
        else:
            logger.warning(line)
