"""Inference delay estimation: measured δ [s] -> d [action steps] for the next inference.

d = ceil(q-quantile of the last ``window`` δ samples / dt), clamped to [0, H − s] (RTC needs d ≤ s and the
prefix weights need d ≤ H − s). The first ``warmup_samples`` δ after start are excluded: they include jit
compilation and cache warm-up and would otherwise inflate d for a long time (a running maximum is exactly the
failure this avoids). A quantile rather than the maximum means one outlier inside the window cannot dominate.
Before enough samples arrive, d = ``initial_d`` (a prior; None = no estimate yet: ``has_estimate`` is False and
the executor publishes no d, so the inference node falls back to its own measured latency). ``fixed_d``
overrides everything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# δ/dt landing a hair above an integer (float noise) must not add a whole step
STEP_EPS = 1e-9


@dataclass(frozen=True)
class DelayEstimatorConfig:
    """Attributes:
    dt_s: action step [s].
    horizon: H [steps]. execution_horizon: s [steps]; d is clamped to [0, H − s].
    quantile: in (0, 1], e.g. 0.9.
    window: number of recent δ samples considered.
    warmup_samples: δ samples discarded after start/reset.
    min_samples: samples needed before the estimate replaces ``initial_d``.
    initial_d: d before the estimate is ready [steps]; None = no prior (``has_estimate`` stays False until then).
    fixed_d: when not None, d is this value (clamped) regardless of δ.
    """

    dt_s: float
    horizon: int
    execution_horizon: int
    quantile: float = 0.9
    window: int = 50
    warmup_samples: int = 3
    min_samples: int = 3
    initial_d: int | None = None
    fixed_d: int | None = None

    def __post_init__(self) -> None:
        if not (self.dt_s > 0 and math.isfinite(self.dt_s)):
            raise ValueError(f"dt_s must be > 0, got {self.dt_s}")
        if not 0 < self.execution_horizon <= self.horizon:
            raise ValueError(f"need 0 < execution_horizon <= horizon, got s={self.execution_horizon}, H={self.horizon}")
        if not 0.0 < self.quantile <= 1.0:
            raise ValueError(f"quantile must be in (0, 1], got {self.quantile}")
        if self.window < 1 or self.warmup_samples < 0 or not 1 <= self.min_samples <= self.window:
            raise ValueError("need window >= 1, warmup_samples >= 0, 1 <= min_samples <= window")
        if (self.initial_d is not None and self.initial_d < 0) or (self.fixed_d is not None and self.fixed_d < 0):
            raise ValueError("initial_d and fixed_d must be >= 0")

    @property
    def max_d(self) -> int:
        return self.horizon - self.execution_horizon


def delay_to_steps(delay_s: float, dt_s: float) -> int:
    """d = ceil(δ/dt), ≥ 0. Example: δ = 45 ms, dt = 20 ms -> 3; δ = 40 ms -> 2."""
    return max(0, math.ceil(delay_s / dt_s - STEP_EPS))


class DelayEstimator:
    """Sliding-window quantile estimate of the inference delay (see the module docstring)."""

    def __init__(self, config: DelayEstimatorConfig) -> None:
        self.config = config
        self._buf = np.zeros(config.window)
        self._n = 0  # samples stored (≤ window)
        self._head = 0
        self._seen = 0  # samples offered since reset, warm-up included
        self.last_delay_s = math.nan
        self._d = self._prior()

    def _prior(self) -> int:
        c = self.config
        return self._clamp(c.fixed_d if c.fixed_d is not None else (c.initial_d or 0))

    def _clamp(self, d: int) -> int:
        return min(max(int(d), 0), self.config.max_d)

    def reset(self) -> None:
        """Forget all samples (a new warm-up period follows)."""
        self._n = self._head = self._seen = 0
        self._d = self._prior()

    def set_fixed_d(self, fixed_d: int | None) -> None:
        """Switch the fixed-d override on (an int) or off (None) at run time; the window is kept."""
        from dataclasses import replace

        self.config = replace(self.config, fixed_d=fixed_d)
        if fixed_d is not None:
            self._d = self._clamp(fixed_d)
        elif self._n >= self.config.min_samples:
            self._d = self._clamp(delay_to_steps(self.quantile_s(), self.config.dt_s))
        else:
            self._d = self._clamp(self.config.initial_d)

    def add(self, delay_s: float) -> int:
        """Record one measured δ [s] (non-finite or negative values are ignored); returns the new d."""
        c = self.config
        if not math.isfinite(delay_s):
            return self._d
        delay_s = max(0.0, delay_s)
        self.last_delay_s = delay_s
        self._seen += 1
        if self._seen <= c.warmup_samples:
            return self._d
        self._buf[self._head] = delay_s
        self._head = (self._head + 1) % c.window
        self._n = min(self._n + 1, c.window)
        if c.fixed_d is None and self._n >= c.min_samples:
            self._d = self._clamp(delay_to_steps(self.quantile_s(), c.dt_s))
        return self._d

    def quantile_s(self) -> float:
        """The configured quantile of δ over the window [s] (NaN when empty)."""
        if self._n == 0:
            return math.nan
        return float(np.quantile(self._buf[: self._n], self.config.quantile))

    @property
    def d(self) -> int:
        """d [action steps] for the next inference."""
        return self._d

    @property
    def has_estimate(self) -> bool:
        """True once d means something: a fixed d, enough measured samples, or a configured prior."""
        c = self.config
        return c.fixed_d is not None or self._n >= c.min_samples or c.initial_d is not None

    @property
    def num_samples(self) -> int:
        return self._n

    @property
    def warming_up(self) -> bool:
        return self._seen < self.config.warmup_samples
