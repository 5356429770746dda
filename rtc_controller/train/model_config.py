"""Sizes of a small π0.5 to train from scratch: the same modules as ``policy/pi05`` (SigLIP, the Gemma prefix
expert, the action expert with adaptive RMSNorm), narrow and shallow.

The image size is a model choice: SigLIP sees ``image_size`` px (``patch_size`` px patches), and the policy
resizes every camera frame to it (``Pi05Policy`` reads it off the checkpoint's position embedding). The
vocabulary, the model action dim and the token budget come from the data (``to_pi05_config``).
"""

from __future__ import annotations

from dataclasses import dataclass

from rtc_controller.policy.pi05.config import GemmaConfig, Pi05Config, SiglipConfig


@dataclass(frozen=True)
class ModelSize:
    """Widths/depths of a small π0.5. Both Gemma experts share ``depth``, ``num_heads``, ``num_kv_heads`` and
    ``head_dim`` (one attention); ``action_dim`` 0 means the dataset's action dim (no padding)."""

    image_size: int = 64  # [px], square
    patch_size: int = 16  # [px]
    vit_width: int = 64
    vit_depth: int = 2
    vit_mlp_dim: int = 128
    vit_heads: int = 4
    depth: int = 2
    num_heads: int = 4
    num_kv_heads: int = 1
    head_dim: int = 16
    llm_width: int = 64
    llm_mlp_dim: int = 128
    expert_width: int = 48
    expert_mlp_dim: int = 96
    action_dim: int = 0

    def __post_init__(self) -> None:
        for name, v in self.__dict__.items():
            if v < (0 if name == "action_dim" else 1):
                raise ValueError(f"model.{name} must be {'>= 0' if name == 'action_dim' else 'positive'}, got {v}")
        if self.image_size % self.patch_size:
            raise ValueError(f"model.image_size ({self.image_size}) must be a multiple of patch_size ({self.patch_size})")
        # The checks of the π0.5 configs themselves (heads vs kv heads, even head dim, ViT heads) run here too.
        self.to_pi05_config(action_dim=1, action_horizon=1, max_token_len=1, vocab_size=8)

    def to_pi05_config(self, *, action_dim: int, action_horizon: int, max_token_len: int,
                       vocab_size: int) -> Pi05Config:
        """The π0.5 architecture (float32: training and CPU inference) for the data's dims."""
        heads = {"depth": self.depth, "num_heads": self.num_heads, "num_kv_heads": self.num_kv_heads,
                 "head_dim": self.head_dim}
        side = self.image_size // self.patch_size
        return Pi05Config(
            llm=GemmaConfig(width=self.llm_width, mlp_dim=self.llm_mlp_dim, **heads),
            expert=GemmaConfig(width=self.expert_width, mlp_dim=self.expert_mlp_dim, **heads),
            siglip=SiglipConfig(patch_size=self.patch_size, num_patches=side * side, width=self.vit_width,
                                depth=self.vit_depth, mlp_dim=self.vit_mlp_dim, num_heads=self.vit_heads),
            action_dim=self.action_dim or action_dim,
            vocab_size=vocab_size,
            action_horizon=action_horizon,
            max_token_len=max_token_len,
            dtype="float32",
        )


# Named sizes for the training benchmark and the configs (config/train/*.yaml spell theirs out).
MODEL_PRESETS: dict[str, ModelSize] = {
    "micro": ModelSize(image_size=32, patch_size=16, vit_width=32, vit_depth=1, vit_mlp_dim=64, vit_heads=2,
                       depth=1, num_heads=2, head_dim=16, llm_width=32, llm_mlp_dim=64, expert_width=32,
                       expert_mlp_dim=64),
    "tiny": ModelSize(),
    "small": ModelSize(image_size=96, patch_size=16, vit_width=96, vit_depth=3, vit_mlp_dim=192, vit_heads=4,
                       depth=3, num_heads=4, head_dim=24, llm_width=128, llm_mlp_dim=256, expert_width=96,
                       expert_mlp_dim=192),
}
