"""Static checks of launch/*.launch.py (launch and launch_ros are not installed here).

They parse; every executable they name is a console script in setup.py; the config file they default to exists
and has a section per node; every parameter they set is declared by the node and present in that section; the
launch arguments from the issue exist; the recording is ``ros2 bag record -s mcap`` of known topics. Then each
file runs against minimal stand-ins for the launch API, so the node list it builds is checked too.
"""

import ast
import importlib
import importlib.util
import sys
import types
from pathlib import Path

import pytest
import yaml

from rtc_controller import topics
from rtc_controller.control.executor_params import PARAMS as EXECUTOR_PARAMS
from rtc_controller.app.inference_params import PARAMETERS as INFERENCE_PARAMS

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_FILES = sorted((ROOT / "launch").glob("*.launch.py"))
REQUIRED_ARGUMENTS = {"config", "max_guidance_weight", "guidance_mode", "record", "recorder", "live_view", "use_sim_time"}
BUILTIN_PARAMETERS = {"use_sim_time"}  # declared by every rclpy node
DECLARED = {topics.EXECUTOR_NODE: set(EXECUTOR_PARAMS), topics.INFERENCE_NODE: set(INFERENCE_PARAMS)}


def console_scripts() -> set[str]:
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and key.value == "console_scripts":
                    return {ast.literal_eval(e).split("=")[0].strip() for e in value.elts}
    raise AssertionError("setup.py has no console_scripts")


def calls(tree, name):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if (isinstance(func, ast.Name) and func.id == name) or (isinstance(func, ast.Attribute) and func.attr == name):
                yield node


def module_constant(tree, name):
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return node.value
    raise AssertionError(f"no module-level {name}")


def config_sections(config_file):
    data = yaml.safe_load((ROOT / "config" / config_file).read_text())
    return {node: section["ros__parameters"] for node, section in data.items()}


def test_every_parameter_is_documented_in_the_config_files():
    """Each node's parameters appear in config/sim.yaml, rig.yaml or twin.yaml (the README points there)."""
    from rtc_controller.app.node_tables import NODE_TABLES, valid_keys

    documented: dict[str, set[str]] = {}
    for config_file in ("sim.yaml", "rig.yaml", "twin.yaml"):
        for node, params in config_sections(config_file).items():
            documented.setdefault(node, set()).update(params)
    for node in NODE_TABLES:
        missing = valid_keys(node) - documented.get(node, set())
        assert not missing, f"{node}: parameters no config file documents: {sorted(missing)}"


def test_there_are_sim_and_rig_launch_files():
    assert {p.name for p in LAUNCH_FILES} == {"sim.launch.py", "rig.launch.py"}


SHARED = ROOT / "rtc_controller" / "ros" / "rig_launch.py"


def test_shared_launch_description_static():
    """The shared description: the two console-script nodes, the issue's arguments, ros2 bag record -s mcap."""
    tree = ast.parse(SHARED.read_text(), filename=str(SHARED))
    scripts = console_scripts()
    executables = [ast.literal_eval(kw.value) for c in calls(tree, "Node") for kw in c.keywords if kw.arg == "executable"]
    assert sorted(executables) == ["executor_node", "inference_node", "live_view_node", "rtc-record"]
    assert set(executables) <= scripts, f"not console scripts in setup.py: {set(executables) - scripts}"
    declared_args = {ast.literal_eval(c.args[0]) for c in calls(tree, "DeclareLaunchArgument")}
    assert REQUIRED_ARGUMENTS <= declared_args
    forwarded = module_constant(tree, "INFERENCE_ARGUMENTS")
    used_args = {ast.literal_eval(c.args[0]) for c in calls(tree, "LaunchConfiguration") if isinstance(c.args[0], ast.Constant)}
    used_args |= {ast.literal_eval(k) for k in forwarded.keys}
    assert used_args <= declared_args, f"undeclared launch arguments {used_args - declared_args}"
    params = {ast.literal_eval(v.elts[0]) for v in forwarded.values}
    assert params <= DECLARED[topics.INFERENCE_NODE]
    (record,) = list(calls(tree, "ExecuteProcess"))
    cmd = next(kw.value for kw in record.keywords if kw.arg == "cmd")
    assert [ast.literal_eval(e) for e in cmd.elts[:5]] == ["ros2", "bag", "record", "-s", "mcap"]


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_static(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    assert any(isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description" for n in tree.body)
    config_file = ast.literal_eval(module_constant(tree, "CONFIG_FILE"))
    assert (ROOT / "config" / config_file).is_file()
    sections = config_sections(config_file)
    assert set(sections) >= {topics.EXECUTOR_NODE, topics.INFERENCE_NODE}
    for node, constant in ((topics.EXECUTOR_NODE, "EXECUTOR_PARAMETERS"), (topics.INFERENCE_NODE, "INFERENCE_PARAMETERS")):
        names = set(ast.literal_eval(module_constant(tree, constant)))
        assert names <= DECLARED[node], f"{node} does not declare {names - DECLARED[node]}"
        assert names <= set(sections[node]), f"{config_file} {node} section lacks {names - set(sections[node])}"
    forwarded_params = {"max_guidance_weight", "guidance_mode"}  # rig_launch.INFERENCE_ARGUMENTS
    assert forwarded_params <= set(sections[topics.INFERENCE_NODE])


# --- run each file against stand-ins for the launch API ---------------------------------------------------------


class _Recorded:
    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


class _LaunchConfiguration(_Recorded):
    def perform(self, context):
        return context[self.args[0]]


def _stub_launch_modules(monkeypatch):
    monkeypatch.delitem(sys.modules, "rtc_controller.ros.rig_launch", raising=False)  # re-import on the stand-ins
    names = {
        "launch": ["LaunchDescription"],
        "launch.actions": ["DeclareLaunchArgument", "ExecuteProcess", "OpaqueFunction", "RegisterEventHandler"],
        "launch.event_handlers": ["OnProcessExit"],
        "launch.conditions": ["IfCondition"],
        "launch.substitutions": ["PathJoinSubstitution"],
        "launch_ros.actions": ["Node"],
        "launch_ros.substitutions": ["FindPackageShare"],
    }
    for module, classes in names.items():
        mod = types.ModuleType(module)
        for cls in classes:
            setattr(mod, cls, type(cls, (_Recorded,), {}))
        if module == "launch.substitutions":
            mod.LaunchConfiguration = _LaunchConfiguration
        monkeypatch.setitem(sys.modules, module, mod)
    monkeypatch.setitem(sys.modules, "launch_ros", types.ModuleType("launch_ros"))


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_builds_the_nodes(path, monkeypatch):
    _stub_launch_modules(monkeypatch)
    spec = importlib.util.spec_from_file_location(path.stem.replace(".", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    actions = description.args[0]
    (opaque,) = [a for a in actions if type(a).__name__ == "OpaqueFunction"]
    config = str(ROOT / "config" / module.CONFIG_FILE)
    context = {"config": config, "use_sim_time": "true", "max_guidance_weight": "5", "guidance_mode": "",
               "record": "true", "bag": "/tmp/no/such/dir/bag", "recorder": "ros2bag", "live_view": "true"}
    monkeypatch.setattr(module_rig_launch(), "check_recording", lambda bag, recorder: None)  # no rosbag2 here
    actions = opaque.kwargs["function"](context, **opaque.kwargs["kwargs"])
    nodes = {n.kwargs["name"]: n.kwargs for n in actions if type(n).__name__ == "Node"}
    assert set(nodes) == {topics.EXECUTOR_NODE, topics.INFERENCE_NODE, topics.LIVE_VIEW_NODE}
    inference = nodes[topics.INFERENCE_NODE]["parameters"]
    assert inference[0] == config
    assert inference[1]["max_guidance_weight"] == 5.0 and isinstance(inference[1]["max_guidance_weight"], float)
    assert "guidance_mode" not in inference[1], "an empty argument keeps the config file's value"
    assert inference[1]["use_sim_time"] is True
    assert "use_sim_time" not in nodes[topics.EXECUTOR_NODE]["parameters"][1], "the executor runs on its own clock"
    assert nodes[topics.EXECUTOR_NODE]["parameters"][1]["driver"] == module.EXECUTOR_PARAMETERS["driver"]
    (record,) = [a for a in actions if type(a).__name__ == "ExecuteProcess"]
    cmd = record.kwargs["cmd"]
    assert cmd[:7] == ["ros2", "bag", "record", "-s", "mcap", "-o", "/tmp/no/such/dir/bag"]
    (handler,) = [a for a in actions if type(a).__name__ == "RegisterEventHandler"]
    (on_exit,) = handler.args
    assert on_exit.kwargs["target_action"] is record, "the recorder's exit is watched"
    recorded = set(cmd[7:])
    for name in (topics.CHUNK, topics.ROBOT_STATE, topics.INFERENCE_DELAY, topics.MEASURED_DELAY, topics.ACTIVE_CHUNK,
                 topics.SWITCH_EVENTS):
        assert "/" + name in recorded
    assert topics.DIAGNOSTICS in recorded
    slots = config_sections(module.CONFIG_FILE)[topics.INFERENCE_NODE].get("camera_slots") or []
    assert {"/" + topics.camera_topic(s) for s in slots} <= recorded


def module_rig_launch():
    return sys.modules["rtc_controller.ros.rig_launch"]


def test_launch_errors_name_the_argument_the_file_and_the_recording(monkeypatch, tmp_path):
    _stub_launch_modules(monkeypatch)
    rig_launch = importlib.import_module("rtc_controller.ros.rig_launch")
    from rtc_controller.rtc import GUIDANCE_MODES

    assert rig_launch.GUIDANCE_MODES == list(GUIDANCE_MODES)
    assert rig_launch.typed_argument("max_guidance_weight", "5", float) == 5.0
    for raw in ("abc", "nan", "inf"):
        with pytest.raises(rig_launch.LaunchError, match=f"max_guidance_weight:='{raw}'"):
            rig_launch.typed_argument("max_guidance_weight", raw, float)
    # recording: an existing bag, an unwritable place, no rosbag2 here
    (tmp_path / "old").mkdir()
    with pytest.raises(rig_launch.LaunchError, match="exists already"):
        rig_launch.check_recording(str(tmp_path / "old"), "rtc")
    rig_launch.check_recording(str(tmp_path / "new" / "bag"), "rtc")
    monkeypatch.setattr(rig_launch.shutil, "which", lambda name: None)
    with pytest.raises(rig_launch.LaunchError, match="needs rosbag2"):
        rig_launch.check_recording(str(tmp_path / "bag"), "ros2bag")
    # the recorder exiting while the rig runs stops the launch with an error; during shutdown it is the normal end
    event = types.SimpleNamespace(returncode=1, action=types.SimpleNamespace(name="recorder"))
    with pytest.raises(rig_launch.LaunchError, match="recording stopped while the rig was running"):
        rig_launch._recording_exited(event, types.SimpleNamespace(is_shutdown=False))
    assert rig_launch._recording_exited(event, types.SimpleNamespace(is_shutdown=True)) is None
    # a misspelt key in the config file: one line naming the file, the section, the key and the nearest name
    bad = tmp_path / "rig.yaml"
    text = (ROOT / "config" / "sim.yaml").read_text().replace("max_linear_speed_m_s:", "max_linear_sped_m_s:")
    bad.write_text(text)
    context = {"config": str(bad), "use_sim_time": "false", "max_guidance_weight": "", "guidance_mode": "",
               "record": "false", "bag": "", "recorder": "rtc", "live_view": "false"}
    from rtc_controller.config_check import ConfigError

    with pytest.raises(ConfigError, match="max_linear_sped_m_s.*did you mean 'max_linear_speed_m_s'"):
        rig_launch._actions(context, executor_parameters={}, inference_parameters={})
