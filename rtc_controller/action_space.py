"""The action space shared by the policy, the chunk messages and the executor.

Default layout (the seed's): per arm TCP position x, y, z [m], rotation vector rx, ry, rz [rad]
(axis-angle, base frame), gripper width [m]; two arms -> 14 dimensions:
``left_x … left_gripper, right_x … right_gripper``.
Joint-space layout: per arm 7 joint positions [rad] + gripper width [m] -> 16 dimensions.
Actions are always absolute targets in physical units (delta actions are resolved on the policy side).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ActionSpaceKind = Literal["cartesian", "joint"]

ARM_PREFIXES: tuple[str, str] = ("left", "right")
CARTESIAN_FIELDS: tuple[str, ...] = ("x", "y", "z", "rx", "ry", "rz", "gripper")
JOINT_FIELDS: tuple[str, ...] = tuple(f"j{i}" for i in range(1, 8)) + ("gripper",)


def action_names(kind: ActionSpaceKind = "cartesian", arms: tuple[str, ...] = ARM_PREFIXES) -> tuple[str, ...]:
    """Ordered action-dimension names, e.g. ``("left_x", …, "right_gripper")``."""
    fields = {"cartesian": CARTESIAN_FIELDS, "joint": JOINT_FIELDS}[kind]
    return tuple(f"{arm}_{field}" for arm in arms for field in fields)


@dataclass(frozen=True)
class ArmSlices:
    """Index slices of one arm inside the action vector (Cartesian layout: 3 pos, 3 rotvec, 1 gripper)."""

    position: slice
    rotation: slice | None
    joints: slice | None
    gripper: int


def arm_slices(kind: ActionSpaceKind = "cartesian", num_arms: int = 2) -> tuple[ArmSlices, ...]:
    """Where each arm's fields sit in the flat action vector."""
    out = []
    width = len(CARTESIAN_FIELDS) if kind == "cartesian" else len(JOINT_FIELDS)
    for arm in range(num_arms):
        base = arm * width
        if kind == "cartesian":
            out.append(ArmSlices(slice(base, base + 3), slice(base + 3, base + 6), None, base + 6))
        else:
            out.append(ArmSlices(slice(base, base), None, slice(base, base + 7), base + 7))
    return tuple(out)
