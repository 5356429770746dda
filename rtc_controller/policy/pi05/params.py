"""The openpi π0.5 parameter tree: expected shapes, validation, random initialisation.

The tree is openpi's "pure dict" (the released layout): ``PaliGemma/llm`` (Gemma experts, layers stacked
along a leading L axis by ``nn.scan``; expert 1's keys carry the suffix ``_1``), ``PaliGemma/img``
(SigLIP, blocks stacked likewise), ``action_in_proj``, ``time_mlp_in``, ``time_mlp_out``,
``action_out_proj`` (``kernel`` [in, out], ``bias`` [out]).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rtc_controller.policy.pi05.config import ArchitectureError, GemmaConfig, Pi05Config

Params = dict[str, Any]


def _expert_layer_shapes(c: GemmaConfig, suffix: str, *, ada: bool) -> dict[str, Any]:
    L, W = c.depth, c.width
    if c.num_heads == c.num_kv_heads:
        attn = {f"qkv_einsum{suffix}": {"w": (L, 3, c.num_heads, W, c.head_dim)}}
    else:
        attn = {
            f"q_einsum{suffix}": {"w": (L, c.num_heads, W, c.head_dim)},
            f"kv_einsum{suffix}": {"w": (L, 2, c.num_kv_heads, W, c.head_dim)},
        }
    attn[f"attn_vec_einsum{suffix}"] = {"w": (L, c.num_heads, c.head_dim, W)}
    norm = {"Dense_0": {"kernel": (L, W, 3 * W), "bias": (L, 3 * W)}} if ada else {"scale": (L, W)}
    return {
        "attn": attn,
        f"pre_attention_norm{suffix}": norm,
        f"pre_ffw_norm{suffix}": norm,
        f"mlp{suffix}": {"gating_einsum": (L, 2, W, c.mlp_dim), "linear": (L, c.mlp_dim, W)},
    }


def _linear(n_in: int, n_out: int) -> dict[str, tuple[int, ...]]:
    return {"kernel": (n_in, n_out), "bias": (n_out,)}


def param_shapes(cfg: Pi05Config) -> Params:
    """Nested dict of the shapes every π0.5 parameter must have (same keys as the checkpoint)."""
    llm0 = _expert_layer_shapes(cfg.llm, "", ada=False)
    llm1 = _expert_layer_shapes(cfg.expert, "_1", ada=True)
    layers = {**llm0, **{k: v for k, v in llm1.items() if k != "attn"}, "attn": {**llm0["attn"], **llm1["attn"]}}
    v, W1 = cfg.siglip, cfg.expert.width
    hd = v.width // v.num_heads
    Lv = v.depth
    ln = {"scale": (Lv, v.width), "bias": (Lv, v.width)}
    qkv = {"kernel": (Lv, v.width, v.num_heads, hd), "bias": (Lv, v.num_heads, hd)}
    return {
        "PaliGemma": {
            "llm": {
                "embedder": {"input_embedding": (cfg.vocab_size, cfg.llm.width)},
                "layers": layers,
                "final_norm": {"scale": (cfg.llm.width,)},
                "final_norm_1": {"Dense_0": _linear(W1, 3 * W1)},
            },
            "img": {
                "embedding": {"kernel": (v.patch_size, v.patch_size, 3, v.width), "bias": (v.width,)},
                "pos_embedding": (1, v.num_patches, v.width),
                "Transformer": {
                    "encoderblock": {
                        "LayerNorm_0": ln,
                        "LayerNorm_1": ln,
                        "MultiHeadDotProductAttention_0": {
                            "query": qkv,
                            "key": qkv,
                            "value": qkv,
                            "out": {"kernel": (Lv, v.num_heads, hd, v.width), "bias": (Lv, v.width)},
                        },
                        "MlpBlock_0": {
                            "Dense_0": {"kernel": (Lv, v.width, v.mlp_dim), "bias": (Lv, v.mlp_dim)},
                            "Dense_1": {"kernel": (Lv, v.mlp_dim, v.width), "bias": (Lv, v.width)},
                        },
                    },
                    "encoder_norm": {"scale": (v.width,), "bias": (v.width,)},
                },
                "head": _linear(v.width, cfg.llm.width),
            },
        },
        "action_in_proj": _linear(cfg.action_dim, W1),
        "time_mlp_in": _linear(W1, W1),
        "time_mlp_out": _linear(W1, W1),
        "action_out_proj": _linear(W1, cfg.action_dim),
    }


def _is_shape(x: Any) -> bool:
    return isinstance(x, tuple) and all(isinstance(i, int) for i in x)


def flatten(tree: Params, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": x}} -> {"a/b": x}."""
    out: dict[str, Any] = {}
    for k, v in tree.items():
        path = f"{prefix}/{k}" if prefix else str(k)
        if isinstance(v, dict):
            out.update(flatten(v, path))
        else:
            out[path] = v
    return out


def unflatten(flat: dict[str, Any]) -> Params:
    """{"a/b": x} -> {"a": {"b": x}}."""
    out: Params = {}
    for path, v in flat.items():
        node = out
        *parents, leaf = path.split("/")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = v
    return out


def select_expected(params: Params, cfg: Pi05Config, *, source: str = "params") -> Params:
    """The expected subtree of ``params``, checked key by key and shape by shape (extra keys are dropped).

    Raises ArchitectureError naming ``source`` and the first missing or mis-shaped parameter.
    """
    got = flatten(params)
    out = {}
    for path, shape in flatten(param_shapes(cfg)).items():
        assert _is_shape(shape)
        if path not in got:
            raise ArchitectureError(f"{source}: missing parameter {path!r}")
        if tuple(got[path].shape) != shape:
            raise ArchitectureError(f"{source}: parameter {path!r} has shape {tuple(got[path].shape)}, expected {shape}")
        out[path] = got[path]
    return unflatten(out)


def random_params(cfg: Pi05Config, *, seed: int = 0, dtype: str | None = None, on_device: bool = True) -> Params:
    """Random weights with openpi's tree and shapes, scaled (1/sqrt(fan-in)) so activations stay O(1).

    Unlike openpi's init, the adaptive-norm projections are not zero, so the time conditioning matters in tests.
    ``on_device`` draws with jax.random (fast for full size on an accelerator); otherwise NumPy.
    """
    dtype = dtype or cfg.dtype
    shapes = flatten(param_shapes(cfg))
    rng = np.random.default_rng(seed)
    key = jax.random.key(seed)
    out = {}
    for i, (path, shape) in enumerate(sorted(shapes.items())):
        leaf = path.rsplit("/", 1)[-1]
        if leaf == "scale" and ("LayerNorm" in path or "encoder_norm" in path):
            std, mean = 0.02, 1.0  # flax LayerNorm multiplies by scale (Gemma's RMSNorm by 1 + scale)
        elif leaf in ("scale", "bias"):
            std, mean = 0.02, 0.0
        elif path.endswith("pos_embedding"):
            std, mean = 0.02, 0.0
        elif leaf == "input_embedding":
            std, mean = 1.0 / np.sqrt(shape[-1]), 0.0  # the embedder multiplies by sqrt(width)
        else:
            fan_in = _fan_in(path, shape)
            std, mean = 1.0 / np.sqrt(fan_in), 0.0
            if "Dense_0" in path and "norm" in path:
                std *= 0.1  # adaptive-norm modulation: a gentle scale/shift/gate around the plain norm
        if on_device:
            arr = mean + std * jax.random.normal(jax.random.fold_in(key, i), shape, jnp.float32)
            out[path] = arr.astype(dtype)
        else:
            out[path] = (mean + std * rng.standard_normal(shape, dtype=np.float32)).astype(jnp.dtype(dtype))
    return unflatten(out)


def _fan_in(path: str, shape: tuple[int, ...]) -> int:
    """Input features of a weight, given openpi's axis conventions."""
    parts = path.split("/")
    leaf, parent = parts[-1], (parts[-2] if len(parts) > 1 else "")
    s = shape[1:] if ("layers" in parts or "encoderblock" in parts) else shape
    if parent.startswith(("q_einsum", "kv_einsum", "qkv_einsum")):
        return s[-2]  # [.., W, Hd]
    if parent.startswith("attn_vec_einsum") or parent == "out":
        return s[0] * s[1]  # [N, Hd, W]
    if leaf == "gating_einsum":
        return s[-2]  # [2, W, M]
    if parent == "embedding":
        return s[0] * s[1] * s[2]  # conv [P, P, 3, W]
    return s[0]  # [in, out]


def check_float_dtype(params: Params, *, source: str) -> None:
    """Raise ArchitectureError when a leaf is not a floating-point array."""
    for path, v in flatten(params).items():
        if not jnp.issubdtype(v.dtype, jnp.floating):
            raise ArchitectureError(f"{source}: parameter {path!r} has non-float dtype {v.dtype}")
