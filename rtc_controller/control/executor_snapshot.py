"""The executor core's state for diagnostics, in one frozen record (ROS-free; any thread)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rtc_controller.control.executor_types import ExecutorSnapshot

if TYPE_CHECKING:
    from rtc_controller.control.executor import Executor

__all__ = ["snapshot_of"]


def snapshot_of(ex: Executor) -> ExecutorSnapshot:
    """Mode, loop timing, δ/d, chunk counters, safety interventions, driver and start-up status of ``ex``."""
    tl = ex.timeline
    active = tl.active
    return ExecutorSnapshot(
        mode=ex.mode,
        fault_message=ex.fault_message,
        loop=ex.loop.stats(),
        last_delay_s=ex.estimator.last_delay_s,
        delay_quantile_s=ex.estimator.quantile_s(),
        d=ex.estimator.d,
        accepted=tl.counters.accepted,
        switches=tl.counters.switches,
        rejected=dict(tl.counters.rejected),
        last_rejection=(f"{tl.last_rejection.reason}: {tl.last_rejection.detail}" if tl.last_rejection else ""),
        last_switch=ex.switches.last,
        max_jump_linear_m=ex.switches.max_jump_linear_m,
        max_jump_angular_rad=ex.switches.max_jump_angular_rad,
        starving=tl.starving,
        starved_ticks=tl.counters.starved_ticks,
        safety_interventions=dict(ex.safety.counters.interventions),
        safety_ticks=ex.safety.counters.ticks,
        safety_intervened_ticks=ex.safety.counters.intervened_ticks,
        driver=ex.driver.status(),
        active_t_obs_s=active.chunk.t_obs_s if active is not None else math.nan,
        commands_sent=ex.commands_sent,
        startup=ex.startup.status(),
        hold_reason=ex.hold_reason,
        workspace_excess_m=ex.safety.workspace_excess_m(),
        tick_errors=ex.tick_errors,
        tick_error=ex.tick_error,
    )
