"""One declaration per node parameter (pure; no rclpy): what ``generate_parameter_library`` gives a ros2_controllers
controller, in Python.

A :class:`Param` holds everything about one parameter: default (its type is the parameter's type), description,
unit, validator, and whether it may change at run time. A node's table is ``{name: Param}`` (``app/`` and
``control/executor_params`` hold the tables); from it come

- the ROS declaration (``ros/param_declare``: descriptor with description, unit, read-only),
- the checks: :func:`type_refusal` and the validator, both in :meth:`Param.refusal`, run on start-up values and on
  every ``ros2 param set``; cross-parameter rules are the table owner's,
- the defaults of the config the node builds (:func:`defaults`, :func:`layered`),
- ``docs/parameters.md`` (``tools/param_reference``) and the YAML comment check (``test/test_param_yaml.py``: a key's
  comment in ``config/*.yaml`` starts with :attr:`Param.text`).

    >>> speed = Param(1.0, "TCP speed limit", positive, unit="m/s")
    >>> speed.text
    'TCP speed limit [m/s]'
    >>> speed.refusal("max_linear_speed_m_s", -2)
    'max_linear_speed_m_s: must be > 0, got -2'
    >>> speed.refusal("max_linear_speed_m_s", "fast")
    "max_linear_speed_m_s: must be a number, got str 'fast'"
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Check",
    "Param",
    "accept",
    "defaults",
    "field_default",
    "finite_in_range",
    "in_range",
    "layered",
    "non_negative",
    "one_of",
    "positive",
    "refusals",
    "type_name",
    "type_refusal",
]

Check = Callable[[Any], "str | None"]  # the reason a value is refused, None when it is accepted


def accept(value: Any) -> str | None:
    """The validator of a parameter whose type says everything."""
    return None


@dataclass(frozen=True)
class Param:
    """One parameter. ``default``'s type is the parameter's (a float one also takes ints); ``unit`` is the
    physical unit ('' = none, e.g. counts or names); ``dynamic``: may change at run time (``ros2 param set``), else
    fixed at start-up (ROS read-only); ``any_type``: the value may have another type than the default's
    (``inference_delay``: ``'auto'`` or an int), the validator then checks it alone."""

    default: Any
    description: str
    check: Check = accept
    unit: str = ""
    dynamic: bool = False
    any_type: bool = False

    @property
    def text(self) -> str:
        """The description with its unit: the ROS descriptor's text and the YAML comment."""
        return f"{self.description} [{self.unit}]" if self.unit else self.description

    @property
    def type_name(self) -> str:
        return "any" if self.any_type else type_name(self.default)

    def refusal(self, name: str, value: Any) -> str | None:
        """``"<name>: <reason>"`` when ``value`` is refused (wrong type, or the validator's reason), else None. A
        validator shared with other layers may name the parameter itself (``"max_guidance_weight must be …"``):
        its reason is kept as it is."""
        reason = None if self.any_type else type_refusal(self.default, value)
        if reason is None:
            reason = self.check(value)
        if not reason:
            return None
        return reason if reason.startswith(name) else f"{name}: {reason}"


def type_name(default: Any) -> str:
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, (list, tuple)):  # an empty one is declared a string array (``ros/param_declare``)
        inner = {type_name(v) for v in default} or {"str"}
        return f"list[{inner.pop()}]" if len(inner) == 1 else "list"
    return type(default).__name__


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def type_refusal(default: Any, value: Any) -> str | None:
    """Why ``value`` does not have the type of ``default`` (an int is a number; a bool is not)."""
    if isinstance(default, bool) or isinstance(value, bool):
        ok, what = isinstance(default, bool) and isinstance(value, bool), "a bool"
    elif isinstance(default, float):
        ok, what = _is_number(value), "a number"
    elif isinstance(default, int):
        ok, what = isinstance(value, int), "an int"
    elif isinstance(default, str):
        ok, what = isinstance(value, str), "a string"
    elif isinstance(default, (list, tuple)):
        ok, what = isinstance(value, (list, tuple)), "a list"
    else:
        ok, what = True, ""
    return None if ok else f"must be {what}, got {type(value).__name__} {value!r}"


def one_of(*choices: Any) -> Check:
    return lambda v: None if v in choices else f"must be one of {choices}, got {v!r}"


def positive(v: Any) -> str | None:
    return None if _is_number(v) and math.isfinite(v) and v > 0 else f"must be > 0, got {v!r}"


def non_negative(v: Any) -> str | None:
    return None if _is_number(v) and math.isfinite(v) and v >= 0 else f"must be >= 0, got {v!r}"


def in_range(lo: float, hi: float) -> Check:
    """Closed interval ``[lo, hi]``."""
    return lambda v: None if _is_number(v) and lo <= v <= hi else f"must be in [{lo}, {hi}], got {v!r}"


def finite_in_range(lo: float, hi: float = math.inf) -> Check:
    """``[lo, hi]`` and finite (``hi`` = inf: no upper bound)."""
    bound = f">= {lo}" if hi == math.inf else f"in [{lo}, {hi}]"
    return lambda v: None if _is_number(v) and math.isfinite(v) and lo <= v <= hi else f"must be {bound}, got {v!r}"


def field_default(cls: type, name: str) -> Any:
    """The default of dataclass ``cls``'s field ``name`` (a config's default becomes its parameter's default)."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            if f.default is not dataclasses.MISSING:
                return f.default
            if f.default_factory is not dataclasses.MISSING:
                return f.default_factory()
            raise ValueError(f"{cls.__name__}.{name} has no default")
    raise ValueError(f"{cls.__name__} has no field {name!r}")


def defaults(table: Mapping[str, Param]) -> dict[str, Any]:
    """``{name: default}`` (lists copied: a caller may change its values)."""
    return {n: list(p.default) if isinstance(p.default, (list, tuple)) else p.default for n, p in table.items()}


def layered(table: Mapping[str, Param], *layers: Mapping[str, Any]) -> dict[str, Any]:
    """The defaults with each layer on top (a parameter file's section, then overrides; keys not in the table are
    kept: the caller checks them against the table's names)."""
    values = defaults(table)
    for layer in layers:
        values |= dict(layer)
    return values


def refusals(table: Mapping[str, Param], values: Mapping[str, Any], names: Sequence[str] | None = None) -> list[str]:
    """Every reason a value of ``values`` (or only those in ``names``) is refused, in table order."""
    wanted = table if names is None else [n for n in table if n in names]
    return [r for n in wanted if n in values and (r := table[n].refusal(n, values[n])) is not None]
