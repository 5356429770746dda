"""Stand-ins for flexivrdk's Robot, Gripper and Tool that behave as the RDK documentation says (not only its signatures).

Built around the REAL flexivrdk module (its Mode, JointGroup, RtCartesianCmd, RobotStates, RobotInfo,
GripperParams, PrimitiveArgs, ...), so a driver that builds a wrong data class, passes a wrong size or enum, or
calls in the wrong mode fails here as on the robot. Modelled behaviour, each from the wheels' docstrings:
- the robot side (``RobotSide``, one per serial, shared by every connection to it, so a reconnect or a second
  connection sees the same robot): fault, E-stop, reduced and recovery states, ``operational()`` ("enabled, brakes
  released, auto mode, no fault, not in reduced state"), control modes, the event log, F/T offsets that
  ``ZeroFTSensor`` removes, tools (``Tool.Switch`` only in IDLE), contact wrench limits (only in Cartesian modes);
- product model and RDK generation: RDK 2 accepts only Enlight/MICO serials (``ProductModel``), RDK 1.9 refuses
  them ("unsupported robot model"); ``RobotInfo`` carries the model, DoF (1.9: external axes first) and limits;
- RDK 1.9 NRT motion (``flexiv_standin_motion.NrtPlanner``): every ``SendCartesianMotionForce`` re-plans from the
  current state to the new target, arriving with the given target velocity under the given caps; sends faster
  than Flexiv's documented 1–100 Hz are counted;
- blocking: every ``[Blocking]`` call made while the robot streams motion commands is recorded
  (``RobotSide.blocking_while_streaming``); ``Gripper.Move`` holds the GIL for its delivery time
  (``robots/sim_gripper.hold_gil``), like a pybind11 call that does not release it;
- ``Stop`` can be made to fail per serial (``RobotSide.fail_stop``), connections can be lost (``disconnect``).
Not a test module (no ``test_`` prefix): imported by the Flexiv driver tests; ``standin(generation)`` rebuilds
the namespace by name, so a gripper process can build its own (its connection is its own, as on the rig).
"""

from __future__ import annotations

import functools
import time
import types
from typing import Any

from flexiv_standin_devices import Gripper19, Gripper2, Tool19, Tool2
from flexiv_standin_robot import RobotSide, robot_info
from flexiv_standin_robots import StandInRobot19, StandInRobot2


def make_standin(real: Any, generation: int, **options: Any) -> types.SimpleNamespace:
    """A module-like namespace: the real data classes and enums plus stand-in Robot/Gripper/Tool classes (fresh
    subclasses and a fresh robot registry, so nothing leaks between tests). ``options``: ``fault_at_connect``,
    ``single_arm`` (RDK 2), ``ext_axes`` (RDK 1.9), ``gripper_block_s``, ``clock``."""
    ns = types.SimpleNamespace()
    robot, gripper, tool = (StandInRobot2, Gripper2, Tool2) if generation == 2 else (StandInRobot19, Gripper19, Tool19)
    ns.Robot = type("Robot", (robot,), {"ns": ns})
    ns.Gripper = type("Gripper", (gripper,), {"ns": ns})
    ns.Tool = type("Tool", (tool,), {"ns": ns})
    for name in ("Mode", "RobotStates", "RobotInfo", "GripperStates", "GripperParams", "OperationalStatus",
                 "RobotEvent", "JointGroup", "RtCartesianCmd", "RtJointPositionCmd", "PrimitiveArgs",
                 "PrimitiveStates", "ProductModel", "kOpStatusNames", "kJointGroupNames"):  # fmt: skip
        if hasattr(real, name):
            setattr(ns, name, getattr(real, name))
    ns.real = real
    ns.__version__ = real.__version__
    ns.generation = generation
    ns.sides = {}
    ns.instances = []
    ns.fault_at_connect = options.get("fault_at_connect", False)
    ns.single_arm = options.get("single_arm", False)
    ns.ext_axes = options.get("ext_axes", 0)
    ns.gripper_block_s = options.get("gripper_block_s", 0.001)
    ns.clock = options.get("clock", time.monotonic)
    ns.tools = {"Flange", "Flexiv-GN01"}
    ns.grippers = {"Flexiv-GN01": (0.0, 0.1)}
    ns.NRT_MAX_RATE_HZ = 100.0
    ns.factory = functools.partial(standin, generation, **{k: v for k, v in options.items() if k != "clock"})
    return ns


def standin(generation: int, **options: Any) -> types.SimpleNamespace:
    """``make_standin`` with the installed flexivrdk (picklable by name: a gripper process rebuilds it)."""
    import flexivrdk

    return make_standin(flexivrdk, generation, **options)



__all__ = ["make_standin", "standin", "RobotSide", "robot_info"]
