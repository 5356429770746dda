"""The dual-arm Flexiv rig: executor node (Flexiv driver) + inference node (π0.5), optionally a bag recording.

    ros2 launch rtc_controller rig.launch.py
    ros2 launch rtc_controller rig.launch.py guidance_mode:=none max_guidance_weight:=5 record:=true bag:=/data/bags/run1

Arguments (rtc_controller.ros.rig_launch): config (default <share>/config/rig.yaml), max_guidance_weight,
guidance_mode, record, bag, recorder, live_view, use_sim_time. Without the ROS CLI: ``rtc-bringup --config config/rig.yaml``.
"""

from rtc_controller.ros.rig_launch import rig_launch_description

CONFIG_FILE = "rig.yaml"
# Fixed overrides of this launch file (on top of the config file).
EXECUTOR_PARAMETERS = {"driver": "flexiv"}
INFERENCE_PARAMETERS = {"policy": "pi05"}


def generate_launch_description():
    return rig_launch_description(config_file=CONFIG_FILE, executor_parameters=EXECUTOR_PARAMETERS,
                                  inference_parameters=INFERENCE_PARAMETERS, bag_default="rtc_rig_bag",
                                  live_view_default=False)  # off on the rig: README, "Live view"
