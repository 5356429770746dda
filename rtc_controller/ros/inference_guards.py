"""The inference node's checks of what surrounds it (wiring; the logic is ``policy/state_stamps.py`` and
``app/graph_guard.py``). The node pauses (publishes no chunk, diagnostics ERROR with the reason) while:
- the graph is ambiguous: two robot-state publishers (a second executor: whose state is the observation?) or a
  second node with this node's name;
- its settings disagree with the executor's (read from ``executor_node``'s parameters): a different execution
  horizon s (the executor clamps d to its H − s), a longer horizon than the executor accepts, another Δt;
and it drops robot states whose stamps are implausible (:class:`StampGuard`), counting them in diagnostics.
``~/set_parameters`` refuses an ``execution_horizon`` that differs from the executor's once that is known.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from rcl_interfaces.srv import GetParameters
from rclpy.node import Node
from rclpy.parameter import parameter_value_to_python

from rtc_controller import topics
from rtc_controller.policy.state_stamps import StampGuard
from rtc_controller.app.graph_guard import ConflictLatch, graph_conflicts, qualified
from rtc_controller.app.inference_params import SHARED_WITH_EXECUTOR, executor_mismatches

CHECK_PERIOD_S = 0.5
EXECUTOR_PARAMS_PERIOD_S = 5.0  # the executor's settings are read again this often (it may restart)


def executor_mismatch(ours: dict[str, Any], executor: dict[str, Any] | None) -> str | None:
    """Why our H, s, Δt cannot work with the executor's, or None (also while the executor's are unknown)."""
    problems = executor_mismatches(ours, executor)
    return problems[0] if problems else None


class InferenceGuards:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.stamps = StampGuard()
        self.rebased = threading.Event()  # the worker forgets its previous t_obs
        self.executor: dict[str, Any] | None = None
        self._latch = ConflictLatch()
        self._lock = threading.Lock()
        # one GetParameters client (not a whole parameter client): the SROS2 enclave allows exactly this request
        self._client = node.create_client(GetParameters, f"{topics.EXECUTOR_NODE}/get_parameters")
        self._asked_s = -float("inf")
        node.create_timer(CHECK_PERIOD_S, self._check)

    def accept_state(self, stamp_s: float) -> bool:
        """Called per robot-state message: False for an anomalous stamp (drop the message)."""
        with self._lock:
            verdict = self.stamps.check(stamp_s, time.monotonic())
        if verdict == "rebased":
            self.node.get_logger().warning("robot-state stamps moved to a new time base (executor restarted?)")
            self.rebased.set()
        elif verdict == "anomaly":
            self.node.get_logger().warning(f"robot state dropped: {self.stamps.last_anomaly}", throttle_duration_sec=1.0)
        return verdict != "anomaly"

    def _check(self) -> None:
        node = self.node
        states = [qualified(i.node_namespace, i.node_name) for i in node.get_publishers_info_by_topic(topics.ROBOT_STATE)]
        me = qualified(node.get_namespace(), node.get_name())
        conflicts = graph_conflicts(chunk_publishers=[], state_publishers=states, executor="",
                                    node_names=[qualified(ns, n) for n, ns in node.get_node_names_and_namespaces()],
                                    inference=me)  # fmt: skip
        if self._latch.update(conflicts) == "raised":
            node.get_logger().error("graph conflict, not publishing chunks: " + "; ".join(self._latch.active))
        now = time.monotonic()
        if now - self._asked_s > EXECUTOR_PARAMS_PERIOD_S and self._client.service_is_ready():
            self._asked_s = now
            self._client.call_async(GetParameters.Request(names=list(SHARED_WITH_EXECUTOR))).add_done_callback(self._on_executor_params)

    def _on_executor_params(self, future) -> None:
        result = future.result()
        if result is not None and len(result.values) == len(SHARED_WITH_EXECUTOR):
            self.executor = {n: parameter_value_to_python(v) for n, v in zip(SHARED_WITH_EXECUTOR, result.values)}

    def pause_reason(self, params: dict[str, Any]) -> str | None:
        """Why the worker must not publish now, or None."""
        if self._latch.active:
            return "graph conflict: " + "; ".join(self._latch.active)
        return executor_mismatch(params, self.executor)

    def refusal(self, name: str, value: Any, params: dict[str, Any]) -> str | None:
        """An on-set check against the executor's settings (``execution_horizon``)."""
        if name in SHARED_WITH_EXECUTOR:
            return executor_mismatch({**params, name: value}, self.executor)
        return None

    def values(self) -> dict[str, Any]:
        return {"state_stamp_anomalies": self.stamps.anomalies, "state_stamp_rebases": self.stamps.rebases,
                "last_stamp_anomaly": self.stamps.last_anomaly, "graph_conflicts": len(self._latch.active)}  # fmt: skip
