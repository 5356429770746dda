"""Inference-loop bookkeeping: trigger time, d, the chunk to guide toward."""

import numpy as np
import pytest

from rtc_controller.policy.chunk_sampler import PreviousChunk
from rtc_controller.policy.inference_loop import (
    ChunkHistory,
    parse_inference_delay,
    resolve_delay,
    stamp_key,
    trigger_due,
)

DT = 0.02


def test_trigger_is_s_steps_after_the_previous_t_obs():
    assert trigger_due(3.0, None, execution_horizon=50, dt_s=DT)
    assert not trigger_due(10.98, 10.0, execution_horizon=50, dt_s=DT)
    assert trigger_due(11.0, 10.0, execution_horizon=50, dt_s=DT)
    assert trigger_due(11.0 - 5e-5, 10.0, execution_horizon=50, dt_s=DT)  # float jitter of stamps
    assert trigger_due(10.2, 10.0, execution_horizon=10, dt_s=DT)


def test_parse_inference_delay():
    assert parse_inference_delay("auto", 100) is None
    assert parse_inference_delay(" AUTO ", 100) is None
    assert parse_inference_delay(16, 100) == 16
    assert parse_inference_delay("16", 100) == 16
    for bad in (-1, 101, "soon", 1.5, True, None):
        with pytest.raises(ValueError, match="inference_delay"):
            parse_inference_delay(bad, 100)


def test_resolve_delay_prefers_fixed_then_executor_then_own_latency():
    assert resolve_delay(5, 12, last_latency_s=1.0, dt_s=DT, horizon=100) == (5, "fixed")
    assert resolve_delay(None, 12, last_latency_s=1.0, dt_s=DT, horizon=100) == (12, "executor")
    assert resolve_delay(None, 300, last_latency_s=None, dt_s=DT, horizon=100) == (100, "executor")
    assert resolve_delay(None, None, last_latency_s=0.31, dt_s=DT, horizon=100) == (17, "own_latency")  # +1 margin
    assert resolve_delay(None, None, last_latency_s=5.0, dt_s=DT, horizon=100) == (100, "own_latency")
    assert resolve_delay(None, None, last_latency_s=None, dt_s=DT, horizon=100) == (0, "own_latency")


def test_history_selects_the_executed_chunk():
    history = ChunkHistory(capacity=3)
    chunks = [PreviousChunk(np.full((4, 2), k, float), 10.0 + k) for k in range(5)]
    assert history.select(None) == (None, "none")
    for c in chunks:
        history.add(c)
    assert len(history) == 3  # oldest dropped
    assert history.select(None) == (chunks[4], "last_published")  # the executor never said: assume the last
    chunk, source = history.select(stamp_key(13.0))  # the executor rejected chunk 4 and still runs chunk 3
    assert chunk is chunks[3] and source == "active"
    assert history.select(stamp_key(10.0)) == (None, "none")  # dropped from the history
    assert history.select(0) == (None, "none")  # nothing active


def test_stamp_key_matches_header_rounding():
    from rtc_controller.ros.conversions import s_to_stamp, stamp_to_s

    for t in (1.0, 1234.56789, 1.7e9 + 0.123456789):
        assert stamp_key(stamp_to_s(s_to_stamp(t))) == stamp_key(t)
