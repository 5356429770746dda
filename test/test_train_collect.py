"""``rtc-train collect``: expert demonstrations from the twin become a valid episode dataset, deterministic from the
seed, and a stopped collection resumes to the same files; bad requests are refused naming the reason."""

import json

import numpy as np
import pytest

from rtc_controller.train.cli import main
from rtc_controller.train.collect import DEFAULT_SEED, CollectConfig
from rtc_controller.train.dataset import EPISODES_FILE, DatasetError, EpisodeDataset, episode_path

pytestmark = pytest.mark.slow
SIZE = ["--image-size", "24x32", "--camera-rate", "5"]  # small frames, a frame every 10 action steps


@pytest.fixture(scope="module")
def twin_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("collect") / "twin"
    assert main(["collect", str(root), "--episodes", "2", "--seed", "7", "--no-progress", *SIZE]) == 0
    return root


def test_collect_writes_a_valid_twin_dataset(twin_data):
    ds = EpisodeDataset(twin_data)
    info = ds.info
    assert info.num_episodes == 2 and info.fps == 50.0
    assert set(info.cameras) == {"base_0_rgb", "left_wrist_0_rgb", "right_wrist_0_rgb"}
    assert (info.cameras["base_0_rgb"].height, info.cameras["base_0_rgb"].width, info.cameras["base_0_rgb"].fps) == (24, 32, 5.0)
    assert info.generator["name"] == "twin_expert" and info.generator["seed"] == 7
    assert info.prompts == ("put the red cube and the blue cube into any yellow bin on the conveyor",)
    for i, meta in enumerate(ds.episodes):
        ep = ds.load(i)  # validated: shapes, finite values, frame indices, camera sizes
        assert meta.seed == 7 + i and ep.seed == 7 + i and ep.success, meta
        assert 150 < ep.length < 400  # 3-8 s of expert motion at 50 Hz
        np.testing.assert_array_equal(ep.frame_index, np.arange(0, ep.length, 10)[: ep.frame_index.size])
        # Both grippers closed on their 4 cm cube at some point and opened again over a bin at the end.
        widths = ep.state[:, [6, 13]]
        assert np.all(widths.min(axis=0) < 0.042) and np.all(widths[-1] > 0.05), widths[-1]
        # The cameras see the scene change (the arms move).
        assert np.abs(ep.images["base_0_rgb"][0].astype(int) - ep.images["base_0_rgb"][-1]).mean() > 1.0


def test_collect_resumes_to_the_same_files(twin_data, tmp_path, capsys):
    root = tmp_path / "twin"
    assert main(["collect", str(root), "--episodes", "1", "--seed", "7", "--no-progress", *SIZE]) == 0
    assert main(["collect", str(root), "--episodes", "2", "--seed", "7", "--no-progress", *SIZE]) == 2
    assert "resume" in capsys.readouterr().err  # an existing folder needs --resume or --overwrite
    assert main(["collect", str(root), "--episodes", "2", "--seed", "7", "--no-progress", "--resume", *SIZE]) == 0
    assert "wrote 1 episodes" in capsys.readouterr().out
    for i in range(2):
        with np.load(episode_path(root, i)) as got, np.load(episode_path(twin_data, i)) as want:
            assert sorted(got.files) == sorted(want.files)
            for key in want.files:
                np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    # A different recipe cannot be appended to this folder: the error names what differs.
    assert main(["collect", str(root), "--episodes", "3", "--seed", "8", "--no-progress", "--resume", *SIZE]) == 2
    assert "generator" in capsys.readouterr().err


def test_resume_after_a_torn_episode_line(twin_data, tmp_path):
    """A collection killed while appending to episodes.jsonl: the torn line is dropped and that episode rewritten."""
    import shutil

    root = tmp_path / "twin"
    shutil.copytree(twin_data, root)
    lines = (root / EPISODES_FILE).read_text().splitlines(keepends=True)
    (root / EPISODES_FILE).write_text(lines[0] + lines[1][:10])
    assert main(["collect", str(root), "--episodes", "2", "--seed", "7", "--no-progress", "--resume", *SIZE]) == 0
    ds = EpisodeDataset(root)
    assert [m.seed for m in ds.episodes] == [7, 8]
    assert json.loads((root / "meta/info.json").read_text())["num_episodes"] == 2


@pytest.mark.parametrize("kw, message", [
    ({"num_episodes": 0}, "at least one episode"),
    ({"camera_rate_hz": 60.0}, "camera_rate_hz"),
    ({"cameras": ("top",)}, "cameras"),
    ({"image_height": 24}, "both"),
    ({"execution_horizon": 0}, "execution_horizon"),
])
def test_bad_collect_config_is_refused(kw, message):
    with pytest.raises(ValueError, match=message):
        CollectConfig(**kw)


def test_default_seeds_are_not_the_evaluation_seeds():
    assert DEFAULT_SEED >= 1000  # rtc-eval runs seeds 0 … N − 1


def test_resume_of_a_non_dataset_folder_is_refused(tmp_path):
    from rtc_controller.train.collect import collect_twin_dataset

    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "junk.txt").write_text("hi")
    with pytest.raises(DatasetError, match="not a dataset folder"):
        collect_twin_dataset(tmp_path / "x", CollectConfig(num_episodes=1), resume=True)
