"""``Pi05Policy``: the FlowPolicy for the rig — raw observations in, action chunks in physical units out.

Input pipeline (openpi ``create_trained_policy``: the lab's ``*Inputs``, ``Normalize``, then ``ResizeImages``,
``TokenizePrompt``, ``PadStatesAndActions``; all settings from the policy section, ``policy_section.py``):
1. state: the executor's named state -> the model's state vector (``state`` segments, ``state_pad_dim``),
   normalised (quantile or z-score) with ``assets/<asset_id>/norm_stats.json``;
2. prompt: with ``discrete_state_input`` the state is discretised into 256 bins inside the prompt
   ``"Task: …, State: …;\\nAction: "``; tokenised with PaliGemma's SentencePiece model;
3. cameras: each configured slot resized with pad by PIL on uint8 (``image.py``); missing frames black and masked.
Output: model-space actions [b, H, Dm] -> the first A dims (A = the ``actions`` vector) -> unnormalised ->
delta dims made absolute by adding the state vector (``delta_action_mask``, in the model's representation) ->
mapped back to the executor's action names. ``to_model`` is the exact inverse (the previous chunk into RTC's prefix).

Axes: b = batch, H = horizon, Dm = model action dim (32), A = the model's action vector, D = len(action_names).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rtc_controller.policy.base import Observation
from rtc_controller.policy.pi05.config import IMAGE_KEYS
from rtc_controller.policy.pi05.image import resize_with_pad
from rtc_controller.policy.pi05.model import Pi05Model, load_pi05
from rtc_controller.policy.pi05.norm_stats import NormStats, NormStatsError, find_norm_stats
from rtc_controller.policy.pi05.policy_section import Pi05PolicyConfig
from rtc_controller.policy.pi05.tokenizer import PaligemmaTokenizer

__all__ = ["Pi05Policy", "Pi05PolicyConfig"]

STATE_KEY = "state"
ACTIONS_KEY = "actions"
WARMUP_PROMPT = "warm-up"  # the prompt's text never changes a compiled shape (every prompt bucket is warmed)


class Pi05Policy:
    """π0.5 as a ``FlowPolicy`` (hashes by identity; ``velocity`` is a valid static jit argument)."""

    def __init__(self, config: Pi05PolicyConfig, *, model: Pi05Model | None = None,
                 tokenizer: PaligemmaTokenizer | None = None) -> None:
        self.config = config
        self.model = model or load_pi05(config.checkpoint_dir, action_horizon=config.action_horizon,
                                        max_token_len=config.max_token_len, dtype=config.dtype,
                                        asset_id=config.asset_id, lora=config.lora,
                                        prompt_buckets=config.prompt_buckets)
        self.tokenizer = tokenizer or PaligemmaTokenizer(config.tokenizer_path, max_len=self.model.config.max_token_len)
        self.action_names = tuple(config.action_names)
        self.horizon = self.model.action_horizon
        self.model_action_dim = self.model.action_dim
        self.rtc_training_max_delay = config.rtc_training_max_delay  # > 0: guidance_mode trained (clean prefix)
        self.num_steps = config.num_steps
        self.state_map, self.action_map = config.state_map, config.action_map
        self.camera_slots = config.camera_slots
        self._state_stats, self._action_stats = self._norm_stats()
        self._check_dims()
        self._delta = np.zeros(self.action_map.dim, bool)
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

    def _check_dims(self) -> None:
        """The section's vectors against the checkpoint: each message names the field and both values."""
        where = f"{self.config.checkpoint_dir} (asset_id {self.config.asset_id})"
        if self.config.state_dim != self._state_stats.dim:
            raise ValueError(f"state dim mismatch: the policy section's state vector has {self.config.state_dim} "
                             f"dims but norm_stats 'state' of {where} has {self._state_stats.dim}")
        a = self.action_map.dim
        if a != self._action_stats.dim:
            raise ValueError(f"action dim mismatch: the policy section's actions take {a} model dims but "
                             f"norm_stats 'actions' of {where} has {self._action_stats.dim}")
        if a > self.model_action_dim:
            raise ValueError(f"action dim mismatch: the policy section's actions take {a} model dims but the "
                             f"checkpoint's action_dim is {self.model_action_dim} ({self.config.checkpoint_dir})")

    # --- observation -> model inputs -------------------------------------------------------------------
    def state_vector(self, state: np.ndarray) -> np.ndarray:
        """Executor state [..., D] (action_names order) -> the model's state vector [..., state_dim], physical."""
        state = np.asarray(state, np.float64)
        if state.shape[-1] != len(self.action_names):
            raise ValueError(f"observation state has {state.shape[-1]} values for {len(self.action_names)} names")
        if not np.all(np.isfinite(state)):
            raise ValueError(f"observation state is not finite: {state}")
        vec = self.state_map.encode(state, self.action_names)
        pad = self.config.state_dim - vec.shape[-1]
        return np.concatenate([vec, np.zeros((*vec.shape[:-1], pad))], axis=-1) if pad else vec

    def normalized_state(self, state: np.ndarray) -> np.ndarray:
        """Executor state [D] -> normalised model state vector (what the prompt discretises)."""
        return self._state_stats.normalize(self.state_vector(state), self.config.normalization, what="state")

    def tokenize(self, prompt: str, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ids int32 [max_token_len], mask bool) for a prompt and an executor state (refuses a too-long prompt)."""
        state_in_prompt = self.normalized_state(state) if self.config.discrete_state_input else None
        if state_in_prompt is None:
            self.state_vector(state)  # still check the observation
        return self.tokenizer.tokenize(prompt, state_in_prompt)

    def model_images(self, images: dict[str, np.ndarray]) -> tuple[dict, dict]:
        """Camera frames by slot -> (slot -> uint8 [1, 224, 224, 3], slot -> bool [1]) for the configured slots."""
        unknown = set(images) - set(IMAGE_KEYS)
        if unknown:
            raise ValueError(f"unknown camera slots {sorted(unknown)}; π0.5 takes {IMAGE_KEYS}")
        size = self.model.config.siglip.image_size
        out, masks = {}, {}
        for key in self.camera_slots:
            img = images.get(key)
            if img is None:
                out[key], masks[key] = np.zeros((1, size, size, 3), np.uint8), np.zeros((1,), bool)
                continue
            if not isinstance(img, np.ndarray) or img.dtype != np.uint8:
                raise TypeError(f"camera {key!r}: expected a uint8 numpy image [h, w, 3], got "
                                f"{type(img).__name__} {getattr(img, 'dtype', '')}")
            out[key], masks[key] = resize_with_pad(img, size, size)[None], np.ones((1,), bool)
        return out, masks

    def model_inputs(self, observation: Observation) -> tuple[dict, dict, np.ndarray, np.ndarray]:
        """(images uint8, image_masks, tokens, token_mask) with a batch of 1, ready for ``Pi05Model.prepare``."""
        images, masks = self.model_images(dict(observation.images))
        tokens, token_mask = self.tokenize(observation.prompt, observation.state)
        return images, masks, tokens[None], token_mask[None]

    def fake_observation(self, stamp_s: float = 0.0, *, cameras: Sequence[str] | None = None,
                         prompt: str = WARMUP_PROMPT) -> Observation:
        """A warm-up observation with the shapes of a real one: zero state [D], a black uint8 frame at each
        configured slot's resolution (224² where none is configured), ``prompt``."""
        cameras = self.camera_slots if cameras is None else tuple(cameras)
        unknown = set(cameras) - set(IMAGE_KEYS)
        if unknown:
            raise ValueError(f"unknown camera slots {sorted(unknown)}; π0.5 takes {IMAGE_KEYS}")
        size = self.model.config.siglip.image_size
        shapes = {k: (c.resolution or (size, size)) for k, c in self.config.cameras.items()}
        images = {slot: np.zeros((*shapes.get(slot, (size, size)), 3), np.uint8) for slot in cameras}
        return Observation(state=np.zeros(len(self.action_names)), stamp_s=float(stamp_s), prompt=prompt,
                           images=images)

    def warmup(self) -> None:
        """Compile the prefix pass for every prompt-length bucket (``ChunkSampler.warmup`` calls this first)."""
        images, masks = self.model_images(dict(self.fake_observation().images))
        self.model.warmup_prefix(images, masks)

    # --- FlowPolicy ----------------------------------------------------------------------------------
    def prepare(self, observation: Observation) -> Any:
        """Prefix pass for one observation (batch 1) -> context pytree (KV cache, prefix mask, expert weights)."""
        return self.model.prepare(*self.model_inputs(observation))

    def velocity(self, context: Any, x_t: Any, t: Any) -> Any:
        """v(x_t, t) [b, H, Dm] in model space (t = 1 noise); pure and jittable."""
        return self.model.velocity(context, x_t, t)

    def _delta_state(self, observation: Observation) -> np.ndarray:
        """[A]: the model state vector on delta dims, 0 elsewhere (openpi ``AbsoluteActions``)."""
        n = len(self.config.delta_action_mask)
        out = np.zeros(self.action_map.dim)
        out[:n] = np.where(self._delta[:n], self.state_vector(observation.state)[:n], 0.0)
        return out

    def to_physical(self, actions_model: np.ndarray, observation: Observation) -> np.ndarray:
        """[b, H, Dm] model space -> [b, H, D] physical (unnormalise, delta -> absolute, map to action names)."""
        a = np.asarray(actions_model, np.float64)
        if a.ndim != 3 or a.shape[-1] != self.model_action_dim:
            raise ValueError(f"actions_model must be [b, H, {self.model_action_dim}], got {a.shape}")
        vec = self._action_stats.unnormalize(a[..., : self.action_map.dim], self.config.normalization, what="actions")
        if self._delta.any():
            vec = vec + self._delta_state(observation)
        return self.action_map.decode(vec, self.action_names)

    def to_model(self, actions_physical: np.ndarray, observation: Observation) -> np.ndarray:
        """[b, H, D] physical -> [b, H, Dm] model space (map, absolute -> delta, normalise, zero-pad)."""
        a = np.asarray(actions_physical, np.float64)
        d = len(self.action_names)
        if a.ndim != 3 or a.shape[-1] != d:
            raise ValueError(f"actions_physical must be [b, H, {d}], got {a.shape}")
        vec = self.action_map.encode(a, self.action_names)
        if self._delta.any():
            vec = vec - self._delta_state(observation)
        norm = self._action_stats.normalize(vec, self.config.normalization, what="actions")
        pad = np.zeros((*norm.shape[:-1], self.model_action_dim - norm.shape[-1]))
        return np.concatenate([norm, pad], axis=-1).astype(np.float32)

    def infer(self, observation: Observation, *, noise: np.ndarray | None = None, num_steps: int | None = None,
              seed: int = 0) -> np.ndarray:
        """One unguided chunk [H, D] in physical units (plain Euler from noise), for tools and smoke tests."""
        if noise is None:
            noise = np.random.default_rng(seed).standard_normal((1, self.horizon, self.model_action_dim))
        ctx = self.prepare(observation)
        x0 = self.model.sample_actions(ctx, np.asarray(noise, np.float32), num_steps=num_steps or self.num_steps)
        return self.to_physical(np.asarray(x0), observation)[0]
