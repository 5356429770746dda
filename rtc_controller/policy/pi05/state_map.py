"""The declarative map between the executor's named robot state / actions and the vectors a checkpoint was
trained on (openpi: what the lab's ``*Inputs`` put in ``data["state"]`` and what its ``*Outputs`` read from
``data["actions"]``).

The executor's robot state and actions are the action-space vector (``action_space.py``: per arm x, y, z [m],
rotation vector rx, ry, rz [rad], gripper width [m]; or 7 joints [rad] + gripper). A ``Segment`` takes some of
those names and writes them in one representation:

- ``identity``: the values as they are (positions [m], joints [rad], a gripper width [m], a rotation vector);
- ``quat_wxyz`` / ``quat_xyzw``: three rotation-vector names -> a unit quaternion (4 dims), sign chosen with
  w >= 0 (the canonical hemisphere; a model's quaternion output is read with either sign);
- ``gripper_open`` / ``gripper_closed``: one width [m] -> (w − lo)/(hi − lo) (1 = open) or (hi − w)/(hi − lo)
  (1 = closed), with ``range_m = (lo, hi)``;
- ``zeros``: ``width`` constant zeros (state only: dims the lab's data transforms filled with zeros).

Segments are concatenated in order. Example (left arm, state in quaternions, gripper 1 = closed over 0…0.1 m):
``[Segment(("left_x", "left_y", "left_z")), Segment(("left_rx", "left_ry", "left_rz"), "quat_wxyz"),
Segment(("left_gripper",), "gripper_closed", range_m=(0.0, 0.1))]`` maps
``left_x … left_gripper = 0.5, 0, 0.3, 0, 0, π/2, 0.025`` to ``0.5 0 0.3 0.7071 0 0 0.7071 0.75``.
All functions work over leading batch axes ``[..., dim]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from rtc_controller.geometry import so3

Representation = Literal["identity", "quat_wxyz", "quat_xyzw", "gripper_open", "gripper_closed", "zeros"]
REPRESENTATIONS: tuple[str, ...] = get_args(Representation)
ROTVEC_DIM, QUAT_DIM = 3, 4
@dataclass(frozen=True)
class Segment:
    """Some named robot-state / action values in one representation (module docstring)."""

    names: tuple[str, ...] = ()
    representation: Representation = "identity"
    range_m: tuple[float, float] | None = None  # gripper_*: physical width range [m]
    width: int = 0  # zeros: number of dims

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(self.names))
        rep = self.representation
        if rep not in REPRESENTATIONS:
            raise ValueError(f"representation must be one of {REPRESENTATIONS}, got {rep!r}")
        if rep == "zeros":
            if self.names or self.width < 1:
                raise ValueError(f"a zeros segment takes width >= 1 and no names, got {self.names} width {self.width}")
            return
        if not self.names:
            raise ValueError(f"a {rep} segment needs names")
        if rep.startswith("quat") and len(self.names) != ROTVEC_DIM:
            raise ValueError(f"{rep} maps 3 rotation-vector names, got {list(self.names)}")
        if rep.startswith("gripper"):
            if len(self.names) != 1 or self.range_m is None:
                raise ValueError(f"{rep} maps one gripper width name with range_m: [lo, hi], got "
                                 f"{list(self.names)}, range_m {self.range_m}")
            lo, hi = self.range_m
            if not hi > lo:
                raise ValueError(f"{rep}: range_m must be [lo, hi] with hi > lo, got {list(self.range_m)}")

    @property
    def dim(self) -> int:
        """Dims this segment takes in the model's vector."""
        if self.representation == "zeros":
            return self.width
        return QUAT_DIM if self.representation.startswith("quat") else len(self.names)

    def encode(self, values: np.ndarray) -> np.ndarray:
        """Named values [..., len(names)] (executor units) -> model representation [..., dim]."""
        rep = self.representation
        if rep == "identity":
            return values
        if rep.startswith("quat"):
            q = so3.rotvec_to_quat(values)
            q = np.where(q[..., :1] < 0, -q, q)  # w >= 0 also for |r| > π
            return q if rep == "quat_wxyz" else np.roll(q, -1, axis=-1)
        if rep.startswith("gripper"):
            lo, hi = self.range_m
            opening = (values - lo) / (hi - lo)
            return opening if rep == "gripper_open" else 1.0 - opening
        return np.zeros((*values.shape[:-1], self.width))

    def decode(self, model: np.ndarray) -> np.ndarray:
        """Model representation [..., dim] -> named values [..., len(names)] (executor units)."""
        rep = self.representation
        if rep == "identity":
            return model
        if rep.startswith("quat"):
            return so3.quat_to_rotvec(model if rep == "quat_wxyz" else np.roll(model, 1, axis=-1))
        if rep.startswith("gripper"):
            lo, hi = self.range_m
            opening = model if rep == "gripper_open" else 1.0 - model
            return lo + opening * (hi - lo)
        raise ValueError("a zeros segment has no values to decode")


@dataclass(frozen=True)
class VectorMap:
    """Segments in order: named executor values <-> the model's vector (``dim`` = sum of segment dims)."""

    segments: tuple[Segment, ...]

    @classmethod
    def identity(cls, names: Sequence[str]) -> VectorMap:
        return cls((Segment(tuple(names)),))

    @property
    def dim(self) -> int:
        return sum(s.dim for s in self.segments)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for s in self.segments for n in s.names)

    def check_names(self, available: Sequence[str], *, what: str, exactly: bool = False) -> None:
        """Every name must be available (and, with ``exactly``, each available name mapped once)."""
        unknown = [n for n in self.names if n not in available]
        if unknown:
            raise ValueError(f"{what}: names {unknown} are not among the executor's {list(available)}")
        dup = sorted({n for n in self.names if self.names.count(n) > 1})
        if dup:
            raise ValueError(f"{what}: names {dup} appear more than once")
        missing = [n for n in available if n not in self.names]
        if exactly and missing:
            raise ValueError(f"{what}: executor names {missing} are not produced by any segment")

    def encode(self, values: np.ndarray, names: Sequence[str]) -> np.ndarray:
        """Executor vector [..., len(names)] -> model vector [..., dim]."""
        values = np.asarray(values, np.float64)
        index = {n: i for i, n in enumerate(names)}
        parts = [s.encode(values[..., [index[n] for n in s.names]]) for s in self.segments]
        return np.concatenate(parts, axis=-1) if parts else np.zeros((*values.shape[:-1], 0))

    def decode(self, model: np.ndarray, names: Sequence[str]) -> np.ndarray:
        """Model vector [..., ≥ dim] (extra trailing dims ignored, as openpi's ``*Outputs`` slice) -> executor
        vector [..., len(names)] (every name produced by some segment)."""
        model = np.asarray(model, np.float64)
        out = np.zeros((*model.shape[:-1], len(names)))
        index = {n: i for i, n in enumerate(names)}
        start = 0
        for s in self.segments:
            if s.representation != "zeros":
                out[..., [index[n] for n in s.names]] = s.decode(model[..., start:start + s.dim])
            start += s.dim
        return out


def segments_from_yaml(entries: Sequence[Mapping], *, where: str) -> tuple[Segment, ...]:
    """YAML list of ``{names: [...], as: <representation>, range_m: [lo, hi]}`` / ``{zeros: n}`` -> segments."""
    from rtc_controller.config_check import ConfigError, check_known_keys

    out = []
    for i, entry in enumerate(entries):
        here = f"{where}[{i}]"
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{here}: expected a mapping like {{names: [left_x], as: identity}}, got {entry!r}")
        check_known_keys(entry, ("names", "as", "range_m", "zeros"), where=here)
        try:
            if "zeros" in entry:
                out.append(Segment(representation="zeros", width=int(entry["zeros"])))
            else:
                rng = entry.get("range_m")
                out.append(Segment(tuple(entry.get("names") or ()), entry.get("as", "identity"),
                                   None if rng is None else tuple(float(x) for x in rng)))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{here}: {exc}") from None
    return tuple(out)


def segments_to_yaml(segments: Sequence[Segment]) -> list[dict]:
    out = []
    for s in segments:
        if s.representation == "zeros":
            out.append({"zeros": s.width})
            continue
        entry: dict = {"names": list(s.names), "as": s.representation}
        if s.range_m is not None:
            entry["range_m"] = list(s.range_m)
        out.append(entry)
    return out
