"""docs/parameters.md, generated from the nodes' parameter tables (ROS-free).

    python -m rtc_controller.tools.param_reference > docs/parameters.md

``test/test_param_reference.py`` fails when the file and the tables disagree.
"""

from __future__ import annotations

from typing import Any

from rtc_controller import topics
from rtc_controller.control.executor_params import PARAMS as EXECUTOR_PARAMS
from rtc_controller.ros.inference_params import PARAMETERS as INFERENCE_PARAMS

__all__ = ["render"]

HEADER = """# Parameter reference

Generated from the parameter tables (`rtc_controller/ros/inference_params.py`,
`rtc_controller/control/executor_params.py`) by `python -m rtc_controller.tools.param_reference > docs/parameters.md`;
a test keeps it current. The shipped values, with comments, are in `config/sim.yaml`, `config/rig.yaml` and
`config/twin.yaml`. "run time" parameters can be changed with `ros2 param set`; every change, accepted or refused,
is logged by the node. The others are fixed at start-up.
"""


def _cell(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(list(value) if isinstance(value, tuple) else value)
    return text.replace("|", "\\|")


def _table(node: str, rows: list[tuple[str, Any, bool, str]]) -> list[str]:
    out = [f"## `{node}`", "", "| parameter | default | run time | description |", "|---|---|---|---|"]
    out += [f"| `{n}` | `{_cell(d)}` | {'yes' if dyn else 'no'} | {desc.replace('|', '/')} |" for n, d, dyn, desc in rows]
    return out + [""]


def render() -> str:
    """The whole Markdown file."""
    inference = [(n, s.default, not s.read_only, s.description) for n, s in INFERENCE_PARAMS.items()]
    executor = [(n, p.default, p.dynamic, p.description) for n, p in EXECUTOR_PARAMS.items()]
    lines = [HEADER] + _table(topics.INFERENCE_NODE, inference) + _table(topics.EXECUTOR_NODE, executor)
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(render(), end="")
