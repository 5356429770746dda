"""``make demo``'s twin mode: the trained π0.5 (``models/twin_pi05``) drives the MuJoCo twin through the real
processes over DDS (twin_node cameras, inference node with the policy section, executor with driver: mujoco), and
the report gives the outcome, the jumps at switches and the inference time per mode."""

import json

import pytest

from rtc_controller.tools import demo, demo_twin


def test_bad_requests_are_refused_with_the_reason(capsys):
    for args, message in ((["--modes", "stop,bogus"], "unknown mode"), (["--episodes", "0"], "--episodes"),
                          (["--twin-config", "no_such_world.yaml"], "no_such_world.yaml"),
                          (["--policy-config", "no_such_model"], "no_such_model"),
                          (["--modes", "trained", "--trained-policy-config", "no_such_rtc"], "no_such_rtc")):  # fmt: skip
        with pytest.raises(SystemExit) as e:
            demo.main(args)  # rtc-demo: the twin scene by default
        assert e.value.code == 2 and message in capsys.readouterr().err, args


def test_mode_trained_runs_the_training_time_rtc_policy_and_the_others_the_base(tmp_path):
    base = {"inference_node": {"policy_config": "/base/policy.yaml", "horizon": 50}, "executor_node": {"horizon": 50}}
    trained = demo_twin.mode_overrides(base, "trained", tmp_path / "rtc" / "policy.yaml")
    assert trained["inference_node"] == {"policy_config": str(tmp_path / "rtc" / "policy.yaml"), "horizon": 50}
    assert base["inference_node"]["policy_config"] == "/base/policy.yaml"  # not modified
    assert demo_twin.mode_overrides(base, "stop", tmp_path / "rtc" / "policy.yaml") is base
    assert "trained" in demo_twin.DEFAULT_MODES


@pytest.mark.dds
@pytest.mark.slow
def test_one_episode_of_the_trained_policy_over_dds(tmp_path, capsys):
    """A short episode (3 s from the arms' first motion): the processes run the trained policy in closed loop, chunks
    switch while the arms move, and the report holds the outcome the twin node decided."""
    assert demo_twin.main(["--out", str(tmp_path), "--modes", "stop", "--episodes", "1", "--time-limit", "3"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    stop = summary["modes"]["stop"]
    assert stop["episodes"] == 1 and stop["seeds"] == [0]
    assert stop["successes"] == 1 or sum(stop["failures"].values()) == 1  # decided by the twin node's monitor
    assert stop["switches"] >= 2  # the policy kept publishing chunks while the arms moved
    assert stop["mean_jump_linear_m"] < 0.05  # guided switches: no step of 5 cm
    assert 0 < stop["median_latency_ms"] < 60_000 and stop["median_d"] >= 1
    assert summary["parameters"]["twin_config"].endswith("twin_world_learned.yaml")
    report = (tmp_path / "report.md").read_text()
    assert "| stop |" in report and "trajectory" in report
    assert "| stop |" in capsys.readouterr().out  # the printed table
