"""rtc-eval end to end on a 2 × 2 grid (short episodes), resumable; Wilson intervals; the hard-mask mode."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rtc_controller.policy.mixture import make_mixture, mixture_velocity
from rtc_controller.rtc import prefix_weights, sample
from rtc_controller.tools.eval import main
from rtc_controller.tools.eval_stats import summarize_cell, wilson_interval


def test_wilson_interval():
    lo, hi = wilson_interval(9, 10)
    assert lo == pytest.approx(0.596, abs=1e-3) and hi == pytest.approx(0.982, abs=1e-3)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert wilson_interval(0, 5)[0] == 0.0 and wilson_interval(5, 5)[1] == 1.0
    c = summarize_cell([{"success": True, "reason": "", "completion_time_s": 5.0, "jumps": [0.1, 0.3],
                         "jumps_linear_m": [0.01], "jerk_rms_m_s3": 2.0, "interventions": 4},
                        {"success": False, "reason": "timeout", "completion_time_s": float("nan"), "jumps": [],
                         "jumps_linear_m": [], "jerk_rms_m_s3": 4.0, "interventions": 6}])  # fmt: skip
    assert c["success_rate"] == 0.5 and c["completion_time_s"] == 5.0 and c["failures"] == {"timeout": 1}
    assert c["jump_mean"] == pytest.approx(0.2) and c["safety_interventions"] == 5


def test_hard_mode_freezes_the_prefix_exactly_and_compiles_once():
    h, d = 20, 5
    mix = make_mixture(np.stack([np.zeros((h, 2)), np.ones((h, 2))]), scales=0.05)
    prefix = jnp.asarray(np.full((1, h, 2), 0.3), jnp.float32)
    w = prefix_weights(d, h - 8, h, "zeros")
    before = sample._cache_size() if hasattr(sample, "_cache_size") else None
    for seed in range(3):
        x = sample(mixture_velocity, jax.random.normal(jax.random.key(seed), (1, h, 2)), context=mix, prefix=prefix,
                   weights=w, mode="hard")  # fmt: skip
        np.testing.assert_allclose(np.asarray(x)[0, :d], 0.3, atol=1e-6)  # frozen actions = the prefix
        assert not np.allclose(np.asarray(x)[0, d:], 0.3, atol=0.05)  # the rest is sampled, not copied
    del before


@pytest.mark.slow
def test_rtc_eval_two_by_two_grid_end_to_end_and_resumes(tmp_path, capsys):
    args = ["--out", str(tmp_path), "--delays", "0,8", "--modes", "none,stop", "--seeds", "1", "--time-limit", "3",
            "--quiet"]  # fmt: skip
    assert main(args) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    for mode in ("none", "stop"):
        for d in ("0", "8"):
            cell = summary["cells"][mode][d]
            assert cell["episodes"] == 1 and 0 <= cell["success_ci95"][0] <= cell["success_ci95"][1] <= 1
    assert (tmp_path / "success_vs_delay.png").stat().st_size > 1000
    assert "| stop | 8 |" in (tmp_path / "report.md").read_text()
    stamp = (tmp_path / "cells" / "stop_d8.json").stat().st_mtime_ns
    assert main(args) == 0  # resumed: finished cells are not re-run
    assert (tmp_path / "cells" / "stop_d8.json").stat().st_mtime_ns == stamp
    out = capsys.readouterr().out
    assert "| none | 0 |" in out
