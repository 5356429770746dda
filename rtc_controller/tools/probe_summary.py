"""What a run looked like from the robot PC: the link probe's JSON lines (``ros/link_probe.py``) -> figures.

ROS-free. ``rx`` is the probe's ``time.monotonic()`` [s]; stamps are on the executor's clock [s]. Figures:
chunks received, chunk switches (the first after a hold, ``from_hold``, counted apart: it starts from the held
pose and is not guided), the jump at each switch (``jump_norm``: all 14 dims, m and rad together;
``jump_linear_m``: the larger arm's TCP jump [m]), δ [s] and the d chunks were guided with [steps], the largest
TCP speed of the measured state [m/s] (a step in the executed motion would show here), and when the executor
reported starving (holding the last action of its last chunk).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from rtc_controller import topics
from rtc_controller.analysis.diagnostics_schema import CHUNKS, JUMP_NORM, REJECTED_TOTAL, status_name

Line = dict[str, Any]
ARM_XYZ = (slice(0, 3), slice(7, 10))  # left and right TCP position in the 14-dim Cartesian action space
CHUNKS_STATUS = status_name(topics.EXECUTOR_NODE, CHUNKS)
INFERENCE_STATUS = "inference_node: inference"
STARVING = "starving"


def read_lines(path: str | Any) -> list[Line]:
    """The probe's lines so far (a half-written last line is skipped); [] when the file does not exist yet."""
    out: list[Line] = []
    try:
        with open(path) as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    break
    except FileNotFoundError:
        pass
    return out


def of_kind(lines: list[Line], kind: str, after_rx: float = 0.0, before_rx: float = float("inf")) -> list[Line]:
    return [ln for ln in lines if ln["kind"] == kind and after_rx <= ln["rx"] < before_rx]


def switches(lines: list[Line], after_rx: float = 0.0, before_rx: float = float("inf")) -> list[Line]:
    """Chunk switches the executor reported in [after_rx, before_rx)."""
    return of_kind(lines, "switch", after_rx, before_rx)


def starving_rx(lines: list[Line], after_rx: float = 0.0) -> list[float]:
    """Receive times [s] of the executor's chunk status saying it starves (holds its last chunk's last action)."""
    return [ln["rx"] for ln in of_kind(lines, "diag", after_rx)
            if ln["name"] == CHUNKS_STATUS and ln["message"].startswith(STARVING)]  # fmt: skip


def max_tcp_speed_m_s(lines: list[Line], after_rx: float = 0.0, before_rx: float = float("inf")) -> float:
    """Largest TCP speed [m/s] of either arm between consecutive measured states (finite difference on the
    states' own stamps); 0 with fewer than two states."""
    states = of_kind(lines, "state", after_rx, before_rx)
    if len(states) < 2:
        return 0.0
    t = np.array([s["stamp"] for s in states])
    p = np.array([s["position"][:14] for s in states])
    dt = np.diff(t)
    ok = dt > 1e-4
    speeds = [np.linalg.norm(np.diff(p[:, sl], axis=0), axis=1)[ok] / dt[ok] for sl in ARM_XYZ]
    return float(max(np.max(s) if len(s) else 0.0 for s in speeds))


def _stats(values: list[float], unit: str) -> dict[str, float]:
    if not values:
        return {}
    v = np.asarray(values, dtype=float)
    return {f"mean_{unit}": float(v.mean()), f"median_{unit}": float(np.median(v)),
            f"p95_{unit}": float(np.quantile(v, 0.95)), f"max_{unit}": float(v.max())}  # fmt: skip


def summarise(lines: list[Line], after_rx: float = 0.0, before_rx: float = float("inf")) -> dict[str, Any]:
    """Figures of the run in [after_rx, before_rx) (see the module docstring)."""
    sw = switches(lines, after_rx, before_rx)
    guided = [s for s in sw if not s.get("from_hold")]
    deltas = [ln["value_s"] for ln in of_kind(lines, "delta", after_rx, before_rx)]
    diags = of_kind(lines, "diag", after_rx, before_rx)
    last_chunks = [ln for ln in diags if ln["name"] == CHUNKS_STATUS]
    latency = [float(ln["values"]["latency_s"]) for ln in diags if ln["name"] == INFERENCE_STATUS
               and ln["values"].get("latency_s", "nan") != "nan"]  # fmt: skip
    values = last_chunks[-1]["values"] if last_chunks else {}
    return {
        "chunks": len(of_kind(lines, "chunk", after_rx, before_rx)),
        "switches": len(sw),
        "switches_from_hold": len(sw) - len(guided),
        "jump_norm": _stats([s[JUMP_NORM] for s in guided], "1"),
        "jump_linear": _stats([s["jump_linear_m"] for s in guided], "m"),
        "delta": _stats(deltas, "s"),
        # the inference node's own time from observation to publish (injected latency + prepare + sample) [s]:
        # δ minus this is the state's age when sampling started plus both transports
        "inference_latency": _stats(latency, "s"),
        "guided_d": _stats([s["guided_d"] for s in guided if s.get("guided_d", -1) >= 0], "steps"),
        "k_star": _stats([s["k_star"] for s in guided], "steps"),
        "max_tcp_speed_m_s": max_tcp_speed_m_s(lines, after_rx, before_rx),
        "starving_reports": len(starving_rx(lines, after_rx)),
        "rejected_total": int(float(values.get(REJECTED_TOTAL, 0) or 0)),
        "last_rejection": values.get("last_rejection", ""),
    }
