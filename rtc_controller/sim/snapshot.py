"""The twin's world snapshot in shared memory: written by the ``mujoco`` driver (in the servo process), read by the
twin process (cameras, task status) and by the twin policies (privileged state), all on one machine.

Layout: a JSON header (scene + task configs and the task instance, written once: the text first, its length
last, so a reader that attaches meanwhile waits instead of parsing half a header), then a seqlock-protected block
of float64 values (single writer; a reader retries while the sequence is odd or changed, as in
``control/servo_process``):
  [seq, t_mono_s, t_episode_s, fault, qpos(nq), qvel(nv), mocap_pos(nmocap·3), eq_active(neq),
   item_pos(n·3), item_speed(n), held(n), cmd_pos(n·3), cmd_width(n), cmd_vel(n·3)]
t_mono_s is ``time.monotonic()`` when the world was at ``t_episode_s``; the executor clock is
``time.monotonic() + (time.time() − time.monotonic())``, which every process computes alike.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass
from multiprocessing import resource_tracker
from multiprocessing.shared_memory import SharedMemory

import numpy as np

from rtc_controller.sim.scene import SceneConfig
from rtc_controller.sim.task import TaskConfig, TaskInstance
from rtc_controller.sim.twin_config import with_tuples

HEADER_BYTES = 16384
RETRIES = 1000
N_ARMS = 2
_CREATED: set[str] = set()  # segments this process created (their reader must leave the tracker alone)


def default_name() -> str:
    """Per DDS domain, so parallel rigs (and test runs) on one machine never share a world."""
    return f"rtc_twin_{os.environ.get('ROS_DOMAIN_ID', '0')}"


def world_header(scene: SceneConfig, task: TaskConfig, instance: TaskInstance) -> dict:
    """What a reader needs to rebuild the episode (JSON): the scene and task configs and the task instance."""
    return {"scene": dataclasses.asdict(scene), "task": dataclasses.asdict(task),
            "instance": {"seed": instance.seed, "item_start_m": instance.item_start_m,
                         "conveyor_phase_m": instance.conveyor_phase_m}}  # fmt: skip


def world_from_header(header: dict) -> tuple[SceneConfig, TaskConfig, TaskInstance]:
    """The inverse of :func:`world_header`."""
    inst = header["instance"]
    instance = TaskInstance(inst["seed"], tuple(tuple(p) for p in inst["item_start_m"]), inst["conveyor_phase_m"])
    return SceneConfig(**with_tuples(header["scene"])), TaskConfig(**with_tuples(header["task"])), instance


@dataclass(frozen=True)
class Sizes:
    nq: int
    nv: int
    nmocap: int
    neq: int

    @property
    def count(self) -> int:
        n = N_ARMS
        return 4 + self.nq + self.nv + 3 * self.nmocap + self.neq + 3 * n + n + n + 3 * n + n + 3 * n


@dataclass
class WorldSample:
    """One consistent reading of the snapshot."""

    t_mono_s: float
    t_episode_s: float
    fault: bool
    qpos: np.ndarray
    qvel: np.ndarray
    mocap_pos: np.ndarray
    eq_active: np.ndarray
    item_pos: np.ndarray
    item_speed: np.ndarray
    held: np.ndarray
    cmd_pos: np.ndarray
    cmd_width: np.ndarray
    cmd_vel: np.ndarray


def _split(vals: np.ndarray, s: Sizes) -> WorldSample:
    n = N_ARMS
    o = 4
    parts = []
    for size in (s.nq, s.nv, 3 * s.nmocap, s.neq, 3 * n, n, n, 3 * n, n, 3 * n):
        parts.append(vals[o : o + size].copy())
        o += size
    qpos, qvel, mocap, eq, ip, isp, held, cp, cw, cv = parts
    return WorldSample(float(vals[1]), float(vals[2]), bool(vals[3]), qpos, qvel, mocap.reshape(-1, 3), eq,
                       ip.reshape(n, 3), isp, held.astype(int), cp.reshape(n, 3), cw, cv.reshape(n, 3))  # fmt: skip


class SnapshotWriter:
    """Creates (or replaces) the segment ``name`` and writes samples of a ``TwinWorld``."""

    def __init__(self, name: str, world, header: dict) -> None:
        m = world.model
        self.sizes = Sizes(m.nq, m.nv, m.nmocap, m.neq)
        size = HEADER_BYTES + 8 * self.sizes.count
        try:
            old = SharedMemory(name=name)
            old.close()
            old.unlink()
        except FileNotFoundError:
            pass
        self.shm = SharedMemory(name=name, create=True, size=size)
        _CREATED.add(name)
        text = json.dumps({**header, "sizes": vars(self.sizes)}).encode()
        if len(text) + 8 > HEADER_BYTES:
            raise ValueError("snapshot header too large")
        self.shm.buf[8 : 8 + len(text)] = text
        self.shm.buf[:8] = np.int64(len(text)).tobytes()  # last: a reader sees the length only of a whole header
        self.vals = np.ndarray((self.sizes.count,), np.float64, buffer=self.shm.buf, offset=HEADER_BYTES)
        self.vals[:] = 0.0
        self._seq = 0
        self._scratch = np.zeros(self.sizes.count)

    def write(self, world, t_mono_s: float) -> None:
        d, c = world.data, world.controller
        v = self._scratch
        v[1], v[2], v[3] = t_mono_s, world.time_s, float(bool(world.fault))
        parts = (d.qpos, d.qvel, d.mocap_pos.ravel(), d.eq_active, world.item_positions().ravel(),
                 world.item_speeds(), world.held(), c.target_pos.ravel(), c.target_width,
                 world.command_velocities().ravel())  # fmt: skip
        o = 4
        for p in parts:
            v[o : o + len(p)] = p
            o += len(p)
        seq = self._seq + 1
        self.vals[0] = seq  # odd: writing
        self.vals[1:] = v[1:]
        self._seq = seq + 1
        self.vals[0] = seq + 1

    def close(self) -> None:
        self.vals = None  # type: ignore[assignment]
        self.shm.close()
        try:
            self.shm.unlink()
        except FileNotFoundError:
            pass


class SnapshotReader:
    """Attaches to segment ``name`` (``wait_s``: how long to wait for the writer to create it)."""

    def __init__(self, name: str | None = None, *, wait_s: float = 0.0) -> None:
        name = name or default_name()
        end = time.monotonic() + wait_s
        while True:
            try:
                self.shm = SharedMemory(name=name)
                break
            except FileNotFoundError:
                if time.monotonic() >= end:
                    raise FileNotFoundError(f"no twin world snapshot {name!r}: is an executor with driver: mujoco running?")
                time.sleep(0.1)
        if name not in _CREATED:  # a reader must not unlink the writer's segment at exit (Python < 3.13 tracks it)
            try:
                resource_tracker.unregister(self.shm._name, "shared_memory")  # type: ignore[attr-defined]
            except Exception:  # noqa: BLE001 — best effort
                pass
        n = self._header_length(name, end)
        self.header = json.loads(bytes(self.shm.buf[8 : 8 + n]).decode())
        self.sizes = Sizes(**self.header["sizes"])
        self.vals = np.ndarray((self.sizes.count,), np.float64, buffer=self.shm.buf, offset=HEADER_BYTES)

    def _header_length(self, name: str, end: float) -> int:
        """The header's length once the writer has written it whole (it writes the length last)."""
        while (n := int(np.frombuffer(self.shm.buf[:8], np.int64)[0])) == 0:
            if time.monotonic() >= end:
                self.shm.close()
                raise FileNotFoundError(f"twin world snapshot {name!r} has no header: its writer did not finish")
            time.sleep(0.01)
        return n

    def world(self) -> tuple[SceneConfig, TaskConfig, TaskInstance]:
        """The episode this snapshot shows: (scene, task, instance)."""
        return world_from_header(self.header)

    def read(self) -> WorldSample | None:
        """The latest consistent sample (None before the first write)."""
        for _ in range(RETRIES):
            s0 = self.vals[0]
            if int(s0) % 2:
                continue
            vals = self.vals.copy()
            if self.vals[0] == s0 and int(vals[0]) % 2 == 0:
                return None if s0 == 0 else _split(vals, self.sizes)
        return None

    def close(self) -> None:
        self.vals = None  # type: ignore[assignment]
        self.shm.close()
