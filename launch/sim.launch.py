"""Simulated rig: executor node (sim driver) + inference node (built-in sim policy), optionally a bag recording.

    ros2 launch rtc_controller sim.launch.py
    ros2 launch rtc_controller sim.launch.py guidance_mode:=none max_guidance_weight:=5 record:=true bag:=out/sim_bag

Arguments: config (parameter file, default <share>/config/sim.yaml), max_guidance_weight and guidance_mode
(override the file when given), record + bag (``ros2 bag record -s mcap`` of the rig's topics), use_sim_time.
Without the ROS CLI: ``rtc-bringup --config config/sim.yaml`` starts the same nodes from the same file.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from rtc_controller import topics

PACKAGE = "rtc_controller"
CONFIG_FILE = "sim.yaml"
# Fixed overrides of this launch file (node -> {parameter: value}), on top of the config file.
EXECUTOR_PARAMETERS = {"driver": "sim"}
INFERENCE_PARAMETERS = {"policy": "sim"}
# Launch arguments forwarded to inference_node parameters when not empty (argument -> (parameter, type)).
INFERENCE_ARGUMENTS = {"max_guidance_weight": ("max_guidance_weight", float), "guidance_mode": ("guidance_mode", str)}
RECORD_TOPICS = [
    "/" + topics.CHUNK, "/" + topics.CHUNK_UNGUIDED, "/" + topics.ROBOT_STATE, "/" + topics.PROMPT,
    "/" + topics.INFERENCE_DELAY, "/" + topics.MEASURED_DELAY, "/" + topics.ACTIVE_CHUNK, topics.DIAGNOSTICS,
]


def _nodes(context, *args, **kwargs):
    config = LaunchConfiguration("config").perform(context)
    use_sim_time = LaunchConfiguration("use_sim_time").perform(context).lower() in ("true", "1")
    inference = dict(INFERENCE_PARAMETERS)
    for argument, (parameter, kind) in INFERENCE_ARGUMENTS.items():
        value = LaunchConfiguration(argument).perform(context)
        if value != "":
            inference[parameter] = kind(value)
    return [
        Node(
            package=PACKAGE,
            executable="executor_node",
            name=topics.EXECUTOR_NODE,
            parameters=[config, {**EXECUTOR_PARAMETERS, "use_sim_time": use_sim_time}],
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


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument(
            "config",
            default_value=PathJoinSubstitution([FindPackageShare(PACKAGE), "config", CONFIG_FILE]),
            description="ROS parameter file with executor_node and inference_node sections",
        ),
        DeclareLaunchArgument("max_guidance_weight", default_value="", description="β ('' = from the config)"),
        DeclareLaunchArgument("guidance_mode", default_value="", description="stop | full | none ('' = from the config)"),
        DeclareLaunchArgument("record", default_value="false", description="record the rig's topics with ros2 bag (mcap)"),
        DeclareLaunchArgument("bag", default_value="rtc_sim_bag", description="output directory of the recording"),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="use /clock (bag replay)"),
        OpaqueFunction(function=_nodes),
        ExecuteProcess(
            cmd=["ros2", "bag", "record", "-s", "mcap", "-o", LaunchConfiguration("bag"), *RECORD_TOPICS],
            condition=IfCondition(LaunchConfiguration("record")),
            output="screen",
        ),
    ])
