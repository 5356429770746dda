"""Shared setup of the executor and driver tests (not collected): a small executor config with the simulated arms,
a wait that polls instead of sleeping, and a clock the test advances."""

from rtc_controller.action_space import action_names
from rtc_controller.control.delay_estimator import DelayEstimatorConfig
from rtc_controller.control.executor import ExecutorConfig
from rtc_controller.control.loop import LoopConfig
from rtc_controller.control.safety import SafetyConfig
from rtc_controller.control.timeline import TimelineConfig
from rtc_controller.robots.sim import SimConfig

NAMES = action_names()
DT = 0.02  # action step [s]
H = 50  # longest chunk [steps]
QUIET = SimConfig(noise_pos_m=0, noise_rot_rad=0, noise_gripper_m=0)  # noise-free sim arms


def config(**kw) -> ExecutorConfig:
    """Executor config: H = 50, s = 25, δ estimate from the first sample, 1 kHz loop."""
    return ExecutorConfig(
        timeline=TimelineConfig(names=NAMES, action_rate_hz=1 / DT, max_horizon=H),
        delay=DelayEstimatorConfig(dt_s=DT, horizon=H, execution_horizon=25, warmup_samples=0, min_samples=1),
        safety=SafetyConfig(servo_dt_s=0.001),
        loop=LoopConfig(rate_hz=1000, spin_s=0.0001),
        **kw,
    )


def wait_until(condition, timeout_s: float = 10.0, poll_s: float = 0.01) -> bool:
    """Poll ``condition`` until it holds or ``timeout_s`` passes (a loaded machine delays the servo loop's ticks:
    tests wait for what they check instead of sleeping a fixed time)."""
    import time

    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(poll_s)
    return bool(condition())


class FakeClock:
    """A driver clock the test advances by hand (``clock.t += dt``) [s]."""

    def __init__(self, t0_s: float = 100.0) -> None:
        self.t = t0_s

    def __call__(self) -> float:
        return self.t
