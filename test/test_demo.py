"""The demo's bag analysis and report, on a bag written like the rig's recorder writes it."""

import json

import numpy as np
import pytest

from rtc_controller import topics
from rtc_controller.action_space import action_names
from rtc_controller.tools import demo
from rtc_controller.bags.bag_types import DIAGNOSTIC_STATUS, FLOAT64
from rtc_controller.bags.bag_writer import BagWriter

DT = 0.02
NAMES = action_names()


def _switch_status(w: BagWriter, *, t_switch, delay, k_star, d, jump, lin, ang, from_hold=0):
    status = w.typestore.types[DIAGNOSTIC_STATUS]
    kv = w.typestore.types["diagnostic_msgs/msg/KeyValue"]
    values = dict(t_switch_s=t_switch, delay_s=delay, k_star=k_star, guided_d=d, jump_norm=jump, jump_linear_m=lin,
                  jump_angular_rad=ang, from_hold=from_hold)
    return status(level=0, name="executor_node: switch", message="", hardware_id="",
                  values=[kv(key=k, value=str(v)) for k, v in values.items()])


@pytest.fixture
def bag(tmp_path):
    path = tmp_path / "bag"
    jumps = [0.5, 0.01, 0.02, 0.03, 0.2]  # the first one starts from the held pose
    with BagWriter(path, storage="mcap") as w:
        for i in range(200):
            t = 100.0 + i * DT
            w.write_state(np.full(len(NAMES), 0.1 * i), NAMES, t)
        for i, j in enumerate(jumps):
            t = 100.5 + i
            w.write(topics.SWITCH_EVENTS, DIAGNOSTIC_STATUS,
                    _switch_status(w, t_switch=t, delay=0.32, k_star=17, d=16, jump=j, lin=j / 2, ang=j / 3,
                                   from_hold=int(i == 0)),
                    int(t * 1e9))
            w.write(topics.MEASURED_DELAY, FLOAT64, w.typestore.types[FLOAT64](data=0.28 + 0.02 * i), int(t * 1e9))
            w.write_int32(topics.INFERENCE_DELAY, 16, int(t * 1e9))
        for i in range(3):
            w.write_diagnostics([("executor_node: servo loop", 0, "ok", {"lateness_p99_us": str(50 + i),
                                                                          "lateness_max_us": "400",
                                                                          "worst_window_late_fraction": "0.001"}),
                                 ("executor_node: chunks", 0, "ok", {"rejected_total": str(i)})], 101.0 + i)
    return path


def test_analysis_reads_switches_delays_and_diagnostics(bag):
    run = demo.analyse_bag(bag, mode="stop", dt_s=DT)
    s = run.summary()
    assert s["switches"] == 4  # chunk-to-chunk only
    assert len(run.switches) == 5 and run.switches[0].from_hold
    assert s["mean_jump"] == pytest.approx(np.mean([0.01, 0.02, 0.03, 0.2]))
    assert s["p95_jump"] == pytest.approx(np.quantile([0.01, 0.02, 0.03, 0.2], 0.95))
    assert s["mean_jump_linear_m"] == pytest.approx(np.mean([0.01, 0.02, 0.03, 0.2]) / 2)
    assert s["median_delay_steps"] == pytest.approx(np.median([0.28, 0.30, 0.32, 0.34, 0.36]) / DT)
    assert s["median_d"] == 16
    assert s["rejected_chunks"] == 2  # the last counter
    assert s["loop_lateness_p99_us"] == 52
    assert run.states.shape == (200, len(NAMES))


def test_report_files_and_summary_schema(bag, tmp_path):
    runs = [demo.analyse_bag(bag, mode=m, dt_s=DT) for m in ("none", "stop", "full")]
    out = tmp_path / "report"
    out.mkdir()
    demo.write_report(out, runs, config=tmp_path / "sim.yaml", seconds=30,
                      params={"horizon": 100, "execution_horizon": 50, "max_guidance_weight": 10.0,
                              "action_rate_hz": 50.0, "extra_latency_s": 0.3})
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["modes"]) == {"none", "stop", "full"}
    for mode in summary["modes"].values():
        assert {"switches", "mean_jump", "p95_jump", "median_delay_steps", "rejected_chunks"} <= set(mode)
    report = (out / "report.md").read_text()
    for png in ("trajectory.png", "jumps.png", "delay.png", "lateness.png"):
        assert (out / png).stat().st_size > 5_000
        assert png in report
    assert report.rstrip().splitlines()[-1].startswith("What this run shows: mean jump at chunk switches ")


def test_unknown_mode_is_refused(capsys):
    with pytest.raises(SystemExit):
        demo.main(["--modes", "stop,bogus"])
    assert "unknown mode" in capsys.readouterr().err
