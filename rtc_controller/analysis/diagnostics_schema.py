"""The executor node's diagnostics, typed (ROS-free): the status names and keys ``ros/executor_diagnostics``
writes and the reports read back, in one place.

Statuses are named ``"<node>: <part>"`` (diagnostic_updater's convention). Values travel as strings
(``diagnostic_msgs/KeyValue``); :class:`SwitchRecord` is one switch status read back. A key written by the node and
read by a report is a field here, not a literal on either side.

    >>> ev = SwitchRecord.from_values({"t_switch_s": "1.5", "jump_norm": "0.02", "k_star": "7", "from_hold": "0"})
    >>> (ev.t_switch_s, ev.k_star, ev.guided_d, ev.jump, ev.from_hold)
    (1.5, 7, -1, 0.02, False)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rtc_controller.control.timeline import SwitchEvent

__all__ = ["CHUNKS", "JUMP_NORM", "LOOP", "REJECTED_TOTAL", "SWITCH", "SwitchRecord", "number", "status_name", "switch_values"]

# Status parts (``"<node>: <part>"``).
LOOP = "servo loop"
CHUNKS = "chunks"
SAFETY = "safety"
STARTUP = "startup"
DRIVER = "driver"
INTERLOCK = "interlock"
SWITCH = "switch"
# Keys the reports read from the loop status (``control.loop.LoopStats`` field names) and the chunks status.
LATENESS_P99_US = "lateness_p99_us"
LATENESS_MAX_US = "lateness_max_us"
WORST_WINDOW_LATE_FRACTION = "worst_window_late_fraction"
REJECTED_TOTAL = "rejected_total"
JUMP_NORM = "jump_norm"  # the switch status's key of SwitchRecord.jump
# The switch status's key of each SwitchRecord field where they differ, and the order the node writes them in.
_SWITCH_KEYS = {"jump": JUMP_NORM}
_SWITCH_ORDER = ("t_switch_s", "t_obs_s", "delay_s", "k_star", "guided_d", "jump", "jump_linear_m",
                 "jump_angular_rad", "jump_gripper_m", "from_hold")  # fmt: skip


def status_name(node: str, part: str) -> str:
    return f"{node}: {part}"


def is_part(status_name_: str, part: str) -> bool:
    """True when a status named ``"<node>: <part>"`` is that part (any node name)."""
    return status_name_.endswith(f": {part}")


def number(values: Mapping[str, str], key: str, default: float = math.nan) -> float:
    """A status value as a float (``default`` when missing or not a number)."""
    try:
        return float(values[key])
    except (KeyError, ValueError):
        return default


@dataclass(frozen=True)
class SwitchRecord:
    """One chunk switch (a ``"<node>: switch"`` status). Times [s] on the executor clock; ``jump``: ‖new − old‖
    over all action dims at the switch instant (rotations as body-frame rotation vectors); the linear [m], angular
    [rad] and gripper [m] parts are per-arm maxima; ``guided_d`` -1: unknown; ``from_hold``: the first chunk after
    start or reset ("old" is the held pose, not a chunk)."""

    t_switch_s: float
    delay_s: float = math.nan
    k_star: int = -1
    guided_d: int = -1
    jump: float = math.nan
    jump_linear_m: float = math.nan
    jump_angular_rad: float = math.nan
    from_hold: bool = False
    t_obs_s: float = math.nan
    jump_gripper_m: float = math.nan

    @classmethod
    def from_event(cls, ev: SwitchEvent) -> SwitchRecord:
        return cls(t_switch_s=ev.t_switch_s, t_obs_s=ev.t_obs_s, delay_s=ev.delay_s, k_star=ev.k_star,
                   guided_d=-1 if ev.guided_d is None else ev.guided_d, jump=ev.jump_norm,
                   jump_linear_m=ev.jump_linear_m, jump_angular_rad=ev.jump_angular_rad,
                   jump_gripper_m=ev.jump_gripper_m, from_hold=ev.from_hold)  # fmt: skip

    @classmethod
    def from_values(cls, values: Mapping[str, str], *, strict: bool = False) -> SwitchRecord:
        """Read back a switch status's values (missing keys: the field's default; ``strict``: KeyError for a
        missing key, ValueError for a value that is not a number)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            key = _SWITCH_KEYS.get(f.name, f.name)
            default = f.default if f.default is not dataclasses.MISSING else math.nan
            v = float(values[key]) if strict else number(values, key, float(default))
            out[f.name] = v > 0 if f.type == "bool" else int(v) if f.type == "int" else v
        return cls(**out)

    def values(self) -> list[tuple[str, float | int]]:
        """``[(key, value)]`` in the status's order (``from_hold`` as 0/1)."""
        return [(_SWITCH_KEYS.get(n, n), int(v) if isinstance(v := getattr(self, n), bool) else v)
                for n in _SWITCH_ORDER]  # fmt: skip


def switch_values(ev: SwitchEvent) -> list[tuple[str, float | int]]:
    """The switch status's ``[(key, value)]`` for the executor's event."""
    return SwitchRecord.from_event(ev).values()


assert sorted(_SWITCH_ORDER) == sorted(f.name for f in dataclasses.fields(SwitchRecord)), "every field is written"
