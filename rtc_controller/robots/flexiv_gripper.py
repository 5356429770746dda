"""The Flexiv grippers, driven from the gripper process (``robots/gripper_process.py``) over its own robot connection.

Per robot: ``Robot(serial)`` (a second connection to the robot the streaming process drives; the RDK allows it),
``Gripper(robot)``; per arm with a gripper: ``Enable`` (RDK 2: ``Enable(group, name)``; 1.9: ``Enable(name)``),
optionally ``Init`` (grippers that do not initialise at power-on, e.g. the 48 V Grav: Init "does not wait for the
initialization sequence to finish", so we wait until the fingers stop), then ``params()``: the valid width,
velocity and force ranges. Every ``Move`` is clamped to them (the RDK refuses values outside with an exception);
the configured velocity and force are clamped once at connect, with a warning. All calls here may block.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rtc_controller.robots.flexiv_api import call, import_rdk

log = logging.getLogger(__name__)

INIT_SETTLE_S = 0.5  # after Init, before watching the fingers
INIT_TIMEOUT_S = 15.0
INIT_POLL_S = 0.1


@dataclass(frozen=True)
class FlexivGripperSpec:
    """What the gripper process needs (picklable).

    generation: 1 (RDK 1.9: one robot per arm) or 2 (RDK 2.x: joint groups).
    serial_numbers: the robots; arm_robot: per arm the index of its robot.
    joint_groups: RDK 2 JointGroup names per arm ("" for RDK 1.9).
    gripper_names: per arm ("" = no gripper on that arm).
    velocity_m_s, force_n: Move's velocity and force limit (clamped to the gripper's params).
    init: call ``Gripper.Init`` after enabling.
    lite: open the connection as a lite instance (no robot states: the width is then not reported).
    rdk_factory: builds the flexivrdk module (None = ``import flexivrdk``; the tests pass stand-ins).
    """

    generation: int
    serial_numbers: tuple[str, ...]
    arm_robot: tuple[int, ...]
    joint_groups: tuple[str, ...]
    gripper_names: tuple[str, ...]
    velocity_m_s: float = 0.1
    force_n: float = 20.0
    init: bool = False
    lite: bool = False
    rdk_factory: Callable[[], Any] | None = None


class FlexivGripperBackend:
    """``GripperBackend`` for the Flexiv grippers (both RDK generations)."""

    def __init__(self, spec: FlexivGripperSpec) -> None:
        self.spec = spec
        self._rdk: Any = None
        self._robots: list[Any] = []
        self._grippers: list[Any] = []
        self._groups: list[Any] = []
        self._params: list[Any] = []
        self._vel: list[float] = []
        self._force: list[float] = []

    def connect(self) -> list[tuple[float, float] | None]:
        s = self.spec
        rdk = self._rdk = s.rdk_factory() if s.rdk_factory is not None else import_rdk(None)
        self._robots = [call(f"gripper connection {sn}", lambda sn=sn: rdk.Robot(sn, lite=s.lite))
                        for sn in s.serial_numbers]  # fmt: skip
        self._grippers = [call("Gripper", rdk.Gripper, r) for r in self._robots]
        self._groups = [getattr(rdk.JointGroup, g) if s.generation == 2 else None for g in s.joint_groups]
        ranges: list[tuple[float, float] | None] = []
        for arm, name in enumerate(s.gripper_names):
            self._params.append(None)
            self._vel.append(s.velocity_m_s)
            self._force.append(s.force_n)
            if not name:
                ranges.append(None)
                continue
            g = self._grippers[s.arm_robot[arm]]
            key = () if s.generation == 1 else (self._groups[arm],)
            call(f"Gripper.Enable {name}", g.Enable, *key, name)
            if s.init:
                call(f"Gripper.Init {name}", g.Init, *key)
                self._wait_initialised(arm)
            p = g.params() if s.generation == 1 else g.params()[self._groups[arm]]
            self._params[arm] = p
            self._vel[arm] = _clamped(f"{name} velocity [m/s]", s.velocity_m_s, p.min_vel, p.max_vel)
            self._force[arm] = _clamped(f"{name} force [N]", s.force_n, p.min_force, p.max_force)
            ranges.append((float(p.min_width), float(p.max_width)))
        return ranges

    def _states(self, arm: int) -> Any:
        g = self._grippers[self.spec.arm_robot[arm]]
        return g.states() if self.spec.generation == 1 else g.states().get(self._groups[arm])

    def _wait_initialised(self, arm: int) -> None:
        time.sleep(INIT_SETTLE_S)
        end = time.monotonic() + INIT_TIMEOUT_S
        while (st := self._states(arm)) is not None and st.is_moving:
            if time.monotonic() > end:
                raise RuntimeError(f"gripper on arm {arm} still initialising after {INIT_TIMEOUT_S:.0f} s")
            time.sleep(INIT_POLL_S)

    def move(self, arm: int, width_m: float) -> None:
        p = self._params[arm]
        w = min(max(float(width_m), p.min_width), p.max_width)
        g = self._grippers[self.spec.arm_robot[arm]]
        if self.spec.generation == 1:
            g.Move(w, self._vel[arm], self._force[arm])
        else:
            g.Move(self._groups[arm], w, self._vel[arm], self._force[arm])

    def read(self, arm: int) -> tuple[float, float, bool]:
        st = self._states(arm)
        if st is None:
            return math.nan, 0.0, False
        return float(st.width), float(st.force), bool(st.is_moving)

    def healthy(self) -> str:
        for sn, r in zip(self.spec.serial_numbers, self._robots):
            if not r.connected():
                return f"gripper connection to {sn} lost"
        return ""

    def close(self) -> None:
        self._grippers = []
        self._robots = []


def _clamped(what: str, value: float, lo: float, hi: float) -> float:
    out = min(max(value, lo), hi)
    if out != value:
        log.warning("gripper %s %g is outside the gripper's range [%g, %g]: using %g", what, value, lo, hi, out)
    return float(out)
