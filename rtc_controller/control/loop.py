"""The servo loop: a dedicated thread calling ``tick(deadline_s)`` at ``rate_hz`` on absolute monotonic deadlines.

Timing rules (DESIGN.md, "Real-time loop"):
- Deadlines are ``t0 + i·period`` on ``time.monotonic()``: no drift from accumulated sleep errors.
- Waiting is hybrid: ``time.sleep`` until ``spin_s`` before the deadline (timer slack set to 1 ns where the OS
  allows), then a busy spin. ``spin_s = 0`` sleeps only.
- A tick that ends past the next deadline by more than a period skips the missed ticks instead of bursting
  them (counted as skipped and as late in the window statistics).
- ``sys.setswitchinterval`` is set far below 1 ms so other Python threads give the GIL back quickly.
- Garbage collection stays out of the hot path: ``gc.freeze()`` + ``gc.disable()`` while the loop runs; the loop
  itself collects the young generations in the slack after a tick, when Python's own thresholds say so
  (gen 0 above ``GC_GEN0_THRESHOLD`` allocations, gen 1 after ``GC_GEN1_THRESHOLD`` gen-0 collections), at most
  every ``gc_collect_period_s``: small, frequent collections instead of one long one. The oldest generation is
  not collected while the loop runs (objects alive at start are frozen; ``stop`` collects everything).
- Optional ``SCHED_FIFO`` priority and CPU affinity for the loop thread; a warning (not a failure) when the
  process lacks the permission.

Statistics: lateness = wake-up time − deadline [s]; period = time between consecutive wake-ups [s]; a tick is
*late* when its lateness exceeds ``late_threshold_s`` (default one period); the worst late fraction over any
sliding 1-second window is tracked (Flexiv faults the robot above 2 % late commands in a 1-second window).
"""

from __future__ import annotations

import ctypes
import gc
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

log = logging.getLogger(__name__)

PR_SET_TIMERSLACK = 29
GC_GEN0_THRESHOLD = 700  # Python's default gc thresholds (700, 10, 10)
GC_GEN1_THRESHOLD = 10
US_PER_S = 1e6
GcMode = Literal["freeze", "normal"]


@dataclass(frozen=True)
class LoopConfig:
    """Attributes:
    rate_hz: tick rate [Hz].
    spin_s: busy-wait this long before each deadline [s] (0 = sleep only).
    switch_interval_s: ``sys.setswitchinterval`` while the loop runs [s].
    late_threshold_s: a tick later than this is "late" [s]; None = one period.
    sched_fifo_priority: 1…99 for SCHED_FIFO, 0 = leave the scheduler alone.
    cpu_affinity: CPUs for the loop thread, () = any.
    gc_mode: "freeze" (gc off, collected in the slack) or "normal" (Python's default).
    gc_collect_period_s: least time between two slack collections [s].
    stats_capacity: ticks kept for the percentile statistics (a ring buffer).
    """

    rate_hz: float = 1000.0
    spin_s: float = 0.0002
    switch_interval_s: float = 5e-5
    late_threshold_s: float | None = None
    sched_fifo_priority: int = 0
    cpu_affinity: tuple[int, ...] = ()
    gc_mode: GcMode = "freeze"
    gc_collect_period_s: float = 0.005
    stats_capacity: int = 10_000

    def __post_init__(self) -> None:
        if not (0 < self.rate_hz <= 10_000 and math.isfinite(self.rate_hz)):
            raise ValueError(f"rate_hz must be in (0, 10000], got {self.rate_hz}")
        if not 0 <= self.spin_s < 1.0 / self.rate_hz:
            raise ValueError(f"spin_s must be in [0, period), got {self.spin_s}")
        if not 0 < self.switch_interval_s <= 0.005:
            raise ValueError(f"switch_interval_s must be in (0, 5 ms], got {self.switch_interval_s}")
        if not 0 <= self.sched_fifo_priority <= 99:
            raise ValueError(f"sched_fifo_priority must be 0 (off) or 1..99, got {self.sched_fifo_priority}")
        if self.gc_mode not in ("freeze", "normal"):
            raise ValueError(f"gc_mode must be 'freeze' or 'normal', got {self.gc_mode!r}")
        if self.stats_capacity < 10 or self.gc_collect_period_s <= 0:
            raise ValueError("stats_capacity >= 10 and gc_collect_period_s > 0 required")

    @property
    def period_s(self) -> float:
        return 1.0 / self.rate_hz


@dataclass(frozen=True)
class LoopStats:
    """Snapshot of the loop's timing. Percentiles over the last ``window_ticks`` ticks; counts since start. [µs]"""

    ticks: int
    skipped: int
    late_ticks: int
    worst_window_late_fraction: float
    window_ticks: int
    lateness_p50_us: float
    lateness_p99_us: float
    lateness_p999_us: float
    lateness_max_us: float
    period_p50_us: float
    period_p99_us: float
    period_max_us: float
    tick_p99_us: float
    tick_max_us: float
    gc_collections: int
    gc_max_us: float
    tick_errors: int
    last_window_late_fraction: float = 0.0  # late fraction of the last 1-s window (Flexiv's timeliness rule)

    def as_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


class _Stats:
    """Preallocated timing records written by the loop thread only."""

    def __init__(self, capacity: int, window: int) -> None:
        self.lateness = np.zeros(capacity)
        self.period = np.zeros(capacity)
        self.duration = np.zeros(capacity)
        self.n = 0
        self.flags = bytearray(window)  # late flags of the last `window` ticks (sliding 1-second window)
        self.flag_i = 0
        self.flag_sum = 0
        self.flag_seen = 0
        self.worst = 0.0
        self.late_ticks = 0
        self.skipped = 0
        self.gc_collections = 0
        self.gc_max_s = 0.0
        self.tick_errors = 0

    def push_flag(self, late: int) -> None:
        w = len(self.flags)
        i = self.flag_i
        self.flag_sum += late - self.flags[i]
        self.flags[i] = late
        self.flag_i = (i + 1) % w
        self.flag_seen += 1
        if self.flag_seen >= w:
            f = self.flag_sum / w
            if f > self.worst:
                self.worst = f


def set_process_fifo_priority(priority: int, *, exclude_tids: tuple[int, ...] = ()) -> list[str]:
    """SCHED_FIFO ``priority`` for every existing thread of this process (threads created later inherit it from
    their creator), except ``exclude_tids``. Returns warnings (empty on success).

    Why: a Python thread at real-time priority still needs the GIL; if the thread holding it (a ROS callback)
    is preempted by an unrelated process, the servo thread waits (priority inversion through the GIL). Running the
    whole executor process above normal processes, with the servo thread highest, removes that wait.
    """
    if priority <= 0:
        return []
    warnings = []
    for tid in sorted(int(t) for t in os.listdir("/proc/self/task")):
        if tid in exclude_tids:
            continue
        try:
            os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(priority))
        except (OSError, AttributeError) as exc:
            warnings.append(f"process SCHED_FIFO priority {priority} not applied to thread {tid}: {exc}")
            break
    for w in warnings:
        log.warning(w)
    return warnings


def _pct(a: np.ndarray, q: float) -> float:
    return float(np.percentile(a, q)) * US_PER_S if a.size else math.nan


def _pcts(a: np.ndarray, qs: tuple[float, ...]) -> list[float]:
    """Several percentiles [µs] in one partition pass (each numpy call holds the GIL throughout: fewer, not
    longer, calls keep the servo thread's waits short; 10 s at 1 kHz: ~1.6 ms -> ~0.6 ms per stats())."""
    if not a.size:
        return [math.nan] * len(qs)
    return [float(v) * US_PER_S for v in np.percentile(a, qs)]


class ServoLoop:
    """Runs ``tick(deadline_s)`` (``deadline_s`` on ``time.monotonic()``) in its own thread. See module docstring."""

    def __init__(self, config: LoopConfig, tick: Callable[[float], None], *, name: str = "servo_loop") -> None:
        self.config = config
        self._tick = tick
        self._name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stats = _Stats(config.stats_capacity, max(1, round(config.rate_hz)))
        self._late_s = config.late_threshold_s if config.late_threshold_s is not None else config.period_s
        self._old_switch = sys.getswitchinterval()
        self._gc_was_enabled = gc.isenabled()
        self.warnings: list[str] = []
        self.last_error: BaseException | None = None
        self._reset_stats = False
        self.native_id: int | None = None

    # ---- lifecycle ---------------------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("loop already started")
        self._stop.clear()
        sys.setswitchinterval(self.config.switch_interval_s)
        if self.config.gc_mode == "freeze":
            self._gc_was_enabled = gc.isenabled()
            gc.collect()
            gc.freeze()  # everything alive now is never scanned again
            gc.disable()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        sys.setswitchinterval(self._old_switch)
        if self.config.gc_mode == "freeze":
            gc.unfreeze()
            if self._gc_was_enabled:
                gc.enable()
            gc.collect()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # ---- real-time setup ---------------------------------------------------------------------------------------
    def _warn(self, msg: str) -> None:
        self.warnings.append(msg)
        log.warning(msg)

    def _setup_thread(self) -> None:
        self.native_id = threading.get_native_id()
        cfg = self.config
        try:  # 1 ns timer slack: time.sleep wakes close to its deadline instead of up to 50 µs later
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_TIMERSLACK, ctypes.c_ulong(1), 0, 0, 0)
        except (OSError, AttributeError) as exc:  # pragma: no cover - non-Linux
            self._warn(f"could not set timer slack: {exc}")
        if cfg.cpu_affinity:
            try:
                os.sched_setaffinity(0, cfg.cpu_affinity)  # 0 = the calling thread on Linux
            except (OSError, AttributeError) as exc:
                self._warn(f"CPU affinity {cfg.cpu_affinity} not applied: {exc}")
        if cfg.sched_fifo_priority:
            try:
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(cfg.sched_fifo_priority))
            except (OSError, AttributeError) as exc:
                self._warn(
                    f"SCHED_FIFO priority {cfg.sched_fifo_priority} not permitted ({exc}); running with the "
                    "default scheduler (grant CAP_SYS_NICE or an rtprio limit to enable it)"
                )

    # ---- the loop ----------------------------------------------------------------------------------------------
    def _run(self) -> None:
        self._setup_thread()
        cfg = self.config
        period = cfg.period_s
        spin = cfg.spin_s
        late_s = self._late_s
        st = self._stats
        cap = cfg.stats_capacity
        mono = time.monotonic
        sleep = time.sleep
        freeze = cfg.gc_mode == "freeze"
        gc_every = max(1, round(cfg.gc_collect_period_s / period))
        since_gc = 0
        deadline = mono() + period
        prev_wake = math.nan
        while not self._stop.is_set():
            if self._reset_stats:  # swapped here, in the only thread that writes the records
                st = self._stats = _Stats(cap, len(st.flags))
                self._reset_stats = False
                prev_wake = math.nan
            remaining = deadline - mono() - spin
            if remaining > 0.0:
                sleep(remaining)
            while mono() < deadline:
                pass
            wake = mono()
            lateness = wake - deadline
            try:
                self._tick(deadline)
            except Exception as exc:  # the tick owns its error handling; never let the thread die silently
                st.tick_errors += 1
                if self.last_error is None or st.tick_errors % 1000 == 1:
                    log.exception("servo tick raised")
                self.last_error = exc
            done = mono()
            i = st.n % cap
            st.lateness[i] = lateness
            st.period[i] = wake - prev_wake
            st.duration[i] = done - wake
            st.n += 1
            prev_wake = wake
            late = 1 if lateness > late_s else 0
            st.late_ticks += late
            st.push_flag(late)
            deadline += period
            if done > deadline + period:  # overran by more than a period: skip, do not burst
                deadline = _skip_missed(st, deadline=deadline, done=done, period=period)
            since_gc += 1
            if freeze and since_gc >= gc_every and deadline - mono() > 0.5 * period and _collect_young(st):
                since_gc = 0

    # ---- statistics --------------------------------------------------------------------------------------------
    def reset_stats(self, timeout_s: float = 1.0) -> None:
        """Start the statistics afresh (e.g. after warm-up); waits until the loop thread has applied it."""
        self._reset_stats = True
        end = time.monotonic() + timeout_s
        while self._reset_stats and self.running and time.monotonic() < end:
            time.sleep(0.001)

    def stats(self) -> LoopStats:
        """A snapshot (percentiles over the last ``stats_capacity`` ticks; safe to call from another thread)."""
        st = self._stats
        n = min(st.n, self.config.stats_capacity)
        lat = st.lateness[:n].copy()
        per = st.period[:n].copy()
        per = per[np.isfinite(per)]
        dur = st.duration[:n].copy()
        lat50, lat99, lat999 = _pcts(lat, (50, 99, 99.9))
        per50, per99 = _pcts(per, (50, 99))
        return LoopStats(
            ticks=st.n,
            skipped=st.skipped,
            late_ticks=st.late_ticks,
            worst_window_late_fraction=st.worst,
            window_ticks=n,
            lateness_p50_us=lat50,
            lateness_p99_us=lat99,
            lateness_p999_us=lat999,
            lateness_max_us=float(lat.max()) * US_PER_S if n else math.nan,
            period_p50_us=per50,
            period_p99_us=per99,
            period_max_us=float(per.max()) * US_PER_S if per.size else math.nan,
            tick_p99_us=_pct(dur, 99),
            tick_max_us=float(dur.max()) * US_PER_S if n else math.nan,
            gc_collections=st.gc_collections,
            gc_max_us=st.gc_max_s * US_PER_S,
            tick_errors=st.tick_errors,
            last_window_late_fraction=st.flag_sum / len(st.flags) if st.flag_seen else 0.0,
        )

    def periods_s(self) -> np.ndarray:
        """Recorded periods between wake-ups [s] (the first tick after start/reset has none: left out)."""
        per = self._stats.period[: min(self._stats.n, self.config.stats_capacity)].copy()
        return per[np.isfinite(per)]

    def lateness_s(self) -> np.ndarray:
        """All recorded lateness values [s] in the ring buffer (unordered once it wrapped)."""
        return self._stats.lateness[: min(self._stats.n, self.config.stats_capacity)].copy()


def _skip_missed(st: _Stats, *, deadline: float, done: float, period: float) -> float:
    """A tick that overran by more than a period: count the ticks it missed as skipped and late, and return the
    next deadline after ``done`` on the same grid (the loop does not burst to catch up)."""
    missed = int((done - deadline) / period)
    deadline += missed * period
    st.skipped += missed
    st.late_ticks += missed
    for _ in range(min(missed, len(st.flags))):
        st.push_flag(1)
    return deadline


def _collect_young(st: _Stats) -> bool:
    """In the loop's slack (gc frozen): collect generation 1 or 0 when it is over its threshold; True if it did."""
    c0, c1, _ = gc.get_count()
    gen = 1 if c1 >= GC_GEN1_THRESHOLD else (0 if c0 >= GC_GEN0_THRESHOLD else -1)
    if gen < 0:
        return False
    g0 = time.monotonic()
    gc.collect(gen)
    st.gc_collections += 1
    st.gc_max_s = max(st.gc_max_s, time.monotonic() - g0)
    return True
