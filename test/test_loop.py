"""Servo loop: absolute deadlines, skip-not-burst on overruns, GIL switch interval, gc, RT options, statistics."""

import gc
import os
import sys
import threading
import time
import weakref

import pytest

from rtc_controller.control.loop import LoopConfig, ServoLoop, _Stats


def run_for(loop, seconds):
    loop.start()
    try:
        time.sleep(seconds)
    finally:
        loop.stop()


def run_until(loop, condition, timeout_s=10.0):
    """Run the loop until ``condition()`` (a count of ticks, not a time: ticks come late on a loaded machine)."""
    loop.start()
    try:
        end = time.monotonic() + timeout_s
        while not condition() and time.monotonic() < end:
            time.sleep(0.005)
    finally:
        loop.stop()


def test_config_validation():
    with pytest.raises(ValueError):
        LoopConfig(rate_hz=0)
    with pytest.raises(ValueError):
        LoopConfig(rate_hz=1000, spin_s=0.002)
    with pytest.raises(ValueError):
        LoopConfig(sched_fifo_priority=100)
    with pytest.raises(ValueError):
        LoopConfig(switch_interval_s=0.01)


def test_deadlines_are_absolute_and_do_not_drift():
    deadlines, wakes = [], []

    def tick(deadline):
        deadlines.append(deadline)
        wakes.append(time.monotonic())

    loop = ServoLoop(LoopConfig(rate_hz=500, spin_s=0.0001), tick)
    run_for(loop, 0.6)
    period = 1 / 500
    steps = [(b - a) / period for a, b in zip(deadlines, deadlines[1:])]
    # every deadline is the previous one plus a whole number of periods (1 unless ticks were skipped)
    assert all(abs(s - round(s)) < 1e-6 and round(s) >= 1 for s in steps)
    st = loop.stats()
    assert st.ticks == len(deadlines)
    assert st.ticks + st.skipped == round((deadlines[-1] - deadlines[0]) / period) + 1
    # no accumulated drift: recent ticks still wake right at their absolute deadlines (drift would make all of them
    # late; one late wake-up on a loaded machine is not drift)
    assert min(w - d for w, d in zip(wakes[-50:], deadlines[-50:])) < 0.005


def test_overrun_is_skipped_not_burst():
    wakes = []
    state = {"n": 0}

    def tick(deadline):
        wakes.append(time.monotonic())
        state["n"] += 1
        if state["n"] == 20:
            time.sleep(0.0105)  # ~10 periods of overrun

    loop = ServoLoop(LoopConfig(rate_hz=1000, spin_s=0.0001), tick)
    run_for(loop, 0.3)
    st = loop.stats()
    assert st.skipped >= 8
    gaps = [b - a for a, b in zip(wakes[19:30], wakes[20:31])]
    # after the overrun the loop does not fire a burst of back-to-back ticks to catch up
    assert sum(g < 0.0003 for g in gaps) <= 2
    assert st.late_ticks >= st.skipped


def test_switch_interval_and_gc_are_managed_and_restored():
    seen = {"ticks": 0}
    freed = []

    class Cyclic:
        pass

    def tick(_):
        seen.setdefault("switch", sys.getswitchinterval())
        seen.setdefault("gc", gc.isenabled())
        seen["ticks"] += 1
        for _ in range(100):  # cyclic garbage, as ROS callbacks make: only a collection frees it
            a = Cyclic()
            a.me = a
            weakref.finalize(a, freed.append, 1)
        if seen["ticks"] == 150:
            seen["freed_while_running"] = len(freed)

    before = sys.getswitchinterval()
    gc_before = gc.isenabled()
    loop = ServoLoop(LoopConfig(rate_hz=1000, switch_interval_s=1e-4, gc_collect_period_s=0.01), tick)
    run_until(loop, lambda: seen["ticks"] >= 200)
    assert seen["switch"] == pytest.approx(1e-4)
    assert seen["gc"] is False
    assert sys.getswitchinterval() == before and gc.isenabled() == gc_before
    assert loop.stats().gc_collections >= 5  # the slack collections ran
    assert seen["freed_while_running"] > 1000  # and they freed cyclic garbage while automatic gc was off


def test_sched_fifo_and_affinity_warn_instead_of_failing():
    info = {}

    def tick(_):
        if "sched" not in info:
            info["sched"] = os.sched_getscheduler(0)
            info["cpus"] = os.sched_getaffinity(0)

    loop = ServoLoop(LoopConfig(rate_hz=200, sched_fifo_priority=80, cpu_affinity=(0,)), tick)
    run_until(loop, lambda: loop.stats().ticks > 5)
    assert loop.stats().ticks > 5  # ran either way
    assert info["sched"] == os.SCHED_FIFO or any("SCHED_FIFO" in w for w in loop.warnings)
    assert info["cpus"] == {0} or any("affinity" in w for w in loop.warnings)
    assert os.sched_getscheduler(0) != os.SCHED_FIFO or info["sched"] != os.SCHED_FIFO  # main thread untouched


def test_tick_exceptions_are_counted_and_the_loop_keeps_running():
    def tick(_):
        raise RuntimeError("boom")

    loop = ServoLoop(LoopConfig(rate_hz=500), tick)
    run_until(loop, lambda: loop.stats().ticks > 10)
    st = loop.stats()
    assert st.tick_errors == st.ticks > 10
    assert isinstance(loop.last_error, RuntimeError)


def test_worst_window_late_fraction_is_a_sliding_window():
    st = _Stats(capacity=100, window=100)
    for i in range(1000):
        st.push_flag(1 if 450 <= i < 453 else 0)  # 3 late ticks in a row
    assert st.worst == pytest.approx(0.03)
    st2 = _Stats(capacity=100, window=100)
    for i in range(1000):
        st2.push_flag(1 if i % 100 == 0 else 0)  # 1 per window, at most 2 in any window
    assert st2.worst <= 0.02


def test_percentiles_reported_in_microseconds():
    loop = ServoLoop(LoopConfig(rate_hz=1000), lambda _: None)
    run_for(loop, 0.3)
    st = loop.stats()
    assert 900 < st.period_p50_us < 1100
    assert st.lateness_p50_us < 500
    assert threading.active_count() >= 1


def test_reset_stats_starts_afresh():
    loop = ServoLoop(LoopConfig(rate_hz=1000), lambda _: None)
    loop.start()
    try:
        end = time.monotonic() + 10.0
        while loop.stats().ticks <= 100 and time.monotonic() < end:
            time.sleep(0.01)
        assert loop.stats().ticks > 100
        loop.reset_stats()
        assert loop.stats().ticks < 20
    finally:
        loop.stop()
