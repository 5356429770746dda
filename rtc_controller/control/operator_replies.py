"""What the executor's Trigger services answer (ROS-free): the reply says what happened, from the mode the
request found. ``~/reset_fault`` while running used to answer "fault cleared, holding" and keep running, and
``~/hold`` while faulted answered "holding": an operator must be able to trust the reply.

Each function returns ``(act, success, message)``: ``act`` whether the node should call the core at all.
"""

from __future__ import annotations

NOT_RUNNING = ("idle", "stopped", "dead")


def hold_reply(mode: str) -> tuple[bool, bool, str]:
    if mode in ("running", "approaching"):
        return True, True, "holding: braking to the stopping point"
    if mode == "holding":
        return False, True, "already holding"
    if mode == "faulted":
        return False, False, "faulted: no commands are sent (the driver is stopped); call ~/reset_fault, then ~/resume"
    return False, False, f"not running (mode {mode}): nothing to hold"


def resume_reply(mode: str, refusal: str | None = None) -> tuple[bool, bool, str]:
    """``refusal``: a reason the node refuses on its own (a graph conflict)."""
    if refusal:
        return False, False, f"refused: {refusal}; holding"
    if mode == "holding":
        return True, True, "running: following chunks"
    if mode == "running":
        return False, True, "already running"
    if mode == "approaching":
        return False, True, "already running (approaching the start pose)"
    if mode == "faulted":
        return False, False, "faulted: call ~/reset_fault first"
    return False, False, f"cannot resume in mode {mode}"


def reset_fault_reply(mode: str) -> tuple[bool, bool, str]:
    """Before the attempt; after a successful one the node answers :data:`RESET_DONE`."""
    if mode == "faulted":
        return True, True, ""
    return False, False, f"no fault to clear (mode {mode}): nothing changed"


RESET_DONE = "fault cleared, holding (call ~/resume)"
