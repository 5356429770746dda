"""Gemma with two experts sharing one attention (PaliGemma's Gemma-2B + the action expert), plain JAX.

Numerics follow openpi's ``gemma.py``: RMSNorm statistics in float32 (``x / sqrt(mean(x²) + 1e-6) · (1 + scale)``),
adaptive RMSNorm for the conditioned expert (a Dense from the condition gives scale, shift and gate; the
residual is ``x + gate · y``), RoPE in float32 (max wavelength 10 000, half-split rotation), queries scaled by
head_dim^-½ after RoPE, grouped-query attention with float32 logits and softmax, tanh-GELU gated MLP.
Matmuls run in the activation dtype (bf16 by default).

Axes: B = batch, T = query tokens, S = key tokens, N = query heads, K = kv heads, G = N / K, H = head dim,
D = width, L = layers. Expert i's parameters carry the suffix ``_i`` (none for expert 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from rtc_controller.policy.pi05.config import GemmaConfig

Array = jax.Array
RMS_EPS = 1e-6
ROPE_MAX_WAVELENGTH = 10_000
BIG_NEG = -2.3819763e38  # masked logit, as in openpi / gemma
# The einsum each weight is applied with (openpi's Gemma; "C" is openpi's literal 3 or 2 of the stacked q/k/v).
# The forward pass below uses exactly these, and the LoRA merge derives every update from them (``lora.py``).
EINSUM_EQUATIONS: dict[str, str] = {
    "qkv_einsum": "BSD,CKDH->CBSKH",
    "q_einsum": "BTD,NDH->BTNH",
    "kv_einsum": "BSD,CKDH->CBSKH",
    "attn_vec_einsum": "BTNH,NHD->BTD",
    "gating_einsum": "BTD,CDF->CBTF",  # FeedForward: gate and up projections
    "linear": "BTF,FD->BTD",  # FeedForward: down projection
}


def name(base: str, i: int) -> str:
    """openpi's expert naming: ``attn`` for expert 0, ``attn_1`` for expert 1."""
    return base if i == 0 else f"{base}_{i}"


def expert_layers(layers: dict[str, Any], experts: Sequence[int]) -> dict[str, Any]:
    """The stacked-layer parameters used by the given experts only (so a scan never touches the others)."""

    def keep(key: str) -> bool:
        last = key.rsplit("_", 1)[-1]
        return (int(last) if "_" in key and last.isdigit() else 0) in experts

    out = {k: v for k, v in layers.items() if k != "attn" and keep(k)}
    out["attn"] = {k: v for k, v in layers["attn"].items() if keep(k)}
    return out


def rms_norm(x: Array, p: dict[str, Any], cond: Array | None) -> tuple[Array, Array | None]:
    """RMSNorm (cond None) or adaptive RMSNorm with a condition per sequence ``[B, C]`` or per token ``[B, T, C]``
    (training-time RTC: a clean prefix at flow time 0); returns (normed x in x.dtype, gate [B, 1|T, D] or None)."""
    dtype = x.dtype
    var = jnp.mean(jnp.square(x.astype(jnp.float32)), axis=-1, keepdims=True)
    normed = x * jnp.reciprocal(jnp.sqrt(var + RMS_EPS))  # float32
    if cond is None:
        return (normed * (1 + p["scale"])).astype(dtype), None
    dense = p["Dense_0"]
    modulation = cond.astype(dtype) @ dense["kernel"].astype(dtype) + dense["bias"].astype(dtype)
    if modulation.ndim == 2:
        modulation = modulation[:, None, :]
    scale, shift, gate = jnp.split(modulation, 3, axis=-1)
    return (normed * (1 + scale) + shift).astype(dtype), gate


def apply_rope(x: Array, positions: Array) -> Array:
    """RoPE on x [B, T, heads, H] at integer positions [B, T]; computed in float32, returned in x.dtype."""
    freq_exponents = (2.0 / x.shape[-1]) * jnp.arange(x.shape[-1] // 2, dtype=jnp.float32)
    timescale = ROPE_MAX_WAVELENGTH**freq_exponents
    radians = positions[..., None] / timescale[None, None, :]
    radians = radians[..., None, :]  # [B, T, 1, H/2]
    sin, cos = jnp.sin(radians), jnp.cos(radians)
    x1, x2 = jnp.split(x, 2, axis=-1)
    return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1).astype(x.dtype)


def _qkv(attn: dict[str, Any], x: Array, i: int, c: GemmaConfig) -> tuple[Array, Array, Array]:
    dtype = x.dtype
    if c.num_kv_heads == c.num_heads:
        q, k, v = jnp.einsum(EINSUM_EQUATIONS["qkv_einsum"], x, attn[name("qkv_einsum", i)]["w"].astype(dtype))
        return q, k, v
    q = jnp.einsum(EINSUM_EQUATIONS["q_einsum"], x, attn[name("q_einsum", i)]["w"].astype(dtype))
    k, v = jnp.einsum(EINSUM_EQUATIONS["kv_einsum"], x, attn[name("kv_einsum", i)]["w"].astype(dtype))
    return q, k, v


def attention(
    attn: dict[str, Any],
    xs: Sequence[Array | None],
    positions: Array,
    mask: Array,
    kv_cache: tuple[Array, Array] | None,
    configs: Sequence[GemmaConfig],
) -> tuple[list[Array | None], tuple[Array, Array]]:
    """One shared attention over the concatenated tokens of all present experts.

    mask: bool [B, T, S] (S = cached keys + T). Returns per-expert outputs and this call's (k, v) [B, T, K, H]
    (after RoPE, without the cache), which is what a prefix pass stores as the KV cache.
    """
    dtype = next(x.dtype for x in xs if x is not None)
    qkvs = [_qkv(attn, x, i, c) for i, (x, c) in enumerate(zip(xs, configs, strict=True)) if x is not None]
    q, k, v = (jnp.concatenate(parts, axis=1) for parts in zip(*qkvs, strict=True))
    c0 = configs[0]
    q = apply_rope(q, positions) * jnp.asarray(c0.head_dim**-0.5, dtype)
    k = apply_rope(k, positions)
    new_kv = (k, v)
    if kv_cache is not None:
        k = jnp.concatenate([kv_cache[0].astype(dtype), k], axis=1)
        v = jnp.concatenate([kv_cache[1].astype(dtype), v], axis=1)
    b, t = q.shape[:2]
    if mask.shape != (b, t, k.shape[1]):
        raise ValueError(f"attention mask shape {mask.shape}, expected {(b, t, k.shape[1])}")
    q = q.reshape(b, t, c0.num_kv_heads, c0.num_heads // c0.num_kv_heads, c0.head_dim)
    logits = jnp.einsum("BTKGH,BSKH->BKGTS", q, k, preferred_element_type=jnp.float32)
    logits = jnp.where(mask[:, None, None, :, :], logits, BIG_NEG)
    probs = jax.nn.softmax(logits, axis=-1).astype(dtype)
    encoded = jnp.einsum("BKGTS,BSKH->BTKGH", probs, v).reshape(b, t, c0.num_heads, c0.head_dim)
    out: list[Array | None] = []
    start = 0
    for i, x in enumerate(xs):
        if x is None:
            out.append(None)
            continue
        end = start + x.shape[1]
        w = attn[name("attn_vec_einsum", i)]["w"].astype(dtype)
        out.append(jnp.einsum(EINSUM_EQUATIONS["attn_vec_einsum"], encoded[:, start:end], w))
        start = end
    return out, new_kv


def feed_forward(p: dict[str, Any], x: Array) -> Array:
    """Gated MLP: (gelu_tanh(x W_gate) ⊙ x W_up) W_down."""
    gate, up = jnp.einsum(EINSUM_EQUATIONS["gating_einsum"], x, p["gating_einsum"].astype(x.dtype))
    hidden = jax.nn.gelu(gate, approximate=True) * up
    return jnp.einsum(EINSUM_EQUATIONS["linear"], hidden, p["linear"].astype(x.dtype))


def _gated_residual(x: Array | None, y: Array | None, gate: Array | None) -> Array | None:
    if x is None:
        return None
    return x + y if gate is None else x + y * gate


def block(
    layer: dict[str, Any],
    xs: Sequence[Array | None],
    positions: Array,
    mask: Array,
    adarms_cond: Sequence[Array | None],
    kv_cache: tuple[Array, Array] | None,
    configs: Sequence[GemmaConfig],
) -> tuple[list[Array | None], tuple[Array, Array]]:
    """One transformer layer (pre-norm attention and MLP, both with gated residuals for adaptive experts)."""
    pre, gates = [], []
    for i, x in enumerate(xs):
        y, g = rms_norm(x, layer[name("pre_attention_norm", i)], adarms_cond[i]) if x is not None else (None, None)
        pre.append(y)
        gates.append(g)
    post, kv = attention(layer["attn"], pre, positions, mask, kv_cache, configs)
    xs = [_gated_residual(x, y, g) for x, y, g in zip(xs, post, gates, strict=True)]
    out, gates = [], []
    for i, x in enumerate(xs):
        if x is None:
            out.append(None)
            gates.append(None)
            continue
        y, g = rms_norm(x, layer[name("pre_ffw_norm", i)], adarms_cond[i])
        out.append(feed_forward(layer[name("mlp", i)], y))
        gates.append(g)
    return [_gated_residual(x, y, g) for x, y, g in zip(xs, out, gates, strict=True)], kv


def transformer(
    llm: dict[str, Any],
    xs: Sequence[Array | None],
    positions: Array,
    mask: Array,
    adarms_cond: Sequence[Array | None],
    configs: Sequence[GemmaConfig],
    *,
    kv_cache: tuple[Array, Array] | None = None,
    return_kv: bool = False,
) -> tuple[list[Array | None], tuple[Array, Array] | None]:
    """All layers (lax.scan over the stacked weights) and the final norms.

    xs: per-expert token embeddings [B, T_i, D_i] or None (expert not run); positions [B, ΣT_i];
    mask bool [B, ΣT_i, S]; kv_cache: ([L, B, S_c, K, H], [L, B, S_c, K, H]) from a prefix pass.
    Returns per-expert outputs and, with ``return_kv``, this pass's keys/values [L, B, ΣT_i, K, H].
    """
    dtype = next(x.dtype for x in xs if x is not None)
    active = [i for i, x in enumerate(xs) if x is not None]
    layers = expert_layers(llm["layers"], active)

    def body(carry, inputs):
        layer, cache = inputs
        carry, kv = block(layer, carry, positions, mask, adarms_cond, cache, configs)
        return carry, (kv if return_kv else None)

    xs, kv = jax.lax.scan(body, list(xs), (layers, kv_cache))
    outs = []
    for i, x in enumerate(xs):
        if x is None:
            outs.append(None)
            continue
        y, _ = rms_norm(x, llm[name("final_norm", i)], adarms_cond[i])
        outs.append(y.astype(dtype))
    return outs, kv


def embed_tokens(llm: dict[str, Any], tokens: Array, dtype: Any) -> Array:
    """Token ids [B, T] -> embeddings [B, T, D] (table row · sqrt(D), in the table's dtype, then ``dtype``)."""
    table = llm["embedder"]["input_embedding"]
    x = table[(tokens,)]
    x = x * jnp.sqrt(jnp.float32(table.shape[-1])).astype(x.dtype)
    return x.astype(dtype)
