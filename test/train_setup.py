"""Shared setup of the training tests (not collected): a small synthetic dataset and a micro training config."""

import contextlib

import jax

from rtc_controller.train.config import DataConfig, LoopConfig, TokenizerConfig, TrainConfig
from rtc_controller.train.model_config import MODEL_PRESETS
from rtc_controller.train.optim import OptimizerConfig
from rtc_controller.train.synthetic import SyntheticConfig

HORIZON = 8  # action steps per chunk
FPS = 10.0


def synthetic_config(**kw) -> SyntheticConfig:
    """6 short episodes at 10 Hz with three small cameras (a frame every 2 steps)."""
    return SyntheticConfig(**{"num_episodes": 6, "episode_steps": 40, "fps": FPS, "image_height": 24,
                              "image_width": 32, "seed": 3, **kw})


def train_config(*, num_steps: int = 60, **loop) -> TrainConfig:
    """The micro π0.5 (one layer, 32 px images), H = 8, batch 8, EMA, validation on one held-out episode, delta
    positions (left arm x, y, z and right arm x, y, z relative to the state)."""
    return TrainConfig(
        model=MODEL_PRESETS["micro"],
        data=DataConfig(horizon=HORIZON, val_fraction=0.2, delta_action_mask=(True, True, True, False, False, False,
                                                                               False, True, True, True)),
        tokenizer=TokenizerConfig(vocab_size=300),
        optimizer=OptimizerConfig(peak_lr=3e-3, warmup_steps=5, decay_lr=3e-4, ema_decay=0.9),
        loop=LoopConfig(**{"num_steps": num_steps, "batch_size": 8, "log_every": 5, "eval_every": 20,
                           "save_every": 20, "keep_checkpoints": 2, **loop}),
    )


def session_cache_dir(tmp_path_factory):
    """One compilation cache for the whole test session: the training tests compile the same programs."""
    return tmp_path_factory.getbasetemp() / "train_jax_cache"


@contextlib.contextmanager
def compilation_cache(directory):
    """JAX's persistent compilation cache in ``directory`` (later runs of the same program load, not compile)."""
    before = jax.config.jax_compilation_cache_dir
    jax.config.update("jax_compilation_cache_dir", str(directory))
    try:
        yield
    finally:
        jax.config.update("jax_compilation_cache_dir", before)
