"""Processes of a benchmark run: the nodes under test, and the source and sink workers.

Everything runs on one ROS_DOMAIN_ID claimed for the run, with DDS kept on loopback
(``nn_one_node.ros.isolation``). Every wait has a deadline; ``Bench.close`` stops whatever is left.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import yaml

from nn_one_node.ros.isolation import loopback_env

BENCH_DIR = Path(__file__).resolve().parent
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the bench process dies, however it dies (a
    SIGKILL from a test's timeout included), so that no node outlives its run."""
    try:
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # not Linux: Bench.close() is then the only clean-up
PACKAGE = 'nn_one_node'
START_TIMEOUT = 60.0  # two cores, a dozen Python processes starting at once


def executable(name: str) -> str:
    """An installed executable of the package, found as ``ros2 run`` finds it."""
    from ament_index_python.packages import PackageNotFoundError, get_package_prefix
    try:
        prefix = get_package_prefix(PACKAGE)
    except PackageNotFoundError:
        raise SystemExit(f'{PACKAGE} is not installed: `source scripts/setup_env.sh` first') \
            from None
    path = os.path.join(prefix, 'lib', PACKAGE, name)
    if not os.access(path, os.X_OK):
        raise SystemExit(f'installed executable missing: {path}')
    return path


class NodeProc:
    """A node as a child process, its output in a log file."""

    def __init__(self, label: str, argv: List[str], env: Dict[str, str], log: Path) -> None:
        self.label = label
        self.log_path = log
        self._log = open(log, 'wb')
        self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors='replace')

    def tail(self, lines: int = 20) -> str:
        return '\n'.join(self.output().splitlines()[-lines:])

    def wait_for_output(self, pattern: str, timeout: float = START_TIMEOUT) -> re.Match:
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.output())
            if m:
                return m
            if not self.alive() or time.monotonic() > deadline:
                raise RuntimeError(f'{self.label}: no {pattern!r} in its output '
                                   f'(exit code {self.proc.poll()}):\n{self.tail()}')
            time.sleep(0.05)  # polling a log file: there is no event to wait on

    def stop(self, timeout: float = 10.0) -> Optional[int]:
        if self.alive():
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10.0)
        self._log.close()
        return self.proc.returncode


class Worker:
    """A source or sink process (bench/endpoints.py): one JSON command, one JSON answer."""

    def __init__(self, label: str, argv: List[str], env: Dict[str, str], log: Path) -> None:
        self.label = label
        self.log_path = log
        self._log = open(log, 'wb')
        self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._log,
                                     preexec_fn=_die_with_parent)
        self._buf = b''
        self._readline(START_TIMEOUT)  # {"ready": true}

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _fail(self, what: str) -> RuntimeError:
        self._log.flush()
        tail = '\n'.join(self.log_path.read_text(errors='replace').splitlines()[-20:])
        return RuntimeError(f'{self.label}: {what} (exit code {self.proc.poll()}):\n{tail}')

    def _readline(self, timeout: float) -> Dict[str, Any]:
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b'\n' not in self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._fail(f'no answer within {timeout} s')
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    raise self._fail('exited')
                self._buf += chunk
        line, self._buf = self._buf.split(b'\n', 1)
        return json.loads(line)

    def call(self, cmd: str, answer_timeout: float = 60.0, **kwargs: Any) -> Dict[str, Any]:
        try:
            self.proc.stdin.write((json.dumps({'cmd': cmd, **kwargs}) + '\n').encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise self._fail(f'gone before {cmd!r}') from None
        answer = self._readline(answer_timeout)
        if 'error' in answer:
            raise self._fail(answer['error'])
        return answer

    def close(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(b'{"cmd": "quit"}\n')
                self.proc.stdin.close()
                self.proc.wait(timeout=timeout)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(timeout=10.0)
        self._log.close()


@dataclass
class Target:
    """A node under test: what it is, where its topics are, how the sink decodes its output."""

    label: str
    kind: str  # 'predictor' | 'relay'
    executor: str  # the executor parameter given: 'auto' | 'events' | 'single_threaded'
    n: int
    namespace: str
    in_topic: str
    out_topic: str
    decode: str  # 'sigmoid' (the predictor's model output) | 'raw' (relayed as sent)
    proc: Optional[NodeProc] = None
    executor_used: str = 'unknown'
    extra: Dict[str, Any] = field(default_factory=dict)


class Bench:
    """All the processes of one run, on one domain, with their logs in ``log_dir``."""

    def __init__(self, domain_id: int, log_dir: Path) -> None:
        self.domain_id = domain_id
        self.log_dir = log_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        self.env = loopback_env(domain_id)
        self.env['PYTHONUNBUFFERED'] = '1'
        self.env['RCUTILS_LOGGING_BUFFERED_STREAM'] = '0'
        self.nodes: List[NodeProc] = []
        self.workers: List[Worker] = []

    def __enter__(self) -> 'Bench':
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _params_file(self, label: str, node: str, params: Dict[str, Any]) -> Path:
        path = self.log_dir / f'{label}.params.yaml'
        path.write_text(yaml.safe_dump({node: {'ros__parameters': params}}))
        return path

    def start_node(self, label: str, argv0: List[str], node: str, namespace: str,
                   params: Dict[str, Any], env: Optional[Dict[str, str]] = None) -> NodeProc:
        argv = argv0 + ['--ros-args', '--params-file',
                        str(self._params_file(label, '/**', params)),
                        '-r', f'__ns:={namespace}',
                        # the node logger's debug level only: shows which executor spins it
                        '--log-level', f'{namespace.strip("/").replace("/", ".")}.{node}:=debug']
        proc = NodeProc(label, argv, {**self.env, **(env or {})}, self.log_dir / f'{label}.log')
        self.nodes.append(proc)
        return proc

    def predictor(self, n: int, executor: Optional[str], extra: Optional[Dict] = None) -> Target:
        label = f'predictor-{executor or "default"}-{n}'
        ns = f'/{label.replace("-", "_")}'
        params: Dict[str, Any] = {'num_features': n, 'weights': [1.0] + [0.0] * (n - 1),
                                  'bias': 0.0}
        if executor is not None:
            params['executor'] = executor
        params.update(extra or {})
        target = Target(label, 'predictor', executor or 'auto', n, ns, f'{ns}/features',
                        f'{ns}/prediction', 'sigmoid')
        target.proc = self.start_node(label, [executable('predictor')], 'predictor', ns, params)
        return target

    def relay(self, n: int, executor: str) -> Target:
        label = f'relay-{executor}-{n}'
        ns = f'/{label.replace("-", "_")}'
        target = Target(label, 'relay', executor, n, ns, f'{ns}/in', f'{ns}/out', 'raw')
        target.proc = self.start_node(label, [sys.executable, str(BENCH_DIR / 'relay.py')],
                                      'relay', ns, {'executor': executor})
        return target

    def trainer(self, label: str, namespace: str, n: int, params: Dict[str, Any],
                env: Optional[Dict[str, str]] = None, prefix: Sequence[str] = ()) -> NodeProc:
        return self.start_node(label, [*prefix, executable('trainer')], 'trainer', namespace,
                               {'num_features': n, **params}, env)

    def worker(self, role: str, config: Dict[str, Any]) -> Worker:
        argv = [sys.executable, str(BENCH_DIR / 'endpoints.py'), role, json.dumps(config)]
        worker = Worker(role, argv, self.env, self.log_dir / f'{role}.log')
        self.workers.append(worker)
        return worker

    def close(self) -> None:
        for w in self.workers:
            w.close()
        for p in self.nodes:
            p.stop()
        self.workers, self.nodes = [], []


def wait_ready(target: Target) -> None:
    """Wait for the node's start-up line and read which executor it spins on."""
    m = target.proc.wait_for_output(r'spinning on the (\w+) executor')
    target.executor_used = m.group(1)
