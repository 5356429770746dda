"""The failure phase of an episode from the item trajectories (sim.phases), and the episode runner reports it."""

import math

import numpy as np

from rtc_controller.sim.phases import PhaseTracker, nearest_gaps_s

START = np.array([[0.45, 0.2, 0.02], [0.45, -0.2, 0.02]])


def _track(samples):
    tr = PhaseTracker(START)
    for t, pos, held in samples:
        tr.update(t, np.asarray(pos, float), np.asarray(held))
    return tr


def test_an_item_pushed_off_its_spot_before_any_grasp_is_knocked():
    pushed = START.copy()
    pushed[0, 1] += 0.03
    tr = _track([(0.0, START, [-1, -1]), (1.0, pushed, [-1, -1])])
    assert tr.phase(["dropped", "waiting"], "dropped") == "knocked_before_grasp"


def test_a_held_item_let_go_outside_a_bin_is_a_release_failure_with_its_time():
    carried = START.copy()
    carried[0] += [0.2, 0.1, 0.1]
    tr = _track([(0.0, START, [-1, -1]), (1.0, START, [0, -1]), (2.0, carried, [0, -1]), (2.5, carried, [-1, -1])])
    assert tr.phase(["dropped", "waiting"], "dropped") == "released_outside_bin"
    assert tr.release_times_s() == [2.5]

    assert math.isclose(nearest_gaps_s([2.5], [1.0, 2.4, 3.0])[0], 0.1, abs_tol=1e-12)


def test_timeouts_say_where_the_first_unplaced_item_was():
    tr = _track([(0.0, START, [-1, -1]), (1.0, START, [-1, 1])])
    assert tr.phase(["waiting", "held"], "timeout") == "timeout_not_grasped"
    assert tr.phase(["placed", "held"], "timeout") == "timeout_holding"
    assert tr.phase(["placed", "placed"], "") == ""
    assert math.isnan(nearest_gaps_s([1.0], [])[0])


def test_the_episode_runner_reports_the_phase_and_the_switch_times():
    from rtc_controller.tools.eval_config import EvalConfig
    from rtc_controller.tools.eval_run import Evaluator

    ev = Evaluator(EvalConfig(policy="twin", time_limit_s=1.0))  # too short to finish: a timeout
    r = ev.run_episode(3, mode="stop", delay=4)
    assert not r.success and r.reason == "timeout"
    assert r.failure_phase in ("timeout_not_grasped", "timeout_holding")
    assert r.switch_times_s == sorted(r.switch_times_s) and len(r.switch_times_s) == len(r.jumps)
    assert r.summary()["failure_phase"] == r.failure_phase
