"""Every flexivrdk name the drivers use exists, with a compatible signature, in the REAL wheels:
2.1.0 (this venv) for the RDK 2 driver, 1.9.4.1 (.venv/flexivrdk-1.9, imported in a subprocess) for RDK 1.
Signatures are read from the pybind11 docstrings (e.g. ``help(flexivrdk.Robot.StreamCartesianMotionForce)``)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rtc_controller.robots import flexiv_rdk1, flexiv_rdk2
from rtc_controller.robots.flexiv_api import ApiUse, check_api

ROOT = Path(__file__).resolve().parents[1]
RDK19_DIR = ROOT / ".venv" / "flexivrdk-1.9"


def test_rdk2_driver_matches_the_real_2_1_wheel():
    flexivrdk = pytest.importorskip("flexivrdk")
    assert flexivrdk.__version__.startswith("2.1")
    assert check_api(flexivrdk, flexiv_rdk2.API_USED) == []


def test_the_checker_catches_wrong_names_and_signatures():
    flexivrdk = pytest.importorskip("flexivrdk")
    bad = (
        ApiUse("Robot", "Enable", ()),  # 1.9 only
        ApiUse("Robot", "StreamCartesianMotionForce", ("pose",)),  # wrong parameter
        ApiUse("Robot", "__init__", ("serial",)),
        ApiUse("Gripper", "Move", ("width", "velocity", "force_limit")),  # 2.x needs the group first
        ApiUse("Mode", "RT_CARTESIAN_MOTION"),
    )
    assert len(check_api(flexivrdk, bad)) == len(bad)
    # an overload/default-aware match: RtCartesianCmd(pose_d) leaves wrench_d, twist_d, acc_d at their defaults
    assert check_api(flexivrdk, (ApiUse("RtCartesianCmd", "__init__", ("pose_d",)),)) == []


def test_rdk1_driver_matches_the_real_1_9_wheel():
    if not RDK19_DIR.exists():
        pytest.skip("flexivrdk 1.9 folder missing: `make setup` installs it into .venv/flexivrdk-1.9")
    code = (
        "import json, flexivrdk\n"
        "from rtc_controller.robots import flexiv_rdk1, flexiv_rdk2\n"
        "from rtc_controller.robots.flexiv_api import check_api\n"
        "print(json.dumps({'version': flexivrdk.__version__,\n"
        "                  'rdk1': check_api(flexivrdk, flexiv_rdk1.API_USED),\n"
        "                  'rdk2': check_api(flexivrdk, flexiv_rdk2.API_USED)}))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(RDK19_DIR))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["version"].startswith("1.9.4")
    assert res["rdk1"] == []
    assert res["rdk2"]  # and the 2.x driver would be refused by the 1.9 wheel (it lacks StreamCartesianMotionForce)


def test_rdk1_driver_would_be_refused_by_the_2_1_wheel():
    flexivrdk = pytest.importorskip("flexivrdk")
    problems = check_api(flexivrdk, flexiv_rdk1.API_USED)
    assert any("Enable" in p for p in problems)
