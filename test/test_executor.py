"""Executor core with the simulated arms and the real servo loop: follows chunks, fault -> stop, hold, shutdown."""

import time

import numpy as np
import pytest

from rtc_controller.control.chunk import Chunk
from rtc_controller.control.delay_estimator import DelayEstimatorConfig
from rtc_controller.control.executor import Executor, ExecutorConfig
from rtc_controller.control.loop import LoopConfig
from rtc_controller.control.safety import SafetyConfig
from rtc_controller.control.timeline import PreparedChunk, Rejection, TimelineConfig
from rtc_controller.robots.sim import SimConfig, SimDriver, home_state

from executor_setup import DT, H, NAMES, QUIET, config, wait_until


@pytest.fixture
def make():
    started = []

    def _make(sim=QUIET, **kw):
        faults = []
        ex = Executor(config(**kw), SimDriver(sim), on_fault=faults.append)
        ex.start()
        started.append(ex)
        return ex, faults

    yield _make
    for ex in started:
        if ex.mode != "stopped":
            ex.shutdown(ramp_down_s=0.1)


def moving_chunk(t_obs, dx=0.05):
    a = np.repeat(home_state()[None], H, 0)
    a[:, 0] += np.linspace(0, dx, H)
    return Chunk(NAMES, a, t_obs, DT)


def test_follows_chunks_and_measures_delay(make):
    ex, _ = make()
    t_obs, _ = ex.latest_state()
    time.sleep(0.03)
    r = ex.submit(moving_chunk(t_obs))
    assert isinstance(r, PreparedChunk) and r.k_star >= 2
    assert ex.d == min(r.k_star, 25)  # one sample, quantile = itself (clamped to H − s on a stalled machine)
    assert wait_until(lambda: ex.latest_state()[1][0] > home_state()[0] + 0.02)  # the arm moved along the chunk
    snap = ex.snapshot()
    assert snap.switches == 1 and snap.mode == "running"
    assert snap.last_switch.k_star == r.k_star
    assert snap.loop.ticks > 0


def test_malformed_chunk_rejected_and_arms_hold(make):
    ex, _ = make()
    bad = Chunk(NAMES, np.full((H, 14), np.nan), ex.now_s(), DT)
    r = ex.submit(bad)
    assert isinstance(r, Rejection) and r.reason == "non_finite"
    time.sleep(0.1)
    _, state = ex.latest_state()
    np.testing.assert_allclose(state, home_state(), atol=1e-6)
    assert ex.snapshot().rejected["non_finite"] == 1


def test_robot_fault_stops_streaming_and_reports(make):
    ex, faults = make(sim=SimConfig(fault_at_s=0.2, noise_pos_m=0))
    ex.submit(moving_chunk(ex.now_s()))
    assert wait_until(lambda: ex.mode == "faulted" and faults)  # the mode is set just before the callback runs
    assert "fault" in faults[0]
    sent = ex.driver.commands_received
    time.sleep(0.1)
    assert ex.driver.commands_received == sent  # no more commands after the fault
    assert ex.resume() is False
    assert ex.reset_fault() is True
    assert wait_until(lambda: ex.mode == "holding")
    assert ex.resume() is True
    assert wait_until(lambda: ex.mode == "running" and ex.driver.commands_received > sent)


def test_lost_connection_faults(make):
    ex, faults = make(sim=SimConfig(disconnect_at_s=0.1))
    assert wait_until(lambda: ex.mode == "faulted")
    assert "connection lost" in ex.fault_message
    assert ex.reset_fault() is False


def test_hold_brakes_and_holds_while_chunks_keep_arriving(make):
    ex, _ = make()
    ex.submit(moving_chunk(ex.now_s(), dx=0.5))
    assert wait_until(lambda: float(np.max(ex.safety.speed)) > 0.05)
    ex.hold()
    assert wait_until(lambda: ex.mode == "holding" and float(np.max(ex.safety.speed)) < 1e-4)  # braked to rest
    time.sleep(0.05)
    _, s1 = ex.latest_state()
    ex.submit(moving_chunk(ex.now_s(), dx=0.5))
    time.sleep(0.2)
    _, s2 = ex.latest_state()
    assert ex.mode == "holding"
    assert abs(s2[0] - s1[0]) < 2e-3
    ex.resume()
    assert wait_until(lambda: ex.mode == "running")


def test_shutdown_ramps_down_then_stops_driver(make):
    ex, _ = make()
    ex.submit(moving_chunk(ex.now_s(), dx=1.0))
    assert wait_until(lambda: float(np.max(ex.safety.speed)) > 0.05)
    ex.shutdown(ramp_down_s=2.0)
    assert ex.mode == "stopped"
    assert float(np.max(ex.safety.speed)) < 1e-3
    assert not ex.driver.status().enabled


def test_config_consistency_checked():
    with pytest.raises(ValueError):
        ExecutorConfig(
            timeline=TimelineConfig(names=NAMES, action_rate_hz=50, max_horizon=H),
            delay=DelayEstimatorConfig(dt_s=0.01, horizon=H, execution_horizon=25),
            safety=SafetyConfig(servo_dt_s=0.001),
            loop=LoopConfig(rate_hz=1000),
        )


def test_switch_events_deferred_match_the_timeline_and_drain_once():
    """Switch ticks only capture the switch; the event computed after later ticks equals ChunkTimeline.sample's."""
    from rtc_controller.control.timeline import ChunkTimeline

    ex = Executor(config(), SimDriver(SimConfig(noise_pos_m=0, noise_rot_rad=0, noise_gripper_m=0)))
    ex.start(run_loop=False)
    reference = ChunkTimeline(ex.timeline.config)  # the same chunks through the plain timeline
    reference.reset(ex.timeline._hold)  # the pose the executor holds before its first chunk
    ref_events = []
    t0 = time.monotonic()
    for i in range(3):
        a = np.repeat(home_state()[None], H, 0)
        a[:, 0] += np.linspace(0, 0.05, H) * (i + 1)
        a[:, 5] += np.linspace(0, 0.3, H) * (i + 1)  # rotation about z: the SO(3) jump path
        chunk = Chunk(NAMES, a, ex.to_executor_time(t0 + 0.1 * i), DT)
        t_arrival = ex.to_executor_time(t0 + 0.1 * i + 0.03)
        ex.submit(chunk, t_arrival)
        reference.accept(reference.check(chunk, t_arrival))
        out = np.zeros(len(NAMES))
        for k in range(100):
            ex.tick(t0 + 0.1 * i + 0.03 + 0.001 * k)
            ev = reference.sample(ex.to_executor_time(t0 + 0.1 * i + 0.03 + 0.001 * k), out)
            if ev is not None:
                ref_events.append(ev)
    # deferred switch work runs only in a tick's slack (its deadline just passed): on a loaded machine the synthetic
    # deadlines above may all be too late for it, so finish it with on-time ticks
    for _ in range(20):
        ex.tick(time.monotonic())
    events = ex.drain_switch_events()
    assert len(events) == 3 and ex.drain_switch_events() == []
    assert [e.from_hold for e in events] == [True, False, False]
    assert ex.switches.pending == 0  # replaced chunks released
    assert len(ref_events) == 3
    for ev, ref in zip(events, ref_events):
        np.testing.assert_allclose(ev.jump, ref.jump, atol=1e-9)
        assert ev.jump_linear_m == pytest.approx(ref.jump_linear_m, abs=1e-9)
        assert ev.jump_angular_rad == pytest.approx(ref.jump_angular_rad, abs=1e-9)
        assert ev.from_hold == ref.from_hold and ev.k_star == ref.k_star
    assert events[1].jump_angular_rad > 1e-4
    snap = ex.snapshot()
    assert snap.last_switch is events[-1] and snap.max_jump_linear_m == max(e.jump_linear_m for e in events)
    ex.driver.close()


def test_huge_finite_values_are_refused_at_acceptance_and_the_loop_stays_healthy(make):
    """The adversarial run: 1e155 in left_x or left_rx jammed every later tick (OverflowError, ValueError)."""
    ex, _ = make()
    for col in (0, 3):
        c = moving_chunk(ex.now_s())
        c.actions[10, col] = 1e155
        r = ex.submit(c)
        assert isinstance(r, Rejection) and r.reason == "magnitude" and NAMES[col] in r.detail, r
    assert not ex.estimator.has_estimate, "rejected chunks never feed the delay estimate"
    good = ex.submit(moving_chunk(ex.now_s()))
    assert isinstance(good, PreparedChunk)
    assert wait_until(lambda: ex.snapshot().switches == 1)
    snap = ex.snapshot()
    assert snap.switches == 1 and snap.tick_errors == 0 and snap.loop.tick_errors == 0 and snap.mode == "running"


def test_a_failing_tick_holds_the_last_command_and_is_reported_until_resume(make):
    ex, _ = make()
    ex.submit(moving_chunk(ex.now_s()))
    assert wait_until(lambda: ex.timeline.active is not None)
    original = ex.timeline.capture
    calls = {"n": 0}

    def poisoned(t, out):
        calls["n"] += 1
        if calls["n"] <= 3:
            raise OverflowError("math range error")
        return original(t, out)

    ex.timeline.capture = poisoned
    assert wait_until(lambda: calls["n"] > 10)
    snap = ex.snapshot()
    assert snap.tick_errors == 3 and "OverflowError" in snap.tick_error
    assert snap.mode == "holding" and ex.timeline.active is None, "the poisoning chunk is dropped"
    assert snap.loop.tick_errors == 0, "the executor handles it; the loop never sees an exception"
    _, s1 = ex.latest_state()
    time.sleep(0.1)
    _, s2 = ex.latest_state()
    np.testing.assert_allclose(s1[:3], s2[:3], atol=1e-3)  # holding still
    assert ex.resume() and ex.snapshot().tick_error == ""
    assert isinstance(ex.submit(moving_chunk(ex.now_s())), PreparedChunk)
    assert wait_until(lambda: ex.snapshot().mode == "running" and ex.snapshot().switches >= 2)


def test_a_tick_that_keeps_failing_faults(make):
    ex, faults = make()
    ex.timeline.capture = lambda t, out: 1 / 0
    assert wait_until(lambda: ex.mode == "faulted" and faults)
    assert "ZeroDivisionError" in faults[0]
