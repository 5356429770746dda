"""The two-panel success figure pools rtc-eval summaries: cells by d on one row, by s at one d, each cell once."""

import json

import pytest

from rtc_controller.tools import eval_figure


def _cell(rate):
    return {"success_rate": rate, "success_ci95": [max(0.0, rate - 0.1), min(1.0, rate + 0.1)]}


def _summary(row, s_of_d, cells, label):
    return {"methods": list(cells), "rows": [{"name": row, "label": label}],
            "s": {row: {str(d): s for d, s in s_of_d.items()}},
            "cells": {m: {row: {str(d): _cell(r) for d, r in by_d.items()}} for m, by_d in cells.items()}}


def test_cells_by_s_pool_summaries_and_take_a_shared_cell_once():
    max5 = _summary("smax5", {0: 5, 8: 8}, {"none": {0: 0.1, 8: 0.5}, "stop": {0: 0.4, 8: 0.8}}, "s = max(d, 5)")
    s25 = _summary("s25", {0: 25, 8: 25}, {"none": {0: 0.2, 8: 0.3}, "stop@100": {0: 0.9}}, "s = 25")
    again = _summary("s25", {0: 25}, {"none": {0: 0.99}}, "s = 25")  # a second report holding the same cell
    by_s = eval_figure.cells_by_s([max5, s25, again], 0)
    assert sorted(by_s["none"]) == [5, 25] and by_s["none"][25]["success_rate"] == 0.2
    assert sorted(by_s["stop"]) == [5] and 25 in by_s["stop@100"]
    by_d = eval_figure.cells_by_d([max5, s25], "smax5")
    assert by_d == {"none": {0: _cell(0.1), 8: _cell(0.5)}, "stop": {0: _cell(0.4), 8: _cell(0.8)}}


def test_cli_draws_both_panels_and_names_a_missing_row(tmp_path, capsys):
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(_summary("smax5", {0: 5, 8: 8}, {"none": {0: 0.1, 8: 0.5}}, "s = max(d, 5)")))
    out = tmp_path / "fig.png"
    assert eval_figure.main([str(path), "--row", "smax5", "--delay", "0", "--out", str(out)]) == 0
    assert out.stat().st_size > 10_000
    with pytest.raises(SystemExit):
        eval_figure.main([str(path), "--row", "s25", "--out", str(out)])
    assert "no summary has row 's25'" in capsys.readouterr().err
