"""Test session setup: an isolated DDS domain per run, SIGHUP as a terminal session has it, markers."""

import os
import random
import signal

# Each test run gets its own DDS domain and stays on this host, so parallel runs never cross-talk.
# Child processes started by the tests inherit these.
os.environ.setdefault("ROS_DOMAIN_ID", str(random.SystemRandom().randint(1, 100)))
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("MUJOCO_GL", "egl")  # the twin renders headless (before anything imports mujoco)

# Under `nohup make test` SIGHUP arrives ignored, and an ignored disposition is inherited by every process a test
# starts: the nodes then (by design, rtc_controller.shutdown) keep running on SIGHUP and do not watch their parent,
# and the shutdown tests would test nohup instead of a terminal session. A Python handler here keeps this pytest
# process alive on a hangup, and is reset to the default action in every exec'd child.
if signal.getsignal(signal.SIGHUP) == signal.SIG_IGN:
    signal.signal(signal.SIGHUP, lambda signum, frame: None)


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than a few seconds (still runs in CI)")
    config.addinivalue_line("markers", "dds: starts real ROS 2 processes talking over DDS")
