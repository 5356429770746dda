"""The optimiser of openpi's training (``training/optimizer.py``): global-norm clipping, AdamW, warmup + cosine
decay, and an exponential moving average of the weights (``TrainConfig.ema_decay``; the EMA is what the
checkpoint's ``params/`` holds, as in openpi).

openpi's defaults are for fine-tuning a 3B model (peak 2.5e-5); a tiny π0.5 trained from scratch needs a larger
peak learning rate, so the values live in the training config.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import jax
import optax


@dataclass(frozen=True)
class OptimizerConfig:
    """AdamW with clipping, warmup (linear from peak/(warmup+1)) and cosine decay to ``decay_lr`` at the last step."""

    peak_lr: float = 1e-3
    warmup_steps: int = 100
    decay_lr: float = 1e-4
    b1: float = 0.9
    b2: float = 0.95
    eps: float = 1e-8
    weight_decay: float = 1e-10  # openpi: "changing this to 0 can cause out-of-memory errors"
    clip_gradient_norm: float = 1.0
    ema_decay: float | None = 0.99  # None: no EMA (params/ then holds the raw weights)

    def __post_init__(self) -> None:
        for name in ("peak_lr", "b1", "b2", "eps", "clip_gradient_norm"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"optimizer.{name} must be finite and > 0, got {v}")
        if not (math.isfinite(self.decay_lr) and 0 <= self.decay_lr <= self.peak_lr):
            raise ValueError(f"optimizer.decay_lr must be in [0, peak_lr = {self.peak_lr}], got {self.decay_lr}")
        if self.warmup_steps < 0:
            raise ValueError(f"optimizer.warmup_steps must be >= 0, got {self.warmup_steps}")
        if not (self.b1 < 1 and self.b2 < 1):
            raise ValueError(f"optimizer.b1 and b2 must be < 1, got {self.b1}, {self.b2}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"optimizer.weight_decay must be finite and >= 0, got {self.weight_decay}")
        if self.ema_decay is not None and not 0 <= self.ema_decay < 1:
            raise ValueError(f"optimizer.ema_decay must be in [0, 1) or null, got {self.ema_decay}")


def learning_rate(cfg: OptimizerConfig, num_steps: int) -> optax.Schedule:
    """openpi's ``CosineDecaySchedule``: warmup to ``peak_lr``, cosine to ``decay_lr`` at ``num_steps``."""
    return optax.warmup_cosine_decay_schedule(
        init_value=cfg.peak_lr / (cfg.warmup_steps + 1), peak_value=cfg.peak_lr,
        warmup_steps=cfg.warmup_steps, decay_steps=max(num_steps, cfg.warmup_steps + 1), end_value=cfg.decay_lr,
    )


def make_optimizer(cfg: OptimizerConfig, num_steps: int) -> optax.GradientTransformation:
    """clip_by_global_norm, then AdamW on the schedule (openpi's ``AdamW.create``)."""
    return optax.chain(
        optax.clip_by_global_norm(cfg.clip_gradient_norm),
        optax.adamw(learning_rate(cfg, num_steps), b1=cfg.b1, b2=cfg.b2, eps=cfg.eps, weight_decay=cfg.weight_decay),
    )


def ema_update(ema: Any, params: Any, decay: float) -> Any:
    """ema ← decay·ema + (1 − decay)·params, leaf by leaf."""
    return jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, ema, params)
