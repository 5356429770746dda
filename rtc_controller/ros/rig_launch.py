"""The rig's launch description, shared by ``launch/rig.launch.py`` and ``launch/sim.launch.py``.

Executor node + inference node from one parameter file, with fixed per-file overrides on top (sim.launch.py pins
the sim driver and the sim policy, so it never drives real arms whatever file is passed), optionally the live view
(``live_view_node``: chunks, frozen prefix, executed path and switches for RViz/Foxglove) and a recording.

Launch arguments: config (parameter file, default <share>/config/<file>), max_guidance_weight and guidance_mode
(override the file when not empty), record + bag + recorder (``ros2bag``: ``ros2 bag record -s mcap`` of the rig's
topics, those ``rtc-record`` records, the config's cameras included; ``rtc``: ``rtc-record``), live_view,
use_sim_time (the inference node and the live view; the executor always runs on its own monotonic clock).

Nothing starts on bad input, and nothing runs on silently: a value that is not one of an argument's choices, a β
that is not a number (``launch argument max_guidance_weight:='abc' …``), an unknown or misspelt key or section in
the config file (``rtc_controller.param_files``), a recording that cannot start (no rosbag2 or MCAP plugin, an
existing bag, an unwritable directory) end the launch with that one line and exit code 1. A recorder that exits
while the rig runs (disk full, a crash) stops the whole launch with an error: a recording run records or stops.
Imports ``launch``/``launch_ros``: a ROS install only (``rtc-bringup`` starts the same nodes without the ROS CLI).
"""

from __future__ import annotations

import importlib.util
import math
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, OpaqueFunction, RegisterEventHandler
from launch.event_handlers import OnProcessExit
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from rtc_controller import topics
from rtc_controller.app.node_tables import check_params_file
from rtc_controller.bags.bag_types import topic_types

PACKAGE = "rtc_controller"
# Launch arguments forwarded to inference_node parameters when not empty (argument -> (parameter, type)).
INFERENCE_ARGUMENTS = {"max_guidance_weight": ("max_guidance_weight", float), "guidance_mode": ("guidance_mode", str)}
LAUNCH_ARGUMENTS = ("config", "max_guidance_weight", "guidance_mode", "record", "bag", "recorder", "live_view",
                    "use_sim_time")  # fmt: skip
BOOLEAN_CHOICES = ["true", "false"]
GUIDANCE_MODES = ["stop", "full", "none", "hard", "trained", "bid"]  # rtc.GUIDANCE_MODES (a test keeps them equal; importing rtc loads JAX)
RECORDERS = ["ros2bag", "rtc"]


class LaunchError(ValueError):
    """A launch argument, config file or recording that cannot be used; the message names it."""


def _is_true(value: str) -> bool:
    return value.lower() in ("true", "1")


def typed_argument(name: str, raw: str, kind: type) -> Any:
    """A launch argument's text as ``kind`` (float: finite), or LaunchError naming the argument and the value."""
    if kind is float:
        try:
            value = float(raw)
        except ValueError:
            raise LaunchError(f"launch argument {name}:={raw!r} is not a number (e.g. {name}:=5)") from None
        if not math.isfinite(value):
            raise LaunchError(f"launch argument {name}:={raw!r} must be finite")
        return value
    return kind(raw)


def record_topics(config_path: str) -> list[str]:
    """Absolute names of the topics to record: the package's topics plus the cameras the config's inference node
    subscribes (its camera_slots, or its policy section's cameras)."""
    from rtc_controller.app.inference_params import configured_camera_topics  # imports JAX (the policy section's)

    cameras = configured_camera_topics(check_params_file(config_path).get(topics.INFERENCE_NODE, {}))
    return [n if n.startswith("/") else "/" + n for n in topic_types(cameras)]


def check_recording(bag: str, recorder: str) -> None:
    """Before anything starts: the recorder exists and can create ``bag`` (LaunchError with the reason)."""
    if recorder == "ros2bag":
        if shutil.which("ros2") is None or importlib.util.find_spec("ros2bag") is None:
            raise LaunchError("record:=true needs rosbag2 (apt install ros-jazzy-rosbag2 "
                              "ros-jazzy-rosbag2-storage-mcap), or recorder:=rtc")  # fmt: skip
        try:
            from ament_index_python.packages import get_package_share_directory

            get_package_share_directory("rosbag2_storage_mcap")
        except (ImportError, LookupError) as exc:
            raise LaunchError(f"record:=true: rosbag2's MCAP storage plugin is missing ({exc}); "
                              "apt install ros-jazzy-rosbag2-storage-mcap, or recorder:=rtc") from None  # fmt: skip
    path = Path(bag).expanduser().absolute()
    if path.exists():
        raise LaunchError(f"bag:={bag}: {path} exists already; choose a new bag directory")
    parent = next(p for p in path.parents if p.exists())
    if not os.access(parent, os.W_OK | os.X_OK):
        raise LaunchError(f"bag:={bag}: cannot create {path}: {parent} is not writable")


def _recording_exited(event, context):
    """OnProcessExit of the recorder: during the launch's shutdown that is the normal end; otherwise the rig would
    run on without its bag, so the launch stops with an error (an exception here ends ``ros2 launch`` with 1)."""
    if context.is_shutdown:
        return None
    raise LaunchError(f"the recording stopped while the rig was running ({event.action.name} exited with code "
                      f"{event.returncode}; see its output above): stopping the launch")  # fmt: skip


def _recorder(bag: str, recorder: str, config: str):
    if recorder == "ros2bag":
        return ExecuteProcess(cmd=["ros2", "bag", "record", "-s", "mcap", "-o", bag, *record_topics(config)],
                              name="recorder", output="screen")  # fmt: skip
    return Node(package=PACKAGE, executable="rtc-record", name=topics.RECORDER_NODE, output="screen",
                arguments=["--output", bag, "--config", config])  # fmt: skip


def _actions(context, *, executor_parameters: Mapping[str, Any], inference_parameters: Mapping[str, Any]):
    config = LaunchConfiguration("config").perform(context)
    check_params_file(config, nodes=(topics.EXECUTOR_NODE, topics.INFERENCE_NODE))  # ConfigError: one line
    use_sim_time = _is_true(LaunchConfiguration("use_sim_time").perform(context))
    inference = dict(inference_parameters)
    for argument, (parameter, kind) in INFERENCE_ARGUMENTS.items():
        value = LaunchConfiguration(argument).perform(context)
        if value != "":
            inference[parameter] = typed_argument(argument, value, kind)
    node = {"output": "screen", "emulate_tty": True, "package": PACKAGE}
    actions: list = [
        Node(executable="executor_node", name=topics.EXECUTOR_NODE, parameters=[config, dict(executor_parameters)],
             **node),  # fmt: skip
        Node(executable="inference_node", name=topics.INFERENCE_NODE,
             parameters=[config, {**inference, "use_sim_time": use_sim_time}], **node),  # fmt: skip
    ]
    if _is_true(LaunchConfiguration("live_view").perform(context)):
        actions.append(Node(executable="live_view_node", name=topics.LIVE_VIEW_NODE,
                            parameters=[config, {"use_sim_time": use_sim_time}], **node))  # fmt: skip
    if _is_true(LaunchConfiguration("record").perform(context)):
        bag = LaunchConfiguration("bag").perform(context)
        recorder_kind = LaunchConfiguration("recorder").perform(context)
        check_recording(bag, recorder_kind)
        recorder = _recorder(bag, recorder_kind, config)
        actions += [recorder, RegisterEventHandler(OnProcessExit(target_action=recorder, on_exit=_recording_exited))]
    return actions


def rig_launch_description(
    *,
    config_file: str,
    executor_parameters: Mapping[str, Any],
    inference_parameters: Mapping[str, Any],
    bag_default: str,
    live_view_default: bool = False,
) -> LaunchDescription:
    """Launch description for ``config/<config_file>`` with the given fixed parameter overrides."""
    return LaunchDescription([
        DeclareLaunchArgument(
            "config",
            default_value=PathJoinSubstitution([FindPackageShare(PACKAGE), "config", config_file]),
            description="ROS parameter file with executor_node and inference_node sections",
        ),
        DeclareLaunchArgument("max_guidance_weight", default_value="", description="β >= 0 ('' = from the config)"),
        DeclareLaunchArgument("guidance_mode", default_value="", choices=["", *GUIDANCE_MODES],
                              description=f"{' | '.join(GUIDANCE_MODES)} ('' = from the config)"),
        DeclareLaunchArgument("record", default_value="false", choices=BOOLEAN_CHOICES,
                              description="record the rig's topics; a recorder that fails stops the launch"),
        DeclareLaunchArgument("bag", default_value=bag_default, description="output directory of the recording"),
        DeclareLaunchArgument("recorder", default_value="ros2bag", choices=RECORDERS,
                              description="ros2bag (ros2 bag record -s mcap) | rtc (rtc-record, no rosbag2 needed)"),
        DeclareLaunchArgument("live_view", default_value=str(live_view_default).lower(), choices=BOOLEAN_CHOICES,
                              description="publish the live view (chunks, frozen prefix, executed path) for RViz"),
        DeclareLaunchArgument("use_sim_time", default_value="false", choices=BOOLEAN_CHOICES,
                              description="use /clock in the inference node and the live view (bag replay)"),
        OpaqueFunction(function=_actions, kwargs={"executor_parameters": dict(executor_parameters),
                                                  "inference_parameters": dict(inference_parameters)}),
    ])  # fmt: skip
