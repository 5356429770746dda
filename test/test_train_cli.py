"""``rtc-train``: the synthetic and info commands, config errors naming the key, and a short fit from a YAML config."""

import jax
import pytest
import yaml
from train_setup import session_cache_dir, synthetic_config, train_config

from rtc_controller.config_files import config_path
from rtc_controller.train.cli import DEFAULT_CONFIG, main
from rtc_controller.train.config import load_train_config
from rtc_controller.train.dataset import EpisodeDataset


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli") / "data"
    cfg = synthetic_config()  # the training tests' dataset: the same programs, compiled once per session
    assert main(["synthetic", str(root), "--episodes", str(cfg.num_episodes), "--steps", str(cfg.episode_steps),
                 "--fps", str(cfg.fps), "--image-size", f"{cfg.image_height}x{cfg.image_width}",
                 "--seed", str(cfg.seed)]) == 0
    return root


def test_synthetic_and_info(data, capsys):
    ds = EpisodeDataset(data)
    assert len(ds) == 6 and set(ds.info.cameras) == {"base_0_rgb", "left_wrist_0_rgb", "right_wrist_0_rgb"}
    assert ds.info.cameras["base_0_rgb"].height == 24
    assert main(["info", str(data)]) == 0
    out = capsys.readouterr().out
    assert "6 episodes (6 successful), 240 action steps at 10 Hz" in out and "camera left_wrist_0_rgb: 24x32" in out
    assert main(["synthetic", str(data)]) == 2  # exists
    assert "not empty" in capsys.readouterr().err


def test_the_shipped_config_is_valid():
    cfg = load_train_config(config_path(DEFAULT_CONFIG))
    assert cfg.data.horizon == 50 and cfg.model.image_size % cfg.model.patch_size == 0
    assert cfg.data.delta_action_mask == (True,) * 3 + (False,) * 4 + (True,) * 3 + (False,) * 4  # [3, -4, 3, -4]


@pytest.mark.parametrize("args, message", [
    (["--set", "loop.num_stepz=3"], "loop: unknown key 'num_stepz' (did you mean 'num_steps'?)"),
    (["--set", "optimizer.peak_lr=-1"], "optimizer.peak_lr must be finite and > 0, got -1.0"),
    (["--set", "model.image_size=50"], "model.image_size (50) must be a multiple of patch_size (16)"),
    (["--set", "data.horizon"], "override 'data.horizon' is not SECTION.KEY=VALUE"),
])
def test_config_errors_name_the_key(data, tmp_path, capsys, args, message):
    assert main(["fit", "--data", str(data), "--out", str(tmp_path / "run"), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rtc-train: error: ") and message in err


def test_missing_dataset_is_one_line(tmp_path, capsys):
    assert main(["fit", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "run")]) == 2
    assert "not a dataset folder" in capsys.readouterr().err


@pytest.mark.slow
def test_fit_from_a_yaml_config(data, tmp_path, tmp_path_factory, capsys):
    config = tmp_path / "micro.yaml"
    config.write_text(yaml.safe_dump(train_config(num_steps=40).to_dict()))
    args = ["fit", "--data", str(data), "--out", str(tmp_path / "run"), "--config", str(config),
            "--compilation-cache", str(session_cache_dir(tmp_path_factory)), "--no-progress"]
    try:
        assert main(args) == 0
    finally:
        jax.config.update("jax_compilation_cache_dir", None)
    out = capsys.readouterr().out
    assert "done: 40/40 steps" in out and "policy: " in out
    section = yaml.safe_load((tmp_path / "run" / "pi05" / "policy.yaml").read_text())
    assert list(section["cameras"]) == ["base_0_rgb", "left_wrist_0_rgb", "right_wrist_0_rgb"]
    assert (section["checkpoint"], section["tokenizer"]) == (".", "tokenizer.model")
    record = yaml.safe_load((tmp_path / "run" / "pi05" / "training.yaml").read_text())
    assert record["trained_by"].startswith("rtc-train fit --data ")
    assert (tmp_path / "run" / "loss.png").stat().st_size > 0
    assert main(args) == 2  # the run exists: --resume or --overwrite
    assert "--resume" in capsys.readouterr().err
