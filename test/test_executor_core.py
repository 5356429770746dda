"""Both executor cores (in-process ``Executor``, ``ServoProcess``) are one ``ExecutorCore``; the node only
uses the protocol (no isinstance on the core)."""

import functools
import typing
from pathlib import Path

from executor_setup import QUIET, config
from rtc_controller.control.executor import Executor
from rtc_controller.control.executor_core import ExecutorCore
from rtc_controller.control.servo_process import ServoProcess
from rtc_controller.robots.sim import SimDriver

ROS = Path(__file__).resolve().parents[1] / "rtc_controller" / "ros"


def _members() -> set[str]:
    return {n for n in dir(ExecutorCore) if not n.startswith("_")} | set(typing.get_type_hints(ExecutorCore))


def _has(core: object, name: str) -> bool:
    return name in type(core).__dict__ or any(name in vars(k) for k in type(core).__mro__) or name in vars(core)


def test_both_cores_provide_every_member_of_the_protocol():
    cores = (Executor(config(), SimDriver(QUIET)), ServoProcess(config(), functools.partial(SimDriver, QUIET)))
    for core in cores:
        missing = sorted(n for n in _members() if not _has(core, n))
        assert not missing, f"{type(core).__name__} lacks {missing}"


def test_where_they_differ_is_a_member_not_a_type_check():
    ex = Executor(config(), SimDriver(QUIET))
    sp = ServoProcess(config(), functools.partial(SimDriver, QUIET))
    assert ex.location == "thread" and sp.location.startswith("process ")
    assert ex.exitcode is None and sp.exitcode is None  # not started
    assert sp.needs_shutdown, "a servo process is always reaped"
    sp.shutdown()
    assert not sp.needs_shutdown
    assert sp.lift_other_threads(40) == [], "the child lifts its own threads"
    for path in ("executor_node.py", "executor_services.py"):
        text = (ROS / path).read_text()
        assert "isinstance(ex, " not in text and "ServoProcess)" not in text, path
