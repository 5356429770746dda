"""The package's parameter files are found from any working directory."""

import os

import pytest

from rtc_controller.config_files import config_path


def test_finds_the_shipped_configs_from_another_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("sim.yaml", "rig.yaml"):
        path = config_path(name)
        assert path.is_absolute() and path.is_file() and path.name == name
    assert os.getcwd() == str(tmp_path)


def test_missing_config_names_the_places_looked_at():
    with pytest.raises(FileNotFoundError, match="nope.yaml.*config"):
        config_path("nope.yaml")
