"""The rig's launch description, shared by ``launch/rig.launch.py`` and ``launch/sim.launch.py``.

Executor node + inference node from one parameter file, with fixed per-file overrides on top (sim.launch.py pins
the sim driver and the sim policy, so it never drives real arms whatever file is passed), and optionally
``ros2 bag record -s mcap`` of the rig's topics (those ``rtc-record`` records, the config's cameras included).

Launch arguments: config (parameter file, default <share>/config/<file>), max_guidance_weight and guidance_mode
(override the file when not empty), record + bag, use_sim_time. Imports ``launch``/``launch_ros``: a ROS install
only (``rtc-bringup`` starts the same nodes where the ROS CLI is missing).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from rtc_controller import topics
from rtc_controller.tools.bag_io import topic_types

PACKAGE = "rtc_controller"
# Launch arguments forwarded to inference_node parameters when not empty (argument -> (parameter, type)).
INFERENCE_ARGUMENTS = {"max_guidance_weight": ("max_guidance_weight", float), "guidance_mode": ("guidance_mode", str)}
LAUNCH_ARGUMENTS = ("config", "max_guidance_weight", "guidance_mode", "record", "bag", "use_sim_time")


def _is_true(value: str) -> bool:
    return value.lower() in ("true", "1")


def record_topics(config_path: str) -> list[str]:
    """Absolute names of the topics to record: the package's topics plus the config's camera topics."""
    import yaml

    try:
        with open(config_path) as f:
            params = ((yaml.safe_load(f) or {}).get(topics.INFERENCE_NODE) or {}).get("ros__parameters") or {}
    except OSError:
        params = {}
    slots = [str(s) for s in params.get("camera_slots") or () if str(s)]
    names = topic_types(slots, compressed=bool(params.get("use_compressed_images", False)))
    return [n if n.startswith("/") else "/" + n for n in names]


def _actions(context, *, executor_parameters: Mapping[str, Any], inference_parameters: Mapping[str, Any]):
    config = LaunchConfiguration("config").perform(context)
    use_sim_time = _is_true(LaunchConfiguration("use_sim_time").perform(context))
    inference = dict(inference_parameters)
    for argument, (parameter, kind) in INFERENCE_ARGUMENTS.items():
        value = LaunchConfiguration(argument).perform(context)
        if value != "":
            inference[parameter] = kind(value)
    actions = [
        Node(
            package=PACKAGE,
            executable="executor_node",
            name=topics.EXECUTOR_NODE,
            parameters=[config, {**executor_parameters, "use_sim_time": use_sim_time}],
            output="screen",
            emulate_tty=True,
        ),
        Node(
            package=PACKAGE,
            executable="inference_node",
            name=topics.INFERENCE_NODE,
            parameters=[config, {**inference, "use_sim_time": use_sim_time}],
            output="screen",
            emulate_tty=True,
        ),
    ]
    if _is_true(LaunchConfiguration("record").perform(context)):
        bag = LaunchConfiguration("bag").perform(context)
        actions.append(ExecuteProcess(cmd=["ros2", "bag", "record", "-s", "mcap", "-o", bag, *record_topics(config)],
                                      output="screen"))
    return actions


def rig_launch_description(
    *,
    config_file: str,
    executor_parameters: Mapping[str, Any],
    inference_parameters: Mapping[str, Any],
    bag_default: str,
) -> LaunchDescription:
    """Launch description for ``config/<config_file>`` with the given fixed parameter overrides."""
    return LaunchDescription([
        DeclareLaunchArgument(
            "config",
            default_value=PathJoinSubstitution([FindPackageShare(PACKAGE), "config", config_file]),
            description="ROS parameter file with executor_node and inference_node sections",
        ),
        DeclareLaunchArgument("max_guidance_weight", default_value="", description="β ('' = from the config)"),
        DeclareLaunchArgument("guidance_mode", default_value="", description="stop | full | none ('' = from the config)"),
        DeclareLaunchArgument("record", default_value="false", description="record the rig's topics with ros2 bag (mcap)"),
        DeclareLaunchArgument("bag", default_value=bag_default, description="output directory of the recording"),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="use /clock (bag replay)"),
        OpaqueFunction(function=_actions, kwargs={"executor_parameters": dict(executor_parameters),
                                                  "inference_parameters": dict(inference_parameters)}),
    ])  # fmt: skip
