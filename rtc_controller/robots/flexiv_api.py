"""The flexivrdk API as the drivers use it: the record of every name and signature (``ApiUse``, checked against
the real 2.1.0 and 1.9.4.1 wheels by ``test/test_flexiv_api_conformance.py``), the RDK generation check, and a
call wrapper that turns the binding's exceptions into :class:`DriverError` with context.
"""

from __future__ import annotations

import importlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from rtc_controller.robots.base import DriverError

OPERATIONAL_POLL_S = 0.05
SERIAL_RE = re.compile(r"^(.+?)[ -](\d+)$")
VERSION_RE = re.compile(r"(\d+)\.(\d+)")


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


def serial_model(sn: str) -> str:
    """The product model part of a serial number: "Rizon4s-123456" -> "Rizon4s", "Enlight L-123456" -> "Enlight-L"."""
    m = SERIAL_RE.match(sn.strip())
    return m.group(1).replace(" ", "-") if m else sn


def rdk_version(rdk: Any) -> tuple[int, int]:
    """(major, minor) of the flexivrdk module (stand-ins say e.g. "stand-in for 2.1.0"); (0, 0) when unknown."""
    m = VERSION_RE.search(str(getattr(rdk, "__version__", "")))
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def require_rdk(rdk: Any, *, major: int, api: tuple[ApiUse, ...], driver: str, hint: str) -> None:
    """Refuse (DriverError) an RDK of another generation or one that lacks a name/signature this driver uses.

    ``hint``: what to do instead, e.g. "Rizon arms need flexiv_rdk: 1 (RDK 1.9)".
    """
    version = getattr(rdk, "__version__", "?")
    if rdk_version(rdk)[0] != major:
        raise DriverError(f"flexivrdk {version} is installed, the {driver} driver needs flexivrdk {major}.x ({hint})")
    problems = check_api(rdk, api)
    if problems:
        raise DriverError(f"flexivrdk {version} lacks what the {driver} driver needs: " + "; ".join(problems[:3]))
