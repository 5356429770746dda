"""``rtc-bringup``: start the rig's nodes from one config file as separate processes (no ROS CLI needed).

The same nodes and config as ``launch/{sim,rig}.launch.py``: the executor node and the inference node, each
``python … --ros-args --params-file CONFIG -p name:=value …``, optionally the recorder
(``rtc_controller.ros.recorder``: ``--output DIR --storage mcap|sqlite3 [--topics …]``). Overrides are
``NODE.PARAM=VALUE`` (VALUE read as YAML: ``5``, ``stop``, ``true``, ``[a, b]``).

Usage:
    rtc-bringup --config config/sim.yaml --set inference_node.max_guidance_weight=5 --duration 30 --record out/bag

As a library (the demo drives one run per guidance mode)::

    with start_rig("config/sim.yaml", overrides={"inference_node": {"guidance_mode": "none"}}) as rig:
        rig.wait(30.0)          # returns early if a node dies
    # leaving the block stops every child: SIGINT, then SIGTERM, then SIGKILL after timeouts

Children run in their own sessions, so a Ctrl-C reaches them only through ``Rig.stop`` (ordered: inference,
executor, recorder last so it records until the end). ``rtc-bringup`` stops them on every signal (SIGINT, also
pressed twice, SIGTERM, SIGHUP) and when its own parent exits; if it is killed outright (SIGKILL), each child
notices its parent's exit and shuts down cleanly by itself (``rtc_controller.shutdown``).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml

from rtc_controller import topics
from rtc_controller.config_files import config_path
from rtc_controller.app.node_tables import check_params_file
from rtc_controller.shutdown import ShutdownSignals

NODE_ENTRIES: dict[str, str] = {  # node -> its function in rtc_controller.ros.entry
    topics.EXECUTOR_NODE: "executor_node",
    topics.INFERENCE_NODE: "inference_node",
    topics.LIVE_VIEW_NODE: "live_view_node",
    topics.TWIN_NODE: "twin_node",
}
NODE_MODULES: dict[str, str] = {
    topics.EXECUTOR_NODE: "rtc_controller.ros.executor_node",
    topics.INFERENCE_NODE: "rtc_controller.ros.inference_node",
    topics.LIVE_VIEW_NODE: "rtc_controller.ros.live_view_node",
    topics.TWIN_NODE: "rtc_controller.ros.twin_node",  # the MuJoCo twin's cameras and task status
}
RECORDER = "recorder"
RECORDER_MODULE = "rtc_controller.ros.recorder"
STORAGES = ("mcap", "sqlite3")
SIGINT_TIMEOUT_S = 8.0  # a node gets this long to shut down cleanly after SIGINT
SIGTERM_TIMEOUT_S = 3.0
POLL_S = 0.1


def _bootstrap(entry: str) -> list[str]:
    """A child's command prefix: ``rtc_controller.ros.entry.<entry>()`` (shutdown handlers first, then the node's
    module and its ``main()``), with the rest of argv (``--ros-args …``) as sys.argv."""
    return [sys.executable, "-c", f"import sys; from rtc_controller.ros.entry import {entry}; sys.exit({entry}())"]


def format_value(value: Any) -> str:
    """A parameter value as the ROS command line reads it (YAML): ``True`` -> ``true``, ``[1, 2]`` -> ``[1, 2]``."""
    text = yaml.safe_dump(value, default_flow_style=True, width=1_000_000).strip()
    return text.removesuffix("...").strip()  # a document end marker follows plain scalars


def parse_overrides(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``["inference_node.max_guidance_weight=5", …]`` -> ``{"inference_node": {"max_guidance_weight": 5}}``."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        target, sep, raw = item.partition("=")
        node, dot, param = target.partition(".")
        if not sep or not dot or not node or not param:
            raise ValueError(f"override {item!r} is not NODE.PARAM=VALUE")
        if node not in NODE_MODULES:
            raise ValueError(f"override {item!r}: unknown node {node!r}; expected one of {sorted(NODE_MODULES)}")
        out.setdefault(node, {})[param] = yaml.safe_load(raw) if raw.strip() else ""
    return out


def load_config(path: str | Path) -> dict[str, dict[str, Any]]:
    """``{node: {param: value}}`` for our nodes from a ROS parameter file (``node: ros__parameters: …``); unknown or
    misspelt keys and sections raise ConfigError (a ValueError) naming the file, the key and the nearest name."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} not found")
    return check_params_file(path)


def check_consistency(sections: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Warnings where the executor and inference sections disagree (after overrides) on H, s or Δt, a key left out
    counting with its default: the rule the inference node pauses on (``chunk_timing.timing_mismatches``)."""
    ex, inf = sections.get(topics.EXECUTOR_NODE), sections.get(topics.INFERENCE_NODE)
    if ex is None or inf is None:
        return []
    from rtc_controller.chunk_timing import TIMING_PARAMS, ChunkTiming, timing_mismatches

    timings = []
    for node, section in ((topics.INFERENCE_NODE, inf), (topics.EXECUTOR_NODE, ex)):
        try:
            timings.append(ChunkTiming.from_values({k: section.get(k, p.default) for k, p in TIMING_PARAMS.items()}))
        except (TypeError, ValueError) as exc:
            return [f"{node}: {exc}"]
    return [f"inference_node.{problem}" for problem in timing_mismatches(*timings)]


def default_nodes(config: str | Path) -> list[str]:
    """The executor and inference nodes, plus the twin node when the config has a ``twin_node`` section."""
    nodes = [topics.EXECUTOR_NODE, topics.INFERENCE_NODE]
    return nodes + ([topics.TWIN_NODE] if topics.TWIN_NODE in load_config(config) else [])


def node_command(node: str, config: str | Path, overrides: Mapping[str, Any] | None = None) -> list[str]:
    """The command line of one node: its main, the params file, then ``-p name:=value`` per override."""
    cmd = _bootstrap(NODE_ENTRIES[node]) + ["--ros-args", "--params-file", str(Path(config).resolve())]
    for name, value in (overrides or {}).items():
        cmd += ["-p", f"{name}:={format_value(value)}"]
    return cmd


def recorder_command(
    output: str | Path, *, storage: str = "mcap", record_topics: Sequence[str] = (), config: str | Path | None = None
) -> list[str]:
    """The recorder's command line (``config``: it also records the inference node's camera slots)."""
    if storage not in STORAGES:
        raise ValueError(f"storage must be one of {STORAGES}, got {storage!r}")
    cmd = _bootstrap("rtc_record") + ["--output", str(output), "--storage", storage]
    if config is not None:
        cmd += ["--config", str(Path(config).resolve())]
    if record_topics:
        cmd += ["--topics", *record_topics]
    return cmd


@dataclass
class Rig:
    """Handle on the started processes (name -> Popen); ``stop`` ends them all."""

    processes: dict[str, subprocess.Popen]
    log_paths: dict[str, Path] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # configuration mismatches (check_consistency)
    _logs: list[IO[bytes]] = field(default_factory=list, repr=False)
    _stopped: dict[str, int] | None = field(default=None, repr=False)

    def dead(self) -> dict[str, int]:
        """Children that have exited, with their return codes."""
        return {name: p.returncode for name, p in self.processes.items() if p.poll() is not None}

    def wait(self, duration_s: float | None = None, *, stop: threading.Event | None = None) -> dict[str, int]:
        """Wait ``duration_s`` (None: until a child exits); returns early with the dead children if one exits, and
        when ``stop`` is set (a shutdown request)."""
        stop = stop or threading.Event()
        end = None if duration_s is None else time.monotonic() + duration_s
        while (end is None or time.monotonic() < end) and not stop.is_set():
            dead = self.dead()
            if dead:
                return dead
            stop.wait(POLL_S if end is None else max(0.0, min(POLL_S, end - time.monotonic())))
        return self.dead()

    def stop(self, *, sigint_timeout_s: float = SIGINT_TIMEOUT_S, sigterm_timeout_s: float = SIGTERM_TIMEOUT_S) -> dict[str, int]:
        """SIGINT every child (inference, executor, then the recorder), then SIGTERM, then SIGKILL; return codes."""
        if self._stopped is not None:
            return self._stopped
        order = stop_order(self.processes)
        for sig, timeout in ((signal.SIGINT, sigint_timeout_s), (signal.SIGTERM, sigterm_timeout_s), (signal.SIGKILL, 5.0)):
            for name in order:
                proc = self.processes[name]
                if proc.poll() is None:
                    try:
                        proc.send_signal(sig)
                    except ProcessLookupError:
                        pass
                    if name != RECORDER:  # the recorder goes last: let the nodes go first
                        _wait(proc, min(timeout, 2.0))
            deadline = time.monotonic() + timeout
            for proc in self.processes.values():
                _wait(proc, max(0.0, deadline - time.monotonic()))
            if all(p.poll() is not None for p in self.processes.values()):
                break
        for log in self._logs:
            log.close()
        self._stopped = {name: p.returncode for name, p in self.processes.items()}
        return self._stopped

    def __enter__(self) -> Rig:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def stop_order(names: Sequence[str]) -> list[str]:
    """The inference node first (no new chunks), then the executor (ramp-down), then every other node (twin, live
    view), the recorder last: it records until the end."""
    first = [n for n in (topics.INFERENCE_NODE, topics.EXECUTOR_NODE) if n in names]
    return first + [n for n in names if n not in first and n != RECORDER] + ([RECORDER] if RECORDER in names else [])


def _wait(proc: subprocess.Popen, timeout_s: float) -> None:
    try:
        proc.wait(timeout=max(0.0, timeout_s))
    except subprocess.TimeoutExpired:
        pass


def start_rig(
    config: str | Path,
    *,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    nodes: Sequence[str] = (topics.EXECUTOR_NODE, topics.INFERENCE_NODE),
    record_dir: str | Path | None = None,
    record_storage: str = "mcap",
    record_topics: Sequence[str] = (),
    log_dir: str | Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Rig:
    """Start the recorder (if ``record_dir``), then ``nodes`` from ``config`` with ``overrides`` [{node: {param: value}}].

    ``log_dir``: each child's stdout+stderr go to ``log_dir/<name>.log`` (else they share this process's).
    ``env``: extra environment variables for the children (ROS_DOMAIN_ID, …). On a start failure, the children
    already started are stopped before the error propagates.
    """
    sections = load_config(config)
    overrides = {k: dict(v) for k, v in (overrides or {}).items()}
    unknown = sorted(set(overrides) - set(nodes))
    if unknown:
        raise ValueError(f"overrides for nodes that are not started: {unknown} (started: {list(nodes)})")
    for node in nodes:
        if node not in NODE_MODULES:
            raise ValueError(f"unknown node {node!r}; expected one of {sorted(NODE_MODULES)}")
        if node not in sections:
            raise ValueError(f"{config}: no '{node}: ros__parameters:' section")
    merged = {node: {**sections.get(node, {}), **overrides.get(node, {})} for node in nodes}
    warnings = check_consistency(merged)
    commands: dict[str, list[str]] = {}
    if record_dir is not None:
        commands[RECORDER] = recorder_command(
            record_dir, storage=record_storage, record_topics=record_topics, config=config
        )
    for node in nodes:
        commands[node] = node_command(node, config, overrides.get(node))
    child_env = dict(os.environ)
    child_env.update(env or {})
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    rig = Rig(processes={}, warnings=warnings)
    try:
        for name, cmd in commands.items():
            stdout = None
            if log_dir is not None:
                Path(log_dir).mkdir(parents=True, exist_ok=True)
                rig.log_paths[name] = Path(log_dir) / f"{name}.log"
                stdout = open(rig.log_paths[name], "wb")  # noqa: SIM115 — closed by Rig.stop
                rig._logs.append(stdout)
            rig.processes[name] = subprocess.Popen(
                cmd, env=child_env, stdout=stdout, stderr=subprocess.STDOUT if stdout else None, start_new_session=True
            )
    except BaseException:
        rig.stop()
        raise
    return rig


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rtc-bringup", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="ROS parameter file (default: the package's config/sim.yaml; or rig.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="NODE.PARAM=VALUE",
                        help="parameter override, repeatable (e.g. inference_node.max_guidance_weight=5)")
    parser.add_argument("--nodes", nargs="+", default=None, choices=sorted(NODE_MODULES),
                        help="nodes to start (default: executor and inference, and twin_node where the config has it)")
    parser.add_argument("--record", metavar="BAG_DIR", help="also start the recorder writing a bag to BAG_DIR")
    parser.add_argument("--storage", choices=STORAGES, default="mcap", help="bag storage of --record")
    parser.add_argument("--topics", nargs="+", default=[], help="topics for --record (default: the recorder's)")
    parser.add_argument("--duration", type=float, metavar="S", help="stop after S seconds (default: until Ctrl-C)")
    parser.add_argument("--log-dir", help="write each child's output to LOG_DIR/<name>.log")
    return parser  # fmt: skip


def main(args: list[str] | None = None) -> int:
    """Start the rig, wait for ``--duration``, a signal (SIGINT, SIGTERM, SIGHUP, any number) or the parent's exit,
    then stop every child in order (``Rig.stop``). Exit 0; 1 when a child exited on its own (a failed recording
    stops the run: it is not left running without its bag); 2 for bad arguments."""
    parser = build_parser()
    opts = parser.parse_args(args)
    signals = ShutdownSignals.for_process("rtc-bringup")  # before any child exists: no signal can orphan one
    try:
        overrides = parse_overrides(opts.overrides)
        config = opts.config or config_path("sim.yaml")
        rig = start_rig(
            config,
            overrides=overrides,
            nodes=opts.nodes or default_nodes(config),
            record_dir=opts.record,
            record_storage=opts.storage,
            record_topics=opts.topics,
            log_dir=opts.log_dir,
        )
    except (ValueError, FileNotFoundError) as exc:
        signals.uninstall()
        parser.error(str(exc))
    for warning in rig.warnings:
        print(f"rtc-bringup: warning: {warning}", file=sys.stderr, flush=True)
    names = ", ".join(f"{n} (pid {p.pid})" for n, p in rig.processes.items())
    print(f"rtc-bringup: started {names}", flush=True)
    status = 0
    try:
        dead = rig.wait(opts.duration, stop=signals.requested)
        if dead:
            what = ", ".join(f"{n} (exit code {c})" for n, c in dead.items())
            print(f"rtc-bringup: error: {what} exited on its own; stopping the rest", file=sys.stderr, flush=True)
            status = 1
    finally:
        codes = rig.stop()
        signals.finish()
    print(f"rtc-bringup: stopped, return codes {codes}", flush=True)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
