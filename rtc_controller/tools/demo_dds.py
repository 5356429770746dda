"""The demos' private DDS graph: a domain of their own and localhost discovery unless the user chose (ROS-free).

Two demos on one host or LAN would otherwise share a graph (each trips the other's graph guards) and the twin's
shared-memory snapshot (named after ``ROS_DOMAIN_ID``). The demo's nodes inherit the environment set here.
"""

from __future__ import annotations

import os
import random
from collections.abc import MutableMapping

__all__ = ["DOMAIN_RANGE", "isolate_dds"]

# Fast DDS's default port mapping stays below Linux's ephemeral ports up to domain 101; 0 is everyone's default.
DOMAIN_RANGE = (1, 101)


def isolate_dds(environ: MutableMapping[str, str] | None = None, *, rng: random.Random | None = None) -> str:
    """Set a random ``ROS_DOMAIN_ID`` in ``DOMAIN_RANGE`` and ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` where the
    user set neither; returns the line to print, e.g. ``DDS: ROS_DOMAIN_ID=42 (private), discovery LOCALHOST``."""
    env = os.environ if environ is None else environ
    parts = []
    if env.get("ROS_DOMAIN_ID", "").strip():
        parts.append(f"ROS_DOMAIN_ID={env['ROS_DOMAIN_ID']} (yours)")
    else:
        env["ROS_DOMAIN_ID"] = str((rng or random.SystemRandom()).randint(*DOMAIN_RANGE))
        parts.append(f"ROS_DOMAIN_ID={env['ROS_DOMAIN_ID']} (private; set ROS_DOMAIN_ID to choose)")
    if env.get("ROS_AUTOMATIC_DISCOVERY_RANGE", "").strip():
        parts.append(f"discovery {env['ROS_AUTOMATIC_DISCOVERY_RANGE']} (yours)")
    else:
        env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
        parts.append("discovery LOCALHOST")
    return "DDS: " + ", ".join(parts)
