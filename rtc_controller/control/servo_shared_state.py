"""The servo process's robot state in shared memory: the layout and its seqlock (ROS-free).

Every servo tick the child writes (stamp, state, mode, switch count, active t_obs) under a seqlock: a single
writer makes the sequence number odd, writes, and makes it even again; the reader retries while the sequence is
odd or changed during its read. No pickling at the state rate. x86 keeps stores and loads in program order, which
the seqlock relies on.

Layout: an int64 header ``[seq, mode code, switch count, unused]``, then float64 values
``[stamp [s, executor clock], active t_obs [s], state[ad]]`` (ad = action dim).
"""

from __future__ import annotations

import time

import numpy as np

__all__ = [
    "HDR_MODE",
    "HDR_SEQ",
    "HDR_SWITCHES",
    "MODES",
    "MODE_CODE",
    "SeqlockWriter",
    "read_consistent",
    "shm_size",
    "state_views",
]

MODES = ("idle", "running", "holding", "faulted", "stopped", "approaching")
MODE_CODE = {m: i for i, m in enumerate(MODES)}
# shared state layout: int64 header, then float64 values
HDR_SEQ, HDR_MODE, HDR_SWITCHES, HDR_LEN = 0, 1, 2, 4
VAL_STAMP, VAL_ACTIVE_T_OBS, VAL_STATE = 0, 1, 2
SEQLOCK_RETRIES = 1000


def shm_size(action_dim: int) -> int:
    """Bytes of the shared segment for ``action_dim`` state values."""
    return 8 * HDR_LEN + 8 * (VAL_STATE + action_dim)


def state_views(buf: memoryview, action_dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(header ``[HDR_LEN]`` int64, values ``[2 + ad]`` float64) viewing ``buf``."""
    hdr = np.ndarray((HDR_LEN,), dtype=np.int64, buffer=buf, offset=0)
    vals = np.ndarray((VAL_STATE + action_dim,), dtype=np.float64, buffer=buf, offset=8 * HDR_LEN)
    return hdr, vals


class SeqlockWriter:
    """The single writer (the child's servo thread): one consistent update per :meth:`write`."""

    def __init__(self, buf: memoryview, action_dim: int) -> None:
        self.hdr, self.vals = state_views(buf, action_dim)
        self._seq = 0

    def write(self, stamp_s: float, state: np.ndarray, active_t_obs_s: float, mode: str, switches: int) -> None:
        hdr, vals = self.hdr, self.vals
        seq = self._seq + 1
        hdr[HDR_SEQ] = seq  # odd: writing
        vals[VAL_STAMP] = stamp_s
        vals[VAL_STATE:] = state
        vals[VAL_ACTIVE_T_OBS] = active_t_obs_s
        hdr[HDR_MODE] = MODE_CODE[mode]
        hdr[HDR_SWITCHES] = switches
        self._seq = seq + 1
        hdr[HDR_SEQ] = seq + 1  # even: consistent

    def release(self) -> None:
        """Drop the views (before the mapping is closed)."""
        del self.hdr, self.vals


def read_consistent(hdr: np.ndarray, vals: np.ndarray) -> tuple[float, np.ndarray, int, float] | None:
    """(stamp [s], state copy ``[ad]``, mode code, active t_obs [s]) of one consistent update; None when the
    writer stayed mid-update for ``SEQLOCK_RETRIES`` reads."""
    for _ in range(SEQLOCK_RETRIES):
        s1 = int(hdr[HDR_SEQ])
        if s1 & 1:
            continue
        stamp = float(vals[VAL_STAMP])
        state = vals[VAL_STATE:].copy()
        mode = int(hdr[HDR_MODE])
        active = float(vals[VAL_ACTIVE_T_OBS])
        if int(hdr[HDR_SEQ]) == s1:
            return stamp, state, mode, active
        time.sleep(0)
    return None

