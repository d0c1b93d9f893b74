"""Running a node executable: ``--help``, rclpy start-up, signals, spinning, a clean exit.

One implementation for every executable of the package (``perception_node``,
``click_labeler``, ``bag_player``, ``ws3d node``). Contract:

- :func:`parse_args` parses the executable's own options from ``argv`` with the ROS
  arguments (``--ros-args ...``) removed, so ``--help`` prints help and exits 0 before
  rclpy starts; the ROS arguments are passed to :func:`rclpy.init` unchanged.
- :class:`ShutdownSignals` replaces rclpy's signal handlers: the first SIGINT or SIGTERM
  asks the executable to stop (``requested`` is set; spinning ends within
  ``POLL_S``); a second one at least ``REPEAT_S`` later exits at once with code 0
  (``os._exit``), abandoning work in flight. Signals closer to the first are the same
  Ctrl-C seen twice (a terminal signals the whole process group and ``ros2 launch``
  forwards it again) and are ignored. Neither prints a traceback.
- :func:`spin_node` builds the node, spins it on a multi-threaded executor until a
  signal, the context shuts down, or ``node.done()`` (when the node has it) turns true,
  then closes it: ``node.close(grace_s)`` when the node has it (it returns False when work
  was abandoned), then ``destroy_node`` and ``rclpy.try_shutdown``. When work was
  abandoned the process leaves with ``os._exit`` so no interpreter finaliser runs while a
  native library still holds a thread (``terminate called without an active exception``).
- Errors at start-up print one line ``PROG: error: ...`` and return 1; the traceback is
  logged only with ``WS3D_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.signals import SignalHandlerOptions
from rclpy.utilities import remove_ros_args

from ws3d_ros.errors import Ws3dError

__all__ = [
    "GRACE_S",
    "POLL_S",
    "REPEAT_S",
    "ShutdownSignals",
    "parse_args",
    "spin_node",
    "startup_error",
]

#: Seconds the executor waits per turn: the longest a signal waits to be noticed.
POLL_S = 0.1
#: Seconds a closing node may wait for work in flight (launch sends SIGTERM after 5 s).
GRACE_S = 2.0
#: Seconds after the first signal during which another one is the same Ctrl-C.
REPEAT_S = 1.0
DEBUG_ENV = "WS3D_DEBUG"


def parse_args(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None
) -> tuple[argparse.Namespace, list[str]]:
    """(the executable's options, the full argument list for rclpy).

    ``argv`` includes the program name (as ``sys.argv``); ``None`` means ``sys.argv``.
    """
    full = list(sys.argv if argv is None else argv)
    own = remove_ros_args(args=full)[1:]
    return parser.parse_args(own), full


def startup_error(prog: str, exc: BaseException) -> int:
    """Print the one-line start-up error of ``prog`` and return exit code 1."""
    if isinstance(exc, Ws3dError):
        text = str(exc)
    else:
        text = f"{type(exc).__name__}: {exc}"
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    print(f"{prog}: error: {first}", file=sys.stderr, flush=True)
    if os.environ.get(DEBUG_ENV) == "1":
        traceback.print_exception(exc, file=sys.stderr)
    return 1


class ShutdownSignals:
    """SIGINT / SIGTERM handling of one executable (see the module docstring)."""

    def __init__(self, prog: str, *, on_first: Callable[[], None] | None = None) -> None:
        self.prog = prog
        self.requested = threading.Event()
        self.received = 0
        self._first_at: float | None = None
        self._on_first = on_first
        self._previous: dict[int, Any] = {}

    def install(self) -> ShutdownSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.received += 1
        name = signal.Signals(signum).name
        now = time.monotonic()
        if self._first_at is not None and now - self._first_at < REPEAT_S:
            return  # the same Ctrl-C delivered twice (process group + launch)
        if self._first_at is None:
            self._first_at = now
            print(f"[{self.prog}] {name}: shutting down", file=sys.stderr, flush=True)
            self.requested.set()
            if self._on_first is not None:
                self._on_first()
            return
        print(f"[{self.prog}] second {name}: exiting now", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(0)


def spin_node(
    prog: str,
    make_node: Callable[[], Any],
    ros_args: Sequence[str],
    *,
    threads: int = 2,
    grace_s: float = GRACE_S,
) -> int:
    """Init rclpy, build the node, spin until asked to stop, close cleanly (module docs)."""
    signals = ShutdownSignals(prog).install()
    try:
        rclpy.init(args=list(ros_args), signal_handler_options=SignalHandlerOptions.NO)
    except Exception as exc:  # bad --ros-args: rcl says why
        signals.restore()
        return startup_error(prog, exc)
    node = None
    executor = None
    abandoned = False
    code = 0
    try:
        try:
            node = make_node()
        except Exception as exc:
            code = startup_error(prog, exc)
            return code
        executor = MultiThreadedExecutor(num_threads=threads)
        executor.add_node(node)
        done = getattr(node, "done", lambda: False)
        while not signals.requested.is_set() and rclpy.ok() and not done():
            try:
                executor.spin_once(timeout_sec=POLL_S)
            except ExternalShutdownException:
                break
    finally:
        if node is not None:
            close = getattr(node, "close", None)
            if close is not None:
                abandoned = not close(grace_s)
            if executor is not None:
                executor.shutdown(timeout_sec=grace_s)
            node.destroy_node()
        rclpy.try_shutdown()
        signals.restore()
        if abandoned:
            print(f"[{prog}] abandoned the frame in flight", file=sys.stderr, flush=True)
            sys.stdout.flush()
            os._exit(code)
    return code
