"""Test bench for process-level tests: the installed executables as processes, a real rclpy test
node in this process, DDS on loopback on a domain of this test's own.

Every wait has a deadline; a timeout fails the test with what was awaited and the tail of each
process's output.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

import rclpy
import yaml
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.srv import GetParameters, SetParameters, SetParametersAtomically
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter, parameter_value_to_python
from rclpy.qos import QoSProfile
from std_srvs.srv import SetBool

from nn_one_node.ros.isolation import loopback_env

DEFAULT_TIMEOUT = 20.0
# How long close() lets the processes still running exit on SIGINT before it kills them.
CLOSE_TIMEOUT = 10.0
RETRY_SEC = 3.0
REPEATABLE_SERVICES = (GetParameters, SetParameters, SetParametersAtomically, SetBool)
PACKAGE = 'nn_one_node'


def executable_path(name: str) -> str:
    """The installed executable, found the way ``ros2 run`` finds it (ament index prefix)."""
    from ament_index_python.packages import PackageNotFoundError, get_package_prefix
    try:
        prefix = get_package_prefix(PACKAGE)
    except PackageNotFoundError:
        raise AssertionError(
            f'{PACKAGE} is not installed in any AMENT_PREFIX_PATH '
            f'({os.environ.get("AMENT_PREFIX_PATH", "")!r}): run the tests with `make test`, '
            'or `colcon build` and source install/setup.bash first') from None
    path = os.path.join(prefix, 'lib', PACKAGE, name)
    assert os.access(path, os.X_OK), f'installed executable missing: {path}'
    return path


def write_params_file(path: Path, params: Dict[str, Any], node: str = '/**') -> Path:
    path.write_text(yaml.safe_dump({node: {'ros__parameters': params}}, sort_keys=False))
    return path


class NodeProcess:
    """One installed executable running as a child process, its output in a log file."""

    def __init__(self, name: str, argv: List[str], env: Dict[str, str], log_path: Path) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self._log = open(log_path, 'wb')
        self.proc = subprocess.Popen(argv, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors='replace')

    def tail(self, lines: int = 25) -> str:
        return '\n'.join(self.output().splitlines()[-lines:])

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_for_output(self, pattern: str, timeout: float = DEFAULT_TIMEOUT) -> re.Match:
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while True:
            m = rx.search(self.output())
            if m:
                return m
            if time.monotonic() > deadline:
                raise AssertionError(
                    f'{self.name}: no output matching {pattern!r} within {timeout} s; '
                    f'output:\n{self.tail()}')
            if not self.alive():
                m = rx.search(self.output())
                if m:
                    return m
                raise AssertionError(
                    f'{self.name} exited ({self.proc.returncode}) before printing {pattern!r}:\n'
                    f'{self.tail()}')
            time.sleep(0.02)  # polling a log file: no event to wait on

    def stop(self, sig: int = signal.SIGINT, timeout: float = 10.0) -> int:
        """Send ``sig`` and wait for exit; kill after ``timeout``. Returns the exit code."""
        if self.alive():
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                raise AssertionError(
                    f'{self.name} did not exit within {timeout} s of signal {sig}:\n{self.tail()}')
        self._log.close()
        return self.proc.returncode

    def kill(self) -> None:
        if self.alive():
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._log.close()


class RosBench:
    """Processes plus an in-process test node, all on one private domain."""

    def __init__(self, domain_id: int, tmp_path: Path) -> None:
        self.domain_id = domain_id
        self.tmp_path = tmp_path
        self.env = loopback_env(domain_id)
        self.env['PYTHONUNBUFFERED'] = '1'
        self.env.setdefault('RCUTILS_LOGGING_BUFFERED_STREAM', '0')
        self.processes: List[NodeProcess] = []
        self._clients: Dict[Any, Any] = {}
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        # No ~/get_type_description service: one entity less to tear down, none needed here.
        self.node = rclpy.create_node(
            'nn_one_test', context=self.context,
            parameter_overrides=[Parameter('start_type_description_service', value=False)])
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    # ------------------------------------------------------------------------------ processes
    def start(self, executable: str, params: Optional[Dict[str, Any]] = None,
              params_files: Sequence[Path] = (), name: Optional[str] = None,
              namespace: Optional[str] = None, remaps: Optional[Dict[str, str]] = None,
              ros_args: Sequence[str] = (), env: Optional[Dict[str, str]] = None,
              args: Sequence[str] = ()) -> NodeProcess:
        """Start an installed executable; ``args`` go before ``--ros-args`` (e.g. --managed)."""
        argv = [executable_path(executable), *args, '--ros-args']
        for f in params_files:
            argv += ['--params-file', str(f)]
        if params:
            n = len(self.processes)
            argv += ['--params-file',
                     str(write_params_file(self.tmp_path / f'{executable}-{n}.yaml', params))]
        if name:
            argv += ['-r', f'__node:={name}']
        if namespace:
            argv += ['-r', f'__ns:={namespace}']
        for src, dst in (remaps or {}).items():
            argv += ['-r', f'{src}:={dst}']
        argv += list(ros_args)
        label = f'{namespace or ""}/{name or executable}'
        log = self.tmp_path / f'{label.strip("/").replace("/", "_")}-{len(self.processes)}.log'
        proc = NodeProcess(label, argv, {**self.env, **(env or {})}, log)
        self.processes.append(proc)
        return proc

    def close(self) -> None:
        # Stop what is still running as a user would (SIGINT), and SIGKILL only what does not
        # exit in time: a peer killed outright can leave Fast DDS's shared-memory transport in a
        # state that crashed this process's participant as it was destroyed below (SIGSEGV in
        # SharedMemChannelResource::release, found in CI).
        running = [p for p in self.processes if p.alive()]
        for p in running:
            p.proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + CLOSE_TIMEOUT
        for p in running:
            try:
                p.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for p in self.processes:
            p.kill()
        # Take the node out of the executor before destroying anything (a node destroyed while
        # an executor still holds it has crashed rclpy), then its clients, then the node.
        self.executor.remove_node(self.node)
        self.executor.shutdown()
        for client in self._clients.values():
            self.node.destroy_client(client)
        self._clients.clear()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)

    def logs(self) -> str:
        return '\n'.join(f'--- {p.name}:\n{p.tail()}' for p in self.processes)

    # ------------------------------------------------------------------------------- waiting
    def spin_until(self, predicate: Callable[[], Any], timeout: float = DEFAULT_TIMEOUT,
                   what: str = 'condition') -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f'timed out after {timeout} s waiting for {what}\n'
                                     f'{self.logs()}')
            self.executor.spin_once(timeout_sec=min(0.05, remaining))

    def spin_for(self, seconds: float) -> None:
        """Spin (dispatching callbacks) for a bounded time: used to show something does NOT
        arrive, where there is no event to wait for."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=min(0.05, max(0.0, deadline - time.monotonic())))

    def future(self, future, timeout: float = DEFAULT_TIMEOUT, what: str = 'a service reply'):
        self.spin_until(future.done, timeout, what)
        return future.result()

    # ---------------------------------------------------------------------------- pub / sub
    def publisher(self, msg_type, topic: str, qos: Any = 10):
        return self.node.create_publisher(msg_type, topic, qos)

    def wait_for_subscribers(self, pub, count: int = 1, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.spin_until(lambda: pub.get_subscription_count() >= count, timeout,
                        f'{count} subscriber(s) on {pub.topic_name}')

    def collect(self, msg_type, topic: str, qos: Any = None) -> List[Any]:
        """A list that fills with every message received on ``topic``."""
        received: List[Any] = []
        self.node.create_subscription(msg_type, topic, received.append,
                                      qos if qos is not None else QoSProfile(depth=1000))
        return received

    def wait_for_messages(self, received: List[Any], count: int,
                          timeout: float = DEFAULT_TIMEOUT, what: str = 'messages') -> List[Any]:
        self.spin_until(lambda: len(received) >= count, timeout, f'{count} {what}')
        return received

    def handshake(self, pub, msg, received: List[Any], timeout: float = DEFAULT_TIMEOUT) -> None:
        """Publish ``msg`` until a reply lands in ``received``, then empty it.

        Discovery is asymmetric: seeing the other side's subscription does not mean its publisher
        has matched ours yet. Repeating a probe until the answer arrives proves the whole loop.
        """
        self.wait_for_subscribers(pub, 1, timeout)
        deadline = time.monotonic() + timeout
        while not received:
            if time.monotonic() > deadline:
                raise AssertionError(f'no reply on the loop through {pub.topic_name} within '
                                     f'{timeout} s\n{self.logs()}')
            pub.publish(msg)
            end = time.monotonic() + 0.2
            while not received and time.monotonic() < end:
                self.executor.spin_once(timeout_sec=0.02)
        self.spin_for(0.1)  # replies to the other probes still in flight
        received.clear()

    def ask(self, pub, msg, received: List[Any], timeout: float = DEFAULT_TIMEOUT,
            what: str = 'a reply') -> Any:
        """Publish ``msg`` and return the next message that lands in ``received``.

        One message in flight at a time: a best-effort, depth-5 sensor subscription may drop a
        burst, which is its contract, not a fault of the node.
        """
        before = len(received)
        pub.publish(msg)
        self.spin_until(lambda: len(received) > before, timeout, what)
        return received[before]

    def ask_until_answered(self, pub, msg, received: List[Any], matches: Callable[[Any], bool],
                           what: str = 'a reply', timeout: float = DEFAULT_TIMEOUT,
                           every: float = 1.0) -> Any:
        """Publish ``msg`` (again every ``every`` seconds) until a message that ``matches`` it
        lands in ``received``; return that message. For a first request to a best-effort
        subscription that discovery may not have matched to ``pub`` yet (see ``handshake``)."""
        deadline = time.monotonic() + timeout
        start = len(received)
        while True:
            pub.publish(msg)
            resend = min(deadline, time.monotonic() + every)
            found = self.spin_until(
                lambda: next((r for r in received[start:] if matches(r)), None)
                or time.monotonic() >= resend, timeout + 1.0, what)
            if found is not True:
                return found
            if time.monotonic() >= deadline:
                raise AssertionError(f'timed out after {timeout} s waiting for {what}\n'
                                     f'{self.logs()}')

    # ---------------------------------------------------------------------------- services
    def client(self, srv_type, name: str):
        """One client per service, made once and kept (see ``call``)."""
        key = (srv_type, name)
        if key not in self._clients:
            self._clients[key] = self.node.create_client(srv_type, name)
        return self._clients[key]

    def call(self, srv_type, name: str, request, timeout: float = DEFAULT_TIMEOUT,
             repeatable: Optional[bool] = None):
        """Call a service and return its reply.

        Fast DDS drops a reply when the server has not yet matched the client's reply reader
        ('failed to send response (timeout)' in the server's log), which a client made just
        before its call risks on a loaded machine: the call would then hang. So clients are kept
        (matched once, early), and calls that can be repeated without effect (the parameter
        services, SetBool) are sent again when no reply comes within RETRY_SEC.
        """
        client = self.client(srv_type, name)
        self.spin_until(lambda: client.wait_for_service(timeout_sec=0.0), timeout,
                        f'service {name}')
        if repeatable is None:
            repeatable = srv_type in REPEATABLE_SERVICES
        deadline = time.monotonic() + timeout
        attempt = RETRY_SEC if repeatable else timeout
        while True:
            future = client.call_async(request)
            give_up = min(deadline, time.monotonic() + attempt)
            self.spin_until(lambda: future.done() or time.monotonic() >= give_up, timeout + 1.0,
                            f'reply from {name}')
            if future.done():
                return future.result()
            client.remove_pending_request(future)
            if time.monotonic() >= deadline:
                raise AssertionError(f'no reply from {name} within {timeout} s\n{self.logs()}')

    def set_parameters(self, node_name: str, values: Dict[str, Any], atomic: bool = False,
                       timeout: float = DEFAULT_TIMEOUT):
        """Set parameters over the node's service; returns the SetParametersResult list/one."""
        params = [to_parameter_msg(k, v) for k, v in values.items()]
        if atomic:
            req = SetParametersAtomically.Request(parameters=params)
            return self.call(SetParametersAtomically, f'{node_name}/set_parameters_atomically',
                             req, timeout).result
        req = SetParameters.Request(parameters=params)
        return self.call(SetParameters, f'{node_name}/set_parameters', req, timeout).results

    def get_parameters(self, node_name: str, names: Iterable[str],
                       timeout: float = DEFAULT_TIMEOUT) -> Dict[str, Any]:
        names = list(names)
        reply = self.call(GetParameters, f'{node_name}/get_parameters',
                          GetParameters.Request(names=names), timeout)
        return {n: parameter_value_to_python(v) for n, v in zip(names, reply.values)}


def to_parameter_msg(name: str, value: Any) -> ParameterMsg:
    if isinstance(value, ParameterMsg):
        return value
    return Parameter(name, value=value).to_parameter_msg()


def diagnostic_values(diag_msgs: List[Any], name_part: str) -> Optional[Dict[str, str]]:
    """Key/values of the newest DiagnosticStatus whose name contains ``name_part``."""
    for msg in reversed(diag_msgs):
        for status in msg.status:
            if name_part in status.name:
                return {kv.key: kv.value for kv in status.values}
    return None
