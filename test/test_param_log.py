"""Run-time parameter changes are logged as node, name, old -> new, or the refusal's reason."""

from rtc_controller.ros.param_log import change_lines, log_changes


def test_accepted_and_refused_lines():
    assert change_lines("inference_node", {"max_guidance_weight": 5.0}, {"max_guidance_weight": 10.0}) == [
        "inference_node: parameter max_guidance_weight 10.0 -> 5.0"
    ]
    (line,) = change_lines("executor_node", {"fixed_d": 99}, {"fixed_d": -1}, refused="fixed_d must be <= 40")
    assert line == "executor_node: parameter fixed_d -1 -> 99 refused: fixed_d must be <= 40"


def test_a_refusal_then_an_acceptance_logs_both_with_their_severities():
    """rclpy raises when one call site logs at two severities; the node died at its first accepted change."""
    import rclpy.logging

    logger = rclpy.logging.get_logger("param_log_test")
    log_changes(logger, "executor_node", {"fixed_d": -7}, {"fixed_d": -1}, refused="fixed_d: must be in [-1, 10000]")
    log_changes(logger, "executor_node", {"fixed_d": 4}, {"fixed_d": -1})
    log_changes(logger, "executor_node", {"fixed_d": -9}, {"fixed_d": 4}, refused="fixed_d: must be in [-1, 10000]")
