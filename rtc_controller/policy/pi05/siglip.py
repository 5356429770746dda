"""SigLIP ViT image encoder (big_vision / openpi ``siglip.py``, pool "none", learned position embedding), plain JAX.

Patch embedding and position embedding run in float32 (as openpi does), the encoder in the activation
dtype; LayerNorm statistics in float32 (eps 1e-6); multi-head attention with float32 softmax; tanh-GELU MLP;
a final LayerNorm and the ``head`` Dense that maps every patch token to the LLM width.

Axes: n = images, P = patch size, T = patch tokens, W = ViT width, N = heads, h = head dim, D = LLM width.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from rtc_controller.policy.pi05.config import SiglipConfig

Array = jax.Array
LAYER_NORM_EPS = 1e-6


def layer_norm(x: Array, p: dict[str, Any]) -> Array:
    """LayerNorm with float32 statistics; output in x.dtype."""
    xf = x.astype(jnp.float32)
    mean = jnp.mean(xf, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(xf - mean), axis=-1, keepdims=True)
    y = (xf - mean) * jax.lax.rsqrt(var + LAYER_NORM_EPS) * p["scale"] + p["bias"]
    return y.astype(x.dtype)


def _dense(x: Array, p: dict[str, Any]) -> Array:
    return x @ p["kernel"].astype(x.dtype) + p["bias"].astype(x.dtype)


def _self_attention(x: Array, p: dict[str, Any]) -> Array:
    dtype = x.dtype
    q, k, v = (
        jnp.einsum("ntw,wNh->ntNh", x, p[n]["kernel"].astype(dtype)) + p[n]["bias"].astype(dtype)
        for n in ("query", "key", "value")
    )
    q = q / jnp.sqrt(jnp.float32(q.shape[-1])).astype(dtype)
    logits = jnp.einsum("nqNh,nkNh->nNqk", q, k, preferred_element_type=jnp.float32)
    probs = jax.nn.softmax(logits, axis=-1).astype(dtype)
    out = jnp.einsum("nNqk,nkNh->nqNh", probs, v)
    return jnp.einsum("nqNh,Nhw->nqw", out, p["out"]["kernel"].astype(dtype)) + p["out"]["bias"].astype(dtype)


def _encoder_block(x: Array, p: dict[str, Any]) -> Array:
    x = x + _self_attention(layer_norm(x, p["LayerNorm_0"]), p["MultiHeadDotProductAttention_0"])
    y = layer_norm(x, p["LayerNorm_1"])
    mlp = p["MlpBlock_0"]
    y = _dense(jax.nn.gelu(_dense(y, mlp["Dense_0"]), approximate=True), mlp["Dense_1"])
    return x + y


def encode_images(img: dict[str, Any], cfg: SiglipConfig, images: Array, dtype: Any) -> Array:
    """images float32 [n, S, S, 3] in [-1, 1] (S = cfg.image_size) -> tokens [n, T, D] in ``dtype``."""
    if images.shape[1:] != (cfg.image_size, cfg.image_size, 3):
        raise ValueError(f"SigLIP expects images [n, {cfg.image_size}, {cfg.image_size}, 3], got {images.shape}")
    x = jnp.asarray(images, jnp.float32)
    emb = img["embedding"]
    x = jax.lax.conv_general_dilated(
        x,
        emb["kernel"].astype(jnp.float32),
        window_strides=(cfg.patch_size, cfg.patch_size),
        padding="VALID",
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
    ) + emb["bias"].astype(jnp.float32)
    n, h, w, c = x.shape
    x = x.reshape(n, h * w, c) + img["pos_embedding"].astype(jnp.float32)
    x = x.astype(dtype)

    def body(carry, layer):
        return _encoder_block(carry, layer), None

    x, _ = jax.lax.scan(body, x, img["Transformer"]["encoderblock"])
    x = layer_norm(x, img["Transformer"]["encoder_norm"])
    return _dense(x, img["head"])
