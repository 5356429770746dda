"""Declare a node's parameter table (``param_schema.Param``) with rclpy: one descriptor rule for every node.

The descriptor carries the description with its unit (``ros2 param describe``), ``read_only`` for a parameter that
is not ``dynamic`` (unless the node refuses run-time changes in its own on-set callback, with a reason that says
to restart), and dynamic typing where ROS types would refuse what the table accepts: a float parameter takes an
int (``ros2 param set … max_guidance_weight 5``), an ``any_type`` one a string or an int.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.parameter import Parameter

from rtc_controller.param_schema import Param

__all__ = ["declare", "declare_table", "descriptor", "plain_value"]


def descriptor(param: Param, *, read_only: bool = True) -> ParameterDescriptor:
    """``read_only``: mark a non-dynamic parameter read-only in ROS (False: the node's callback refuses changes)."""
    accepts_ints = isinstance(param.default, float) and not isinstance(param.default, bool)
    return ParameterDescriptor(description=param.text, read_only=read_only and not param.dynamic,
                               dynamic_typing=param.any_type or accepts_ints)  # fmt: skip


def plain_value(param: Param | None, value: Any) -> Any:
    """The value as the table sees it: rclpy gives an empty array parameter as None, the table has ``()``."""
    return () if value is None and param is not None and isinstance(param.default, (list, tuple)) else value


def declare(node: Node, name: str, param: Param, *, read_only: bool = True) -> Any:
    """Declare one parameter; its value (an empty-list default is declared as a string array: ``[]`` alone would
    be a byte array; it reads back as ``()``)."""
    empty = isinstance(param.default, (list, tuple)) and len(param.default) == 0
    default = Parameter.Type.STRING_ARRAY if empty else param.default
    return plain_value(param, node.declare_parameter(name, default, descriptor(param, read_only=read_only)).value)


def declare_table(node: Node, table: Mapping[str, Param], *, read_only: bool = True) -> dict[str, Any]:
    """Declare every parameter of ``table`` in order; ``{name: value}``."""
    return {name: declare(node, name, param, read_only=read_only) for name, param in table.items()}
