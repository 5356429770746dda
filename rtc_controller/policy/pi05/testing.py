"""Small π0.5 variants with random weights, written as openpi checkpoints: for tests, demos and CPU benchmarks.

``tiny_config`` keeps the real structure (two experts sharing a grouped-query attention, adaptive norms,
SigLIP with a learned position embedding) at sizes that compile and run in seconds on a CPU; the widths are
all different so shape-based architecture inference is actually exercised.
"""

from __future__ import annotations

import io
import pathlib
from dataclasses import dataclass

import numpy as np

from rtc_controller.policy.pi05.checkpoint import Layout, save_params
from rtc_controller.policy.pi05.config import Dtype, GemmaConfig, Pi05Config, SiglipConfig
from rtc_controller.policy.pi05.norm_stats import NormStats, save_norm_stats
from rtc_controller.policy.pi05.params import Params, random_params
from rtc_controller.policy.pi05.tokenizer import format_prompt

TOKENIZER_FILE = "paligemma_tokenizer.model"
TOKENIZER_VOCAB_SIZE = 200  # ≤ tiny_config's vocab_size (320)
TOKENIZER_TRAINING_LINES = 300
TASK_WORDS = ("pick", "up", "the", "red", "cube", "place", "it", "in", "bowl", "fold", "towel", "open", "drawer")


def tiny_config(*, action_dim: int = 12, action_horizon: int = 10, max_token_len: int = 24, vocab_size: int = 320,
                num_kv_heads: int = 1, dtype: Dtype = "float32") -> Pi05Config:
    """A few layers, small widths, 224-px images cut into 16 patches of 56 px."""
    return Pi05Config(
        llm=GemmaConfig(width=48, depth=2, mlp_dim=72, num_heads=4, num_kv_heads=num_kv_heads, head_dim=8),
        expert=GemmaConfig(width=32, depth=2, mlp_dim=40, num_heads=4, num_kv_heads=num_kv_heads, head_dim=8),
        siglip=SiglipConfig(patch_size=56, num_patches=16, width=40, depth=2, mlp_dim=56, num_heads=4),
        action_dim=action_dim,
        vocab_size=vocab_size,
        action_horizon=action_horizon,
        max_token_len=max_token_len,
        dtype=dtype,
    )


def reduced_config(*, action_horizon: int = 50, max_token_len: int = 200, dtype: Dtype = "bfloat16") -> Pi05Config:
    """The full π0.5 structure at roughly 1/8 width and 1/4 depth: a CPU-sized benchmark stand-in."""
    return Pi05Config(
        llm=GemmaConfig(width=256, depth=4, mlp_dim=2048, num_heads=8, num_kv_heads=1, head_dim=32),
        expert=GemmaConfig(width=128, depth=4, mlp_dim=512, num_heads=8, num_kv_heads=1, head_dim=32),
        siglip=SiglipConfig(patch_size=14, num_patches=256, width=144, depth=6, mlp_dim=576, num_heads=4),
        action_dim=32,
        vocab_size=4096,
        action_horizon=action_horizon,
        max_token_len=max_token_len,
        dtype=dtype,
    )


def example_norm_stats(*, state_dim: int, action_dim: int, seed: int = 0) -> dict[str, NormStats]:
    """Plausible statistics (q01 < mean < q99) for a state and an action vector."""
    rng = np.random.default_rng(seed)

    def one(dim: int) -> NormStats:
        mean = rng.uniform(-0.5, 0.5, dim)
        half = rng.uniform(0.2, 1.0, dim)
        return NormStats(mean=mean, std=half / 2, q01=mean - half, q99=mean + half)

    return {"state": one(state_dim), "actions": one(action_dim)}


def write_checkpoint(checkpoint_dir: str | pathlib.Path, cfg: Pi05Config, *, layout: Layout = "released",
                     seed: int = 0, params: Params | None = None, norm_stats: dict[str, NormStats] | None = None,
                     asset_id: str = "rig") -> Params:
    """Write ``params/`` (float32, openpi layout) and ``assets/<asset_id>/norm_stats.json``; returns the params."""
    checkpoint_dir = pathlib.Path(checkpoint_dir)
    if params is None:
        params = random_params(cfg, seed=seed, dtype="float32", on_device=False)
    save_params(checkpoint_dir / "params", params, layout=layout)
    if norm_stats is not None:
        save_norm_stats(checkpoint_dir / "assets" / asset_id / "norm_stats.json", norm_stats)
    return params


def write_tokenizer(path: str | pathlib.Path, *, state_dim: int, vocab_size: int = TOKENIZER_VOCAB_SIZE,
                    seed: int = 0) -> pathlib.Path:
    """Train a small SentencePiece model on π0.5-style prompts and write it to ``path`` (stands in for PaliGemma's
    ``paligemma_tokenizer.model``; needs the ``sentencepiece`` package). Returns ``path``."""
    import sentencepiece

    rng = np.random.default_rng(seed)
    lines = [format_prompt(" ".join(rng.choice(TASK_WORDS, 4)), rng.uniform(-1, 1, state_dim))
             for _ in range(TOKENIZER_TRAINING_LINES)]
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=model, vocab_size=vocab_size, hard_vocab_limit=False,
        model_type="bpe", character_coverage=1.0, minloglevel=2,
    )
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.getvalue())
    return path


@dataclass(frozen=True)
class TinyPi05Files:
    """What ``write_tiny_pi05`` wrote (pass the two paths to ``make_policy("pi05", …)``)."""

    checkpoint_dir: pathlib.Path
    tokenizer_path: pathlib.Path
    config: Pi05Config


def write_tiny_pi05(directory: str | pathlib.Path, *, state_dim: int, action_dim: int, model_action_dim: int = 16,
                    max_token_len: int = 48, seed: int = 0) -> TinyPi05Files:
    """A tiny π0.5 checkpoint (random weights, norm stats for ``state_dim`` / ``action_dim`` physical dims, model
    action dim ``model_action_dim`` ≥ ``action_dim``) plus a tokenizer, under ``directory``/checkpoint and
    ``directory``/tokenizer."""
    if model_action_dim < action_dim:
        raise ValueError(f"model_action_dim {model_action_dim} < action_dim {action_dim}: the model pads, never cuts")
    directory = pathlib.Path(directory)
    cfg = tiny_config(action_dim=model_action_dim, max_token_len=max_token_len)
    write_checkpoint(directory / "checkpoint", cfg, seed=seed,
                     norm_stats=example_norm_stats(state_dim=state_dim, action_dim=action_dim, seed=seed))
    tokenizer = write_tokenizer(directory / "tokenizer" / TOKENIZER_FILE, state_dim=state_dim, seed=seed)
    return TinyPi05Files(directory / "checkpoint", tokenizer, cfg)
