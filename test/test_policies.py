"""app/policies: one registry says how each policy is built and which node parameters it takes."""

import pytest

from rtc_controller.app.inference_params import PARAMETERS
from rtc_controller.app.policies import POLICIES, POLICY_NAMES, make_policy, node_policy_params

NODE = {name: spec.default for name, spec in PARAMETERS.items()}


def test_every_name_the_node_accepts_has_an_entry():
    assert set(POLICY_NAMES) == set(POLICIES)
    assert PARAMETERS["policy"].refusal("policy", "gpt") is not None
    with pytest.raises(ValueError, match="unknown policy 'gpt'"):
        make_policy("gpt")  # type: ignore[arg-type]


def test_the_node_parameters_of_each_policy():
    shape = {"section": None, "horizon": 50, "dt_s": 0.02, "names": ("a",)}
    assert node_policy_params(NODE | {"policy": "sim"}, **shape) == {"horizon": 50, "dt_s": 0.02, "names": ("a",)}
    twin = node_policy_params(NODE | {"policy": "twin", "twin_snapshot": "w"}, **shape)
    assert twin["snapshot"] == "w" and POLICIES["twin"].privileged_state and POLICIES["twin_expert"].privileged_state
    pi05 = node_policy_params(NODE | {"policy": "pi05", "checkpoint": "c", "tokenizer_path": "t"}, **shape)
    assert pi05 == {"checkpoint_dir": "c", "tokenizer_path": "t", "action_horizon": 50, "action_names": ("a",)}
    assert not POLICIES["sim"].runs_on_twin and POLICIES["pi05"].runs_on_twin


def test_the_sim_policy_builds_from_the_node_parameters():
    params = node_policy_params(NODE, section=None, horizon=50, dt_s=0.02, names=tuple(NODE["action_names"]))
    assert make_policy("sim", **params).horizon == 50
