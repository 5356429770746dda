"""Who may command the arms: the ROS graph checked for rogue or duplicate participants (pure; no rclpy here).

Anyone on the DDS domain can publish on ``rtc/chunk``, and a publisher stamping its chunks ahead of the executor's
clock would take the arms over. The executor therefore (``executor_node``):
- accepts a chunk only while the topic's publishers are exactly the configured inference node
  (:func:`chunk_source_problem`, checked per chunk; on Kilted and later also the message's publisher GID);
- holds the arms and reports ERROR while :func:`graph_conflicts` finds a second chunk publisher, a second
  executor (two robot-state publishers, or two nodes with its name) or a second inference node; ``~/resume`` is
  refused until the graph is clean again (then it says so and waits for the operator).
The inference node pauses (no chunks) while it sees two robot-state publishers or a second node with its name.

Node names are self-declared: this catches mistakes (a second rig, a bag played on the live domain, a forgotten
``ros2 topic pub``), not an attacker who copies the name. Access control is SROS2 (README, "Security").
A conflict must be seen on ``CONFIRMATIONS`` consecutive checks before it counts: discovery attaches node names to
endpoints a moment after the endpoints appear (``_NODE_NAME_UNKNOWN_`` meanwhile). A chunk from
the topic's only publisher whose name is not attributed yet is accepted (the inference node's first chunk must not
be lost to that lag); a second publisher, named or not, makes every chunk refused at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

CONFIRMATIONS = 2  # consecutive checks that must agree before a conflict is reported (or cleared)
UNKNOWN_NODE = "_NODE_NAME_UNKNOWN_"  # rmw's name for an endpoint whose node is not attributed yet (~0.1 s)


def qualified(namespace: str, name: str) -> str:
    """``("/", "inference_node")`` -> ``"/inference_node"``; ``("/rig", "x")`` -> ``"/rig/x"``."""
    return namespace.rstrip("/") + "/" + name


def chunk_source_problem(publishers: Sequence[str], source: str) -> str | None:
    """Why a chunk arriving now cannot be trusted (``publishers``: qualified node names of the chunk topic's
    publishers), or None when the configured ``source`` is the only one."""
    if not publishers:
        return None  # the publisher is gone already (its last message): it was checked when it was there
    if len(publishers) == 1 and publishers[0].endswith(UNKNOWN_NODE):
        return None  # the only publisher, its name not attributed yet: a foreign one is caught by graph_conflicts
    foreign = sorted(set(p for p in publishers if p != source))
    if foreign:
        return f"chunk publishers other than {source}: {', '.join(foreign)}"
    if len(publishers) > 1:
        return f"{len(publishers)} chunk publishers named {source}"
    return None


def sender_problem(sender_gid: Sequence[int], publishers: Sequence[tuple[str, Sequence[int]]], source: str) -> str | None:
    """Per message, where rclpy gives the sender's GID (Kilted and later): why it is not a trusted publisher of the
    topic (``publishers``: (qualified node name, endpoint GID)), or None. Trusted: ``source``'s endpoints, or the
    only publisher while its name is not attributed yet (as in :func:`chunk_source_problem`)."""
    if not publishers:
        return None
    single_unknown = len(publishers) == 1 and publishers[0][0].endswith(UNKNOWN_NODE)
    trusted = [list(g) for n, g in publishers if n == source or single_unknown]
    sender = list(sender_gid)
    if any(sender[: len(g)] == g for g in trusted if g):
        return None
    return f"sent by a publisher that is not {source}"


def graph_conflicts(
    *,
    chunk_publishers: Sequence[str],
    state_publishers: Sequence[str],
    node_names: Sequence[str],
    executor: str,
    inference: str,
) -> list[str]:
    """Everything on the graph that makes the rig ambiguous (qualified names); empty when it is as configured."""
    out = []
    problem = chunk_source_problem(chunk_publishers, inference)
    if problem:
        out.append(problem)
    if len(state_publishers) > 1:
        out.append(f"{len(state_publishers)} robot-state publishers (a second executor?): "
                   f"{', '.join(sorted(state_publishers))}")  # fmt: skip
    for name, what in ((executor, "executor"), (inference, "inference")):
        count = sum(1 for n in node_names if n == name)
        if count > 1:
            out.append(f"{count} nodes named {name} (a second {what} node)")
    return out


@dataclass
class ConflictLatch:
    """Debounces :func:`graph_conflicts` (``CONFIRMATIONS`` checks) and remembers that the operator must resume."""

    active: tuple[str, ...] = ()
    needs_resume: bool = False
    _pending: tuple[str, ...] = ()
    _seen: int = 0

    def update(self, conflicts: Sequence[str]) -> str | None:
        """Feed one check; returns "raised" or "cleared" when the confirmed state changes, else None."""
        current = tuple(conflicts)
        if current == self._pending:
            self._seen += 1
        else:
            self._pending, self._seen = current, 1
        if self._seen < CONFIRMATIONS or current == self.active:
            return None
        was = bool(self.active)
        self.active = current
        if current and not was:
            self.needs_resume = True
            return "raised"
        if not current and was:
            return "cleared"
        return None

    def resume_refusal(self) -> str | None:
        """Why ``~/resume`` must be refused now, or None (and the latch is released)."""
        if self.active:
            return "graph conflict: " + "; ".join(self.active)
        self.needs_resume = False
        return None
