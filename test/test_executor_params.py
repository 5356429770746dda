"""The rig parameters: the shipped rig.yaml and sim.yaml are consistent and build, and inconsistent rigs are refused
with the reason (RDK generation vs serials, the RT rate, the NRT rate, per-arm lists, the ready pose)."""

from pathlib import Path

import pytest

from rtc_controller.app.drivers import driver_factory
from rtc_controller.config_check import check_known_keys, load_yaml
from rtc_controller.control.executor_params import (
    PARAMS,
    approach_config,
    build_config,
    check_consistency,
    check_param,
)
from rtc_controller.robots.flexiv_rdk1 import FlexivRdk1Config
from rtc_controller.robots.flexiv_rdk2 import FlexivRdk2Config

ROOT = Path(__file__).resolve().parents[1]


def values_of(name: str) -> dict:
    section = load_yaml(ROOT / "config" / name)["executor_node"]["ros__parameters"]
    check_known_keys(section, PARAMS, where=f"{name}: executor_node")
    return {**{k: p.default for k, p in PARAMS.items()}, **section}


@pytest.mark.parametrize("name", ["rig.yaml", "sim.yaml"])
def test_shipped_configs_are_valid_and_build(name):
    v = values_of(name)
    assert [r for r in (check_param(k, x) for k, x in v.items()) if r] == []
    assert check_consistency(v) is None
    build_config(v)
    driver_factory(v)  # builds the driver's frozen config (no connection)


def test_rig_yaml_is_a_consistent_rizon_pair_with_two_different_world_frame_boxes():
    v = values_of("rig.yaml")
    cfg = driver_factory(v).args[0]
    assert isinstance(cfg, FlexivRdk1Config) and len(cfg.serial_numbers) == 2
    assert cfg.command_rate_hz <= 100 and cfg.target_velocity and cfg.zero_ft_sensor
    assert cfg.tool_names == cfg.gripper_names == ("Flexiv-GN01", "Flexiv-GN01")
    assert v["workspace_min_m"][:3] != v["workspace_min_m"][3:] or v["workspace_max_m"][:3] != v["workspace_max_m"][3:]
    arms = build_config(v).safety.arms
    assert arms[0].workspace_min_m != arms[1].workspace_min_m
    assert v["start_holding"] is True


@pytest.mark.parametrize(
    "change, reason",
    [
        (dict(flexiv_rdk=2, serial_numbers=["Rizon4s-123456"]), "Rizon arms need flexiv_rdk: 1 (RDK 1.9)"),
        (dict(flexiv_rdk=1, serial_numbers=["Enlight-LL-123456"]), "Enlight/MICO robots need flexiv_rdk: 2"),
        (dict(flexiv_rdk=2, serial_numbers=["Enlight-LL-123456"], servo_rate_hz=500.0),
         "servo_rate_hz must be 1000, got 500"),
        (dict(rdk1_command_rate_hz=30.0), "must divide servo_rate_hz"),
        (dict(flexiv_rdk=1, serial_numbers=["Rizon4s-123456"]), "one robot per arm: 2 serial_numbers"),
        (dict(tool_names=["Flexiv-GN01"]), "tool_names needs one name per arm"),
        (dict(ready_pose=[0.1, 0.2]), "ready_pose needs one cartesian pose per arm (14 values)"),
    ],
)  # fmt: skip
def test_inconsistent_rigs_are_refused_with_the_reason(change, reason):
    v = values_of("rig.yaml")
    v.update(change)
    assert reason in (check_consistency(v) or "")


def test_parameter_ranges():
    assert "must be in [1.0, 100.0]" in check_param("rdk1_command_rate_hz", 1000.0)
    assert "6 values" in check_param("max_contact_wrench", [1.0, 2.0])
    assert ">= 0" in check_param("max_contact_wrench", [-1.0] * 6)
    assert check_param("max_contact_wrench", [float("inf")] * 12) is None


def test_unlimited_contact_wrench_leaves_the_robot_setting_and_rdk2_builds():
    v = values_of("rig.yaml")
    v.update(flexiv_rdk=2, serial_numbers=["Enlight-LL-123456"], max_contact_wrench=[float("inf")] * 6)
    cfg = driver_factory(v).args[0]
    assert isinstance(cfg, FlexivRdk2Config) and cfg.max_contact_wrench == () and cfg.joint_groups == ("ARM_1", "ARM_2")


def test_ready_pose_and_approach_parameters_map_to_the_approach_config():
    v = values_of("rig.yaml")
    pose = [0.45, -0.1, 0.35, 3.1416, 0.0, 0.0, 0.08, 0.45, 0.1, 0.35, 3.1416, 0.0, 0.0, 0.08]
    v.update(ready_pose=pose, approach_linear_speed_m_s=0.05)
    cfg = approach_config(v)
    assert cfg.ready_pose == tuple(pose) and cfg.linear_speed_m_s == 0.05
    assert build_config(v).approach == cfg
    v.update(ready_pose=[0.45, -0.1, 2.0] + pose[3:])  # z far above the box
    with pytest.raises(ValueError, match="ready_pose is outside the workspace"):
        build_config(v)


def test_defaults_are_a_consistent_flexiv_rig_too():
    v = {k: p.default for k, p in PARAMS.items()}
    v["driver"] = "flexiv"
    assert check_consistency(v) is None
    assert isinstance(driver_factory(v).args[0], FlexivRdk1Config)


def test_a_default_is_written_once_the_core_configs_and_the_table_agree():
    """Where a core config field has a default and a parameter of the same quantity, they are equal (the table
    takes the config's): sentinels (None -> -1, () -> '') and the per-arm flattening are the only translations."""
    import dataclasses

    from rtc_controller.control.approach import ApproachConfig
    from rtc_controller.control.delay_estimator import DelayEstimatorConfig
    from rtc_controller.control.loop import LoopConfig
    from rtc_controller.control.safety import ArmLimits
    from rtc_controller.control.timeline import TimelineConfig
    from rtc_controller.control.executor_params import PARAMS

    translated = {"initial_d": -1, "fixed_d": -1, "cpu_affinity": "", "ready_pose": [0.0]}
    checked = 0
    for cls, prefix in ((ArmLimits, ""), (DelayEstimatorConfig, "delay_"), (LoopConfig, ""), (TimelineConfig, ""),
                        (ApproachConfig, "approach_")):  # fmt: skip
        for f in dataclasses.fields(cls):
            name = next((n for n in (prefix + f.name, f.name) if n in PARAMS), None)
            if name is None or f.default is dataclasses.MISSING:
                continue
            checked += 1
            default = PARAMS[name].default
            if name in translated:
                assert default == translated[name], name
            elif name.startswith("workspace_"):
                assert default == list(f.default) * 2, name
            else:
                assert default == f.default, (cls.__name__, f.name, f.default, default)
    assert checked >= 25
