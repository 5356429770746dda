"""The start-up approach: min-jerk plans within the approach limits, the ready pose, the first commanded pose,
refusals, and the executor's modes around them (ticked by hand on a fake clock: deterministic, no timing)."""

import math
import time

import numpy as np
import pytest

from rtc_controller.geometry import so3
from rtc_controller.control.approach import Approach, ApproachConfig, min_jerk, outside_reason
from rtc_controller.control.chunk import Chunk
from rtc_controller.control.executor import Executor
from rtc_controller.control.safety import ArmLimits, SafetyConfig
from rtc_controller.robots.sim import SimConfig, SimDriver, home_state

from executor_setup import DT, H, NAMES, config

TICK = 0.001
HOME = home_state()
BOX = dict(workspace_min_m=(0.2, -0.6, 0.05), workspace_max_m=(0.7, 0.6, 0.7))


def test_min_jerk_profile():
    assert min_jerk(0.0) == 0.0 and min_jerk(1.0) == 1.0 and min_jerk(0.5) == pytest.approx(0.5)
    tau = np.linspace(0, 1, 10001)
    s = np.array([min_jerk(t) for t in tau])
    assert np.max(np.diff(s) / np.diff(tau)) == pytest.approx(1.875, rel=1e-3)
    assert np.all(np.diff(s) >= 0)


def test_plan_keeps_the_approach_speeds_and_lands_on_the_goal():
    cfg = ApproachConfig(linear_speed_m_s=0.1, linear_acc_m_s2=0.5, angular_speed_rad_s=0.5)
    start, goal = HOME.copy(), HOME.copy()
    goal[0:3] += (0.2, -0.1, 0.05)
    goal[3:6] = so3.quat_to_rotvec(so3.quat_mul(so3.rotvec_to_quat(HOME[3:6]), so3.rotvec_to_quat([0, 0, 0.8])))
    goal[7 + 6] = 0.01  # right gripper closes
    plan = Approach(start, goal, 10.0, kind="cartesian", num_arms=2, config=cfg, reason="test")
    assert plan.duration_s == pytest.approx(1.875 * np.linalg.norm([0.2, -0.1, 0.05]) / 0.1)
    ts = 10.0 + np.arange(0, plan.duration_s + 0.1, TICK)
    out = np.zeros(14)
    xs, done = [], []
    for t in ts:
        done.append(plan.sample(t, out))
        xs.append(out.copy())
    xs = np.array(xs)
    np.testing.assert_allclose(xs[0], start, atol=1e-12)
    np.testing.assert_allclose(xs[-1], goal, atol=1e-12)
    assert done[-1] and not done[0]
    v = np.linalg.norm(np.diff(xs[:, 0:3], axis=0), axis=1) / TICK
    assert np.max(v) <= 0.1 * (1 + 1e-3)
    q = so3.rotvec_to_quat(xs[:, 3:6])
    w = so3.angle_between(q[1:], q[:-1]) / TICK
    assert np.max(w) <= 0.5 * (1 + 1e-3)
    assert np.max(np.abs(np.diff(xs[:, 13]))) / TICK <= 0.05 * (1 + 1e-3)


def test_outside_reason_names_the_arm_the_axis_and_what_to_do():
    arms = (ArmLimits(**BOX), ArmLimits(**BOX))
    state = HOME.copy()
    assert outside_reason(state, arms, kind="cartesian", max_outside_m=0.05, arm_names=("left", "right")) == ""
    state[7 + 0] = 0.7 + 0.15
    msg = outside_reason(state, arms, kind="cartesian", max_outside_m=0.05, arm_names=("left", "right"))
    assert msg.startswith("right arm TCP is 0.150 m outside its workspace box (x 0.850 > max 0.700")
    assert "jog" in msg


# ---- the executor around the approach (hand-ticked) -------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.t = time.monotonic()

    def __call__(self) -> float:
        return self.t


class HoldingSim(SimDriver):
    """A sim driver that asks the executor to hold (like the Flexiv drivers' external-wrench monitor)."""

    reason = ""

    def hold_request(self) -> str:
        return self.reason


def make(*, initial=None, driver_cls=SimDriver, **approach):
    clock = Clock()
    cfg = dict(linear_speed_m_s=0.5, linear_acc_m_s2=1.0, angular_speed_rad_s=2.0, angular_acc_rad_s2=5.0)
    cfg.update(approach)
    sim = SimConfig(noise_pos_m=0, noise_rot_rad=0, noise_gripper_m=0,
                    initial_state=None if initial is None else tuple(initial))  # fmt: skip
    ex = Executor(config(start_holding=True, approach=ApproachConfig(**cfg)), driver_cls(sim, clock=clock))
    ex.start(run_loop=False)
    return ex, clock


def run(ex, clock, seconds):
    """Tick for ``seconds``; returns the commands [ticks, ad] and the modes."""
    cmds, modes = [], []
    for _ in range(round(seconds / TICK)):
        clock.t += TICK
        ex.tick(clock.t)
        cmds.append(ex._cmd.copy())
        modes.append(ex.mode)
    return np.array(cmds), modes


def chunk_at(ex, clock, a0):
    a = np.repeat(np.asarray(a0)[None], H, 0)
    return Chunk(NAMES, a, ex.to_executor_time(clock.t), DT)


def test_resume_approaches_the_ready_pose_first_then_the_policy_takes_over():
    ready = HOME.copy()
    ready[0] += 0.15
    ready[7 + 2] += 0.1
    ex, clock = make(ready_pose=tuple(ready))
    run(ex, clock, 0.05)
    assert ex.mode == "holding"
    assert ex.resume() is True
    cmds, modes = run(ex, clock, 1.5)
    assert modes[0] == "approaching" and modes[-1] == "running"
    v = np.linalg.norm(np.diff(cmds[:, 0:3], axis=0), axis=1) / TICK
    assert np.max(v) <= 0.5 * (1 + 1e-3)  # the approach's speed, not the running limit (1 m/s)
    np.testing.assert_allclose(cmds[-1], ready, atol=1e-6)
    # the next resume after a hold does not go back to the ready pose
    ex.hold()
    run(ex, clock, 0.05)
    ex.resume()
    _, modes = run(ex, clock, 0.05)
    assert "approaching" not in modes


def test_a_far_first_chunk_is_approached_not_jumped_to_and_the_next_one_takes_over():
    ex, clock = make()
    ex.resume()
    run(ex, clock, 0.01)
    far = HOME.copy()
    far[0] += 0.2
    ex.submit(chunk_at(ex, clock, far), ex.to_executor_time(clock.t))
    cmds, modes = run(ex, clock, 1.5)
    assert "approaching" in modes and modes[-1] == "running"
    assert ex.snapshot().switches == 1 and not ex.drain_switch_events()  # switched in, but not executed
    v = np.linalg.norm(np.diff(cmds[:, 0:3], axis=0), axis=1) / TICK
    assert np.max(v) <= 0.5 * (1 + 1e-3)
    np.testing.assert_allclose(cmds[-1, 0], far[0], atol=1e-6)
    nxt = far.copy()
    nxt[0] += 0.07  # still beyond the threshold, but this take-over already had its approach
    ex.submit(chunk_at(ex, clock, nxt), ex.to_executor_time(clock.t))
    cmds, modes = run(ex, clock, 0.5)
    assert "approaching" not in modes and len(ex.drain_switch_events()) == 1
    assert cmds[-1, 0] > far[0] + 0.05


def test_a_near_first_chunk_takes_over_directly():
    ex, clock = make()
    ex.resume()
    run(ex, clock, 0.01)
    near = HOME.copy()
    near[0] += 0.02  # within threshold_m (0.05)
    ex.submit(chunk_at(ex, clock, near), ex.to_executor_time(clock.t))
    _, modes = run(ex, clock, 0.3)
    assert "approaching" not in modes and ex.drain_switch_events()[0].from_hold


def test_resume_refused_while_an_arm_is_far_outside_its_box():
    start = HOME.copy()
    start[0] = 0.9  # the sim's default box ends at x = 1.0; use a tight box instead
    ex, clock = make(initial=start)
    ex.startup.arms = (ArmLimits(**BOX), ArmLimits(**BOX))
    run(ex, clock, 0.01)
    assert ex.resume() is False
    assert "left arm TCP is 0.200 m outside its workspace box (x 0.900 > max 0.700" in ex.resume_refusal
    run(ex, clock, 0.05)
    assert ex.mode == "holding" and ex.snapshot().startup["approach_phase"] == "refused"
    ex.startup.arms = (ArmLimits(), ArmLimits())  # the arm was jogged in (here: the box moved out)
    assert ex.resume() and ex.snapshot().startup["approach_phase"] == "idle"


def test_a_first_pose_beyond_max_distance_is_refused_and_holds():
    ex, clock = make(max_distance_m=0.3)
    ex.resume()
    run(ex, clock, 0.01)
    far = HOME.copy()
    far[0] += 0.5
    ex.submit(chunk_at(ex, clock, far), ex.to_executor_time(clock.t))
    cmds, _ = run(ex, clock, 0.3)
    assert ex.mode == "holding" and "0.500 m from the current pose" in ex.hold_reason
    assert np.max(np.abs(cmds[:, 0] - HOME[0])) < 1e-9


def test_a_driver_hold_request_holds_and_says_why():
    ex, clock = make(driver_cls=HoldingSim)
    ex.resume()
    run(ex, clock, 0.01)
    ex.driver.reason = "left arm: external force 31.0 N > 25.0 N"
    run(ex, clock, 0.01)
    snap = ex.snapshot()
    assert snap.mode == "holding" and snap.hold_reason == ex.driver.reason
    ex.driver.reason = ""
    assert ex.resume() and ex.hold_reason == ""


def test_ready_pose_is_validated_against_the_boxes():
    bad = HOME.copy()
    bad[2] = 5.0
    with pytest.raises(ValueError, match="ready_pose is outside the workspace"):
        config(approach=ApproachConfig(ready_pose=tuple(bad)))
    with pytest.raises(ValueError, match="approach_linear_acc_m_s2 2 exceeds max_linear_acc_m_s2 1.5"):
        config(approach=ApproachConfig(linear_acc_m_s2=2.0))
    with pytest.raises(ValueError, match="ready_pose has 3 values"):
        config(approach=ApproachConfig(ready_pose=(0.1, 0.2, 0.3)))
    assert SafetyConfig(servo_dt_s=0.001).arms[0].excess_m((0.0, 0.0, 2.0)) == pytest.approx(0.5)
    assert math.isclose(ArmLimits(**BOX).excess_m((0.45, 0.0, 0.3)), 0.0)
