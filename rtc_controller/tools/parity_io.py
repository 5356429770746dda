"""Parity records for ``rtc-policy-check``: one observation, the noise, and (once openpi has run) its actions.

One ``.npz`` per observation (NumPy ``savez``), keys:

=================== ===================================================================================
``state``           float64 [D]: the executor's robot state, ``state_names`` order (what the node sees)
``state_names``     str [D]: the executor's action names
``prompt``          str (0-d): the task instruction
``image/<slot>``    uint8 [h, w, 3] per model camera slot (``base_0_rgb`` …): the frame as the camera sent it
``noise``           float32 [H, 32]: the noise openpi's ``Policy.infer(obs, noise=noise)`` starts from
``actions``         float [H, A]: openpi's ``Policy.infer(...)["actions"]`` (after the lab's ``*Outputs``);
                    absent in a record exported for the lab to fill in
``stamp_s``         float (optional): t_obs of the observation [s], e.g. from the bag
=================== ===================================================================================
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from rtc_controller import topics
from rtc_controller.policy.base import Observation

IMAGE_PREFIX = "image/"


class ParityInputError(ValueError):
    """A parity record or bag that cannot be used (the message names the file and the key)."""


@dataclass(frozen=True)
class ParityRecord:
    """One observation with its noise and (optionally) openpi's actions."""

    observation: Observation
    state_names: tuple[str, ...]
    noise: np.ndarray  # [H, Dm] float32
    actions: np.ndarray | None = None  # [H, A] openpi's output
    source: str = ""
    extra: dict = field(default_factory=dict)


def save_record(path: str | pathlib.Path, record: ParityRecord) -> pathlib.Path:
    """Write ``record`` in the format of the module docstring."""
    obs = record.observation
    arrays = {
        "state": np.asarray(obs.state, np.float64),
        "state_names": np.asarray(record.state_names, dtype=str),
        "prompt": np.asarray(obs.prompt),
        "noise": np.asarray(record.noise, np.float32),
        "stamp_s": np.asarray(obs.stamp_s, np.float64),
        **{IMAGE_PREFIX + slot: np.asarray(img, np.uint8) for slot, img in obs.images.items()},
    }
    if record.actions is not None:
        arrays["actions"] = np.asarray(record.actions)
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


def _require(data, key: str, path: pathlib.Path) -> np.ndarray:
    if key not in data:
        raise ParityInputError(f"{path}: missing key {key!r} (have {sorted(data.keys())})")
    return data[key]


def load_record(path: str | pathlib.Path) -> ParityRecord:
    """Read a parity record (ParityInputError naming the file and the key)."""
    path = pathlib.Path(path)
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ParityInputError(f"{path}: cannot read the .npz ({exc})") from None
    with data:
        state = np.asarray(_require(data, "state", path), np.float64).reshape(-1)
        names = tuple(str(n) for n in _require(data, "state_names", path).reshape(-1))
        if len(names) != state.shape[0]:
            raise ParityInputError(f"{path}: {state.shape[0]} state values for {len(names)} state_names")
        noise = np.asarray(_require(data, "noise", path), np.float32)
        if noise.ndim == 3 and noise.shape[0] == 1:
            noise = noise[0]  # openpi also accepts a leading batch of 1
        if noise.ndim != 2:
            raise ParityInputError(f"{path}: noise must be [H, action_dim], got shape {list(noise.shape)}")
        images = {k[len(IMAGE_PREFIX):]: np.asarray(data[k]) for k in data.keys() if k.startswith(IMAGE_PREFIX)}
        for slot, img in images.items():
            if img.dtype != np.uint8 or img.ndim != 3 or img.shape[-1] != 3:
                raise ParityInputError(f"{path}: image/{slot} must be uint8 [h, w, 3], got {img.dtype} {img.shape}")
        actions = np.asarray(data["actions"], np.float64) if "actions" in data else None
        prompt = str(_require(data, "prompt", path))
        stamp = float(data["stamp_s"]) if "stamp_s" in data else 0.0
    obs = Observation(state=state, stamp_s=stamp, prompt=prompt, images=images)
    return ParityRecord(obs, names, noise, actions, source=str(path))


def observations_from_bag(bag_path: str | pathlib.Path, *, names: Sequence[str], cameras: dict[str, str] | None,
                          max_observations: int, prompt: str | None = None) -> list[Observation]:
    """The observations the inference node used for the bag's recorded chunks (state at each chunk's t_obs, the
    latest frame of each camera and the latest prompt before it), at most ``max_observations``, evenly spread."""
    from rtc_controller.bags.bag_messages import read_chunks, read_images, read_prompts, read_states
    from rtc_controller.bags.bag_reader import BagError, BagReader

    try:
        with BagReader(bag_path) as bag:
            chunks = [c for _, c in read_chunks(bag)]
            if not chunks:
                raise ParityInputError(f"{bag_path}: no chunks on {topics.CHUNK}: no observation to check")
            pick = np.unique(np.round(np.linspace(0, len(chunks) - 1, min(max_observations, len(chunks)))))
            stamps = [chunks[int(i)].t_obs_s for i in pick]
            states = read_states(bag, names=names)
            prompts = read_prompts(bag) if bag.resolve(topics.PROMPT) else []
            if cameras is None:
                cameras = {}
                for topic in bag.topics:
                    slot = topic.rsplit("/" + topics.CAMERA_PREFIX, 1)
                    if len(slot) == 2:
                        cameras.setdefault(slot[1].removesuffix("/compressed"), topic)
            frames = {slot: read_images(bag, topic, at_s=stamps) for slot, topic in cameras.items()}
    except BagError as exc:
        raise ParityInputError(str(exc)) from None
    out = []
    for t in stamps:
        k = states.index_at(t)
        if k is None:
            raise ParityInputError(f"{bag_path}: no robot state at or before t_obs {t:.6f} s")
        text = prompt if prompt is not None else next((p for ts, p in reversed(prompts) if ts <= t), "")
        images = {}
        for slot, samples in frames.items():
            before = [f for f in samples if f.stamp_s <= t + 1e-6]
            if before:
                images[slot] = before[-1].rgb
        out.append(Observation(state=states.positions[k].copy(), stamp_s=t, prompt=text, images=images))
    return out
