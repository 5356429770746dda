"""The in-process episode runner runs the rig's code: the executor core configured from the executor node's
parameter file and the inference node's loop, with nothing of its own between them and the twin."""

import numpy as np
import pytest
import yaml

from rtc_controller.config_files import config_path
from rtc_controller.control.executor import Executor
from rtc_controller.control.executor_params import PARAMS, build_config
from rtc_controller.policy.inference_loop import InferenceLoop, LoopSettings
from rtc_controller.sim.mujoco_driver import MujocoDriver
from rtc_controller.sim import episode
from rtc_controller.sim.episode import EpisodeConfig, EpisodeRunner, SimClock
from rtc_controller.sim.world import TwinWorld
from rtc_controller.tools.eval import Evaluator
from rtc_controller.tools.eval_config import EvalConfig

pytestmark = pytest.mark.slow


class RecordingDriver(MujocoDriver):
    """The twin's driver, logging every command with the executor clock's time."""

    log: list = []

    def command(self, cmd):
        RecordingDriver.log.append((self._clock(), np.array(cmd)))
        super().command(cmd)


class ReplayDriver:
    """A driver that replays measured states and logs the commands it gets (no physics)."""

    kind, num_arms = "cartesian", 2

    def __init__(self, states):
        self.states, self.i, self.commands = states, 0, []

    def connect(self):
        pass

    def read_state(self, out):
        out[:] = self.states[min(self.i, len(self.states) - 1)]
        self.i += 1
        return True

    def command(self, cmd):
        self.commands.append(np.array(cmd))

    def status(self):
        from rtc_controller.robots.base import DriverStatus

        return DriverStatus(connected=True, enabled=True, fault=False, message="replay")

    def stop(self):
        pass

    def close(self):
        pass


def test_the_runner_adds_nothing_between_the_executor_core_and_the_twin(monkeypatch):
    """Replaying an episode's chunks (at their arrival times) and measured states into a fresh executor core gives
    the runner's command stream bit for bit: the runner has no timeline, filter or switch logic of its own."""
    ev = Evaluator(EvalConfig(policy="twin", execution_horizon=10, time_limit_s=2.0))
    submitted, states = [], []
    real_submit, real_read = Executor.submit, MujocoDriver.read_state

    def submit(self, chunk, t_arrival_s=None):
        submitted.append((chunk, t_arrival_s))
        return real_submit(self, chunk, t_arrival_s)

    def read_state(self, out):
        healthy = real_read(self, out)
        states.append(out.copy())
        return healthy

    RecordingDriver.log = []
    monkeypatch.setattr(episode, "MujocoDriver", RecordingDriver)
    monkeypatch.setattr(Executor, "submit", submit)
    monkeypatch.setattr(MujocoDriver, "read_state", read_state)
    res = ev.run_episode(3, mode="stop", delay=4)
    monkeypatch.undo()
    assert res.chunks >= 8 and res.chunks - 1 <= len(submitted) <= res.chunks  # the last may still be in flight

    clock, replay = SimClock(), ReplayDriver(states)
    ex = Executor(ev.executor_config, replay, clock=clock, clock_offset_s=0.0)
    ex.start(run_loop=False)
    pending = list(submitted)
    for t_s, _ in RecordingDriver.log:
        clock.t_s = t_s
        while pending and t_s >= pending[0][1] - 1e-9:
            ex.submit(*pending.pop(0))
        ex.tick(t_s)
    recorded = np.array([c for _, c in RecordingDriver.log])
    assert len(replay.commands) == len(recorded)
    np.testing.assert_array_equal(np.array(replay.commands), recorded)
    assert all(abs(t_arr - c.t_obs_s - 4 * 0.02) < 1e-9 for c, t_arr in submitted)  # d = 4 injected exactly


def test_the_cell_runs_the_executor_nodes_parameter_file(tmp_path):
    """The executor core of a cell is the one the executor node builds from config/twin.yaml; a value changed in
    the file changes the in-process run."""
    ev = Evaluator(EvalConfig(policy="twin_expert", execution_horizon=10))
    node_values = {k: p.default for k, p in PARAMS.items()}
    node_values |= yaml.safe_load(config_path("twin.yaml").read_text())["executor_node"]["ros__parameters"]
    node_values |= {"execution_horizon": 10}
    assert ev.executor_config == build_config(node_values)
    assert ev.executor_config.safety.arms[0].max_angular_acc_rad_s2 == node_values["max_angular_acc_rad_s2"]

    slow = yaml.safe_load(config_path("twin.yaml").read_text())
    slow["executor_node"]["ros__parameters"]["max_linear_speed_m_s"] = 0.1
    path = tmp_path / "twin_slow.yaml"
    path.write_text(yaml.safe_dump(slow))
    ev_slow = Evaluator(EvalConfig(policy="twin_expert", execution_horizon=10, time_limit_s=6.0, config=str(path)))
    assert ev_slow.executor_config.safety.arms[0].max_linear_speed_m_s == 0.1
    ev_fast = Evaluator(EvalConfig(policy="twin_expert", execution_horizon=10, time_limit_s=6.0))
    fast, limited = ev_fast.run_episode(0, mode="none", delay=0), ev_slow.run_episode(0, mode="none", delay=0)
    assert fast.success and not limited.success  # the filter now caps the expert's 0.35 m/s: too slow for the bins
    assert limited.intervention_kinds["linear"] > 0.9 * limited.time_s * 1000  # capping it on nearly every tick


def test_a_bad_value_in_the_parameter_file_names_the_file_and_key(tmp_path):
    bad = yaml.safe_load(config_path("twin.yaml").read_text())
    bad["executor_node"]["ros__parameters"]["max_linear_acc_m_s2"] = -1.0
    path = tmp_path / "twin_bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(ValueError, match=r"twin_bad.yaml: executor_node: max_linear_acc_m_s2"):
        Evaluator(EvalConfig(policy="twin_expert", config=str(path)))


def test_d_follows_the_rigs_rule_own_latency_first_then_the_executors_estimate():
    """With inference_delay: auto (config/twin.yaml), the first guided chunks use the loop's own latency + 1 step,
    then the executor's measured δ: exactly the injected d in simulated time."""
    res = Evaluator(EvalConfig(policy="twin", execution_horizon=10, time_limit_s=3.0)).run_episode(1, mode="stop", delay=6)
    assert res.d_used[1] == 7  # own latency 6·Δt, + 1 step
    assert set(res.d_used[-5:]) == {6}  # the executor's estimate
    assert res.rejected == 0


def test_the_scripted_expert_runs_without_safety_interventions():
    """Velocity-continuous interpolation and an expert within the limits: the filter never changes its command."""
    world = TwinWorld()
    executor = Evaluator(EvalConfig(policy="twin_expert", execution_horizon=10)).executor_config
    from rtc_controller.sim.demos import expert_episode

    for seed in (1000, 1001):
        demo = expert_episode(seed, executor=executor, world=world, frame_rate_hz=0)
        assert demo.success
    runner = EpisodeRunner(world, executor, EpisodeConfig())
    from rtc_controller.sim.expert import ExpertConfig, plan_chunk
    from rtc_controller.sim.world import DOWN_ROTVEC

    def expert(obs, plan):
        return plan_chunk(world.scene, world.task, ExpertConfig(), state=obs.state, priv=world.privileged(),
                          slots=(0, 0), horizon=50, dt_s=0.02, rot_ref=np.array([DOWN_ROTVEC] * 2))

    res = runner.run(1002, loop=InferenceLoop(50, 0.02), settings=LoopSettings(execution_horizon=10, mode="none"),
                     make_chunk=expert)
    assert res.success and res.interventions == 0, res.intervention_kinds


def test_the_runner_refuses_a_bad_latency():
    with pytest.raises(ValueError, match="latency_s"):
        EpisodeConfig(latency_s=-0.1)
