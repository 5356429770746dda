"""π0.5 (openpi) in plain JAX: a KV-cached prefix pass and an action-expert velocity field.

Time convention (openpi): flow time t = 1 is noise, t = 0 is data; the sampler integrates x ← x − v/n.

Axes: b = batch, ah = action horizon, ad = model action dim (32 for openpi's releases), L = layers,
S = prefix tokens (3 cameras × T image tokens + the prompt's max_token_len), K = kv heads, H = head dim.

The prefix (image tokens, then prompt tokens) attends bidirectionally to every valid prefix token; action
tokens attend to the whole valid prefix and to each other; the prefix never attends to actions. Positions
count valid tokens only (cumsum(mask) − 1), so masked cameras and padding change nothing.
``prepare`` runs SigLIP and the Gemma-2B expert once per chunk and returns the KV cache; ``velocity`` runs
only the action expert (with adaptive-RMSNorm time conditioning) against that cache, so the RTC sampler's
``full`` mode differentiates through the action expert alone.
"""

from __future__ import annotations

import logging
import pathlib
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rtc_controller.policy.pi05 import gemma, siglip
from rtc_controller.policy.pi05.checkpoint import CheckpointError, load_params
from rtc_controller.policy.pi05.config import IMAGE_KEYS, Dtype, Pi05Config, infer_config
from rtc_controller.policy.pi05.lora import LoraSettings
from rtc_controller.policy.pi05.norm_stats import NormStats, NormStatsError, find_norm_stats, load_norm_stats
from rtc_controller.policy.pi05.params import Params, check_float_dtype, select_expected

logger = logging.getLogger(__name__)
Array = jax.Array

# Sin-cos time embedding of the flow time (openpi: sensitivity over [0, 1]).
TIME_EMB_MIN_PERIOD = 4e-3
TIME_EMB_MAX_PERIOD = 4.0
# Parameters the velocity field needs: the action expert's layers (suffix _1) and the action/time heads.
_EXPERT_TOP_KEYS = ("action_in_proj", "time_mlp_in", "time_mlp_out", "action_out_proj")


def make_attn_mask(input_mask: Array, mask_ar: Array) -> Array:
    """big_vision's prefix-LM mask: token i attends to valid token j iff cumsum(ar)[j] ≤ cumsum(ar)[i].

    input_mask bool [b, n]; mask_ar bool [n] or [b, n] (True starts a new causal block). Returns bool [b, n, n].
    Example: ar = [0 0 1 0] -> tokens 0,1 see {0,1}; tokens 2,3 see {0,1,2,3}.
    """
    mask_ar = jnp.broadcast_to(mask_ar, input_mask.shape)
    cumsum = jnp.cumsum(mask_ar, axis=1)
    attn = cumsum[:, None, :] <= cumsum[:, :, None]
    valid = input_mask[:, None, :] & input_mask[:, :, None]
    return attn & valid


def posemb_sincos(pos: Array, dim: int, *, min_period: float = TIME_EMB_MIN_PERIOD,
                  max_period: float = TIME_EMB_MAX_PERIOD) -> Array:
    """Scalar positions [b] -> [b, dim] = [sin(2π·pos/period), cos(…)], periods geometric in [min, max]."""
    if dim % 2:
        raise ValueError(f"embedding dim ({dim}) must be even")
    fraction = jnp.linspace(0.0, 1.0, dim // 2)
    period = min_period * (max_period / min_period) ** fraction
    x = jnp.einsum("i,j->ij", pos, 1.0 / period * 2 * jnp.pi, precision=jax.lax.Precision.HIGHEST)
    return jnp.concatenate([jnp.sin(x), jnp.cos(x)], axis=-1)


def _linear(p: dict[str, Array], x: Array) -> Array:
    """nnx.Linear without a dtype: computes in the promoted dtype of input and weights."""
    dt = jnp.result_type(x.dtype, p["kernel"].dtype)
    return x.astype(dt) @ p["kernel"].astype(dt) + p["bias"].astype(dt)


def expert_params(params: Params) -> Params:
    """The subtree the velocity field uses: action-expert layers and norms, action/time projections."""
    llm = params["PaliGemma"]["llm"]
    return {
        "layers": gemma.expert_layers(llm["layers"], [1]),
        "final_norm_1": llm["final_norm_1"],
        **{k: params[k] for k in _EXPERT_TOP_KEYS},
    }


def embed_prefix(params: Params, cfg: Pi05Config, images: dict[str, Array], image_masks: dict[str, Array],
                 tokens: Array, token_mask: Array) -> tuple[Array, Array]:
    """Prefix embeddings [b, S, D] (cameras in IMAGE_KEYS order, then the prompt) and validity mask [b, S]."""
    dtype = jnp.dtype(cfg.dtype)
    b = tokens.shape[0]
    stacked = jnp.concatenate([jnp.asarray(images[k], jnp.float32) for k in IMAGE_KEYS], axis=0)
    img_tokens = siglip.encode_images(params["PaliGemma"]["img"], cfg.siglip, stacked, dtype)
    img_tokens = img_tokens.reshape(len(IMAGE_KEYS), b, *img_tokens.shape[1:])
    n_img = img_tokens.shape[2]
    embs = [img_tokens[i] for i in range(len(IMAGE_KEYS))]
    masks = [jnp.broadcast_to(jnp.asarray(image_masks[k], bool)[:, None], (b, n_img)) for k in IMAGE_KEYS]
    embs.append(gemma.embed_tokens(params["PaliGemma"]["llm"], tokens, dtype))
    masks.append(jnp.asarray(token_mask, bool))
    return jnp.concatenate(embs, axis=1).astype(dtype), jnp.concatenate(masks, axis=1)


def _prefix_pass(params: Params, cfg: Pi05Config, images, image_masks, tokens, token_mask) -> dict[str, Array]:
    x, mask = embed_prefix(params, cfg, images, image_masks, tokens, token_mask)
    attn = mask[:, None, :] & mask[:, :, None]  # bidirectional over valid prefix tokens
    positions = jnp.cumsum(mask, axis=1) - 1
    _, (k, v) = gemma.transformer(
        params["PaliGemma"]["llm"], [x, None], positions, attn, [None, None], (cfg.llm, cfg.expert), return_kv=True
    )
    return {"k": k, "v": v, "prefix_mask": mask}


def _embed_suffix(ep: Params, cfg: Pi05Config, x_t: Array, t: Array) -> tuple[Array, Array]:
    """Action tokens [b, ah, D1] (activation dtype) and the adaptive-norm condition [b, D1] (float32)."""
    b = x_t.shape[0]
    t = jnp.broadcast_to(jnp.asarray(t, jnp.float32), (b,))
    tokens = _linear(ep["action_in_proj"], jnp.asarray(x_t, jnp.float32))
    temb = posemb_sincos(t, cfg.expert.width)
    temb = jax.nn.swish(_linear(ep["time_mlp_in"], temb))
    temb = jax.nn.swish(_linear(ep["time_mlp_out"], temb))
    return tokens.astype(jnp.dtype(cfg.dtype)), temb


def _check_actions(cfg: Pi05Config, x_t: Array) -> None:
    if x_t.ndim != 3 or x_t.shape[-1] != cfg.action_dim:
        raise ValueError(f"x_t must be [b, ah, {cfg.action_dim}], got {x_t.shape}")


def velocity_from_cache(cfg: Pi05Config, context: dict[str, Any], x_t: Array, t: Array) -> Array:
    """Action-expert velocity [b, ah, ad] (float32) against a prefix KV cache; pure and differentiable in x_t."""
    _check_actions(cfg, x_t)
    ep = context["expert"]
    suffix, cond = _embed_suffix(ep, cfg, x_t, t)
    b, ah = suffix.shape[:2]
    prefix_mask = context["prefix_mask"]
    s = prefix_mask.shape[1]
    full_mask = jnp.concatenate(
        [jnp.broadcast_to(prefix_mask[:, None, :], (b, ah, s)), jnp.ones((b, ah, ah), bool)], axis=-1
    )
    positions = jnp.sum(prefix_mask, axis=-1)[:, None] + jnp.arange(ah)[None, :]
    llm = {"layers": ep["layers"], "final_norm_1": ep["final_norm_1"]}
    (_, out), _ = gemma.transformer(
        llm, [None, suffix], positions, full_mask, [None, cond], (cfg.llm, cfg.expert),
        kv_cache=(context["k"], context["v"]),
    )
    return _linear(ep["action_out_proj"], out).astype(jnp.float32)


def forward_joint(params: Params, cfg: Pi05Config, images, image_masks, tokens, token_mask, x_t, t) -> Array:
    """Reference: one uncached pass over prefix + actions (openpi's training forward); velocity [b, ah, ad]."""
    _check_actions(cfg, x_t)
    prefix, prefix_mask = embed_prefix(params, cfg, images, image_masks, tokens, token_mask)
    ep = expert_params(params)
    suffix, cond = _embed_suffix(ep, cfg, x_t, t)
    b, ah = suffix.shape[:2]
    input_mask = jnp.concatenate([prefix_mask, jnp.ones((b, ah), bool)], axis=1)
    ar = jnp.concatenate([jnp.zeros(prefix.shape[1], bool), jnp.ones(1, bool), jnp.zeros(ah - 1, bool)])
    attn = make_attn_mask(input_mask, ar)
    positions = jnp.cumsum(input_mask, axis=1) - 1
    (_, out), _ = gemma.transformer(
        params["PaliGemma"]["llm"], [prefix, suffix], positions, attn, [None, cond], (cfg.llm, cfg.expert)
    )
    return _linear(ep["action_out_proj"], out[:, -ah:]).astype(jnp.float32)


@dataclass(eq=False)
class Pi05Model:
    """A loaded π0.5. Hashes by identity, so ``velocity`` can be a static argument of a jitted sampler.

    ``prepare`` is jit-compiled once per input shape; ``velocity`` is pure (jit it, or let the sampler do so).
    The context holds the KV cache, the prefix mask and the action-expert weights (device arrays, no copy).
    """

    config: Pi05Config
    params: Params
    norm_stats: dict[str, NormStats] | None = None
    _prepare_jit: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        cfg = self.config
        self._prepare_jit = jax.jit(lambda p, *a: _prefix_pass(p, cfg, *a))

    @property
    def action_dim(self) -> int:
        return self.config.action_dim

    @property
    def action_horizon(self) -> int:
        return self.config.action_horizon

    def prepare(self, images: dict[str, Any], image_masks: dict[str, Any], tokens: Any, token_mask: Any) -> dict:
        """One prefix pass -> context {k, v: [L, b, S, K, H], prefix_mask: [b, S], expert: weights}.

        images: IMAGE_KEYS -> float32 [b, 224, 224, 3] in [−1, 1]; image_masks: IMAGE_KEYS -> bool [b];
        tokens int32 [b, l]; token_mask bool [b, l].
        """
        self._check_inputs(images, image_masks, tokens, token_mask)
        images = {k: jnp.asarray(images[k], jnp.float32) for k in IMAGE_KEYS}
        image_masks = {k: jnp.asarray(image_masks[k], bool) for k in IMAGE_KEYS}
        ctx = self._prepare_jit(self.params, images, image_masks, jnp.asarray(tokens, jnp.int32),
                                jnp.asarray(token_mask, bool))
        ctx["expert"] = expert_params(self.params)
        return ctx

    def velocity(self, context: dict[str, Any], x_t: Array, t: Array) -> Array:
        """v(x_t, t) [b, ah, ad] float32 (t = 1 noise); pure, jittable, differentiable in x_t."""
        return velocity_from_cache(self.config, context, x_t, t)

    def forward_joint(self, images, image_masks, tokens, token_mask, x_t, t) -> Array:
        """Uncached reference velocity (one joint prefix + action pass); for tests."""
        return forward_joint(self.params, self.config, images, image_masks, tokens, token_mask, x_t, t)

    def sample_actions(self, context: dict[str, Any], noise: Array, *, num_steps: int = 10) -> Array:
        """Plain Euler sampling (no guidance) from ``noise`` [b, ah, ad] at t = 1 to t = 0; for tests and tools."""
        dt = -1.0 / num_steps

        def step(i, x):
            t = 1.0 + i * dt
            return x + dt * self.velocity(context, x, jnp.float32(t))

        return jax.lax.fori_loop(0, num_steps, step, jnp.asarray(noise, jnp.float32))

    def fake_inputs(self, batch_size: int = 1) -> tuple[dict, dict, np.ndarray, np.ndarray]:
        """Zero images (all cameras valid) and a one-token prompt, for jit warm-up."""
        size = self.config.siglip.image_size
        images = {k: np.zeros((batch_size, size, size, 3), np.float32) for k in IMAGE_KEYS}
        masks = {k: np.ones((batch_size,), bool) for k in IMAGE_KEYS}
        tokens = np.zeros((batch_size, self.config.max_token_len), np.int32)
        token_mask = np.zeros((batch_size, self.config.max_token_len), bool)
        token_mask[:, 0] = True
        return images, masks, tokens, token_mask

    def _check_inputs(self, images, image_masks, tokens, token_mask) -> None:
        size = self.config.siglip.image_size
        for k in IMAGE_KEYS:
            if k not in images or k not in image_masks:
                raise ValueError(f"images and image_masks need all of {IMAGE_KEYS}; missing {k!r}")
            img = images[k]
            if not hasattr(img, "shape") or not hasattr(img, "dtype"):
                raise TypeError(f"image {k!r} must be an array, got {type(img).__name__}")
            if not jnp.issubdtype(img.dtype, jnp.floating):
                raise TypeError(f"image {k!r} must be float32 in [-1, 1], got dtype {img.dtype}")
            if tuple(img.shape[1:]) != (size, size, 3):
                raise ValueError(f"image {k!r} must be [b, {size}, {size}, 3], got {tuple(img.shape)}")
        if np.ndim(tokens) != 2 or np.shape(tokens) != np.shape(token_mask):
            raise ValueError(f"tokens and token_mask must both be [b, l], got {np.shape(tokens)}, {np.shape(token_mask)}")


def cast_params(params: Params, dtype: Dtype) -> Params:
    """Every leaf as a device array of ``dtype`` (openpi restores all weights as bf16 for inference)."""
    return jax.tree.map(lambda x: jnp.asarray(x, dtype=jnp.dtype(dtype)), params)


def load_pi05(checkpoint_dir: str | pathlib.Path, *, action_horizon: int = 50, max_token_len: int = 200,
              dtype: Dtype = "bfloat16", asset_id: str | None = None, lora: LoraSettings | None = None) -> Pi05Model:
    """Load an openpi π0.5 checkpoint: ``<checkpoint_dir>/params`` (orbax; released or training layout) and,
    when present, ``<checkpoint_dir>/assets/<asset_id>/norm_stats.json`` (attached as ``model.norm_stats``).

    The architecture is inferred from the parameter shapes. Raises CheckpointError / ArchitectureError /
    NormStatsError with the offending path. ``lora``: the scaling of LoRA factors (merged in float32 on load).
    """
    checkpoint_dir = pathlib.Path(checkpoint_dir)
    if not checkpoint_dir.is_dir():
        raise CheckpointError(f"{checkpoint_dir}: checkpoint directory not found")
    params_dir = checkpoint_dir / "params"
    if not params_dir.is_dir():
        raise CheckpointError(f"{params_dir}: missing 'params/' (expected an openpi orbax parameter checkpoint)")
    raw = load_params(params_dir, dtype=dtype, lora=lora)
    cfg = infer_config(raw, action_horizon=action_horizon, max_token_len=max_token_len, dtype=dtype,
                       source=str(params_dir))
    params = select_expected(raw, cfg, source=str(params_dir))
    check_float_dtype(params, source=str(params_dir))
    norm_stats = None
    try:
        norm_stats = load_norm_stats(find_norm_stats(checkpoint_dir, asset_id))
    except NormStatsError as e:
        if asset_id is not None or (checkpoint_dir / "assets").is_dir():
            raise
        logger.info("no norm stats loaded (%s)", e)
    logger.info("loaded π0.5 from %s: %s", checkpoint_dir, cfg)
    return Pi05Model(cfg, cast_params(params, dtype), norm_stats)
