"""Run-time parameter changes are logged as node, name, old -> new, or the refusal's reason."""

from rtc_controller.ros.param_log import change_lines


def test_accepted_and_refused_lines():
    assert change_lines("inference_node", {"max_guidance_weight": 5.0}, {"max_guidance_weight": 10.0}) == [
        "inference_node: parameter max_guidance_weight 10.0 -> 5.0"
    ]
    (line,) = change_lines("executor_node", {"fixed_d": 99}, {"fixed_d": -1}, refused="fixed_d must be <= 40")
    assert line == "executor_node: parameter fixed_d -1 -> 99 refused: fixed_d must be <= 40"
