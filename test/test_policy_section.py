"""The policy section: the two shipped example configs checked against hand-computed prompts, state vectors and
action mappings on a tiny checkpoint; YAML round trip; every load-time validation names the field and both values."""

import dataclasses
import math

import numpy as np
import pytest

from rtc_controller.config_check import ConfigError
from rtc_controller.policy.base import Observation
from rtc_controller.policy.pi05 import NormStats, Pi05Policy, load_policy_section, save_policy_section
from rtc_controller.policy.pi05.norm_stats import NormStatsError
from rtc_controller.policy.pi05.policy_section import cross_check, make_bool_mask, resolve_policy_config_path
from rtc_controller.policy.pi05.testing import tiny_config, write_checkpoint, write_tokenizer

MODEL_ACTION_DIM = 16
Q01, Q99 = -1.1, 0.9  # quantile stats of every dim: normalised ≈ value + 0.1, so bin = ⌊(value + 1.1)·128⌋
PROMPT = "fold_the towel\n"

# Executor state: left x, y, z, rotvec (0, 0, π/2), gripper 0.03 m; right x, y, z, rotvec 0, gripper 0.07 m.
STATE = np.array([0.51, -0.2, 0.33, 0.0, 0.0, math.pi / 2, 0.03, 0.42, 0.11, 0.25, 0.0, 0.0, 0.0, 0.07])
# pi05_state_absolute: 0.51 -0.2 0.33 | quat 0.7071 0 0 0.7071 | open 0.3 | 0.42 0.11 0.25 | quat 1 0 0 0 | open 0.7
# bins ⌊(v + 1.1)·128⌋: 206 115 183 | 231 140 140 231 | 179 | 194 154 172 | 255 (1 + 0.1 > 1: top bin) 140 140 140 | 230
STATE_BINS = "206 115 183 231 140 140 231 179 194 154 172 255 140 140 140 230"


def _stats(dim: int) -> NormStats:
    return NormStats(mean=np.zeros(dim), std=np.ones(dim), q01=np.full(dim, Q01), q99=np.full(dim, Q99))


@pytest.fixture(scope="module")
def spm(tmp_path_factory):
    pytest.importorskip("sentencepiece")
    return write_tokenizer(tmp_path_factory.mktemp("spm") / "paligemma_tokenizer.model", state_dim=16)


def _tiny_checkpoint(root, *, asset_id: str, state_dim: int, action_dim: int):
    cfg = tiny_config(action_dim=MODEL_ACTION_DIM, max_token_len=64)
    write_checkpoint(root, cfg, norm_stats={"state": _stats(state_dim), "actions": _stats(action_dim)},
                     asset_id=asset_id)
    return cfg


@pytest.fixture(scope="module")
def absolute(tmp_path_factory, spm):
    """config/policy/pi05_state_absolute.yaml on a tiny checkpoint (16-dim state and actions)."""
    root = tmp_path_factory.mktemp("abs")
    cfg = _tiny_checkpoint(root, asset_id="flexiv_bimanual", state_dim=16, action_dim=16)
    section = load_policy_section("pi05_state_absolute", checkpoint_dir=str(root), tokenizer_path=str(spm),
                                  dtype="float32", max_token_len=cfg.max_token_len, action_horizon=4)
    return Pi05Policy(section)


@pytest.fixture(scope="module")
def delta(tmp_path_factory, spm):
    """config/policy/pi05_no_state_delta.yaml on a tiny checkpoint (14-dim state and actions)."""
    root = tmp_path_factory.mktemp("delta")
    cfg = _tiny_checkpoint(root, asset_id="flexiv_delta", state_dim=14, action_dim=14)
    section = load_policy_section("pi05_no_state_delta", checkpoint_dir=str(root), tokenizer_path=str(spm),
                                  dtype="float32", max_token_len=cfg.max_token_len)
    return Pi05Policy(section)


def _obs(state=STATE):
    return Observation(state=np.asarray(state, float), stamp_s=0.0, prompt=PROMPT, images={})


def _model_space(policy, values: np.ndarray) -> np.ndarray:
    """Physical model-vector values -> the model's normalised output [1, 1, 16] (quantile, padded)."""
    norm = (values - Q01) / (Q99 - Q01 + 1e-6) * 2.0 - 1.0
    return np.pad(norm, (0, MODEL_ACTION_DIM - values.shape[0]))[None, None]


def test_state_in_prompt_is_the_hand_computed_string(absolute):
    vec = absolute.state_vector(STATE)
    r = math.sqrt(0.5)
    want = [0.51, -0.2, 0.33, r, 0, 0, r, 0.3, 0.42, 0.11, 0.25, 1, 0, 0, 0, 0.7]
    np.testing.assert_allclose(vec, want, atol=1e-12)
    tokens, mask = absolute.tokenize(PROMPT, STATE)
    expected = f"Task: fold the towel, State: {STATE_BINS};\nAction: "
    assert tokens[mask].tolist() == absolute.tokenizer._sp.encode(expected, add_bos=True)
    assert absolute.camera_slots == ("base_0_rgb", "left_wrist_0_rgb", "right_wrist_0_rgb")
    fake = absolute.fake_observation()
    assert all(img.shape == (480, 640, 3) for img in fake.images.values())


def test_absolute_quaternion_actions_map_back_to_rotation_vectors(absolute):
    # left: 0.1 0.2 0.3 | quat ½(1, 1, 1, 1) = 120° about (1, 1, 1)/√3 | open 0.4
    # right: quat (−1.2, 0, 0, −1.6) = −2·(0.6, 0, 0, 0.8): 2·atan2(0.8, 0.6) about z (any sign and norm) | open 0.9
    u = np.array([0.1, 0.2, 0.3, 0.5, 0.5, 0.5, 0.5, 0.4, -0.1, 0.05, 0.6, -1.2, 0.0, 0.0, -1.6, 0.9])
    k = (2 * math.pi / 3) / math.sqrt(3)
    want = [0.1, 0.2, 0.3, k, k, k, 0.04, -0.1, 0.05, 0.6, 0.0, 0.0, 2 * math.atan2(0.8, 0.6), 0.09]
    phys = absolute.to_physical(_model_space(absolute, u), _obs())
    np.testing.assert_allclose(phys[0, 0], want, atol=1e-5)
    # absolute: the observed state does not move the actions; to_model is the inverse (unit quaternions, w >= 0)
    np.testing.assert_array_equal(absolute.to_physical(_model_space(absolute, u), _obs(STATE + 0.05)), phys)
    np.testing.assert_allclose(absolute.to_physical(absolute.to_model(phys, _obs()), _obs()), phys, atol=1e-5)


def test_no_state_prompt_and_delta_arm_poses(delta):
    tokens, mask = delta.tokenize(PROMPT, STATE)
    sp = delta.tokenizer._sp
    assert tokens[mask].tolist() == sp.encode("fold the towel", add_bos=True) + sp.encode("\n")
    assert np.array_equal(delta.tokenize(PROMPT, STATE + 0.3)[0], tokens)  # the state is not in the prompt
    assert delta.config.delta_action_mask == make_bool_mask(6, -1, 6, -1) == (True,) * 6 + (False,) + (True,) * 6 + (False,)
    u = np.array([0.01, -0.02, 0.03, 0.0, 0.1, -0.1, 0.05, 0.02, 0.0, -0.01, 0.2, 0.0, 0.0, 0.08])
    want = STATE + u
    want[[6, 13]] = u[[6, 13]]  # grippers absolute
    phys = delta.to_physical(_model_space(delta, u), _obs())
    np.testing.assert_allclose(phys[0, 0], want, atol=1e-5)
    np.testing.assert_allclose(delta.to_model(phys, _obs()), _model_space(delta, u).astype(np.float32), atol=1e-5)
    # only two cameras in the prefix; the left wrist's warm-up frame has the configured resolution
    assert delta.camera_slots == ("base_0_rgb", "left_wrist_0_rgb")
    assert delta.fake_observation().images["left_wrist_0_rgb"].shape == (240, 320, 3)
    images, masks = delta.model_images({"base_0_rgb": np.zeros((480, 640, 3), np.uint8)})
    assert set(images) == {"base_0_rgb", "left_wrist_0_rgb"} and masks["left_wrist_0_rgb"].tolist() == [False]


def test_round_trip_and_unknown_keys(tmp_path, absolute):
    path = save_policy_section(tmp_path / "p.yaml", absolute.config)
    assert load_policy_section(path) == absolute.config
    text = path.read_text().replace("discrete_state_input:", "discrete_state_inptu:")
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(ConfigError, match="unknown key 'discrete_state_inptu' .*did you mean 'discrete_state_input'"):
        load_policy_section(tmp_path / "bad.yaml")
    (tmp_path / "bad2.yaml").write_text(path.read_text().replace("as: quat_wxyz", "as: quat_wxzy", 1))
    with pytest.raises(ConfigError, match=r"state\[1\]: representation must be one of .* got 'quat_wxzy'"):
        load_policy_section(tmp_path / "bad2.yaml")
    assert resolve_policy_config_path("pi05_no_state_delta").name == "pi05_no_state_delta.yaml"


def test_load_time_validation_names_field_and_both_values(tmp_path, absolute, spm):
    cfg = absolute.config
    with pytest.raises(NormStatsError, match="asset_id 'trossen'.*asset ids in .*\\['flexiv_bimanual'\\]"):
        Pi05Policy(dataclasses.replace(cfg, asset_id="trossen"))
    with pytest.raises(ValueError, match="state dim mismatch: .* 17 dims but norm_stats 'state' .* 16"):
        Pi05Policy(dataclasses.replace(cfg, state_pad_dim=17), model=absolute.model, tokenizer=absolute.tokenizer)
    with pytest.raises(ValueError, match="action dim mismatch: .* take 14 model dims but norm_stats 'actions' .* 16"):
        Pi05Policy(dataclasses.replace(cfg, actions=()), model=absolute.model, tokenizer=absolute.tokenizer)
    with pytest.raises(ValueError, match="takes \\d+ tokens > max_token_len 64"):
        absolute.tokenize("pick up the red cube " * 20, STATE)
    problems = cross_check(cfg, horizon=50, checkpoint="/elsewhere", tokenizer="", num_steps=5)
    assert any("horizon 50" in p and "action_horizon 4" in p for p in problems)
    assert any("/elsewhere" in p and cfg.checkpoint_dir in p for p in problems)
    assert any("num_steps 5" in p and "num_steps 10" in p for p in problems)
    assert cross_check(cfg, horizon=4, checkpoint="", tokenizer=cfg.tokenizer_path, num_steps=10) == []
