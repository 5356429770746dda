"""π0.5 under the RTC sampler: all three guidance modes run on the KV-cached velocity; the context is traced
(new observations never recompile); ``full`` back-propagates through the action expert only."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rtc_controller.policy.pi05 import IMAGE_KEYS, load_pi05
from rtc_controller.policy.pi05.testing import tiny_config, write_checkpoint
from rtc_controller.rtc import prefix_weights, sample

B = 1
NUM_STEPS = 4


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    cfg = tiny_config(max_token_len=20)
    d = tmp_path_factory.mktemp("pi05_rtc")
    write_checkpoint(d, cfg, seed=3)
    return load_pi05(d, action_horizon=cfg.action_horizon, max_token_len=cfg.max_token_len, dtype="float32")


def _context(model, seed):
    cfg = model.config
    rng = np.random.default_rng(seed)
    images = {k: rng.uniform(-1, 1, (B, 224, 224, 3)).astype(np.float32) for k in IMAGE_KEYS}
    masks = {k: np.ones(B, bool) for k in IMAGE_KEYS}
    tokens = rng.integers(1, cfg.vocab_size, (B, cfg.max_token_len)).astype(np.int32)
    token_mask = np.arange(cfg.max_token_len)[None] < 11
    return model.prepare(images, masks, tokens, token_mask)


def _guidance(model, seed=5):
    cfg = model.config
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((B, cfg.action_horizon, cfg.action_dim)).astype(np.float32)
    prefix = rng.uniform(-1, 1, (B, cfg.action_horizon, cfg.action_dim)).astype(np.float32)
    weights = prefix_weights(3, 7, cfg.action_horizon, "exp")
    return noise, prefix, weights


def _sample(model, ctx, noise, prefix, weights, mode, beta=10.0):
    return sample(model.velocity, noise, context=ctx, num_steps=NUM_STEPS, prefix=prefix, weights=weights,
                  max_guidance_weight=beta, mode=mode)


@pytest.mark.slow
def test_all_modes_run_and_guidance_pulls_toward_the_prefix(model):
    ctx = _context(model, 0)
    noise, prefix, weights = _guidance(model)
    out = {m: np.asarray(_sample(model, ctx, noise, prefix, weights, m)) for m in ("none", "stop", "full")}
    for m, x in out.items():
        assert x.shape == noise.shape and np.isfinite(x).all(), m
    # none == the model's own unguided Euler sampler
    np.testing.assert_allclose(out["none"], np.asarray(model.sample_actions(ctx, noise, num_steps=NUM_STEPS)),
                               rtol=1e-5, atol=1e-5)
    frozen = slice(0, 3)  # w = 1 there
    err = {m: float(np.abs(out[m][:, frozen] - prefix[:, frozen]).mean()) for m in out}
    assert err["stop"] < 0.5 * err["none"], err
    assert err["full"] < err["none"], err
    # the VJP through the action expert changes the result (full is not stop in disguise)
    assert not np.allclose(out["full"], out["stop"])


def test_new_observation_does_not_recompile(model):
    noise, prefix, weights = _guidance(model)
    from rtc_controller.rtc import sampler as sampler_mod

    _sample(model, _context(model, 1), noise, prefix, weights, "stop")
    size = sampler_mod._sample_jit._cache_size()
    _sample(model, _context(model, 2), noise * 0.5, prefix, weights * 0.5, "stop", beta=3.0)
    assert sampler_mod._sample_jit._cache_size() == size


def _dot_shapes(jaxpr, out):
    """Operand shapes of every dot_general in a jaxpr, including nested (scan, pjit, custom_vjp) jaxprs."""
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            out.append(tuple(tuple(v.aval.shape) for v in eqn.invars))
        for p in eqn.params.values():
            for sub in p if isinstance(p, (tuple, list)) else (p,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    _dot_shapes(inner, out)
    return out


@pytest.mark.slow
def test_full_mode_differentiates_through_the_action_expert_only(model):
    cfg = model.config
    ctx = _context(model, 0)
    noise, prefix, weights = _guidance(model)
    # the context carries the prefix KV cache and only the action expert's weights
    leaves = jax.tree_util.tree_leaves_with_path(ctx["expert"])
    assert all("_1" in jax.tree_util.keystr(p) or "proj" in jax.tree_util.keystr(p) or "time_mlp" in
               jax.tree_util.keystr(p) for p, _ in leaves)

    def run(mode):
        return jax.make_jaxpr(lambda c, x: _sample(model, c, x, prefix, weights, mode))(ctx, noise).jaxpr

    full, stop = _dot_shapes(run("full"), []), _dot_shapes(run("stop"), [])
    assert len(full) > len(stop)  # full has a backward pass, stop has none
    # no matmul in the sampler touches the PaliGemma expert (width 48, MLP 72) or SigLIP (MLP 56)
    prefix_sizes = {cfg.llm.width, cfg.llm.mlp_dim, cfg.siglip.mlp_dim}
    assert prefix_sizes.isdisjoint({cfg.expert.width, cfg.expert.mlp_dim, cfg.action_dim, cfg.action_horizon,
                                    cfg.prefix_len, cfg.expert.head_dim})
    touched = {d for shapes in full for s in shapes for d in s}
    assert touched.isdisjoint(prefix_sizes), touched & prefix_sizes
    assert cfg.expert.mlp_dim in touched  # the action expert's MLP is differentiated
    # and the VJP gives the same chunk as the reference autodiff of velocity w.r.t. x_t alone
    x = jnp.asarray(noise)
    v, vjp = jax.vjp(lambda y: model.velocity(ctx, y, jnp.float32(0.7)), x)
    (g,) = vjp(jnp.ones_like(v))
    assert g.shape == x.shape and bool(jnp.isfinite(g).all()) and float(jnp.abs(g).max()) > 0
