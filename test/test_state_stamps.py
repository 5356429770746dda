"""StampGuard: the hour-ahead robot state that stalled the inference node is refused and reported."""

from rtc_controller.policy.state_stamps import StampGuard

DT = 0.02


def test_a_stamp_an_hour_ahead_is_an_anomaly_and_later_states_go_on():
    g = StampGuard()
    t = 1000.0
    assert g.check(t + 5.0, t) == "ok"  # the clocks differ by 5 s: fine, it is the offset
    for k in range(1, 10):
        assert g.check(t + 5.0 + k * DT, t + k * DT + 0.001) == "ok"
    assert g.check(t + 3600.0, t + 0.2) == "anomaly" and "+3594.8" in g.last_anomaly
    assert g.check(t + 5.0 + 0.22, t + 0.22) == "ok", "the next good state is used at once"
    assert g.check(t + 5.0 + 0.10, t + 0.24) == "anomaly", "older than the last one used"
    assert g.anomalies == 2 and g.rebases == 0


def test_a_consistent_new_time_base_is_taken_after_a_run():
    g = StampGuard(rebase_after=5)
    assert g.check(100.0, 50.0) == "ok"
    results = [g.check(10.0 + k * DT, 50.0 + (k + 1) * DT) for k in range(5)]  # the executor restarted
    assert results == ["anomaly"] * 4 + ["rebased"]
    assert g.check(10.0 + 5 * DT, 50.0 + 6 * DT) == "ok"
    assert g.check(float("nan"), 51.0) == "anomaly"
