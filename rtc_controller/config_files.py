"""Where the package's parameter files are: ``config/<name>`` of a source checkout (editable install), else the
installed ``share/rtc_controller/config/<name>`` (colcon or pip install, found through the ament index)."""

from __future__ import annotations

from pathlib import Path

PACKAGE = "rtc_controller"
SOURCE_CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"


def _installed_config_dir() -> Path | None:
    """``share/rtc_controller/config`` of a ROS install, or None (no ament index, or the package is not in it)."""
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory(PACKAGE)) / "config"
    except (ImportError, LookupError, OSError):  # no ament_index / PackageNotFoundError / AMENT_PREFIX_PATH unset
        return None


def config_path(name: str) -> Path:
    """Absolute path of ``config/<name>`` (e.g. ``"sim.yaml"``); FileNotFoundError naming the places looked at."""
    candidates = [SOURCE_CONFIG_DIR / name]
    if not candidates[0].is_file() and (installed := _installed_config_dir()) is not None:
        candidates.append(installed / name)
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(f"config file {name!r} not found in {', '.join(str(p) for p in candidates)}")
