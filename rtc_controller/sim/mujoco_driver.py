"""``driver: mujoco``: the MuJoCo twin (``sim.world``) behind the ArmDriver interface, like ``sim``.

The world lives in the driver, so in the servo process by default, and advances with the servo ticks by elapsed
time: every ``read_state``/``command`` steps the physics (1 ms steps, the Cartesian controller at each) up to
``clock()`` since connect, at most ``max_catch_up_steps`` per call (a longer stall slips the world's clock instead
of bursting: counted in ``slipped_steps``). A late tick therefore never slows the world, and rendering happens in
another process: the driver writes the world snapshot (``sim.snapshot``) every ``snapshot_period_s`` for the twin
process (cameras, task status) and the twin policies.

Faults as in ``sim``: ``fault_at_s`` / ``disconnect_at_s`` after connect, ``inject_fault``/``disconnect``, and the
world's own ``joint_limit`` fault (a joint within 0.01 rad of its limit). A faulted world holds its joints.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from rtc_controller.action_space import ActionSpaceKind
from rtc_controller.robots.base import DriverError, DriverStatus
from rtc_controller.sim.scene import SceneConfig
from rtc_controller.sim.task import TaskConfig

STALE_STATE_S = 0.005  # read_state advances the world itself only when no command did for this long


@dataclass(frozen=True)
class MujocoDriverConfig:
    """scene, task: the twin (``config/twin.yaml``'s ``twin_config`` file); seed: the episode's randomisation;
    snapshot_name: shared-memory name ('' = per ROS_DOMAIN_ID); snapshot_period_s [s]; max_catch_up_steps
    per call; fault_at_s / disconnect_at_s [s after connect] (None = never)."""

    scene: SceneConfig = field(default_factory=SceneConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    seed: int = 0
    snapshot_name: str = ""
    snapshot_period_s: float = 0.005
    max_catch_up_steps: int = 50
    fault_at_s: float | None = None
    disconnect_at_s: float | None = None
    kind: ActionSpaceKind = "cartesian"
    num_arms: int = 2

    def __post_init__(self) -> None:
        if self.kind != "cartesian" or self.num_arms != 2:
            raise ValueError("driver mujoco: the twin has two arms in the Cartesian action space")
        if not self.snapshot_period_s > 0 or self.max_catch_up_steps < 1:
            raise ValueError("driver mujoco: snapshot_period_s must be > 0 and max_catch_up_steps >= 1")


class MujocoDriver:
    """See the module docstring."""

    def __init__(self, config: MujocoDriverConfig = MujocoDriverConfig(), *, clock: Callable[[], float] = time.monotonic,
                 world=None) -> None:  # fmt: skip
        """``world``: a ``TwinWorld`` already reset for its episode, driven as it is and without a snapshot (the
        in-process episode runner, which owns it); None: the driver builds and resets its own at ``connect``."""
        self.config = config
        self.kind: ActionSpaceKind = "cartesian"
        self.num_arms = 2
        self._clock = clock
        self.world = world
        self._writer = None
        self._t0 = math.nan  # monotonic time of the world's episode time 0 (moves on when the world slips)
        self._t_connect = math.nan
        self._t_last_step = math.nan
        self._t_last_snap = -math.inf
        self._connected = self._enabled = self._disconnected = self._fault_fired = False
        self.slipped_steps = 0
        self.commands_received = 0

    # ---- lifecycle ---------------------------------------------------------------------------------------------
    def connect(self) -> None:
        if self._disconnected:
            raise DriverError("mujoco: connection lost")
        if self.world is None:
            from rtc_controller.sim.snapshot import SnapshotWriter, default_name, world_header
            from rtc_controller.sim.world import TwinWorld

            c = self.config
            self.world = TwinWorld(c.scene, c.task)
            header = world_header(c.scene, c.task, self.world.reset(c.seed))
            self._writer = SnapshotWriter(c.snapshot_name or default_name(), self.world, header)
        now = self._clock()
        self._t_connect = now
        self._t0 = now - self.world.time_s
        self._t_last_step = now
        self._connected = self._enabled = True
        self._write_snapshot(now)

    def inject_fault(self, message: str = "injected fault") -> None:
        self.world.inject_fault(message)

    def disconnect(self) -> None:
        self._disconnected = True

    def stop(self) -> None:
        self._advance(self._clock())
        self.world.controller.hold_current(self.world.data)
        self._enabled = False

    def clear_fault(self) -> bool:
        if self._disconnected:
            return False
        self.world.clear_fault()
        self._fault_fired = True
        self._enabled = True
        return True

    def close(self) -> None:
        self._connected = self._enabled = False
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def status(self) -> DriverStatus:
        fault = bool(self.world is not None and self.world.fault)
        msg = "connection lost" if self._disconnected else (self.world.fault if fault else "ok")
        return DriverStatus(connected=self._connected and not self._disconnected, enabled=self._enabled, fault=fault,
                            message=f"mujoco: {msg}")  # fmt: skip

    # ---- servo-thread API --------------------------------------------------------------------------------------
    def _check(self, now: float) -> None:
        if not self._connected:
            raise DriverError("mujoco: not connected")
        c = self.config
        since = now - self._t_connect
        if c.fault_at_s is not None and not self._fault_fired and since >= c.fault_at_s and not self.world.fault:
            self._fault_fired = True
            self.world.inject_fault("injected fault (fault_at_s)")
        if c.disconnect_at_s is not None and since >= c.disconnect_at_s:
            self._disconnected = True
        if self._disconnected:
            raise DriverError("mujoco: connection lost")

    def read_state(self, out: np.ndarray) -> bool:
        now = self._clock()
        self._check(now)
        if now - self._t_last_step > STALE_STATE_S:
            self._advance(now)
        self.world.read_state(out)
        return not self.world.fault

    def command(self, cmd: np.ndarray) -> None:
        now = self._clock()
        self._check(now)
        self.commands_received += 1
        if self.world.fault or not self._enabled:
            return
        if not np.all(np.isfinite(cmd)):
            raise DriverError("mujoco: non-finite command refused")
        self.world.set_command(cmd)
        self._advance(now)

    def _advance(self, now: float) -> None:
        w = self.world
        due = int((now - self._t0) / w.model.opt.timestep) - w._steps
        if due > self.config.max_catch_up_steps:
            self.slipped_steps += due - self.config.max_catch_up_steps
            self._t0 += (due - self.config.max_catch_up_steps) * w.model.opt.timestep
            due = self.config.max_catch_up_steps
        if due > 0:
            w.step(due)
        self._t_last_step = now
        if now - self._t_last_snap >= self.config.snapshot_period_s:
            self._write_snapshot(now)

    def _write_snapshot(self, now: float) -> None:
        self._t_last_snap = now
        if self._writer is not None:
            self._writer.write(self.world, now)
