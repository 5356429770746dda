"""The executor (real servo loop) on the RDK 2 stand-in: streams every tick with no blocking RDK call while it
streams (gripper traffic, diagnostics, hold/resume included), holds on contact, faults on an E-stop and comes back
with reset_fault, without restarting anything."""

import time

import numpy as np
import pytest

flexivrdk = pytest.importorskip("flexivrdk")

from flexiv_standins import make_standin  # noqa: E402

from rtc_controller.control.chunk import Chunk  # noqa: E402
from rtc_controller.control.executor import Executor  # noqa: E402
from rtc_controller.robots.flexiv_rdk2 import FlexivRdk2Config, FlexivRdk2Driver  # noqa: E402

from executor_setup import DT, H, NAMES, config, wait_until  # noqa: E402

SN = "Enlight-LL-123456"


@pytest.fixture
def rig():
    rdk = make_standin(flexivrdk, 2, gripper_block_s=0.02)
    drv = FlexivRdk2Driver(FlexivRdk2Config(serial_numbers=(SN,), connect_timeout_s=2.0,
                                            gripper_names=("Flexiv-GN01", "Flexiv-GN01"),
                                            contact_force_limit_n=25.0), rdk=rdk)  # fmt: skip
    ex = Executor(config(), drv)
    ex.start()
    yield ex, rdk, rdk.sides[SN]
    if ex.mode != "stopped":
        ex.shutdown(ramp_down_s=0.1)


def chunk(ex, gripper):
    _, state = ex.latest_state()
    a = np.repeat(state[None], H, 0)
    a[:, 6] = a[:, 13] = gripper
    return Chunk(NAMES, a, ex.latest_state()[0], DT)


@pytest.mark.slow
def test_streams_every_tick_without_blocking_calls_while_streaming(rig):
    ex, rdk, side = rig
    n0 = side.stream_count
    for k in range(6):  # gripper traffic every 0.15 s, diagnostics, a hold and a resume
        ex.submit(chunk(ex, 0.02 if k % 2 else 0.08))
        ex.snapshot()
        time.sleep(0.15)
    ex.hold()
    time.sleep(0.1)
    assert ex.resume()
    time.sleep(0.1)
    assert side.stream_count - n0 > 300 and side.stream_threads == {ex.loop._thread.ident}
    assert side.blocking_while_streaming == []  # the streaming process made no [Blocking] RDK call
    details = dict(ex.snapshot().driver.details)
    assert int(details["gripper_commands_sent"]) >= 2 and details["left_estop_released"] == "True"


@pytest.mark.slow
def test_contact_holds_then_estop_faults_and_reset_fault_brings_it_back(rig):
    ex, rdk, side = rig
    side.arms[flexivrdk.JointGroup.ARM_1].external = [30.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert wait_until(lambda: ex.mode == "holding")
    assert ex.snapshot().hold_reason == "left arm: external force 30.0 N > contact_force_limit_n 25 N"
    side.arms[flexivrdk.JointGroup.ARM_1].external = [0.0] * 6
    side.press_estop()
    assert wait_until(lambda: ex.mode == "faulted")
    assert "ESTOP_NOT_RELEASED" in ex.fault_message and "E-stop pressed" in ex.fault_message
    n = side.stream_count
    time.sleep(0.05)
    assert side.stream_count == n  # no commands while faulted
    assert ex.reset_fault() is False and "release it" in ex.snapshot().driver.message
    side.release_estop()
    assert ex.reset_fault() is True
    assert wait_until(lambda: ex.mode == "holding")
    assert wait_until(lambda: side.stream_count > n + 50)  # streaming again, holding the measured pose
