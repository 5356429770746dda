"""driver: mujoco behind the ArmDriver protocol: elapsed-time stepping, the world snapshot, faults, parameters."""

import numpy as np
import pytest

from rtc_controller.app.drivers import driver_factory
from rtc_controller.control.executor_params import PARAMS, check_param
from rtc_controller.robots.base import ArmDriver, DriverError
from rtc_controller.sim.mujoco_driver import MujocoDriver, MujocoDriverConfig
from rtc_controller.sim.snapshot import SnapshotReader

from executor_setup import FakeClock


def make(**kw):
    clock = FakeClock()
    return MujocoDriver(MujocoDriverConfig(snapshot_name=f"rtc_twin_test_{id(clock)}", **kw), clock=clock), clock


def test_world_advances_by_elapsed_time_and_tracks_commands():
    d, clock = make()
    assert isinstance(d, ArmDriver)
    d.connect()
    out = np.zeros(14)
    assert d.read_state(out)
    start = out.copy()
    target = start.copy()
    target[2] -= 0.05
    for _ in range(500):  # 0.5 s of 1 ms ticks, target 5 cm lower (rate-limited by nobody: a step command)
        clock.t += 0.001
        d.command(target)
    assert d.world.time_s == pytest.approx(0.5, abs=0.002)
    d.read_state(out)
    assert out[2] == pytest.approx(start[2] - 0.05, abs=0.004)
    clock.t += 1.0  # a long stall: the world slips instead of bursting
    d.command(target)
    assert d.slipped_steps > 900 and d.world.time_s == pytest.approx(0.55, abs=0.01)
    r = SnapshotReader(d.config.snapshot_name)
    s = r.read()
    assert s.t_episode_s == pytest.approx(d.world.time_s, abs=0.01) and s.cmd_pos.shape == (2, 3)
    r.close()
    d.close()


def test_a_reader_never_parses_half_a_header():
    """The writer creates the segment, then writes the header and its length last: a reader attaching in between
    waits for the length (and gives up with FileNotFoundError when no writer finishes)."""
    import threading
    from multiprocessing.shared_memory import SharedMemory

    name = f"rtc_twin_test_header_{id(object())}"
    bare = SharedMemory(name=name, create=True, size=1 << 16)  # created, nothing written yet
    try:
        with pytest.raises(FileNotFoundError, match="has no header"):
            SnapshotReader(name, wait_s=0.2)
    finally:
        bare.close()
        bare.unlink()
    d, _ = make()
    d.config = MujocoDriverConfig(snapshot_name=name)
    threading.Timer(0.3, d.connect).start()  # the writer appears while the reader waits
    r = SnapshotReader(name, wait_s=30.0)
    scene, task, instance = r.world()
    assert scene == d.config.scene and task == d.config.task and instance.seed == d.config.seed
    r.close()
    d.close()


def test_the_twin_policy_reads_the_snapshot_the_executor_names():
    """executor_node.twin_snapshot names the world; the inference node's twin_snapshot hands that name to the twin
    policies (before, they always read the default name and could not find a renamed world)."""
    from rtc_controller.app.policies import make_policy
    from rtc_controller.app.inference_params import PARAMETERS, policy_params

    d, _ = make()
    d.config = MujocoDriverConfig(snapshot_name=f"rtc_twin_test_named_{id(d)}", seed=5)
    d.connect()
    p = {k: s.default for k, s in PARAMETERS.items()} | {"policy": "twin", "twin_snapshot": d.config.snapshot_name}
    params = policy_params(p, section=None, horizon=50, dt_s=0.02, names=tuple(p["action_names"]))
    assert params["snapshot"] == d.config.snapshot_name
    policy = make_policy("twin", **params)
    assert policy.source.instance.seed == 5 and policy.scene == d.config.scene
    policy.source.reader.close()
    d.close()


def test_faults_and_lost_connection():
    d, clock = make(fault_at_s=0.1, disconnect_at_s=0.3)
    d.connect()
    out = np.zeros(14)
    clock.t += 0.05
    assert d.read_state(out)
    clock.t += 0.1
    assert not d.read_state(out) and d.status().fault
    assert d.clear_fault() and d.read_state(out)
    clock.t += 0.2
    with pytest.raises(DriverError, match="connection lost"):
        d.read_state(out)
    d.close()


def test_executor_parameters_select_the_twin(tmp_path):
    assert check_param("driver", "mujoco") is None
    v = {k: p.default for k, p in PARAMS.items()} | {"driver": "mujoco", "twin_seed": 3}
    cfg = tmp_path / "twin_world.yaml"
    cfg.write_text("scene:\n  conveyor_speed_m_s: 0.05\ntask:\n  time_limit_s: 9\n")
    v["twin_config"] = str(cfg)
    factory = driver_factory(v)
    assert factory.keywords == {} and factory.args[0].seed == 3
    assert factory.args[0].scene.conveyor_speed_m_s == 0.05 and factory.args[0].task.time_limit_s == 9
    cfg.write_text("scene:\n  conveyor_sped_m_s: 0.05\n")
    with pytest.raises(ValueError, match="did you mean 'conveyor_speed_m_s'"):
        driver_factory(v)
    v["twin_config"] = ""
    for other in ({"num_arms": 1}, {"action_space": "joint"}):  # the twin has two Cartesian arms: refused at start
        with pytest.raises(ValueError, match="two arms in the Cartesian action space"):
            driver_factory(v | other)


def test_the_executor_runs_the_twin_and_stops_on_its_fault():
    """The executor core, unchanged, with driver mujoco: holds the ready pose, then a joint-limit fault stops
    streaming (mode faulted, no commands reach the world) until reset_fault."""
    from executor_setup import config

    from rtc_controller.control.executor import Executor
    from rtc_controller.control.safety import ArmLimits, SafetyConfig

    limits = (ArmLimits(workspace_min_m=(0.2, -0.05, 0.0), workspace_max_m=(0.8, 0.65, 0.6)),
              ArmLimits(workspace_min_m=(0.2, -0.65, 0.0), workspace_max_m=(0.8, 0.05, 0.6)))  # fmt: skip
    cfg = config()
    cfg = type(cfg)(timeline=cfg.timeline, delay=cfg.delay, safety=SafetyConfig(servo_dt_s=0.001, arms=limits), loop=cfg.loop)
    d, clock = make()
    ex = Executor(cfg, d)
    ex.start(run_loop=False)
    for _ in range(100):
        clock.t += 0.001
        ex.tick(clock.t)
    assert ex.mode == "running" and ex.commands_sent == 100
    d.world.inject_fault("joint_limit: left_joint4 (test)")
    clock.t += 0.001
    ex.tick(clock.t)
    assert ex.mode == "faulted" and "joint_limit" in ex.fault_message
    sent = ex.commands_sent
    for _ in range(20):
        clock.t += 0.001
        ex.tick(clock.t)
    assert ex.commands_sent == sent
    assert ex.reset_fault()
    clock.t += 0.001
    ex.tick(clock.t)
    assert ex.mode == "holding"
    ex.shutdown(0.0)
