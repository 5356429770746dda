"""``Pi05Policy``: the FlowPolicy for the rig — raw observations in, action chunks in physical units out.

Input pipeline (openpi's π0.5 transforms, in order): camera images resized with padding to 224×224 and scaled
to [−1, 1] (missing cameras: black and masked out); the physical state optionally zero-padded
(``state_pad_dim``), normalised with the checkpoint's norm stats (quantile by default), discretised into 256 bins
and written into the prompt ``"Task: …, State: …;\\nAction: "``, tokenised with PaliGemma's SentencePiece model.
Output: model-space actions [b, H, Dm] -> first D dims -> unnormalised -> (optionally) delta dims made absolute by
adding the observed state. ``to_model`` is the exact inverse (used to put the previous chunk into RTC's prefix).

Axes: b = batch, H = horizon, Dm = model action dim (32), D = len(action_names).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rtc_controller.action_space import action_names as default_action_names
from rtc_controller.policy.base import Observation
from rtc_controller.policy.pi05.config import IMAGE_KEYS, DTYPES, Dtype
from rtc_controller.policy.pi05.image import to_model_image
from rtc_controller.policy.pi05.model import Pi05Model, load_pi05
from rtc_controller.policy.pi05.norm_stats import NORM_MODES, NormMode, NormStats, NormStatsError, find_norm_stats
from rtc_controller.policy.pi05.tokenizer import PaligemmaTokenizer

STATE_KEY = "state"
ACTIONS_KEY = "actions"
WARMUP_PROMPT = "warm-up"  # the prompt's text never changes a compiled shape (tokens are padded to max_token_len)


@dataclass(frozen=True)
class Pi05PolicyConfig:
    """How to load and drive a π0.5 checkpoint on the rig.

    delta_action_mask: for each of the first len(mask) action dims, True where the checkpoint predicts the
    action relative to the observed state (openpi's DeltaActions); those dims of the state must line up with
    the action dims. state_pad_dim: zero-pad the physical state to this many dims before normalisation (for
    checkpoints whose data transforms padded the state; their norm stats cover the padded dims).
    """

    checkpoint_dir: str
    tokenizer_path: str
    action_names: tuple[str, ...] = default_action_names("cartesian")
    asset_id: str | None = None
    action_horizon: int = 50
    max_token_len: int = 200
    dtype: Dtype = "bfloat16"
    normalization: NormMode = "quantile"
    delta_action_mask: tuple[bool, ...] = ()
    state_pad_dim: int | None = None

    def __post_init__(self) -> None:
        if not self.action_names or len(set(self.action_names)) != len(self.action_names):
            raise ValueError(f"action_names must be non-empty and unique, got {self.action_names}")
        if self.action_horizon <= 0 or self.max_token_len <= 0:
            raise ValueError("action_horizon and max_token_len must be positive")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        if self.normalization not in NORM_MODES:
            raise ValueError(f"normalization must be one of {NORM_MODES}, got {self.normalization!r}")
        if len(self.delta_action_mask) > len(self.action_names):
            raise ValueError(f"delta_action_mask has {len(self.delta_action_mask)} entries for "
                             f"{len(self.action_names)} action dims")
        if self.state_pad_dim is not None and self.state_pad_dim <= 0:
            raise ValueError(f"state_pad_dim must be positive, got {self.state_pad_dim}")


class Pi05Policy:
    """π0.5 as a ``FlowPolicy`` (hashes by identity; ``velocity`` is a valid static jit argument)."""

    def __init__(self, config: Pi05PolicyConfig, *, model: Pi05Model | None = None,
                 tokenizer: PaligemmaTokenizer | None = None) -> None:
        self.config = config
        self.model = model or load_pi05(config.checkpoint_dir, action_horizon=config.action_horizon,
                                        max_token_len=config.max_token_len, dtype=config.dtype,
                                        asset_id=config.asset_id)
        self.tokenizer = tokenizer or PaligemmaTokenizer(config.tokenizer_path, max_len=self.model.config.max_token_len)
        self.action_names = tuple(config.action_names)
        self.horizon = self.model.action_horizon
        self.model_action_dim = self.model.action_dim
        self._state_stats, self._action_stats = self._norm_stats()
        d = len(self.action_names)
        if d > self.model_action_dim:
            raise ValueError(f"action dims mismatch: {d} action_names but the checkpoint's action_dim is "
                             f"{self.model_action_dim} ({config.checkpoint_dir})")
        if self._action_stats.dim < d:
            raise ValueError(f"action dims mismatch: {d} action_names but the norm stats 'actions' cover "
                             f"{self._action_stats.dim} dims ({config.checkpoint_dir})")
        self._delta = np.zeros(d, bool)
        self._delta[: len(config.delta_action_mask)] = config.delta_action_mask
        if self.tokenizer.vocab_size > self.model.config.vocab_size:
            raise ValueError(f"{self.tokenizer.path}: tokenizer has {self.tokenizer.vocab_size} pieces but the "
                             f"model's embedding has {self.model.config.vocab_size} rows")

    def _norm_stats(self) -> tuple[NormStats, NormStats]:
        stats = self.model.norm_stats
        if stats is None:
            find_norm_stats(self.config.checkpoint_dir, self.config.asset_id)  # raises naming the expected path
            raise NormStatsError(f"{self.config.checkpoint_dir}: no norm stats loaded")
        for key in (STATE_KEY, ACTIONS_KEY):
            if key not in stats:
                raise NormStatsError(f"{self.config.checkpoint_dir}/assets: norm stats lack {key!r} "
                                     f"(have {sorted(stats)})")
        return stats[STATE_KEY], stats[ACTIONS_KEY]

    # --- observation -> model inputs -------------------------------------------------------------------
    def normalized_state(self, state: np.ndarray) -> np.ndarray:
        """Physical state [n] -> (padded) normalised state, as written into the prompt."""
        state = np.asarray(state, np.float64).reshape(-1)
        if not np.all(np.isfinite(state)):
            raise ValueError(f"observation state is not finite: {state}")
        if self.config.state_pad_dim is not None:
            if state.shape[0] > self.config.state_pad_dim:
                raise ValueError(f"state has {state.shape[0]} dims > state_pad_dim {self.config.state_pad_dim}")
            state = np.pad(state, (0, self.config.state_pad_dim - state.shape[0]))
        return self._state_stats.normalize(state, self.config.normalization, what="state")

    def model_inputs(self, observation: Observation) -> tuple[dict, dict, np.ndarray, np.ndarray]:
        """(images, image_masks, tokens, token_mask) with a batch of 1, ready for ``Pi05Model.prepare``."""
        size = self.model.config.siglip.image_size
        unknown = set(observation.images) - set(IMAGE_KEYS)
        if unknown:
            raise ValueError(f"unknown camera slots {sorted(unknown)}; π0.5 takes {IMAGE_KEYS}")
        images, masks = {}, {}
        for key in IMAGE_KEYS:
            img = observation.images.get(key)
            if img is None:
                images[key] = -np.ones((1, size, size, 3), np.float32)
                masks[key] = np.zeros((1,), bool)
                continue
            if not isinstance(img, np.ndarray) or img.dtype != np.uint8:
                raise TypeError(f"camera {key!r}: expected a uint8 numpy image [h, w, 3], got "
                                f"{type(img).__name__} {getattr(img, 'dtype', '')}")
            images[key] = to_model_image(img, size)[None]
            masks[key] = np.ones((1,), bool)
        tokens, token_mask = self.tokenizer.tokenize(observation.prompt, self.normalized_state(observation.state))
        return images, masks, tokens[None], token_mask[None]

    def fake_observation(self, stamp_s: float = 0.0, *, cameras: Sequence[str] = IMAGE_KEYS,
                         prompt: str = WARMUP_PROMPT) -> Observation:
        """A warm-up observation with the shapes of a real one: zero state [D] (as the inference node sends it,
        one value per action name), a black uint8 [224, 224, 3] frame for each of ``cameras``, ``prompt``.

        Every real observation maps to the same model-input shapes (images resized to the model's resolution,
        tokens padded to ``max_token_len``, missing cameras masked), so ``ChunkSampler.warmup()`` on this
        compiles everything the first real chunk needs.
        """
        unknown = set(cameras) - set(IMAGE_KEYS)
        if unknown:
            raise ValueError(f"unknown camera slots {sorted(unknown)}; π0.5 takes {IMAGE_KEYS}")
        size = self.model.config.siglip.image_size
        images = {slot: np.zeros((size, size, 3), np.uint8) for slot in cameras}
        return Observation(state=np.zeros(len(self.action_names)), stamp_s=float(stamp_s), prompt=prompt,
                           images=images)

    # --- FlowPolicy ----------------------------------------------------------------------------------
    def prepare(self, observation: Observation) -> Any:
        """Prefix pass for one observation (batch 1) -> context pytree (KV cache, prefix mask, expert weights)."""
        return self.model.prepare(*self.model_inputs(observation))

    def velocity(self, context: Any, x_t: Any, t: Any) -> Any:
        """v(x_t, t) [b, H, Dm] in model space (t = 1 noise); pure and jittable."""
        return self.model.velocity(context, x_t, t)

    def _state_for_delta(self, observation: Observation) -> np.ndarray:
        state = np.asarray(observation.state, np.float64).reshape(-1)
        n = len(self.config.delta_action_mask)
        if state.shape[0] < n:
            raise ValueError(f"delta_action_mask covers {n} dims but the state has only {state.shape[0]}")
        out = np.zeros(len(self.action_names))
        out[:n] = np.where(self._delta[:n], state[:n], 0.0)
        return out

    def to_physical(self, actions_model: np.ndarray, observation: Observation) -> np.ndarray:
        """[b, H, Dm] model space -> [b, H, D] physical (unnormalise, then delta -> absolute)."""
        a = np.asarray(actions_model, np.float64)
        if a.ndim != 3 or a.shape[-1] != self.model_action_dim:
            raise ValueError(f"actions_model must be [b, H, {self.model_action_dim}], got {a.shape}")
        d = len(self.action_names)
        phys = self._action_stats.unnormalize(a[..., :d], self.config.normalization, what="actions")
        if self._delta.any():
            phys = phys + self._state_for_delta(observation)
        return phys

    def to_model(self, actions_physical: np.ndarray, observation: Observation) -> np.ndarray:
        """[b, H, D] physical -> [b, H, Dm] model space (absolute -> delta, normalise, zero-pad)."""
        a = np.asarray(actions_physical, np.float64)
        d = len(self.action_names)
        if a.ndim != 3 or a.shape[-1] != d:
            raise ValueError(f"actions_physical must be [b, H, {d}], got {a.shape}")
        if self._delta.any():
            a = a - self._state_for_delta(observation)
        norm = self._action_stats.normalize(a, self.config.normalization, what="actions")
        pad = np.zeros((*norm.shape[:-1], self.model_action_dim - d))
        return np.concatenate([norm, pad], axis=-1).astype(np.float32)

    def infer(self, observation: Observation, *, noise: np.ndarray | None = None, num_steps: int = 10,
              seed: int = 0) -> np.ndarray:
        """One unguided chunk [H, D] in physical units (plain Euler from noise), for tools and smoke tests."""
        if noise is None:
            noise = np.random.default_rng(seed).standard_normal((1, self.horizon, self.model_action_dim))
        ctx = self.prepare(observation)
        x0 = self.model.sample_actions(ctx, np.asarray(noise, np.float32), num_steps=num_steps)
        return self.to_physical(np.asarray(x0), observation)[0]

