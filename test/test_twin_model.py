"""The twin's model against Flexiv's Rizon 4 spec table; the Cartesian controller's tracking; camera rendering."""

import math

import mujoco
import numpy as np
import pytest

from rtc_controller.sim import rizon4
from rtc_controller.sim.scene import ARMS, CAMERAS, SceneConfig, build_mjcf
from rtc_controller.sim.world import DOWN_ROTVEC, TwinWorld


@pytest.fixture(scope="module")
def world():
    return TwinWorld()


def test_joint_limits_and_link_offsets_equal_the_spec_table(world):
    m = world.model
    for arm in ARMS:
        for j in rizon4.JOINTS:
            jid = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, f"{arm}_{j.name}")
            np.testing.assert_allclose(m.jnt_range[jid], (j.lower_rad, j.upper_rad), atol=1e-9)
            np.testing.assert_allclose(m.jnt_axis[jid], j.axis, atol=1e-9)
            np.testing.assert_allclose(m.body_pos[m.jnt_bodyid[jid]], j.xyz, atol=1e-9)
    # Spec limits in degrees (Rizon 4 datasheet / Flexiv's description): ±160, ±130, ±170, −107…154, ±170, −80…260, ±170.
    deg = [(-160, 160), (-130, 130), (-170, 170), (-107, 154), (-170, 170), (-80, 260), (-170, 170)]
    for j, (lo, hi) in zip(rizon4.JOINTS, deg):
        assert math.degrees(j.lower_rad) == pytest.approx(lo, abs=0.1) and math.degrees(j.upper_rad) == pytest.approx(hi, abs=0.1)


def test_reach_is_the_datasheets_780_mm():
    """Stretched straight up, joint 2 to joint 6 spans the datasheet's reach (0.780 m)."""
    m = mujoco.MjModel.from_xml_string(build_mjcf(SceneConfig()))
    d = mujoco.MjData(m)
    mujoco.mj_kinematics(m, d)
    j2 = d.xpos[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "left_link2")]
    j6 = d.xpos[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "left_link6")]
    assert np.linalg.norm(j6 - j2) == pytest.approx(rizon4.REACH_M, abs=0.01)


def test_controller_tracks_a_one_second_chunk(world):
    """A 1 s chunk (50 steps at 20 ms: 15 cm along x and y, 10 cm down, gripper closing), interpolated at 1 kHz
    as the executor does: TCP within 5 mm and 0.02 rad of the command throughout, within 2 mm at the end."""
    world.reset(0)
    start = world.state()
    steps = 50
    errs_p, errs_r = [], []
    for k in range(steps * 20 + 200):
        u = min(k / (steps * 20), 1.0)
        s = 0.5 - 0.5 * math.cos(math.pi * u)  # smooth start and stop
        cmd = start.copy()
        cmd[0:3] = start[0:3] + s * np.array([0.15, 0.10, -0.10])
        cmd[7:10] = start[7:10] + s * np.array([0.10, -0.15, -0.10])
        cmd[6] = cmd[13] = 0.08 - 0.04 * s
        world.set_command(cmd)
        world.step(1)
        st = world.state()
        errs_p.append(max(np.linalg.norm(st[0:3] - cmd[0:3]), np.linalg.norm(st[7:10] - cmd[7:10])))
        errs_r.append(float(world.tracking_error()[:, 1].max()))
    assert not world.fault
    assert max(errs_p) < 0.005 and max(errs_r) < 0.02
    assert errs_p[-1] < 0.002
    assert st[6] == pytest.approx(0.04, abs=0.003)


def test_joint_limit_fault_holds_and_ignores_commands(world):
    world.reset(0)
    world.inject_fault("joint_limit: test")
    before = world.state()
    cmd = before.copy()
    cmd[0] += 0.1
    world.set_command(cmd)
    world.step(200)
    assert np.linalg.norm(world.state()[0:3] - before[0:3]) < 0.003
    world.clear_fault()
    assert world.fault == ""


@pytest.mark.slow
def test_cameras_render_non_empty_frames_of_the_configured_shape(world):
    from rtc_controller.sim.render import CameraRenderer

    world.reset(2)
    r = CameraRenderer(world.model, world.scene, height=64, width=80)
    frames = r.render_world(world)
    assert set(frames) == set(CAMERAS)
    for slot, f in frames.items():
        assert f.shape == (64, 80, 3) and f.dtype == np.uint8
        assert f.std() > 10, f"{slot} is blank"
    # The wrist cameras see different things from the base camera.
    assert np.abs(frames["base_0_rgb"].astype(int) - frames["left_wrist_0_rgb"]).mean() > 10
    r.close()


def test_ready_pose_points_down(world):
    world.reset(0)
    s = world.state()
    for o in (0, 7):
        assert np.linalg.norm(s[o + 3 : o + 6]) == pytest.approx(math.pi, abs=0.01)
        assert abs(s[o + 4]) == pytest.approx(DOWN_ROTVEC[1], abs=0.01)
