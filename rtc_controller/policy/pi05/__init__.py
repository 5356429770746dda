"""π0.5 (openpi) in JAX: SigLIP + PaliGemma Gemma-2B with the Gemma-300M action expert, KV-cached denoising.

Entry points: ``load_pi05`` -> ``Pi05Model`` (``prepare`` / ``velocity``), ``Pi05Policy`` (the FlowPolicy).
"""

from rtc_controller.policy.pi05.checkpoint import CheckpointError, load_params, save_params
from rtc_controller.policy.pi05.config import (
    IMAGE_KEYS,
    ArchitectureError,
    GemmaConfig,
    Pi05Config,
    SiglipConfig,
    full_size_config,
    infer_config,
)
from rtc_controller.policy.pi05.model import Pi05Model, load_pi05
from rtc_controller.policy.pi05.norm_stats import NormStats, NormStatsError, load_norm_stats, save_norm_stats
from rtc_controller.policy.pi05.params import random_params
from rtc_controller.policy.pi05.policy import Pi05Policy
from rtc_controller.policy.pi05.policy_section import (
    CameraSlot,
    Pi05PolicyConfig,
    load_policy_section,
    save_policy_section,
)
from rtc_controller.policy.pi05.state_map import Segment
from rtc_controller.policy.pi05.tokenizer import PaligemmaTokenizer, TokenizerError

__all__ = [
    "IMAGE_KEYS",
    "CameraSlot",
    "Segment",
    "load_policy_section",
    "save_policy_section",
    "ArchitectureError",
    "CheckpointError",
    "GemmaConfig",
    "NormStats",
    "NormStatsError",
    "PaligemmaTokenizer",
    "Pi05Config",
    "Pi05Model",
    "Pi05Policy",
    "Pi05PolicyConfig",
    "SiglipConfig",
    "TokenizerError",
    "full_size_config",
    "infer_config",
    "load_norm_stats",
    "load_params",
    "load_pi05",
    "random_params",
    "save_norm_stats",
    "save_params",
]
