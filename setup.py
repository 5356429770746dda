"""ament_python package rtc_controller (builds with colcon, installs with pip)."""

import os
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "rtc_controller"

# One jax for the CPU default and the `gpu` extra: the newest release that has a CUDA 12 plugin
# (jax-cuda12-plugin stops at 0.12.0.1 while jax has 0.12.1; an unpinned jax would make `.[gpu]` unsatisfiable).
JAX_VERSION = "0.12.0.1"
# Runtime dependencies that are not ROS packages. ROS 2 itself (rclpy, the message packages) comes from
# the ROS install under colcon, or from the PyPI wheels in the `ros` extra inside a virtual environment.
INSTALL_REQUIRES = [
    "numpy>=1.26",
    "pyyaml>=6",
    f"jax=={JAX_VERSION}",
    f"jaxlib=={JAX_VERSION}",
    "matplotlib>=3.8",
    "rosbags>=0.10",
]
# The ROS 2 wheels, pinned per distro (one distro per virtual environment: they install the same modules).
# Jazzy is the rig's distro and the default ``ros`` extra; Kilted is the ``ros-kilted`` extra (README, "Tests").
ROS_MESSAGE_PACKAGES = (
    "std-msgs", "std-srvs", "sensor-msgs", "trajectory-msgs", "diagnostic-msgs", "geometry-msgs", "nav-msgs",
    "visualization-msgs",
)  # fmt: skip
ROS_DISTRO_VERSIONS = {  # distro -> (rclpy, rmw_fastrtps_cpp, common_interfaces)
    "jazzy": ("7.1.6", "8.4.3", "5.3.6"),
    "kilted": ("9.1.2", "9.3.3", "5.5.1"),
}


def ros_wheels(distro: str) -> list[str]:
    """The pinned ``ros-<distro>-*`` wheels: rclpy, the Fast DDS RMW and the message packages we use."""
    rclpy, rmw, msgs = ROS_DISTRO_VERSIONS[distro]
    return [f"ros-{distro}-rclpy=={rclpy}", f"ros-{distro}-rmw-fastrtps-cpp=={rmw}"] + [
        f"ros-{distro}-{pkg}=={msgs}" for pkg in ROS_MESSAGE_PACKAGES
    ]


def tree_data_files(root: str) -> list[tuple[str, list[str]]]:
    """``share/rtc_controller/<dir>`` entries for every folder under ``root`` that holds files (the trained models:
    an openpi checkpoint is a tree, ``params/d/…``, ``assets/<id>/norm_stats.json``)."""
    return [(f"share/{PACKAGE}/{d}", [os.path.join(d, f) for f in sorted(files)])
            for d, _, files in sorted(os.walk(root)) if files]  # fmt: skip


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*", "benchmarks"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE]),
        ("share/" + PACKAGE, ["package.xml"]),
        ("share/" + PACKAGE + "/launch", glob("launch/*.launch.py")),
        ("share/" + PACKAGE + "/config", glob("config/*.yaml") + glob("config/*.rviz") + glob("config/*.json")),
        ("share/" + PACKAGE + "/config/policy", glob("config/policy/*.yaml")),
        ("share/" + PACKAGE + "/config/train", glob("config/train/*.yaml")),
        ("share/" + PACKAGE + "/config/sros2", glob("config/sros2/*.xml")),
        ("share/" + PACKAGE + "/config/dds", glob("config/dds/*.xml")),  # Fast DDS profiles (docs/two_hosts.md)
        *tree_data_files("models"),
    ],
    python_requires=">=3.10",
    install_requires=INSTALL_REQUIRES,
    extras_require={
        "ros": ros_wheels("jazzy"),
        **{f"ros-{distro}": ros_wheels(distro) for distro in ROS_DISTRO_VERSIONS},
        "flexiv": ["flexivrdk>=2.1"],
        "pi05": ["orbax-checkpoint>=0.6", "sentencepiece>=0.2", "pillow>=10"],
        "train": ["optax>=0.2", "tqdm>=4.66"],  # rtc-train (with the pi05 extra)
        # the MuJoCo twin (driver: mujoco, twin_node, rtc-eval): 4.0 (mujoco + mujoco-core + mujoco-studio wheels)
        # is what the bootstrap installs and what the README's twin figures come from; the twin's tests also pass on 3.17
        "sim": ["mujoco>=3.2,<5"],
        # CUDA JAX for an NVIDIA GPU (the CPU default stays plain jax): jax with the CUDA 12 plugin and its CUDA
        # wheels, pinned to the jax the bootstrap installs so jaxlib and the plugin match
        # (`.venv/bin/pip install -e ".[gpu]"`; benchmarks/device_check.sh checks the backend)
        "gpu": [f"jax[cuda12]=={JAX_VERSION}"],
        "test": ["pytest>=8", "hypothesis>=6", "ruff>=0.6"],
    },
    zip_safe=True,
    maintainer="rtc_controller maintainers",
    maintainer_email="rtc-controller@example.com",
    description="Real-Time Chunking deployment of a pi0.5 flow policy on a dual-arm Flexiv rig.",
    license="Apache-2.0",
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [
            # through ros.entry: the shutdown handlers are installed before the heavy imports
            "executor_node = rtc_controller.ros.entry:executor_node",
            "inference_node = rtc_controller.ros.entry:inference_node",
            "rtc-record = rtc_controller.ros.entry:rtc_record",
            "live_view_node = rtc_controller.ros.entry:live_view_node",
            "rtc-bringup = rtc_controller.ros.entry:rtc_bringup",
            "rtc-demo = rtc_controller.tools.demo:main",
            "rtc-replay = rtc_controller.tools.replay_cli:main",
            "rtc-policy-check = rtc_controller.tools.policy_check:main",
            "rtc-train = rtc_controller.train.cli:main",
            "rtc-eval = rtc_controller.tools.eval:main",
            "twin_node = rtc_controller.ros.entry:twin_node",
        ],
    },
)
