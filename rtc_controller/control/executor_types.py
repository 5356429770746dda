"""The executor core's configuration and its diagnostics snapshot (re-exported by ``control/executor.py``)."""

from __future__ import annotations

from dataclasses import dataclass

from rtc_controller.control.approach import ApproachConfig
from rtc_controller.control.executor_modes import Mode
from rtc_controller.control.delay_estimator import DelayEstimatorConfig
from rtc_controller.control.loop import LoopConfig, LoopStats
from rtc_controller.control.safety import SafetyConfig
from rtc_controller.control.startup import StartupSupervisor
from rtc_controller.control.timeline import SwitchEvent, TimelineConfig
from rtc_controller.robots.base import DriverStatus



@dataclass(frozen=True)
class ExecutorConfig:
    """Everything the executor core needs; built by the node from its parameters."""

    timeline: TimelineConfig
    delay: DelayEstimatorConfig
    safety: SafetyConfig
    loop: LoopConfig
    ramp_down_s: float = 0.5
    start_holding: bool = False
    approach: ApproachConfig = ApproachConfig()
    joint_limit_margin_rad: float = 0.05

    def __post_init__(self) -> None:
        if abs(self.safety.servo_dt_s - self.loop.period_s) > 1e-12:
            raise ValueError("safety.servo_dt_s must equal the loop period")
        if abs(self.delay.dt_s - self.timeline.dt_s) > 1e-12:
            raise ValueError("delay.dt_s must equal the timeline's action step")
        if self.delay.horizon != self.timeline.max_horizon:
            raise ValueError("delay.horizon must equal timeline.max_horizon")
        if self.ramp_down_s < 0:
            raise ValueError("ramp_down_s must be >= 0")
        StartupSupervisor(self.approach, self.safety.arms, self.safety.kind)  # ValueError: ready_pose size/box


@dataclass(frozen=True)
class ExecutorSnapshot:
    """What diagnostics report (copied out of the loop's state)."""

    mode: Mode
    fault_message: str
    loop: LoopStats
    last_delay_s: float
    delay_quantile_s: float
    d: int
    accepted: int
    switches: int
    rejected: dict[str, int]
    last_rejection: str
    last_switch: SwitchEvent | None
    max_jump_linear_m: float
    max_jump_angular_rad: float
    starving: bool
    starved_ticks: int
    safety_interventions: dict[str, int]
    driver: DriverStatus
    active_t_obs_s: float
    commands_sent: int = 0
    startup: dict | None = None
    hold_reason: str = ""
    workspace_excess_m: tuple[float, ...] = ()
    tick_errors: int = 0
    tick_error: str = ""  # latched until ~/resume (or a fault reset): the arms hold meanwhile
    safety_ticks: int = 0  # ticks through the safety filter
    safety_intervened_ticks: int = 0  # of those, ticks in which it changed the command
