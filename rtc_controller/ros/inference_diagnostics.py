"""The inference node's diagnostics: one ``DiagnosticStatus`` on ``/diagnostics`` (latency, d used and its source,
per-chunk statistics, the guards' counters), set by the worker and published at 1 Hz and after every chunk."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node
from rclpy.publisher import Publisher

__all__ = ["InferenceDiagnostics"]


class InferenceDiagnostics:
    """The latest values and level (thread-safe: the worker sets, the timer and the worker publish)."""

    def __init__(self, node: Node, publisher: Publisher, extra_values: Callable[[], dict[str, Any]]) -> None:
        """``extra_values()``: more values for every message (the inference guards' counters)."""
        self._node = node
        self._pub = publisher
        self._extra = extra_values
        self._lock = threading.Lock()
        self._values: dict[str, Any] = {"state": "starting"}
        self._level = DiagnosticStatus.OK

    def set(self, level: int | None = None, **values: Any) -> None:
        """Update ``values`` (and the level, when given) for the next message."""
        with self._lock:
            self._values.update(values)
            if level is not None:
                self._level = level

    def publish(self) -> None:
        with self._lock:
            values, level = {**self._values, **self._extra()}, self._level
        status = DiagnosticStatus(
            level=level,
            name=f"{self._node.get_name()}: inference",
            hardware_id="rtc_controller",
            message=str(values.get("state", "")),
            values=[KeyValue(key=k, value=f"{v:.6g}" if isinstance(v, float) else str(v)) for k, v in values.items()],
        )
        array = DiagnosticArray(status=[status])
        array.header.stamp = self._node.get_clock().now().to_msg()
        self._pub.publish(array)
