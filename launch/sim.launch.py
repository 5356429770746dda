"""Simulated rig: executor node (sim driver) + inference node (built-in sim policy), optionally a bag recording.

    ros2 launch rtc_controller sim.launch.py
    ros2 launch rtc_controller sim.launch.py guidance_mode:=none max_guidance_weight:=5 record:=true bag:=out/sim_bag

Arguments (rtc_controller.ros.rig_launch): config (default <share>/config/sim.yaml), max_guidance_weight,
guidance_mode, record, bag, recorder, live_view, use_sim_time. Without the ROS CLI: ``rtc-bringup --config config/sim.yaml``.
"""

from rtc_controller.ros.rig_launch import rig_launch_description

CONFIG_FILE = "sim.yaml"
# Fixed overrides of this launch file: the sim driver and policy whatever config is passed (never real arms).
EXECUTOR_PARAMETERS = {"driver": "sim"}
INFERENCE_PARAMETERS = {"policy": "sim"}


def generate_launch_description():
    return rig_launch_description(config_file=CONFIG_FILE, executor_parameters=EXECUTOR_PARAMETERS,
                                  inference_parameters=INFERENCE_PARAMETERS, bag_default="rtc_sim_bag", live_view_default=True)
