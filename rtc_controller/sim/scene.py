"""The twin's scene as MJCF, built in code: a table, two Rizon 4 arms with parallel-jaw grippers mounted like the
rig, a conveyor carrying open bins, one item per arm, and three cameras.

World frame (shared by both arms, the frame of the action space): origin on the table top midway between the two
arm bases, x forward (away from the arms, toward the conveyor), z up, y to the left. The left arm stands at
y = +``arm_base_y_m``, the right arm at −``arm_base_y_m``; both face +x. The conveyor runs along +y at
x = ``conveyor_x_m`` and carries ``num_bins`` bins spaced evenly over [``conveyor_y_min_m``, ``conveyor_y_max_m``)
(a bin that leaves the far end re-enters at the near end). Bins are mocap bodies moved by the world; items are
free bodies on the table.

Each arm: the spec chain of ``rizon4`` (capsule links between joint origins), position-servoed joints with gravity
compensation (the real arm compensates gravity too), then a gripper on the flange: a palm, two fingers on slide
joints (width = the sum of both, 0 … ``gripper_max_m``), a TCP site between the fingertips ``tool_length_m`` past
the flange (z out of the tool), and a wrist camera on the palm looking along the tool.

Names used by the world: ``{arm}_joint1..7``, ``{arm}_finger_{a,b}``, site ``{arm}_tcp``, body ``{arm}_palm``,
bodies ``bin{i}`` (mocap), ``item{i}`` (free joint ``item{i}_free``), equality ``weld_{arm}_item{i}`` (the grasp
assist, off at start), cameras ``base_0_rgb``, ``left_wrist_0_rgb``, ``right_wrist_0_rgb``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass

import numpy as np

from rtc_controller.sim import rizon4

ARMS: tuple[str, str] = ("left", "right")
CAMERAS: tuple[str, ...] = ("base_0_rgb", "left_wrist_0_rgb", "right_wrist_0_rgb")
ITEM_COLORS = ("0.85 0.1 0.1 1", "0.1 0.25 0.9 1")  # left item red, right item blue
BIN_COLOR = "0.95 0.75 0.1 1"
LINK_RADIUS_M = 0.045
FINGER_LEN_M = 0.06  # finger length along the tool axis [m]
FINGER_THICK_M = 0.012
PALM_LEN_M = 0.06
BIN_WALL_M = 0.01
# Grasp assist rule shared by the world (weld off) and the expert's plans (item released): a commanded gripper
# width above the item size plus this is "open".
GRASP_OPEN_MARGIN_M = 0.004


@dataclass(frozen=True)
class SceneConfig:
    """Geometry and physics of the twin. Lengths [m], speeds [m/s], masses [kg], angles [rad], times [s]."""

    arm_base_y_m: float = 0.30
    arm_base_x_m: float = 0.0
    table_size_m: tuple[float, float] = (1.2, 1.6)  # x, y extent of the table top (from x = −0.25)
    conveyor_x_m: float = 0.66
    conveyor_width_m: float = 0.20
    conveyor_y_min_m: float = -0.75
    conveyor_y_max_m: float = 0.75
    conveyor_speed_m_s: float = 0.08
    num_bins: int = 5
    bin_inner_m: float = 0.13  # inner side of a square bin
    bin_height_m: float = 0.06
    item_size_m: float = 0.04  # cube side
    item_mass_kg: float = 0.05
    gripper_max_m: float = 0.10
    tool_length_m: float = 0.17  # flange -> TCP (between the fingertips)
    physics_dt_s: float = 0.001
    joint_kp: float = 3000.0  # joint position servo stiffness [N·m/rad]
    joint_kv: float = 120.0  # joint damping [N·m·s/rad]
    joint_armature: float = 0.15  # reflected rotor inertia [kg·m²]
    finger_kp: float = 400.0  # [N/m]
    finger_force_n: float = 20.0  # gripper force limit (Grav default)
    camera_height_px: int = 96
    camera_width_px: int = 96
    base_camera_pos_m: tuple[float, float, float] = (1.25, 0.0, 0.95)
    base_camera_target_m: tuple[float, float, float] = (0.45, 0.0, 0.0)
    base_camera_fovy_deg: float = 62.0
    wrist_camera_fovy_deg: float = 80.0

    def __post_init__(self) -> None:
        positive = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                    if isinstance(getattr(self, f.name), (int, float)) and f.name not in ("arm_base_x_m", "conveyor_y_min_m", "conveyor_y_max_m")}  # fmt: skip
        bad = [k for k, v in positive.items() if not (math.isfinite(v) and v > 0)]
        if bad:
            raise ValueError(f"scene: must be finite and > 0: {bad}")
        if self.conveyor_y_max_m <= self.conveyor_y_min_m:
            raise ValueError("scene: conveyor_y_max_m must be > conveyor_y_min_m")
        if self.item_size_m >= self.gripper_max_m or self.item_size_m >= self.bin_inner_m:
            raise ValueError("scene: the item must fit the open gripper and the bin")
        if self.bin_spacing_m <= self.bin_inner_m + 2 * BIN_WALL_M:
            raise ValueError("scene: bins overlap (conveyor too short for num_bins)")

    @property
    def bin_spacing_m(self) -> float:
        return (self.conveyor_y_max_m - self.conveyor_y_min_m) / self.num_bins

    @property
    def belt_top_z_m(self) -> float:
        return 0.01

    def arm_base(self, arm: int) -> np.ndarray:
        """Arm base position [3] in the world frame (arm 0 = left at +y)."""
        return np.array([self.arm_base_x_m, self.arm_base_y_m * (1 if arm == 0 else -1), 0.0])

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> SceneConfig:
        raw = json.loads(text)
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})


def _f(*v: float) -> str:
    return " ".join(f"{x:.6g}" for x in v)


def _look_at(pos, target) -> str:
    """MuJoCo ``xyaxes`` of a camera at ``pos`` looking at ``target`` with world z up in the image."""
    f = np.asarray(target, float) - np.asarray(pos, float)
    f /= np.linalg.norm(f)
    x = np.cross(f, (0.0, 0.0, 1.0))
    x /= np.linalg.norm(x)
    y = np.cross(x, f)
    return _f(*x, *y)


def _arm_xml(cfg: SceneConfig, arm: int) -> str:
    name = ARMS[arm]
    out = [f'<body name="{name}_base" pos="{_f(*cfg.arm_base(arm))}">',
           f'<geom type="cylinder" size="0.07 0.08" pos="0 0 0.08" rgba="0.8 0.8 0.82 1" mass="{rizon4.LINK_MASSES_KG[0]}"/>']
    depth = 1
    for i, j in enumerate(rizon4.JOINTS):
        nxt = rizon4.JOINTS[i + 1].xyz if i + 1 < len(rizon4.JOINTS) else rizon4.FLANGE_XYZ
        mass = rizon4.LINK_MASSES_KG[i + 1]
        out.append(f'<body name="{name}_link{i + 1}" pos="{_f(*j.xyz)}" euler="{_f(*j.rpy)}" gravcomp="1">')
        out.append(f'<joint name="{name}_{j.name}" axis="{_f(*j.axis)}" range="{_f(j.lower_rad, j.upper_rad)}" '
                   f'armature="{cfg.joint_armature}" damping="0.5"/>')  # fmt: skip
        if np.linalg.norm(nxt) > 1e-6:
            out.append(f'<geom type="capsule" fromto="0 0 0 {_f(*nxt)}" size="{LINK_RADIUS_M * (1 - 0.06 * i):.4f}" '
                       f'rgba="0.82 0.83 0.85 1" mass="{mass}" contype="0" conaffinity="0"/>')  # fmt: skip
        depth += 1
    out.append(f'<body name="{name}_flange" pos="{_f(*rizon4.FLANGE_XYZ)}" euler="{_f(*rizon4.FLANGE_RPY)}">')
    out.append(_gripper_xml(cfg, name))
    out.append("</body>" * (depth + 1))
    return "\n".join(out)


def _gripper_xml(cfg: SceneConfig, name: str) -> str:
    half = cfg.gripper_max_m / 2
    tip_z = cfg.tool_length_m
    fz = tip_z - FINGER_LEN_M / 2  # finger centre along the tool axis
    cam_fwd = _f(0.0, 0.0, 0.0)
    return "\n".join([
        f'<body name="{name}_palm" pos="0 0 0" gravcomp="1">',
        f'<geom type="box" size="0.03 {half + 0.015:.4f} {PALM_LEN_M / 2}" pos="0 0 {PALM_LEN_M / 2}" '
        'rgba="0.25 0.25 0.28 1" mass="0.6"/>',
        f'<camera name="{name}_wrist_0_rgb" pos="0.06 0 {PALM_LEN_M:.4f}" xyaxes="0 1 0 0.97 0 0.26" '
        f'fovy="{cfg.wrist_camera_fovy_deg}"/>',
        f'<site name="{name}_tcp" pos="0 0 {tip_z - FINGER_LEN_M / 3:.4f}" size="0.005" rgba="0 1 0 0" group="3"/>',
        f'<body name="{name}_finger_a" pos="0 0 {fz:.4f}" gravcomp="1">',
        f'<joint name="{name}_finger_a" type="slide" axis="0 1 0" range="0 {half}" damping="5" armature="0.05"/>',
        f'<geom name="{name}_pad_a" type="box" size="0.012 {FINGER_THICK_M / 2} {FINGER_LEN_M / 2}" '
        f'pos="0 {FINGER_THICK_M / 2} 0" rgba="0.15 0.15 0.15 1" mass="0.05" friction="1.5 0.02 0.001" condim="4"/>',
        "</body>",
        f'<body name="{name}_finger_b" pos="0 0 {fz:.4f}" gravcomp="1">',
        f'<joint name="{name}_finger_b" type="slide" axis="0 -1 0" range="0 {half}" damping="5" armature="0.05"/>',
        f'<geom name="{name}_pad_b" type="box" size="0.012 {FINGER_THICK_M / 2} {FINGER_LEN_M / 2}" '
        f'pos="0 {-FINGER_THICK_M / 2} 0" rgba="0.15 0.15 0.15 1" mass="0.05" friction="1.5 0.02 0.001" condim="4"/>',
        "</body>",
        "</body>",
    ]) + cam_fwd[:0]


def _bin_xml(cfg: SceneConfig, i: int) -> str:
    s, h, w = cfg.bin_inner_m / 2, cfg.bin_height_m, BIN_WALL_M / 2
    o = s + w
    walls = [(0, o, h / 2, s + 2 * w, w, h / 2), (0, -o, h / 2, s + 2 * w, w, h / 2),
             (o, 0, h / 2, w, s, h / 2), (-o, 0, h / 2, w, s, h / 2)]  # fmt: skip
    geoms = [f'<geom type="box" size="{_f(s + 2 * w, s + 2 * w, w)}" pos="0 0 {w}" rgba="{BIN_COLOR}"/>']
    geoms += [f'<geom type="box" size="{_f(*g[3:])}" pos="{_f(*g[:3])}" rgba="{BIN_COLOR}"/>' for g in walls]
    y = cfg.conveyor_y_min_m + i * cfg.bin_spacing_m
    return (f'<body name="bin{i}" mocap="true" pos="{_f(cfg.conveyor_x_m, y, cfg.belt_top_z_m)}">'
            + "".join(geoms) + "</body>")  # fmt: skip


def _item_xml(cfg: SceneConfig, i: int) -> str:
    half = cfg.item_size_m / 2
    x, y = 0.45, cfg.arm_base(i)[1]
    return (f'<body name="item{i}" pos="{_f(x, y, half)}"><freejoint name="item{i}_free"/>'
            f'<geom name="item{i}" type="box" size="{_f(half, half, half)}" rgba="{ITEM_COLORS[i % 2]}" '
            f'mass="{cfg.item_mass_kg}" friction="1.2 0.02 0.001" condim="4"/></body>')  # fmt: skip


def build_mjcf(cfg: SceneConfig = SceneConfig()) -> str:
    """The twin's MJCF model (see the module docstring)."""
    tx, ty = cfg.table_size_m
    belt_len = cfg.conveyor_y_max_m - cfg.conveyor_y_min_m + 0.2
    actuators = []
    for arm in ARMS:
        for j in rizon4.JOINTS:
            actuators.append(f'<position name="{arm}_{j.name}" joint="{arm}_{j.name}" kp="{cfg.joint_kp}" '
                             f'kv="{cfg.joint_kv}" forcerange="{_f(-j.max_torque_nm, j.max_torque_nm)}" '
                             f'ctrlrange="{_f(j.lower_rad, j.upper_rad)}"/>')  # fmt: skip
        for f in ("a", "b"):
            actuators.append(f'<position name="{arm}_finger_{f}" joint="{arm}_finger_{f}" kp="{cfg.finger_kp}" '
                             f'kv="10" forcerange="{_f(-cfg.finger_force_n, cfg.finger_force_n)}" '
                             f'ctrlrange="0 {cfg.gripper_max_m / 2}"/>')  # fmt: skip
    welds = [f'<weld name="weld_{arm}_item{i}" body1="{arm}_palm" body2="item{i}" active="false" solref="0.01 1"/>'
             for arm in ARMS for i in range(len(ARMS))]  # fmt: skip
    cam = cfg
    return f"""<mujoco model="rtc_twin">
<compiler angle="radian" autolimits="true"/>
<option timestep="{cfg.physics_dt_s}" integrator="implicitfast" cone="elliptic" impratio="5"/>
<visual><global offwidth="640" offheight="480"/><quality shadowsize="0"/></visual>
<worldbody>
<light pos="0.4 0 2.2" dir="0 0 -1" diffuse="0.85 0.85 0.85" castshadow="false"/>
<light pos="1.5 0.8 1.5" dir="-1 -0.5 -1" diffuse="0.35 0.35 0.35" castshadow="false"/>
<geom name="floor" type="plane" size="3 3 0.1" pos="0 0 -0.75" rgba="0.35 0.35 0.38 1"/>
<geom name="table" type="box" size="{_f(tx / 2, ty / 2, 0.02)}" pos="{_f(tx / 2 - 0.25, 0, -0.02)}" rgba="0.93 0.93 0.9 1"/>
<geom name="belt" type="box" size="{_f(cfg.conveyor_width_m / 2, belt_len / 2, cfg.belt_top_z_m / 2)}"
      pos="{_f(cfg.conveyor_x_m, 0, cfg.belt_top_z_m / 2)}" rgba="0.2 0.2 0.22 1"/>
<camera name="base_0_rgb" pos="{_f(*cam.base_camera_pos_m)}" xyaxes="{_look_at(cam.base_camera_pos_m, cam.base_camera_target_m)}" fovy="{cam.base_camera_fovy_deg}"/>
{_arm_xml(cfg, 0)}
{_arm_xml(cfg, 1)}
{"".join(_bin_xml(cfg, i) for i in range(cfg.num_bins))}
{"".join(_item_xml(cfg, i) for i in range(len(ARMS)))}
</worldbody>
<equality>{"".join(welds)}</equality>
<actuator>{"".join(actuators)}</actuator>
</mujoco>"""
