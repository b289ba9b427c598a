"""``status`` (``ros2 run nn_one_node status``): the running stack at a glance, refreshed each
second like ``top``; ``--once`` prints one table, ``--json`` the same as JSON (doc/status.md).

It reads only what any robot running the stack offers: ``/diagnostics``, the nodes' parameter
services (a trainer's model and ``predictor_node``, the predictor's model, each node's
``diagnostics_period``) and, for managed nodes, ``~/get_state``. The gathering and the rendering
are ``nn_one_node.status`` (no ROS); this module is the rclpy side and the command line.

Exit codes: 0 the stack was found and nothing WARNs; 1 no node of the stack reported on
/diagnostics within ``--timeout``; 2 a usage mistake; 3 the stack was found and something
WARNs (or ERRORs, or went STALE). Ctrl-C ends the refreshing view with 0.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import time
from typing import Any, Dict, List, Optional

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.srv import GetState
from rcl_interfaces.srv import GetParameters, ListParameters
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import NodeNameNonExistentError
from rclpy.parameter import Parameter, parameter_value_to_python
from rclpy.qos import QoSProfile
from rclpy.signals import SignalHandlerOptions
from rclpy.utilities import remove_ros_args

from nn_one_node.status.render import table, to_json
from nn_one_node.status.view import StackView, under

EXIT_OK, EXIT_NOT_FOUND, EXIT_USAGE, EXIT_PROBLEMS = 0, 1, 2, 3
# --once listens at least DISCOVERY_SEC: DDS discovers some nodes only at their next periodic
# announcement (every 3 s in Fast DDS), seconds after the first ones (seen on a loaded machine);
# and REPORT_SEC after the first status and after the last publisher matched (the nodes report
# each second).
DISCOVERY_SEC = 3.5
REPORT_SEC = 1.5
ANSWER_SEC = 2.0  # --once: how long parameter and lifecycle answers are waited for
CALL_TIMEOUT_SEC = 3.0  # a request not answered by then is dropped and asked again
MODEL = ['weights', 'bias', 'activation']
ASKED = {'trainer': MODEL + ['predictor_node'], 'predictor': MODEL}
CLEAR = '\x1b[H\x1b[2J'


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints two)
        self.exit(EXIT_USAGE, f'{self.prog}: {message} (see {self.prog} --help)\n')


def parse_args(argv: List[str]) -> argparse.Namespace:
    p = _Parser(prog='status', description=(
        "The running nn_one_node stack at a glance: lifecycle states, the assembler's inputs, "
        "the trainer's learning and model versions, every WARN with advice. Reads "
        '/diagnostics and parameters only. Exit: 0 found, all OK; 1 nothing found within '
        '--timeout; 2 usage; 3 found, something WARNs.'))
    p.add_argument('--once', action='store_true', help='print one view and exit')
    p.add_argument('--json', action='store_true',
                   help='JSON instead of the table (with --once one document, else one a line)')
    p.add_argument('--namespace', default='/', metavar='NS',
                   help="only the nodes in NS and below (default '/': every node)")
    p.add_argument('--timeout', type=float, default=5.0, metavar='SEC',
                   help='seconds to wait for the first status on /diagnostics (default 5)')
    p.add_argument('--period', type=float, default=1.0, metavar='SEC',
                   help='seconds between refreshes (default 1)')
    args = p.parse_args(argv)
    if not args.timeout > 0.0 or not args.period > 0.0:
        p.error('--timeout and --period must be > 0')
    return args


class StatusProbe:
    """The rclpy side: /diagnostics into a ``StackView``, and the asynchronous questions to the
    nodes' services (one in flight per service, dropped after ``CALL_TIMEOUT_SEC``)."""

    def __init__(self, context, namespace: str) -> None:
        self.view = StackView(namespace=namespace)
        self.node = rclpy.create_node(
            'nn_one_status', context=context, start_parameter_services=False,
            parameter_overrides=[Parameter('start_type_description_service', value=False)])
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self._sub = self.node.create_subscription(DiagnosticArray, '/diagnostics',
                                                  self._on_diagnostics, QoSProfile(depth=100))
        self._started = time.monotonic()
        self._matched = (0, self._started)  # publishers matched, since when
        self._first: Optional[float] = None  # when the first status came
        self._clients: Dict[str, Any] = {}
        self._pending: Dict[str, Any] = {}  # service -> (future, client, sent at)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        now = time.monotonic()
        if self._first is None:
            self._first = now
        self.view.on_array(msg, now)

    def spin_until(self, done, deadline: float) -> None:
        while not done() and time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=min(0.05, max(0.0, deadline - time.monotonic())))

    def settled(self) -> bool:
        """Discovery has had its time (``DISCOVERY_SEC`` since the start), every publisher of
        /diagnostics in the graph is matched, and the last one matched and the first status
        came ``REPORT_SEC`` ago: each publisher has had the time to report; and each node
        has reported twice (a rate is told by two statuses), unless it went silent."""
        matched, now = self._sub.get_publisher_count(), time.monotonic()
        if matched != self._matched[0]:
            self._matched = (matched, now)
        return (self._first is not None and now - self._first >= REPORT_SEC
                and now - self._started >= DISCOVERY_SEC
                and now - self._matched[1] >= REPORT_SEC
                and matched >= self.node.count_publishers('/diagnostics')
                and not self.view.reported_once(now))

    def close(self) -> None:
        self.executor.remove_node(self.node)
        self.executor.shutdown()
        self.node.destroy_node()

    # -------------------------------------------------------------------------- questions
    def ask(self) -> None:
        """Ask every node of the view its lifecycle state and parameters (answers land in the
        view when they come)."""
        view = self.view
        targets = {}
        for name in view.nodes():
            targets[name] = ['diagnostics_period'] + ASKED.get(view.reports[name].role, [])
            predictor = view.known.get(name)
            if predictor is not None and predictor.predictor_node:
                targets.setdefault(predictor.predictor_node, list(MODEL))
        for name, names in targets.items():
            self._ask_parameters(name, names)
            if name in view.reports:
                self._ask_state(name)
        for name in self._managed_elsewhere():
            known = view.known.get(name)
            if known is None:
                self._ask_names(name)
            else:
                self._ask_state(name)
                if known.role in ASKED:
                    self._ask_parameters(name, ['diagnostics_period'] + ASKED[known.role])

    def _managed_elsewhere(self) -> List[str]:
        """Lifecycle nodes in the graph (under the namespace) that do not report: a managed
        node of the stack publishes /diagnostics only once configured; its parameters tell."""
        found = []
        for base, namespace in self.node.get_node_names_and_namespaces():
            name = f'{namespace.rstrip("/")}/{base}'
            known = self.view.known.get(name)
            if name in self.view.reports or not under(name, self.view.namespace) or (
                    known is not None and known.role is None):  # not one of ours
                continue
            if self._services(name) and f'{name}/get_state' in self._services(name):
                found.append(name)
        return found

    def _services(self, name: str) -> List[str]:
        namespace, _, base = name.rpartition('/')
        try:
            return [s for s, _ in self.node.get_service_names_and_types_by_node(
                base, namespace or '/')]
        except NodeNameNonExistentError:  # left the graph (or not in it yet)
            return []

    @property
    def pending(self) -> bool:
        return bool(self._pending)

    def _call(self, srv_type, service: str, request, on_reply) -> None:
        now = time.monotonic()
        if service in self._pending:
            future, client, sent = self._pending[service]
            if not future.done() and now - sent < CALL_TIMEOUT_SEC:
                return
            client.remove_pending_request(future)
            del self._pending[service]
        client = self._clients.get(service)
        if client is None:
            client = self._clients[service] = self.node.create_client(srv_type, service)
        if not client.service_is_ready():
            return
        future = client.call_async(request)
        self._pending[service] = (future, client, now)

        def done(f) -> None:
            self._pending.pop(service, None)
            if not f.cancelled() and f.exception() is None:
                on_reply(f.result())
        future.add_done_callback(done)

    def _ask_parameters(self, name: str, names: List[str]) -> None:
        def reply(result) -> None:
            got = [parameter_value_to_python(v) for v in result.values]
            self.view.set_parameters(name, dict(zip(names, got)))
        self._call(GetParameters, f'{name}/get_parameters', GetParameters.Request(names=names),
                   reply)

    def _ask_names(self, name: str) -> None:
        self._call(ListParameters, f'{name}/list_parameters', ListParameters.Request(),
                   lambda r: self.view.set_parameter_names(name, r.result.names))

    def _ask_state(self, name: str) -> None:
        services = self._services(name)
        if not services:
            return
        if f'{name}/get_state' not in services:
            self.view.set_lifecycle(name, None)
            return
        self._call(GetState, f'{name}/get_state', GetState.Request(),
                   lambda r: self.view.set_lifecycle(name, r.current_state.label))


def exit_code(doc: Dict[str, Any]) -> int:
    if not doc['found']:
        return EXIT_NOT_FOUND
    return EXIT_PROBLEMS if doc['problems'] else EXIT_OK


def show(doc: Dict[str, Any], as_json: bool, refresh: bool) -> None:
    if as_json:
        print(to_json(doc), flush=True)
        return
    width = max(40, shutil.get_terminal_size((120, 40)).columns - 45)
    text = table(doc, title=f'nn_one_node status  {time.strftime("%H:%M:%S")}', width=width)
    if refresh and sys.stdout.isatty():
        print(CLEAR + text, flush=True)
    else:
        print(text + ('\n' if refresh else ''), flush=True)


def watch(probe: StatusProbe, args: argparse.Namespace) -> int:
    view = probe.view
    probe.spin_until(lambda: view.reports, time.monotonic() + args.timeout)
    if not view.reports:
        doc = view.document(time.monotonic())
        show(doc, args.json, refresh=False)
        if not args.json:
            print(f'(waited {args.timeout:g} s; ROS_DOMAIN_ID and the discovery range must be '
                  'those of the nodes)', file=sys.stderr)
        return EXIT_NOT_FOUND
    if args.once:
        probe.spin_until(probe.settled, time.monotonic() + args.timeout)
        probe.ask()
        probe.spin_until(lambda: not probe.pending, time.monotonic() + ANSWER_SEC)
        probe.ask()  # a trainer's predictor, known only from the trainer's answer
        probe.spin_until(lambda: not probe.pending, time.monotonic() + ANSWER_SEC)
        doc = view.document(time.monotonic())
        show(doc, args.json, refresh=False)
        return exit_code(doc)
    while True:
        probe.ask()
        probe.spin_until(lambda: False, time.monotonic() + args.period)
        show(view.document(time.monotonic()), args.json, refresh=True)


def main(argv: Optional[List[str]] = None) -> None:
    argv = list(sys.argv if argv is None else argv)
    args = parse_args(remove_ros_args(argv)[1:])
    context = rclpy.Context()
    # Ctrl-C and SIGTERM end it as KeyboardInterrupt, between two refreshes or inside a wait.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.default_int_handler)
    rclpy.init(args=argv, context=context, signal_handler_options=SignalHandlerOptions.NO)
    probe = None
    code = EXIT_OK
    try:
        probe = StatusProbe(context, args.namespace)
        code = watch(probe, args)
    except (KeyboardInterrupt, ExternalShutdownException):
        code = EXIT_OK
    except BrokenPipeError:  # `status | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    finally:
        if probe is not None:
            probe.close()
        rclpy.try_shutdown(context=context)
    sys.exit(code)


if __name__ == '__main__':
    main()
