"""The executor node's diagnostics (pure message building; no rclpy node): ``/diagnostics`` statuses named
``"<node>: <part>"`` (diagnostic_updater's convention, so rqt_robot_monitor and the aggregator config
``config/diagnostics_aggregator.yaml`` group them per node) and one ``DiagnosticStatus`` per chunk switch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

from rtc_controller.analysis.diagnostics_schema import (
    CHUNKS,
    DRIVER,
    INTERLOCK,
    LOOP,
    REJECTED_TOTAL,
    SAFETY,
    STARTUP,
    SWITCH,
    status_name,
    switch_values,
)
from rtc_controller.control.executor import ExecutorSnapshot
from rtc_controller.control.timeline import SwitchEvent

LATENESS_P99_TARGET_US = 200.0
LATE_WINDOW_LIMIT = 0.02  # Flexiv: > 2 % late commands in any 1-second window faults the robot
# The safety filter "keeps overriding" when it changed the command on more than this share of the servo ticks in
# each of SUSTAINED_PERIODS consecutive diagnostics periods (1 s each): then the filter, not the policy, commands
# the arms, and the policy or the limits are wrong (WARN). Smoothing the small step at a chunk switch (tens of ticks
# per switch) stays below it and is reported in the counts only.
SUSTAINED_PERIODS = 3
SUSTAINED_TICK_SHARE = 0.5

@dataclass
class NodeHealth:
    """What the node adds to the core's snapshot: its own rejections, the graph interlock, the sustained count."""

    rejected: dict[str, int] = field(default_factory=lambda: {"oversize": 0, "source": 0})
    interlock: tuple[str, ...] = ()
    interlock_needs_resume: bool = False
    ticks_seen: int = 0
    intervened_seen: int = 0
    intervened_share: float = 0.0  # share of the last period's ticks in which the filter changed the command
    intervention_periods: int = 0  # consecutive periods above SUSTAINED_TICK_SHARE
    chunk_writers_alive: int = -1  # live chunk publishers by DDS liveliness (-1 = no event yet)
    chunk_liveliness_lost: int = 0  # times a chunk publisher's liveliness lease ran out

    def on_chunk_liveliness(self, alive: int, not_alive_change: int, logger: Any = None) -> None:
        """A liveliness-changed event of the chunk subscription (DDS: a writer's lease ran out, or it came back)."""
        self.chunk_writers_alive = int(alive)
        if not_alive_change > 0:
            self.chunk_liveliness_lost += int(not_alive_change)
            if logger is not None:
                logger.warning(f"chunk publisher lost (DDS liveliness): {alive} alive; the inference node or the "
                               "link is down")  # fmt: skip

    def update_interventions(self, ticks: int, intervened_ticks: int) -> bool:
        """Feed the filter's tick counters once per period; True while its interventions are sustained."""
        dt, di = ticks - self.ticks_seen, intervened_ticks - self.intervened_seen
        self.ticks_seen, self.intervened_seen = ticks, intervened_ticks
        self.intervened_share = di / dt if dt > 0 and di >= 0 else 0.0
        above = self.intervened_share > SUSTAINED_TICK_SHARE
        self.intervention_periods = self.intervention_periods + 1 if above else 0
        return self.intervention_periods >= SUSTAINED_PERIODS


def _kv(key: str, value: Any) -> KeyValue:
    if isinstance(value, float):
        value = repr(value) if key.endswith("_s") and abs(value) > 1e6 else f"{value:.6g}"  # full-precision stamps
    return KeyValue(key=key, value=str(value))


def switch_event_to_status(ev: SwitchEvent, name: str) -> DiagnosticStatus:
    """One chunk switch -> DiagnosticStatus with the keys of ``analysis.diagnostics_schema.SwitchRecord``
    (t_switch_s, t_obs_s, delay_s, k_star, guided_d (-1 = unknown), jump_norm, the per-arm maxima, from_hold)."""
    values = [_kv(k, v) for k, v in switch_values(ev)]
    return DiagnosticStatus(level=DiagnosticStatus.OK, name=status_name(name, SWITCH), message="chunk switch",
                            values=values)  # fmt: skip


def snapshot_to_diagnostics(s: ExecutorSnapshot, name: str, hw_id: str, health: NodeHealth | None = None, *,
                            timeliness_limit_pct: float = 100 * LATE_WINDOW_LIMIT) -> list[DiagnosticStatus]:  # fmt: skip
    """Executor snapshot (+ the node's health) -> DiagnosticStatus list (loop timing, chunks/δ/d, safety, startup,
    driver, interlock). Call once per period: it advances the sustained-interventions count.

    The servo loop's timeliness against Flexiv's rule: ``late_pct_last_1s`` (the last 1-s window),
    ``late_pct_worst_1s`` (the worst since the statistics started), ``timeliness_limit_pct`` and
    ``timeliness_margin_pct`` (limit − the larger of the two; RDK 2 faults the robot at 0); WARN above the limit or
    the 2 % target, whichever is stricter. A failed servo tick (``tick_error``) is ERROR until ~/resume."""
    health = health or NodeHealth()
    ok, warn, err = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR
    lp = s.loop
    late_limit = min(LATE_WINDOW_LIMIT, timeliness_limit_pct / 100)  # a stricter robot limit warns earlier
    loop_bad = lp.worst_window_late_fraction > late_limit or lp.lateness_p99_us > LATENESS_P99_TARGET_US
    last_pct, worst_pct = 100 * lp.last_window_late_fraction, 100 * lp.worst_window_late_fraction
    loop = DiagnosticStatus(
        level=err if s.tick_error else (warn if loop_bad else ok),
        name=status_name(name, LOOP),
        hardware_id=hw_id,
        message=f"{s.tick_error}: holding (call ~/resume)" if s.tick_error else ("timing above target" if loop_bad else "ok"),
        values=[_kv(k, v) for k, v in lp.as_dict().items()]
        + [_kv("late_pct_last_1s", last_pct), _kv("late_pct_worst_1s", worst_pct),
           _kv("timeliness_limit_pct", timeliness_limit_pct),
           _kv("timeliness_margin_pct", timeliness_limit_pct - max(last_pct, worst_pct)),
           _kv("tick_errors", s.tick_errors)],  # fmt: skip
    )
    return [loop, _chunks_status(s, name, hw_id, health), _safety_status(s, name, hw_id, health),
            _startup_status(s, name, hw_id), _driver_status(s, name, hw_id), _interlock_status(name, hw_id, health)]


def _chunks_status(s: ExecutorSnapshot, name: str, hw_id: str, health: NodeHealth) -> DiagnosticStatus:
    last = s.last_switch
    rejected = {**s.rejected, **health.rejected}
    lost = health.chunk_writers_alive == 0
    message = "starving (holding the last action)" if s.starving else "ok"
    if lost:
        message += "; no live chunk publisher (DDS liveliness lost)"
    return DiagnosticStatus(
        level=DiagnosticStatus.WARN if s.starving or lost else DiagnosticStatus.OK,
        name=status_name(name, CHUNKS),
        hardware_id=hw_id,
        message=message,
        values=[
            _kv("delta_s", s.last_delay_s),
            _kv("delta_quantile_s", s.delay_quantile_s),
            _kv("d", s.d),
            _kv("accepted", s.accepted),
            _kv("switches", s.switches),
            _kv("last_k_star", last.k_star if last else -1),
            _kv("last_guided_d", last.guided_d if last and last.guided_d is not None else -1),
            _kv("last_jump_linear_m", last.jump_linear_m if last else 0.0),
            _kv("last_jump_angular_rad", last.jump_angular_rad if last else 0.0),
            _kv("max_jump_linear_m", s.max_jump_linear_m),
            _kv("max_jump_angular_rad", s.max_jump_angular_rad),
            _kv("starved_ticks", s.starved_ticks),
            _kv(REJECTED_TOTAL, sum(rejected.values())),
            *[_kv(f"rejected_{k}", c) for k, c in rejected.items()],
            _kv("last_rejection", s.last_rejection),
            _kv("active_t_obs_s", s.active_t_obs_s),
            _kv("chunk_writers_alive", health.chunk_writers_alive),
            _kv("chunk_liveliness_lost", health.chunk_liveliness_lost),
        ],
    )


def _safety_status(s: ExecutorSnapshot, name: str, hw_id: str, health: NodeHealth) -> DiagnosticStatus:
    total = sum(s.safety_interventions.values())
    sustained = health.update_interventions(s.safety_ticks, s.safety_intervened_ticks)
    return DiagnosticStatus(
        level=DiagnosticStatus.WARN if sustained else DiagnosticStatus.OK,
        name=status_name(name, SAFETY),
        hardware_id=hw_id,
        message=f"the filter changed more than {SUSTAINED_TICK_SHARE:.0%} of the commands in each of the last "
                f"{health.intervention_periods} s ({health.intervened_share:.0%} in the last): it, not the policy, "
                "commands the arms" if sustained else "ok",
        values=[_kv("interventions_total", total), _kv("intervened_tick_share", health.intervened_share)]
        + [_kv(f"interventions_{k}", c) for k, c in s.safety_interventions.items()]
        + [_kv(f"arm{i}_outside_workspace_m", e) for i, e in enumerate(s.workspace_excess_m)],
    )


def _startup_status(s: ExecutorSnapshot, name: str, hw_id: str) -> DiagnosticStatus:
    st = s.startup or {}
    return DiagnosticStatus(
        level=DiagnosticStatus.WARN if (st.get("approach_phase") == "refused" or s.hold_reason) else DiagnosticStatus.OK,
        name=status_name(name, STARTUP),
        hardware_id=hw_id,
        message=s.hold_reason or str(st.get("approach_message", "")) or "ok",
        values=[_kv(k, v) for k, v in st.items()] + [_kv("hold_reason", s.hold_reason)],
    )


def _driver_status(s: ExecutorSnapshot, name: str, hw_id: str) -> DiagnosticStatus:
    d = s.driver
    return DiagnosticStatus(
        level=DiagnosticStatus.ERROR if (s.mode == "faulted" or d.fault or not d.connected) else DiagnosticStatus.OK,
        name=status_name(name, DRIVER),
        hardware_id=hw_id,
        message=s.fault_message or d.message,
        values=[_kv("mode", s.mode), _kv("connected", d.connected), _kv("enabled", d.enabled), _kv("fault", d.fault),
                _kv("driver_message", d.message)] + [_kv(k, v) for k, v in d.details],  # fmt: skip
    )


def _interlock_status(name: str, hw_id: str, health: NodeHealth) -> DiagnosticStatus:
    if health.interlock:
        level, message = DiagnosticStatus.ERROR, "holding: " + "; ".join(health.interlock)
    elif health.interlock_needs_resume:
        level, message = DiagnosticStatus.WARN, "graph conflict cleared: holding until ~/resume"
    else:
        level, message = DiagnosticStatus.OK, "ok"
    return DiagnosticStatus(level=level, name=status_name(name, INTERLOCK), hardware_id=hw_id, message=message,
                            values=[_kv("conflicts", len(health.interlock))])  # fmt: skip


def dead_diagnostics(reason: str, name: str, hw_id: str) -> list[DiagnosticStatus]:
    """The servo loop is gone: an ERROR on the servo loop and driver statuses (mode = "dead")."""
    err = DiagnosticStatus.ERROR
    return [
        DiagnosticStatus(level=err, name=status_name(name, LOOP), hardware_id=hw_id, message=reason,
                         values=[_kv("mode", "dead")]),  # fmt: skip
        DiagnosticStatus(level=err, name=status_name(name, DRIVER), hardware_id=hw_id, message=reason,
                         values=[_kv("mode", "dead")]),  # fmt: skip
    ]


