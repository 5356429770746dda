"""Messages lost before they reached a subscriber, counted from the publishers' sequence numbers (ROS-free).

DDS numbers every sample a writer sends 1, 2, 3, … (rclpy's ``MessageInfo["publication_sequence_number"]``). A
subscriber that receives 7 after 4 lost 5 and 6: to the network (best effort), to the publisher's history (KEEP_LAST
overwrote them before delivery) or to its own queue (it did not take them in time). The recorder counts them per
topic, so a bag can say what it misses.

Several publishers on one topic interleave their numbers. Where the publisher's identity is known (``key``: its GID,
rclpy on Kilted and later) every publisher is tracked on its own; without it (Jazzy's rclpy) a topic is tracked only
while it has exactly one publisher (``single_publisher``), otherwise a gap could be another publisher's messages.
A number that goes backwards (a publisher restarted) starts a new count without counting a loss.
"""

from __future__ import annotations

from collections.abc import Hashable


class SequenceGaps:
    """Per topic: messages lost (sum of the gaps) and the last number seen per publisher."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, Hashable], int] = {}
        self.lost: dict[str, int] = {}

    def add(self, topic: str, seq: int | None, *, key: Hashable = None, single_publisher: bool = True) -> int:
        """Record message number ``seq`` of ``topic`` (from publisher ``key``); returns how many were lost before it."""
        if seq is None or seq <= 0 or (key is None and not single_publisher):
            self._last.pop((topic, key), None)  # untrackable: forget the baseline, never guess
            return 0
        last = self._last.get((topic, key))
        self._last[(topic, key)] = seq
        if last is None or seq <= last:
            return 0
        gap = seq - last - 1
        if gap:
            self.lost[topic] = self.lost.get(topic, 0) + gap
        return gap

    @property
    def total(self) -> int:
        return sum(self.lost.values())
