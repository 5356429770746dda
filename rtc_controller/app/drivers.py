"""The driver the executor node's parameters name, as a picklable zero-argument factory (driver class + its
frozen config), so that the servo process builds the driver itself: ``driver: sim`` (simulated arms), ``mujoco``
(the twin, ``sim.mujoco_driver``), ``flexiv`` with ``flexiv_rdk: 2`` (RDK 2.x, Enlight/MICO) or ``1`` (RDK 1.9,
Rizon). The composition layer: it alone knows every driver, so ``control/`` does not import ``sim/``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

from rtc_controller.control.executor_params import same_named
from rtc_controller.robots.base import ArmDriver


def build_driver(v: dict[str, Any]) -> ArmDriver:
    """Parameters -> the configured ArmDriver (not yet connected)."""
    return driver_factory(v)()


def driver_factory(v: dict[str, Any]) -> Callable[[], ArmDriver]:
    """Parameters -> a picklable zero-argument factory of the configured ArmDriver (driver class + its frozen
    config), so that the servo process can build the driver itself."""
    kind, n = v["action_space"], v["num_arms"]
    if v["driver"] == "mujoco":
        from rtc_controller.sim.mujoco_driver import MujocoDriver
        from rtc_controller.sim.twin_config import driver_config

        return functools.partial(MujocoDriver, driver_config(v))
    if v["driver"] == "sim":
        from rtc_controller.robots.sim import SimConfig, SimDriver

        return functools.partial(
            SimDriver,
            SimConfig(
                kind=kind,
                num_arms=n,
                noise_pos_m=v["sim_noise_pos_m"],
                noise_rot_rad=v["sim_noise_rot_rad"],
                fault_at_s=v["sim_fault_at_s"] if v["sim_fault_at_s"] >= 0 else None,
                disconnect_at_s=v["sim_disconnect_at_s"] if v["sim_disconnect_at_s"] >= 0 else None,
                gripper_block_s=v["sim_gripper_block_s"],
                gripper_channel=v["sim_gripper_channel"],
            )
        )
    grippers = tuple(v["gripper_names"][:n]) if any(v["gripper_names"]) else ()
    tools = tuple(v["tool_names"][:n]) if any(v["tool_names"]) else ()
    wrench = tuple(v["max_contact_wrench"]) if not all(math.isinf(x) for x in v["max_contact_wrench"]) else ()
    if v["flexiv_rdk"] == 2:
        from rtc_controller.robots.flexiv_rdk2 import FlexivRdk2Config, FlexivRdk2Driver

        return functools.partial(
            FlexivRdk2Driver,
            same_named(
                FlexivRdk2Config,
                v,
                serial_numbers=tuple(v["serial_numbers"]),
                joint_groups=tuple(v["joint_groups"][:n]),
                kind=kind,
                gripper_names=grippers,
                tool_names=tools,
                max_contact_wrench=wrench,
            ),
        )
    from rtc_controller.robots.flexiv_rdk1 import FlexivRdk1Config, FlexivRdk1Driver

    return functools.partial(
        FlexivRdk1Driver,
        same_named(
            FlexivRdk1Config,
            v,
            serial_numbers=tuple(v["serial_numbers"][:n]),
            kind=kind,
            command_rate_hz=v["rdk1_command_rate_hz"],
            target_velocity=v["rdk1_target_velocity"],
            gripper_names=grippers,
            tool_names=tools,
            max_contact_wrench=wrench,
        ),
    )
