"""Flexiv Rizon 4 kinematics: the spec table the twin's arms are built from.

Source: Flexiv's own robot description, ``flexiv_description/urdf/rizon4_joints_links.xacro`` in
github.com/flexivrobotics/flexiv_ros2 (noted there as "accurate kinematic"), and the Rizon 4 datasheet
(7 DoF, reach 780 mm, payload 4 kg). Joint origins are the URDF ``<origin xyz rpy>`` of each joint in its parent
link's frame [m, rad]; every joint turns about its own z axis (axis "0 0 1") or y axis ("0 1 0") as listed;
limits [rad] and speed limits [rad/s] are the URDF's ``<limit>``. The flange sits 0.081 m along link 7's z axis,
turned by −π about it. Home is the ``initial_positions`` of the same package: 0, −40°, 0, 90°, 0, 40°, 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Vec3 = tuple[float, float, float]


@dataclass(frozen=True)
class JointSpec:
    """One revolute joint: origin in the parent link frame (xyz [m], rpy [rad]), axis, limits [rad], speed [rad/s]."""

    name: str
    xyz: Vec3
    rpy: Vec3
    axis: Vec3
    lower_rad: float
    upper_rad: float
    max_speed_rad_s: float
    max_torque_nm: float


PI = math.pi
JOINTS: tuple[JointSpec, ...] = (
    JointSpec("joint1", (0.0, 0.0, 0.155), (0.0, 0.0, -PI), (0, 0, 1), -2.7925, 2.7925, 2.0944, 123.0),
    JointSpec("joint2", (0.0, 0.03, 0.210), (0.0, 0.0, 0.0), (0, 1, 0), -2.2689, 2.2689, 2.0944, 123.0),
    JointSpec("joint3", (0.0, 0.035, 0.205), (0.0, 0.0, 0.0), (0, 0, 1), -2.9671, 2.9671, 2.4435, 64.0),
    JointSpec("joint4", (-0.02, -0.03, 0.19), (0.0, 0.0, -PI), (0, 1, 0), -1.8675, 2.6878, 2.4435, 64.0),
    JointSpec("joint5", (-0.02, 0.025, 0.195), (0.0, 0.0, -PI), (0, 0, 1), -2.9671, 2.9671, 4.8869, 39.0),
    JointSpec("joint6", (0.0, 0.03, 0.19), (0.0, 0.0, 0.0), (0, 1, 0), -1.3963, 4.5379, 4.8869, 39.0),
    JointSpec("joint7", (-0.055, 0.070, 0.11), (0.0, -PI / 2, 0.0), (0, 0, 1), -2.9671, 2.9671, 4.8869, 39.0),
)
FLANGE_XYZ: Vec3 = (0.0, 0.0, 0.081)  # link 7 -> flange [m]
FLANGE_RPY: Vec3 = (0.0, 0.0, -PI)
HOME_RAD: tuple[float, ...] = (0.0, math.radians(-40), 0.0, math.radians(90), 0.0, math.radians(40), 0.0)
REACH_M = 0.780  # datasheet: the flange's reach from the joint-1 axis
PAYLOAD_KG = 4.0
LINK_MASSES_KG: tuple[float, ...] = (3.7, 3.7, 2.7, 2.4, 2.4, 2.4, 2.1, 0.8)  # base, links 1-7 (URDF, approximate)
