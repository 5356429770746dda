"""Every node's parameter table, by node name, and the parameter-file check over all of them (ROS-free).

The executor's table is ``control/executor_params.PARAMS`` (it maps onto the executor core's configs), the inference
node's ``app/inference_params.PARAMETERS`` (it names the policies); the live view's and the twin node's are here.
Tables are loaded when first asked for: the inference table imports JAX (its policy registry and guidance modes),
which a file check in ``rtc-bringup`` need not pay for unless the file has an inference section.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from rtc_controller import param_files, topics
from rtc_controller.action_space import action_names
from rtc_controller.chunk_timing import TIMING_PARAMS
from rtc_controller.param_schema import Param, finite_in_range, in_range, non_negative, positive
from rtc_controller.sim.scene import CAMERAS

__all__ = ["LIVE_VIEW_PARAMS", "NODE_TABLES", "TWIN_PARAMS", "check_params_file", "table", "valid_keys"]

MAX_LIVE_VIEW_RATE_HZ = 100.0
JPEG_QUALITY_RANGE = (1, 95)  # Pillow's useful range (above 95 it only grows the file)


def _known_cameras(slots: Any) -> str | None:
    bad = [s for s in slots if s not in CAMERAS]
    return f"unknown slots {bad}; the twin has {list(CAMERAS)}" if bad else None


LIVE_VIEW_PARAMS: dict[str, Param] = {
    "action_names": Param(list(action_names("cartesian")), "chunk dimension names (the executor's; cartesian, 7 "
                          "per arm)"),
    "action_rate_hz": TIMING_PARAMS["action_rate_hz"],
    "frame_id": Param("world", "frame of the paths: the world frame of the action space and both RDKs"),
    "publish_rate_hz": Param(5.0, "how often the paths are published", in_range(1e-3, MAX_LIVE_VIEW_RATE_HZ),
                             unit="Hz"),
    "executed_window_s": Param(5.0, "length of the executed path", positive, unit="s"),
}

TWIN_PARAMS: dict[str, Param] = {
    "camera_slots": Param(list(CAMERAS), "cameras rendered and published on rtc/camera/<slot>", _known_cameras),
    "camera_rate_hz": Param(10.0, "rendered frames per second per camera (CPU EGL: ~30-70 ms per frame)", positive,
                            unit="Hz"),
    "camera_height_px": Param(0, "rendered image height (0 = the scene's)", finite_in_range(0), unit="px"),
    "camera_width_px": Param(0, "rendered image width (0 = the scene's)", finite_in_range(0), unit="px"),
    "status_rate_hz": Param(20.0, "task monitor and rtc/twin/task rate", positive, unit="Hz"),
    "snapshot": Param("", "shared-memory name of the world snapshot (executor_node's twin_snapshot; '' = "
                      "rtc_twin_<ROS_DOMAIN_ID>)"),
    "snapshot_wait_s": Param(120.0, "wait this long for the executor's world", non_negative, unit="s"),
    "status_file": Param("", "write the final task status (JSON) here ('' = no)"),
    "publish_compressed": Param(False, "publish sensor_msgs/CompressedImage (JPEG) on rtc/camera/<slot>/compressed "
                                "instead of raw Image (set inference_node.use_compressed_images too)"),
    "jpeg_quality": Param(90, f"JPEG quality of publish_compressed {list(JPEG_QUALITY_RANGE)}",
                          in_range(*JPEG_QUALITY_RANGE)),
}


def _executor() -> Mapping[str, Param]:
    from rtc_controller.control.executor_params import PARAMS

    return PARAMS


def _inference() -> Mapping[str, Param]:
    from rtc_controller.app.inference_params import PARAMETERS

    return PARAMETERS


NODE_TABLES: dict[str, Callable[[], Mapping[str, Param]]] = {
    topics.EXECUTOR_NODE: _executor,
    topics.INFERENCE_NODE: _inference,
    topics.LIVE_VIEW_NODE: lambda: LIVE_VIEW_PARAMS,
    topics.TWIN_NODE: lambda: TWIN_PARAMS,
    topics.RECORDER_NODE: lambda: {},
}


@functools.cache
def table(node: str) -> Mapping[str, Param]:
    """Node ``node``'s parameter table (KeyError: not one of ours)."""
    return NODE_TABLES[node]()


def valid_keys(node: str) -> set[str]:
    return set(table(node))


def check_params_file(path: str | Path, nodes: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
    """``param_files.check_params_file`` against every node's table: ``{node: {param: value}}`` for our nodes."""
    return param_files.check_params_file(path, {n: functools.partial(valid_keys, n) for n in NODE_TABLES},
                                         nodes=nodes)  # fmt: skip
