"""inference_node's ``policy_config``: the section is loaded and cross-checked against the node's own parameters
(each contradiction names both values), and its camera mapping decides the subscribed topics."""

import pytest

from rtc_controller.config_check import ConfigError
from rtc_controller.app.inference_params import PARAMETERS, camera_topics, policy_section


def _params(**kw):
    p = {name: spec.default for name, spec in PARAMETERS.items()}
    p.update(policy="pi05", policy_config="pi05_no_state_delta", horizon=10)
    p.update(kw)
    return p


def test_section_loaded_and_cameras_from_it():
    section = policy_section(_params(), horizon=10)
    assert section.action_horizon == 10 and section.checkpoint_dir.endswith("pi05_flexiv_delta/29999")
    slots, cams = camera_topics(_params(), section)
    assert slots == ("base_0_rgb", "left_wrist_0_rgb") and cams["left_wrist_0_rgb"] == "rtc/camera/left_wrist_0_rgb"
    assert policy_section(_params(policy_config=""), horizon=10) is None
    assert camera_topics(_params(camera_slots=["base_0_rgb"]), None) == (("base_0_rgb",), {"base_0_rgb": "rtc/camera/base_0_rgb"})


def test_contradictions_are_refused_naming_both_values():
    with pytest.raises(ValueError, match="horizon 50 differs from the policy section's action_horizon 10"):
        policy_section(_params(horizon=50), horizon=50)
    with pytest.raises(ValueError, match="checkpoint '/other' differs from .*pi05_flexiv_delta"):
        policy_section(_params(checkpoint="/other"), horizon=10)
    with pytest.raises(ValueError, match="num_steps 5 differs from the policy section's num_steps 10"):
        policy_section(_params(num_steps=5), horizon=10)
    with pytest.raises(ValueError, match="set policy: pi05"):
        policy_section(_params(policy="sim"), horizon=10)
    with pytest.raises(ConfigError, match="no_such_section"):
        policy_section(_params(policy_config="no_such_section"), horizon=10)
    with pytest.raises(ValueError, match="camera_slots .* differ from the policy section's cameras"):
        camera_topics(_params(camera_slots=["right_wrist_0_rgb"]), policy_section(_params(), horizon=10))


def test_a_missing_section_with_another_policy_says_no_such_policy_config():
    with pytest.raises(ConfigError, match="no such policy config 'no_such_section'"):
        policy_section(_params(policy="sim", policy_config="no_such_section"), horizon=10)
    with pytest.raises(ValueError, match="no such policy config 'config/policy/nope.yaml'"):
        policy_section(_params(policy="sim", policy_config="config/policy/nope.yaml"), horizon=10)


@pytest.mark.parametrize("policy", ["sim", "twin", "twin_expert"])
def test_pi05_paths_with_another_policy_are_refused(policy):
    with pytest.raises(ValueError, match=f"checkpoint is a π0.5 setting.* policy '{policy}' would ignore"):
        policy_section(_params(policy=policy, policy_config="", checkpoint="/ckpt"), horizon=10)
    with pytest.raises(ValueError, match="tokenizer_path is a π0.5 setting"):
        policy_section(_params(policy=policy, policy_config="", tokenizer_path="/tok.model"), horizon=10)
    assert policy_section(_params(policy=policy, policy_config=""), horizon=10) is None


def test_rig_yaml_and_the_shipped_policy_sections_agree_on_paths():
    from rtc_controller.config_files import config_path
    from rtc_controller.config_check import load_yaml
    from rtc_controller.policy.pi05.policy_section import load_policy_section

    rig = load_yaml(config_path("rig.yaml"))["inference_node"]["ros__parameters"]
    sections = [load_policy_section(p) for p in sorted(config_path("rig.yaml").parent.glob("policy/*.yaml"))]
    assert len(sections) >= 2
    assert rig["checkpoint"] in {s.checkpoint_dir for s in sections}
    assert {s.tokenizer_path for s in sections} == {rig["tokenizer_path"]}
