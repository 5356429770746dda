"""Pi05Policy: raw observation -> prompt tokens and images -> chunks in physical units; normalisation and delta
round trips; the tokenizer path with a SentencePiece model trained here; clear errors."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rtc_controller.policy.base import FlowPolicy, Observation
from rtc_controller.policy.chunk_sampler import ChunkSampler, GuidanceSettings, PreviousChunk
from rtc_controller.policy.pi05 import (
    IMAGE_KEYS,
    NormStatsError,
    PaligemmaTokenizer,
    Pi05Policy,
    Pi05PolicyConfig,
    Segment,
    TokenizerError,
    load_pi05,
)
from rtc_controller.policy.pi05.image import resize_with_pad
from rtc_controller.policy.pi05.policy import WARMUP_PROMPT
from rtc_controller.policy.pi05.tokenizer import discretize_state, format_prompt
from rtc_controller.policy.pi05.testing import example_norm_stats, tiny_config, write_checkpoint, write_tokenizer

STATE_DIM = 14
ACTION_NAMES = tuple(f"a{i}" for i in range(14))
MODEL_ACTION_DIM = 16  # padded, like openpi's 32


@pytest.fixture(scope="module")
def spm_path(tmp_path_factory):
    """A small SentencePiece model trained on π0.5-style prompts (stands in for paligemma_tokenizer.model)."""
    pytest.importorskip("sentencepiece")
    return write_tokenizer(tmp_path_factory.mktemp("spm") / "paligemma_tokenizer.model", state_dim=STATE_DIM)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    cfg = tiny_config(action_dim=MODEL_ACTION_DIM, max_token_len=48)
    d = tmp_path_factory.mktemp("pi05_policy")
    write_checkpoint(d, cfg, norm_stats=example_norm_stats(state_dim=STATE_DIM, action_dim=14))
    return d, cfg


def _config(ckpt, spm_path, **kw):
    d, cfg = ckpt
    return Pi05PolicyConfig(checkpoint_dir=str(d), tokenizer_path=str(spm_path), action_names=ACTION_NAMES,
                            action_horizon=cfg.action_horizon, max_token_len=cfg.max_token_len, dtype="float32", **kw)


@pytest.fixture(scope="module")
def policy(ckpt, spm_path):
    return Pi05Policy(_config(ckpt, spm_path, delta_action_mask=(True,) * 6 + (False,)))


def _obs(seed=0, *, cameras=IMAGE_KEYS, size=(48, 64)):
    rng = np.random.default_rng(seed)
    images = {k: rng.integers(0, 256, (*size, 3), dtype=np.uint8) for k in cameras}
    return Observation(state=rng.uniform(-0.3, 0.3, STATE_DIM), stamp_s=1.0, prompt="pick_up the\nred cube",
                       images=images)


def test_policy_is_a_flow_policy(policy):
    assert isinstance(policy, FlowPolicy)
    assert policy.action_names == ACTION_NAMES and policy.horizon == 10 and policy.model_action_dim == MODEL_ACTION_DIM
    # identity hashing, so policy.velocity is a stable static argument for the jitted sampler
    assert hash(policy) == object.__hash__(policy) and policy.velocity == policy.velocity


def test_prompt_format_and_state_bins(policy, spm_path):
    assert list(discretize_state(np.array([-1.0, -0.9999, 0.0, 0.999, 1.0, -1.5]))) == [0, 0, 128, 255, 255, -1]
    s = format_prompt("  pick_up the\ncube ", np.array([-1.0, 0.0]))
    assert s == "Task: pick up the cube, State: 0 128;\nAction: "
    obs = _obs()
    _, _, tokens, mask = policy.model_inputs(obs)
    n = int(mask.sum())
    assert mask[0, :n].all() and not mask[0, n:].any() and (tokens[0, n:] == 0).all()
    expected = format_prompt(obs.prompt, policy.normalized_state(obs.state))
    assert expected.startswith("Task: pick up the red cube, State: ")
    assert tokens[0, :n].tolist() == policy.tokenizer._sp.encode(expected, add_bos=True)


def test_state_quantile_normalisation_maps_q01_q99_to_edges(policy):
    stats = policy.model.norm_stats["state"]
    np.testing.assert_allclose(policy.normalized_state(stats.q01), -1.0, atol=1e-5)
    np.testing.assert_allclose(policy.normalized_state(stats.q99), 1.0, atol=1e-5)
    bins = discretize_state(policy.normalized_state(stats.q01 + 1e-3 * (stats.q99 - stats.q01)))
    assert (bins == 0).all()


def test_action_round_trip_with_delta_dims(policy):
    obs = _obs(1)
    rng = np.random.default_rng(2)
    model_space = rng.uniform(-1, 1, (3, policy.horizon, policy.model_action_dim))
    model_space[..., len(ACTION_NAMES):] = 0.0
    phys = policy.to_physical(model_space, obs)
    assert phys.shape == (3, policy.horizon, len(ACTION_NAMES))
    np.testing.assert_allclose(policy.to_model(phys, obs), model_space, atol=1e-5)
    # delta dims are relative to the observed state, absolute dims are not
    moved = Observation(state=obs.state + 0.1, stamp_s=obs.stamp_s, prompt=obs.prompt, images=obs.images)
    diff = policy.to_physical(model_space, moved) - phys
    np.testing.assert_allclose(diff[..., :6], 0.1, atol=1e-9)
    np.testing.assert_allclose(diff[..., 6:], 0.0, atol=1e-12)
    # quantile unnormalisation: -1 -> q01, +1 -> q99 on absolute dims
    stats = policy.model.norm_stats["actions"]
    edge = policy.to_physical(np.ones((1, policy.horizon, policy.model_action_dim)), obs)
    np.testing.assert_allclose(edge[0, 0, 6:], stats.q99[6:14], atol=1e-5)


def test_images_any_size_and_missing_cameras_are_masked(policy):
    obs = _obs(cameras=("base_0_rgb", "left_wrist_0_rgb"), size=(30, 90))
    images, masks, _, _ = policy.model_inputs(obs)
    assert all(images[k].shape == (1, 224, 224, 3) and images[k].dtype == np.uint8 for k in IMAGE_KEYS)
    assert masks["right_wrist_0_rgb"].tolist() == [False] and masks["base_0_rgb"].tolist() == [True]
    base = images["base_0_rgb"][0]
    # resize-with-pad: 30x90 -> 74x224 centred, black bars top and bottom
    assert (base[:75] == 0).all() and (base[-75:] == 0).all()
    assert resize_with_pad(np.zeros((30, 90, 3), np.uint8), 224, 224).shape == (224, 224, 3)
    ctx = policy.prepare(obs)
    t = policy.model.config.siglip.num_patches
    assert not ctx["prefix_mask"][0, 2 * t: 3 * t].any() and ctx["prefix_mask"][0, :2 * t].all()


def test_infer_returns_a_finite_physical_chunk(policy):
    chunk = policy.infer(_obs(3), num_steps=3)
    assert chunk.shape == (policy.horizon, len(ACTION_NAMES)) and np.isfinite(chunk).all()
    v = jax.jit(policy.velocity)(policy.prepare(_obs(3)), jnp.zeros((1, policy.horizon, policy.model_action_dim)), 1.0)
    assert v.shape == (1, policy.horizon, policy.model_action_dim)


class CountingPi05Policy(Pi05Policy):
    """π0.5 counting how often ``velocity`` is traced (once per compilation of a sampler variant)."""

    traces = 0

    def velocity(self, context, x_t, t):
        self.traces += 1
        return super().velocity(context, x_t, t)


def test_fake_observation_has_the_shapes_of_a_real_one(policy):
    fake = policy.fake_observation(2.5)
    assert fake.stamp_s == 2.5 and fake.prompt == WARMUP_PROMPT
    assert fake.state.shape == (len(ACTION_NAMES),) and not fake.state.any()
    assert set(fake.images) == set(IMAGE_KEYS)
    assert all(img.shape == (224, 224, 3) and img.dtype == np.uint8 and not img.any() for img in fake.images.values())
    assert set(policy.fake_observation(cameras=IMAGE_KEYS[:1]).images) == {IMAGE_KEYS[0]}
    with pytest.raises(ValueError, match="unknown camera"):
        policy.fake_observation(cameras=("front",))


@pytest.mark.slow  # compiles the prefix pass and the three sampler variants of a fresh policy (~10 s)
def test_warmup_on_fake_observation_compiles_everything_a_real_chunk_needs(policy):
    from rtc_controller.rtc import sampler as sampler_mod

    counting = CountingPi05Policy(policy.config, model=policy.model, tokenizer=policy.tokenizer)
    dt_s, s, d = 0.05, 4, 2
    chunk_sampler = ChunkSampler(counting, dt_s=dt_s, num_steps=3)
    chunk_sampler.warmup()  # no observation: uses counting.fake_observation()
    assert chunk_sampler.is_warm and counting.traces > 0
    compiled = (counting.traces, policy.model._prepare_jit._cache_size(), sampler_mod._sample_jit._cache_size())

    # real camera frames (480x640), a real prompt and state; later one camera drops out (masked, same shapes)
    first_obs = _obs(5, size=(480, 640))
    first = chunk_sampler.sample(first_obs, previous=None, settings=GuidanceSettings(0, s), key=jax.random.key(0))
    previous = PreviousChunk(first.actions, first_obs.stamp_s)
    for k, mode in enumerate(("stop", "full", "none")):
        obs = _obs(6 + k, cameras=IMAGE_KEYS[:2], size=(480, 640))
        obs = Observation(state=obs.state, stamp_s=first_obs.stamp_s + s * dt_s, prompt="open the drawer",
                          images=obs.images)
        r = chunk_sampler.sample(obs, previous=previous, key=jax.random.key(k), with_unguided=True,
                                 settings=GuidanceSettings(d, s, max_guidance_weight=5.0, mode=mode))
        assert r.actions.shape == (policy.horizon, len(ACTION_NAMES)) and np.isfinite(r.actions).all()
        assert r.guided == (mode != "none")
    after = (counting.traces, policy.model._prepare_jit._cache_size(), sampler_mod._sample_jit._cache_size())
    assert after == compiled, "a real observation after the fake warm-up must not recompile (traces, caches)"


def test_wrong_image_types_are_rejected(policy):
    bad = _obs()
    images = dict(bad.images)
    images["base_0_rgb"] = images["base_0_rgb"].astype(np.float32)
    with pytest.raises(TypeError, match="base_0_rgb"):
        policy.model_inputs(Observation(state=bad.state, stamp_s=0.0, prompt="x", images=images))
    with pytest.raises(ValueError, match="unknown camera"):
        policy.model_inputs(Observation(state=bad.state, stamp_s=0.0, prompt="x", images={"front": images["left_wrist_0_rgb"]}))


def test_missing_tokenizer_names_the_path(ckpt, tmp_path):
    missing = tmp_path / "nope.model"
    with pytest.raises(TokenizerError, match="nope.model"):
        PaligemmaTokenizer(missing)
    (tmp_path / "junk.model").write_bytes(b"not a sentencepiece model")
    with pytest.raises(TokenizerError, match="junk.model"):
        PaligemmaTokenizer(tmp_path / "junk.model")


def test_missing_norm_stats_names_the_file(tmp_path, spm_path):
    cfg = tiny_config(action_dim=MODEL_ACTION_DIM, max_token_len=48)
    write_checkpoint(tmp_path, cfg)  # params only
    with pytest.raises(NormStatsError, match="norm_stats.json"):
        Pi05Policy(_config((tmp_path, cfg), spm_path))
    (tmp_path / "assets" / "rig").mkdir(parents=True)
    (tmp_path / "assets" / "rig" / "norm_stats.json").write_text("{broken")
    with pytest.raises(NormStatsError, match="norm_stats.json"):
        load_pi05(tmp_path)


def test_action_dims_mismatch_is_reported(ckpt, spm_path):
    d, cfg = ckpt
    model = load_pi05(d, action_horizon=cfg.action_horizon, max_token_len=cfg.max_token_len, dtype="float32")
    too_many = tuple(f"a{i}" for i in range(cfg.action_dim + 1))
    with pytest.raises(ValueError, match="state dim mismatch: .* has 17 dims but norm_stats 'state' .* has 14"):
        Pi05Policy(dataclasses.replace(_config(ckpt, spm_path), action_names=too_many), model=model)
    state_only = dataclasses.replace(_config(ckpt, spm_path), action_names=too_many,
                                     state=(Segment(too_many[:14]),))
    with pytest.raises(ValueError, match="action dim mismatch: .* take 17 model dims but norm_stats 'actions' .* 14"):
        Pi05Policy(state_only, model=model)
    with pytest.raises(ValueError, match="delta_action_mask"):
        _config(ckpt, spm_path, delta_action_mask=(True,) * 15)


def test_resize_with_pad_is_openpis_pil_path():
    """openpi_client.image_tools.resize_with_pad: PIL bilinear on uint8, pasted at floor((224 - size) / 2)."""
    from PIL import Image

    from rtc_controller.policy.pi05.image import UINT8_TO_UNIT, resized_shape, to_model_image

    rng = np.random.default_rng(7)
    img = rng.integers(0, 256, (31, 97, 3), dtype=np.uint8)
    h, w = resized_shape(31, 97, 224, 224)
    assert (h, w) == (71, 224)  # int(31 / (97 / 224)) = 71: 153 rows of padding, 76 on top, 77 below
    want = np.zeros((224, 224, 3), np.uint8)
    want[76:76 + h] = np.asarray(Image.fromarray(img).resize((w, h), resample=Image.BILINEAR))
    got = resize_with_pad(img, 224, 224)
    np.testing.assert_array_equal(got, want)
    assert resize_with_pad(got, 224, 224) is got  # already the model size: untouched
    # uint8 -> [-1, 1] is openpi's NumPy float32 arithmetic, bit for bit, for every value
    values = np.arange(256, dtype=np.uint8)
    np.testing.assert_array_equal(UINT8_TO_UNIT[values], values.astype(np.float32) / 255.0 * 2.0 - 1.0)
    np.testing.assert_array_equal(to_model_image(img, 224), want.astype(np.float32) / 255.0 * 2.0 - 1.0)
