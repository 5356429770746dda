"""Two hosts on one machine: two Linux network namespaces joined by a veth pair (ROS-free test harness).

Each namespace is a host with its own network stack: a loopback and one end of the veth pair, with an address
inside a private /24 (``10.21.0.1`` is host A, ``10.21.0.2`` host B unless chosen otherwise). Nothing is added to
the machine's own namespace: the veth pair is created directly inside the two namespaces, and deleting a
namespace deletes its end (and with it the pair). Processes started on a host (``TwoHosts.popen``) run under
``ip netns exec``; they share the machine's file system, /dev/shm and clocks, only the network is split, so a
DDS profile that allows UDP only (no shared-memory transport, ``config/dds/two_hosts_fastdds.xml``) is what
makes every byte cross the link.

Faults: ``link_down``/``link_up`` (``ip link set … down/up`` on both ends) and ``limit_bandwidth`` (a ``tc tbf``
qdisc on both ends: a rate limit [Mbit/s] without added latency; ``netem`` is not assumed).

Usage::

    with TwoHosts() as hosts:                       # refuses with NetnsUnavailable (a clear reason) if not root
        a = hosts.popen("a", ["python", "-m", "..."], log_path="a.log")
        hosts.link_down(); ...; hosts.link_up()
    # on leaving, also on an exception: every process started is stopped (SIGINT, SIGTERM, SIGKILL), then any
    # process left in the namespaces is killed and both namespaces are deleted.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Self

IP = "ip"
TC = "tc"
DEFAULT_SUBNET = "10.21.0.0/24"
PREFIX = "rtc2h"  # every namespace this harness makes starts with this (cleanup of leftovers: leftover_namespaces)
STOP_TIMEOUTS_S = (8.0, 3.0, 3.0)  # how long a process gets after SIGINT, SIGTERM and SIGKILL [s]
TBF_BURST_BYTES = 32_000  # token bucket depth of the bandwidth limit [bytes]
TBF_LATENCY_MS = 50  # longest a packet may wait in the bucket before it is dropped [ms]


class NetnsUnavailable(RuntimeError):
    """Network namespaces cannot be made here (not root, no ``ip``, or the kernel refuses): the reason."""


@dataclass(frozen=True)
class Host:
    """One side: its namespace, its veth end and its address (no prefix length)."""

    name: str
    netns: str
    interface: str
    address: str


def _run(cmd: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), capture_output=True, text=True, check=check, timeout=30)


def check_available() -> None:
    """Raise NetnsUnavailable with the reason when ``ip netns`` cannot make a namespace here."""
    if os.geteuid() != 0:
        raise NetnsUnavailable("network namespaces need root (ip netns add): run the two-host tests as root")
    probe = f"{PREFIX}probe{os.getpid()}"
    try:
        res = _run([IP, "netns", "add", probe], check=False)
    except FileNotFoundError:
        raise NetnsUnavailable("the 'ip' command (iproute2) is not installed") from None
    if res.returncode != 0:
        raise NetnsUnavailable(f"'ip netns add' refused: {res.stderr.strip() or res.returncode}")
    _run([IP, "netns", "del", probe], check=False)


def leftover_namespaces() -> list[str]:
    """Namespaces of this harness that still exist (a crashed run; ``ip netns del`` them)."""
    out = _run([IP, "netns", "list"], check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(PREFIX)]


class TwoHosts:
    """Context manager: namespaces ``a`` and ``b`` joined by a veth pair; processes; link faults; cleanup."""

    def __init__(self, *, subnet: str = DEFAULT_SUBNET, tag: str | None = None) -> None:
        """``subnet``: a private IPv4 /24 or smaller (A gets its first host address, B the second). ``tag``:
        a short name part (default: this process's id and a counter) so parallel harnesses never collide."""
        net = ipaddress.ip_network(subnet)
        first, second = list(net.hosts())[:2]
        tag = tag or f"{os.getpid() % 100000}{_next_id()}"
        self.prefix_len = net.prefixlen
        self.hosts = {
            "a": Host("a", f"{PREFIX}{tag}a", "veth_a", str(first)),
            "b": Host("b", f"{PREFIX}{tag}b", "veth_b", str(second)),
        }
        self._procs: list[tuple[str, subprocess.Popen]] = []
        self._logs: list[IO[bytes]] = []
        self._made: list[str] = []

    # ---- set-up and tear-down ------------------------------------------------------------------------------
    def __enter__(self) -> Self:
        check_available()
        try:
            self._create()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _create(self) -> None:
        a, b = self.hosts["a"], self.hosts["b"]
        for h in (a, b):
            _run([IP, "netns", "add", h.netns])
            self._made.append(h.netns)
        _run([IP, "link", "add", a.interface, "netns", a.netns, "type", "veth", "peer", "name", b.interface,
              "netns", b.netns])  # fmt: skip
        for h in (a, b):
            self.exec(h.name, [IP, "link", "set", "lo", "up"])
            self.exec(h.name, [IP, "addr", "add", f"{h.address}/{self.prefix_len}", "dev", h.interface])
            self.exec(h.name, [IP, "link", "set", h.interface, "up", "multicast", "on"])
            # a multicast route, so DDS's multicast discovery has an interface to leave by (there is no default route)
            self.exec(h.name, [IP, "route", "add", "224.0.0.0/4", "dev", h.interface])

    def close(self) -> None:
        """Stop every process started here, kill whatever is left in the namespaces, delete them (idempotent)."""
        for _name, proc in reversed(self._procs):
            stop_process(proc)
        for log in self._logs:
            log.close()
        self._logs.clear()
        for netns in self._made:
            for pid in _run([IP, "netns", "pids", netns], check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            _run([IP, "netns", "del", netns], check=False)
        self._made.clear()

    # ---- commands and processes ---------------------------------------------------------------------------
    def exec(self, host: str, cmd: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess:
        """Run ``cmd`` to completion on ``host`` (``a`` or ``b``); stdout/stderr captured."""
        return _run([IP, "netns", "exec", self.hosts[host].netns, *cmd], check=check)

    def popen(
        self,
        host: str,
        cmd: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        log_path: str | Path | None = None,
        capture: bool = False,
    ) -> subprocess.Popen:
        """Start ``cmd`` on ``host`` in its own session (stdout+stderr to ``log_path`` if given, or to a text pipe
        with ``capture``); stopped on close. ``ip netns exec`` execs the command: the Popen's pid is its own."""
        stdout: IO[bytes] | int | None = subprocess.PIPE if capture else None
        if log_path is not None:
            Path(log_path).parent.mkdir(parents=True, exist_ok=True)
            stdout = open(log_path, "wb")  # noqa: SIM115 — closed in close()
            self._logs.append(stdout)
        proc = subprocess.Popen(
            [IP, "netns", "exec", self.hosts[host].netns, *cmd], env=dict(env) if env is not None else None,
            stdout=stdout, stderr=subprocess.STDOUT if stdout else None, start_new_session=True, text=capture,
        )  # fmt: skip
        self._procs.append((host, proc))
        return proc

    # ---- link faults ---------------------------------------------------------------------------------------
    def link_down(self) -> None:
        """Take both veth ends down: nothing crosses until ``link_up``."""
        for h in self.hosts.values():
            self.exec(h.name, [IP, "link", "set", h.interface, "down"])

    def link_up(self) -> None:
        """Bring both ends back up (addresses and the multicast route are restored)."""
        for h in self.hosts.values():
            self.exec(h.name, [IP, "link", "set", h.interface, "up"])
            self.exec(h.name, [IP, "route", "replace", "224.0.0.0/4", "dev", h.interface])

    def limit_bandwidth(self, rate_mbit_s: float) -> None:
        """A token-bucket limit of ``rate_mbit_s`` [Mbit/s] on both ends' egress (``tc qdisc replace … tbf``)."""
        if not rate_mbit_s > 0:
            raise ValueError(f"rate_mbit_s must be > 0, got {rate_mbit_s}")
        for h in self.hosts.values():
            self.exec(h.name, [TC, "qdisc", "replace", "dev", h.interface, "root", "tbf", "rate",
                               f"{rate_mbit_s}mbit", "burst", str(TBF_BURST_BYTES), "latency", f"{TBF_LATENCY_MS}ms"])  # fmt: skip

    def interface_bytes(self, host: str) -> tuple[int, int]:
        """(received, sent) bytes counted on ``host``'s veth end so far."""
        base = f"/sys/class/net/{self.hosts[host].interface}/statistics/"
        out = self.exec(host, ["cat", base + "rx_bytes", base + "tx_bytes"]).stdout.split()
        return int(out[0]), int(out[1])


def stop_process(proc: subprocess.Popen, timeouts_s: Sequence[float] = STOP_TIMEOUTS_S) -> int | None:
    """SIGINT, then SIGTERM, then SIGKILL, each followed by its timeout [s]; the return code."""
    for sig, timeout in zip((signal.SIGINT, signal.SIGTERM, signal.SIGKILL), timeouts_s, strict=True):
        if proc.poll() is not None:
            break
        try:
            proc.send_signal(sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            continue
    return proc.poll()


def wait_until(predicate, timeout_s: float, *, poll_s: float = 0.2) -> bool:
    """Poll ``predicate()`` until it is true or ``timeout_s`` [s] passed; its last value as a bool."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(poll_s)
    return bool(predicate())


_COUNTER = [0]


def _next_id() -> int:
    _COUNTER[0] += 1
    return _COUNTER[0]
