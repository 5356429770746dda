"""Simulated arms: each TCP (or joint vector) tracks the command with second-order dynamics, speed limits and
sensor noise; faults can be injected (at a given time, or a lost connection).
With ``gripper_block_s > 0`` the gripper widths go to a gripper channel whose command blocks for that long holding
the GIL, like the real ``Gripper.Move`` (``robots/sim_gripper.py``): in its own process (``gripper_channel:
process``, what the Flexiv drivers do) or on a thread of this process (``thread``: the layout that stalls the servo
loop, for comparison in the benchmark).

Time: the simulation integrates from its last update to ``clock()`` [s, monotonic] whenever it is read or
commanded, in sub-steps of at most ``MAX_SUBSTEP_S``. A fault freezes the arms' commands (they brake to rest);
a lost connection makes ``read_state``/``command`` raise :class:`DriverError`.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rtc_controller.action_space import ActionSpaceKind, arm_slices
from rtc_controller.geometry import so3
from rtc_controller.robots.base import DriverError, DriverStatus
from rtc_controller.robots.gripper_process import GripperProcess
from rtc_controller.robots.sim_gripper import InProcessGripper, SimGripperBackend

MAX_SUBSTEP_S = 0.002
STALE_STATE_S = 0.005  # read_state integrates itself only when no command advanced the sim for this long
NOISE_TABLE_SIZE = 1 << 16  # unit-normal samples drawn once (no per-tick RNG calls)
HOME_ARM_CARTESIAN = (0.45, 0.0, 0.35, math.pi, 0.0, 0.0, 0.04)  # TCP pointing down, gripper half open
HOME_ARM_JOINT = (0.0, -0.7, 0.0, 1.57, 0.0, 0.7, 0.0, 0.04)
ARM_SPACING_M = 0.6  # the right arm's home is offset by this in y


def home_state(kind: ActionSpaceKind = "cartesian", num_arms: int = 2) -> np.ndarray:
    """A reachable resting state ``[ad]`` for the simulated rig."""
    if kind == "joint":
        return np.array(HOME_ARM_JOINT * num_arms, dtype=float)
    arms = []
    for i in range(num_arms):
        a = list(HOME_ARM_CARTESIAN)
        a[1] = (i - (num_arms - 1) / 2) * ARM_SPACING_M
        arms += a
    return np.array(arms, dtype=float)


@dataclass(frozen=True)
class SimConfig:
    """Attributes:
    kind, num_arms: the action space.
    natural_freq_hz, damping: second-order tracking (ω_n = 2π·f, ζ).
    max_linear_speed_m_s, max_angular_speed_rad_s, max_joint_speed_rad_s, gripper_speed_m_s: physical caps.
    noise_pos_m, noise_rot_rad, noise_gripper_m: std of the sensor noise added to read_state.
    initial_state: start state ``[ad]`` (None = :func:`home_state`).
    fault_at_s: seconds after connect at which the robot faults (None = never).
    disconnect_at_s: seconds after connect at which the connection is lost (None = never).
    seed: sensor-noise seed.
    gripper_block_s: > 0: gripper commands go through a gripper channel that blocks this long per command [s].
    gripper_channel: "process" (a gripper process) or "thread" (in this process; comparison only).
    """

    kind: ActionSpaceKind = "cartesian"
    num_arms: int = 2
    natural_freq_hz: float = 6.0
    damping: float = 1.0
    max_linear_speed_m_s: float = 1.2
    max_angular_speed_rad_s: float = 6.0
    max_joint_speed_rad_s: float = 2.0
    gripper_speed_m_s: float = 0.1
    noise_pos_m: float = 1e-5
    noise_rot_rad: float = 1e-4
    noise_gripper_m: float = 1e-5
    initial_state: tuple[float, ...] | None = None
    fault_at_s: float | None = None
    disconnect_at_s: float | None = None
    seed: int = 0
    gripper_block_s: float = 0.0
    gripper_channel: str = "process"

    def __post_init__(self) -> None:
        if self.num_arms < 1:
            raise ValueError("num_arms must be >= 1")
        if self.natural_freq_hz <= 0 or self.damping <= 0:
            raise ValueError("natural_freq_hz and damping must be > 0")
        if min(self.noise_pos_m, self.noise_rot_rad, self.noise_gripper_m) < 0:
            raise ValueError("noise levels must be >= 0")
        width = 7 if self.kind == "cartesian" else 8
        if self.initial_state is not None and len(self.initial_state) != width * self.num_arms:
            raise ValueError(f"initial_state needs {width * self.num_arms} values")
        if self.gripper_block_s < 0 or self.gripper_channel not in ("process", "thread"):
            raise ValueError("gripper_block_s must be >= 0 and gripper_channel 'process' or 'thread'")


def _clamp_norm(v: list[float], vmax: float) -> None:
    n = math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])
    if n > vmax:
        k = vmax / n
        v[0] *= k
        v[1] *= k
        v[2] *= k


class SimDriver:
    """Two (or ``num_arms``) simulated arms behind the ArmDriver interface."""

    def __init__(self, config: SimConfig = SimConfig(), *, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.kind: ActionSpaceKind = config.kind
        self.num_arms = config.num_arms
        self._clock = clock
        self._sl = arm_slices(config.kind, config.num_arms)
        init = config.initial_state if config.initial_state is not None else home_state(config.kind, config.num_arms)
        self._x = [float(v) for v in init]  # true state (rotation columns kept in sync with _q)
        self._target = list(self._x)
        self._v = [0.0] * len(self._x)  # velocities (angular velocity per arm in the rotation columns)
        self._q = [so3.rotvec_to_quat_s(tuple(self._x[s.rotation])) for s in self._sl if s.rotation is not None]
        self._q_target = list(self._q)
        self._noise = np.random.default_rng(config.seed).standard_normal(NOISE_TABLE_SIZE).tolist()
        self._noise_i = 0
        self._lock = threading.Lock()  # commands/reads may come from the servo thread and the node thread
        self._t_last = math.nan
        self._t_connect = math.nan
        self._connected = False
        self._enabled = False
        self._fault = False
        self._fault_cleared = False
        self._disconnected = False
        self.commands_received = 0
        self.commands_while_faulted = 0
        self.gripper: GripperProcess | InProcessGripper | None = None

    # ---- lifecycle ---------------------------------------------------------------------------------------------
    def connect(self) -> None:
        if self._disconnected:
            raise DriverError("sim: connection lost")
        c = self.config
        if c.gripper_block_s > 0 and self.gripper is None:
            backend = functools.partial(SimGripperBackend, c.num_arms, move_block_s=c.gripper_block_s,
                                        speed_m_s=c.gripper_speed_m_s, initial_m=self._x[self._sl[0].gripper])  # fmt: skip
            self.gripper = (GripperProcess(backend, c.num_arms) if c.gripper_channel == "process"
                            else InProcessGripper(backend(), c.num_arms))  # fmt: skip
            self.gripper.start()
        now = self._clock()
        self._t_connect = now
        self._t_last = now
        self._connected = True
        self._enabled = True

    def inject_fault(self) -> None:
        """Fault now (as a robot that hit a limit would)."""
        self._fault = True

    def disconnect(self) -> None:
        """Lose the connection now."""
        self._disconnected = True

    def stop(self) -> None:
        with self._lock:
            self._advance(self._clock())
            self._target = list(self._x)
            self._q_target = list(self._q)
            self._v = [0.0] * len(self._v)  # the real robots brake to a stop; the sim stops at once
            self._enabled = False

    def clear_fault(self) -> bool:
        if self._disconnected:
            return False
        self._fault = False
        self._fault_cleared = True  # a timed fault fires once
        self._enabled = True
        with self._lock:
            self._target = list(self._x)
            self._q_target = list(self._q)
        return True

    def close(self) -> None:
        self._connected = False
        self._enabled = False
        if self.gripper is not None:
            self.gripper.close()
            self.gripper = None

    def status(self) -> DriverStatus:
        msg = "connection lost" if self._disconnected else ("fault" if self._fault else "ok")
        details: tuple[tuple[str, str], ...] = ()
        if self.gripper is not None:
            g = self.gripper
            sent = g.status().sent if isinstance(g, GripperProcess) else g.sent
            details = (("gripper_channel", self.config.gripper_channel), ("gripper_commands_sent", str(sent)))
        return DriverStatus(connected=self._connected and not self._disconnected, enabled=self._enabled,
                            fault=self._fault, message=f"sim: {msg}", details=details)  # fmt: skip

    # ---- servo-thread API --------------------------------------------------------------------------------------
    def _check_events(self, now: float) -> None:
        c = self.config
        since = now - self._t_connect
        if c.fault_at_s is not None and not self._fault_cleared and since >= c.fault_at_s:
            self._fault = True
        if c.disconnect_at_s is not None and since >= c.disconnect_at_s:
            self._disconnected = True
        if self._disconnected:
            raise DriverError("sim: connection lost")

    def read_state(self, out: np.ndarray) -> bool:
        if not self._connected:
            raise DriverError("sim: not connected")
        now = self._clock()
        self._check_events(now)
        with self._lock:
            if now - self._t_last > STALE_STATE_S:  # nobody commands (holding, faulted): integrate here
                self._advance(now)
            x = self._state_with_rotvecs()
            self._x[:] = x
        c = self.config
        tab, i, n = self._noise, self._noise_i, len(self._noise)
        for sl in self._sl:
            if sl.rotation is not None:
                lin, sig_lin = range(sl.position.start, sl.position.stop), c.noise_pos_m
                rot, sig_rot = range(sl.rotation.start, sl.rotation.stop), c.noise_rot_rad
            else:
                lin, sig_lin = range(sl.joints.start, sl.joints.stop), c.noise_rot_rad
                rot, sig_rot = range(0), 0.0
            for j in lin:
                x[j] += tab[i] * sig_lin
                i = (i + 1) % n
            for j in rot:
                x[j] += tab[i] * sig_rot
                i = (i + 1) % n
            x[sl.gripper] += tab[i] * c.noise_gripper_m
            i = (i + 1) % n
        self._noise_i = i
        if self.gripper is not None:
            for sl_i, sl in enumerate(self._sl):
                w = self.gripper.width(sl_i)
                if w == w:  # not NaN
                    x[sl.gripper] = w
        out[:] = x
        return not self._fault

    def command(self, cmd: np.ndarray) -> None:
        if not self._connected:
            raise DriverError("sim: not connected")
        now = self._clock()
        self._check_events(now)
        self.commands_received += 1
        if self._fault or not self._enabled:
            self.commands_while_faulted += 1
            return
        c = cmd.tolist()
        if not all(math.isfinite(v) for v in c):
            raise DriverError("sim: non-finite command refused")
        if self.gripper is not None:
            for arm, s in enumerate(self._sl):
                self.gripper.request(arm, c[s.gripper])
        with self._lock:
            self._advance(now)
            self._target = c
            k = 0
            for s in self._sl:
                if s.rotation is not None:
                    self._q_target[k] = so3.rotvec_to_quat_s(tuple(c[s.rotation]))
                    k += 1

    # ---- dynamics ----------------------------------------------------------------------------------------------
    def _advance(self, now: float) -> None:
        dt_total = now - self._t_last
        if not dt_total > 0.0:
            return
        self._t_last = now
        if self._fault:  # faulted robots brake to rest and ignore their targets
            self._v = [0.0] * len(self._v)
            return
        n = max(1, math.ceil(dt_total / MAX_SUBSTEP_S))
        dt = dt_total / n
        for _ in range(n):
            self._step(dt)

    def _step(self, dt: float) -> None:
        c = self.config
        wn = 2.0 * math.pi * c.natural_freq_hz
        kp, kd = wn * wn, 2.0 * c.damping * wn
        x, v, t = self._x, self._v, self._target
        k = 0
        for s in self._sl:
            if s.rotation is not None:
                lin = range(s.position.start, s.position.stop)
                for i in lin:
                    v[i] += (kp * (t[i] - x[i]) - kd * v[i]) * dt
                vl = [v[i] for i in lin]
                _clamp_norm(vl, c.max_linear_speed_m_s)
                for j, i in enumerate(lin):
                    v[i] = vl[j]
                    x[i] += v[i] * dt
                r0 = s.rotation.start
                e = so3.relative_rotvec_s(self._q[k], self._q_target[k])
                w = [v[r0 + j] + (kp * e[j] - kd * v[r0 + j]) * dt for j in range(3)]
                _clamp_norm(w, c.max_angular_speed_rad_s)
                v[r0 : r0 + 3] = w
                q = so3.quat_mul_s(self._q[k], so3.rotvec_to_quat_s((w[0] * dt, w[1] * dt, w[2] * dt)))
                n = math.sqrt(q[0] ** 2 + q[1] ** 2 + q[2] ** 2 + q[3] ** 2)
                self._q[k] = (q[0] / n, q[1] / n, q[2] / n, q[3] / n)  # rotation columns of _x: see read_state
                k += 1
            else:
                for i in range(s.joints.start, s.joints.stop):
                    v[i] += (kp * (t[i] - x[i]) - kd * v[i]) * dt
                    v[i] = min(max(v[i], -c.max_joint_speed_rad_s), c.max_joint_speed_rad_s)
                    x[i] += v[i] * dt
            gi = s.gripper
            step = c.gripper_speed_m_s * dt
            x[gi] += min(max(t[gi] - x[gi], -step), step)

    # ---- test helpers ------------------------------------------------------------------------------------------
    def true_state(self) -> np.ndarray:
        """The noise-free state ``[ad]`` (tests)."""
        with self._lock:
            return np.array(self._state_with_rotvecs())

    def _state_with_rotvecs(self) -> list[float]:
        """The state with each arm's rotation written as the rotation vector nearest the target's (lock held)."""
        x = list(self._x)
        k = 0
        for sl in self._sl:
            if sl.rotation is not None:
                r0 = sl.rotation.start
                x[r0 : r0 + 3] = so3.rotvec_near_s(so3.quat_to_rotvec_s(self._q[k]), tuple(self._target[sl.rotation]))
                k += 1
        return x


def make_sim(kind: ActionSpaceKind = "cartesian", num_arms: int = 2, **kw: object) -> SimDriver:
    """Convenience constructor: ``make_sim(fault_at_s=2.0)``."""
    return SimDriver(SimConfig(kind=kind, num_arms=num_arms, **kw))  # type: ignore[arg-type]


