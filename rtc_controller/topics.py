"""Topic and node names shared by the nodes, the recorder, the launch files and the replay tool.

Names are relative, so a launch file can push the whole rig into a namespace.
"""

CHUNK = "rtc/chunk"  # trajectory_msgs/JointTrajectory, header.stamp = t_obs (executor clock)
# The chunk publisher offers AUTOMATIC liveliness with this lease [s]: a subscriber (the executor) is told within it
# when the inference process or the link is gone (docs/two_hosts.md, "QoS").
CHUNK_LIVELINESS_LEASE_S = 1.0
CHUNK_UNGUIDED = "rtc/chunk_unguided"  # debug: the same noise sampled without guidance
ROBOT_STATE = "rtc/robot_state"  # sensor_msgs/JointState in the action space, stamped by the executor
PROMPT = "rtc/prompt"  # std_msgs/String
CAMERA_PREFIX = "rtc/camera/"  # + slot name (e.g. base_0_rgb) -> sensor_msgs/Image; + "/compressed" -> CompressedImage
DIAGNOSTICS = "/diagnostics"  # diagnostic_msgs/DiagnosticArray
TWIN_TASK = "rtc/twin/task"  # diagnostic_msgs/DiagnosticStatus: the MuJoCo twin's task status (twin_node)

EXECUTOR_NODE = "executor_node"
INFERENCE_NODE = "inference_node"
RECORDER_NODE = "rtc_recorder"
LIVE_VIEW_NODE = "rtc_live_view"
TWIN_NODE = "twin_node"

# Published by the executor (node-private names, i.e. ~/inference_delay).
INFERENCE_DELAY = EXECUTOR_NODE + "/inference_delay"  # std_msgs/Int32: d [action steps] for the next inference
MEASURED_DELAY = EXECUTOR_NODE + "/measured_delay"  # std_msgs/Float64: δ [s] of the last accepted chunk
ACTIVE_CHUNK = EXECUTOR_NODE + "/active_chunk"  # std_msgs/Header: stamp = t_obs of the chunk being executed
POLICY_IDENTITY = INFERENCE_NODE + "/policy"  # std_msgs/String, latched: JSON policy.identity.PolicyIdentity
SWITCH_EVENTS = EXECUTOR_NODE + "/switch"  # diagnostic_msgs/DiagnosticStatus, one per chunk switch (k*, d, jump)


def camera_topic(slot: str) -> str:
    return CAMERA_PREFIX + slot
