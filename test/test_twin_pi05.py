"""The committed π0.5 trained on the twin (``models/twin_pi05``): it loads the way the inference node loads it (a bare
``policy_config`` name), produces finite chunks of the right shape from rendered twin observations, records the
command that regenerates it, and in closed loop reaches for the cubes."""

import numpy as np
import pytest
import yaml

from rtc_controller.action_space import action_names
from rtc_controller.config_files import model_path, world_file
from rtc_controller.policy.pi05.policy_section import load_policy_section
from rtc_controller.sim.world import READY_TCP_M

MODEL = "twin_pi05"
WORLD = "twin_world_learned.yaml"  # the world it was trained in
NAMES = action_names("cartesian")


@pytest.fixture(scope="module")
def policy():
    from rtc_controller.app.policies import make_policy

    return make_policy("pi05", policy_config=MODEL, action_names=NAMES)  # the inference node's call


def test_the_committed_checkpoint_is_complete_and_openpi_laid_out():
    section_path = model_path(MODEL)
    root = section_path.parent
    section = load_policy_section(MODEL)
    assert section.checkpoint_dir == str(root) and (root / "params").is_dir()
    assert (root / "assets" / section.asset_id / "norm_stats.json").is_file()
    assert section.tokenizer_path == str(root / "tokenizer.model")
    assert set(section.cameras) == {"base_0_rgb", "left_wrist_0_rgb", "right_wrist_0_rgb"}
    assert section.action_horizon == 50 and section.discrete_state_input and section.normalization == "quantile"
    record = yaml.safe_load((root / "training.yaml").read_text())
    assert record["completed"] and record["trained_by"].startswith("rtc-train fit")
    assert "rtc-train collect" in record["collected_by"]  # the dataset's own command, for a regeneration
    assert (root / "loss.png").stat().st_size > 5_000 and (root / "training_config.yaml").is_file()


def test_chunks_from_rendered_twin_observations(policy):
    from rtc_controller.policy.base import Observation
    from rtc_controller.sim.render import CameraRenderer
    from rtc_controller.sim.twin_config import load_twin_config
    from rtc_controller.sim.world import TwinWorld

    scene, task = load_twin_config(world_file(WORLD))
    world = TwinWorld(scene=scene, task=task)
    world.reset(3)
    renderer = CameraRenderer(world.model, world.scene)
    obs = Observation(state=world.state(), stamp_s=0.0, prompt=world.task.prompt,
                      images=renderer.render_world(world))
    renderer.close()
    chunks = np.stack([policy.infer(obs, seed=k) for k in range(2)])
    assert chunks.shape == (2, 50, 14) and np.all(np.isfinite(chunks))
    widths = chunks[..., [6, 13]]
    assert np.all((widths > -0.01) & (widths < 0.11))  # gripper widths [m], the gripper's range ± rounding
    # The first action continues from where the arms are (delta positions: relative to the state).
    assert np.max(np.abs(chunks[:, 0, [0, 1, 2, 7, 8, 9]] - obs.state[[0, 1, 2, 7, 8, 9]])) < 0.03


@pytest.mark.slow
def test_in_closed_loop_the_policy_reaches_for_its_cubes():
    """One second of the in-process episode (``rtc-eval``'s path, d = 0): each TCP gets closer to its cube in x, y
    and goes down toward it."""
    from rtc_controller.tools.eval import EvalConfig, Evaluator

    cfg = EvalConfig(policy="pi05", policy_config=MODEL, camera_slots=("base_0_rgb", "left_wrist_0_rgb",
                                                                       "right_wrist_0_rgb"), time_limit_s=1.0,
                     twin_config=world_file(WORLD))
    ev = Evaluator(cfg)
    res = ev.run_episode(5, mode="stop", delay=0)
    items, state = ev.world.item_positions(), ev.world.state()
    for arm in range(2):
        start = np.asarray(READY_TCP_M[arm])  # every episode starts at the ready pose
        tcp = state[7 * arm: 7 * arm + 3]
        before = np.linalg.norm(start[:2] - items[arm][:2])
        after = np.linalg.norm(tcp[:2] - items[arm][:2])
        assert after < max(0.5 * before, 0.015), (arm, before, after)
        assert tcp[2] < start[2] - 0.05, (arm, tcp)  # on its way down to the cube
    assert res.chunks >= 2
