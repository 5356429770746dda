"""The gripper process: width requests cross to a child with its own backend; its blocking calls (which hold the
GIL, like the real ``Gripper.Move``) never delay the servo loop, while on a thread of the servo process they do."""

import functools
import time

import numpy as np
import pytest

from rtc_controller.control.chunk import Chunk
from rtc_controller.control.executor import Executor
from rtc_controller.robots.base import DriverError
from rtc_controller.robots.gripper_process import GripperProcess
from rtc_controller.robots.sim import SimConfig, SimDriver, home_state
from rtc_controller.robots.sim_gripper import SimGripperBackend

from executor_setup import DT, H, NAMES, config, wait_until


class FailingBackend(SimGripperBackend):
    def connect(self):
        raise RuntimeError("gripper 'Flexiv-GN01' does not exist")


def test_requests_reach_the_child_only_on_meaningful_change_and_widths_come_back():
    gp = GripperProcess(functools.partial(SimGripperBackend, 2, move_block_s=0.0, speed_m_s=1.0), 2)
    gp.start()
    try:
        assert gp.width_range_m == ((0.0, 0.1), (0.0, 0.1))
        assert gp.width(0) == pytest.approx(0.04)
        for k in range(50):
            gp.request(0, 0.07 + 1e-4 * (k % 3))  # jitter below min_change_m (2 mm)
            gp.request(1, 0.04 + 1e-4 * (k % 3))  # the current width: nothing to send
        assert wait_until(lambda: abs(gp.width(0) - 0.07) < 1e-3)
        st = gp.status()
        assert st.state == "ready" and st.sent == 1 and st.errors == 0  # jitter is never "settled": one send
        for w in np.linspace(0.07, 0.03, 41):  # a ramp in 1 mm steps: every other one is sent, and its end
            gp.request(0, float(w))
        gp.request(0, 0.03)
        assert wait_until(lambda: abs(gp.width(0) - 0.03) < 1e-9)
        assert gp.width(1) == pytest.approx(0.04)
        gp.request(0, 0.5)  # beyond the gripper's range: clamped by the backend, not an error
        assert wait_until(lambda: abs(gp.width(0) - 0.1) < 1e-3)
    finally:
        gp.close()
    assert gp.status().state == "not started"


def test_a_backend_that_cannot_connect_is_refused_with_its_reason():
    gp = GripperProcess(functools.partial(FailingBackend, 2), 2)
    with pytest.raises(DriverError, match="gripper process: RuntimeError: gripper 'Flexiv-GN01' does not exist"):
        gp.start()


def stalls(channel: str, block_s: float, seconds: float) -> tuple[int, float, int]:
    """Run the executor (real servo loop, sim arms) with gripper widths toggling every 0.2 s; returns (ticks late
    by more than 60 % of the blocking time, their total lateness [s], gripper commands sent)."""
    sim = SimConfig(noise_pos_m=0, noise_rot_rad=0, noise_gripper_m=0, gripper_block_s=block_s,
                    gripper_channel=channel, gripper_speed_m_s=1.0)  # fmt: skip
    ex = Executor(config(), SimDriver(sim))
    ex.start()
    try:
        ex.reset_loop_stats()
        t_end = time.monotonic() + seconds
        k = 0
        while time.monotonic() < t_end:
            a = np.repeat(home_state()[None], H, 0)
            a[:, 6] = a[:, 13] = 0.02 if k % 2 else 0.08
            ex.submit(Chunk(NAMES, a, ex.latest_state()[0], DT))
            k += 1
            time.sleep(0.2)
        _, lateness, _ = ex.loop_records()
        gripper = ex.driver.gripper
        sent = gripper.status().sent if channel == "process" else gripper.sent
    finally:
        ex.shutdown(ramp_down_s=0.0)
    stalled = lateness[lateness > 0.6 * block_s]
    return int(stalled.size), float(stalled.sum()), sent


@pytest.mark.slow
def test_blocking_gripper_calls_do_not_delay_the_servo_loop_from_the_gripper_process():
    block_s = 0.15  # each Move holds the GIL for 150 ms
    _, stalled_thread_s, sent_thread = stalls("thread", block_s, 2.0)
    late_process, _, sent_process = stalls("process", block_s, 2.0)
    assert sent_thread >= 5 and sent_process >= 5  # the gripper really was commanded in both layouts
    # on a thread of the servo process the loop stands still while a call blocks (back-to-back ones merge)
    assert stalled_thread_s >= 3 * block_s
    assert late_process <= 1  # from the gripper process: none (one allowed for an unrelated stall on a busy host)


@pytest.mark.slow
def test_the_gripper_process_starts_from_inside_the_servo_process():
    """The servo process is a daemonic multiprocessing child, which may not have multiprocessing children: the
    gripper process is a plain subprocess, so the driver can start it there."""
    from rtc_controller.control.servo_process import ServoProcess

    sim = SimConfig(noise_pos_m=0, noise_rot_rad=0, noise_gripper_m=0, gripper_block_s=0.01, gripper_speed_m_s=1.0)
    sp = ServoProcess(config(), functools.partial(SimDriver, sim))
    sp.start()
    try:
        a = np.repeat(home_state()[None], H, 0)
        a[:, 6] = 0.08
        sp.submit(Chunk(NAMES, a, sp.latest_state()[0], DT))
        assert wait_until(lambda: abs(sp.latest_state()[1][6] - 0.08) < 1e-3, timeout_s=10.0)
        assert dict(sp.snapshot().driver.details)["gripper_channel"] == "process"
    finally:
        sp.shutdown(ramp_down_s=0.0)
