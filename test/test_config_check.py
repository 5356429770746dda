"""config_check: unknown keys refused with the nearest valid name; YAML errors in one line."""

import pytest

from rtc_controller.config_check import ConfigError, check_known_keys, load_yaml, nearest

VALID = {"max_linear_speed_m_s", "max_linear_acc_m_s2", "workspace_min_m"}


def test_misspelt_key_names_key_place_and_nearest():
    with pytest.raises(ConfigError) as err:
        check_known_keys({"workspace_min_m": [0.0], "max_linear_sped_m_s": 0.05}, VALID, where="rig.yaml: executor_node")
    msg = str(err.value)
    assert msg.startswith("rig.yaml: executor_node: unknown key 'max_linear_sped_m_s'")
    assert "did you mean 'max_linear_speed_m_s'?" in msg


def test_unrelated_key_lists_valid_keys():
    with pytest.raises(ConfigError, match="valid keys: max_linear_acc_m_s2, max_linear_speed_m_s, workspace_min_m"):
        check_known_keys({"zzz": 1}, VALID, where="x")
    assert nearest("zzz", VALID) is None


def test_known_keys_pass():
    check_known_keys({"workspace_min_m": 1}, VALID, where="x")


def test_yaml_syntax_error_is_one_line_with_position(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("a: 1\nb: [1, 2\nc: 3\n")
    with pytest.raises(ConfigError) as err:
        load_yaml(path)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{path}:") and "YAML syntax error" in msg


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_yaml(tmp_path / "nope.yaml")
    (tmp_path / "ok.yaml").write_text("a: [1, 2]\n")
    assert load_yaml(tmp_path / "ok.yaml") == {"a": [1, 2]}
