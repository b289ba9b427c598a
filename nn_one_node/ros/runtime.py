"""How the package's executables start, spin and stop.

* Executor: rclpy's ``EventsExecutor`` (rclpy.experimental, Jazzy and later) where it exists, since
  it costs about a third of the CPU per message of the ``SingleThreadedExecutor``; the
  ``SingleThreadedExecutor`` on older distros (Humble). The ``executor`` parameter overrides it.
* The Jazzy EventsExecutor's ``spin()`` (and ``spin_until_future_complete`` without a timeout)
  busy-loops without dispatching and ignores SIGTERM, so every executor is spun by
  ``spin_once(timeout_sec=...)`` in a loop until shutdown (which also lets the loop see a stop
  that ``StopSignals`` caught). Not by ``spin_until_future_complete(..., timeout_sec=...)``:
  that keeps about 32 bytes per call, some 27 MB a day at ten calls a second
  (test_runtime_memory.py).
* Ctrl-C and SIGTERM stop the node; ``main`` then returns 0. A configuration error found at
  start (a bad parameter value) is logged without a traceback and returns 2.
* Signals are this module's, not rclpy's (``StopSignals``): a signal only asks for the stop, and
  the spin loop carries it out between callbacks, on the main thread. rclpy's own handler shuts
  the context down from a thread of its own, at any moment: a SIGTERM that landed while the node
  was built could take the context down while the EventsExecutor was registering the node's
  entities. rclpy (7.1) then leaves callbacks registered that it no longer tracks, and aborts the
  process at exit ("Destroying callback manager with callbacks remaining", exit -6; found in
  CI, test_stopping_order.py makes it deterministic). Once spinning, the EventsExecutor takes
  SIGINT and SIGTERM itself and shuts the context down between callbacks, which is as safe.
* At exit the node leaves the executor, and the executor is shut down, before the node is
  destroyed (the order rclpy's executors need).
* ``--managed`` before ``--ros-args`` runs the node class as a lifecycle node (see lifecycle.py);
  it is then spun until the context shuts down or its shutdown transition ran (exit 0 too).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import rclpy
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from nn_one_node.ros.lifecycle import MANAGED_FLAG, SteppedNode, managed_class, split_managed_flag
from nn_one_node.parameters import ParamSpec, one_of
from nn_one_node.learning.screening import Refusals

EXECUTORS = ('auto', 'events', 'single_threaded')
# How often the events-executor loop looks up from waiting to check for shutdown.
_SHUTDOWN_POLL_SEC = 0.1
# How long a managed node goes on spinning after its shutdown transition (see linger).
_LINGER_SEC = 0.2
# How long the executor may take to stop at exit.
_EXECUTOR_SHUTDOWN_SEC = 5.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """SIGINT and SIGTERM ask for a stop; nothing else happens in the handler.

    A context manager: ``with StopSignals() as stop:`` installs the handlers, ``stop.requested``
    then holds the first signal that came (or None), and leaving restores the handlers that were
    there before. Main thread only (Python's rule for signal handlers).
    """

    def __init__(self) -> None:
        self.requested: Optional[int] = None
        self._previous: Dict[int, object] = {}

    def _handle(self, signum, _frame) -> None:
        if self.requested is None:
            self.requested = signum

    def __enter__(self) -> 'StopSignals':
        for sig in STOP_SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def arm(self) -> None:
        """Install the handlers again (after something else, e.g. an executor, replaced them)."""
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._handle)

    def __exit__(self, *_exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


def executor_param() -> ParamSpec:
    return ParamSpec(
        'executor', 'auto',
        "Executor that spins the node: 'events' (rclpy.experimental.EventsExecutor, lowest CPU), "
        "'single_threaded', or 'auto' (events where rclpy has it, else single_threaded). "
        'Read at start.',
        read_only=True, constraints="'auto' | 'events' | 'single_threaded'",
        check=one_of(*EXECUTORS))


def lower_priority(niceness: int) -> int:
    """Raise the scheduling niceness of this process to at least ``niceness``; return the
    niceness it then runs at.

    On Linux niceness belongs to each thread, and a new thread inherits its creator's: so every
    thread that exists now (the middleware's included) is set one by one, and threads started
    later follow the main thread. Elsewhere the process is set. Niceness is only ever raised
    (lowering it needs privileges): a process started at a higher niceness keeps it.
    """
    if not hasattr(os, 'setpriority'):
        return 0
    try:
        tids = [int(t) for t in os.listdir('/proc/self/task')]
    except OSError:
        tids = [0]  # not Linux: PRIO_PROCESS 0 is the whole process
    for tid in tids:
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < niceness:
                os.setpriority(os.PRIO_PROCESS, tid, niceness)
        except (ProcessLookupError, PermissionError):
            continue  # the thread ended meanwhile, or a sandbox forbids it: leave it
    return os.getpriority(os.PRIO_PROCESS, 0)


def events_executor_class():
    try:
        from rclpy.experimental import EventsExecutor
    except ImportError:
        return None
    return EventsExecutor


def make_executor(choice: str, context):
    """Return (executor, name) for 'auto' | 'events' | 'single_threaded'."""
    events = events_executor_class()
    if choice == 'events' and events is None:
        raise ValueError("executor 'events' asked for, but this rclpy has no EventsExecutor")
    if choice in ('auto', 'events') and events is not None:
        return events(context=context), 'events'
    return SingleThreadedExecutor(context=context), 'single_threaded'


def spin(executor, context, until: Optional[Callable[[], bool]] = None,
         stop: Optional[StopSignals] = None) -> None:
    """Spin until the context shuts down (a signal, rclpy.shutdown), ``until()``, or a signal
    that ``stop`` caught. Always in short ``spin_once`` steps, so that a caught signal is seen
    within ``_SHUTDOWN_POLL_SEC`` on every executor (the same loop for each: see the module)."""
    while context.ok() and not (stop is not None and stop.requested is not None):
        if until is not None and until():
            return
        executor.spin_once(timeout_sec=_SHUTDOWN_POLL_SEC)


def linger(executor, context, seconds: float = _LINGER_SEC) -> None:
    """Spin a little longer after a shutdown transition: its reply has been handed to the
    middleware, not yet delivered, and a node destroyed at once may take it along."""
    deadline = time.monotonic() + seconds
    while context.ok() and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=max(0.0, min(_SHUTDOWN_POLL_SEC,
                                                    deadline - time.monotonic())))


class RefusalLog(Refusals):
    """Counts refusals by kind and logs a warning per kind at most once per ``period`` seconds.

    Throttling per kind (not per call site, as ``throttle_duration_sec`` does) means a new kind of
    problem is always reported at once, while a flood of one kind costs one line per period.
    """

    def __init__(self, logger, what: str, period: float = 5.0) -> None:
        self._logger = logger
        self._what = what
        self._period = period
        self._last_logged: Dict[str, float] = {}
        super().__init__()

    def refuse(self, kind: str, reason: str, count: int = 1) -> None:
        super().refuse(kind, reason, count)
        now = time.monotonic()
        if now - self._last_logged.get(kind, -1e18) >= self._period:
            self._last_logged[kind] = now
            self._logger.warning(
                f'{self._what} refused ({kind}; {self.by_kind[kind]} of this kind, '
                f'{self.total} in all): {reason}')


def run(node_factory: Callable[[], Node], args: Optional[List[str]] = None) -> int:
    """init, build the node, spin it on the chosen executor, clean up; return an exit code.

    With ``--managed`` before ``--ros-args`` in ``args`` (default: sys.argv) the node class, a
    ``lifecycle.SteppedNode``, is built as a lifecycle node; for any other class that is exit 2.
    """
    argv = list(sys.argv if args is None else args)
    problem = arguments_problem(argv)
    if problem:
        rclpy.logging.get_logger('nn_one_node').error(f'cannot start: {problem}')
        return 2
    managed, args = split_managed_flag(argv)
    with StopSignals() as stop:
        try:
            rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
        except RuntimeError as err:  # rcl refusing the ROS arguments (RCLError and its kinds)
            what = str(err).splitlines()[0]
            if type(err).__name__ == 'UnknownROSArgsError':
                what = (f'unknown ROS arguments {what} (options of the node go before '
                        '--ros-args)')
            rclpy.logging.get_logger('nn_one_node').error(f'cannot start: bad ROS arguments: '
                                                          f'{what}')
            return 2
        try:
            return _build_and_spin(node_factory, managed, stop)
        finally:
            rclpy.try_shutdown()


def arguments_problem(argv: List[str]) -> str:
    """What is wrong with a node's command line before rcl reads it ('' if nothing we know):
    ``--managed`` among the ROS arguments, a params file that is not there.

    >>> print(arguments_problem(['predictor', '--ros-args', '-p', 'x:=2', '--managed'])[56:])
    put it before --ros-args (predictor --managed --ros-args ...)
    >>> arguments_problem(['trainer', '--ros-args', '--params-file', '/no/such.yaml'])
    'params file /no/such.yaml: no such file'
    """
    if '--ros-args' in argv:
        start = argv.index('--ros-args')
        ros_args = argv[start + 1:]
        if MANAGED_FLAG in ros_args:
            name = Path(argv[0]).name if argv else 'node'
            return (f'{MANAGED_FLAG} is an option of the node, not a ROS argument: put it '
                    f'before --ros-args ({name} {MANAGED_FLAG} --ros-args ...)')
        for option, value in zip(ros_args, ros_args[1:]):
            if option == '--params-file' and not Path(value).is_file():
                return f'params file {value}: ' + ('a directory, not a file' if Path(
                    value).is_dir() else 'no such file')
    return ''


def _build_and_spin(node_factory, managed: bool, stop: StopSignals) -> int:
    context = rclpy.get_default_context()
    node = executor = None
    try:
        try:
            if managed:
                if not (isinstance(node_factory, type) and issubclass(node_factory, SteppedNode)):
                    name = getattr(node_factory, '__name__', repr(node_factory))
                    raise ValueError(f'{name} has no managed (lifecycle) mode: drop --managed')
                node_factory = managed_class(node_factory)
            node = node_factory()
        except (ParameterException, ValueError) as err:  # bad start-up configuration
            rclpy.logging.get_logger('nn_one_node').error(f'cannot start: {err}')
            return 2
        except RuntimeError as err:
            # rcl refusing what the configuration asks for while the node is built, e.g. a QoS
            # override 'reliability: bogus' (rclpy raises RuntimeError) or 'depth: -1' (RCLError)
            rclpy.logging.get_logger('nn_one_node').error(
                f'cannot start: {type(err).__name__}: {err}')
            return 2
        if stop.requested is not None:
            return 0  # stopped while it was being built: never spun
        executor, name = make_executor(node.get_parameter('executor').value, context)
        node.get_logger().debug(f'spinning on the {name} executor')
        executor.add_node(node)
        if managed:
            spin(executor, context, until=lambda: node.finished, stop=stop)
            linger(executor, context)
        else:
            spin(executor, context, stop=stop)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RuntimeError:
        # A shutdown the executor carried out (it takes SIGINT and SIGTERM itself while it
        # spins) can leave a callback that then touches rcl (a publish, service_is_ready)
        # raising RCLError or InvalidHandle, both RuntimeErrors. That is the stop asked for.
        if context.ok():
            raise
    finally:
        if node is not None:
            on_exit = getattr(node, 'on_exit', None)
            if on_exit is not None:
                on_exit()
            if executor is not None:
                executor.remove_node(node)
                executor.shutdown(timeout_sec=_EXECUTOR_SHUTDOWN_SEC)
            node.destroy_node()
        if executor is not None:
            # A destroyed EventsExecutor leaves SIGINT and SIGTERM at their defaults: a second
            # signal (ros2 launch follows SIGINT with SIGTERM) must not kill the exit midway.
            executor = None
            stop.arm()
    return 0
