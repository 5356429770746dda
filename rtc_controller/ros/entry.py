"""Console-script entry points that install the shutdown handlers before the heavy imports (rclpy, JAX, numpy take
seconds): a Ctrl-C or SIGTERM during them is then a shutdown request like any other (exit 0), not a
KeyboardInterrupt traceback or a death by signal. Imports nothing heavy itself."""

from __future__ import annotations

import importlib

from rtc_controller.shutdown import ShutdownSignals


def _run(module: str, name: str) -> int:
    ShutdownSignals.for_process(name)
    return importlib.import_module(module).main()


def executor_node() -> int:
    return _run("rtc_controller.ros.executor_node", "executor_node")


def inference_node() -> int:
    return _run("rtc_controller.ros.inference_node", "inference_node")


def live_view_node() -> int:
    return _run("rtc_controller.ros.live_view_node", "rtc_live_view")


def twin_node() -> int:
    return _run("rtc_controller.ros.twin_node", "twin_node")


def rtc_record() -> int:
    return _run("rtc_controller.ros.recorder", "rtc-record")


def rtc_bringup() -> int:
    return _run("rtc_controller.app.bringup", "rtc-bringup")
