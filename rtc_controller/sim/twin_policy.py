"""Flow policies of the twin before any π0.5 exists: the exact flow field of a Gaussian mixture centred on the
scripted expert's candidate chunks, built from privileged state (``policy.mixture``).

- ``twin``: one component per bin-slot choice of each arm (``expert.NUM_SLOTS``² = 4 components, weights
  ``slot_weights`` per arm, multiplied): multimodal, so unguided consecutive chunks may pick different bins;
- ``twin_expert``: one component, slot 0 for both arms (the expert as a flow policy, nearly deterministic).

Privileged state comes from a ``source`` with ``at(observation) -> expert.Privileged``: the world itself in the
in-process runner (``WorldSource``), or the shared-memory snapshot the ``mujoco`` driver writes
(``SnapshotSource``, the default: the inference node's process has no world). Rotations are held pointing down
(the expert never turns the wrist). Normalisation: model = (physical − offset)/scale per dimension.

Axes: K components, H horizon [action steps], D = 14. Flow time: t = 1 noise, t = 0 data.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any

import jax.numpy as jnp
import numpy as np

from rtc_controller.action_space import action_names, arm_slices
from rtc_controller.geometry import so3
from rtc_controller.policy.base import Observation
from rtc_controller.policy.mixture import GaussianMixture, MixtureFlowPolicy, make_mixture
from rtc_controller.sim.expert import NUM_SLOTS, ExpertConfig, plan_chunk, privileged_from_sample
from rtc_controller.sim.scene import ARMS, SceneConfig
from rtc_controller.sim.task import TaskConfig

DOWN_ROTVEC = (0.0, np.pi, 0.0)
POSITION_OFFSET_M = (0.55, 0.0, 0.15)
SNAPSHOT_WAIT_S = 30.0


class WorldSource:
    """Privileged state from an in-process ``TwinWorld`` (valid when the world is at the observation's time)."""

    def __init__(self, world) -> None:
        self.world = world

    def config(self) -> tuple[SceneConfig, TaskConfig]:
        return self.world.scene, self.world.task

    def at(self, observation: Observation):
        return self.world.privileged()


class SnapshotSource:
    """Privileged state from the world snapshot (``sim.snapshot``), advanced to the observation's t_obs."""

    def __init__(self, name: str | None = None, *, wait_s: float = SNAPSHOT_WAIT_S) -> None:
        from rtc_controller.sim.snapshot import SnapshotReader

        self.reader = SnapshotReader(name, wait_s=wait_s)
        self.scene, self.task, self.instance = self.reader.world()

    def config(self) -> tuple[SceneConfig, TaskConfig]:
        return self.scene, self.task

    def at(self, observation: Observation):
        sample = self.reader.read()
        if sample is None:
            raise RuntimeError("the twin world snapshot has no sample yet")
        offset = time.time() - time.monotonic()  # executor clock = monotonic + this (same rule in every process)
        t_ep = sample.t_episode_s - (sample.t_mono_s + offset - observation.stamp_s)
        return privileged_from_sample(sample, self.scene, self.instance, t_episode_s=t_ep)


@dataclass(frozen=True)
class TwinPolicyConfig:
    """horizon H, dt_s Δt, the component choice (``expert_only``: one component, slot 0), spreads [m] of each
    component, the temporal correlation [action steps], per-slot weights (per arm; multiplied)."""

    horizon: int = 50
    dt_s: float = 0.02
    names: tuple[str, ...] = field(default_factory=lambda: action_names("cartesian"))
    expert_only: bool = False
    position_std_m: float = 0.003
    rotation_std_rad: float = 0.003
    gripper_std_m: float = 0.001
    length_scale_steps: float = 10.0
    # Independent per-step jitter, as a fraction of the variance: the mixture's default (2 %) gives the 3 mm spread
    # 0.4 mm of step-to-step jitter, 2.6 m/s² of acceleration at 50 Hz, beyond the executor's limit (1.5 m/s²).
    white_fraction: float = 1e-4
    slot_weights: tuple[float, ...] = (0.5, 0.5)
    expert: ExpertConfig = ExpertConfig()

    def __post_init__(self) -> None:
        if self.horizon < 2 or not self.dt_s > 0:
            raise ValueError("twin policy: need horizon >= 2 and dt_s > 0")
        if tuple(self.names) != action_names("cartesian"):
            raise ValueError("twin policy: drives the 14-dim two-arm Cartesian layout")
        if len(self.slot_weights) != NUM_SLOTS or min(self.slot_weights) < 0 or sum(self.slot_weights) <= 0:
            raise ValueError(f"twin policy: slot_weights needs {NUM_SLOTS} weights >= 0 with a positive sum")


@dataclass(eq=False)  # hashed by identity: the sampler holds ``velocity`` as a static jit argument
class TwinMixturePolicy(MixtureFlowPolicy):
    """FlowPolicy of the twin (see the module docstring)."""

    config: TwinPolicyConfig = field(default_factory=TwinPolicyConfig)
    source: Any = None

    def __post_init__(self) -> None:
        cfg = self.config
        if self.source is None:
            self.source = SnapshotSource()
        self.scene, self.task = self.source.config()
        self.action_names = tuple(cfg.names)
        self.horizon = cfg.horizon
        self.model_action_dim = len(cfg.names)
        self.dt_s = cfg.dt_s
        self.modes = ((0,) * len(ARMS),) if cfg.expert_only else tuple(itertools.product(range(NUM_SLOTS), repeat=len(ARMS)))
        w = np.array([np.prod([cfg.slot_weights[s] for s in m]) for m in self.modes])
        offset, scale, sigma = np.zeros(14), np.ones(14), np.zeros(14)
        for sl in arm_slices("cartesian", len(ARMS)):
            offset[sl.position], scale[sl.position], sigma[sl.position] = POSITION_OFFSET_M, 0.2, cfg.position_std_m
            offset[sl.rotation], sigma[sl.rotation] = DOWN_ROTVEC, cfg.rotation_std_rad
            offset[sl.gripper], scale[sl.gripper], sigma[sl.gripper] = 0.05, 0.03, cfg.gripper_std_m
        self._offset, self._scale = offset, scale
        self._template = make_mixture(np.zeros((len(self.modes), cfg.horizon, 14)), scales=sigma / scale,
                                      length_scale_steps=cfg.length_scale_steps, weights=w / w.sum(),
                                      white_fraction=cfg.white_fraction)  # fmt: skip

    def candidate_chunks(self, observation: Observation) -> np.ndarray:
        """The expert's chunk per component ``[K, H, 14]`` (physical)."""
        priv = self.source.at(observation)
        state = np.asarray(observation.state, float)
        rot = np.array([so3.rotvec_near_s(DOWN_ROTVEC, tuple(state[7 * a + 3 : 7 * a + 6])) for a in range(len(ARMS))])
        return np.stack([plan_chunk(self.scene, self.task, self.config.expert, state=state, priv=priv, slots=m,
                                    horizon=self.horizon, dt_s=self.dt_s, rot_ref=rot) for m in self.modes])  # fmt: skip

    def prepare(self, observation: Observation) -> GaussianMixture:
        means = (self.candidate_chunks(observation) - self._offset) / self._scale
        t = self._template
        return GaussianMixture(jnp.asarray(means, jnp.float32), t.log_weights, t.scales, t.basis, t.eigenvalues)

    # velocity, to_model, to_physical: MixtureFlowPolicy


def twin_policy_from_params(params: dict[str, Any], *, expert_only: bool = False) -> TwinMixturePolicy:
    """A twin policy from ``horizon``, ``dt_s``, ``names`` (+ ``source``, or ``snapshot``: the name of the world
    snapshot to read, '' = the default; other keys -> ValueError)."""
    params = dict(params)
    source = params.pop("source", None)
    snapshot = params.pop("snapshot", "")
    known = {"horizon", "dt_s", "names", "position_std_m", "slot_weights"}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(f"unknown twin policy parameters {unknown}; known: {sorted(known | {'source', 'snapshot'})}")
    if source is None and snapshot:
        source = SnapshotSource(snapshot)
    if "names" in params:
        params["names"] = tuple(params["names"])
    return TwinMixturePolicy(TwinPolicyConfig(expert_only=expert_only, **params), source=source)
