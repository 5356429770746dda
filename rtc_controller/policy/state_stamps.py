"""Robot-state stamps the inference node can trust (ROS-free).

The inference node takes t_obs from the robot state's stamp (the executor's clock) and samples the next chunk once
that stamp is s·Δt past the previous t_obs. One state stamped an hour ahead therefore stalled it for as long as
the stamps took to catch up (> 40 s in the adversarial run) while it reported OK.

:class:`StampGuard` compares each stamp with its local receive time: ``offset = stamp − received``. The first
message fixes the expected offset (the two clocks' difference plus transport); a message whose offset differs by
more than ``tolerance_s`` is an anomaly: not used, counted, reported. ``rebase_after`` anomalies in a row that agree
with each other are a real clock change (the executor restarted, its clock was stepped): the guard takes the new
offset and says so (the node then forgets its previous t_obs). Stamps that do not increase are dropped too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DEFAULT_TOLERANCE_S = 1.0  # transport and scheduling jitter stay far below; clock trouble far above [s]
DEFAULT_REBASE_AFTER = 25  # 0.5 s of consistent robot states at 50 Hz


@dataclass
class StampGuard:
    tolerance_s: float = DEFAULT_TOLERANCE_S
    rebase_after: int = DEFAULT_REBASE_AFTER
    offset_s: float = math.nan
    last_stamp_s: float = -math.inf
    anomalies: int = 0
    rebases: int = 0
    last_anomaly: str = ""
    _candidate_s: float = math.nan
    _run: int = 0

    def check(self, stamp_s: float, received_s: float) -> str:
        """"ok", "anomaly" (do not use this message) or "rebased" (use it; the time base changed)."""
        offset = stamp_s - received_s
        if not math.isfinite(offset):
            return self._anomaly(f"non-finite stamp {stamp_s}")
        if math.isnan(self.offset_s):
            self.offset_s, self.last_stamp_s = offset, stamp_s
            return "ok"
        if abs(offset - self.offset_s) > self.tolerance_s:
            if self._run and abs(offset - self._candidate_s) <= self.tolerance_s:
                self._run += 1
            else:
                self._candidate_s, self._run = offset, 1
            if self._run >= self.rebase_after:
                self.offset_s, self.last_stamp_s, self._run = offset, stamp_s, 0
                self.rebases += 1
                return "rebased"
            return self._anomaly(f"stamp {offset - self.offset_s:+.3f} s off the executor's clock")
        self._run = 0
        if stamp_s <= self.last_stamp_s:
            return self._anomaly(f"stamp {stamp_s - self.last_stamp_s:+.6f} s: not after the previous one")
        self.last_stamp_s = stamp_s
        return "ok"

    def _anomaly(self, why: str) -> str:
        self.anomalies += 1
        self.last_anomaly = why
        return "anomaly"
