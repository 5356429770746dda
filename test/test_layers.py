"""The import-layer contract: a package of ``rtc_controller`` imports only from layers below it (or itself).

Floors, lowest first (``LAYERS``): the config and geometry floor, then ``rtc`` (guidance math), ``robots``
(drivers), ``control`` (the executor core), ``policy``, ``bags`` (bag I/O), ``sim`` (the twin), ``train``,
``app`` (composition: the driver factory, the policy registry), ``ros`` (the only rclpy layer), ``tools`` (the CLIs). Every import
is counted, also a lazy one inside a function.
The known exceptions are ``ALLOWED`` (each with why and where it goes): the list may only shrink, a stale entry
fails too, so the contract tightens as the code moves.
"""

from __future__ import annotations

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "rtc_controller"
FLOOR = ("geometry", "action_space", "topics", "config_check", "config_files", "param_schema", "param_files",
         "chunk_timing", "shutdown")
LAYERS: tuple[tuple[str, ...], ...] = (FLOOR, ("rtc",), ("robots",), ("control",), ("policy",), ("bags",), ("analysis",),
                                       ("sim",), ("train",), ("app",), ("ros",), ("tools",))  # fmt: skip
ROS_MODULES = ("rclpy", "rcl_interfaces", "std_msgs", "sensor_msgs", "trajectory_msgs", "diagnostic_msgs",
               "geometry_msgs", "std_srvs", "nav_msgs", "visualization_msgs", "builtin_interfaces")  # fmt: skip

# (importing file relative to rtc_controller/, imported module): why, and where it goes.
ALLOWED: dict[tuple[str, str], str] = {}


def _level(name: str) -> int:
    for i, layer in enumerate(LAYERS):
        if name in layer:
            return i
    raise AssertionError(f"rtc_controller.{name} is in no layer: add it to LAYERS in {__file__}")


def _unit(path: pathlib.Path) -> str:
    """The layer unit of a file: its top package, or the module name for a top-level module."""
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imports(path: pathlib.Path, where: pathlib.Path | None = None) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in ``path`` (read as if at ``where``), relative ones resolved."""
    rel = (where or path).relative_to(PACKAGE.parent).with_suffix("").parts
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(rel[: len(rel) - node.level]) if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            if node.module is None or module == "rtc_controller":
                out += [(node.lineno, f"{module}.{a.name}") for a in node.names]
            else:
                out.append((node.lineno, module))
    return out


def _files() -> list[pathlib.Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE)


def _upward() -> dict[tuple[str, str], list[str]]:
    found: dict[tuple[str, str], list[str]] = {}
    for path in _files():
        unit = _unit(path)
        for line, module in _imports(path):
            parts = module.split(".")
            if parts[0] != "rtc_controller" or len(parts) < 2 or parts[1] == unit:
                continue
            if _level(parts[1]) > _level(unit):
                key = (str(path.relative_to(PACKAGE)), module)
                found.setdefault(key, []).append(f"rtc_controller/{key[0]}:{line} imports {module}")
    return found


def test_no_import_goes_up_a_layer():
    new = [where for key, wheres in _upward().items() if key not in ALLOWED for where in wheres]
    assert not new, "upward imports (import only from a lower layer, see LAYERS):\n" + "\n".join(new)


def test_the_allowlist_only_shrinks():
    stale = sorted(set(ALLOWED) - set(_upward()))
    assert not stale, f"these exceptions are gone: delete them from ALLOWED: {stale}"


def test_only_ros_imports_rclpy_and_messages():
    bad = [f"{p.relative_to(PACKAGE)}:{line} imports {m}" for p in _files() if _unit(p) != "ros"
           for line, m in _imports(p) if m.split(".")[0] in ROS_MODULES]  # fmt: skip
    assert not bad, "ROS imports outside rtc_controller/ros/:\n" + "\n".join(bad)


def test_geometry_is_numpy_only():
    for path in (PACKAGE / "geometry").rglob("*.py"):
        for line, module in _imports(path):
            assert module.split(".")[0] in {"__future__", "math", "numpy", "typing"}, f"{path}:{line} imports {module}"


def test_the_contract_sees_a_violation(tmp_path):
    """The AST reader resolves relative and lazy imports (so a violation cannot hide in a function)."""
    fake = PACKAGE / "robots" / "x.py"
    path = tmp_path / "x.py"
    path.write_text("def f():\n    from ..control import executor\n    from rtc_controller.tools import demo\n")
    mods = [m for _, m in _imports(path, fake)]
    assert mods == ["rtc_controller.control", "rtc_controller.tools"]
    assert all(_level(m.split(".")[1]) > _level("robots") for m in mods)


def test_no_circle_within_a_layer():
    """Units of one layer (the floor's modules) may import each other, but not round a circle."""
    edges: dict[str, set[str]] = {}
    for path in _files():
        unit = _unit(path)
        for _, module in _imports(path):
            parts = module.split(".")
            if parts[0] == "rtc_controller" and len(parts) > 1 and parts[1] != unit and _level(parts[1]) == _level(unit):
                edges.setdefault(unit, set()).add(parts[1])

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in edges.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    circles = sorted(u for u in edges if u in reach(u))
    assert not circles, f"these units import round a circle: {circles} ({ {u: sorted(edges[u]) for u in circles} })"
