"""The chunk timeline: holds the active chunk, validates and schedules new ones, samples the command for "now".

Axis legend: h = horizon (action steps), ad = action dimension, n = arms.
Time convention (DESIGN.md, "Time and indices"): action k of a chunk is due at ``t_obs + k·dt`` [s, executor
clock], dt = 1/action_rate_hz. A chunk that arrives at ``t_arrival`` switches in at the first action boundary not
yet started, ``k* = ceil((t_arrival − t_obs)/dt)``: actions 0…k*−1 are frozen (the old chunk executes them), the
old chunk stays in command until ``t_switch = t_obs + k*·dt`` and the new chunk takes over from a_{k*}.

Between action steps the command is interpolated (``control/interpolation.py``): by default a cubic Hermite curve
through the actions, velocity-continuous inside a chunk, rotations on SO(3) (never component-wise on rotation
vectors); ``linear`` interpolates linearly and slerps. Past the last action the last command is held and the
timeline reports starvation.

Threads: ``check`` runs in the subscriber's thread (validation + precomputation, may allocate); ``accept`` and
``sample`` run in the loop thread and only touch preallocated buffers plus a few tiny temporaries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np

from rtc_controller.action_space import ActionSpaceKind, arm_slices
from rtc_controller.geometry import so3
from rtc_controller.control.chunk import Chunk
from rtc_controller.control.interpolation import INTERPOLATIONS, Interpolation, Segments, evaluate, prepare_segments

RejectReason = Literal[
    "names", "dimension", "too_short", "non_finite", "magnitude", "time_base", "older", "stale", "future"
]
REJECT_REASONS: tuple[str, ...] = get_args(RejectReason)
MIN_POINTS = 2
# A float in (t − t_obs)/dt that lands a hair above an integer must not push k* one step later.
INDEX_EPS = 1e-9
# Magnitudes no policy produces (a huge finite value, 1e155, jammed every later tick with overflow errors):
POSITION_MARGIN_M = 1.0  # a chunk position may lie this far outside its arm's workspace box (the filter clamps)
MAX_ABS_POSITION_M = 10.0  # without workspace boxes: |x|, |y|, |z| in the world frame
# Rotation vectors: unwrapped angles (|r| > π) are legitimate and slerped correctly; past this, sin/cos lose
# precision and no policy emits it.
MAX_ROTATION_RAD = 1000.0
MAX_ABS_JOINT_RAD = 4.0 * math.pi  # beyond two turns either way: no arm's joint range
MAX_ABS_GRIPPER_M = 1.0


@dataclass(frozen=True)
class TimelineConfig:
    """Static description of the chunks the timeline accepts.

    Attributes:
        names: expected action names, in order.
        action_rate_hz: 1/dt [Hz]; chunks must be spaced by dt within ``time_base_rel_tol``.
        max_horizon: the longest chunk accepted [steps] (buffers are sized for it).
        kind: "cartesian" (rotations slerped) or "joint" (all linear).
        future_tolerance_s: a chunk stamped later than its arrival by more than this is rejected.
        time_base_rel_tol: relative tolerance on the chunk's dt.
        workspace_boxes_m: per arm (lo x, lo y, lo z, hi x, hi y, hi z) [m, world frame]: chunk positions beyond
            the box by more than ``POSITION_MARGIN_M`` are refused as implausible (``()``: ±MAX_ABS_POSITION_M).
        interpolation: between action steps, ``cubic`` (velocity-continuous) or ``linear``.
    """

    names: tuple[str, ...]
    action_rate_hz: float
    max_horizon: int
    kind: ActionSpaceKind = "cartesian"
    future_tolerance_s: float = 0.05
    time_base_rel_tol: float = 0.01
    workspace_boxes_m: tuple[tuple[float, ...], ...] = ()
    interpolation: Interpolation = "cubic"

    def __post_init__(self) -> None:
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {self.interpolation!r}")
        width = 7 if self.kind == "cartesian" else 8
        if not self.names or len(self.names) % width:
            raise ValueError(f"{len(self.names)} action names is not a whole number of {self.kind} arms ({width} each)")
        if len(set(self.names)) != len(self.names):
            raise ValueError("action names must be unique")
        if not (self.action_rate_hz > 0 and math.isfinite(self.action_rate_hz)):
            raise ValueError(f"action_rate_hz must be > 0, got {self.action_rate_hz}")
        if self.max_horizon < MIN_POINTS:
            raise ValueError(f"max_horizon must be >= {MIN_POINTS}, got {self.max_horizon}")
        if self.future_tolerance_s < 0 or self.time_base_rel_tol < 0:
            raise ValueError("tolerances must be >= 0")
        if self.workspace_boxes_m and (len(self.workspace_boxes_m) != self.num_arms
                                       or any(len(b) != 6 for b in self.workspace_boxes_m)):  # fmt: skip
            raise ValueError("workspace_boxes_m needs one (lo x, lo y, lo z, hi x, hi y, hi z) per arm")

    @property
    def dt_s(self) -> float:
        return 1.0 / self.action_rate_hz

    @property
    def num_arms(self) -> int:
        return len(self.names) // (7 if self.kind == "cartesian" else 8)


@dataclass(frozen=True)
class Rejection:
    """Why a chunk was refused: one of REJECT_REASONS plus a human-readable detail."""

    reason: RejectReason
    detail: str


@dataclass(frozen=True, eq=False)
class PreparedChunk:
    """A validated chunk with everything the loop needs precomputed (built off the hot path).

    Attributes:
        chunk: the source chunk.
        t_arrival_s: arrival time on the executor clock [s].
        delay_s: δ = t_arrival − t_obs [s].
        k_star: first action executed from this chunk, ceil(δ/dt) (≥ 0).
        t_switch_s: t_obs + k*·dt [s].
        segments: the actions prepared for interpolation (plain floats: the hot path avoids numpy's per-call cost).
    """

    chunk: Chunk
    t_arrival_s: float
    delay_s: float
    k_star: int
    t_switch_s: float
    segments: Segments


@dataclass(frozen=True)
class SwitchEvent:
    """Reported once per switch, at the switch instant ``t_switch_s``.

    ``jump`` is new − old command at t_switch ``[ad]`` with rotation columns replaced by the body-frame rotation
    vector from old to new; the per-arm maxima summarise it. ``from_hold``: no chunk was active before (the first
    chunk after start or reset), so "old" is the held pose, not a chunk; the safety filter rate-limits that approach.
    """

    t_switch_s: float
    t_obs_s: float
    delay_s: float
    k_star: int
    guided_d: int | None
    jump: np.ndarray
    jump_linear_m: float
    jump_angular_rad: float
    jump_gripper_m: float
    from_hold: bool = False

    @property
    def jump_norm(self) -> float:
        """‖jump‖ over all action dims (m and rad together): the switch jump every report uses."""
        return float(np.linalg.norm(self.jump))


@dataclass(eq=False)
class CapturedSwitch:
    """A switch as the servo tick captures it (two command copies and references, no math): ``switch_event``
    turns it into a SwitchEvent later. Holding ``replaced`` (the previous chunk) lets the caller release it
    outside the tick too."""

    prepared: PreparedChunk
    old: np.ndarray  # command of the old chunk (or the held pose) at the switch instant [ad]
    new: np.ndarray  # command of the new chunk at the switch instant [ad]
    replaced: PreparedChunk | None  # the chunk that was active (None: from hold)


def switch_event(sw: CapturedSwitch, *, kind: ActionSpaceKind, num_arms: int) -> SwitchEvent:
    """The SwitchEvent of a captured switch: new − old with each arm's rotation columns replaced by the body-frame
    rotation vector from old to new, and the per-arm maxima (scalar SO(3): ~30 µs, no small-array numpy)."""
    old, new = sw.old.tolist(), sw.new.tolist()
    jump = [b - a for a, b in zip(old, new)]
    lin = ang = grip = 0.0
    for sl in arm_slices(kind, num_arms):
        if sl.rotation is not None:
            r, q = sl.rotation.start, sl.position.start
            w = so3.relative_rotvec_s(so3.rotvec_to_quat_s((old[r], old[r + 1], old[r + 2])),
                                      so3.rotvec_to_quat_s((new[r], new[r + 1], new[r + 2])))  # fmt: skip
            jump[r : r + 3] = w
            lin = max(lin, math.sqrt(jump[q] ** 2 + jump[q + 1] ** 2 + jump[q + 2] ** 2))
            ang = max(ang, math.sqrt(w[0] ** 2 + w[1] ** 2 + w[2] ** 2))
        elif sl.joints is not None:
            ang = max(ang, max(abs(x) for x in jump[sl.joints]))
        grip = max(grip, abs(jump[sl.gripper]))
    p = sw.prepared
    return SwitchEvent(
        t_switch_s=p.t_switch_s,
        t_obs_s=p.chunk.t_obs_s,
        delay_s=p.delay_s,
        k_star=p.k_star,
        guided_d=p.chunk.guided_d,
        jump=np.array(jump),
        jump_linear_m=lin,
        jump_angular_rad=ang,
        jump_gripper_m=grip,
        from_hold=sw.replaced is None,
    )


def _extreme(column: np.ndarray) -> str:
    return f"{column[int(np.argmax(np.abs(column)))]:.3g}"


@dataclass
class TimelineCounters:
    """Monotonic counters (read by diagnostics; written by the owning threads)."""

    accepted: int = 0
    switches: int = 0
    starved_ticks: int = 0
    starvation_episodes: int = 0
    rejected: dict[str, int] = field(default_factory=lambda: {r: 0 for r in REJECT_REASONS})


class ChunkTimeline:
    """Active chunk + pending switch + sampling of the interpolated command. See the module docstring."""

    def __init__(self, config: TimelineConfig) -> None:
        self.config = config
        self._dt = config.dt_s
        ad = len(config.names)
        self._slices = arm_slices(config.kind, config.num_arms)
        self._rot_cols = [s.rotation for s in self._slices if s.rotation is not None]
        self._gripper_cols = tuple(s.gripper for s in self._slices)
        self._hold = np.zeros(ad)
        self._tmp = np.zeros(ad)
        self._old = np.zeros(ad)
        self._new = np.zeros(ad)
        self.active: PreparedChunk | None = None
        self.pending: PreparedChunk | None = None
        self.counters = TimelineCounters()
        self.starving = False
        self.last_switch: SwitchEvent | None = None
        self.last_rejection: Rejection | None = None

    # ---- setup -------------------------------------------------------------------------------------------------
    def reset(self, hold: np.ndarray) -> None:
        """Drop all chunks and hold ``hold[ad]`` (e.g. the measured robot state) until the next chunk."""
        self._hold[:] = hold
        self.active = None
        self.pending = None
        self.starving = False

    def set_hold(self, hold: np.ndarray) -> None:
        """Hold ``hold[ad]`` from now on: drops the active and pending chunks (used after hold/fault recovery)."""
        self.reset(hold)

    @property
    def newest_t_obs_s(self) -> float:
        """t_obs of the newest accepted chunk (pending or active), −inf when none."""
        p, a = self.pending, self.active
        if p is not None:
            return p.chunk.t_obs_s
        return a.chunk.t_obs_s if a is not None else -math.inf

    # ---- validation (subscriber thread) ------------------------------------------------------------------------
    def _reject(self, reason: RejectReason, detail: str) -> Rejection:
        self.counters.rejected[reason] += 1
        rej = Rejection(reason, detail)
        self.last_rejection = rej
        return rej

    def check(self, chunk: Chunk, t_arrival_s: float) -> PreparedChunk | Rejection:
        """Validate ``chunk`` arriving at ``t_arrival_s`` and precompute it, or say why not (counted)."""
        cfg = self.config
        if tuple(chunk.names) != cfg.names:
            return self._reject("names", f"action names {list(chunk.names)[:4]}… do not match the configured ones")
        a = chunk.actions
        if a.ndim != 2 or a.shape[1] != len(cfg.names):
            return self._reject("dimension", f"actions shape {a.shape}, expected [h, {len(cfg.names)}]")
        h = a.shape[0]
        if h < MIN_POINTS:
            return self._reject("too_short", f"{h} points, need at least {MIN_POINTS}")
        if h > cfg.max_horizon:
            return self._reject("dimension", f"{h} points exceed max_horizon {cfg.max_horizon}")
        if not (np.all(np.isfinite(a)) and math.isfinite(chunk.t_obs_s)):
            return self._reject("non_finite", "non-finite action values or stamp")
        if (why := self._implausible(a)) is not None:
            return self._reject("magnitude", why)
        if not (math.isfinite(chunk.dt_s) and abs(chunk.dt_s - self._dt) <= cfg.time_base_rel_tol * self._dt):
            return self._reject("time_base", f"action spacing {chunk.dt_s} s, expected {self._dt} s")
        if chunk.t_obs_s <= self.newest_t_obs_s:
            return self._reject("older", f"t_obs {chunk.t_obs_s:.6f} not newer than the active {self.newest_t_obs_s:.6f}")
        delay_s = t_arrival_s - chunk.t_obs_s
        if delay_s < -cfg.future_tolerance_s:
            return self._reject("future", f"stamped {-delay_s * 1e3:.1f} ms in the future")
        k_star = max(0, math.ceil(delay_s / self._dt - INDEX_EPS))
        if k_star >= h:
            return self._reject("stale", f"k*={k_star} >= horizon {h} (δ={delay_s * 1e3:.1f} ms)")
        return PreparedChunk(
            chunk=chunk,
            t_arrival_s=t_arrival_s,
            delay_s=delay_s,
            k_star=k_star,
            t_switch_s=chunk.t_obs_s + k_star * self._dt,
            segments=prepare_segments(a, self._rot_cols, cfg.interpolation, self._gripper_cols),
        )

    def _implausible(self, a: np.ndarray) -> str | None:
        """Why finite actions ``a[h, ad]`` cannot be a policy's output (see the bounds above), or None."""
        boxes = self.config.workspace_boxes_m
        names = self.config.names
        for arm, sl in enumerate(self._slices):
            if sl.rotation is not None:
                p = a[:, sl.position]
                lo = np.array(boxes[arm][:3]) - POSITION_MARGIN_M if boxes else -MAX_ABS_POSITION_M
                hi = np.array(boxes[arm][3:]) + POSITION_MARGIN_M if boxes else MAX_ABS_POSITION_M
                bad = np.nonzero(np.any((p < lo) | (p > hi), axis=0))[0]
                if bad.size:
                    col = sl.position.start + int(bad[0])
                    return f"{names[col]} reaches {_extreme(a[:, col])} m, beyond the workspace by > {POSITION_MARGIN_M} m"
                r = a[:, sl.rotation]
                big = np.nonzero(np.max(np.abs(r), axis=0) > MAX_ROTATION_RAD)[0]  # per column first: no overflow
                if big.size:
                    col = sl.rotation.start + int(big[0])
                    return f"{names[col]} reaches {_extreme(a[:, col])} rad (> {MAX_ROTATION_RAD:.3f})"
                norm = np.sqrt(np.sum(r * r, axis=1))
                if np.max(norm) > MAX_ROTATION_RAD:
                    return f"rotation of arm {arm} reaches |r| = {np.max(norm):.3g} rad > {MAX_ROTATION_RAD:.3f}"
            else:
                q = a[:, sl.joints]
                if np.max(np.abs(q)) > MAX_ABS_JOINT_RAD:
                    col = sl.joints.start + int(np.argmax(np.max(np.abs(q), axis=0)))
                    return f"{names[col]} reaches {_extreme(a[:, col])} rad (|q| > {MAX_ABS_JOINT_RAD:.3f})"
            if np.max(np.abs(a[:, sl.gripper])) > MAX_ABS_GRIPPER_M:
                return f"{names[sl.gripper]} reaches {_extreme(a[:, sl.gripper])} m (> {MAX_ABS_GRIPPER_M} m)"
        return None

    # ---- loop thread -------------------------------------------------------------------------------------------
    def accept(self, prepared: PreparedChunk) -> Rejection | None:
        """Schedule ``prepared`` to switch in at its t_switch (replacing an older pending one)."""
        if prepared.chunk.t_obs_s <= self.newest_t_obs_s:  # lost a race with a newer chunk
            return self._reject("older", "superseded by a newer chunk before the switch")
        self.pending = prepared
        self.counters.accepted += 1
        return None

    def _eval(self, p: PreparedChunk | None, t_s: float, out: np.ndarray) -> bool:
        """Command of chunk ``p`` at ``t_s`` into ``out``; True when past the chunk's end (holding a_{H−1})."""
        if p is None:
            out[:] = self._hold
            return False
        rows = p.segments.rows
        h = len(rows)
        u = (t_s - p.chunk.t_obs_s) / self._dt
        k = math.floor(u + INDEX_EPS)
        if k < p.k_star:  # never before the switch boundary: frozen actions are not executed
            k, alpha = p.k_star, 0.0
        else:
            alpha = min(max(u - k, 0.0), 1.0)
        if k >= h - 1:
            out[:] = rows[h - 1]
            return True
        if alpha == 0.0:
            out[:] = rows[k]
            return False
        out[:] = evaluate(p.segments, k, alpha, self._rot_cols)
        return False

    def capture(self, t_s: float, out: np.ndarray) -> CapturedSwitch | None:
        """Fill ``out[ad]`` with the command for time ``t_s``; performs a due switch and returns it as captured
        (cheap: for the servo tick; ``switch_event`` computes the event later)."""
        captured = None
        p = self.pending
        if p is not None and t_s >= p.t_switch_s - INDEX_EPS * self._dt:
            self._eval(self.active, p.t_switch_s, self._old)
            self._eval(p, p.t_switch_s, self._new)
            captured = CapturedSwitch(p, self._old.copy(), self._new.copy(), self.active)
            self.active = p
            self.pending = None
            self.counters.switches += 1
        starving = self._eval(self.active, t_s, out)
        if starving:
            self.counters.starved_ticks += 1
            if not self.starving:
                self.counters.starvation_episodes += 1
        self.starving = starving
        return captured

    def sample(self, t_s: float, out: np.ndarray) -> SwitchEvent | None:
        """``capture`` plus the switch's event, computed at once."""
        captured = self.capture(t_s, out)
        if captured is None:
            return None
        self.last_switch = switch_event(captured, kind=self.config.kind, num_arms=self.config.num_arms)
        return self.last_switch
