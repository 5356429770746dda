"""The one ``main`` of every rclpy process of the rig: spin until a shutdown request, then shut down cleanly.

:func:`run_node` installs :class:`rtc_controller.shutdown.ShutdownSignals` *before* ``rclpy.init`` (which is told
to install no signal handlers of its own), builds the node, spins it until SIGINT/SIGTERM/SIGHUP or the parent's
exit, then runs the node's cleanup (the executor's ramp-down, the recorder's bag close), destroys the node and
shuts rclpy down. More signals during that are counted and ignored, so every path ends the same way: exit 0.

A node factory stops the start with :class:`NodeExit` (exit code + one line on stderr), e.g. 2 for refused
parameters. A later process adopts the same path with one call, as ``twin_node`` does::

    def main(args=None) -> int:
        return run_node(lambda signals: TwinNode(), name=topics.TWIN_NODE, args=args, cleanup=TwinNode.shutdown)
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

import rclpy
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from rtc_controller.config_check import ConfigError, load_yaml
from rtc_controller.param_files import params_files
from rtc_controller.shutdown import ShutdownSignals

SPIN_PERIOD_S = 0.1  # a signal is noticed within this (the Python handler runs when rcl_wait returns) [s]
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2

N = TypeVar("N", bound=Node)


class NodeExit(Exception):
    """Raised by a node factory to end the process with ``code`` and ``message`` (printed, one line)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def run_node(
    make_node: Callable[[ShutdownSignals], N],
    *,
    name: str,
    args: list[str] | None = None,
    cleanup: Callable[[N], None] | None = None,
    exit_code: Callable[[N], int] | None = None,
    make_executor: Callable[[], Executor] = SingleThreadedExecutor,
) -> int:
    """Build the node with ``make_node(signals)``, spin it until shutdown is requested, then ``cleanup(node)``,
    ``destroy_node``, ``rclpy.try_shutdown``. Returns the exit status: ``exit_code(node)`` (default 0),
    ``NodeExit.code`` for a refused start, 1 when spinning or cleanup raised."""
    argv = sys.argv if args is None else args
    try:  # rcl would refuse a broken params file with a multi-line traceback: say it in one line first
        for path in params_files(argv):
            load_yaml(path)
    except ConfigError as exc:
        print(f"{name}: {exc}", file=sys.stderr, flush=True)
        return EXIT_BAD_INPUT
    signals = ShutdownSignals.for_process(name)
    if signals.requested.is_set():  # a signal during the imports (rtc_controller.ros.entry installed the handlers)
        print(f"{name}: stopped before start ({signals.reason})", file=sys.stderr, flush=True)
        signals.finish()
        return EXIT_OK
    try:
        rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    except Exception as exc:  # noqa: BLE001 — e.g. a malformed --ros-args
        print(f"{name}: cannot start ROS: {type(exc).__name__}: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_BAD_INPUT
    node: N | None = None
    code = EXIT_OK
    executor: Executor | None = None
    try:
        node = make_node(signals)
        executor = make_executor()
        executor.add_node(node)
        while not signals.requested.is_set() and rclpy.ok():
            executor.spin_once(timeout_sec=SPIN_PERIOD_S)
    except ExternalShutdownException:
        pass
    except NodeExit as exc:
        print(f"{name}: {exc}", file=sys.stderr, flush=True)
        code = exc.code
    except Exception as exc:  # noqa: BLE001 — a crash in a callback: clean up, say why, exit non-zero
        print(f"{name}: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        code = EXIT_FAILED
    finally:
        code = _close(node, executor, cleanup, name, code)
        signals.finish()
    if node is not None and exit_code is not None and code == EXIT_OK:
        code = exit_code(node)
    return code


def _close(node: N | None, executor: Executor | None, cleanup: Callable[[N], None] | None, name: str, code: int) -> int:
    """Cleanup, destroy, shut down: each step runs even when an earlier one failed (the status says so)."""
    if node is not None and cleanup is not None:
        try:
            cleanup(node)
        except Exception as exc:  # noqa: BLE001
            print(f"{name}: cleanup failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            code = code or EXIT_FAILED
    if executor is not None:
        executor.shutdown(timeout_sec=1.0)
    if node is not None:
        node.destroy_node()
    rclpy.try_shutdown()
    return code
