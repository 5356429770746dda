"""Shutdown under any signal, with real processes: ShutdownSignals on its own, then both nodes (both servo modes),
rtc-bringup and rtc-record. Every path must end the same way: ramp down, shared memory released, exit 0.

The node tests start the executor and the inference node in one process group, as a terminal (or ``timeout``,
systemd, docker) does, and signal the whole group, as Ctrl-C does; launch then forwards a second SIGINT.
"""

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from rtc_controller.app.bringup import node_command

ROOT = Path(__file__).resolve().parents[1]
SIM = ROOT / "config" / "sim.yaml"
UP_TIMEOUT_S = 240.0  # JAX import + compile on a loaded 2-core machine
EXIT_TIMEOUT_S = 60.0  # generous: the ramp-down is 0.5 s, the worker join at most 5 s
SHM_RE = re.compile(r"shared memory (\S+)\)")

SCRIPT = textwrap.dedent("""
    import sys, time
    from rtc_controller.shutdown import ShutdownSignals
    signals = ShutdownSignals("probe").install()
    print("ready", flush=True)
    while not signals.wait(0.05):
        pass
    time.sleep(float(sys.argv[1]))  # cleanup that more signals must not interrupt
    with open(sys.argv[2], "w") as f:
        f.write(f"clean {signals.reason} {signals.count}")
""")


def _probe(tmp_path, cleanup_s=1.0, **popen):
    out = tmp_path / "result"
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(cleanup_s), str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT, **popen)  # fmt: skip
    assert proc.stdout.readline().strip() == "ready"
    return proc, out


@pytest.mark.parametrize("sequence", [
    [signal.SIGINT], [signal.SIGINT, signal.SIGINT], [signal.SIGTERM], [signal.SIGHUP],
    [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGINT],
], ids=["sigint", "double_sigint", "sigterm", "sighup", "all"])  # fmt: skip
def test_signals_request_one_clean_shutdown(tmp_path, sequence):
    proc, out = _probe(tmp_path)
    for sig in sequence:
        proc.send_signal(sig)
        time.sleep(0.1)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out.read_text() == f"clean {sequence[0].name} {len(sequence)}"
    assert "Traceback" not in err
    if len(sequence) > 1:
        assert "ignored, still shutting down cleanly" in err


def test_interrupt_again_makes_a_second_sigint_interrupt_at_once():
    """Training's setting (train/loop.stop_on_signals): the first SIGINT asks for a stop, the second interrupts."""
    script = textwrap.dedent("""
        import time
        from rtc_controller.shutdown import ShutdownSignals
        with ShutdownSignals("probe", interrupt_again=True, watch_parent=False) as signals:
            print("ready", flush=True)
            signals.wait(30)
            print("requested", signals.reason, flush=True)
            try:
                time.sleep(30)  # a long checkpoint save
            except KeyboardInterrupt:
                print("interrupted", flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT)  # fmt: skip
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGINT)
    assert proc.stdout.readline().strip() == "requested SIGINT"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert out.strip() == "interrupted" and proc.returncode == 0, err
    assert "SIGINT again: interrupting at once" in err


def test_sighup_inherited_as_ignored_stays_ignored(tmp_path):
    proc, out = _probe(tmp_path, cleanup_s=0.0, preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    assert proc.poll() is None, "nohup: SIGHUP must not stop it"
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert proc.returncode == 0 and out.read_text() == "clean SIGINT 1"


def test_parent_exit_is_a_shutdown_request(tmp_path):
    out = tmp_path / "result"
    parent = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys, time; subprocess.Popen(sys.argv[1:]); time.sleep(600)",
         sys.executable, "-c", SCRIPT, "0", str(out)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert parent.stdout.readline().strip() == "ready"
    parent.kill()
    parent.wait(10)
    end = time.monotonic() + 30
    while not out.exists() and time.monotonic() < end:
        time.sleep(0.1)
    assert out.read_text() == "clean parent exited 1"


# --- the nodes ------------------------------------------------------------------------------------------------


def _start_nodes(tmp_path, servo_process: bool):
    """Executor + inference node in one new process group (the group leader is the executor)."""
    logs, procs = {}, {}
    overrides = {
        "executor_node": {"horizon": 100, "execution_horizon": 50, "servo_process": servo_process},
        "inference_node": {},
    }
    for name in ("executor_node", "inference_node"):
        logs[name] = tmp_path / f"{name}.log"
        group = {"process_group": 0} if not procs else {"process_group": procs["executor_node"].pid}
        procs[name] = subprocess.Popen(node_command(name, SIM, overrides[name]), cwd=ROOT, stdout=open(logs[name], "wb"),
                                       stderr=subprocess.STDOUT, **group)  # fmt: skip
    return procs, logs


def _wait_for(logs, procs, patterns, timeout_s):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        texts = {n: p.read_text(errors="replace") for n, p in logs.items()}
        if all(pat in texts[n] for n, pat in patterns.items()):
            return texts
        dead = {n: p.returncode for n, p in procs.items() if p.poll() is not None}
        assert not dead, f"died early {dead}: {texts}"
        time.sleep(0.5)
    raise AssertionError(f"not up within {timeout_s} s: { {n: p.read_text()[-2000:] for n, p in logs.items()} }")


def _end(procs):
    for p in procs.values():
        if p.poll() is None:
            p.kill()
            p.wait(10)


@pytest.mark.dds
@pytest.mark.slow
@pytest.mark.parametrize("servo_process,signals", [
    (True, [signal.SIGINT, signal.SIGINT]), (False, [signal.SIGINT, signal.SIGINT]),
    (True, [signal.SIGTERM, signal.SIGHUP]),
], ids=["servo_process-double_sigint", "servo_thread-double_sigint", "servo_process-sigterm_sighup"])  # fmt: skip
def test_nodes_shut_down_cleanly_on_repeated_group_signals(tmp_path, servo_process, signals):
    procs, logs = _start_nodes(tmp_path, servo_process)
    try:
        texts = _wait_for(logs, procs, {"executor_node": "executor running", "inference_node": "first chunk published"},
                          UP_TIMEOUT_S)  # fmt: skip
        shm = SHM_RE.search(texts["executor_node"]).group(1) if servo_process else None
        pgid = procs["executor_node"].pid
        for sig in signals:  # the terminal's (or timeout's) signal to the group, then launch's forwarded one
            os.killpg(pgid, sig)
            time.sleep(0.05)
        codes = {n: p.wait(EXIT_TIMEOUT_S) for n, p in procs.items()}
        texts = {n: p.read_text(errors="replace") for n, p in logs.items()}
        assert codes == {"executor_node": 0, "inference_node": 0}, texts
        for text in texts.values():
            assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
        assert "ramp-down done, driver stopped" in texts["executor_node"], "\n" + texts["executor_node"][-4000:]
        if servo_process:
            assert "servo process exit code 0" in texts["executor_node"]
            assert not Path("/dev/shm", shm.lstrip("/")).exists(), f"shared memory {shm} leaked"
    finally:
        _end(procs)


@pytest.mark.dds
@pytest.mark.slow
def test_bringup_killed_outright_its_nodes_shut_down_by_themselves(tmp_path):
    """SIGKILL to rtc-bringup: the nodes (in their own sessions) see their parent exit, ramp down and exit."""
    proc = subprocess.Popen([sys.executable, "-m", "rtc_controller.app.bringup", "--config", str(SIM), "--nodes",
                             "executor_node", "--set", "executor_node.horizon=100", "--log-dir", str(tmp_path)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    log = tmp_path / "executor_node.log"
    try:
        end = time.monotonic() + UP_TIMEOUT_S
        while time.monotonic() < end and "executor running" not in (log.read_text() if log.exists() else ""):
            assert proc.poll() is None, proc.stdout.read()
            time.sleep(0.5)
        text = log.read_text()
        shm = SHM_RE.search(text).group(1)
        child = int(re.search(r"executor_node \(pid (\d+)\)", proc.stdout.readline()).group(1))
        proc.kill()
        proc.wait(10)
        end = time.monotonic() + EXIT_TIMEOUT_S
        while time.monotonic() < end and Path(f"/proc/{child}").exists():
            time.sleep(0.2)
        text = log.read_text()
        assert not Path(f"/proc/{child}").exists(), f"orphaned executor_node still running: {text}"
        assert "parent exited: shutting down" in text and "ramp-down done, driver stopped" in text, text
        assert not Path("/dev/shm", shm.lstrip("/")).exists(), f"shared memory {shm} leaked"
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.dds
@pytest.mark.slow
def test_bringup_stops_its_children_on_sigterm_and_on_double_sigint(tmp_path):
    for signals in ([signal.SIGTERM], [signal.SIGINT, signal.SIGINT]):
        log_dir = tmp_path / signals[0].name / str(len(signals))
        proc = subprocess.Popen([sys.executable, "-m", "rtc_controller.app.bringup", "--config", str(SIM), "--nodes",
                                 "executor_node", "--set", "executor_node.horizon=100", "--log-dir", str(log_dir)],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
        child = int(re.search(r"executor_node \(pid (\d+)\)", proc.stdout.readline()).group(1))
        log = log_dir / "executor_node.log"
        end = time.monotonic() + UP_TIMEOUT_S
        while time.monotonic() < end and "executor running" not in log.read_text():
            time.sleep(0.5)
        for sig in signals:
            proc.send_signal(sig)
            time.sleep(0.05)
        out, _ = proc.communicate(timeout=EXIT_TIMEOUT_S)
        assert proc.returncode == 0, out
        assert "Traceback" not in out and "'executor_node': 0" in out, out
        assert not Path(f"/proc/{child}").exists()


def test_a_signal_during_the_imports_is_a_clean_stop(tmp_path):
    """The console scripts install the handlers before importing rclpy/JAX: SIGINT while a node still imports
    (rtc-bringup stopping a rig that just started) ends it with exit 0 and a line, not a traceback or -2."""
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from rtc_controller.ros.entry import executor_node; "
                             "sys.exit(executor_node())"], cwd=ROOT, stderr=subprocess.PIPE, text=True)  # fmt: skip
    time.sleep(0.3)  # still importing rclpy and numpy
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and ("stopped before start" in err or "stopped during start-up" in err), err
