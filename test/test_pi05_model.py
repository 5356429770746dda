"""π0.5 model: checkpoint loading (both openpi layouts, architecture inference, dtypes), the KV-cached
velocity against the uncached joint pass, masking invariances, jit vs eager, and load errors."""

import dataclasses
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rtc_controller.policy.pi05 import (
    IMAGE_KEYS,
    ArchitectureError,
    CheckpointError,
    Pi05Model,
    load_pi05,
)
from rtc_controller.policy.pi05.checkpoint import load_params, save_params
from rtc_controller.policy.pi05.model import cast_params
from rtc_controller.policy.pi05.params import flatten, random_params, unflatten
from rtc_controller.policy.pi05.testing import example_norm_stats, tiny_config, write_checkpoint

B = 2


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A tiny random π0.5 in the released layout, with norm stats."""
    cfg = tiny_config()
    d = tmp_path_factory.mktemp("pi05_released")
    params = write_checkpoint(d, cfg, layout="released", norm_stats=example_norm_stats(state_dim=14, action_dim=14))
    return d, cfg, params


@pytest.fixture(scope="module")
def model(ckpt):
    d, cfg, _ = ckpt
    return load_pi05(d, action_horizon=cfg.action_horizon, max_token_len=cfg.max_token_len, dtype="float32")


def _inputs(cfg, seed=0, token_len=None):
    rng = np.random.default_rng(seed)
    size = cfg.siglip.image_size
    token_len = token_len or cfg.max_token_len
    images = {k: rng.uniform(-1, 1, (B, size, size, 3)).astype(np.float32) for k in IMAGE_KEYS}
    masks = {k: np.ones(B, bool) for k in IMAGE_KEYS}
    tokens = rng.integers(1, cfg.vocab_size, (B, token_len)).astype(np.int32)
    token_mask = np.zeros((B, token_len), bool)
    token_mask[0, :15] = True
    token_mask[1, :9] = True
    return images, masks, tokens, token_mask


def _noise(cfg, seed=1):
    return np.random.default_rng(seed).standard_normal((B, cfg.action_horizon, cfg.action_dim)).astype(np.float32)


@pytest.fixture(scope="module")
def velocity_jit(model):
    return jax.jit(model.velocity)


def test_loads_released_layout_and_infers_architecture(ckpt, model):
    d, cfg, params = ckpt
    assert model.config == cfg  # every size read back from the parameter shapes
    assert model.norm_stats is not None and set(model.norm_stats) == {"state", "actions"}
    got = flatten(model.params)
    for path, value in flatten(params).items():
        assert got[path].dtype == jnp.float32
        np.testing.assert_array_equal(np.asarray(got[path]), value, err_msg=path)


def test_loads_training_layout_with_value_suffix_in_bf16(tmp_path, ckpt):
    _, cfg, params = ckpt
    save_params(tmp_path / "params", params, layout="training")
    assert all(k.endswith("/value") for k in flatten(load_params_raw(tmp_path / "params")))
    m = load_pi05(tmp_path, action_horizon=cfg.action_horizon, max_token_len=cfg.max_token_len)  # bf16 default
    assert m.config.dtype == "bfloat16" and m.norm_stats is None
    leaf = m.params["PaliGemma"]["llm"]["layers"]["mlp_1"]["linear"]
    assert leaf.dtype == jnp.bfloat16
    np.testing.assert_array_equal(
        np.asarray(leaf, np.float32),
        np.asarray(params["PaliGemma"]["llm"]["layers"]["mlp_1"]["linear"]).astype(jnp.bfloat16).astype(np.float32),
    )


def load_params_raw(path):
    import orbax.checkpoint as ocp

    with ocp.PyTreeCheckpointer() as c:
        return c.restore(pathlib.Path(path).absolute())["params"]


def test_infers_multi_head_layout_and_other_sizes(tmp_path):
    cfg = tiny_config(action_dim=7, num_kv_heads=4, vocab_size=100)  # N == K: openpi's fused qkv_einsum
    write_checkpoint(tmp_path, cfg)
    assert "qkv_einsum_1" in load_params(tmp_path / "params")["PaliGemma"]["llm"]["layers"]["attn"]
    m = load_pi05(tmp_path, action_horizon=5, max_token_len=8, dtype="float32")
    assert m.config == tiny_config(action_dim=7, num_kv_heads=4, vocab_size=100, action_horizon=5, max_token_len=8)


def test_lora_factors_are_merged(tmp_path, ckpt):
    _, cfg, params = ckpt
    flat = dict(flatten(params))
    w = flat["PaliGemma/llm/layers/attn/q_einsum_1/w"]  # [L, N, D, H]
    rng = np.random.default_rng(0)
    a = rng.standard_normal((*w.shape[:-1], 2)).astype(np.float32)
    b = rng.standard_normal((*w.shape[:-2], 2, w.shape[-1])).astype(np.float32)
    flat["PaliGemma/llm/layers/attn/q_einsum_1/lora_a"] = a
    flat["PaliGemma/llm/layers/attn/q_einsum_1/lora_b"] = b
    save_params(tmp_path / "params", unflatten(flat))
    merged = load_params(tmp_path / "params")["PaliGemma"]["llm"]["layers"]["attn"]["q_einsum_1"]
    assert set(merged) == {"w"}
    np.testing.assert_allclose(merged["w"], w + a @ b, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_cached_velocity_equals_uncached_joint_pass(model, velocity_jit):
    cfg = model.config
    images, masks, tokens, token_mask = _inputs(cfg)
    masks["left_wrist_0_rgb"][1] = False
    x, t = _noise(cfg), jnp.float32(0.63)
    ctx = model.prepare(images, masks, tokens, token_mask)
    v_cached = velocity_jit(ctx, x, t)
    v_joint = jax.jit(model.forward_joint)(images, masks, tokens, token_mask, x, t)
    assert v_cached.shape == (B, cfg.action_horizon, cfg.action_dim) and v_cached.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(v_cached), np.asarray(v_joint), rtol=1e-4, atol=1e-4)
    # the velocity depends on the flow time (adaptive-norm conditioning) and on the observation
    assert float(jnp.max(jnp.abs(velocity_jit(ctx, x, jnp.float32(0.1)) - v_cached))) > 1e-3
    assert float(jnp.max(jnp.abs(v_cached[0] - v_cached[1]))) > 1e-3


def test_masked_camera_and_padding_tokens_do_not_change_velocity(model, velocity_jit):
    cfg = model.config
    images, masks, tokens, token_mask = _inputs(cfg)
    # sample 1 := sample 0 with the right wrist camera masked; then scramble what must be ignored
    for k in IMAGE_KEYS:
        images[k][1] = images[k][0]
    tokens[1], token_mask[1] = tokens[0], token_mask[0]
    masks["right_wrist_0_rgb"][:] = False
    images["right_wrist_0_rgb"][1] = -images["right_wrist_0_rgb"][0]
    tokens[1, ~token_mask[1]] = np.arange((~token_mask[1]).sum()) % cfg.vocab_size
    x = np.repeat(_noise(cfg)[:1], B, axis=0)
    v = velocity_jit(model.prepare(images, masks, tokens, token_mask), x, jnp.float32(0.5))
    np.testing.assert_allclose(np.asarray(v[0]), np.asarray(v[1]), rtol=1e-5, atol=1e-5)
    # and the camera does matter when it is not masked
    masks["right_wrist_0_rgb"][:] = True
    v_unmasked = velocity_jit(model.prepare(images, masks, tokens, token_mask), x, jnp.float32(0.5))
    assert float(jnp.max(jnp.abs(v_unmasked[0] - v_unmasked[1]))) > 1e-3


@pytest.mark.slow
def test_longer_padding_does_not_change_velocity(model, velocity_jit):
    cfg = model.config
    images, masks, tokens, token_mask = _inputs(cfg)
    x, t = _noise(cfg), jnp.float32(0.4)
    v = velocity_jit(model.prepare(images, masks, tokens, token_mask), x, t)
    pad = 9
    tokens_long = np.concatenate([tokens, np.full((B, pad), 7, np.int32)], axis=1)
    mask_long = np.concatenate([token_mask, np.zeros((B, pad), bool)], axis=1)
    v_long = velocity_jit(model.prepare(images, masks, tokens_long, mask_long), x, t)
    np.testing.assert_allclose(np.asarray(v), np.asarray(v_long), rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_prompt_buckets_and_left_out_cameras_do_not_change_velocity(model, velocity_jit):
    """The prefix runs on the shortest prompt bucket (padding masked, positions unshifted) and without slots that
    are left out; both give the velocity of the full-budget prefix with that camera masked."""
    cfg = model.config
    images, masks, tokens, token_mask = _inputs(cfg, seed=5)
    masks["right_wrist_0_rgb"][:] = False
    x, t = _noise(cfg, seed=6), jnp.float32(0.3)
    full = Pi05Model(cfg, model.params, prompt_buckets=(cfg.max_token_len,))
    bucketed = Pi05Model(cfg, model.params, prompt_buckets=(16, cfg.max_token_len))
    assert bucketed.bucket(token_mask) == 16 and full.bucket(token_mask) == cfg.max_token_len
    v_full = velocity_jit(full.prepare(images, masks, tokens, token_mask), x, t)
    ctx = bucketed.prepare(images, masks, tokens, token_mask)
    assert ctx["k"].shape == full.prepare(images, masks, tokens, token_mask)["k"].shape  # one sampler shape
    np.testing.assert_allclose(np.asarray(velocity_jit(ctx, x, t)), np.asarray(v_full), rtol=1e-5, atol=1e-5)
    two = [k for k in IMAGE_KEYS if k != "right_wrist_0_rgb"]
    ctx2 = full.prepare({k: images[k] for k in two}, {k: masks[k] for k in two}, tokens, token_mask)
    np.testing.assert_allclose(np.asarray(velocity_jit(ctx2, x, t)), np.asarray(v_full), rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_jit_matches_eager(model, velocity_jit):
    cfg = model.config
    images, masks, tokens, token_mask = _inputs(cfg, seed=3)
    ctx = model.prepare(images, masks, tokens, token_mask)
    x, t = _noise(cfg, seed=4), jnp.float32(0.8)
    np.testing.assert_allclose(np.asarray(model.velocity(ctx, x, t)), np.asarray(velocity_jit(ctx, x, t)),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_bf16_model_tracks_float32(ckpt, model):
    d, cfg, params = ckpt
    m16 = Pi05Model(dataclasses.replace(cfg, dtype="bfloat16"), cast_params(params, "bfloat16"))
    images, masks, tokens, token_mask = _inputs(cfg)
    x, t = _noise(cfg), jnp.float32(0.7)
    ctx16 = m16.prepare(images, masks, tokens, token_mask)
    assert ctx16["k"].dtype == jnp.bfloat16
    v16 = jax.jit(m16.velocity)(ctx16, x, t)
    v32 = jax.jit(model.velocity)(model.prepare(images, masks, tokens, token_mask), x, t)
    assert v16.dtype == jnp.float32
    err = float(jnp.linalg.norm(v16 - v32) / jnp.linalg.norm(v32))
    assert err < 0.1, err


def test_missing_params_dir_names_the_path(tmp_path):
    with pytest.raises(CheckpointError, match=r"params.*missing 'params/'|missing 'params/'"):
        load_pi05(tmp_path)
    with pytest.raises(CheckpointError, match="not found"):
        load_pi05(tmp_path / "nope")


def test_corrupt_params_dir_is_reported(tmp_path):
    (tmp_path / "params").mkdir()
    (tmp_path / "params" / "_METADATA").write_text("{not json")
    with pytest.raises(CheckpointError, match=str(tmp_path / "params")):
        load_pi05(tmp_path)


def test_missing_parameter_is_named(tmp_path, ckpt):
    _, _, params = ckpt
    flat = dict(flatten(params))
    del flat["PaliGemma/llm/layers/mlp_1/linear"]
    save_params(tmp_path / "params", unflatten(flat))
    with pytest.raises(ArchitectureError, match="mlp_1/linear"):
        load_pi05(tmp_path)


def test_pi0_checkpoint_is_rejected(tmp_path):
    cfg = tiny_config()
    params = random_params(cfg, on_device=False)
    params["state_proj"] = {"kernel": np.zeros((12, 32), np.float32), "bias": np.zeros(32, np.float32)}
    save_params(tmp_path / "params", params)
    with pytest.raises(ArchitectureError, match="π0 checkpoint"):
        load_pi05(tmp_path)


def test_wrong_image_type_is_rejected(model):
    images, masks, tokens, token_mask = _inputs(model.config)
    images["base_0_rgb"] = (images["base_0_rgb"] * 127 + 128).astype(np.int32)
    with pytest.raises(TypeError, match="base_0_rgb"):
        model.prepare(images, masks, tokens, token_mask)
    # uint8 is openpi's other accepted image type: x / 255 * 2 - 1, also when mixed with float32 slots
    raw = images["base_0_rgb"].astype(np.uint8)
    images["base_0_rgb"] = raw
    as_float = dict(images, base_0_rgb=raw.astype(np.float32) / 255.0 * 2.0 - 1.0)
    np.testing.assert_array_equal(np.asarray(model.prepare(images, masks, tokens, token_mask)["k"]),
                                  np.asarray(model.prepare(as_float, masks, tokens, token_mask)["k"]))
    images, masks, tokens, token_mask = _inputs(model.config)
    images["left_wrist_0_rgb"] = images["left_wrist_0_rgb"][:, :100]
    with pytest.raises(ValueError, match="left_wrist_0_rgb"):
        model.prepare(images, masks, tokens, token_mask)
    with pytest.raises(ValueError, match="x_t must be"):
        model.velocity(model.prepare(*_inputs(model.config)), np.zeros((B, 10, 5), np.float32), 0.5)


def test_pytorch_checkpoint_is_refused_with_the_way_out(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 8)
    with pytest.raises(CheckpointError, match=r"PyTorch checkpoint .*model.safetensors.*JAX checkpoints \(params/"):
        load_pi05(tmp_path)


def test_a_flow_time_per_action_token_conditions_each_token(model, velocity_jit):
    """Training-time RTC's per-token flow time: all tokens at t equals the per-sample t; tokens at another time
    change their own velocity (and, through attention, the others')."""
    cfg = model.config
    images, masks, tokens, token_mask = _inputs(cfg)
    x = _noise(cfg)
    ctx = model.prepare(images, masks, tokens, token_mask)
    v = velocity_jit(ctx, x, jnp.float32(0.63))
    per_token = jnp.full((B, cfg.action_horizon), 0.63, jnp.float32)
    np.testing.assert_allclose(np.asarray(velocity_jit(ctx, x, per_token)), np.asarray(v), rtol=1e-5, atol=1e-5)
    prefix_clean = per_token.at[:, :3].set(0.0)
    v2 = velocity_jit(ctx, x, prefix_clean)
    assert float(jnp.max(jnp.abs(v2[:, :3] - v[:, :3]))) > 1e-3
    v_joint = jax.jit(model.forward_joint)(images, masks, tokens, token_mask, x, prefix_clean)
    np.testing.assert_allclose(np.asarray(v2), np.asarray(v_joint), rtol=1e-4, atol=1e-4)


def test_a_relative_params_path_loads_like_an_absolute_one(tmp_path, ckpt, monkeypatch):
    d, _, params = ckpt
    monkeypatch.chdir(d)
    got = flatten(load_params("params"))
    for path, value in flatten(params).items():
        np.testing.assert_array_equal(np.asarray(got[path]), value, err_msg=path)
