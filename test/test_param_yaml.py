"""Every key of config/*.yaml carries its description from the parameter schema (``tools/param_yaml``)."""

from pathlib import Path

import yaml

from rtc_controller.tools.param_yaml import entries, mismatches, rewrite

CONFIG = Path(__file__).resolve().parents[1] / "config"
FILES = sorted(CONFIG.glob("*.yaml"))


def test_every_comment_is_the_schema_description():
    bad = [line for path in FILES for line in mismatches(path)]
    assert not bad, "run: python -m rtc_controller.tools.param_yaml --write config/*.yaml\n" + "\n".join(bad)


def test_every_key_of_ours_is_described():
    keys = [(p.name, e.key) for p in FILES for e in entries(p.read_text().splitlines())]
    assert len(keys) > 150 and ("sim.yaml", "max_linear_speed_m_s") in keys


def test_a_rewrite_keeps_the_values_and_the_note(tmp_path):
    text = ("executor_node:\n  ros__parameters:\n    max_linear_speed_m_s: 0.5  # old words — first run: 0.1\n"
            "    fixed_d: -1\n    action_names: [a,\n                   b]\n")  # fmt: skip
    out = rewrite(text)
    assert yaml.safe_load(out) == yaml.safe_load(text)
    assert "# TCP speed limit [m/s] — first run: 0.1" in out
    assert "# fixed d (-1 = estimate from δ; at most H - s) [action steps]" in out
    path = tmp_path / "x.yaml"
    path.write_text(out)
    assert mismatches(path) == []
    path.write_text(text)
    assert [m.split(": ")[1] for m in mismatches(path)] == ["executor_node.max_linear_speed_m_s", "executor_node.fixed_d"]
