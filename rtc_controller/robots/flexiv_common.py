"""The lifecycle both Flexiv RDK drivers follow (start-up, stop, reset, status) and their shared settings.

Start-up (``connect``), per robot; every call here may block, and all of it happens before the command stream:
1. ``Robot(serial)``; the RDK generation and the product model are checked, refused with what to do instead.
2. Refused while an E-stop is pressed or the robot is in recovery; ``ClearFault`` when faulted.
3. Power on (RDK 1.9 ``Enable``, 2.x ``ServoOn``), wait for ``operational()`` (on timeout the message names the
   operational status: E-stop, reduced state, manual mode, ...).
4. ``Tool.Switch`` to each arm's tool (IDLE mode), so the TCP and the mass compensation match what is mounted.
5. The ``ZeroFTSensor`` primitive (``zero_ft_sensor``, on by default as in Flexiv's examples; nothing may touch
   the robot meanwhile), waiting until it has terminated.
6. ``SwitchMode`` to the action space's mode, then ``SetMaxContactWrench`` (Cartesian, when configured) and, RDK 2,
   ``SetTimelinessFailureLimit``.
7. The gripper process (``gripper_process.py``) connects and enables the grippers.

Reset (``clear_fault``, called by the executor on ``~/reset_fault``): reconnect a lost connection with a new
``Robot(serial)``, then steps 2–4 and 6 (no F/T zeroing: after a fault the arm may be in contact), and restart the
gripper process if it died. The executor then holds the measured pose until ``~/resume``.

While streaming (``read_state``, ``command``, ``hold_request``, ``status``) only [Non-blocking] calls are made.
``stop`` stops every robot even when one raises, and says which failed. ``read_state`` also watches the external
wrench: above ``contact_force_limit_n``/``contact_moment_limit_nm`` the executor holds (``hold_request``).
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass
from typing import Any

from rtc_controller.action_space import ActionSpaceKind, arm_slices
from rtc_controller.robots.base import DEFAULT_GRIPPER_MIN_CHANGE_M, DriverError, DriverStatus
from rtc_controller.robots.flexiv_api import ApiUse, call, import_rdk, require_rdk, wait_until
from rtc_controller.robots.flexiv_gripper import FlexivGripperBackend
from rtc_controller.robots.gripper_process import GripperProcess

log = logging.getLogger(__name__)

ARM_NAMES = ("left", "right")
GRIPPER_START_EXTRA_S = 20.0  # interpreter start and imports of the gripper process [s]
WRENCH_SIZE = 6


@dataclass(frozen=True)
class FlexivCommonConfig:
    """Settings both drivers share (field names = the executor_node parameters of the same name).

    serial_numbers: the robots (see each driver); kind: the action space.
    connect_timeout_s: wait for operational(), F/T zeroing and the gripper process [s].
    clear_fault_timeout_s: ClearFault's timeout [s] (int, as the RDK takes it).
    gripper_names: per arm ("" / () = no gripper commands); gripper_velocity_m_s, gripper_force_n: Move's
    arguments (clamped to the gripper's params); gripper_min_change_m: smaller width changes are not sent;
    gripper_init: call Gripper.Init (grippers that do not initialise at power-on).
    tool_names: per arm the tool to switch to at start ("" / () = keep the robot's active tool).
    zero_ft_sensor: run the ZeroFTSensor primitive at start.
    max_contact_wrench: [fx, fy, fz, mx, my, mz] for all arms or 6 per arm [N, Nm]; () = the robot's setting.
    contact_force_limit_n, contact_moment_limit_nm: hold above this measured external force/moment (0 = off).
    """

    serial_numbers: tuple[str, ...]
    kind: ActionSpaceKind = "cartesian"
    connect_timeout_s: float = 20.0
    clear_fault_timeout_s: int = 30
    gripper_names: tuple[str, ...] = ()
    gripper_velocity_m_s: float = 0.1
    gripper_force_n: float = 20.0
    gripper_min_change_m: float = DEFAULT_GRIPPER_MIN_CHANGE_M
    gripper_init: bool = False
    tool_names: tuple[str, ...] = ()
    zero_ft_sensor: bool = True
    max_contact_wrench: tuple[float, ...] = ()
    contact_force_limit_n: float = 0.0
    contact_moment_limit_nm: float = 0.0

    def _check_common(self, num_arms: int) -> None:
        if not self.serial_numbers or not all(self.serial_numbers):
            raise ValueError("at least one non-empty serial number")
        if self.connect_timeout_s <= 0:
            raise ValueError("connect_timeout_s must be > 0")
        for name, per_arm in (("gripper_names", self.gripper_names), ("tool_names", self.tool_names)):
            if per_arm and len(per_arm) != num_arms:
                raise ValueError(f"{name} needs one name per arm ({num_arms}), got {len(per_arm)}")
        if len(self.max_contact_wrench) not in (0, WRENCH_SIZE, WRENCH_SIZE * num_arms):
            raise ValueError(f"max_contact_wrench needs 6 values (all arms) or 6 per arm, got {len(self.max_contact_wrench)}")
        if any(not (v >= 0) for v in self.max_contact_wrench):
            raise ValueError(f"max_contact_wrench must be >= 0 (inf = unlimited), got {self.max_contact_wrench}")
        if min(self.contact_force_limit_n, self.contact_moment_limit_nm, self.gripper_min_change_m) < 0:
            raise ValueError("contact limits and gripper_min_change_m must be >= 0")
        if self.gripper_velocity_m_s <= 0 or self.gripper_force_n <= 0:
            raise ValueError("gripper_velocity_m_s and gripper_force_n must be > 0")

    def contact_wrench(self, arm: int) -> list[float] | None:
        """The max contact wrench for ``arm`` [N, Nm] (None: leave the robot's setting)."""
        w = self.max_contact_wrench
        if not w:
            return None
        return [float(x) for x in (w if len(w) == WRENCH_SIZE else w[WRENCH_SIZE * arm : WRENCH_SIZE * (arm + 1)])]


class FlexivDriverBase:
    """The shared lifecycle (see the module docstring). Subclasses set the class constants and implement the
    hooks: ``_check_model``, ``_setup_arms``, ``_power_on``, ``_switch_tools``, ``_start_zero_ft``,
    ``_zero_ft_done``, ``_after_mode_switch``, ``_gripper_spec``, ``_extra_details``, ``read_state``, ``command``."""

    LABEL = "flexivrdk"  # prefix of status messages
    ACTIVE_MESSAGE = "running"
    CARTESIAN_MODE = ""
    JOINT_MODE = ""
    GENERATION = 0
    DRIVER = ""  # e.g. "RDK 1.9 (Rizon)"
    HINT = ""  # what the other generation needs
    API: tuple[ApiUse, ...] = ()

    def __init__(self, config: Any, num_arms: int, rdk: Any) -> None:
        self.config = config
        self.kind: ActionSpaceKind = config.kind
        self.num_arms = num_arms
        self._rdk_in = rdk
        self._rdk: Any = None
        self._sl = arm_slices(config.kind, num_arms)
        self.arm_names = ARM_NAMES[:num_arms] if num_arms <= len(ARM_NAMES) else tuple(f"arm{i}" for i in range(num_arms))
        self._robots: list[Any] = []
        self._arm_robot: list[int] = [0] * num_arms
        self._gripper: GripperProcess | None = None
        self._has_gripper = [bool(config.gripper_names) and bool(config.gripper_names[a]) for a in range(num_arms)]
        self._gripper_width = [math.nan] * num_arms  # last commanded (reported when no gripper state exists)
        self._last_rot = [(0.0, 0.0, 0.0)] * num_arms
        self._wrench = [(0.0, 0.0)] * num_arms  # last external (force [N], moment [Nm]) per arm
        self._hold_reason = ""
        self._joint_limits: tuple[list[list[float]], list[list[float]]] | None = None
        self._enabled = False
        self._message = "not connected"

    # ---- start-up ----------------------------------------------------------------------------------------------
    def connect(self) -> None:
        rdk = self._rdk = import_rdk(self._rdk_in)
        require_rdk(rdk, major=self.GENERATION, api=self.API, driver=self.DRIVER, hint=self.HINT)
        self._robots = [self._open(sn) for sn in self.config.serial_numbers]
        self._setup_arms()
        for ri in range(len(self._robots)):
            self._bring_up(ri, first=True)
        self._start_gripper()
        self._enabled = True
        self._message = self.ACTIVE_MESSAGE

    def _open(self, sn: str) -> Any:
        robot = call(f"connect {sn}", self._rdk.Robot, sn)
        self._check_model(robot, sn)
        return robot

    def _bring_up(self, ri: int, *, first: bool) -> None:
        """Steps 2–6 of the module docstring for robot ``ri`` (5 only when ``first``)."""
        robot, sn, c = self._robots[ri], self.config.serial_numbers[ri], self.config
        if not robot.estop_released():
            raise DriverError(f"{sn}: E-stop pressed: release it, then ~/reset_fault")
        if robot.recovery():
            raise DriverError(f"{sn}: in recovery state (a joint is outside its range): recover it with Flexiv "
                              "Elements (or RunAutoRecovery), then ~/reset_fault")  # fmt: skip
        if robot.fault():
            log.warning("%s is faulted: clearing the fault", sn)
            if not call("ClearFault", robot.ClearFault, int(c.clear_fault_timeout_s)):
                raise DriverError(f"{sn}: ClearFault failed ({self._last_event(robot) or 'no event'}): the fault "
                                  "needs attention on the robot")  # fmt: skip
        self._power_on(robot)
        try:
            wait_until(robot.operational, c.connect_timeout_s, f"{sn} to become operational")
        except DriverError as exc:
            raise DriverError(f"{exc}: {self._op_status(robot)}") from None
        if robot.mode() != self._rdk.Mode.IDLE:
            call("Stop", robot.Stop)
        self._switch_tools(ri)
        if first and c.zero_ft_sensor:
            call("SwitchMode", robot.SwitchMode, self._rdk.Mode.NRT_PRIMITIVE_EXECUTION)
            log.warning("zeroing the force/torque sensors of %s: nothing may touch the robot", sn)
            self._start_zero_ft(ri)
            wait_until(lambda: self._zero_ft_done(ri), c.connect_timeout_s, f"F/T sensor zeroing on {sn}")
        mode = getattr(self._rdk.Mode, self.CARTESIAN_MODE if self.kind == "cartesian" else self.JOINT_MODE)
        call("SwitchMode", robot.SwitchMode, mode)
        self._after_mode_switch(ri)

    def _start_gripper(self) -> None:
        if not any(self._has_gripper):
            return
        c = self.config
        self._gripper = GripperProcess(functools.partial(FlexivGripperBackend, self._gripper_spec()), self.num_arms,
                                       min_change_m=c.gripper_min_change_m,
                                       start_timeout_s=c.connect_timeout_s + GRIPPER_START_EXTRA_S)  # fmt: skip
        self._gripper.start()

    def _rdk_factory(self) -> Any:
        """How the gripper process gets the same flexivrdk (None = import it; stand-ins carry a ``factory``)."""
        return getattr(self._rdk_in, "factory", None) if self._rdk_in is not None else None

    def _arms_of(self, ri: int) -> list[int]:
        return [a for a in range(self.num_arms) if self._arm_robot[a] == ri]

    # ---- streaming (non-blocking) ------------------------------------------------------------------------------
    def _request_grippers(self, c: list[float]) -> None:
        for arm, sl in enumerate(self._sl):
            self._gripper_width[arm] = c[sl.gripper]
            if self._gripper is not None and self._has_gripper[arm]:
                self._gripper.request(arm, c[sl.gripper])

    def _gripper_state(self, arm: int) -> float:
        w = self._gripper.width(arm) if self._gripper is not None and self._has_gripper[arm] else math.nan
        if w == w:  # not NaN
            return w
        w = self._gripper_width[arm]
        return w if w == w else 0.0

    def _contact(self, arm: int, w: Any) -> str:
        """Record ``arm``'s external wrench [N, Nm]; the reason to hold when above the limits ("" = fine)."""
        f = math.sqrt(w[0] * w[0] + w[1] * w[1] + w[2] * w[2])
        m = math.sqrt(w[3] * w[3] + w[4] * w[4] + w[5] * w[5])
        self._wrench[arm] = (f, m)
        c = self.config
        if 0 < c.contact_force_limit_n < f:
            return (f"{self.arm_names[arm]} arm: external force {f:.1f} N > contact_force_limit_n "
                    f"{c.contact_force_limit_n:g} N")  # fmt: skip
        if 0 < c.contact_moment_limit_nm < m:
            return (f"{self.arm_names[arm]} arm: external moment {m:.2f} Nm > contact_moment_limit_nm "
                    f"{c.contact_moment_limit_nm:g} Nm")  # fmt: skip
        return ""

    def hold_request(self) -> str:
        """Why the executor should hold ("" = fine): the external wrench above its limit (from read_state)."""
        return self._hold_reason

    def joint_limits(self) -> tuple[list[list[float]], list[list[float]]] | None:
        """Per arm (q_min, q_max) [rad] from RobotInfo (joint action space; None otherwise)."""
        return self._joint_limits

    # ---- stop, reset, close ------------------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop every robot (``Stop``: brakes to rest, IDLE), even when one raises; DriverError names those."""
        self._enabled = False
        failures = []
        for ri, robot in enumerate(self._robots):
            try:
                call("Stop", robot.Stop)
            except DriverError as exc:
                failures.append(f"{self._robot_label(ri)}: {exc}")
        self._message = "stopped"
        if failures:
            self._message = "stop failed on " + "; ".join(failures)
            raise DriverError(self._message)

    def clear_fault(self) -> bool:
        """Reconnect, clear faults, bring the robots back to operational in the streaming mode (see the module
        docstring); False with the reason in ``status().message`` when that is not possible yet."""
        try:
            for ri, sn in enumerate(self.config.serial_numbers):
                if not self._robots[ri].connected():
                    log.warning("%s: connection lost: reconnecting", sn)
                    self._robots[ri] = self._open(sn)
            self._setup_arms()
            for ri in range(len(self._robots)):
                self._bring_up(ri, first=False)
            if self._gripper is not None and not self._gripper.alive:
                log.warning("gripper process not running (%s): restarting it", self._gripper.status().state)
                self._gripper.close()
                self._start_gripper()
        except DriverError as exc:
            self._message = str(exc)
            return False
        self._enabled = True
        self._message = self.ACTIVE_MESSAGE
        return True

    def close(self) -> None:
        if self._gripper is not None:
            self._gripper.close()
            self._gripper = None
        if self._enabled:
            try:
                self.stop()
            except DriverError as exc:
                log.warning("stop on close failed: %s", exc)
        self._robots = []

    # ---- status ------------------------------------------------------------------------------------------------
    def _robot_label(self, ri: int) -> str:
        arms = ", ".join(self.arm_names[a] for a in self._arms_of(ri))
        return f"{self.config.serial_numbers[ri]} ({arms} arm{'s' if len(self._arms_of(ri)) > 1 else ''})"

    @staticmethod
    def _op_status(robot: Any) -> str:
        try:
            return str(robot.operational_status().name)
        except (RuntimeError, AttributeError):
            return "unknown"

    def _refused(self, what: str, ri: int, exc: Exception) -> DriverError:
        """A command robot ``ri`` refused, with the robot's reason (an E-stop or a fault the operator must act on;
        the refusal alone says only "not operational"). Asked only on this path: the stream stops here."""
        robot = self._robots[ri]
        return DriverError(f"{what}: {exc}; {self._problem(ri, self._op_status(robot), self._last_event(robot))}")

    def _problem(self, ri: int, op_status: str, event: str) -> str:
        """Why robot ``ri`` is not READY, as status() and a refused command say it:
        ``<serial>: ESTOP_NOT_RELEASED (E-stop pressed)``."""
        return f"{self.config.serial_numbers[ri]}: {op_status}" + (f" ({event})" if event else "")

    @staticmethod
    def _last_event(robot: Any) -> str:
        try:
            log_ = robot.event_log()
        except RuntimeError:
            return ""
        return str(log_[-1].description) if log_ else ""

    def status(self) -> DriverStatus:
        if not self._robots:
            return DriverStatus(False, False, False, f"{self.LABEL}: {self._message}")
        details: list[tuple[str, str]] = []
        connected, fault, problems = True, False, []
        for ri, robot in enumerate(self._robots):
            if not robot.connected():
                connected = False
                problems.append(f"{self.config.serial_numbers[ri]}: connection lost")
                continue
            f, op, event = robot.fault(), self._op_status(robot), self._last_event(robot)
            fault = fault or f
            if op != "READY":
                problems.append(self._problem(ri, op, event))
            for a in self._arms_of(ri):
                n = self.arm_names[a]
                details += [(f"{n}_operational_status", op), (f"{n}_fault", str(f)),
                            (f"{n}_estop_released", str(robot.estop_released())), (f"{n}_reduced", str(robot.reduced())),
                            (f"{n}_recovery", str(robot.recovery())), (f"{n}_last_event", event),
                            (f"{n}_external_force_n", f"{self._wrench[a][0]:.2f}"),
                            (f"{n}_external_moment_nm", f"{self._wrench[a][1]:.3f}")]  # fmt: skip
        details += self._gripper_details() + self._extra_details()
        if self._gripper is not None and (g := self._gripper.status()).state != "ready":
            problems.append(f"gripper process {g.state}" + (f": {g.last_error}" if g.last_error else ""))
        msg = self._message
        if problems:
            msg += "; " + "; ".join(problems)
        if self._hold_reason:
            msg += f"; {self._hold_reason}"
        return DriverStatus(connected, self._enabled and not fault, fault, f"{self.LABEL}: {msg}", tuple(details))

    def _gripper_details(self) -> list[tuple[str, str]]:
        if self._gripper is None:
            return []
        st = self._gripper.status()
        out = [("gripper_process", st.state), ("gripper_commands_sent", str(st.sent)),
               ("gripper_errors", str(st.errors)), ("gripper_last_error", st.last_error)]  # fmt: skip
        for a, r in enumerate(st.width_range_m):
            if r is not None:
                out.append((f"{self.arm_names[a]}_gripper_width_range_m", f"{r[0]:.4f}..{r[1]:.4f}"))
        return out

    def _extra_details(self) -> list[tuple[str, str]]:
        return []
