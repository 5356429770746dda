"""``rtc-train collect``: expert demonstrations from the MuJoCo twin, written as the episode dataset (``dataset.py``).

Episode i is the twin's scripted expert (``sim.demos.expert_episode``: privileged state, first reachable bin per
arm, replanning every ``execution_horizon`` action steps) on the task instance of twin seed ``seed + i`` (item
positions and conveyor phase), run by the in-process episode runner (the executor core configured from
``config/twin.yaml``'s executor node at its servo rate, the world's physics and Cartesian controller) until the task
monitor decides the episode. Recorded per action
step: the measured state and the commanded action (the executor's action space); camera frames rendered by the
twin's cameras at ``camera_rate_hz``; the task's prompt; the outcome (failed demonstrations are kept, marked, and
left out of training by ``fit``).

Deterministic: every episode is a pure function of (its twin seed, the world file, this config), so a collection
stopped at any point and resumed (``resume=True``) gives the same files as one that never stopped.

Seeds: the default first seed is ``DEFAULT_SEED`` (1000), so ``rtc-eval``'s seeds (0 … N − 1) are task
instances the policy never saw in training.
"""

from __future__ import annotations

import hashlib
import pathlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rtc_controller.action_space import action_names
from rtc_controller.sim.scene import CAMERAS
from rtc_controller.train.dataset import CameraInfo, DatasetInfo, DatasetWriter, Episode

if TYPE_CHECKING:
    from rtc_controller.sim.demos import Demonstration

GENERATOR_NAME = "twin_expert"
DEFAULT_SEED = 1000  # first twin seed of a collection (rtc-eval evaluates seeds 0 … N − 1: kept out of training)
MAX_SEED_OFFSET = 2**31  # twin seeds must stay in NumPy's seed range
ACTION_RATE_HZ = 50.0  # the expert plans on the twin's 20 ms action grid (``sim.demos``)
PERTURB_CHOICE_STREAM = 11  # random stream that picks the perturbed episodes (apart from the task instance's)


@dataclass(frozen=True)
class CollectConfig:
    """What a twin collection records. Units: rates [Hz], sizes [px], horizons [action steps].

    image_height/width 0: the world's camera size (``SceneConfig.camera_height_px``, what ``twin_node`` and
    ``rtc-eval`` render); twin_config: the world file (``config/twin_world.yaml`` layout; '' = the defaults);
    perturb_sigma_m [m] > 0: that fraction of the episodes (``perturb_fraction``, drawn per episode from its seed)
    is perturbed (``sim.demos.Perturbation``: recovery demonstrations)."""

    def perturbation(self, twin_seed: int):
        """The perturbation of the episode of ``twin_seed`` (none for the unperturbed ones)."""
        import numpy as np

        from rtc_controller.sim.demos import Perturbation

        chosen = np.random.default_rng([twin_seed, PERTURB_CHOICE_STREAM]).random() < self.perturb_fraction
        return Perturbation(self.perturb_sigma_m if chosen else 0.0)

    num_episodes: int = 100
    seed: int = DEFAULT_SEED
    camera_rate_hz: float = 10.0
    cameras: tuple[str, ...] = CAMERAS
    image_height: int = 0
    image_width: int = 0
    horizon: int = 50
    execution_horizon: int = 10
    twin_config: str = ""
    perturb_sigma_m: float = 0.0
    perturb_fraction: float = 0.5

    def __post_init__(self) -> None:
        if not (self.perturb_sigma_m >= 0 and 0 <= self.perturb_fraction <= 1):
            raise ValueError(f"collect: perturb_sigma_m must be >= 0 and perturb_fraction in [0, 1], got "
                             f"{self.perturb_sigma_m}, {self.perturb_fraction}")  # fmt: skip
        if self.num_episodes < 1:
            raise ValueError(f"collect: need at least one episode, got {self.num_episodes}")
        if not 0 <= self.seed < MAX_SEED_OFFSET:
            raise ValueError(f"collect: seed must be in [0, 2^31), got {self.seed}")
        if not 0 < self.camera_rate_hz <= ACTION_RATE_HZ:
            raise ValueError(f"collect: camera_rate_hz must be in (0, {ACTION_RATE_HZ:g}], got {self.camera_rate_hz}")
        unknown = [c for c in self.cameras if c not in CAMERAS]
        if not self.cameras or unknown:
            raise ValueError(f"collect: cameras must be among the twin's {CAMERAS}, got {list(self.cameras)}")
        if self.image_height < 0 or self.image_width < 0 or (self.image_height == 0) != (self.image_width == 0):
            raise ValueError("collect: image_height and image_width are both 0 (the world's size) or both positive")
        if not 1 <= self.execution_horizon <= self.horizon:
            raise ValueError(f"collect: execution_horizon must be in [1, horizon = {self.horizon}]")


def world_file_digest(path: str) -> str:
    """sha256 of the world file ('' for the defaults): a resumed collection must run the same world."""
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()[:16] if path else ""


def dataset_info(cfg: CollectConfig, *, scene, task) -> DatasetInfo:
    """The dataset's ``info.json`` for ``cfg`` and the world's ``scene``/``task`` (frame size, prompt)."""
    names = action_names("cartesian")
    h = cfg.image_height or scene.camera_height_px
    w = cfg.image_width or scene.camera_width_px
    generator = {"name": GENERATOR_NAME, "seed": cfg.seed, "camera_rate_hz": cfg.camera_rate_hz,
                 "horizon": cfg.horizon, "execution_horizon": cfg.execution_horizon,
                 "twin_config": cfg.twin_config, "twin_config_sha256": world_file_digest(cfg.twin_config),
                 "perturb_sigma_m": cfg.perturb_sigma_m, "perturb_fraction": cfg.perturb_fraction}
    return DatasetInfo(fps=ACTION_RATE_HZ, state_names=names, action_names=names,
                       cameras={c: CameraInfo(h, w, cfg.camera_rate_hz) for c in cfg.cameras},
                       prompts=(task.prompt,), generator=generator)


def generator_command(info: DatasetInfo, root: str | pathlib.Path) -> str:
    """The ``rtc-train`` command that writes the dataset ``info`` describes (for the record of a trained policy;
    '' for a generator other than the twin's expert or ``synthetic``)."""
    import shlex

    gen = dict(info.generator)
    cams = ",".join(info.cameras)
    cam = next(iter(info.cameras.values()))
    if gen.get("name") == GENERATOR_NAME:
        args = ["rtc-train", "collect", str(root), "--episodes", str(info.num_episodes), "--seed", str(gen["seed"]),
                "--camera-rate", f"{gen['camera_rate_hz']:g}", "--image-size", f"{cam.height}x{cam.width}",
                "--cameras", cams, "--execution-horizon", str(gen["execution_horizon"])]
        if gen.get("twin_config"):
            args += ["--twin-config", str(gen["twin_config"])]
        if gen.get("perturb_sigma_m"):
            args += ["--perturb", f"{gen['perturb_sigma_m']:g}", "--perturb-fraction", f"{gen['perturb_fraction']:g}"]
        return shlex.join(args)
    if gen.get("name") == "synthetic":
        return shlex.join(["rtc-train", "synthetic", str(root), "--episodes", str(info.num_episodes), "--steps",
                           str(gen["episode_steps"]), "--fps", f"{info.fps:g}", "--camera-every",
                           str(gen["camera_every"]), "--image-size", f"{cam.height}x{cam.width}", "--cameras", cams,
                           "--seed", str(gen["seed"])])
    return ""


@dataclass(frozen=True)
class CollectResult:
    info: DatasetInfo
    new_episodes: int  # written by this call (a resumed collection skips the ones already there)
    successes: int  # successful episodes in the whole dataset


def demo_to_episode(demo: Demonstration) -> Episode:
    """A twin demonstration as a ``train.dataset.Episode`` (float32 state and
    actions ``[T, action_dim]``, frames on the 20 ms action grid), what ``DatasetWriter`` writes."""
    import numpy as np

    return Episode(state=demo.state.astype(np.float32), actions=demo.action.astype(np.float32),
                   frame_index=demo.frame_index, images=dict(demo.frames), prompt=demo.prompt,
                   success=demo.success, seed=demo.seed)  # fmt: skip


def collect_twin_dataset(root: str | pathlib.Path, cfg: CollectConfig, *, overwrite: bool = False,
                         resume: bool = False, progress: Callable[[int, int, bool], None] | None = None) -> CollectResult:
    """Write ``cfg.num_episodes`` expert episodes to ``root`` (see the module docstring); ``progress(i, n, ok)``
    after each new episode. ``resume`` continues a stopped collection made with the same config."""
    from rtc_controller.control.executor_params import build_config
    from rtc_controller.sim.demos import expert_episode
    from rtc_controller.sim.twin_config import load_twin_config, twin_executor_values
    from rtc_controller.sim.world import TwinWorld
    from rtc_controller.train.dataset import EpisodeDataset

    scene, task = load_twin_config(cfg.twin_config)
    info = dataset_info(cfg, scene=scene, task=task)
    writer = DatasetWriter(root, info, overwrite=overwrite, resume=resume)
    start = writer.info.num_episodes
    if start > cfg.num_episodes:
        raise ValueError(f"{root}: already holds {start} episodes, more than the {cfg.num_episodes} asked for")
    world = TwinWorld(scene=scene, task=task)
    executor = build_config(twin_executor_values(horizon=cfg.horizon, execution_horizon=cfg.execution_horizon,
                                                 action_rate_hz=ACTION_RATE_HZ))  # fmt: skip
    for i in range(start, cfg.num_episodes):
        demo = expert_episode(cfg.seed + i, executor=executor, world=world, frame_rate_hz=cfg.camera_rate_hz,
                              cameras=cfg.cameras, height=info.cameras[cfg.cameras[0]].height,
                              width=info.cameras[cfg.cameras[0]].width, execution_horizon=cfg.execution_horizon,
                              perturbation=cfg.perturbation(cfg.seed + i))
        writer.add(demo_to_episode(demo))
        if progress is not None:
            progress(i, cfg.num_episodes, demo.success)
    successes = sum(m.success for m in EpisodeDataset(root).episodes)
    return CollectResult(writer.info, cfg.num_episodes - start, successes)
