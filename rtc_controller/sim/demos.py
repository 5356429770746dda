"""Expert demonstrations from the twin, for training (``train/collect.py`` writes them as the episode dataset).

``expert_episode(seed)`` runs the scripted expert through the in-process runner (``sim.episode``: the executor core
with the twin executor's configuration, the inference loop, d = 0) and returns per-action-step arrays (state in the
executor's action space, the action the executor followed, time) plus camera frames rendered at
``frame_rate_hz``, the prompt and the outcome.

Perturbed demonstrations (``Perturbation``, DART: Laskey et al., 2017): the executed chunks carry a random,
smoothly ramped TCP offset, while the recorded action is the expert's clean plan from the state it actually
visited. The data then shows how to come back from the small errors a learned policy makes; it never shows the
offset itself as the expert's intention.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rtc_controller.control.executor_types import ExecutorConfig
from rtc_controller.policy.inference_loop import InferenceLoop, LoopSettings
from rtc_controller.sim.episode import TCP_COLUMNS, EpisodeConfig, EpisodeRunner
from rtc_controller.sim.expert import ExpertConfig, plan_chunk
from rtc_controller.sim.scene import CAMERAS
from rtc_controller.sim.world import DOWN_ROTVEC, TwinWorld


PERTURBATION_STREAM = 7  # the perturbations' random stream, apart from the task instance's (same seed)


@dataclass
class Demonstration:
    """state/action ``[T, 14]`` at the action rate, t_s ``[T]``; frames: slot -> uint8 ``[F, h, w, 3]`` at
    frame_t_s ``[F]``; prompt; success and reason from the task monitor."""

    seed: int
    state: np.ndarray
    action: np.ndarray
    t_s: np.ndarray
    frames: dict[str, np.ndarray]
    frame_t_s: np.ndarray
    prompt: str
    success: bool
    reason: str
    dt_s: float = 0.02

    @property
    def frame_index(self) -> np.ndarray:
        """The action step of each frame, ``[F]`` (frames are rendered on the action grid)."""
        return np.round(self.frame_t_s / self.dt_s).astype(np.int64)


@dataclass(frozen=True)
class Perturbation:
    """With ``probability`` per chunk, a TCP offset per arm drawn from N(0, sigma_m²) per axis [m] is added to the
    executed chunk as a bump, sin²(π·k/s) over its s executed steps (0 at both ends: no command step, and the
    next plan starts on the expert's path, so its phases and thresholds still progress); sigma_m = 0: none.
    Deterministic from the episode's seed."""

    sigma_m: float = 0.0
    probability: float = 0.5

    def __post_init__(self) -> None:
        if not (self.sigma_m >= 0 and 0 <= self.probability <= 1):
            raise ValueError(f"perturbation: need sigma_m >= 0 and probability in [0, 1], got {self.sigma_m}, "
                             f"{self.probability}")  # fmt: skip

    def offsets(self, rng: np.random.Generator, *, horizon: int, execution_horizon: int, num_arms: int) -> np.ndarray:
        """The offsets ``[H, arms, 3]`` of one chunk [m] (zeros when this chunk is not perturbed)."""
        amplitude = rng.normal(0.0, self.sigma_m, (1, num_arms, 3))
        if rng.random() >= self.probability:
            return np.zeros((horizon, num_arms, 3))
        bump = np.sin(np.pi * np.minimum(np.arange(horizon) / execution_horizon, 1.0)) ** 2
        return bump[:, None, None] * amplitude


def clean_labels(record: dict[str, np.ndarray], clean: dict[float, np.ndarray], dt_s: float) -> np.ndarray:
    """The expert's clean plan at each recorded step ``[T, D]``: action k of the chunk the executor followed
    (``record["active_t_obs"]``), the followed target where no chunk was active yet."""
    labels = np.array(record["action"], float)
    for i, (t, t_obs) in enumerate(zip(record["t"], record["active_t_obs"])):
        chunk = clean.get(float(t_obs)) if np.isfinite(t_obs) else None
        if chunk is not None:
            labels[i] = chunk[min(int(round((t - t_obs) / dt_s)), len(chunk) - 1)]
    return labels


def expert_episode(seed: int, *, executor: ExecutorConfig, world: TwinWorld | None = None, frame_rate_hz: float = 10.0,
                   cameras=CAMERAS, height: int | None = None, width: int | None = None, execution_horizon: int = 10,
                   perturbation: Perturbation = Perturbation()) -> Demonstration:  # fmt: skip
    """One expert episode (see the module docstring) with the executor configuration ``executor`` (its H and Δt
    are the plans'); ``frame_rate_hz`` = 0 renders nothing."""
    world = world or TwinWorld()
    ex = ExpertConfig()
    horizon, dt = executor.timeline.max_horizon, executor.timeline.dt_s
    renderer = None
    if frame_rate_hz > 0 and cameras:
        from rtc_controller.sim.render import CameraRenderer

        renderer = CameraRenderer(world.model, world.scene, height=height, width=width)
    frames: dict[str, list] = {c: [] for c in cameras}
    frame_t: list[float] = []

    def on_tick(t: float) -> None:
        if renderer is not None and t + 1e-9 >= len(frame_t) / frame_rate_hz:
            for slot, f in renderer.render_world(world, cameras).items():
                frames[slot].append(f)
            frame_t.append(t)

    clean: dict[float, np.ndarray] = {}
    rng = np.random.default_rng([seed, PERTURBATION_STREAM])

    def make_chunk(obs, plan):
        chunk = plan_chunk(world.scene, world.task, ex, state=obs.state, priv=world.privileged(), slots=(0, 0),
                           horizon=horizon, dt_s=dt, rot_ref=np.array([DOWN_ROTVEC] * 2))  # fmt: skip
        if not perturbation.sigma_m:
            return chunk
        clean[float(obs.stamp_s)] = chunk
        executed = chunk.copy()
        offsets = perturbation.offsets(rng, horizon=horizon, execution_horizon=execution_horizon, num_arms=2)
        executed[:, TCP_COLUMNS] += offsets.reshape(horizon, -1)
        return executed

    runner = EpisodeRunner(world, executor, EpisodeConfig(record=True))
    res = runner.run(seed, loop=InferenceLoop(horizon, dt), make_chunk=make_chunk, on_tick=on_tick,
                     settings=LoopSettings(execution_horizon=execution_horizon, mode="none"))  # fmt: skip
    if renderer is not None:
        renderer.close()
    rec = res.record or {}
    actions = clean_labels(rec, clean, dt) if perturbation.sigma_m else rec["action"]
    return Demonstration(seed, rec["state"], actions, rec["t"],
                         {k: np.array(v) for k, v in frames.items() if v}, np.array(frame_t),
                         world.task.prompt, res.success, res.reason, dt_s=dt)  # fmt: skip
