"""Training dataset: the episode format round-trips, bad episodes and folders are refused naming the key, the
synthetic demonstrations are deterministic, smooth and multimodal, and the train/validation split is stable."""

import json

import numpy as np
import pytest
from train_setup import synthetic_config

from rtc_controller.config_check import ConfigError
from rtc_controller.train.dataset import (
    DatasetError,
    DatasetWriter,
    Episode,
    EpisodeDataset,
    episode_path,
    split_episodes,
)
from rtc_controller.train.synthetic import make_episode, min_jerk, write_synthetic_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_synthetic_dataset(root, synthetic_config())
    return EpisodeDataset(root)


def test_round_trip(dataset):
    cfg = synthetic_config()
    info = dataset.info
    assert info.num_episodes == len(dataset) == cfg.num_episodes
    assert info.num_steps == cfg.num_episodes * cfg.episode_steps
    assert info.fps == cfg.fps and info.cameras["base_0_rgb"].fps == cfg.fps / cfg.camera_every
    assert info.generator["name"] == "synthetic" and info.generator["seed"] == cfg.seed
    for i in (0, 5):
        got, want = dataset.load(i), make_episode(cfg, i)
        np.testing.assert_array_equal(got.state, want.state)
        np.testing.assert_array_equal(got.actions, want.actions)
        np.testing.assert_array_equal(got.frame_index, want.frame_index)
        for slot in cfg.cameras:
            np.testing.assert_array_equal(got.images[slot], want.images[slot])
        assert (got.prompt, got.success, got.seed) == (want.prompt, want.success, i)
    light = dataset.load(1, images=False)
    assert light.images == {} and light.actions.shape == (cfg.episode_steps, 14)


def test_frame_at_is_the_latest_frame_at_or_before_the_step(dataset):
    ep = dataset.load(0)  # a frame every 2 steps
    np.testing.assert_array_equal(ep.frame_at(np.array([0, 1, 2, 3, 39])), [0, 0, 1, 1, 19])


def test_synthetic_is_deterministic_and_multimodal():
    cfg = synthetic_config(num_episodes=12)
    a, b = make_episode(cfg, 4), make_episode(cfg, 4)
    np.testing.assert_array_equal(a.actions, b.actions)
    np.testing.assert_array_equal(a.images["base_0_rgb"], b.images["base_0_rgb"])
    # Where the loaded arm goes after the first grasp differs between episodes: several bins are used.
    bins = np.array([np.asarray(b) for b in cfg.scene.bins_m[0]])
    reached = set()
    for i in range(cfg.num_episodes):
        ep = make_episode(synthetic_config(episode_steps=200, num_episodes=12), i)
        d = np.linalg.norm(ep.actions[:, None, :3] - bins[None], axis=-1)
        reached |= set(np.flatnonzero(d.min(axis=0) < 1e-3).tolist())
    assert len(reached) >= 2


def test_synthetic_motion_is_smooth():
    cfg = synthetic_config(episode_steps=300, fps=50.0)
    ep = make_episode(cfg, 0)
    dt = 1.0 / cfg.fps
    for base in (0, 7):
        pos = ep.actions[:, base:base + 3].astype(np.float64)
        speed = np.linalg.norm(np.diff(pos, axis=0), axis=1) / dt
        accel = np.linalg.norm(np.diff(pos, n=2, axis=0), axis=1) / dt**2
        # min-jerk peak speed is 1.875 × the mean speed; the episode's speed factor is at most 1 + jitter
        assert speed.max() <= 1.875 * cfg.mean_speed_m_s * (1 + cfg.speed_jitter) * 1.01
        assert accel.max() < 3.0  # m/s²: no steps in the command
        grip = ep.actions[:, base + 6]
        assert grip.min() >= cfg.scene.gripper_closed_m - 1e-6 and grip.max() <= cfg.scene.gripper_open_m + 1e-6
    # The state is the previous command plus sensor noise.
    np.testing.assert_allclose(ep.state[1:, :3], ep.actions[:-1, :3], atol=5 * cfg.state_noise_m)
    assert min_jerk(4)[-1] == pytest.approx(1.0) and np.all(np.diff(min_jerk(10)) > 0)


def _episode(info, **kw):
    t, f = 6, 3
    fields = dict(state=np.zeros((t, 14), np.float32), actions=np.zeros((t, 14), np.float32),
                  frame_index=np.array([0, 2, 4]), prompt="do it",
                  images={s: np.zeros((f, c.height, c.width, 3), np.uint8) for s, c in info.cameras.items()})
    return Episode(**{**fields, **kw})


@pytest.mark.parametrize("change, key", [
    ({"actions": np.zeros((6, 13), np.float32)}, "actions"),
    ({"state": np.full((6, 14), np.nan, np.float32)}, "state has non-finite"),
    ({"frame_index": np.array([1, 2, 4])}, "frame_index"),
    ({"frame_index": np.array([0, 4, 2])}, "frame_index"),
    ({"prompt": " "}, "prompt"),
])
def test_writer_refuses_bad_episodes(tmp_path, change, key):
    info = synthetic_config().info()
    writer = DatasetWriter(tmp_path / "d", info)
    with pytest.raises(DatasetError, match=key):
        writer.add(_episode(info, **change))
    images = _episode(info).images
    del images["left_wrist_0_rgb"]
    with pytest.raises(DatasetError, match="camera slots"):
        writer.add(_episode(info, images=images))
    assert writer.add(_episode(info)) == 0  # a good one still goes in, as episode 0


def test_reader_and_writer_refuse_bad_folders(tmp_path, dataset):
    with pytest.raises(DatasetError, match="not empty"):
        DatasetWriter(dataset.root, dataset.info)
    with pytest.raises(DatasetError, match="not a dataset folder"):
        EpisodeDataset(tmp_path)
    root = tmp_path / "copy"
    write_synthetic_dataset(root, synthetic_config(num_episodes=2))
    info = json.loads((root / "meta/info.json").read_text())
    (root / "meta/info.json").write_text(json.dumps({**info, "fsp": 10}))
    with pytest.raises(ConfigError, match="unknown key 'fsp' \\(did you mean 'fps'\\?\\)"):
        EpisodeDataset(root)
    (root / "meta/info.json").write_text(json.dumps(info))
    episode_path(root, 1).write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match="episode_000001.npz: cannot read"):
        EpisodeDataset(root).load(1)


def test_overwrite_replaces_the_old_episodes(tmp_path):
    write_synthetic_dataset(tmp_path, synthetic_config(num_episodes=3))
    write_synthetic_dataset(tmp_path, synthetic_config(num_episodes=2), overwrite=True)
    ds = EpisodeDataset(tmp_path)
    assert len(ds) == 2 and not episode_path(tmp_path, 2).exists()


def test_split_is_deterministic_and_disjoint():
    train, val = split_episodes(range(20), val_fraction=0.1, seed=0)
    assert (train, val) == split_episodes(range(20), val_fraction=0.1, seed=0)
    assert len(val) == 2 and not set(train) & set(val) and sorted(train + val) == list(range(20))
    assert split_episodes([3, 4], val_fraction=0.01, seed=0)[1] != []  # at least one when asked for any
    assert split_episodes([3], val_fraction=0.5, seed=0) == ([3], [])  # never all of them
    assert split_episodes(range(5), val_fraction=0.0, seed=0) == (list(range(5)), [])
