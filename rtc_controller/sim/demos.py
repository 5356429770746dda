"""Expert demonstrations from the twin, for training (issue 13 owns the dataset writer; this only produces arrays).

``expert_episode(seed)`` runs the scripted expert through the in-process runner (``sim.episode``, d = 0) and
returns per-action-step arrays (state in the executor's action space, the commanded action the executor followed,
time) plus camera frames rendered at ``frame_rate_hz``, the prompt and the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rtc_controller.sim.episode import EpisodeConfig, EpisodeRunner
from rtc_controller.sim.expert import ExpertConfig, plan_chunk
from rtc_controller.sim.scene import CAMERAS
from rtc_controller.sim.world import DOWN_ROTVEC, TwinWorld


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

    def to_episode(self):
        """This demonstration as ``train.dataset.Episode`` (issue 13's format: its ``DatasetWriter`` writes it)."""
        from rtc_controller.train.dataset import Episode

        return Episode(state=self.state.astype(np.float32), actions=self.action.astype(np.float32),
                       frame_index=self.frame_index, images=dict(self.frames), prompt=self.prompt,
                       success=self.success, seed=self.seed)  # fmt: skip


def expert_episode(seed: int, *, world: TwinWorld | None = None, frame_rate_hz: float = 10.0, cameras=CAMERAS,
                   height: int | None = None, width: int | None = None, horizon: int = 50,
                   execution_horizon: int = 10) -> Demonstration:  # fmt: skip
    """One expert episode (see the module docstring); ``frame_rate_hz`` = 0 renders nothing."""
    world = world or TwinWorld()
    ex = ExpertConfig()
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

    def chunk_fn(obs, d, prev):
        return plan_chunk(world.scene, world.task, ex, state=obs.state, priv=world.privileged(), slots=(0, 0),
                          horizon=horizon, dt_s=0.02, rot_ref=np.array([DOWN_ROTVEC] * 2))  # fmt: skip

    runner = EpisodeRunner(world, EpisodeConfig(horizon=horizon, execution_horizon=execution_horizon, record=True))
    res = runner.run(seed, chunk_fn, on_tick=on_tick)
    if renderer is not None:
        renderer.close()
    rec = res.record or {}
    return Demonstration(seed, rec["state"], rec["action"], rec["t"],
                         {k: np.array(v) for k, v in frames.items() if v}, np.array(frame_t),
                         world.task.prompt, res.success, res.reason)  # fmt: skip
