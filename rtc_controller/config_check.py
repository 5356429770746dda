"""Config errors that name what is wrong (ROS-free): YAML files read with one clear line on a syntax error, and
unknown keys refused with the key, the place and the nearest valid name.

    >>> check_known_keys({"max_linear_sped_m_s": 0.05}, {"max_linear_speed_m_s"}, where="rig.yaml: executor_node")
    Traceback (most recent call last):
    ...
    rtc_controller.config_check.ConfigError: rig.yaml: executor_node: unknown key 'max_linear_sped_m_s' (did you mean 'max_linear_speed_m_s'?)
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

NEAREST_CUTOFF = 0.6  # difflib similarity below which no suggestion is made


class ConfigError(ValueError):
    """A config file or section that cannot be used; the message names the file, the key and the value."""


def nearest(name: str, valid: Iterable[str]) -> str | None:
    """The valid name closest to ``name`` (difflib ratio >= ``NEAREST_CUTOFF``), or None."""
    matches = difflib.get_close_matches(name, list(valid), n=1, cutoff=NEAREST_CUTOFF)
    return matches[0] if matches else None


def unknown_key_message(key: str, valid: Iterable[str], *, where: str) -> str:
    """``"<where>: unknown key 'k' (did you mean 'x'?)"``, or the list of valid keys when nothing is close."""
    valid = sorted(valid)
    guess = nearest(key, valid)
    hint = f"did you mean {guess!r}?" if guess else f"valid keys: {', '.join(valid)}"
    return f"{where}: unknown key {key!r} ({hint})"


def check_known_keys(mapping: Mapping[str, Any], valid: Iterable[str], *, where: str) -> None:
    """Raise ConfigError for the first key of ``mapping`` not in ``valid`` (see the module docstring)."""
    valid = set(valid)
    for key in mapping:
        if key not in valid:
            raise ConfigError(unknown_key_message(str(key), valid, where=where))


def load_yaml(path: str | Path) -> Any:
    """Parse a YAML file; a missing file or a syntax error raises ConfigError with one line: file, line, column."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}: YAML syntax error: {problem}") from None
