"""The built-in simulation policy: a multimodal two-arm pick-and-place scene with a closed-form flow field.

Scene (per arm; default positions in the simulated rig's frame): an item waits at a pick spot; the arm carries it to one of
several bins (3 by default) and comes back. The observation (TCP poses and gripper widths) does not say
which bin: every bin is equally likely, so the chunk distribution is a mixture over the product of the
per-arm choices (K = 3 × 3 = 9 components for two arms), and two consecutive unguided chunks may pick
different bins — the jump that naive asynchronous chunking suffers and RTC guidance removes.

Each mode is a deterministic rollout from the observed state (``_rollout``), Markov in (position, gripper
width), so a chunk sampled later from a state along the same mode continues the same motion:
- phase from the state: near the bin with the gripper not yet open -> release (brake into the bin, open);
  near the pick spot with the gripper not yet closed -> grasp (brake into the pick spot, close); gripper more open than half -> return to
  the pick spot; otherwise carry to the bin;
- straight-line motion toward the phase's target at speed min(v_max, √(2a·(d_from + d₀)), √(2a·d_to)):
  accelerate away from the nearest waypoint, cruise at v_max (0.25 m/s), brake into the target, never
  above ``max_speed_m_s`` nor ``max_accel_m_s2``; rotation held at the observed value; gripper width
  ramps at ``gripper_speed_m_s``.
The flow field is the exact velocity of a Gaussian mixture around these rollouts (``policy.mixture``):
temporally smooth components (squared-exponential kernel over action steps) with small per-dimension
spreads. Everything lives in model space: x_model = (x_physical − offset) / scale, per dimension.

Axes: b = batch, K = components, H = horizon (action steps), D = 14 action dims (``action_space``),
A = arms (2), M = bins per arm. Flow time: t = 1 is noise, t = 0 is data. Action k is due at t_obs + k·Δt.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rtc_controller.action_space import action_names, arm_slices

from .base import Observation
from .mixture import GaussianMixture, MixtureFlowPolicy, make_mixture

Vec3 = tuple[float, float, float]

NUM_ARMS = 2
POSITION_DIMS = 3
# Default scene [m], in the simulated rig's shared frame (robots/sim.py: homes at y = ∓0.3, z = 0.35): each arm
# picks in front of its home and has three bins on its outer side (left arm: −y, right arm: +y).
ARM_Y_M = (-0.3, 0.3)
PICK_XZ_M = (0.45, 0.15)
BIN_OFFSETS_M: tuple[Vec3, ...] = ((-0.15, 0.25, 0.10), (0.10, 0.30, 0.10), (0.25, 0.05, 0.10))  # y: outward


def _default_pick(arm: int) -> Vec3:
    return (PICK_XZ_M[0], ARM_Y_M[arm], PICK_XZ_M[1])


def _default_bins(arm: int) -> tuple[Vec3, ...]:
    x, y, z = _default_pick(arm)
    out = 1.0 if ARM_Y_M[arm] > 0 else -1.0
    return tuple((x + dx, y + out * dy, z + dz) for dx, dy, dz in BIN_OFFSETS_M)


@dataclass(frozen=True)
class SimPolicyConfig:
    """Scene, motion limits, mixture spreads and normalisation of the simulation policy.

    Positions [m] are per arm (``pick_m[arm]``, ``bins_m[arm][bin]``, in the frame of the arm's TCP state),
    arms ordered as ``action_space`` (left, right). Speeds [m/s], accelerations [m/s²], spreads are marginal standard deviations.
    """

    horizon: int = 100  # H, action steps per chunk
    dt_s: float = 0.02  # Δt, one action step [s] (1 / action_rate_hz)
    pick_m: tuple[Vec3, ...] = (_default_pick(0), _default_pick(1))
    bins_m: tuple[tuple[Vec3, ...], ...] = (_default_bins(0), _default_bins(1))
    max_speed_m_s: float = 0.25  # cruise TCP speed (Flexiv's streaming guidance peaks at 1 m/s)
    max_accel_m_s2: float = 0.5  # TCP acceleration and braking (guidance: 1.5 m/s²)
    start_speed_m_s: float = 0.02  # speed when leaving a waypoint (√(2a·d₀) with d = 0)
    arrive_radius_m: float = 0.005  # within this distance of a target the arm has arrived
    gripper_open_m: float = 0.08  # gripper width when releasing / approaching the item
    gripper_closed_m: float = 0.01  # gripper width holding the item
    # Width rate while grasping / releasing: below the executor's gripper rate limit (0.1 m/s), as the mixture's
    # spread (gripper_std_m) adds up to ~0.03 m/s to the planned rate; planned at the limit, the filter clamped
    # every ramp.
    gripper_speed_m_s: float = 0.08
    gripper_tolerance_m: float = 1e-4  # the gripper has reached its target within this
    position_std_m: float = 0.004  # mixture spread per component, positions
    rotation_std_rad: float = 0.004  # mixture spread, rotation vector
    gripper_std_m: float = 0.002  # mixture spread, gripper width
    length_scale_steps: float = 10.0  # temporal correlation of the spread [action steps]
    # Independent per-step share of the spread's variance: at 2 % the 4 mm spread had 0.6 mm of step-to-step jitter,
    # 3.5 m/s² at 50 Hz, which kept the executor's safety filter (1.5 m/s²) intervening on every tick.
    white_fraction: float = 1e-4
    position_scale_m: float = 0.2  # normalisation: model = (physical − offset)/scale
    rotation_scale_rad: float = 1.0
    mode_weights: tuple[float, ...] | None = None  # per component (K = M^A), None: uniform
    names: tuple[str, ...] = field(default_factory=lambda: action_names("cartesian"))

    def __post_init__(self) -> None:
        if self.horizon < 2:
            raise ValueError(f"horizon must be >= 2 action steps, got {self.horizon}")
        if not self.dt_s > 0:
            raise ValueError(f"dt_s must be > 0, got {self.dt_s}")
        if len(self.names) != NUM_ARMS * 7:
            raise ValueError(f"the sim policy drives the 14-dim two-arm Cartesian layout, got {len(self.names)} names")
        if len(self.pick_m) != NUM_ARMS or len(self.bins_m) != NUM_ARMS:
            raise ValueError(f"need one pick spot and one bin list per arm ({NUM_ARMS} arms)")
        if any(len(p) != POSITION_DIMS for p in self.pick_m) or any(
            len(b) != POSITION_DIMS for bins in self.bins_m for b in bins
        ):
            raise ValueError("pick spots and bins are 3-vectors [m]")
        n_bins = {len(b) for b in self.bins_m}
        if len(n_bins) != 1 or n_bins.pop() < 1:
            raise ValueError("every arm needs the same number (>= 1) of bins")
        positive = {
            "max_speed_m_s": self.max_speed_m_s,
            "max_accel_m_s2": self.max_accel_m_s2,
            "start_speed_m_s": self.start_speed_m_s,
            "arrive_radius_m": self.arrive_radius_m,
            "gripper_speed_m_s": self.gripper_speed_m_s,
            "gripper_tolerance_m": self.gripper_tolerance_m,
            "position_std_m": self.position_std_m,
            "rotation_std_rad": self.rotation_std_rad,
            "gripper_std_m": self.gripper_std_m,
            "length_scale_steps": self.length_scale_steps,
            "position_scale_m": self.position_scale_m,
            "rotation_scale_rad": self.rotation_scale_rad,
        }
        bad = [k for k, v in positive.items() if not (np.isfinite(v) and v > 0)]
        if bad:
            raise ValueError(f"must be finite and > 0: {bad}")
        if self.start_speed_m_s > self.max_speed_m_s:
            raise ValueError("start_speed_m_s must not exceed max_speed_m_s")
        if not 0 < self.white_fraction <= 1:
            raise ValueError(f"white_fraction must be in (0, 1], got {self.white_fraction}")
        if not self.gripper_open_m > self.gripper_closed_m >= 0:
            raise ValueError("need gripper_open_m > gripper_closed_m >= 0")
        if self.mode_weights is not None:
            w = np.asarray(self.mode_weights, float)
            if w.shape != (self.num_components,) or np.any(w < 0) or not np.isfinite(w).all() or w.sum() <= 0:
                raise ValueError(f"mode_weights must be {self.num_components} finite values >= 0 with a positive sum")

    @property
    def bins_per_arm(self) -> int:
        return len(self.bins_m[0])

    @property
    def num_components(self) -> int:
        return self.bins_per_arm**NUM_ARMS

    def offset_scale(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-dimension normalisation ``(offset [D], scale [D])``: model = (physical − offset)/scale."""
        offset, scale = np.zeros(len(self.names)), np.ones(len(self.names))
        half_width = 0.5 * (self.gripper_open_m + self.gripper_closed_m)
        for arm, sl in enumerate(arm_slices("cartesian", NUM_ARMS)):
            offset[sl.position] = self.pick_m[arm]
            scale[sl.position] = self.position_scale_m
            scale[sl.rotation] = self.rotation_scale_rad
            offset[sl.gripper] = half_width
            scale[sl.gripper] = 0.5 * (self.gripper_open_m - self.gripper_closed_m)
        return offset, scale

    def spreads(self) -> np.ndarray:
        """Per-dimension spread of every component in physical units, ``[D]``."""
        sigma = np.zeros(len(self.names))
        for sl in arm_slices("cartesian", NUM_ARMS):
            sigma[sl.position] = self.position_std_m
            sigma[sl.rotation] = self.rotation_std_rad
            sigma[sl.gripper] = self.gripper_std_m
        return sigma


def _rollout(cfg: SimPolicyConfig, position, gripper, pick, bin_, waypoints):
    """One arm, one mode: positions ``[H, 3]`` and gripper widths ``[H]`` for action steps k = 0 … H−1.

    position [3], gripper [] : the observed TCP position [m] and width [m] (a_0 = the observed state).
    pick [3], bin_ [3]: this mode's waypoints; waypoints [M + 1, 3]: all waypoints of the arm (for d_from).
    """
    dt = cfg.dt_s
    half = 0.5 * (cfg.gripper_open_m + cfg.gripper_closed_m)
    start_dist = cfg.start_speed_m_s**2 / (2 * cfg.max_accel_m_s2)

    def step(carry, _):
        p, g = carry
        near_bin = jnp.linalg.norm(bin_ - p) < cfg.arrive_radius_m
        near_pick = jnp.linalg.norm(pick - p) < cfg.arrive_radius_m
        releasing = near_bin & (g < cfg.gripper_open_m - cfg.gripper_tolerance_m)
        grasping = near_pick & (g > cfg.gripper_closed_m + cfg.gripper_tolerance_m) & ~releasing
        returning = ~releasing & ~grasping & (g >= half)
        # Gripper: open while releasing or returning, closed while grasping or carrying.
        g_target = jnp.where(releasing | returning, cfg.gripper_open_m, cfg.gripper_closed_m)
        g_next = g + jnp.clip(g_target - g, -cfg.gripper_speed_m_s * dt, cfg.gripper_speed_m_s * dt)
        # Arm: toward the pick spot while returning or grasping, toward the bin while carrying or releasing
        # (it keeps braking into the target while the gripper works, so it never stops abruptly).
        target = jnp.where(returning | grasping, pick, bin_)
        delta = target - p
        d_to = jnp.linalg.norm(delta)
        d_from = jnp.min(jnp.linalg.norm(waypoints - p, axis=-1))
        speed = jnp.minimum(
            cfg.max_speed_m_s,
            jnp.minimum(
                jnp.sqrt(2 * cfg.max_accel_m_s2 * (d_from + start_dist)),
                jnp.sqrt(2 * cfg.max_accel_m_s2 * d_to),
            ),
        )
        stride = jnp.minimum(speed * dt, d_to)  # never overshoot the target
        p_next = p + jnp.where(d_to > 0, stride / jnp.maximum(d_to, 1e-12), 0.0) * delta
        return (p_next, g_next), (p, g)

    _, (ps, gs) = jax.lax.scan(step, (position, gripper), None, length=cfg.horizon)
    return ps, gs


@dataclass(eq=False)  # hashed by identity: the sampler holds ``velocity`` as a static jit argument
class SimPolicy(MixtureFlowPolicy):
    """FlowPolicy of the simulated two-arm bin scene (see the module docstring)."""

    config: SimPolicyConfig = field(default_factory=SimPolicyConfig)

    def __post_init__(self) -> None:
        cfg = self.config
        self.action_names: tuple[str, ...] = tuple(cfg.names)
        self.horizon: int = cfg.horizon
        self.model_action_dim: int = len(cfg.names)
        self.dt_s: float = cfg.dt_s
        offset, scale = cfg.offset_scale()
        self._offset, self._scale = offset, scale
        self._slices = arm_slices("cartesian", NUM_ARMS)
        # Component k = (bin of the left arm, bin of the right arm), row-major.
        self.modes: tuple[tuple[int, ...], ...] = tuple(itertools.product(range(cfg.bins_per_arm), repeat=NUM_ARMS))
        weights = None if cfg.mode_weights is None else np.asarray(cfg.mode_weights) / np.sum(cfg.mode_weights)
        template = make_mixture(
            np.zeros((cfg.num_components, cfg.horizon, self.model_action_dim)),
            scales=cfg.spreads() / scale,
            length_scale_steps=cfg.length_scale_steps,
            white_fraction=cfg.white_fraction,
            weights=weights,
        )
        self._template = template
        self._prepare_jit = jax.jit(self._context)

    # --- FlowPolicy -------------------------------------------------------------------------------------

    def prepare(self, observation: Observation) -> GaussianMixture:
        """The mixture over chunks for this observation (model space); a pytree with fixed shapes."""
        return self._prepare_jit(jnp.asarray(self._state(observation), jnp.float32))

    # velocity, to_model, to_physical: MixtureFlowPolicy

    # --- helpers ----------------------------------------------------------------------------------------

    def fake_observation(self, stamp_s: float = 0.0) -> Observation:
        """An observation at the pick spots with open grippers (for warm-up and tests)."""
        state = np.zeros(self.model_action_dim)
        for arm, sl in enumerate(self._slices):
            state[sl.position] = self.config.pick_m[arm]
            state[sl.rotation] = (np.pi, 0.0, 0.0)  # tool pointing down
            state[sl.gripper] = self.config.gripper_open_m
        return Observation(state=state, stamp_s=stamp_s)

    def mode_means(self, observation: Observation) -> np.ndarray:
        """The physical mean chunk of every component, ``[K, H, D]`` (component order: ``self.modes``)."""
        ctx = self.prepare(observation)
        return self.to_physical(np.asarray(ctx.means))

    def _state(self, observation: Observation) -> np.ndarray:
        state = np.asarray(observation.state, np.float64).reshape(-1)
        if state.shape[0] < self.model_action_dim:
            raise ValueError(f"state has {state.shape[0]} values, the sim policy needs {self.model_action_dim}")
        state = state[: self.model_action_dim]
        if not np.isfinite(state).all():
            raise ValueError("state is not finite")
        return state

    def _context(self, state: jax.Array) -> GaussianMixture:
        cfg = self.config
        per_arm = []  # [A] of (positions [M, H, 3], grippers [M, H])
        for arm, sl in enumerate(self._slices):
            pick = jnp.asarray(cfg.pick_m[arm], jnp.float32)
            bins = jnp.asarray(cfg.bins_m[arm], jnp.float32)
            waypoints = jnp.concatenate([pick[None], bins])
            roll = jax.vmap(lambda b, sl=sl, pick=pick, wp=waypoints: _rollout(
                cfg, state[sl.position], state[sl.gripper], pick, b, wp
            ))
            per_arm.append(roll(bins))
        means = []
        for combo in self.modes:
            chunk = jnp.broadcast_to(state, (cfg.horizon, self.model_action_dim))  # rotation held
            for arm, (sl, mode) in enumerate(zip(self._slices, combo)):
                ps, gs = per_arm[arm]
                chunk = chunk.at[:, sl.position].set(ps[mode]).at[:, sl.gripper].set(gs[mode])
            means.append(chunk)
        means = (jnp.stack(means) - self._offset.astype(np.float32)) / self._scale.astype(np.float32)
        tpl = self._template
        return GaussianMixture(means, tpl.log_weights, tpl.scales, tpl.basis, tpl.eigenvalues)


def sim_policy_from_params(params: dict[str, Any] | None = None) -> SimPolicy:
    """A SimPolicy from a flat mapping of ``SimPolicyConfig`` fields (unknown keys -> ValueError)."""
    params = dict(params or {})
    known = set(SimPolicyConfig.__dataclass_fields__)
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(f"unknown sim policy parameters {unknown}; known: {sorted(known)}")
    for key in ("pick_m",):
        if key in params:
            params[key] = tuple(tuple(map(float, p)) for p in params[key])
    if "bins_m" in params:
        params["bins_m"] = tuple(tuple(tuple(map(float, b)) for b in arm) for arm in params["bins_m"])
    if "names" in params:
        params["names"] = tuple(params["names"])
    if params.get("mode_weights") is not None:
        params["mode_weights"] = tuple(map(float, params["mode_weights"]))
    return SimPolicy(SimPolicyConfig(**params))
