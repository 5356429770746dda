"""The executor's deferred switch work and its switch-event log (ROS-free; servo thread, except ``drain``).

Switch ticks stay cheap (computing the event and freeing the replaced chunk's precomputed lists in the tick made
it several times longer than a normal one; docs/results.md has the measurement): the tick only captures the switch
(:meth:`SwitchLog.defer`); the event is computed, and the replaced chunk released, after later ticks' commands
(:meth:`SwitchLog.after_command`), one step per tick, only while the tick is early enough that the work never
delays the next one. The events go into a bounded log that other threads drain.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
import time

from rtc_controller.control.timeline import CapturedSwitch, SwitchEvent, switch_event

__all__ = ["DEFERRED_BUDGET", "MAX_DEFERRED", "SWITCH_HISTORY", "SwitchLog"]

SWITCH_HISTORY = 64
# Deferred switch work runs after the tick's command, only while the tick is this far (fraction of a period) past
# its deadline, so that it never delays the next tick; more than MAX_DEFERRED pending switches run regardless.
DEFERRED_BUDGET = 0.35
MAX_DEFERRED = 4


class SwitchLog:
    """Captured switches waiting for their event, and the events since start (at most ``SWITCH_HISTORY`` kept)."""

    def __init__(self, *, kind: str, num_arms: int, period_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        """``kind``/``num_arms``: the timeline's (for the event's jumps); ``period_s``: the servo period [s];
        ``clock``: the clock of the ticks' deadlines (the executor's)."""
        self._kind, self._num_arms = kind, num_arms
        self._clock = clock
        self._budget_s = DEFERRED_BUDGET * period_s
        self._deferred: collections.deque[list] = collections.deque()  # [CapturedSwitch, SwitchEvent | None]
        self.events: collections.deque[SwitchEvent] = collections.deque(maxlen=SWITCH_HISTORY)
        self._log: collections.deque[tuple[int, SwitchEvent]] = collections.deque(maxlen=SWITCH_HISTORY)
        self.seq = 0  # switch events since start (the loop thread writes it)
        self._drained = 0  # sequence number of the last event handed out by drain
        self.last: SwitchEvent | None = None
        self.max_jump_linear_m = 0.0
        self.max_jump_angular_rad = 0.0

    @property
    def pending(self) -> int:
        """Captured switches whose work is not done yet (the event, then releasing the replaced chunk)."""
        return len(self._deferred)

    def defer(self, captured: CapturedSwitch) -> None:
        """A switch the tick captured: its work runs after later ticks' commands."""
        self._deferred.append([captured, None])

    def clear(self) -> None:
        """Drop the pending work (a failed tick drops every chunk)."""
        self._deferred.clear()

    def after_command(self, deadline_mono_s: float) -> None:
        """After a tick's command: one step of pending work, when the tick is early enough (or too much waits)."""
        if self._deferred:
            if len(self._deferred) > MAX_DEFERRED or self._clock() - deadline_mono_s < self._budget_s:
                self._finish_one()

    def _finish_one(self) -> None:
        """One step of deferred switch work: first the event, then, at a later tick, releasing the replaced chunk."""
        entry = self._deferred[0]
        if entry[1] is None:
            ev = entry[1] = switch_event(entry[0], kind=self._kind, num_arms=self._num_arms)
            self.last = ev
            self.events.append(ev)
            self.seq += 1
            self._log.append((self.seq, ev))
            self.max_jump_linear_m = max(self.max_jump_linear_m, ev.jump_linear_m)
            self.max_jump_angular_rad = max(self.max_jump_angular_rad, ev.jump_angular_rad)
            return
        self._deferred.popleft()  # the last reference to the replaced chunk goes here

    def drain(self) -> list[SwitchEvent]:
        """Events since the last call, oldest first (at most ``SWITCH_HISTORY``; older ones are lost)."""
        items = [item for item in list(self._log) if item[0] > self._drained]
        if items:
            self._drained = items[-1][0]
        return [ev for _, ev in items]
