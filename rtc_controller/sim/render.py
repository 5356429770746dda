"""Offscreen rendering of the twin's cameras (``base_0_rgb``, ``left_wrist_0_rgb``, ``right_wrist_0_rgb``).

MuJoCo's offscreen context needs an OpenGL backend: ``MUJOCO_GL=egl`` (Mesa's EGL renders on the CPU where there is
no GPU; ``make setup`` installs it) or ``osmesa``. This module sets ``MUJOCO_GL=egl`` unless the environment
chose one. The renderer owns its own ``MjData``: the world's state is copied in (``render_world``) or set from a
snapshot (``render_sample``), so rendering never touches the physics loop's data. (``rtc_controller.sim`` sets
``MUJOCO_GL`` before MuJoCo is imported.)
"""

from __future__ import annotations

import mujoco
import numpy as np

from rtc_controller.sim.scene import CAMERAS, SceneConfig


class CameraRenderer:
    """Renders camera slots at ``scene.camera_height_px`` × ``camera_width_px`` (uint8 RGB ``[h, w, 3]``)."""

    def __init__(self, model: mujoco.MjModel, scene: SceneConfig, *, height: int | None = None, width: int | None = None) -> None:
        self.model = model
        self.data = mujoco.MjData(model)
        self.height = height or scene.camera_height_px
        self.width = width or scene.camera_width_px
        self.renderer = mujoco.Renderer(model, self.height, self.width)
        self.camera_ids = {c: mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, c) for c in CAMERAS}

    def render(self, slots=CAMERAS) -> dict[str, np.ndarray]:
        """Frames of ``slots`` from the renderer's current data (call ``mj_forward``-style kinematics first)."""
        out = {}
        for slot in slots:
            if slot not in self.camera_ids:
                raise ValueError(f"unknown camera slot {slot!r}; the twin has {CAMERAS}")
            self.renderer.update_scene(self.data, camera=self.camera_ids[slot])
            out[slot] = self.renderer.render().copy()
        return out

    def set_state(self, qpos: np.ndarray, mocap_pos: np.ndarray) -> None:
        self.data.qpos[:] = qpos
        self.data.mocap_pos[:] = mocap_pos
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_camlight(self.model, self.data)  # camera and light poses

    def render_world(self, world, slots=CAMERAS) -> dict[str, np.ndarray]:
        self.set_state(world.data.qpos, world.data.mocap_pos)
        return self.render(slots)

    def render_sample(self, sample, slots=CAMERAS) -> dict[str, np.ndarray]:
        self.set_state(sample.qpos, sample.mocap_pos)
        return self.render(slots)

    def close(self) -> None:
        self.renderer.close()
