"""The executor in its own process (no ROS): chunks followed, rejections with reasons, hold/resume, fault -> no
more commands, shutdown joins the child, a killed child is detected. One child per test, always shut down."""

import functools
import os
import signal
import time

import numpy as np
import pytest

from rtc_controller.control.chunk import Chunk
from rtc_controller.control.servo_child import SubmitAccepted
from rtc_controller.control.servo_process import ServoProcess, ServoProcessDied
from rtc_controller.control.timeline import Rejection
from rtc_controller.robots.base import DriverError
from rtc_controller.robots.sim import SimConfig, SimDriver, home_state

from executor_setup import DT, H, NAMES, QUIET, config


@pytest.fixture
def make():
    started = []

    def _make(sim=QUIET, **kw):
        sp = ServoProcess(config(**kw), functools.partial(SimDriver, sim))
        started.append(sp)
        sp.start()
        return sp

    yield _make
    for sp in started:
        sp.shutdown(ramp_down_s=0.1)
        assert not sp._proc.is_alive()


def wait_for(cond, timeout_s=3.0):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return False


def moving_chunk(t_obs, dx=0.05):
    a = np.repeat(home_state()[None], H, 0)
    a[:, 0] += np.linspace(0, dx, H)
    return Chunk(NAMES, a, t_obs, DT, guided_d=2)


def test_follows_chunks_state_via_shared_memory(make):
    sp = make()
    assert wait_for(lambda: sp.mode == "running")
    t_obs, state = sp.latest_state()
    assert abs(sp.now_s() - t_obs) < 0.05  # stamped on the executor clock, which now_s reads too
    np.testing.assert_allclose(state, home_state(), atol=1e-9)
    assert not sp.has_estimate
    time.sleep(0.03)
    t_arrival = sp.now_s()
    r = sp.submit(moving_chunk(t_obs), t_arrival)
    assert isinstance(r, SubmitAccepted)
    assert r.delay_s == pytest.approx(t_arrival - t_obs, abs=1e-12)  # δ on the node's arrival stamp, unchanged
    assert r.k_star >= 2 and sp.d == r.k_star and sp.has_estimate
    assert wait_for(lambda: sp.latest_state()[1][0] > home_state()[0] + 0.02)  # the arm follows the chunk
    events = []
    assert wait_for(lambda: events.extend(sp.drain_switch_events()) or events)
    assert len(events) == 1 and events[0].k_star == r.k_star and events[0].guided_d == 2 and events[0].from_hold
    assert sp.drain_switch_events() == []
    assert sp.active_t_obs_s == t_obs
    snap = sp.snapshot()
    assert snap.switches == 1 and snap.accepted == 1 and snap.mode == "running" and snap.loop.ticks > 100
    stats, lateness, period = sp.loop_records()
    assert abs(lateness.size - stats.window_ticks) <= 5 and period.size > 0  # the loop keeps running
    sp.set_fixed_d(7)
    assert sp.d == 7


def test_malformed_chunk_rejected_with_reason_and_arms_hold(make):
    sp = make()
    r = sp.submit(Chunk(NAMES, np.full((H, 14), np.nan), sp.now_s(), DT))
    assert isinstance(r, Rejection) and r.reason == "non_finite"
    r = sp.submit(Chunk(NAMES[:7], np.zeros((H, 7)), sp.now_s(), DT))
    assert isinstance(r, Rejection) and r.reason == "names"
    time.sleep(0.1)
    np.testing.assert_allclose(sp.latest_state()[1], home_state(), atol=1e-9)
    assert sp.snapshot().rejected["non_finite"] == 1


def test_hold_resume_and_start_holding(make):
    sp = make(start_holding=True)
    assert wait_for(lambda: sp.mode == "holding")
    sp.submit(moving_chunk(sp.latest_state()[0], dx=0.5))
    time.sleep(0.2)
    np.testing.assert_allclose(sp.latest_state()[1], home_state(), atol=1e-9)  # accepted, but holding
    assert sp.resume() is True
    assert wait_for(lambda: sp.mode == "running")
    sp.submit(moving_chunk(sp.latest_state()[0], dx=0.5))  # resume drops chunks from before it (stale)
    assert wait_for(lambda: sp.latest_state()[1][0] > home_state()[0] + 0.01)
    sp.hold()
    assert wait_for(lambda: sp.mode == "holding")
    time.sleep(0.4)  # braking
    x1 = sp.latest_state()[1][0]
    time.sleep(0.2)
    assert abs(sp.latest_state()[1][0] - x1) < 2e-3


def test_robot_fault_stops_streaming_and_reset(make):
    sp = make(sim=SimConfig(fault_at_s=0.2, noise_pos_m=0))
    sp.submit(moving_chunk(sp.now_s()))
    assert wait_for(lambda: sp.mode == "faulted")
    snap = sp.snapshot()
    assert "fault" in snap.fault_message and "fault" in sp.fault_message
    time.sleep(0.1)
    assert sp.snapshot().commands_sent == snap.commands_sent  # no more commands after the fault
    assert sp.resume() is False
    assert sp.reset_fault() is True
    assert wait_for(lambda: sp.mode == "holding")
    assert sp.resume() is True
    assert wait_for(lambda: sp.snapshot().commands_sent > snap.commands_sent)


def test_shutdown_ramps_down_and_joins(make):
    sp = make()
    sp.submit(moving_chunk(sp.latest_state()[0], dx=1.0))
    time.sleep(0.3)
    pid = sp.pid
    t0 = time.monotonic()
    sp.shutdown(ramp_down_s=1.0)
    assert time.monotonic() - t0 < 3.0
    assert sp.exitcode == 0 and sp.mode == "stopped" and not sp.alive
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(ServoProcessDied):
        sp.hold()
    sp.shutdown()  # idempotent


def test_killed_child_is_detected(make):
    sp = make()
    os.kill(sp.pid, signal.SIGKILL)
    assert wait_for(lambda: not sp.alive)
    assert sp.mode == "dead" and sp.exitcode == -signal.SIGKILL
    with pytest.raises(ServoProcessDied):
        sp.submit(moving_chunk(sp.now_s()))
    with pytest.raises(ServoProcessDied):
        sp.snapshot()
    sp.shutdown()  # reaps without raising
    assert sp.mode == "stopped"


def test_driver_start_failure_raises_and_leaves_no_child():
    sp = ServoProcess(config(), functools.partial(SimDriver, SimConfig(fault_at_s=0.0)))
    with pytest.raises(DriverError, match="fault"):
        sp.start()
    assert not sp._proc.is_alive()


def test_a_child_stopped_by_a_group_sigterm_is_still_reaped_and_its_memory_released(make):
    """systemd/docker send SIGTERM to every process of the group: the child ramps down and reports "stopped" by
    itself; the proxy's shutdown must still join it and unlink the shared memory (it leaked when skipped)."""
    sp = make()
    name = sp.shm_name
    assert os.path.exists(f"/dev/shm/{name.lstrip('/')}")
    os.kill(sp.pid, signal.SIGTERM)
    assert wait_for(lambda: not sp.alive or sp.mode == "stopped", 10.0)
    sp.shutdown()
    assert sp.mode == "stopped" and sp.exitcode == 0
    assert not os.path.exists(f"/dev/shm/{name.lstrip('/')}"), "shared memory leaked"
