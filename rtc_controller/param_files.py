"""Refuse unknown or misspelt keys in ROS parameter files and ``-p`` overrides (pure; no rclpy at import).

ROS itself ignores a parameter that a node never declares, so ``max_linear_sped_m_s: 0.05`` left the speed limit
at its default and a misspelt section (``executor:``) ran the executor on defaults. Here, with
``rtc_controller.config_check`` (the key, the file, the nearest valid name; one line for a YAML syntax error):
- :func:`check_params_file` checks a whole file before anything starts (``rtc-bringup``, the launch files): every
  section is one of our nodes (or a wildcard ``/**``), or far from all of their names (another package's node);
  every key of our sections is a parameter of that node;
- :func:`check_node_overrides` runs inside a node after it declared its parameters: every value rclpy holds for it
  (params files and ``-p``) must be declared, and when params files are given, one of them must have a section for
  it (else it would silently run on defaults).

Node sections are ``[/namespace/]node_name: {ros__parameters: {...}}``; nested mappings are dotted names, as ROS
reads them. The tables are the caller's (``app/node_tables`` has every node's): ``{node: valid keys}``, each
loaded when a file has its section.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rtc_controller.config_check import NEAREST_CUTOFF, ConfigError, check_known_keys, load_yaml, unknown_key_message

WILDCARDS = ("**", "*")
ROS_PARAMETERS = "ros__parameters"
# Parameters every rclpy node declares itself (plus ``qos_overrides.<topic>.…`` for QoS overrides).
GENERIC_PARAMETERS = frozenset({"use_sim_time", "start_type_description_service", "start_parameter_event_publisher"})
GENERIC_PREFIXES = ("qos_overrides.",)


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested parameter mappings -> dotted names (``{"a": {"b": 1}}`` -> ``{"a.b": 1}``), as ROS reads them."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def is_generic(name: str) -> bool:
    return name in GENERIC_PARAMETERS or name.startswith(GENERIC_PREFIXES)


def section_node(section: str) -> str:
    """``/rig/executor_node`` -> ``executor_node``; ``/**`` -> ``**``."""
    return str(section).rstrip("/").rsplit("/", 1)[-1]


def _sections(path: Path) -> dict[str, dict[str, Any]]:
    data = load_yaml(path)
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a mapping of node sections, got {type(data).__name__}")
    out = {}
    for section, body in data.items():
        if not isinstance(body, Mapping) or set(body) != {ROS_PARAMETERS} or not isinstance(body[ROS_PARAMETERS], Mapping):
            raise ConfigError(f"{path}: section {section!r} must be '{section}: {{{ROS_PARAMETERS}: {{...}}}}'")
        out[str(section)] = flatten(body[ROS_PARAMETERS])
    return out


Tables = Mapping[str, Callable[[], Iterable[str]]]  # node name -> its valid keys (called when needed)


def check_params_file(path: str | Path, tables: Tables, nodes: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
    """Check a parameter file (see the module docstring) against ``tables``; ``nodes``: ours that must have a
    section. Returns ``{node: {param: value}}`` for our nodes; raises ConfigError naming the file, the section or
    key, the nearest valid name."""
    path = Path(path)
    ours = sorted(tables)

    def valid_keys(node: str) -> set[str]:
        return set(tables[node]())

    found: dict[str, dict[str, Any]] = {}
    for section, params in _sections(path).items():
        node = section_node(section)
        if node in WILDCARDS:
            _checked(params, set().union(*(valid_keys(n) for n in ours)), where=f"{path}: {section}")
            continue
        if node not in tables:
            _refuse_near_miss(path, section, node, ours)
            continue  # another package's node
        _checked(params, valid_keys(node), where=f"{path}: {section}")
        found[node] = params
    missing = [n for n in nodes if n not in found]
    if missing:
        raise ConfigError(f"{path}: no section for {', '.join(missing)} (sections: {', '.join(found) or 'none'})")
    return found


def check_node_section(path: str | Path, node: str, valid: Iterable[str]) -> dict[str, Any]:
    """The values of one node's section (``{}`` without one), its keys checked against ``valid``; a section whose
    name is close to ``node`` but not it is refused (``executor:`` would leave the node on defaults). Other
    sections, wildcards included, are not looked at: the whole-file check is :func:`check_params_file`'s."""
    path = Path(path)
    valid = set(valid)
    found: dict[str, Any] = {}
    for section, params in _sections(path).items():
        name = section_node(section)
        if name == node:
            found |= _checked(params, valid, where=f"{path}: {section}")
        elif name not in WILDCARDS:
            _refuse_near_miss(path, section, name, [node])
    return found


def _checked(params: Mapping[str, Any], valid: Iterable[str], *, where: str) -> dict[str, Any]:
    """``params`` without the generic ones, every key checked against ``valid`` (ConfigError: the nearest)."""
    mine = {k: v for k, v in params.items() if not is_generic(k)}
    check_known_keys(mine, valid, where=where)
    return mine


def _refuse_near_miss(path: Path, section: str, node: str, ours: Sequence[str]) -> None:
    """A section whose node name is close to one of ``ours`` is a misspelling (it would run on defaults)."""
    if difflib.get_close_matches(node, list(ours), n=1, cutoff=NEAREST_CUTOFF):
        raise ConfigError(unknown_key_message(section, ours, where=f"{path}: section").replace("key", "node", 1))


def params_files(argv: Sequence[str]) -> list[Path]:
    """The ``--params-file`` arguments of a ROS command line."""
    return [Path(argv[i + 1]) for i, a in enumerate(argv[:-1]) if a == "--params-file"]


def check_node_overrides(node: str, declared: Iterable[str], overrides: Iterable[str], argv: Sequence[str]) -> None:
    """Inside node ``node``: refuse values for undeclared parameters (naming the file they came from, or the
    command line) and params files without a section for this node."""
    declared = set(declared)
    files = params_files(argv)
    for name in sorted(overrides):
        if name in declared or is_generic(name):
            continue
        origin = next((str(f) for f in files if name in _node_values(f, node)), "the command line (-p)")
        raise ConfigError(unknown_key_message(name, declared, where=f"{origin}: {node}"))
    named = [f for f in files if any(section_node(s) not in WILDCARDS for s in _sections(f))]
    if named and not any(_applies(f, node) for f in named):
        raise ConfigError(f"{', '.join(map(str, named))}: no section for {node}: it would run on defaults")


def _node_values(path: Path, node: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for section, params in _sections(path).items():
        if section_node(section) in (node, *WILDCARDS):
            out.update(params)
    return out


def _applies(path: Path, node: str) -> bool:
    return any(section_node(s) == node for s in _sections(path))
