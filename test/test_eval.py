"""rtc-eval end to end on a 2 × 2 grid (short episodes), resumable; Wilson intervals; the hard-mask mode."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rtc_controller.policy.mixture import make_mixture, mixture_velocity
from rtc_controller.rtc import prefix_weights, sample
from rtc_controller.tools.eval import main
from rtc_controller.analysis.stats import summarize_cell, wilson_interval


def test_wilson_interval():
    lo, hi = wilson_interval(9, 10)
    assert lo == pytest.approx(0.596, abs=1e-3) and hi == pytest.approx(0.982, abs=1e-3)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert wilson_interval(0, 5)[0] == 0.0 and wilson_interval(5, 5)[1] == 1.0
    c = summarize_cell([{"success": True, "reason": "", "completion_time_s": 5.0, "jumps": [0.1, 0.3],
                         "jumps_linear_m": [0.01], "jerk_rms_m_s3": 2.0, "interventions": 4},
                        {"success": False, "reason": "timeout", "completion_time_s": float("nan"), "jumps": [],
                         "jumps_linear_m": [], "jerk_rms_m_s3": 4.0, "interventions": 6}])  # fmt: skip
    assert c["success_rate"] == 0.5 and c["completion_time_s"] == 5.0 and c["failures"] == {"timeout": 1}
    assert c["jump_mean"] == pytest.approx(0.2) and c["safety_interventions"] == 5


class CountingMixture:
    """The exact mixture field, counting Python-side traces (one per compilation)."""

    def __init__(self):
        self.traces = 0

    def __call__(self, mix, x, t):
        self.traces += 1
        return mixture_velocity(mix, x, t)


def test_hard_mode_freezes_the_prefix_exactly_and_compiles_once():
    h = 20
    mix = make_mixture(np.stack([np.zeros((h, 2)), np.ones((h, 2))]), scales=0.05)
    prefix = jnp.asarray(np.full((1, h, 2), 0.3), jnp.float32)
    field = CountingMixture()
    traces = None
    for seed, d in enumerate((5, 2, 9)):
        w = prefix_weights(d, h - 8, h, "zeros")  # the hard mask: 1 for i < d
        x = np.asarray(sample(field, jax.random.normal(jax.random.key(seed), (1, h, 2)), context=mix, prefix=prefix,
                              weights=w, mode="hard"))  # fmt: skip
        np.testing.assert_allclose(x[0, :d], 0.3, atol=1e-6)  # the frozen actions are exactly the prefix
        assert np.abs(x[0, d:] - 0.3).min() > 0.05  # the rest is sampled from the field (near 0 or 1), not copied
        traces = field.traces if traces is None else traces
    assert field.traces == traces, "a new d must not recompile"


@pytest.mark.slow
def test_rtc_eval_two_by_two_grid_end_to_end_and_resumes(tmp_path, capsys):
    args = ["--out", str(tmp_path), "--delays", "0,8", "--modes", "none,stop", "--seeds", "1", "--time-limit", "3",
            "--quiet"]  # fmt: skip
    assert main(args) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    for mode in ("none", "stop"):
        for d in ("0", "8"):
            cell = summary["cells"][mode]["s25"][d]
            assert cell["episodes"] == 1 and 0 <= cell["success_ci95"][0] <= cell["success_ci95"][1] <= 1
    assert summary["paired_vs_none"]["s25"]["8"]["stop"]["discordant"] in (0, 1)
    assert set(summary["paired_vs_d0"]["s25"]["8"]) == {"none", "stop"}  # each method against itself at d = 0
    assert "0" not in summary["paired_vs_d0"]["s25"]
    for mode in ("none", "stop"):  # a 3 s episode times out: the phase it was in is counted
        cell = summary["cells"][mode]["s25"]["0"]
        assert sum(cell["failure_phases"].values()) == cell["episodes"] - cell["successes"]
    assert (tmp_path / "success_vs_delay.png").stat().st_size > 1000
    report = (tmp_path / "report.md").read_text()
    assert "| stop | 25 | 8 |" in report and "Result: " in report and "against itself at d = 0" in report
    stamp = (tmp_path / "cells" / "stop_s25_d8.json").stat().st_mtime_ns
    assert main(args) == 0  # resumed: finished cells are not re-run
    assert (tmp_path / "cells" / "stop_s25_d8.json").stat().st_mtime_ns == stamp
    out = capsys.readouterr().out
    assert "| none | 25 | 0 |" in out


@pytest.mark.slow
def test_rtc_eval_runs_cells_in_two_workers_like_one(tmp_path):
    """Two worker processes give the cells one process gives (deterministic from the seed); a max-row sets s = max(d, N)
    and a fixed row leaves out d > s."""
    common = ["--delays", "0,12", "--methods", "none,stop@5", "--seeds", "1", "--time-limit", "2", "--quiet",
              "--execution-horizons", "10,max5"]  # fmt: skip
    assert main(["--out", str(tmp_path / "one"), *common]) == 0
    assert main(["--out", str(tmp_path / "two"), "--workers", "2", *common]) == 0
    one, two = (json.loads((tmp_path / n / "summary.json").read_text()) for n in ("one", "two"))
    assert one["cells"] == two["cells"]
    assert one["s"] == {"s10": {"0": 10}, "smax5": {"0": 5, "12": 12}}  # s10 leaves d = 12 out
    assert set(one["cells"]["stop@5"]) == {"s10", "smax5"}


def test_grid_methods_rows_and_paired_tests():
    from rtc_controller.tools.eval_grid import HorizonRow, Method, grid_cells
    from rtc_controller.analysis.stats import exact_binomial_two_sided, paired_test

    assert Method.parse("stop@1") == Method("stop", 1.0) and Method.parse("trained").name == "trained"
    for bad in ("soft", "stop@", "stop@-1"):
        with pytest.raises(ValueError, match="method"):
            Method.parse(bad)
    assert HorizonRow.parse("max5").s_for(2) == 5 and HorizonRow.parse("max5").s_for(16) == 16
    with pytest.raises(ValueError, match="execution horizon"):
        HorizonRow.parse("s=10")
    cells = grid_cells([Method("none")], [HorizonRow(fixed=10), HorizonRow(floor=5)], [0, 8, 16])
    assert [(c.row.name, c.delay, c.execution_horizon) for c in cells] == [
        ("s10", 0, 10), ("s10", 8, 10), ("smax5", 0, 5), ("smax5", 8, 8), ("smax5", 16, 16)]
    assert exact_binomial_two_sided(0, 5) == pytest.approx(0.0625)
    assert exact_binomial_two_sided(3, 6) == pytest.approx(1.0)
    t = paired_test([True] * 8 + [False] * 2, [False] * 8 + [True] * 2)
    assert (t["a_only"], t["b_only"]) == (8, 2) and t["p_value"] == pytest.approx(0.109375)
    with pytest.raises(ValueError, match="same seeds"):
        paired_test([True], [True, False])


def test_chunk_sampler_hard_mode_keeps_the_executed_actions():
    """Through the inference core: with mode hard, a_0 … a_{d−1} equal the previous chunk re-indexed (Y) exactly."""
    from rtc_controller.policy.chunk_sampler import ChunkSampler, GuidanceSettings, PreviousChunk
    from rtc_controller.policy.sim_policy import SimPolicy, SimPolicyConfig

    policy = SimPolicy(SimPolicyConfig(horizon=30))
    sampler = ChunkSampler(policy, dt_s=0.02, num_steps=5)
    obs = policy.fake_observation(stamp_s=1.0)
    first = sampler.sample(obs, previous=None, settings=GuidanceSettings(0, 10), key=jax.random.key(0))
    later = type(obs)(state=obs.state, stamp_s=1.0 + 10 * 0.02)
    d = 6
    res = sampler.sample(later, previous=PreviousChunk(first.actions, 1.0), settings=GuidanceSettings(d, 10, mode="hard"),
                         key=jax.random.key(1))  # fmt: skip
    np.testing.assert_allclose(res.actions[:d], first.actions[10 : 10 + d], atol=1e-4)
    assert res.guided and np.all(res.weights[:d] == 1) and np.all(res.weights[d:] == 0)


def test_rtc_eval_refuses_bad_grids(capsys):
    for args, msg in ((["--modes", "none,soft"], "method 'soft'"), (["--delays", "0,50"], "delays must be in"),
                      (["--policy", "sim", "--seeds", "1"], "does not run on the twin"),
                      (["--servo-rate", "300"], "--servo-rate")):  # fmt: skip
        with pytest.raises(SystemExit) as e:
            main(["--out", "/tmp/rtc_eval_refused", "--quiet", *args])
        assert e.value.code == 2 and msg in capsys.readouterr().err


def test_the_dds_path_runs_the_cell_the_config_describes(tmp_path, capsys):
    """--dds hands the nodes the cell's whole config: a π0.5 policy section (and its cameras), n, the schedule, Δt."""
    from rtc_controller.tools.eval_config import DDS_TRANSPORT_STEPS, EvalConfig, node_overrides

    cfg = EvalConfig(policy="pi05", policy_config="pi05_no_state_delta", horizon=10, execution_horizon=5, num_steps=4,
                     schedule="linear", camera_slots=("base_0_rgb", "left_wrist_0_rgb", "right_wrist_0_rgb"))
    o = node_overrides(cfg, mode="full", delay=2, transport_steps=DDS_TRANSPORT_STEPS)
    inference = o["inference_node"]
    assert inference["policy_config"] == "pi05_no_state_delta" and "checkpoint" not in inference
    assert inference["camera_slots"] == ["base_0_rgb", "left_wrist_0_rgb"]  # the section's (the node refuses others)
    assert (inference["num_steps"], inference["prefix_schedule"], inference["guidance_mode"]) == (4, "linear", "full")
    assert "inference_delay" not in inference  # the parameter file's (auto: the executor's estimate), as on the rig
    assert inference["extra_latency_s"] == pytest.approx(0.03)  # (d − ½)·Δt: half a step left to the transport
    assert node_overrides(cfg, mode="full", delay=2)["inference_node"]["extra_latency_s"] == pytest.approx(0.04)
    assert o["executor_node"]["execution_horizon"] == 5
    with pytest.raises(SystemExit) as e:  # no node parameter could carry it: refused, not dropped
        main(["--out", str(tmp_path), "--dds", "--policy", "pi05", "--policy-param", "dtype=float32", "--quiet"])
    assert e.value.code == 2 and "--policy-param" in capsys.readouterr().err


@pytest.mark.dds
@pytest.mark.slow
def test_rtc_eval_dds_runs_an_episode_through_the_real_processes(tmp_path):
    args = ["--out", str(tmp_path), "--dds", "--policy", "twin_expert", "--delays", "8", "--modes", "stop",
            "--seeds", "1", "--quiet"]  # fmt: skip
    assert main(args) == 0
    ep = json.loads((tmp_path / "cells" / "stop_s25_d8.json").read_text())["episodes"][0]
    assert ep["success"] and ep["items"] == ["placed", "placed"], ep
    assert ep["jumps"] and ep["k_star_median"] >= 8  # switches recorded in the bag; δ ≥ d·Δt
    assert "Real processes over DDS" in (tmp_path / "report.md").read_text()


@pytest.mark.slow
def test_rtc_eval_runs_a_pi05_checkpoint_on_rendered_cameras(tmp_path):
    """The image path: a tiny π0.5 (random weights) gets the twin's three rendered cameras in every observation;
    the episode runs to its time limit (random actions do not solve the task) and the report is written."""
    from rtc_controller.policy.pi05.testing import write_tiny_pi05

    tiny = write_tiny_pi05(tmp_path / "pi05", state_dim=14, action_dim=14, max_token_len=96)  # the task prompt + state
    args = ["--out", str(tmp_path / "eval"), "--policy", "pi05", "--checkpoint", str(tiny.checkpoint_dir),
            "--tokenizer", str(tiny.tokenizer_path), "--policy-param", "dtype=float32",
            "--policy-param", f"max_token_len={tiny.config.max_token_len}", "--horizon", "10",
            "--execution-horizon", "5", "--delays", "2", "--modes", "stop", "--seeds", "1", "--time-limit", "0.5",
            "--num-steps", "2", "--quiet"]  # fmt: skip
    assert main(args) == 0
    cell = json.loads((tmp_path / "eval" / "cells" / "stop_s5_d2.json").read_text())
    assert cell["config"]["camera_slots"] == ["base_0_rgb", "left_wrist_0_rgb", "right_wrist_0_rgb"]
    ep = cell["episodes"][0]
    assert ep["chunks"] >= 4 and not ep["success"] and ep["reason"] == "timeout"


def test_an_episode_world_is_the_world_file_with_the_episode_time_limit(tmp_path):
    """rtc-eval --twin-config / make demo: the world file reaches the executor with the episode's time limit, and the
    in-process path builds the same world."""
    from rtc_controller.config_files import world_file
    from rtc_controller.sim.twin_config import load_twin_config
    from rtc_controller.tools.eval import EvalConfig, Evaluator
    from rtc_controller.tools.eval_dds import episode_world

    learned = world_file("twin_world_learned.yaml")
    scene, task = load_twin_config(episode_world(tmp_path, time_limit_s=7.5, twin_config=learned))
    assert task.time_limit_s == 7.5 and task.item_x_m == (0.45, 0.47) and task.item_dy_m == (-0.01, 0.01)
    assert load_twin_config(episode_world(tmp_path, time_limit_s=3.0))[1].item_x_m == (0.42, 0.50)  # the defaults
    ev = Evaluator(EvalConfig(policy="twin_expert", twin_config=learned, time_limit_s=4.0))
    assert ev.world.task.item_x_m == (0.45, 0.47) and ev.world.task.time_limit_s == 4.0
    with pytest.raises(FileNotFoundError, match="no_such_world.yaml"):
        world_file("no_such_world.yaml")
