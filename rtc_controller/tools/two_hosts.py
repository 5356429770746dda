"""The rig split over two hosts (docs/two_hosts.md): the robot PC runs the executor (sim arms or the MuJoCo twin, and
the twin's cameras), the GPU host runs the inference node; DDS between them over one link.

On one machine the two hosts are two network namespaces (``tools/netns.py``); on a real rig the same commands and
environment (``host_env``) are what each machine runs. ``python -m rtc_controller.tools.two_hosts`` runs one
measured session and writes ``OUT/summary.json`` (``tools/probe_summary.py``)::

    python -m rtc_controller.tools.two_hosts --config config/sim.yaml --seconds 30 --out out/two_hosts
    python -m rtc_controller.tools.two_hosts --one-host --out out/one_host          # the same, both on host A
    python -m rtc_controller.tools.two_hosts --link-down-at 10 --link-down-s 2 --out out/link_down

Every process of the session is started through ``TwoHosts.popen`` and stopped, and both namespaces deleted, when
the ``SplitRig`` block ends (also on an error or Ctrl-C).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rtc_controller import topics
from rtc_controller.config_files import config_path
from rtc_controller.app.bringup import load_config, node_command, parse_overrides
from rtc_controller.tools import probe_summary
from rtc_controller.tools.netns import TwoHosts, stop_process, wait_until

ROBOT_PC, GPU_HOST = "a", "b"
DDS_PROFILE_NAME = "dds/two_hosts_fastdds.xml"
# Across hosts the executor requests DDS liveliness on rtc/chunk (a lost inference node or link is reported);
# the inference node offers topics.CHUNK_LIVELINESS_LEASE_S (1 s), which must not exceed this.
EXECUTOR_TWO_HOSTS = {"chunk_liveliness_lease_s": 2.0}
FIRST_CHUNKS_TIMEOUT_S = 240.0  # JAX warm-up of the inference node on a loaded 2-core machine [s]
ENV_DROPPED = ("ROS_LOCALHOST_ONLY", "ROS_STATIC_PEERS", "FASTDDS_BUILTIN_TRANSPORTS")


def host_env(*, domain_id: int, profile: str | Path | None = None, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of every ROS process on either host: Fast DDS with the two-host profile (UDP only, unicast
    peers), discovery beyond localhost (``ROS_AUTOMATIC_DISCOVERY_RANGE=SUBNET``), the same domain on both."""
    env = dict(os.environ if base is None else base)
    for key in ENV_DROPPED:
        env.pop(key, None)
    path = str(Path(profile) if profile is not None else config_path(DDS_PROFILE_NAME))
    env.update({
        "ROS_DOMAIN_ID": str(domain_id), "ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET",
        "RMW_IMPLEMENTATION": "rmw_fastrtps_cpp", "FASTRTPS_DEFAULT_PROFILES_FILE": path,
        "FASTDDS_DEFAULT_PROFILES_FILE": path, "PYTHONUNBUFFERED": "1",
    })  # fmt: skip
    return env


def probe_command(out: str | Path, cameras: Sequence[str] = ()) -> list[str]:
    return [sys.executable, "-m", "rtc_controller.ros.link_probe", "--out", str(out), "--cameras", *cameras]


@dataclass
class SplitRig:
    """The executor side on host A (+ the twin node when the config has one, + the probe), the inference node on
    host B (or A with ``one_host``). ``overrides``: {node: {param: value}}. ``camera_probe``: camera slots a
    second probe on the inference host logs (``gpu_probe_path``): what of the cameras crossed the link."""

    hosts: TwoHosts
    config: Path
    log_dir: Path
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    domain_id: int = 0
    one_host: bool = False
    camera_probe: Sequence[str] = ()
    procs: dict[str, Any] = field(default_factory=dict)
    inference_starts: int = 0

    def __post_init__(self) -> None:
        self.config = Path(self.config).resolve()
        self.overrides = {**self.overrides, topics.EXECUTOR_NODE: {**EXECUTOR_TWO_HOSTS,
                                                                   **self.overrides.get(topics.EXECUTOR_NODE, {})}}  # fmt: skip
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.domain_id = self.domain_id or random.SystemRandom().randint(1, 200)
        self.env = host_env(domain_id=self.domain_id)
        self.probe_path = self.log_dir / "probe.jsonl"
        self.gpu_probe_path = self.log_dir / "probe_gpu.jsonl"

    @property
    def inference_host(self) -> str:
        return ROBOT_PC if self.one_host else GPU_HOST

    def start(self) -> SplitRig:
        """The probe and the robot PC's nodes first (the executor publishes state), then the inference node."""
        self.procs["probe"] = self.hosts.popen(ROBOT_PC, probe_command(self.probe_path), env=self.env,
                                               log_path=self.log_dir / "probe.log")  # fmt: skip
        if self.camera_probe:
            self.procs["probe_gpu"] = self.hosts.popen(self.inference_host,
                                                       probe_command(self.gpu_probe_path, self.camera_probe),
                                                       env=self.env, log_path=self.log_dir / "probe_gpu.log")  # fmt: skip
        nodes = [topics.EXECUTOR_NODE] + ([topics.TWIN_NODE] if topics.TWIN_NODE in load_config(self.config) else [])
        for node in nodes:
            self._start_node(ROBOT_PC, node, node)
        self.start_inference()
        return self

    def _start_node(self, host: str, node: str, log_name: str) -> None:
        cmd = node_command(node, self.config, self.overrides.get(node))
        self.procs[node] = self.hosts.popen(host, cmd, env=self.env, log_path=self.log_dir / f"{log_name}.log")

    def start_inference(self) -> None:
        """Start (or restart) the inference node on its host; each start logs to its own file."""
        self.inference_starts += 1
        self._start_node(self.inference_host, topics.INFERENCE_NODE, f"inference_node.{self.inference_starts}")

    def restart(self, node: str, **overrides: Any) -> None:
        """Stop ``node`` (SIGINT …) and start it again with ``overrides`` added to its parameters."""
        stop_process(self.procs[node])
        self.overrides.setdefault(node, {}).update(overrides)
        if node == topics.INFERENCE_NODE:
            self.start_inference()
        else:
            self._start_node(ROBOT_PC, node, f"{node}.restarted")

    def kill_inference(self) -> int | None:
        """SIGKILL the inference node (a crash: nothing is said on the network); its return code."""
        return stop_process(self.procs[topics.INFERENCE_NODE], timeouts_s=(0.0, 0.0, 10.0))

    def dead(self) -> dict[str, int]:
        return {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}

    def lines(self) -> list[dict[str, Any]]:
        return probe_summary.read_lines(self.probe_path)

    def wait_chunks(self, count: int, timeout_s: float = FIRST_CHUNKS_TIMEOUT_S, *, after_rx: float = 0.0) -> bool:
        """True once the executor switched to ``count`` chunks received after ``after_rx`` [s, monotonic]."""
        return wait_until(lambda: bool(self.dead()) or len(probe_summary.switches(self.lines(), after_rx)) >= count,
                          timeout_s, poll_s=0.5) and not self.dead()  # fmt: skip

    def logs(self, tail_chars: int = 2500) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-tail_chars:]}"
                         for p in sorted(self.log_dir.glob("*.log")))  # fmt: skip

    def stop(self) -> dict[str, int | None]:
        """Inference first (no new chunks), then the robot PC's nodes, the probe last."""
        order = [topics.INFERENCE_NODE, topics.EXECUTOR_NODE, topics.TWIN_NODE, "probe", "probe_gpu"]
        return {n: stop_process(self.procs[n]) for n in order if n in self.procs}


def run_session(opts: argparse.Namespace) -> dict[str, Any]:
    """One measured session (CLI): warm-up, ``--seconds`` of running with the optional link fault, a summary."""
    out = Path(opts.out)
    overrides = parse_overrides(opts.overrides)
    config = Path(opts.config or config_path("sim.yaml"))
    status_file = (out / "task_status.json").resolve()
    status_file.unlink(missing_ok=True)
    if topics.TWIN_NODE in load_config(config):
        overrides.setdefault(topics.TWIN_NODE, {})["status_file"] = str(status_file)
    with TwoHosts() as hosts:
        if opts.bandwidth_mbit:
            hosts.limit_bandwidth(opts.bandwidth_mbit)
        rig = SplitRig(hosts, config, out / "logs", overrides, one_host=opts.one_host).start()
        try:
            if not rig.wait_chunks(2):
                raise RuntimeError(f"no chunks across the link: {rig.dead()}\n{rig.logs()}")
            t0 = time.monotonic()
            fault = _link_fault(hosts, t0, opts)
            done = (lambda: status_file.exists()) if opts.until_task_done else (lambda: False)
            wait_until(lambda: done() or bool(rig.dead()), max(0.0, t0 + opts.seconds - time.monotonic()))
            rx_a, tx_a = hosts.interface_bytes(ROBOT_PC)
        finally:
            codes = rig.stop()
        summary = probe_summary.summarise(rig.lines(), after_rx=t0)
    if status_file.exists():
        summary["task"] = json.loads(status_file.read_text())
    summary.update(one_host=opts.one_host, seconds=opts.seconds, bandwidth_mbit=opts.bandwidth_mbit, link_fault=fault,
                   robot_pc_bytes={"rx": rx_a, "tx": tx_a}, return_codes=codes, overrides=overrides)  # fmt: skip
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _link_fault(hosts: TwoHosts, t0: float, opts: argparse.Namespace) -> dict[str, float] | None:
    if opts.link_down_at is None:
        return None
    time.sleep(max(0.0, t0 + opts.link_down_at - time.monotonic()))
    down = time.monotonic()
    hosts.link_down()
    time.sleep(opts.link_down_s)
    hosts.link_up()
    return {"down_rx": down, "up_rx": time.monotonic()}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rtc-two-hosts", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", help="ROS parameter file (default config/sim.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="NODE.PARAM=VALUE")
    p.add_argument("--seconds", type=float, default=30.0, help="measured run after the first chunks [s]")
    p.add_argument("--out", default="out/two_hosts")
    p.add_argument("--one-host", action="store_true", help="run the inference node on host A too (the baseline)")
    p.add_argument("--bandwidth-mbit", type=float, default=0.0, help="tc tbf limit on the link [Mbit/s] (0 = none)")
    p.add_argument("--link-down-at", type=float, default=None, help="take the link down this long into the run [s]")
    p.add_argument("--link-down-s", type=float, default=2.0, help="for this long [s]")
    p.add_argument("--until-task-done", action="store_true",
                   help="twin: stop when twin_node decides the task (at most --seconds); the outcome goes in the summary")
    return p


def main(args: list[str] | None = None) -> int:
    summary = run_session(build_parser().parse_args(args))
    print(json.dumps({k: v for k, v in summary.items() if k not in ("return_codes", "overrides")}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
