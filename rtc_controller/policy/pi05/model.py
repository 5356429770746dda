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
from rtc_controller.policy.pi05.image import UINT8_TO_UNIT
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
    """Positions [...] (e.g. [b], or [b, ah] per action token) -> [..., dim] = [sin(2π·pos/period), cos(…)],
    periods geometric in [min, max]."""
    if dim % 2:
        raise ValueError(f"embedding dim ({dim}) must be even")
    fraction = jnp.linspace(0.0, 1.0, dim // 2)
    period = min_period * (max_period / min_period) ** fraction
    x = jnp.einsum("...,j->...j", pos, 1.0 / period * 2 * jnp.pi, precision=jax.lax.Precision.HIGHEST)
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


def stack_images(images: dict[str, Any], image_masks: dict[str, Any]) -> tuple[tuple[str, ...], Any, Any]:
    """Camera dicts -> (slots in IMAGE_KEYS order, images [n, b, S, S, 3], masks bool [n, b]) with one array each.

    uint8 images (every slot uint8) stay uint8 (a quarter of the bytes to transfer; converted on the device by
    ``image.UINT8_TO_UNIT``); otherwise float32 in [−1, 1]. Slots absent from ``images`` are left out of the
    prefix entirely, which is exactly what a masked slot is: masked tokens are never attended to and do not
    advance the positions.
    """
    slots = tuple(k for k in IMAGE_KEYS if k in images)
    as_uint8 = all(getattr(images[k], "dtype", None) == np.uint8 for k in slots)
    host = all(isinstance(a, np.ndarray | np.bool_ | bool) for k in slots for a in (images[k], image_masks[k]))
    xp = np if host else jnp  # host arrays are stacked on the host: one transfer

    def one(img):
        if as_uint8:
            return xp.asarray(img, xp.uint8)
        return xp.asarray(UINT8_TO_UNIT)[img] if img.dtype == np.uint8 else xp.asarray(img, xp.float32)

    stacked = xp.stack([one(images[k]) for k in slots])
    masks = xp.stack([xp.asarray(image_masks[k], bool) for k in slots])
    return slots, stacked, masks


def embed_prefix(params: Params, cfg: Pi05Config, images: Array, image_masks: Array, tokens: Array,
                 token_mask: Array) -> tuple[Array, Array]:
    """Prefix embeddings [b, S, D] (cameras in slot order, then the prompt) and validity mask [b, S].

    images [n, b, s, s, 3] (uint8, or float32 in [−1, 1]); image_masks bool [n, b]; tokens int32 [b, l].
    """
    dtype = jnp.dtype(cfg.dtype)
    n, b = images.shape[:2]
    if images.dtype == jnp.uint8:
        images = jnp.asarray(UINT8_TO_UNIT)[images]
    flat = jnp.asarray(images, jnp.float32).reshape(n * b, *images.shape[2:])
    img_tokens = siglip.encode_images(params["PaliGemma"]["img"], cfg.siglip, flat, dtype)
    t = img_tokens.shape[1]
    img_tokens = img_tokens.reshape(n, b, t, -1).transpose(1, 0, 2, 3).reshape(b, n * t, -1)
    img_mask = jnp.broadcast_to(jnp.asarray(image_masks, bool).T[:, :, None], (b, n, t)).reshape(b, n * t)
    text = gemma.embed_tokens(params["PaliGemma"]["llm"], tokens, dtype)
    x = jnp.concatenate([img_tokens.astype(dtype), text], axis=1)
    return x, jnp.concatenate([img_mask, jnp.asarray(token_mask, bool)], axis=1)


def prefix_context(params: Params, cfg: Pi05Config, images, image_masks, tokens, token_mask) -> dict[str, Any]:
    """The per-chunk context ``velocity_from_cache`` needs: the prefix pass's KV cache and mask plus the
    action-expert weights. Pure and differentiable in ``params`` (training runs exactly this path)."""
    return {**_prefix_pass(params, cfg, images, image_masks, tokens, token_mask), "expert": expert_params(params)}


def _prefix_pass(params: Params, cfg: Pi05Config, images, image_masks, tokens, token_mask) -> dict[str, Array]:
    """KV cache of the prefix, padded (masked) to the full prompt budget so the denoising steps keep one shape.

    ``tokens`` may be a prompt-length bucket shorter than ``cfg.max_token_len``: padding is masked and does not
    shift positions, so the cache entries of valid tokens are the same as with the full budget.
    """
    x, mask = embed_prefix(params, cfg, images, image_masks, tokens, token_mask)
    attn = mask[:, None, :] & mask[:, :, None]  # bidirectional over valid prefix tokens
    positions = jnp.cumsum(mask, axis=1) - 1
    _, (k, v) = gemma.transformer(
        params["PaliGemma"]["llm"], [x, None], positions, attn, [None, None], (cfg.llm, cfg.expert), return_kv=True
    )
    pad = cfg.max_token_len - tokens.shape[1]
    if pad:
        k, v = (jnp.pad(a, ((0, 0), (0, 0), (0, pad), (0, 0), (0, 0))) for a in (k, v))
        mask = jnp.pad(mask, ((0, 0), (0, pad)))
    return {"k": k, "v": v, "prefix_mask": mask}


def _embed_suffix(ep: Params, cfg: Pi05Config, x_t: Array, t: Array) -> tuple[Array, Array]:
    """Action tokens [b, ah, D1] (activation dtype) and the adaptive-norm condition (float32): [b, D1] for a flow
    time per sample (t scalar or [b]), [b, ah, D1] for one per action token (t [b, ah] or [1, ah]: training-time
    RTC, the clean prefix at t = 0)."""
    b, ah = x_t.shape[:2]
    t = jnp.asarray(t, jnp.float32)
    t = jnp.broadcast_to(t, (b, ah)) if t.ndim == 2 else jnp.broadcast_to(t, (b,))
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
    _, stacked, masks = stack_images(images, image_masks)
    prefix, prefix_mask = embed_prefix(params, cfg, stacked, masks, tokens, token_mask)
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


MIN_PROMPT_BUCKET = 32  # smallest prompt-length bucket [tokens]
PYTORCH_WEIGHTS = "model.safetensors"  # openpi's PyTorch port writes this instead of params/


def default_prompt_buckets(max_token_len: int) -> tuple[int, ...]:
    """Powers of two from 32 below ``max_token_len``, then ``max_token_len``: 200 -> (32, 64, 128, 200)."""
    buckets, b = [], MIN_PROMPT_BUCKET
    while b < max_token_len:
        buckets.append(b)
        b *= 2
    return (*buckets, max_token_len)


@dataclass(eq=False)
class Pi05Model:
    """A loaded π0.5. Hashes by identity, so ``velocity`` can be a static argument of a jitted sampler.

    ``prepare`` runs the prefix on the shortest prompt-length bucket that holds the valid tokens (compiled once
    per bucket and set of camera slots; ``warmup_prefix`` compiles them all) and always returns a cache of the
    full prompt budget, so ``velocity`` (pure: jit it, or let the sampler do so) compiles once.
    The context holds the KV cache, the prefix mask and the action-expert weights (device arrays, no copy).
    """

    config: Pi05Config
    params: Params
    norm_stats: dict[str, NormStats] | None = None
    prompt_buckets: tuple[int, ...] | None = None  # None: default_prompt_buckets(max_token_len)
    _prepare_jit: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        cfg = self.config
        self._prepare_jit = jax.jit(lambda p, *a: _prefix_pass(p, cfg, *a))
        buckets = tuple(sorted(set(self.prompt_buckets or default_prompt_buckets(cfg.max_token_len))))
        if buckets[0] < 1 or buckets[-1] != cfg.max_token_len:
            raise ValueError(f"prompt_buckets must be positive and end at max_token_len {cfg.max_token_len}, "
                             f"got {buckets}")
        self.prompt_buckets = buckets

    @property
    def action_dim(self) -> int:
        return self.config.action_dim

    @property
    def action_horizon(self) -> int:
        return self.config.action_horizon

    def bucket(self, token_mask: Any) -> int:
        """The shortest prompt bucket covering every valid token of ``token_mask`` [b, l]."""
        valid = np.asarray(token_mask, bool).any(axis=0)
        used = int(np.nonzero(valid)[0][-1]) + 1 if valid.any() else 1
        return next(b for b in self.prompt_buckets if b >= used)

    def prepare(self, images: dict[str, Any], image_masks: dict[str, Any], tokens: Any, token_mask: Any) -> dict:
        """One prefix pass -> context {k, v: [L, b, S, K, H], prefix_mask: [b, S], expert: weights}.

        images: slot -> uint8 [b, 224, 224, 3] or float32 in [−1, 1] (slots left out = masked, see
        ``stack_images``); image_masks: slot -> bool [b]; tokens int32 [b, max_token_len]; token_mask bool [b, l].
        """
        self._check_inputs(images, image_masks, tokens, token_mask)
        _, stacked, masks = stack_images(images, image_masks)
        n = self.bucket(token_mask)
        ctx = self._prepare_jit(self.params, stacked, masks, jnp.asarray(np.asarray(tokens)[:, :n], jnp.int32),
                                jnp.asarray(np.asarray(token_mask)[:, :n], bool))
        ctx["expert"] = expert_params(self.params)
        return ctx

    def warmup_prefix(self, images: dict[str, Any], image_masks: dict[str, Any]) -> None:
        """Compile the prefix pass for every prompt bucket with these camera inputs (their shapes and dtypes)."""
        b = next(iter(images.values())).shape[0]
        for n in self.prompt_buckets:
            tokens, mask = np.zeros((b, self.config.max_token_len), np.int32), np.zeros((b, n), bool)
            mask[:, -1] = True  # a prompt exactly n tokens long
            jax.block_until_ready(self.prepare(images, image_masks, tokens[:, :n], mask))

    def velocity(self, context: dict[str, Any], x_t: Array, t: Array) -> Array:
        """v(x_t, t) [b, ah, ad] float32 (t = 1 noise; scalar, [b], or [b, ah] per action token); pure, jittable,
        differentiable in x_t."""
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
        unknown = set(images) - set(IMAGE_KEYS)
        if unknown or not images:
            raise ValueError(f"images must map some of {IMAGE_KEYS} to arrays, got {sorted(images)}")
        for k in images:
            if k not in image_masks:
                raise ValueError(f"image_masks lacks {k!r} (images has it)")
            img = images[k]
            if not hasattr(img, "shape") or not hasattr(img, "dtype"):
                raise TypeError(f"image {k!r} must be an array, got {type(img).__name__}")
            if img.dtype != np.uint8 and not jnp.issubdtype(img.dtype, jnp.floating):
                raise TypeError(f"image {k!r} must be uint8 or float32 in [-1, 1], got dtype {img.dtype}")
            if tuple(img.shape[1:]) != (size, size, 3):
                raise ValueError(f"image {k!r} must be [b, {size}, {size}, 3], got {tuple(img.shape)}")
        if np.ndim(tokens) != 2 or np.ndim(token_mask) != 2 or np.shape(tokens)[0] != np.shape(token_mask)[0]:
            raise ValueError(f"tokens and token_mask must both be [b, l], got {np.shape(tokens)}, {np.shape(token_mask)}")
        valid = np.asarray(token_mask, bool).any(axis=0)
        used = int(np.nonzero(valid)[0][-1]) + 1 if valid.any() else 0
        if used > self.config.max_token_len:
            raise ValueError(f"prompt of {used} tokens > max_token_len {self.config.max_token_len}")


def cast_params(params: Params, dtype: Dtype) -> Params:
    """Every leaf as a device array of ``dtype`` (openpi restores all weights as bf16 for inference)."""
    return jax.tree.map(lambda x: jnp.asarray(x, dtype=jnp.dtype(dtype)), params)


def load_pi05(checkpoint_dir: str | pathlib.Path, *, action_horizon: int = 50, max_token_len: int = 200,
              dtype: Dtype = "bfloat16", asset_id: str | None = None, lora: LoraSettings | None = None,
              prompt_buckets: tuple[int, ...] | None = None) -> Pi05Model:
    """Load an openpi π0.5 checkpoint: ``<checkpoint_dir>/params`` (orbax; released or training layout) and,
    when present, ``<checkpoint_dir>/assets/<asset_id>/norm_stats.json`` (attached as ``model.norm_stats``).

    The architecture is inferred from the parameter shapes. Raises CheckpointError / ArchitectureError /
    NormStatsError with the offending path. ``lora``: the scaling of LoRA factors (merged in float32 on load).
    """
    checkpoint_dir = pathlib.Path(checkpoint_dir)
    if not checkpoint_dir.is_dir():
        raise CheckpointError(f"{checkpoint_dir}: checkpoint directory not found")
    params_dir = checkpoint_dir / "params"
    if not params_dir.is_dir() and (checkpoint_dir / PYTORCH_WEIGHTS).is_file():
        raise CheckpointError(
            f"{checkpoint_dir}: this is openpi's PyTorch checkpoint ({PYTORCH_WEIGHTS}); the rig runs the JAX "
            "π0.5 and loads openpi's JAX checkpoints (params/ + assets/). Point checkpoint at the JAX checkpoint "
            "this one was converted from (examples/convert_jax_model_to_pytorch.py), or fine-tune with openpi's "
            "JAX trainer (scripts/train.py): openpi has no PyTorch -> JAX converter, and a guessed key mapping "
            "would load without proving parity"
        )
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
    return Pi05Model(cfg, cast_params(params, dtype), norm_stats, prompt_buckets)
