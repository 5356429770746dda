"""The executor's modes and every transition between them, in one table (pure).

Modes:
- ``idle``: constructed, not started (no command is sent);
- ``running``: following chunks;
- ``holding``: braking to and holding the stopping point (chunks are still accepted, not executed);
- ``approaching``: a speed-limited move to the ready pose or to the policy's first commanded pose before it takes
  over (``control/startup.py``; chunks are dropped meanwhile);
- ``faulted``: robot fault, lost connection or a failing servo tick: no commands, driver stopped, waits for
  ``reset_fault`` (``rearm``);
- ``stopped``: after ``shutdown`` (final).

Events (what the executor core reports):

    >>> next_mode("holding", "resume")
    'running'
    >>> next_mode("holding", "resume_with_approach")
    'approaching'
    >>> next_mode("faulted", "resume") is None   # no such transition: the request is refused or ignored
    True
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = ["ACTIVE", "EVENTS", "MODES", "TRANSITIONS", "Event", "Mode", "next_mode", "transition"]

Mode = Literal["idle", "running", "holding", "approaching", "faulted", "stopped"]
Event = Literal[
    "start",  # start(): the driver connected, the loop starts
    "start_holding",  # start() with start_holding
    "hold",  # ~/hold, a driver's hold request, a refused take-over, a failing tick
    "resume",  # ~/resume from hold, no approach needed
    "resume_with_approach",  # ~/resume from hold, first a move to the ready pose
    "approach",  # the first chunk after a hold is far from the pose: move there first
    "approach_done",  # the approach reached its goal: the policy takes over
    "fault",  # the driver reports a fault, the connection is lost, too many failing ticks
    "rearm",  # reset_fault succeeded
    "stop",  # shutdown()
]
MODES: tuple[Mode, ...] = get_args(Mode)
EVENTS: tuple[Event, ...] = get_args(Event)
ACTIVE: tuple[Mode, ...] = ("running", "holding", "approaching")  # the modes in which commands are streamed

TRANSITIONS: dict[tuple[Mode, Event], Mode] = {
    ("idle", "start"): "running",
    ("idle", "start_holding"): "holding",
    **{(m, "hold"): "holding" for m in ACTIVE},
    ("holding", "resume"): "running",
    ("holding", "resume_with_approach"): "approaching",
    ("running", "approach"): "approaching",
    ("approaching", "approach_done"): "running",
    **{(m, "fault"): "faulted" for m in ("idle", *ACTIVE)},
    ("faulted", "rearm"): "holding",
    **{(m, "stop"): "stopped" for m in MODES},
}


def next_mode(mode: Mode, event: Event) -> Mode | None:
    """The mode after ``event`` in ``mode``; None when the table has no such transition."""
    return TRANSITIONS.get((mode, event))


def transition(mode: Mode, event: Event) -> Mode:
    """The mode after ``event``; ValueError naming both when the table has no such transition (a bug in the
    caller: requests that may arrive in any mode are checked with :func:`next_mode` first)."""
    after = next_mode(mode, event)
    if after is None:
        raise ValueError(f"executor: no transition for event {event!r} in mode {mode!r}")
    return after
