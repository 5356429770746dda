"""executor_node's operator services (``std_srvs/Trigger``): ``~/hold``, ``~/resume``, ``~/reset_fault``.

What to answer in which mode is ROS-free (``control/operator_replies``); here it is wired to the executor core (in
this process or the servo process: a core that does not answer becomes an unsuccessful reply with the reason).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rclpy.callback_groups import CallbackGroup
from rclpy.node import Node
from std_srvs.srv import Trigger

from rtc_controller.control.executor_core import ExecutorCore
from rtc_controller.control.operator_replies import RESET_DONE, hold_reply, reset_fault_reply, resume_reply
from rtc_controller.control.servo_process import ServoProcessError
from rtc_controller.ros.executor_diagnostics import NodeHealth
from rtc_controller.app.graph_guard import ConflictLatch

__all__ = ["OperatorServices"]


class OperatorServices:
    """Creates the three services on ``node``; ``latch``: the graph interlock (a cleared conflict needs ~/resume)."""

    def __init__(self, node: Node, core: ExecutorCore, *, latch: ConflictLatch, health: NodeHealth,
                 callback_group: CallbackGroup) -> None:  # fmt: skip
        self._core, self._latch, self._health = core, latch, health
        node.create_service(Trigger, "~/hold", self.hold, callback_group=callback_group)
        node.create_service(Trigger, "~/resume", self.resume, callback_group=callback_group)
        node.create_service(Trigger, "~/reset_fault", self.reset_fault, callback_group=callback_group)

    @staticmethod
    def _reply(res: Trigger.Response, decided: tuple[bool, bool, str], action: Callable[[], Any]):
        """Answer a Trigger from ``(act, success, message)`` (``operator_replies``); run ``action`` when ``act``."""
        act, res.success, res.message = decided
        if act:
            try:
                action()
            except ServoProcessError as exc:
                res.success, res.message = False, str(exc)
        return res

    def hold(self, _req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        return self._reply(res, hold_reply(self._core.mode), self._core.hold)

    def resume(self, _req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        ex = self._core
        refusal = self._latch.resume_refusal() if self._latch.needs_resume else None
        self._health.interlock_needs_resume = self._latch.needs_resume
        act, res.success, res.message = resume_reply(ex.mode, refusal)
        if act:
            try:
                ok, why = ex.resume(), ""
            except ServoProcessError as exc:
                ok, why = False, str(exc)
            if not ok:  # the core refused (the start-up checks: an arm far outside its box, …)
                res.success, res.message = False, f"refused: {why or ex.resume_refusal or f'mode {ex.mode}'}"
        return res

    def reset_fault(self, _req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        ex = self._core
        act, res.success, res.message = reset_fault_reply(ex.mode)
        if act:
            try:
                ok = ex.reset_fault()
            except ServoProcessError as exc:
                ok, ex.fault_message = False, str(exc)
            res.success, res.message = ok, RESET_DONE if ok else f"reset failed: {ex.fault_message}"
        return res
