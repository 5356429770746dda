"""Where the package's files are: ``config/<name>`` (parameter files) and ``models/<name>`` (trained policies) of a
source checkout (editable install), else the installed ``share/rtc_controller/<config|models>/<name>`` (colcon or
pip install, found through the ament index)."""

from __future__ import annotations

from pathlib import Path

PACKAGE = "rtc_controller"
SOURCE_ROOT = Path(__file__).resolve().parents[1]
SOURCE_CONFIG_DIR = SOURCE_ROOT / "config"


def _installed_share_dir() -> Path | None:
    """``share/rtc_controller`` of a ROS install, or None (no ament index, or the package is not in it)."""
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory(PACKAGE))
    except (ImportError, LookupError, OSError):  # no ament_index / PackageNotFoundError / AMENT_PREFIX_PATH unset
        return None


def package_file(relative: str) -> Path:
    """Absolute path of a package file (``config/sim.yaml``, ``models/twin_pi05/policy.yaml``): the source
    checkout's, else the installed share folder's; FileNotFoundError naming the places looked at."""
    candidates = [SOURCE_ROOT / relative]
    if not candidates[0].is_file() and (installed := _installed_share_dir()) is not None:
        candidates.append(installed / relative)
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(f"{relative!r} not found in {', '.join(str(p.parent) for p in candidates)}")


def config_path(name: str) -> Path:
    """Absolute path of ``config/<name>`` (e.g. ``"sim.yaml"``); FileNotFoundError naming the places looked at."""
    try:
        return package_file(f"config/{name}")
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"config file {name!r} not found ({exc})") from None


def model_path(name: str) -> Path:
    """The policy section of a trained model shipped with the package: ``models/<name>/policy.yaml``."""
    return package_file(f"models/{name}/policy.yaml")


def world_file(name: str) -> str:
    """A twin world file given as a path or as a ``config/`` name (``twin_world_learned.yaml``); '' stays '' (the
    world's defaults). FileNotFoundError when it is neither."""
    if not name or Path(name).is_file():
        return name
    return str(config_path(name))
