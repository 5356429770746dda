"""Training samples: every action step of every training episode, turned into π0.5 model inputs by the policy's
own transforms, so a trained checkpoint sees at run time exactly what it was trained on.

For step t of an episode (openpi's LeRobot pipeline): the latest camera frame taken at or before t, the state
s[t], the prompt, and the action chunk a[t … t+H−1] (clamped at the episode's end). The transforms are the
``Pi05Policy``'s: ``resize_with_pad`` to the model's resolution (uint8; the model maps it to [−1, 1]) for the
dataset's camera slots (the policy section lists the same slots; the others are left out of the prefix);
``tokenize(prompt, s[t])`` (the normalised state discretised into the prompt); ``to_model(chunk)`` (absolute ->
delta on the masked dims, normalise, zero-pad to the model action dim). A test checks that a batch equals
``Pi05Policy.model_inputs`` / ``to_model`` of the policy loaded from the exported policy section.

Frames are stored once, resized, as uint8; tokens and action targets per sample.

Axes: N = samples, F = frames, s = model image size, L = tokens, H = horizon, Dm = model action dim.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rtc_controller.policy.base import Observation
from rtc_controller.policy.pi05.config import IMAGE_KEYS
from rtc_controller.policy.pi05.image import resize_with_pad
from rtc_controller.policy.pi05.policy import Pi05Policy
from rtc_controller.train.dataset import Episode
from rtc_controller.train.norm_stats import action_chunks


@dataclass(frozen=True, eq=False)
class TrainingSet:
    """Model-ready samples. ``batch(indices)`` gathers one training batch (NumPy, host memory)."""

    images: dict[str, np.ndarray]  # dataset slot -> uint8 [F, s, s, 3], resized with pad
    frame: np.ndarray  # int64 [N]: each sample's row in ``images``
    tokens: np.ndarray  # int32 [N, L]
    token_mask: np.ndarray  # bool [N, L]
    actions: np.ndarray  # float32 [N, H, Dm], normalised model space
    episode: np.ndarray  # int64 [N], dataset episode index (for diagnostics)
    step: np.ndarray  # int64 [N], action step within the episode

    def __len__(self) -> int:
        return int(self.frame.shape[0])

    @property
    def image_size(self) -> int:
        return int(next(iter(self.images.values())).shape[1])

    def token_lengths(self) -> np.ndarray:
        """Valid tokens per sample [N]."""
        return self.token_mask.sum(axis=1)

    def with_token_len(self, length: int) -> TrainingSet:
        """The same samples with the token arrays cut to ``length`` (every prompt must fit)."""
        longest = int(self.token_lengths().max())
        if length < longest:
            raise ValueError(f"token length {length} < the longest prompt ({longest} tokens)")
        pad = max(0, length - self.tokens.shape[1])
        tokens = np.pad(self.tokens, ((0, 0), (0, pad)))[:, :length]
        mask = np.pad(self.token_mask, ((0, 0), (0, pad)))[:, :length]
        return TrainingSet(self.images, self.frame, tokens, mask, self.actions, self.episode, self.step)

    def batch(self, indices: np.ndarray) -> dict:
        """{images: slot -> uint8 [b, s, s, 3] (the dataset's slots, in π0.5's order), image_masks: slot -> bool
        [b], tokens int32 [b, L], token_mask bool [b, L], actions float32 [b, H, Dm]}."""
        indices = np.asarray(indices)
        frames = self.frame[indices]
        slots = [k for k in IMAGE_KEYS if k in self.images]
        images = {k: self.images[k][frames] for k in slots}
        masks = {k: np.ones(indices.shape[0], bool) for k in slots}
        return {"images": images, "image_masks": masks, "tokens": self.tokens[indices],
                "token_mask": self.token_mask[indices], "actions": self.actions[indices]}


def step_observation(episode: Episode, t: int, images: dict[str, np.ndarray] | None = None) -> Observation:
    """The observation of step t as the inference node builds it: state s[t], the latest frame, the prompt."""
    frame = int(episode.frame_at(t))
    src = episode.images if images is None else images
    return Observation(state=np.asarray(episode.state[t], np.float64), stamp_s=0.0, prompt=episode.prompt,
                       images={slot: imgs[frame] for slot, imgs in src.items()})


def _episode_samples(policy: Pi05Policy, episode: Episode, horizon: int, resized: dict[str, np.ndarray]):
    chunks = action_chunks(np.asarray(episode.actions, np.float64), horizon)
    tokens, masks, targets = [], [], []
    for t in range(episode.length):
        obs = step_observation(episode, t, resized)
        tok, mask = policy.tokenize(obs.prompt, obs.state)
        tokens.append(tok)
        masks.append(mask)
        targets.append(policy.to_model(chunks[t][None], obs)[0])
    return np.stack(tokens), np.stack(masks), np.stack(targets).astype(np.float32)


def build_training_set(episodes: Sequence[int], load: Callable[[int], Episode],
                       policy: Pi05Policy, *, horizon: int,
                       progress: Callable[[int], None] | None = None) -> TrainingSet:
    """Samples of every step of the episodes ``episodes``; ``load(i)`` reads episode i (with images).

    ``policy`` supplies the transforms (its model's image size, tokenizer, norm stats and delta mask).
    """
    size = policy.model.config.siglip.image_size
    images: dict[str, list[np.ndarray]] = {}
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("frame", "tokens", "mask", "actions", "episode", "step")}
    n_frames = 0
    for n, index in enumerate(episodes):
        ep = load(index)
        resized = {slot: np.stack([resize_with_pad(f, size, size) for f in frames]) for slot, frames in ep.images.items()}
        for slot, frames in resized.items():
            images.setdefault(slot, []).append(frames)
        tokens, masks, targets = _episode_samples(policy, ep, horizon, resized)
        steps = np.arange(ep.length)
        parts["frame"].append(n_frames + ep.frame_at(steps))
        parts["tokens"].append(tokens)
        parts["mask"].append(masks)
        parts["actions"].append(targets)
        parts["episode"].append(np.full(ep.length, index))
        parts["step"].append(steps)
        n_frames += ep.frame_index.size
        if progress is not None:
            progress(n)
    if not parts["frame"]:
        raise ValueError("no episodes to build training samples from")
    return TrainingSet(
        images={slot: np.concatenate(v) for slot, v in images.items()},
        frame=np.concatenate(parts["frame"]).astype(np.int64),
        tokens=np.concatenate(parts["tokens"]).astype(np.int32),
        token_mask=np.concatenate(parts["mask"]),
        actions=np.concatenate(parts["actions"]),
        episode=np.concatenate(parts["episode"]).astype(np.int64),
        step=np.concatenate(parts["step"]).astype(np.int64),
    )
