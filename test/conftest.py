"""Test session setup: an isolated DDS domain per run, markers."""

import os
import random

# Each test run gets its own DDS domain and stays on this host, so parallel runs never cross-talk.
# Child processes started by the tests inherit these.
os.environ.setdefault("ROS_DOMAIN_ID", str(random.SystemRandom().randint(1, 100)))
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("MUJOCO_GL", "egl")  # the twin renders headless (before anything imports mujoco)


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than a few seconds (still runs in CI)")
    config.addinivalue_line("markers", "dds: starts real ROS 2 processes talking over DDS")
