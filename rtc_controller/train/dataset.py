"""The training dataset: a LeRobot-style folder of episodes on the action grid (ROS-free).

Layout::

    <root>/meta/info.json             fps (= action rate [Hz]), state/action names, cameras, prompts, episode
                                      count, the generator and its seed (``DatasetInfo``)
    <root>/meta/episodes.jsonl        one line per episode: index, length, prompt, success, seed
    <root>/episodes/episode_NNNNNN.npz one episode (``Episode``)

An episode holds, for T action steps and F camera frames:
- ``state``   float32 [T, S]: the robot state in the executor's action space at action step t;
- ``actions`` float32 [T, D]: the absolute action commanded for step t (due at t·Δt, Δt = 1/fps);
- ``frame_index`` int64 [F]: the action step at which each camera frame was taken (strictly increasing,
  the first is 0, so every step has a latest frame);
- ``image_<slot>`` uint8 [F, h, w, 3] per camera slot (π0.5 slots: ``base_0_rgb``, ``left_wrist_0_rgb``, …);
- ``prompt`` (str), ``success`` (bool), ``seed`` (int).

Why this and not bags: training draws (state, camera frame, action chunk) at random steps, so the data must
sit on the action grid with random access; a bag is a time-ordered message stream at each sensor's own rate.
The split into ``meta/`` and ``episodes/`` follows LeRobot (v2); one compressed NumPy file per episode avoids
LeRobot's parquet/video dependencies. Episodes are written atomically and ``info.json`` is updated after
each, so an interrupted collection keeps every finished episode.
"""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rtc_controller.config_check import check_known_keys

FORMAT_NAME = "rtc_controller.episodes"
FORMAT_VERSION = 1
INFO_FILE = "meta/info.json"
EPISODES_FILE = "meta/episodes.jsonl"
EPISODE_DIR = "episodes"
IMAGE_PREFIX = "image_"
INFO_KEYS = ("format", "format_version", "fps", "state_names", "action_names", "cameras", "prompts",
             "num_episodes", "num_steps", "generator")
CAMERA_KEYS = ("height", "width", "fps")


class DatasetError(ValueError):
    """A dataset folder or episode that cannot be used; the message names the file and the key."""


def episode_path(root: str | pathlib.Path, index: int) -> pathlib.Path:
    """``<root>/episodes/episode_NNNNNN.npz``."""
    return pathlib.Path(root) / EPISODE_DIR / f"episode_{index:06d}.npz"


@dataclass(frozen=True)
class CameraInfo:
    """One camera slot: frame size [px] and frame rate [Hz] (≤ the action rate)."""

    height: int
    width: int
    fps: float

    def __post_init__(self) -> None:
        if self.height <= 0 or self.width <= 0 or not self.fps > 0:
            raise DatasetError(f"camera height/width/fps must be positive, got {self}")


@dataclass(frozen=True)
class DatasetInfo:
    """``meta/info.json``: what every episode of the dataset has in common."""

    fps: float  # action rate [Hz]; Δt = 1/fps
    state_names: tuple[str, ...]
    action_names: tuple[str, ...]
    cameras: Mapping[str, CameraInfo]
    prompts: tuple[str, ...]
    generator: Mapping[str, Any] = field(default_factory=dict)  # e.g. {"name": "synthetic", "seed": 0, …}
    num_episodes: int = 0
    num_steps: int = 0

    def __post_init__(self) -> None:
        if not self.fps > 0:
            raise DatasetError(f"fps (the action rate) must be > 0, got {self.fps}")
        for what, names in (("state_names", self.state_names), ("action_names", self.action_names)):
            if not names or len(set(names)) != len(names):
                raise DatasetError(f"{what} must be non-empty and unique, got {names}")
        if not self.cameras:
            raise DatasetError("a dataset needs at least one camera slot")
        for slot, cam in self.cameras.items():
            if cam.fps > self.fps:
                raise DatasetError(f"camera {slot!r}: fps {cam.fps} above the action rate {self.fps}")

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME, "format_version": FORMAT_VERSION, "fps": self.fps,
            "state_names": list(self.state_names), "action_names": list(self.action_names),
            "cameras": {k: {"height": c.height, "width": c.width, "fps": c.fps} for k, c in self.cameras.items()},
            "prompts": list(self.prompts), "num_episodes": self.num_episodes, "num_steps": self.num_steps,
            "generator": dict(self.generator),
        }

    @classmethod
    def from_json(cls, raw: Any, *, where: str) -> DatasetInfo:
        if not isinstance(raw, dict):
            raise DatasetError(f"{where}: expected a JSON object")
        check_known_keys(raw, INFO_KEYS, where=where)
        if raw.get("format") != FORMAT_NAME or raw.get("format_version") != FORMAT_VERSION:
            raise DatasetError(f"{where}: format {raw.get('format')!r} v{raw.get('format_version')}, expected "
                               f"{FORMAT_NAME!r} v{FORMAT_VERSION}")
        try:
            cameras = {}
            for slot, cam in dict(raw["cameras"]).items():
                check_known_keys(cam, CAMERA_KEYS, where=f"{where}: cameras.{slot}")
                cameras[str(slot)] = CameraInfo(int(cam["height"]), int(cam["width"]), float(cam["fps"]))
            return cls(fps=float(raw["fps"]), state_names=tuple(raw["state_names"]),
                       action_names=tuple(raw["action_names"]), cameras=cameras, prompts=tuple(raw["prompts"]),
                       generator=dict(raw.get("generator", {})), num_episodes=int(raw["num_episodes"]),
                       num_steps=int(raw["num_steps"]))
        except KeyError as e:
            raise DatasetError(f"{where}: missing key {e.args[0]!r}") from None
        except (TypeError, ValueError) as e:
            raise DatasetError(f"{where}: {e}") from None


@dataclass(frozen=True, eq=False)
class Episode:
    """One demonstration on the action grid (see the module docstring for shapes and units)."""

    state: np.ndarray  # float32 [T, S]
    actions: np.ndarray  # float32 [T, D]
    frame_index: np.ndarray  # int64 [F]
    images: Mapping[str, np.ndarray]  # slot -> uint8 [F, h, w, 3]
    prompt: str
    success: bool = True
    seed: int = 0

    @property
    def length(self) -> int:
        """T, the number of action steps."""
        return int(self.actions.shape[0])

    def frame_at(self, steps: np.ndarray | int) -> np.ndarray:
        """Index of the latest camera frame taken at or before each action step."""
        return np.searchsorted(self.frame_index, steps, side="right") - 1

    def check(self, info: DatasetInfo, *, where: str, images: bool = True) -> None:
        """Raise DatasetError (naming ``where`` and the key) unless the episode fits ``info`` (``images``: check
        the camera frames too)."""
        t = self.length
        _check_array(self.state, (t, len(info.state_names)), np.floating, "state", where)
        _check_array(self.actions, (t, len(info.action_names)), np.floating, "actions", where)
        if t < 1:
            raise DatasetError(f"{where}: an episode needs at least one action step")
        fi = self.frame_index
        if fi.ndim != 1 or fi.size == 0 or not np.issubdtype(fi.dtype, np.integer):
            raise DatasetError(f"{where}: frame_index must be a non-empty 1-D int array, got {fi.dtype} {fi.shape}")
        if fi[0] != 0 or np.any(np.diff(fi) <= 0) or fi[-1] >= t:
            raise DatasetError(f"{where}: frame_index must start at 0, increase strictly and stay below T = {t}")
        if not images:
            return
        if set(self.images) != set(info.cameras):
            raise DatasetError(f"{where}: camera slots {sorted(self.images)}, the dataset has {sorted(info.cameras)}")
        for slot, cam in info.cameras.items():
            _check_array(self.images[slot], (fi.size, cam.height, cam.width, 3), np.uint8, IMAGE_PREFIX + slot, where)
        if not isinstance(self.prompt, str) or not self.prompt.strip():
            raise DatasetError(f"{where}: prompt must be a non-empty string, got {self.prompt!r}")


def _check_array(x: Any, shape: tuple[int, ...], kind: Any, key: str, where: str) -> None:
    if not isinstance(x, np.ndarray) or tuple(x.shape) != shape or not np.issubdtype(x.dtype, kind):
        got = f"{getattr(x, 'dtype', type(x).__name__)} {getattr(x, 'shape', '')}"
        raise DatasetError(f"{where}: {key} must be {np.dtype(kind).name if kind is np.uint8 else 'float'} "
                           f"{list(shape)}, got {got}")
    if kind is np.floating and not np.all(np.isfinite(x)):
        raise DatasetError(f"{where}: {key} has non-finite values")


def _atomic_write(path: pathlib.Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class DatasetWriter:
    """Creates ``root`` and appends episodes; ``info.json`` is rewritten after every episode.

    Refuses an existing non-empty ``root`` unless ``overwrite`` (then the old episodes are removed) or ``resume``
    (then new episodes are appended after the ones ``meta/episodes.jsonl`` lists, provided the folder was made
    with the same ``info``: rate, names, cameras, prompts and generator).
    """

    def __init__(self, root: str | pathlib.Path, info: DatasetInfo, *, overwrite: bool = False,
                 resume: bool = False) -> None:
        self.root = pathlib.Path(root)
        if overwrite and resume:
            raise DatasetError(f"{self.root}: choose one of overwrite and resume")
        fresh = DatasetInfo(**{**info.__dict__, "num_episodes": 0, "num_steps": 0})
        if self.root.exists() and any(self.root.iterdir()):
            if resume:
                self.info = _resumed_info(self.root, fresh)
                self._write_info()
                return
            if not overwrite:
                raise DatasetError(f"{self.root}: exists and is not empty (choose another folder, resume or overwrite)")
            for old in (self.root / EPISODE_DIR).glob("episode_*.npz"):
                old.unlink()
            (self.root / EPISODES_FILE).unlink(missing_ok=True)
        (self.root / EPISODE_DIR).mkdir(parents=True, exist_ok=True)
        (self.root / "meta").mkdir(parents=True, exist_ok=True)
        self.info = fresh
        self._write_info()

    def add(self, episode: Episode) -> int:
        """Validate and write one episode; returns its index."""
        index = self.info.num_episodes
        path = episode_path(self.root, index)
        episode.check(self.info, where=str(path))
        arrays = {"state": episode.state.astype(np.float32), "actions": episode.actions.astype(np.float32),
                  "frame_index": episode.frame_index.astype(np.int64), "prompt": np.array(episode.prompt),
                  "success": np.array(bool(episode.success)), "seed": np.array(int(episode.seed), np.int64)}
        arrays.update({IMAGE_PREFIX + slot: img for slot, img in episode.images.items()})
        _atomic_write(path, lambda f: np.savez_compressed(f, **arrays))
        line = {"index": index, "length": episode.length, "prompt": episode.prompt,
                "success": bool(episode.success), "seed": int(episode.seed)}
        with open(self.root / EPISODES_FILE, "a") as f:
            f.write(json.dumps(line) + "\n")
        self.info = DatasetInfo(**{**self.info.__dict__, "num_episodes": index + 1,
                                   "num_steps": self.info.num_steps + episode.length})
        self._write_info()
        return index

    def _write_info(self) -> None:
        text = json.dumps(self.info.to_json(), indent=2).encode()
        _atomic_write(self.root / INFO_FILE, lambda f: f.write(text))


def _resumed_info(root: pathlib.Path, fresh: DatasetInfo) -> DatasetInfo:
    """The info of the dataset at ``root`` to append to: it must have been made as ``fresh`` describes. The
    episodes listed in ``meta/episodes.jsonl`` count (an episode file written after the last listed one, by a
    collection stopped between the two writes, is rewritten); a torn last line is dropped."""
    info_path = root / INFO_FILE
    if not info_path.is_file():
        raise DatasetError(f"{info_path}: not found (cannot resume {root}: not a dataset folder)")
    try:
        old = DatasetInfo.from_json(json.loads(info_path.read_text()), where=str(info_path))
    except json.JSONDecodeError as e:
        raise DatasetError(f"{info_path}: cannot parse JSON ({e})") from None
    want, have = fresh.to_json(), old.to_json()
    changed = sorted(k for k in want if k not in ("num_episodes", "num_steps") and want[k] != have[k])
    if changed:
        details = "; ".join(f"{k}: {have[k]!r} in the folder, {want[k]!r} asked" for k in changed)
        raise DatasetError(f"{root}: cannot resume a dataset made differently ({details}); use another folder")
    path = root / EPISODES_FILE
    text = path.read_text() if path.is_file() else ""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines = lines[:-1]  # torn by a stop mid-write
    metas = []
    for n, line in enumerate(lines):
        try:
            raw = json.loads(line)
            if int(raw["index"]) != n:
                raise ValueError(f"index {raw['index']} on line {n + 1}")
            metas.append(int(raw["length"]))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise DatasetError(f"{path}:{n + 1}: bad episode line ({e}); cannot resume") from None
    path.write_text("".join(lines))
    return DatasetInfo(**{**fresh.__dict__, "num_episodes": len(metas), "num_steps": int(sum(metas))})


@dataclass(frozen=True)
class EpisodeMeta:
    """One line of ``meta/episodes.jsonl``."""

    index: int
    length: int
    prompt: str
    success: bool
    seed: int


class EpisodeDataset:
    """Reads a dataset folder: ``info``, ``episodes`` (metadata), ``load(i)`` (one validated ``Episode``)."""

    def __init__(self, root: str | pathlib.Path) -> None:
        self.root = pathlib.Path(root)
        info_path = self.root / INFO_FILE
        if not info_path.is_file():
            raise DatasetError(f"{info_path}: not found ({self.root} is not a dataset folder)")
        try:
            raw = json.loads(info_path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise DatasetError(f"{info_path}: cannot parse JSON ({e})") from None
        self.info = DatasetInfo.from_json(raw, where=str(info_path))
        self.episodes = self._read_episode_lines()
        if len(self.episodes) != self.info.num_episodes:
            raise DatasetError(f"{self.root / EPISODES_FILE}: {len(self.episodes)} episodes listed, info.json "
                               f"says {self.info.num_episodes}")

    def _read_episode_lines(self) -> list[EpisodeMeta]:
        path = self.root / EPISODES_FILE
        if not path.is_file():
            return []
        out = []
        for n, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
                out.append(EpisodeMeta(int(raw["index"]), int(raw["length"]), str(raw["prompt"]),
                                       bool(raw["success"]), int(raw["seed"])))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
                raise DatasetError(f"{path}:{n}: bad episode line ({e})") from None
        return out

    def __len__(self) -> int:
        return len(self.episodes)

    def load(self, index: int, *, images: bool = True) -> Episode:
        """Episode ``index``, validated against ``info``; ``images=False`` skips reading (and decompressing) the
        camera frames (``Episode.images`` is then empty)."""
        path = episode_path(self.root, index)
        if not path.is_file():
            raise DatasetError(f"{path}: episode file not found")
        try:
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files if images or not k.startswith(IMAGE_PREFIX)}
        except Exception as e:  # zipfile/npy errors of a truncated or foreign file
            raise DatasetError(f"{path}: cannot read ({type(e).__name__}: {e})") from None
        try:
            episode = Episode(
                state=data.pop("state"), actions=data.pop("actions"), frame_index=data.pop("frame_index"),
                prompt=str(data.pop("prompt")), success=bool(data.pop("success")), seed=int(data.pop("seed")),
                images={k[len(IMAGE_PREFIX):]: data.pop(k) for k in list(data) if k.startswith(IMAGE_PREFIX)},
            )
        except KeyError as e:
            raise DatasetError(f"{path}: missing key {e.args[0]!r}") from None
        if data:
            raise DatasetError(f"{path}: unknown keys {sorted(data)}")
        episode.check(self.info, where=str(path), images=images)
        return episode

    def __iter__(self) -> Iterator[Episode]:
        for meta in self.episodes:
            yield self.load(meta.index)

    def select(self, *, successful_only: bool = True) -> list[int]:
        """Episode indices to train on (by default only successful demonstrations)."""
        return [m.index for m in self.episodes if m.success or not successful_only]


def split_episodes(indices: Sequence[int], *, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Deterministic (train, validation) split of episode indices; validation gets round(fraction·n) episodes,
    at least one when the fraction is > 0 and there are two or more episodes."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    idx = np.array(sorted(indices))
    n_val = int(round(val_fraction * idx.size))
    if val_fraction > 0 and idx.size >= 2:
        n_val = max(n_val, 1)
    n_val = min(n_val, idx.size - 1) if idx.size else 0
    order = np.random.default_rng(seed).permutation(idx.size)
    val = sorted(idx[order[:n_val]].tolist())
    train = sorted(idx[order[n_val:]].tolist())
    return train, val
