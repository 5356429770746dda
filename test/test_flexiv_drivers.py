"""Flexiv RDK 2 driver against stand-ins that model what the RDK documents (flexiv_standins.py), built on the REAL
flexivrdk 2.1.0 data classes; the RDK 1.9 cases run in a subprocess with the 1.9.4.1 wheel (rdk19_driver_cases.py)."""

import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

flexivrdk = pytest.importorskip("flexivrdk")  # installed by `make setup` (the [flexiv] extra)

from executor_setup import wait_until  # noqa: E402
from flexiv_standins import make_standin  # noqa: E402

from rtc_controller.robots.base import ArmDriver, DriverError  # noqa: E402
from rtc_controller.robots.flexiv_rdk2 import FlexivRdk2Config, FlexivRdk2Driver  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RDK19_DIR = ROOT / ".venv" / "flexivrdk-1.9"
SN = "Enlight-LL-123456"
ARM_1, ARM_2 = flexivrdk.JointGroup.ARM_1, flexivrdk.JointGroup.ARM_2
GRIPPERS = ("Flexiv-GN01", "Flexiv-GN01")


def make(rdk_options=None, **kw):
    rdk = make_standin(flexivrdk, 2, **(rdk_options or {}))
    cfg = dict(serial_numbers=(SN,), connect_timeout_s=1.0)
    cfg.update(kw)
    return FlexivRdk2Driver(FlexivRdk2Config(**cfg), rdk=rdk), rdk


def test_is_an_arm_driver_and_config_validation():
    d, _ = make()
    assert isinstance(d, ArmDriver)
    with pytest.raises(ValueError, match="Rizon arms need flexiv_rdk: 1"):
        FlexivRdk2Config(serial_numbers=("Rizon4s-123456",))
    for bad in (dict(serial_numbers=()), dict(serial_numbers=(SN, SN, SN)), dict(timeliness_failure_limit_pct=150),
                dict(max_contact_wrench=(1.0, 2.0)), dict(tool_names=("Flexiv-GN01",))):  # fmt: skip
        with pytest.raises(ValueError):
            FlexivRdk2Config(**{"serial_numbers": (SN,), **bad})


def test_startup_sequence_as_flexiv_documents_it():
    d, rdk = make({"fault_at_connect": True}, tool_names=GRIPPERS, max_contact_wrench=(30.0, 30.0, 30.0, 5.0, 5.0, 5.0))
    d.connect()
    side = rdk.sides[SN]
    names = [c[0] for c in side.calls]
    assert names[:2] == ["ClearFault", "ServoOn"]
    assert names.index("Tool.Switch") < names.index("ExecutePrimitive")  # tool first, in IDLE
    modes = [c[1].name for c in side.calls if c[0] == "SwitchMode"]
    assert modes == ["NRT_PRIMITIVE_EXECUTION", "RT_CARTESIAN_MOTION_FORCE"]  # zero F/T, then stream
    assert side.mode == flexivrdk.Mode.RT_CARTESIAN_MOTION_FORCE and side.timeliness_pct == 2.0
    for g in (ARM_1, ARM_2):
        assert side.arms[g].tool == "Flexiv-GN01"
        assert side.arms[g].ft_offset == [0.0] * 6  # zeroed
        assert side.arms[g].contact_limit == [30.0, 30.0, 30.0, 5.0, 5.0, 5.0]
    assert d.status().enabled and not d.status().fault


def test_refusals_name_the_reason():
    d, rdk = make(tool_names=("Flexiv-GN01", "Grav-48V"))
    with pytest.raises(DriverError, match="tool 'Grav-48V' does not exist"):
        d.connect()
    d, rdk = make({"single_arm": True})
    with pytest.raises(DriverError, match="ARM_2 is not a single-arm joint group of Enlight-LL-123456"):
        d.connect()
    rdk = make_standin(flexivrdk, 2)
    rdk.__version__ = "1.9.4.1"
    with pytest.raises(DriverError, match=r"needs flexivrdk 2\.x \(Rizon arms need flexiv_rdk: 1"):
        FlexivRdk2Driver(FlexivRdk2Config(serial_numbers=(SN,)), rdk=rdk).connect()


def test_not_operational_says_why():
    d, rdk = make()
    rdk.sides[SN] = side = __import__("flexiv_standin_robot").RobotSide(rdk, SN, 2)
    side.reduced = True
    with pytest.raises(DriverError, match="to become operational: IN_REDUCED_STATE"):
        d.connect()
    side.reduced = False
    side.press_estop()
    with pytest.raises(DriverError, match="E-stop pressed: release it"):
        d.connect()


def test_streams_both_arms_as_quaternion_poses_and_reads_them_back():
    d, rdk = make()
    d.connect()
    side = rdk.sides[SN]
    state = np.zeros(14)
    assert d.read_state(state)
    cmd = state.copy()
    cmd[0] += 0.01
    cmd[3:6] = [0.0, 0.0, 0.5]  # 0.5 rad about z
    cmd[7 + 2] -= 0.02
    d.command(cmd)
    np.testing.assert_allclose(side.arms[ARM_1].pose[3:], [np.cos(0.25), 0, 0, np.sin(0.25)], atol=1e-12)
    back = np.zeros(14)
    d.read_state(back)
    np.testing.assert_allclose(back[:6], cmd[:6], atol=1e-12)
    np.testing.assert_allclose(back[7:13], cmd[7:13], atol=1e-12)
    assert side.stream_count == 1


def test_rotation_state_does_not_flip_across_pi():
    d, rdk = make()
    d.connect()
    state = np.zeros(14)
    d.read_state(state)  # home: 180° about x
    for angle in (np.pi - 0.01, np.pi + 0.01):  # cross the wrap
        cmd = state.copy()
        cmd[3:6] = [angle, 0, 0]
        d.command(cmd)
        d.read_state(state)
        assert state[3] > 3.0  # stays on the +π side, no jump to −π


def test_grippers_move_from_the_gripper_process_with_their_own_connection():
    d, rdk = make({"gripper_block_s": 0.5}, gripper_names=GRIPPERS, gripper_velocity_m_s=5.0)
    d.connect()
    try:
        state = np.zeros(14)
        d.read_state(state)
        assert state[6] == pytest.approx(0.04) and state[13] == pytest.approx(0.04)  # the grippers' own widths
        cmd = state.copy()
        t0 = time.monotonic()
        for i in range(200):
            cmd[6] = 0.06 + 1e-5 * (i % 3)  # jitter below gripper_min_change_m
            cmd[13] = 0.5  # beyond the gripper's max_width (0.1): clamped, not refused
            d.command(cmd)
        assert time.monotonic() - t0 < 0.4  # 200 commands, while each of the two Moves blocks 0.5 s: never waited on
        assert wait_until(lambda: d.read_state(state) and abs(state[13] - 0.1) < 1e-9 and abs(state[6] - 0.06) < 1e-3)
        details = dict(d.status().details)
        assert details["gripper_process"] == "ready" and details["gripper_errors"] == "0"
        assert details["gripper_commands_sent"] == "2" and details["left_gripper_width_range_m"] == "0.0000..0.1000"
        assert all(not n.startswith("Gripper") for n in rdk.sides[SN].blocking_while_streaming)
    finally:
        d.close()


def test_fault_lost_connection_and_estop_are_recovered_by_clear_fault():
    d, rdk = make()
    d.connect()
    side = rdk.sides[SN]
    state = np.zeros(14)
    side.inject_fault()
    assert d.read_state(state) is False
    assert d.clear_fault() and d.read_state(state)
    side.press_estop()
    with pytest.raises(DriverError, match=rf"stream: .*not operational.*; {SN}: ESTOP_NOT_RELEASED \(E-stop pressed\)"):
        d.command(state)  # a tick that streams before it reads the E-stop still says why the robot refused
    assert d.read_state(state) is False
    msg = d.status().message
    assert "ESTOP_NOT_RELEASED" in msg and "E-stop pressed" in msg
    assert d.clear_fault() is False and "E-stop pressed: release it" in d.status().message
    side.release_estop()
    assert d.clear_fault() and d.read_state(state)
    d.command(state)
    rdk.instances[0].disconnect()
    with pytest.raises(DriverError, match="connection lost"):
        d.read_state(state)
    assert d.clear_fault()  # reconnects: a new Robot(serial)
    assert len(rdk.instances) == 2 and d.read_state(state)
    d.command(state)
    assert side.mode == flexivrdk.Mode.RT_CARTESIAN_MOTION_FORCE
    assert [c[0] for c in side.calls].count("ExecutePrimitive") == 1  # F/T zeroed at start only


def test_joint_space_uses_rt_joint_position_with_dof_and_limits_from_robot_info():
    d, rdk = make(kind="joint")
    d.connect()
    side = rdk.sides[SN]
    assert side.mode == flexivrdk.Mode.RT_JOINT_POSITION
    q_min, q_max = d.joint_limits()
    assert q_min == [[-2.7] * 7] * 2 and q_max == [[2.7] * 7] * 2
    state = np.zeros(16)
    d.read_state(state)
    state[0] += 0.1
    d.command(state)
    assert side.arms[ARM_1].q[0] == pytest.approx(state[0])


def test_one_robot_per_arm_and_stop_reaches_every_robot_even_when_one_fails():
    rdk = make_standin(flexivrdk, 2, single_arm=True)
    sns = (SN, "Enlight-LL-123457")
    d = FlexivRdk2Driver(FlexivRdk2Config(serial_numbers=sns, joint_groups=("ARM_1", "ARM_1"),
                                          connect_timeout_s=1.0), rdk=rdk)  # fmt: skip
    d.connect()
    state = np.zeros(14)
    d.read_state(state)
    d.command(state)
    assert [rdk.sides[s].stream_count for s in sns] == [1, 1]
    rdk.sides[SN].fail_stop = True
    with pytest.raises(DriverError, match=r"stop failed on Enlight-LL-123456 \(left arm\)"):
        d.stop()
    assert rdk.sides[sns[1]].mode == flexivrdk.Mode.IDLE  # the other robot still stopped


def test_external_wrench_above_its_limit_requests_a_hold():
    d, rdk = make(contact_force_limit_n=25.0, contact_moment_limit_nm=4.0)
    d.connect()
    side = rdk.sides[SN]
    state = np.zeros(14)
    d.read_state(state)
    assert d.hold_request() == ""
    side.arms[ARM_2].external = [0.0, 20.0, -20.0, 0.0, 0.0, 0.0]  # 28.3 N
    d.read_state(state)
    assert d.hold_request() == "right arm: external force 28.3 N > contact_force_limit_n 25 N"
    assert dict(d.status().details)["right_external_force_n"] == "28.28"
    side.arms[ARM_2].external = [0.0] * 6
    d.read_state(state)
    assert d.hold_request() == ""


def test_without_ft_zeroing_the_sensor_offset_stays():
    d, rdk = make(zero_ft_sensor=False, contact_force_limit_n=4.0)
    d.connect()
    state = np.zeros(14)
    d.read_state(state)
    assert "ExecutePrimitive" not in [c[0] for c in rdk.sides[SN].calls]
    assert "external force 4.7 N" in d.hold_request()  # the un-zeroed offset reads as a contact


def test_wrong_rdk_generation_is_refused_with_a_reason():
    if not RDK19_DIR.exists():
        pytest.skip("flexivrdk 1.9 wheel folder missing (make setup installs it)")
    code = (
        "import flexivrdk\n"
        "from rtc_controller.robots.flexiv_rdk2 import FlexivRdk2Config, FlexivRdk2Driver\n"
        "from rtc_controller.robots.base import DriverError\n"
        "try:\n"
        "    FlexivRdk2Driver(FlexivRdk2Config(serial_numbers=('Enlight-L-123456',)), rdk=flexivrdk).connect()\n"
        "except DriverError as e:\n"
        "    print('REFUSED', e)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(RDK19_DIR))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert "REFUSED flexivrdk 1.9.4.1 is installed, the RDK 2 (Enlight/MICO) driver needs flexivrdk 2.x" in out.stdout, out.stderr


def test_config_fields_mirror_executor_parameters():
    from rtc_controller.control.executor_params import PARAMS

    shared = {f.name for f in dataclasses.fields(FlexivRdk2Config)} - {"serial_numbers", "kind", "joint_groups"}
    assert shared <= set(PARAMS), shared - set(PARAMS)


@pytest.mark.slow
def test_rdk19_driver_cases_with_the_real_19_wheel():
    if not RDK19_DIR.exists():
        pytest.skip("flexivrdk 1.9 wheel folder missing (make setup installs it)")
    env = dict(os.environ, PYTHONPATH=str(RDK19_DIR))
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(ROOT / "test" / "rdk19_driver_cases.py")],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert " passed" in out.stdout
