"""openpi normalisation statistics (``assets/<asset_id>/norm_stats.json``) and the (un)normalisation maps.

File format (openpi ``shared/normalize.py``)::

    {"norm_stats": {"state": {"mean": [...], "std": [...], "q01": [...], "q99": [...]},
                    "actions": {...}}}

Quantile normalisation (π0.5's default): x -> (x − q01) / (q99 − q01 + 1e-6) · 2 − 1 (q01 -> −1, q99 -> +1);
z-score: x -> (x − mean) / (std + 1e-6). Statistics may cover more dims than x; the first dims are used.
"""

from __future__ import annotations

import json
import pathlib
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

NormMode = Literal["quantile", "z-score"]  # openpi DataConfig.use_quantile_norm True / False
NORM_MODES: tuple[str, ...] = get_args(NormMode)
NORM_EPS = 1e-6
NORM_STATS_FILE = "norm_stats.json"


class NormStatsError(ValueError):
    """Missing or malformed normalisation statistics."""


@dataclass(frozen=True, eq=False)
class NormStats:
    """Per-dimension statistics of one quantity (float64 [dim] each); q01/q99 may be absent (mean/std only)."""

    mean: np.ndarray
    std: np.ndarray
    q01: np.ndarray | None = None
    q99: np.ndarray | None = None

    @property
    def dim(self) -> int:
        return int(self.mean.shape[-1])

    def _check(self, dim: int, mode: NormMode, what: str) -> None:
        if mode not in NORM_MODES:
            raise ValueError(f"normalisation mode must be one of {NORM_MODES}, got {mode!r}")
        if mode == "quantile" and (self.q01 is None or self.q99 is None):
            raise NormStatsError(f"{what}: quantile normalisation needs q01/q99 in the norm stats")
        if dim > self.dim:
            raise NormStatsError(f"{what}: data has {dim} dims but the norm stats cover only {self.dim}")

    def normalize(self, x: np.ndarray, mode: NormMode = "quantile", *, what: str = "value") -> np.ndarray:
        """Physical -> normalised (quantile: [q01, q99] -> [−1, 1]), over the last axis."""
        x = np.asarray(x, np.float64)
        d = x.shape[-1]
        self._check(d, mode, what)
        if mode == "quantile":
            q01, q99 = self.q01[:d], self.q99[:d]
            return (x - q01) / (q99 - q01 + NORM_EPS) * 2.0 - 1.0
        return (x - self.mean[:d]) / (self.std[:d] + NORM_EPS)

    def unnormalize(self, x: np.ndarray, mode: NormMode = "quantile", *, what: str = "value") -> np.ndarray:
        """Inverse of ``normalize``."""
        x = np.asarray(x, np.float64)
        d = x.shape[-1]
        self._check(d, mode, what)
        if mode == "quantile":
            q01, q99 = self.q01[:d], self.q99[:d]
            return (x + 1.0) / 2.0 * (q99 - q01 + NORM_EPS) + q01
        return x * (self.std[:d] + NORM_EPS) + self.mean[:d]


def _vector(entry: dict, key: str, path: pathlib.Path, name: str) -> np.ndarray | None:
    if entry.get(key) is None:
        return None
    v = np.asarray(entry[key], np.float64)
    if v.ndim != 1 or not np.all(np.isfinite(v)):
        raise NormStatsError(f"{path}: norm_stats.{name}.{key} must be a finite 1-D list")
    return v


def load_norm_stats(path: str | pathlib.Path) -> dict[str, NormStats]:
    """Read an openpi ``norm_stats.json`` (keys such as ``state`` and ``actions``)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise NormStatsError(f"{path}: norm stats file not found")
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise NormStatsError(f"{path}: cannot parse norm stats JSON ({e})") from e
    stats = raw.get("norm_stats", raw) if isinstance(raw, dict) else None
    if not isinstance(stats, dict) or not stats:
        raise NormStatsError(f"{path}: expected {{'norm_stats': {{name: {{mean, std, q01, q99}}}}}}")
    out = {}
    for name, entry in stats.items():
        if not isinstance(entry, dict) or "mean" not in entry or "std" not in entry:
            raise NormStatsError(f"{path}: norm_stats.{name} needs 'mean' and 'std'")
        vecs = {k: _vector(entry, k, path, name) for k in ("mean", "std", "q01", "q99")}
        dims = {k: v.shape[0] for k, v in vecs.items() if v is not None}
        if len(set(dims.values())) != 1:
            raise NormStatsError(f"{path}: norm_stats.{name} has vectors of different lengths {dims}")
        out[name] = NormStats(**vecs)
    return out


def save_norm_stats(path: str | pathlib.Path, stats: dict[str, NormStats]) -> None:
    """Write statistics in openpi's JSON format."""
    body = {
        name: {k: getattr(s, k).tolist() for k in ("mean", "std", "q01", "q99") if getattr(s, k) is not None}
        for name, s in stats.items()
    }
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"norm_stats": body}, indent=2))


def find_norm_stats(checkpoint_dir: str | pathlib.Path, asset_id: str | None = None) -> pathlib.Path:
    """``<checkpoint_dir>/assets/<asset_id>/norm_stats.json``; the asset id may be omitted when there is one."""
    assets = pathlib.Path(checkpoint_dir) / "assets"
    found = sorted(assets.glob(f"**/{NORM_STATS_FILE}")) if assets.is_dir() else []
    ids = [str(p.parent.relative_to(assets)) for p in found]
    if asset_id is not None:
        path = assets / asset_id / NORM_STATS_FILE
        if not path.is_file():
            raise NormStatsError(f"asset_id {asset_id!r}: {path} not found; asset ids in {assets}: {ids or 'none'}")
        return path
    if not found:
        raise NormStatsError(f"{assets}/<asset_id>/{NORM_STATS_FILE}: norm stats file not found")
    if len(found) > 1:
        raise NormStatsError(f"{assets}: several norm stats {ids}; choose one with asset_id")
    return found[0]
