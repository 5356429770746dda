"""The demos get a private DDS domain and localhost discovery unless the user set them (``tools/demo_dds``)."""

import random

from rtc_controller.tools.demo_dds import DOMAIN_RANGE, isolate_dds


def test_a_private_domain_and_localhost_when_unset():
    env = {}
    line = isolate_dds(env, rng=random.Random(3))
    assert DOMAIN_RANGE[0] <= int(env["ROS_DOMAIN_ID"]) <= DOMAIN_RANGE[1]
    assert env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    assert f"ROS_DOMAIN_ID={env['ROS_DOMAIN_ID']} (private" in line and "discovery LOCALHOST" in line


def test_the_users_choice_is_kept_and_printed():
    env = {"ROS_DOMAIN_ID": "7", "ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET"}
    line = isolate_dds(env)
    assert env == {"ROS_DOMAIN_ID": "7", "ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET"}
    assert line == "DDS: ROS_DOMAIN_ID=7 (yours), discovery SUBNET (yours)"
