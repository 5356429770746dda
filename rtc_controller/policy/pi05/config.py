"""π0.5 architecture configuration, inferred from an openpi parameter tree.

Every size here is read off the parameter shapes (``infer_config``), so any openpi π0.5 checkpoint, and
any smaller test variant with the same structure, loads without code changes.

Axes used in shape comments: L = layers, N = query heads, K = key/value heads, Hd = head dim,
W = width (d_model), M = MLP hidden dim, V = vocabulary, P = patch size, T = image tokens per camera,
A = model action dim.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, get_args

Dtype = Literal["bfloat16", "float32"]
DTYPES: tuple[str, ...] = get_args(Dtype)

# The three camera slots of openpi's π0/π0.5 models, in the order their tokens enter the prefix.
IMAGE_KEYS: tuple[str, ...] = ("base_0_rgb", "left_wrist_0_rgb", "right_wrist_0_rgb")
PALIGEMMA_VOCAB_SIZE = 257_152


@dataclass(frozen=True)
class GemmaConfig:
    """One expert of the shared-attention transformer (PaliGemma's Gemma-2B or the Gemma-300M action expert)."""

    width: int
    depth: int
    mlp_dim: int
    num_heads: int
    num_kv_heads: int
    head_dim: int

    def __post_init__(self) -> None:
        for name in ("width", "depth", "mlp_dim", "num_heads", "num_kv_heads", "head_dim"):
            if getattr(self, name) <= 0:
                raise ValueError(f"GemmaConfig.{name} must be positive, got {getattr(self, name)}")
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"num_heads ({self.num_heads}) must be a multiple of num_kv_heads ({self.num_kv_heads})")
        if self.head_dim % 2:
            raise ValueError(f"head_dim ({self.head_dim}) must be even for RoPE")


@dataclass(frozen=True)
class SiglipConfig:
    """The SigLIP ViT image encoder (So400m/14 at full size); its head projects to the LLM width."""

    patch_size: int
    num_patches: int  # T, tokens per image
    width: int
    depth: int
    mlp_dim: int
    num_heads: int

    def __post_init__(self) -> None:
        side = math.isqrt(self.num_patches)
        if side * side != self.num_patches:
            raise ValueError(f"SigLIP num_patches ({self.num_patches}) must be a square")
        if self.width % self.num_heads:
            raise ValueError(f"SigLIP width ({self.width}) must be divisible by num_heads ({self.num_heads})")

    @property
    def image_size(self) -> int:
        """Input resolution in pixels (224 for openpi's models)."""
        return math.isqrt(self.num_patches) * self.patch_size


@dataclass(frozen=True)
class Pi05Config:
    """Sizes of a π0.5 model plus the run-time choices (horizon, token budget, dtype)."""

    llm: GemmaConfig  # expert 0: PaliGemma's language model, runs the prefix
    expert: GemmaConfig  # expert 1: the action expert, runs the actions
    siglip: SiglipConfig
    action_dim: int  # A, the model's (padded) action dim, 32 for openpi's releases
    vocab_size: int = PALIGEMMA_VOCAB_SIZE
    action_horizon: int = 50
    max_token_len: int = 200
    dtype: Dtype = "bfloat16"

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        if self.action_horizon <= 0 or self.max_token_len <= 0 or self.action_dim <= 0:
            raise ValueError("action_horizon, max_token_len and action_dim must be positive")
        a, b = self.llm, self.expert
        if (a.num_heads, a.num_kv_heads, a.head_dim) != (b.num_heads, b.num_kv_heads, b.head_dim):
            raise ValueError(
                "both experts share one attention, so heads/kv heads/head dim must match: "
                f"llm {(a.num_heads, a.num_kv_heads, a.head_dim)} vs expert {(b.num_heads, b.num_kv_heads, b.head_dim)}"
            )
        if a.depth != b.depth:
            raise ValueError(f"both experts must have the same depth: llm {a.depth} vs expert {b.depth}")

    @property
    def prefix_len(self) -> int:
        """Tokens in the prefix: three cameras of T image tokens plus the prompt."""
        return len(IMAGE_KEYS) * self.siglip.num_patches + self.max_token_len


def full_size_config(*, action_dim: int = 32, action_horizon: int = 50, max_token_len: int = 200,
                     dtype: Dtype = "bfloat16") -> Pi05Config:
    """openpi's π0.5: PaliGemma (So400m/14 SigLIP + Gemma-2B) with the Gemma-300M action expert."""
    return Pi05Config(
        llm=GemmaConfig(width=2048, depth=18, mlp_dim=16_384, num_heads=8, num_kv_heads=1, head_dim=256),
        expert=GemmaConfig(width=1024, depth=18, mlp_dim=4096, num_heads=8, num_kv_heads=1, head_dim=256),
        siglip=SiglipConfig(patch_size=14, num_patches=256, width=1152, depth=27, mlp_dim=4304, num_heads=16),
        action_dim=action_dim,
        action_horizon=action_horizon,
        max_token_len=max_token_len,
        dtype=dtype,
    )


class ArchitectureError(ValueError):
    """The parameter tree does not have the structure of an openpi π0.5 model."""


def _get(tree: dict[str, Any], path: str, source: str) -> Any:
    node: Any = tree
    for part in path.split("/"):
        if not isinstance(node, dict) or part not in node:
            raise ArchitectureError(f"{source}: missing parameter {path!r} (not an openpi π0.5 parameter tree)")
        node = node[part]
    return node


def _shape(tree: dict[str, Any], path: str, source: str, ndim: int) -> tuple[int, ...]:
    shape = tuple(int(s) for s in _get(tree, path, source).shape)
    if len(shape) != ndim:
        raise ArchitectureError(f"{source}: parameter {path!r} has shape {shape}, expected {ndim} dims")
    return shape


def _gemma_config(layers: dict[str, Any], suffix: str, source: str) -> GemmaConfig:
    attn = f"attn/{{}}{suffix}/w"
    if isinstance(layers.get("attn"), dict) and f"qkv_einsum{suffix}" in layers["attn"]:
        depth, _, num_heads, width, head_dim = _shape(layers, attn.format("qkv_einsum"), source, 5)
        num_kv_heads = num_heads
    else:
        depth, num_heads, width, head_dim = _shape(layers, attn.format("q_einsum"), source, 4)
        _, _, num_kv_heads, _, _ = _shape(layers, attn.format("kv_einsum"), source, 5)
    _, _, _, mlp_dim = _shape(layers, f"mlp{suffix}/gating_einsum", source, 4)
    return GemmaConfig(width=width, depth=depth, mlp_dim=mlp_dim, num_heads=num_heads,
                       num_kv_heads=num_kv_heads, head_dim=head_dim)


def infer_config(params: dict[str, Any], *, action_horizon: int = 50, max_token_len: int = 200,
                 dtype: Dtype = "bfloat16", source: str = "params") -> Pi05Config:
    """Read every size off the parameter shapes of an openpi π0.5 tree (``source`` names it in errors)."""
    if "state_proj" in params or "action_time_mlp_in" in params:
        raise ArchitectureError(f"{source}: this is a π0 checkpoint (state_proj/action_time_mlp_*), not π0.5")
    if "time_mlp_in" not in params:
        raise ArchitectureError(f"{source}: missing parameter 'time_mlp_in' (not an openpi π0.5 parameter tree)")
    layers = _get(params, "PaliGemma/llm/layers", source)
    vocab_size, _ = _shape(params, "PaliGemma/llm/embedder/input_embedding", source, 2)
    patch, _, _, vit_width = _shape(params, "PaliGemma/img/embedding/kernel", source, 4)
    _, num_patches, _ = _shape(params, "PaliGemma/img/pos_embedding", source, 3)
    block = "PaliGemma/img/Transformer/encoderblock"
    vit_depth, _, vit_heads, _ = _shape(params, f"{block}/MultiHeadDotProductAttention_0/query/kernel", source, 4)
    _, _, vit_mlp = _shape(params, f"{block}/MlpBlock_0/Dense_0/kernel", source, 3)
    action_dim, _ = _shape(params, "action_in_proj/kernel", source, 2)
    return Pi05Config(
        llm=_gemma_config(layers, "", source),
        expert=_gemma_config(layers, "_1", source),
        siglip=SiglipConfig(patch_size=patch, num_patches=num_patches, width=vit_width, depth=vit_depth,
                            mlp_dim=vit_mlp, num_heads=vit_heads),
        action_dim=action_dim,
        vocab_size=vocab_size,
        action_horizon=action_horizon,
        max_token_len=max_token_len,
        dtype=dtype,
    )
