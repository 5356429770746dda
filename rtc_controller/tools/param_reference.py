"""docs/parameters.md, generated from every node's parameter schema (ROS-free).

    python -m rtc_controller.tools.param_reference > docs/parameters.md

``test/test_param_reference.py`` fails when the file and the tables disagree.
"""

from __future__ import annotations

from typing import Any

from rtc_controller import topics
from rtc_controller.app.node_tables import table
from rtc_controller.param_schema import Param

__all__ = ["render"]

NODES = (topics.INFERENCE_NODE, topics.EXECUTOR_NODE, topics.TWIN_NODE, topics.LIVE_VIEW_NODE)
HEADER = """# Parameter reference

Generated from the parameter schema (one `param_schema.Param` per parameter: `control/executor_params.py`,
`app/inference_params.py`, `app/node_tables.py`; H, s and Δt from `chunk_timing.py`) by
`python -m rtc_controller.tools.param_reference > docs/parameters.md`; a test keeps it current, and another checks
that every key of `config/*.yaml` carries its description from the schema. The shipped values, with comments, are in
`config/sim.yaml`, `config/rig.yaml` and `config/twin.yaml`. "run time" parameters can be changed with
`ros2 param set`; every change, accepted or refused, is logged by the node. The others are fixed at start-up.
"""


def _cell(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(list(value) if isinstance(value, tuple) else value)
    return text.replace("|", "\\|")


def _table(node: str, params: dict[str, Param]) -> list[str]:
    out = [f"## `{node}`", "", "| parameter | type | default | unit | run time | description |", "|---|---|---|---|---|---|"]
    out += [f"| `{n}` | {p.type_name} | `{_cell(p.default)}` | {p.unit} | {'yes' if p.dynamic else 'no'} | "
            f"{p.description.replace('|', '/')} |" for n, p in params.items()]  # fmt: skip
    return out + [""]


def render() -> str:
    """The whole Markdown file."""
    lines = [HEADER]
    for node in NODES:
        lines += _table(node, dict(table(node)))
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(render(), end="")
