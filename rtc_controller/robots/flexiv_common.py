"""Pieces shared by the two Flexiv RDK drivers: the record of the RDK API they use, the lifecycle both follow
(``FlexivDriverBase``: stop, clear_fault, close, status), and small helpers.

``ApiUse`` entries list every ``flexivrdk`` name a driver touches, with the parameters it passes positionally;
``test/test_flexiv_api_conformance.py`` checks them against the real wheels (2.1.0 and 1.9.4.1).
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from rtc_controller.robots.base import DriverError, DriverStatus, GripperWorker

OPERATIONAL_POLL_S = 0.05
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApiUse:
    """One use of the RDK: ``owner.name`` (owner "" = the module itself).

    ``params`` = the parameter names the driver passes, in order, positionally (None for attributes/enum
    members/fields); every parameter of the real signature after these must have a default.
    """

    owner: str
    name: str
    params: tuple[str, ...] | None = None


def import_rdk(rdk: ModuleType | None) -> ModuleType:
    """The injected stand-in module, or the installed ``flexivrdk`` (DriverError when missing)."""
    if rdk is not None:
        return rdk
    try:
        return importlib.import_module("flexivrdk")
    except ImportError as exc:
        raise DriverError("flexivrdk is not installed (pip install 'rtc_controller[flexiv]')") from exc


def wait_until(cond: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``cond`` until true or raise DriverError naming ``what`` after ``timeout_s``."""
    end = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > end:
            raise DriverError(f"timed out after {timeout_s:.1f} s waiting for {what}")
        time.sleep(OPERATIONAL_POLL_S)


def call(what: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Call an RDK function, turning its RuntimeError/ValueError/TypeError into DriverError with context."""
    try:
        return fn(*args)
    except (RuntimeError, ValueError, TypeError) as exc:
        raise DriverError(f"{what}: {exc}") from exc


def _split_top(s: str, sep: str = ",") -> list[str]:
    """Split at ``sep`` outside brackets/quotes (pybind11 signatures nest types and list defaults)."""
    out, depth, cur, quote = [], 0, [], ""
    for ch in s:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == sep and depth == 0:
            out.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    if "".join(cur).strip():
        out.append("".join(cur).strip())
    return out


def _signatures(obj: Any, name: str) -> list[list[tuple[str, bool]]]:
    """Parameter lists [(name, has_default)] of every overload of ``obj`` (without ``self``)."""
    import inspect

    doc = getattr(obj, "__doc__", "") or ""
    sigs = []
    for line in doc.splitlines():
        line = line.strip()
        if line[:3].rstrip(". ").isdigit():
            line = line.split(". ", 1)[1] if ". " in line else line
        if not line.startswith(name + "("):
            continue
        depth, end = 0, -1
        for i, ch in enumerate(line[len(name):], start=len(name)):
            depth += ch == "("
            depth -= ch == ")"
            if depth == 0:
                end = i
                break
        params = []
        for p in _split_top(line[len(name) + 1 : end]):
            pname = p.split(":", 1)[0].split("=", 1)[0].strip()
            if pname in ("self", "*args", "**kwargs"):
                continue
            params.append((pname, len(_split_top(p, "=")) > 1))
        sigs.append(params)
    if not sigs:
        try:
            sig = inspect.signature(obj)
        except (TypeError, ValueError):
            return []
        sigs.append(
            [(p.name, p.default is not inspect.Parameter.empty) for p in sig.parameters.values() if p.name != "self"]
        )
    return sigs


def check_api(rdk: Any, api: tuple[ApiUse, ...]) -> list[str]:
    """Problems with ``rdk`` for the uses in ``api`` (empty = every name exists with a compatible signature).

    A call is compatible with an overload when the passed parameter names are that overload's leading
    parameters, in order, and every later parameter has a default.
    """
    problems = []
    for use in api:
        owner = getattr(rdk, use.owner, None) if use.owner else rdk
        if owner is None:
            problems.append(f"{use.owner}: missing")
            continue
        if use.name == "__init__":
            target = owner.__init__ if use.owner and hasattr(owner.__init__, "__doc__") else owner
            sig_name = "__init__"
        else:
            target = getattr(owner, use.name, None)
            sig_name = use.name
        if target is None:
            problems.append(f"{use.owner}.{use.name}: missing")
            continue
        if use.params is None:
            continue
        sigs = _signatures(target, sig_name)
        if not sigs and use.name == "__init__":
            sigs = _signatures(owner, owner.__name__)
        if not sigs:
            problems.append(f"{use.owner}.{use.name}: no signature found")
            continue
        n = len(use.params)
        ok = any(
            [p for p, _ in s[:n]] == list(use.params) and all(has_default for _, has_default in s[n:]) for s in sigs
        )
        if not ok:
            problems.append(f"{use.owner}.{use.name}{use.params}: incompatible with {sigs}")
    return problems


class FlexivDriverBase:
    """Lifecycle shared by the RDK 1.9 and 2.x drivers. Subclasses set ``config`` (with ``connect_timeout_s`` and
    ``clear_fault_timeout_s``), ``kind`` and ``_rdk``, fill ``_robots`` in ``connect`` and implement ``_power_on``
    (RDK 1.9: ``Enable``; 2.x: ``ServoOn``)."""

    LABEL = "flexivrdk"  # prefix of status messages
    ACTIVE_MESSAGE = "running"  # status message while commands flow
    CARTESIAN_MODE = ""  # rdk.Mode member for the Cartesian action space
    JOINT_MODE = ""  # rdk.Mode member for the joint action space

    def __init__(self) -> None:
        self._robots: list[Any] = []
        self._gripper_worker: GripperWorker | None = None
        self._enabled = False
        self._message = "not connected"

    def _power_on(self, robot: Any) -> None:
        raise NotImplementedError

    def _after_mode_switch(self, robot: Any) -> None:
        """Settings that need the control mode (RDK 2.x: the timeliness failure limit)."""

    def _enable(self, robot: Any) -> None:
        """Clear a fault, power on, wait until operational, switch to the action space's mode."""
        c = self.config
        if robot.fault():
            log.warning("robot faulted at start: clearing the fault")
            if not call("ClearFault", robot.ClearFault, int(c.clear_fault_timeout_s)):
                raise DriverError("ClearFault failed: the fault needs attention on the robot")
        self._power_on(robot)
        wait_until(robot.operational, c.connect_timeout_s, "the robot to become operational (E-stop? auto mode?)")
        mode = getattr(self._rdk.Mode, self.CARTESIAN_MODE if self.kind == "cartesian" else self.JOINT_MODE)
        call("SwitchMode", robot.SwitchMode, mode)
        self._after_mode_switch(robot)

    def stop(self) -> None:
        self._enabled = False
        for robot in self._robots:
            call("Stop", robot.Stop)
        self._message = "stopped"

    def clear_fault(self) -> bool:
        try:
            for robot in self._robots:
                if not robot.connected():
                    return False
                self._enable(robot)
        except DriverError as exc:
            self._message = str(exc)
            return False
        self._enabled = True
        self._message = self.ACTIVE_MESSAGE
        return True

    def close(self) -> None:
        if self._gripper_worker is not None:
            self._gripper_worker.close()
            self._gripper_worker = None
        if self._enabled:
            try:
                self.stop()
            except DriverError as exc:
                log.warning("stop on close failed: %s", exc)
        self._robots = []

    def status(self) -> DriverStatus:
        if not self._robots:
            return DriverStatus(False, False, False, self._message)
        fault = any(r.fault() for r in self._robots)
        connected = all(r.connected() for r in self._robots)
        msg = self._message
        if self._gripper_worker is not None and self._gripper_worker.errors:
            msg += f"; gripper errors {self._gripper_worker.errors}: {self._gripper_worker.last_error}"
        return DriverStatus(connected, self._enabled and not fault, fault, f"{self.LABEL}: {msg}")
