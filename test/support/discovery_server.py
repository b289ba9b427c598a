"""A Fast DDS Discovery Server for a test, on loopback only: ``fast-discovery-server -i 0 -l
127.0.0.1 -p PORT`` on a UDP port free when the test starts, and the environment that makes a
ROS process its client (``ROS_DISCOVERY_SERVER=127.0.0.1:PORT``).

The venv's Fast DDS wheel installs the server binary in ``<venv>/bin`` with an rpath that does
not reach its libraries (``<venv>/lib`` and ``site-packages/ros_fastrtps.libs``): they are put on
LD_LIBRARY_PATH for it. On a ROS install (``fastdds discovery ...``) nothing of that is needed.
"""

from __future__ import annotations

import os
import shutil
import signal
import site
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

EXECUTABLE = 'fast-discovery-server'
HOST = '127.0.0.1'


def free_udp_port() -> int:
    """A UDP port of 127.0.0.1 that nothing holds now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def udp_port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
        return True


def library_dirs() -> List[str]:
    """Where the venv's Fast DDS libraries are (those that exist)."""
    dirs = [Path(sys.prefix) / 'lib']
    dirs += [Path(p) / 'ros_fastrtps.libs' for p in site.getsitepackages()]
    return [str(d) for d in dirs if d.is_dir()]


class DiscoveryServer:
    """The server process (``with DiscoveryServer(log_path) as server:``); ``client_env()`` is
    what every ROS process that should discover through it needs; ``stop()`` ends it and
    returns its exit code once its port is free again."""

    def __init__(self, log_path: Path, port: Optional[int] = None) -> None:
        path = shutil.which(EXECUTABLE)
        assert path, f'{EXECUTABLE} is not on PATH (the Fast DDS wheel installs it in the venv)'
        self.port = port or free_udp_port()
        self.log_path = log_path
        env = dict(os.environ)
        env['LD_LIBRARY_PATH'] = os.pathsep.join(
            library_dirs() + [p for p in env.get('LD_LIBRARY_PATH', '').split(os.pathsep) if p])
        self._log = open(log_path, 'wb')
        self.proc = subprocess.Popen(
            [path, '-i', '0', '-l', HOST, '-p', str(self.port)], env=env, stdout=self._log,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    @property
    def address(self) -> str:
        return f'{HOST}:{self.port}'

    def client_env(self, super_client: bool = False) -> Dict[str, str]:
        env = {'ROS_DISCOVERY_SERVER': self.address}
        if super_client:
            env['ROS_SUPER_CLIENT'] = 'TRUE'
        return env

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors='replace')

    def wait_running(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while 'Server is running' not in self.output():
            assert self.proc.poll() is None, f'{EXECUTABLE} exited: {self.output()}'
            assert time.monotonic() < deadline, f'{EXECUTABLE} not running: {self.output()}'
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
        self._log.close()
        return self.proc.returncode

    def __enter__(self) -> 'DiscoveryServer':
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()
