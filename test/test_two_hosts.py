"""Two hosts: the executor (sim arms) in one network namespace, the inference node in another, DDS over a veth link.

The harness (``tools/netns.py``) needs root and ``ip netns``; where they are refused these tests FAIL saying so
(CI must not pass by skipping them). Faults: the link down for 4 s and 10 s, the inference process killed and
restarted. Timing assertions have wide margins: the machine has two cores and may be loaded.
"""

import subprocess
import sys
import time

import pytest

from rtc_controller.tools import probe_summary as P
from rtc_controller.tools.netns import (
    NetnsUnavailable,
    TwoHosts,
    leftover_namespaces,
    wait_until,
)
from rtc_controller.tools.two_hosts import GPU_HOST, ROBOT_PC, SplitRig

SIM = "config/sim.yaml"
DT_S = 0.02
H = 100  # config/sim.yaml: the chunk covers H·Δt = 2 s from its observation
CHUNK_SPAN_S = H * DT_S
DIAG_PERIOD_S = 1.0  # the executor's diagnostics rate
MAX_LINEAR_SPEED_M_S = 1.0  # config/sim.yaml's safety limit
SPEED_MARGIN_M_S = 0.05  # sensor noise (1e-5 m per 20 ms) and stamp jitter
GUIDED_JUMP_MAX = 0.05  # a guided switch (stop, β = 10) jumps ~0.005; unguided ~0.12 (README, make demo-sim)
LIVELINESS_REPORT_S = 1.0 + DIAG_PERIOD_S + 3.0  # topics.CHUNK_LIVELINESS_LEASE_S + one report + margin [s]
RECOVERY_S = 60.0  # link back or a new node -> chunks again, on a loaded machine [s]


def _hosts() -> TwoHosts:
    try:
        return TwoHosts().__enter__()
    except NetnsUnavailable as exc:
        pytest.fail(f"the two-host tests need network namespaces (root, iproute2): {exc}", pytrace=False)


@pytest.fixture
def hosts():
    h = _hosts()
    try:
        yield h
    finally:
        h.close()
        assert not [n for n in leftover_namespaces() if n in {x.netns for x in h.hosts.values()}]


def test_without_network_namespaces_the_tests_fail_saying_why(monkeypatch):
    """Not root (as in a CI container without CAP_SYS_ADMIN): a failure with the reason, never a skip."""
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    with pytest.raises(pytest.fail.Exception, match="need network namespaces.*need root"):
        _hosts()


def test_jpeg_frames_decode_to_the_rendered_image():
    import numpy as np

    from rtc_controller.ros.conversions import image_to_array
    from rtc_controller.ros.twin_node import compressed_msg

    yy, xx = np.mgrid[0:CAMERA_PX, 0:CAMERA_PX]
    frame = np.stack([xx, yy, (xx + yy) // 2], axis=-1).astype(np.uint8)  # smooth, like a rendered scene
    msg = compressed_msg(frame, 12.5, "base_0_rgb", quality=90)
    assert msg.format == "jpeg" and len(msg.data) < frame.nbytes / 10 and msg.header.frame_id == "base_0_rgb"
    out = image_to_array(msg)
    assert out.shape == frame.shape and np.mean(np.abs(out.astype(int) - frame)) < 3.0


UDP_ECHO = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 47021)); s.settimeout(float(sys.argv[1]))
try:
    print(s.recv(100).decode(), flush=True)
except socket.timeout:
    print("timeout", flush=True)
"""
UDP_SEND = "import socket, sys; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'hello', (sys.argv[1], 47021))"


def _udp_crosses(h: TwoHosts, timeout_s: float = 5.0) -> bool:
    """A datagram from host A reaches host B's address."""
    rx = h.popen(GPU_HOST, [sys.executable, "-c", UDP_ECHO, str(timeout_s)], capture=True)
    time.sleep(1.0)  # the receiver binds
    for _ in range(3):
        h.exec(ROBOT_PC, [sys.executable, "-c", UDP_SEND, h.hosts[GPU_HOST].address], check=False)
        time.sleep(0.3)
    return rx.communicate(timeout=timeout_s + 30)[0].strip() == "hello"


def test_harness_joins_two_stacks_and_always_cleans_up(hosts):
    a, b = hosts.hosts[ROBOT_PC], hosts.hosts[GPU_HOST]
    assert a.address in hosts.exec(ROBOT_PC, ["ip", "-4", "addr"]).stdout
    assert b.address not in hosts.exec(ROBOT_PC, ["ip", "-4", "addr"]).stdout, "two network stacks"
    assert "veth_a" not in subprocess.run(["ip", "link"], capture_output=True, text=True, check=False).stdout, "nothing in ours"
    assert _udp_crosses(hosts)
    hosts.link_down()
    assert not _udp_crosses(hosts, timeout_s=2.0)
    hosts.link_up()
    assert _udp_crosses(hosts)
    # an exception inside the block: processes killed, namespaces deleted
    with pytest.raises(RuntimeError, match="boom"), TwoHosts() as h2:
        sleeper = h2.popen(ROBOT_PC, [sys.executable, "-c", "import time; time.sleep(600)"])
        names = {x.netns for x in h2.hosts.values()}
        raise RuntimeError("boom")
    assert sleeper.poll() is not None and not names & set(leftover_namespaces())


# --- the sim rig across the link --------------------------------------------------------------------------


def _rig(hosts, tmp_path, **kw) -> SplitRig:
    rig = SplitRig(hosts, SIM, tmp_path / "logs", **kw).start()
    assert rig.wait_chunks(3), f"no chunks across the link: {rig.dead()}\n{rig.logs()}"
    return rig


def _after_outage(rig: SplitRig, down_rx: float, up_rx: float, what: str) -> None:
    """The executor starves (holds its last chunk's last action, and says so) within the chunk's span after the
    last chunk, nothing steps, and after ``up_rx`` it switches again, guided from the second chunk on."""
    lines = rig.lines()
    before = P.switches(lines, 0.0, down_rx)
    starving = [t for t in P.starving_rx(lines, down_rx) if t < up_rx + 1.0]
    limit = CHUNK_SPAN_S + DIAG_PERIOD_S + 2.0  # the last chunk runs out H·Δt after its observation at the latest
    assert starving and starving[0] - down_rx < limit, f"{what}: no 'starving' hold within {limit} s: {starving}"
    assert before and starving[0] >= before[-1]["rx"], what
    alive = [(ln["rx"], int(ln["values"]["chunk_writers_alive"])) for ln in P.of_kind(lines, "diag", down_rx)
             if ln["name"] == P.CHUNKS_STATUS]  # fmt: skip
    lost = [t for t, n in alive if n == 0 and t < up_rx + 1.0]
    assert lost and lost[0] - down_rx < LIVELINESS_REPORT_S, f"{what}: DDS liveliness loss not reported: {alive}"
    assert wait_until(lambda: len(P.switches(rig.lines(), up_rx)) >= 3, RECOVERY_S), f"{what}: no recovery\n{rig.logs()}"
    lines = rig.lines()
    after = P.switches(lines, up_rx)
    speed = P.max_tcp_speed_m_s(lines, down_rx - 2.0)
    assert speed <= MAX_LINEAR_SPEED_M_S + SPEED_MARGIN_M_S, f"{what}: a step in the executed motion ({speed} m/s)"
    assert all(s["guided_d"] >= 0 for s in after), what
    assert wait_until(lambda: _writers_alive(rig) == 1, 10.0), f"{what}: the chunk writer is alive again"
    assert max(s["jump_norm"] for s in after[1:]) < GUIDED_JUMP_MAX, f"{what}: guidance after recovery {after}"


def _writers_alive(rig: SplitRig) -> int:
    status = [ln for ln in P.of_kind(rig.lines(), "diag") if ln["name"] == P.CHUNKS_STATUS]
    return int(status[-1]["values"]["chunk_writers_alive"]) if status else -1


@pytest.mark.dds
@pytest.mark.slow
def test_sim_rig_across_the_link(hosts, tmp_path):
    rig = _rig(hosts, tmp_path)
    t0 = time.monotonic()
    rx0, _ = hosts.interface_bytes(ROBOT_PC)
    assert wait_until(lambda: len(P.switches(rig.lines(), t0)) >= 8, 60.0), rig.logs()
    s = P.summarise(rig.lines(), after_rx=t0)
    rx1, _ = hosts.interface_bytes(ROBOT_PC)
    assert not rig.dead(), rig.logs()
    assert rx1 - rx0 > s["chunks"] * H * 14 * 8, "the chunks crossed the veth link"
    # δ = the injected latency (0.30 s) + sampling + transport, measured on the executor's clock: d ≈ 16
    assert 0.29 < s["delta"]["median_s"] < 0.45, s
    # δ = the inference node's own latency + the state's age when sampling started + both transports
    assert 0.0 < s["delta"]["median_s"] - s["inference_latency"]["median_s"] < 0.05, s
    assert 15 <= s["guided_d"]["median_steps"] <= 22 and 15 <= s["k_star"]["median_steps"] <= 23, s
    assert s["switches_from_hold"] == 0 and s["rejected_total"] == 0, s
    assert s["jump_norm"]["mean_1"] < 0.02, s  # guided (stop, β = 10): ~0.005, as on one host
    assert s["max_tcp_speed_m_s"] <= MAX_LINEAR_SPEED_M_S + SPEED_MARGIN_M_S, s
    codes = rig.stop()
    assert codes["executor_node"] == 0 and codes["inference_node"] == 0, (codes, rig.logs())


@pytest.mark.dds
@pytest.mark.slow
def test_link_down_4_s_and_10_s(hosts, tmp_path):
    # Outages longer than the chunk's span (H·Δt = 2 s) plus a diagnostics period and the 2 s liveliness lease:
    # the last chunk surely runs out and the loss is surely reported while the link is down. A 2 s outage ends
    # about when the last chunk (observed up to s·Δt + δ before the cut) runs out, so whether the executor
    # starves, and whether a 1 Hz report sees it, is a race (it failed CI on a loaded machine).
    rig = _rig(hosts, tmp_path)
    for outage_s in (4.0, 10.0):
        down = time.monotonic()
        hosts.link_down()
        time.sleep(outage_s)
        hosts.link_up()
        up = time.monotonic()
        _after_outage(rig, down, up, f"link down {outage_s} s")
    assert not rig.dead(), rig.logs()


@pytest.mark.dds
@pytest.mark.slow
def test_inference_killed_and_restarted(hosts, tmp_path):
    rig = _rig(hosts, tmp_path)
    down = time.monotonic()
    rig.kill_inference()
    time.sleep(3.0)
    rig.start_inference()
    up = time.monotonic()
    _after_outage(rig, down, up, "inference restarted")
    assert P.of_kind(rig.lines(), "chunk", up) and not rig.dead(), rig.logs()


# --- cameras across a bandwidth limit ----------------------------------------------------------------------

TWIN = "config/twin.yaml"
CAMERAS = ("base_0_rgb", "left_wrist_0_rgb", "right_wrist_0_rgb")
CAMERA_PX = 224
CAMERA_RATE_HZ = 5.0  # config/twin.yaml's (the CPU renders)
RAW_MBIT_S = len(CAMERAS) * CAMERA_PX**2 * 3 * 8 * CAMERA_RATE_HZ / 1e6  # 3 × 224² RGB at 5 Hz: 18 Mbit/s
LIMIT_MBIT_S = 8.0  # below the raw cameras' need, far above JPEG's (~1 Mbit/s)


def _images(rig: SplitRig, after_rx: float, fmt: str) -> dict[str, list[dict]]:
    lines = P.of_kind(P.read_lines(rig.gpu_probe_path), "image", after_rx)
    return {slot: [x for x in lines if x["slot"] == slot and x["format"] == fmt] for slot in CAMERAS}


@pytest.mark.dds
@pytest.mark.slow
def test_compressed_cameras_cross_a_limit_raw_ones_exceed(hosts, tmp_path):
    """The twin's three cameras at 224², 5 Hz, against a tbf limit of 8 Mbit/s: as JPEG (twin_node
    publish_compressed, inference_node use_compressed_images) they arrive at the camera rate and the executor runs
    the chunks; raw (18 Mbit/s) they do not get through."""
    assert RAW_MBIT_S > 2 * LIMIT_MBIT_S
    hosts.limit_bandwidth(LIMIT_MBIT_S)
    size = {"camera_height_px": CAMERA_PX, "camera_width_px": CAMERA_PX, "camera_rate_hz": CAMERA_RATE_HZ}
    overrides = {"twin_node": {**size, "publish_compressed": True}, "inference_node": {"use_compressed_images": True}}
    rig = SplitRig(hosts, TWIN, tmp_path / "logs", overrides, camera_probe=CAMERAS).start()
    assert rig.wait_chunks(3), f"no chunks with compressed cameras: {rig.dead()}\n{rig.logs()}"
    t0 = time.monotonic()
    time.sleep(10.0)
    jpeg = _images(rig, t0, "jpeg")
    rate = {s: len(v) / (time.monotonic() - t0) for s, v in jpeg.items()}
    assert all(r > 0.6 * CAMERA_RATE_HZ for r in rate.values()), rate
    assert len(P.switches(rig.lines(), t0)) >= 3, rig.logs()
    mbit = len(CAMERAS) * CAMERA_RATE_HZ * 8 * max(x["bytes"] for v in jpeg.values() for x in v) / 1e6
    assert mbit < LIMIT_MBIT_S / 2, f"JPEG at 224² needs {mbit:.1f} Mbit/s"

    rig.restart("twin_node", publish_compressed=False)  # raw frames, same link
    time.sleep(5.0)  # the twin node starts rendering
    t1 = time.monotonic()
    _, tx1 = hosts.interface_bytes(ROBOT_PC)
    time.sleep(20.0)
    raw = _images(rig, t1, "raw")
    elapsed = time.monotonic() - t1
    sent_mbit_s = (hosts.interface_bytes(ROBOT_PC)[1] - tx1) * 8 / 1e6 / elapsed
    assert sent_mbit_s > 0.5 * LIMIT_MBIT_S, f"raw frames are sent, filling the link: {sent_mbit_s:.1f} Mbit/s"
    published = CAMERA_RATE_HZ * elapsed
    assert all(len(v) < 0.2 * published for v in raw.values()), {s: len(v) for s, v in raw.items()}
    assert not rig.dead(), rig.logs()


# --- the twin with the learned π0.5 across the link -------------------------------------------------------

TWIN_PI05_H, TWIN_PI05_S = 50, 10  # models/twin_pi05's horizon; make demo's execution horizon


def _twin_pi05_overrides(status_file) -> dict:
    from rtc_controller.config_files import config_path, package_file

    section = str(package_file("models/twin_pi05/policy.yaml"))
    return {
        "inference_node": {"policy": "pi05", "policy_config": section, "horizon": TWIN_PI05_H,
                           "execution_horizon": TWIN_PI05_S, "num_steps": 10, "extra_latency_s": 0.1,
                           "guidance_mode": "stop", "max_guidance_weight": 10.0},
        "executor_node": {"horizon": TWIN_PI05_H, "execution_horizon": TWIN_PI05_S, "twin_seed": 0,
                          "twin_config": str(config_path("twin_world_learned.yaml"))},
        "twin_node": {"camera_rate_hz": 10.0, "status_file": str(status_file), "publish_compressed": True},
    }  # fmt: skip


@pytest.mark.dds
@pytest.mark.slow
def test_twin_with_the_learned_policy_across_the_link(hosts, tmp_path):
    """make demo's setting (stop, β = 10, s = 10, 0.1 s injected) with JPEG cameras, twin seed 0, the inference
    node on the other host: the episode runs until the twin decides it; δ = latency + inference + transport, d and
    the guided jumps as on one host. Success itself is not asserted: this small policy's outcome on one seed varies
    from run to run on one host too (docs/two_hosts.md gives the rates)."""
    status = tmp_path / "status.json"
    overrides = _twin_pi05_overrides(status)
    overrides["inference_node"]["use_compressed_images"] = True
    rig = SplitRig(hosts, TWIN, tmp_path / "logs", overrides).start()
    assert rig.wait_chunks(3), f"no chunks: {rig.dead()}\n{rig.logs()}"
    assert wait_until(lambda: status.exists() or bool(rig.dead()), 150.0), f"no outcome\n{rig.logs()}"
    import json

    outcome = json.loads(status.read_text())
    s = P.summarise(rig.lines())
    assert outcome["status"] in ("success", "failure") and outcome["end_time_s"] > 0, (outcome, s)
    assert 0.1 < s["delta"]["median_s"] < 0.4 and s["guided_d"]["median_steps"] >= 5, s
    assert s["jump_linear"]["mean_m"] < 0.01 and s["rejected_total"] == 0, s
