"""executor_node over real DDS: the node runs in its own process with the sim driver; this test's rclpy node
publishes chunks stamped with the robot-state stamp it received, after a known injected latency."""

import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from rtc_controller import topics
from rtc_controller.action_space import action_names
from rtc_controller.control.executor_params import PARAMS, check_consistency, check_param

ROOT = Path(__file__).resolve().parents[1]
NAMES = list(action_names())
DT = 0.02
H = 50
SERVO_PERIOD_S = 0.001
TRANSPORT_BOUND_S = 0.25  # DDS delivery + the node's callback on a shared, loaded 2-core machine (a bound, not a speed)
INJECTED_LATENCY_S = 0.05


def test_parameter_validation_reasons():
    assert check_param("driver", "sim") is None
    assert "one of" in check_param("driver", "ur5")
    assert "> 0" in check_param("action_rate_hz", -1.0)
    assert "must be a bool" in check_param("start_holding", 1)
    values = {k: p.default for k, p in PARAMS.items()}
    assert check_consistency(values) is None
    values["execution_horizon"] = values["horizon"] + 10
    assert "execution_horizon" in check_consistency(values)


def test_invalid_parameters_exit_with_a_reason():
    proc = subprocess.run(
        [sys.executable, "-m", "rtc_controller.ros.executor_node", "--ros-args", "-p", "execution_horizon:=180"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "execution_horizon" in proc.stderr


def _kill(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # the ramp-down path (SIGINT takes the same one)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _servo_children(pid):
    """The node's spawned servo processes (not multiprocessing's resource tracker)."""
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(c) for c in (task / "children").read_text().split()]
    return [c for c in out if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


def _start_executor_node(*overrides: str) -> subprocess.Popen:
    """executor_node on config/sim.yaml in its own process (``overrides``: ``-p name:=value`` arguments)."""
    return subprocess.Popen(
        [sys.executable, "-m", "rtc_controller.ros.executor_node", "--ros-args",
         "--params-file", str(ROOT / "config" / "sim.yaml"), *overrides],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def _spin_until(node, cond, timeout, *, also=()):
    """Spin ``node`` (and ``also``) until ``cond()`` or ``timeout`` [s]; whether ``cond()`` held."""
    import rclpy

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.01)
        for other in also:
            rclpy.spin_once(other, timeout_sec=0)
        if cond():
            return True
    return False


class _Probe:
    """The test's node ``executor_node_test``: records what executor_node publishes; publishes chunks."""

    def __init__(self):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64, Header, Int32
        from std_srvs.srv import Trigger
        from trajectory_msgs.msg import JointTrajectory

        from rtc_controller.ros.conversions import stamp_to_s

        node = self.node = rclpy.create_node("executor_node_test")
        got = self.got = {"state": None, "diag": [], "d": [], "delta": [], "active": [], "switch": []}
        self.lock = threading.Lock()

        def on_state(msg):
            with self.lock:
                got["state"] = msg

        def on_diag(msg):
            with self.lock:
                got["diag"].append({kv.key: kv.value for st in msg.status for kv in st.values})

        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        node.create_subscription(JointState, topics.ROBOT_STATE, on_state, 10)
        node.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, on_diag, 10)
        node.create_subscription(Int32, topics.INFERENCE_DELAY, lambda m: got["d"].append(m.data), latched)
        node.create_subscription(Float64, topics.MEASURED_DELAY, lambda m: got["delta"].append(m.data), 10)
        node.create_subscription(DiagnosticStatus, topics.SWITCH_EVENTS,
                                 lambda m: got["switch"].append({kv.key: kv.value for kv in m.values}), 50)
        node.create_subscription(Header, topics.ACTIVE_CHUNK, lambda m: got["active"].append(stamp_to_s(m.stamp)),
                                 latched)  # fmt: skip
        self.pub = node.create_publisher(JointTrajectory, topics.CHUNK, 10)
        self.hold_cli = node.create_client(Trigger, "/executor_node/hold")
        self.resume_cli = node.create_client(Trigger, "/executor_node/resume")

    def spin_until(self, cond, timeout):
        return _spin_until(self.node, cond, timeout)

    def fresh_state(self):
        with self.lock:
            self.got["state"] = None
        assert self.spin_until(lambda: self.got["state"] is not None, 10.0)
        return self.got["state"]


def _malformed_chunk_is_rejected_and_the_arms_hold(p: _Probe, home):
    from rtc_controller.ros.conversions import chunk_to_msg, msg_to_state, stamp_to_s

    bad = chunk_to_msg(np.zeros((H, 14)), NAMES, stamp_to_s(p.fresh_state().header.stamp), DT)
    bad.points[3].positions[2] = math.nan
    p.pub.publish(bad)
    assert p.spin_until(lambda: any(d.get("rejected_non_finite") == "1" for d in p.got["diag"]), 10.0)
    p.spin_until(lambda: False, 0.3)
    np.testing.assert_allclose(msg_to_state(p.fresh_state(), NAMES).positions, home, atol=1e-4)  # gripper noise


def _publish_chunks_after_a_known_latency(p: _Probe, home):
    """Chunks stamped with the received state stamp, published after INJECTED_LATENCY_S: (t_obs, lower bound of
    δ, δ measured) per chunk."""
    from rtc_controller.ros.conversions import chunk_to_msg, stamp_to_s

    got, expected = p.got, []
    for i in range(5):
        st = p.fresh_state()
        t_obs = stamp_to_s(st.header.stamp)
        a = np.repeat(home[None], H, 0)
        a[:, 0] += 0.002 * (i + np.arange(H) / H)  # a slow 2 mm drift in x
        time.sleep(INJECTED_LATENCY_S)
        t_pub = time.time()
        n_delta = len(got["delta"])
        p.pub.publish(chunk_to_msg(a, NAMES, t_obs, DT, guided_d=2))
        assert p.spin_until(lambda: len(got["delta"]) > n_delta, 10.0)
        delta = got["delta"][-1]
        expected.append((t_obs, t_pub - t_obs, delta))
        p.spin_until(lambda: False, 0.1)
    return expected


def _delays_switches_and_d_match(p: _Probe, expected):
    got = p.got
    for t_obs, lower, delta in expected:
        # δ is at least the time until publication and at most that plus one servo period and transport
        assert lower - SERVO_PERIOD_S <= delta <= lower + SERVO_PERIOD_S + TRANSPORT_BOUND_S
        assert delta >= INJECTED_LATENCY_S
    assert p.spin_until(lambda: len(got["active"]) > 0 and abs(got["active"][-1] - expected[-1][0]) < 1e-6, 10.0)
    n_diag = len(got["diag"])
    assert p.spin_until(lambda: len(got["diag"]) > n_diag, 10.0)
    diag = got["diag"][-1]
    last_delta = expected[-1][2]
    assert int(diag["last_k_star"]) == math.ceil(last_delta / DT - 1e-9)
    assert int(diag["last_guided_d"]) == 2
    assert int(diag["switches"]) == 5 and int(diag["accepted"]) == 5
    assert int(diag["rejected_non_finite"]) == 1
    assert p.spin_until(lambda: len(got["switch"]) >= 5, 10.0)
    for ev, (t_obs, _, delta) in zip(got["switch"][-5:], expected):  # one event per switch, in order
        assert float(ev["t_obs_s"]) == pytest.approx(t_obs, abs=1e-6)
        assert int(ev["k_star"]) == math.ceil(delta / DT - 1e-9) and int(ev["guided_d"]) == 2
        assert float(ev["jump_linear_m"]) < 0.005
    d_expected = math.ceil(float(np.quantile([e[2] for e in expected], 0.9)) / DT - 1e-9)
    assert p.spin_until(lambda: got["d"] and got["d"][-1] == d_expected, 10.0)
    for key in ("lateness_p99_us", "worst_window_late_fraction", "interventions_total", "mode"):
        assert key in diag
    assert diag["mode"] == "running"


def _static_parameters_refused_fixed_d_applied(p: _Probe):
    from rcl_interfaces.msg import Parameter as ParameterMsg, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters

    set_cli = p.node.create_client(SetParameters, "/executor_node/set_parameters")
    assert set_cli.wait_for_service(timeout_sec=5.0)

    def set_int(name, value):
        req = SetParameters.Request(parameters=[ParameterMsg(
            name=name, value=ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=value))])
        fut = set_cli.call_async(req)
        assert p.spin_until(fut.done, 10.0)
        return fut.result().results[0]

    r = set_int("horizon", 80)
    assert not r.successful and "run time" in r.reason
    r = set_int("fixed_d", -7)
    assert not r.successful and "fixed_d" in r.reason
    assert set_int("fixed_d", 4).successful
    assert p.spin_until(lambda: p.got["d"] and p.got["d"][-1] == 4, 10.0)


def _hold_and_resume_services(p: _Probe):
    from std_srvs.srv import Trigger

    for cli, mode in ((p.hold_cli, "holding"), (p.resume_cli, "running")):
        assert cli.wait_for_service(timeout_sec=5.0)
        fut = cli.call_async(Trigger.Request())
        assert p.spin_until(fut.done, 10.0) and fut.result().success
        n_diag = len(p.got["diag"])
        assert p.spin_until(lambda: len(p.got["diag"]) > n_diag, 10.0)
        assert p.got["diag"][-1]["mode"] == mode


def _dead_servo_process_is_reported(p: _Probe, proc):
    """A dead servo process -> ERROR diagnostics, no more robot state."""
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus

    (child,) = _servo_children(proc.pid)
    os.kill(child, signal.SIGKILL)
    errors = []

    def on_error_diag(msg):
        errors.extend(st for st in msg.status if st.level == DiagnosticStatus.ERROR)

    p.node.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, on_error_diag, 10)
    assert p.spin_until(lambda: errors, 10.0)
    assert "died" in errors[0].message
    p.spin_until(lambda: False, 0.2)
    with p.lock:
        p.got["state"] = None
    assert not p.spin_until(lambda: p.got["state"] is not None, 0.5)  # state no longer published


@pytest.mark.dds
@pytest.mark.slow
@pytest.mark.parametrize("servo_process", [True, False], ids=["servo_process", "servo_thread"])
def test_executor_node_over_dds(servo_process):
    import rclpy

    from rtc_controller.ros.conversions import msg_to_state

    proc = _start_executor_node(
        "-p", "delay_warmup_samples:=0", "-p", "sim_noise_pos_m:=0.0", "-p", "sim_noise_rot_rad:=0.0",
        "-p", f"servo_process:={str(servo_process).lower()}", "-p", "chunk_source_node:=executor_node_test",
    )  # fmt: skip
    rclpy.init()
    p = _Probe()
    try:
        assert p.spin_until(lambda: p.got["state"] is not None and p.pub.get_subscription_count() > 0, 60.0), (
            "executor_node did not come up: " + (proc.stdout.read() if proc.poll() is not None else "")
        )
        home = msg_to_state(p.fresh_state(), NAMES).positions
        # 1) a malformed chunk (non-finite values) is rejected and the arms hold
        _malformed_chunk_is_rejected_and_the_arms_hold(p, home)
        # 2) chunks stamped with the received state stamp, published after a known latency
        expected = _publish_chunks_after_a_known_latency(p, home)
        _delays_switches_and_d_match(p, expected)
        # 3) parameters: static ones refused with a reason, fixed_d validated and applied at run time
        _static_parameters_refused_fixed_d_applied(p)
        # 4) services
        _hold_and_resume_services(p)
        # 5) process mode: a dead servo process -> ERROR diagnostics, no more robot state, clean exit on SIGTERM
        if servo_process:
            _dead_servo_process_is_reported(p, proc)
    finally:
        p.node.destroy_node()
        rclpy.try_shutdown()
        _kill(proc)
    out = proc.stdout.read()
    assert "executor running" in out
    assert proc.returncode == 0, out[-2000:]
    assert ("in a process" in out) == servo_process
    if servo_process:
        assert "died" in out  # the clear log line


def test_parameter_cross_checks_refuse_with_a_reason():
    values = {k: p.default for k, p in PARAMS.items()}
    values.update(horizon=100, execution_horizon=50)
    assert check_consistency({**values, "fixed_d": 50}) is None
    assert "H - s = 50" in check_consistency({**values, "fixed_d": 51})
    proc = subprocess.run(
        [sys.executable, "-m", "rtc_controller.ros.executor_node", "--ros-args", "-p", "use_sim_time:=true"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 2 and "use_sim_time" in proc.stderr, proc.stderr


def test_a_misspelt_key_or_section_is_refused_with_the_nearest_name(tmp_path):
    text = (ROOT / "config" / "sim.yaml").read_text()
    for old, new, expected in (("max_linear_speed_m_s:", "max_linear_sped_m_s:", "did you mean 'max_linear_speed_m_s'"),
                               ("executor_node:\n", "executor:\n", "no section for executor_node"),
                               ("    ramp_down_s: 0.5", "    ramp_down_s: [0.5", "YAML syntax error")):  # fmt: skip
        path = tmp_path / "bad.yaml"
        path.write_text(text.replace(old, new, 1))
        proc = subprocess.run(
            [sys.executable, "-m", "rtc_controller.ros.executor_node", "--ros-args", "--params-file", str(path)],
            capture_output=True, text=True, timeout=60, cwd=ROOT,
        )  # fmt: skip
        assert proc.returncode == 2 and expected in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


class _PolicyStandIn:
    """The chunk source ``policy_stand_in`` (and a ``rogue`` node): executor_node's diagnostics by part, its robot
    state, its Trigger services, chunks at the latest state."""

    def __init__(self):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from sensor_msgs.msg import JointState
        from std_srvs.srv import Trigger
        from trajectory_msgs.msg import JointTrajectory

        node = self.node = rclpy.create_node("policy_stand_in")
        self.rogue = rclpy.create_node("rogue")
        status, state = self.status, self.state = {}, {}
        node.create_subscription(DiagnosticArray, topics.DIAGNOSTICS,
                                 lambda m: status.update({st.name.split(": ")[-1]: st for st in m.status}), 10)  # fmt: skip
        node.create_subscription(JointState, topics.ROBOT_STATE, lambda m: state.update(msg=m), 10)
        self.pub = node.create_publisher(JointTrajectory, topics.CHUNK, 10)
        self.clients = {n: node.create_client(Trigger, f"/executor_node/{n}") for n in ("hold", "resume", "reset_fault")}

    def spin_until(self, cond, timeout):
        return _spin_until(self.node, cond, timeout, also=(self.rogue,))

    def call(self, name):
        from std_srvs.srv import Trigger

        assert self.clients[name].wait_for_service(timeout_sec=10.0)
        fut = self.clients[name].call_async(Trigger.Request())
        assert self.spin_until(fut.done, 10.0)
        return fut.result()

    def value(self, part, key):
        return {kv.key: kv.value for kv in self.status[part].values}.get(key) if part in self.status else None

    def chunk(self, points=H):
        from rtc_controller.ros.conversions import chunk_to_msg, msg_to_state, stamp_to_s

        st = self.state["msg"]
        a = np.repeat(msg_to_state(st, NAMES).positions[None], points, 0)
        return chunk_to_msg(a, NAMES, stamp_to_s(st.header.stamp), DT)


def _service_replies_say_what_happened(s: _PolicyStandIn):
    r = s.call("reset_fault")
    assert not r.success and "no fault to clear" in r.message
    assert s.call("hold").message.startswith("holding")
    assert s.spin_until(lambda: s.value("driver", "mode") == "holding", 10.0)  # applied at the next servo tick
    assert s.call("hold").message == "already holding"
    assert s.call("resume").success
    assert s.spin_until(lambda: s.value("driver", "mode") == "running", 10.0)
    assert s.call("resume").message == "already running"


def _oversize_and_invalid_chunks_do_not_crowd_out_a_valid_one(s: _PolicyStandIn):
    s.pub.publish(s.chunk(100_000))  # 100,000 points: refused by its size, before any conversion
    assert s.spin_until(lambda: s.value("chunks", "rejected_oversize") == "1", 10.0)
    for _ in range(30):  # a burst of invalid chunks must not crowd out a valid one (queue depth, cheap refusals)
        bad = s.chunk()
        bad.points[5].positions[0] = float("nan")
        s.pub.publish(bad)
    s.pub.publish(s.chunk())
    assert s.spin_until(lambda: s.value("chunks", "accepted") == "1", 10.0)
    assert int(s.value("chunks", "rejected_non_finite") or 0) >= 1  # (older ones may drop from the queue)


def _a_rogue_publisher_takes_nothing_over(s: _PolicyStandIn):
    from diagnostic_msgs.msg import DiagnosticStatus
    from trajectory_msgs.msg import JointTrajectory

    OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR
    status = s.status
    rogue_pub = s.rogue.create_publisher(JointTrajectory, topics.CHUNK, 10)
    assert s.spin_until(lambda: status.get("interlock") and status["interlock"].level == ERROR, 20.0), status
    assert "rogue" in status["interlock"].message
    for _ in range(20):
        msg = s.chunk()
        msg.header.stamp.nanosec = (msg.header.stamp.nanosec + 40_000_000) % 1_000_000_000  # 40 ms ahead
        rogue_pub.publish(msg)
        s.spin_until(lambda: False, 0.02)
    assert s.spin_until(lambda: int(s.value("chunks", "rejected_source") or 0) >= 10, 10.0)
    assert s.value("chunks", "accepted") == "1", "not one of the rogue's chunks was accepted"
    assert s.spin_until(lambda: s.value("driver", "mode") == "holding", 10.0)
    r = s.call("resume")
    assert not r.success and "graph conflict" in r.message and "rogue" in r.message
    s.rogue.destroy_publisher(rogue_pub)
    assert s.spin_until(lambda: status["interlock"].level == WARN, 20.0), "cleared, waiting for the operator"
    assert s.call("resume").success
    assert s.spin_until(lambda: status["interlock"].level == OK and s.value("driver", "mode") == "running", 10.0)


@pytest.mark.dds
@pytest.mark.slow
def test_rogue_publishers_oversize_chunks_and_honest_service_replies():
    """The adversarial run's findings over real DDS: a second chunk publisher takes nothing over (its chunks are
    refused, the arms hold, ERROR, ~/resume refused until it is gone); a 100,000-point chunk is refused by its
    size; replies say what happened."""
    import rclpy

    proc = _start_executor_node("-p", "chunk_source_node:=policy_stand_in")
    rclpy.init()
    s = _PolicyStandIn()
    try:
        assert s.spin_until(lambda: "msg" in s.state and "chunks" in s.status, 90.0), "executor_node did not come up"
        _service_replies_say_what_happened(s)
        _oversize_and_invalid_chunks_do_not_crowd_out_a_valid_one(s)
        _a_rogue_publisher_takes_nothing_over(s)
    finally:
        s.rogue.destroy_node()
        s.node.destroy_node()
        rclpy.try_shutdown()
        _kill(proc)
    out = proc.stdout.read()
    assert proc.returncode == 0, out[-3000:]
    assert "graph conflict, holding the arms" in out


def test_diagnostics_levels_tick_error_sustained_interventions_and_interlock():
    import dataclasses

    from diagnostic_msgs.msg import DiagnosticStatus

    from rtc_controller.control.executor import Executor
    from rtc_controller.robots.sim import SimDriver
    from rtc_controller.ros.executor_diagnostics import SUSTAINED_PERIODS, NodeHealth, snapshot_to_diagnostics

    from executor_setup import QUIET, config

    ex = Executor(config(), SimDriver(QUIET))
    ex.start(run_loop=False)
    snap = ex.snapshot()
    ex.driver.close()
    by_name = lambda statuses: {s.name.split(": ")[1]: s for s in statuses}  # noqa: E731
    health = NodeHealth()
    ok = by_name(snapshot_to_diagnostics(snap, "executor_node", "sim", health))
    parts = ("servo loop", "chunks", "safety", "startup", "driver", "interlock")
    assert {k: s.level for k, s in ok.items()} == dict.fromkeys(parts, DiagnosticStatus.OK)
    failed = by_name(snapshot_to_diagnostics(dataclasses.replace(snap, tick_error="servo tick failed: OverflowError"),
                                             "executor_node", "sim", health))  # fmt: skip
    assert failed["servo loop"].level == DiagnosticStatus.ERROR and "OverflowError" in failed["servo loop"].message
    late = dataclasses.replace(snap, loop=dataclasses.replace(snap.loop, worst_window_late_fraction=0.015))
    assert by_name(snapshot_to_diagnostics(late, "executor_node", "sim", health))["servo loop"].level == DiagnosticStatus.OK
    strict = by_name(snapshot_to_diagnostics(late, "executor_node", "sim", health, timeliness_limit_pct=1.0))
    assert strict["servo loop"].level == DiagnosticStatus.WARN, "1.5 % late against a robot that faults at 1 %"
    counts = {"ticks": snap.safety_ticks, "hit": snap.safety_intervened_ticks}

    def safety_levels(shares):  # one 1000-tick period per share of intervened ticks
        out = []
        for share in shares:
            counts["ticks"] += 1000
            counts["hit"] += round(1000 * share)
            s = dataclasses.replace(snap, safety_ticks=counts["ticks"], safety_intervened_ticks=counts["hit"])
            out.append(by_name(snapshot_to_diagnostics(s, "executor_node", "sim", health))["safety"])
        return out

    ok, warn = DiagnosticStatus.OK, DiagnosticStatus.WARN
    # a switch's step smoothed every period (6 % of the ticks): reported, never WARN
    assert [st.level for st in safety_levels([0.06] * (SUSTAINED_PERIODS + 2))] == [ok] * (SUSTAINED_PERIODS + 2)
    # the filter changing most commands: WARN once sustained, and OK again when it stops
    statuses = safety_levels([0.9] * (SUSTAINED_PERIODS + 1) + [0.1])
    assert [st.level for st in statuses] == [ok] * (SUSTAINED_PERIODS - 1) + [warn] * 2 + [ok]
    assert "90%" in statuses[-2].message and "not the policy" in statuses[-2].message
    health.interlock = ("chunk publishers other than /inference_node: /rogue",)
    lock = by_name(snapshot_to_diagnostics(snap, "executor_node", "sim", health))["interlock"]
    assert lock.level == DiagnosticStatus.ERROR and "/rogue" in lock.message
