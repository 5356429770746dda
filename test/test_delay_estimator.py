"""Delay estimator: quantile over a window, warm-up excluded, outliers do not dominate, clamped, fixed override."""

import pytest

from rtc_controller.control.delay_estimator import DelayEstimator, DelayEstimatorConfig, delay_to_steps

DT = 0.02


def est(**kw):
    base = dict(dt_s=DT, horizon=50, execution_horizon=25, quantile=0.9, window=20, warmup_samples=3, min_samples=3)
    base.update(kw)
    return DelayEstimator(DelayEstimatorConfig(**base))


def test_delay_to_steps_rounds_up():
    assert delay_to_steps(0.045, DT) == 3
    assert delay_to_steps(0.040, DT) == 2
    assert delay_to_steps(0.0, DT) == 0
    assert delay_to_steps(-0.01, DT) == 0


def test_warmup_outliers_are_excluded():
    e = est(initial_d=1)
    for slow in (2.0, 1.5, 0.8):  # jit compile + cache warm-up
        assert e.add(slow) == 1  # initial d kept, warm-up not counted
    for _ in range(10):
        e.add(0.045)
    assert e.d == 3


def test_single_outlier_inside_the_window_does_not_dominate():
    e = est()
    for _ in range(5):
        e.add(0.03)
    for _ in range(10):
        e.add(0.045)
    e.add(0.4)  # one slow inference (20 steps)
    for _ in range(3):
        e.add(0.045)
    assert e.d == 3


def test_quantile_follows_a_real_increase():
    e = est()
    for _ in range(3):
        e.add(0.01)
    for _ in range(20):
        e.add(0.1)
    assert e.d == 5


def test_clamped_to_h_minus_s_and_fixed_override():
    e = est()
    for _ in range(30):
        e.add(5.0)
    assert e.d == 25  # H − s
    f = est(fixed_d=4)
    for _ in range(30):
        f.add(0.3)
    assert f.d == 4
    assert est(fixed_d=100).d == 25


def test_non_finite_ignored_and_reset_restarts_warmup():
    e = est()
    for _ in range(10):
        e.add(0.045)
    assert e.add(float("nan")) == 3
    e.reset()
    assert e.d == 0 and e.warming_up
    e.add(9.0)
    assert e.d == 0


def test_config_validation():
    with pytest.raises(ValueError):
        DelayEstimatorConfig(dt_s=DT, horizon=10, execution_horizon=11)
    with pytest.raises(ValueError):
        DelayEstimatorConfig(dt_s=DT, horizon=10, execution_horizon=5, quantile=0)
    with pytest.raises(ValueError):
        DelayEstimatorConfig(dt_s=0, horizon=10, execution_horizon=5)


def test_fixed_d_can_be_switched_at_run_time():
    e = est()
    for _ in range(10):
        e.add(0.045)
    e.set_fixed_d(7)
    assert e.d == 7 and e.add(0.045) == 7
    e.set_fixed_d(None)
    assert e.d == 3


def test_no_estimate_until_measured_unless_a_prior_or_fixed_d_is_given():
    e = est(warmup_samples=1, min_samples=2)
    assert not e.has_estimate  # the executor publishes no d: the inference node uses its own latency
    e.add(1.0)  # warm-up, discarded
    e.add(0.045)
    assert not e.has_estimate
    e.add(0.045)
    assert e.has_estimate and e.d == 3
    assert est(initial_d=5).has_estimate and est(initial_d=5).d == 5
    assert est(fixed_d=4).has_estimate
