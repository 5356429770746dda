"""rtc-replay with ``--policy pi05``: a tiny π0.5 checkpoint + tokenizer (random weights) replays a recorded bag.

The bag: 3 chunks of H = 10 actions on the default 14-dim Cartesian layout (the tiny model pads them to 16),
one every s = 4 steps, guided with d = 2; robot states every step, a prompt, and a camera frame for each of
π0.5's three slots on ``rtc/camera/<slot>`` before each chunk's t_obs.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from rtc_controller import topics
from rtc_controller.action_space import action_names
from rtc_controller.control.chunk import Chunk
from rtc_controller.policy.pi05 import IMAGE_KEYS
from rtc_controller.policy.pi05.testing import write_tiny_pi05
from rtc_controller.tools import replay_cli, replay_config, replay_switches
from rtc_controller.bags.bag_reader import BagReader
from rtc_controller.bags.bag_writer import BagWriter

NAMES = action_names("cartesian")
D = len(NAMES)
H, DT_S, S, DELAY, N_CHUNKS = 10, 0.05, 4, 2, 3
T0_S = 50.0
PROMPT = "pick up the red cube"
IMAGE_HW = (48, 64)
MODES, BETAS = ("none", "stop", "full"), (1.0, 10.0)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    pytest.importorskip("sentencepiece")
    return write_tiny_pi05(tmp_path_factory.mktemp("pi05"), state_dim=D, action_dim=D)


@pytest.fixture(scope="module")
def bag(tmp_path_factory):
    """A recorded run: chunk j has t_obs = T0 + j·s·Δt and arrives d steps later; the robot tracks it."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("bag") / "run"
    steps = (N_CHUNKS - 1) * S + H
    trajectory = np.cumsum(rng.normal(0.0, 0.02, (steps, D)), axis=0)  # smooth, inside the norm stats' range
    with BagWriter(path, storage="mcap") as w:
        w.write_prompt(PROMPT, int((T0_S - 0.5) * 1e9))
        for k in range(steps):
            w.write_state(trajectory[k], NAMES, T0_S + k * DT_S)
        for j in range(N_CHUNKS):
            t_obs = T0_S + j * S * DT_S
            for slot in IMAGE_KEYS:
                frame = rng.integers(0, 256, (*IMAGE_HW, 3), dtype=np.uint8)
                w.write_image(frame, t_obs - 0.01, topic=topics.camera_topic(slot))
            actions = trajectory[j * S : j * S + H] + rng.normal(0.0, 0.01, (H, D))
            chunk = Chunk(NAMES, actions, t_obs, DT_S, None if j == 0 else DELAY)
            w.write_chunk(chunk, log_time_ns=int((t_obs + DELAY * DT_S) * 1e9))
    return path


def test_switch_inputs_carry_every_camera_slot(bag, tmp_path):
    with BagReader(bag) as b:
        switches = replay_switches.load_switches(b, replay_config.ReplayConfig(bag=bag, output=tmp_path, progress=False))
    assert [sw.index for sw in switches] == list(range(1, N_CHUNKS))
    for sw in switches:
        assert set(sw.observation.images) == set(IMAGE_KEYS)
        assert all(img.shape == (*IMAGE_HW, 3) for img in sw.observation.images.values())
        assert sw.observation.prompt == PROMPT and sw.observation.state.shape == (D,)
        assert (sw.d, sw.execution_horizon, sw.chunk.horizon) == (DELAY, S, H)


@pytest.mark.slow  # ~15–25 s on 2 cores: load, compile the prefix pass and three sampler variants, 5 figures
def test_cli_replays_a_bag_with_pi05(bag, tiny, tmp_path, capsys):
    out = tmp_path / "out"
    code = replay_cli.main([
        str(bag), "-o", str(out), "--policy", "pi05", "--checkpoint", str(tiny.checkpoint_dir),
        "--tokenizer", str(tiny.tokenizer_path), "--policy-param", "dtype=float32",
        "--policy-param", f"max_token_len={tiny.config.max_token_len}", "--modes", ",".join(MODES),
        "--beta", ",".join(map(str, BETAS)), "--num-steps", "5", "--figures", "1", "--no-progress",
    ])  # fmt: skip
    printed = capsys.readouterr()
    assert code == 0, printed.err

    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert [(r["mode"], float(r["beta"])) for r in rows] == [(m, b) for m in MODES for b in BETAS]
    assert all(int(r["switches"]) == N_CHUNKS - 1 for r in rows)
    table = {(r["mode"], float(r["beta"])): float(r["mean_mismatch"]) for r in rows}
    assert all(np.isfinite(v) for v in table.values())
    # guidance through the π0.5 velocity pulls the frozen region toward the recorded prefix
    assert table[("stop", 10.0)] < table[("none", 10.0)], table

    figures = sorted((out / "switches").rglob("*.png"))
    assert len(figures) == 1 + (len(MODES) - 1) * len(BETAS)  # none once (β has no effect), then one per (mode, β)
    assert all(p.stat().st_size > 0 for p in figures)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["policy"] == "pi05" and summary["horizon"] == H
    assert set(summary["recommended_beta"]) == set(MODES)


def test_cli_pi05_needs_checkpoint_and_tokenizer(bag, tmp_path, capsys):
    code = replay_cli.main([str(bag), "-o", str(tmp_path / "o"), "--policy", "pi05", "--checkpoint", str(tmp_path),
                        "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == replay_cli.EXIT_BAD_INPUT and "--tokenizer PATH" in err and "missing --tokenizer" in err
    code = replay_cli.main([str(bag), "-o", str(tmp_path / "o"), "--policy", "pi05", "--no-progress"])
    err = capsys.readouterr().err
    assert code == replay_cli.EXIT_BAD_INPUT and "missing --checkpoint DIR, --tokenizer PATH" in err
    assert not (tmp_path / "o" / "metrics.csv").exists()


def test_cli_policy_config_sets_policy_and_cameras(bag, tmp_path, capsys):
    """--policy-config implies pi05 and takes the section's camera topics; a bad checkpoint is reported (exit 2)."""
    assert replay_cli.section_cameras("pi05_no_state_delta") == {
        "base_0_rgb": "rtc/camera/base_0_rgb", "left_wrist_0_rgb": "rtc/camera/left_wrist_0_rgb"}
    code = replay_cli.main([str(bag), "-o", str(tmp_path / "o"), "--policy-config", "pi05_no_state_delta",
                        "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == replay_cli.EXIT_BAD_INPUT and "cannot build policy 'pi05'" in err and "pi05_flexiv_delta" in err
