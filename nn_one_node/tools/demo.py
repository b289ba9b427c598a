"""The demo: watch the predictor and the trainer learn the wheel-slip scenario live.

    python -m nn_one_node.tools.demo [--duration 30] [--out artifacts/demo.png] [--arrays]
                               [--record DIR]                                  (or: make demo)

It claims a ROS_DOMAIN_ID of its own and keeps DDS on loopback, then starts the nodes of one of
two paths with their installed params file:

* the robot path (default): ``sim_robot`` publishes the scenario as a robot's typed topics
  (LaserScan, Odometry, JointState, Imu, Temperature) and the slip label late on a topic of its
  own; the ``assembler`` turns them into ``features`` rows for the predictor and, joining each
  label to the row of the moment it describes, ``labeled_samples`` for the trainer
  (config/robot.yaml);
* the array path (``--arrays``): ``sim_sensor`` publishes ready-made ``features`` and
  ``labeled_samples`` rows (config/nn_one.yaml).

Through ``ros2 launch nn_one_node nn_one_launch.py`` (``start_assembler:=true
start_sim_robot:=true``, or ``start_sim_sensor:=true``) where ``ros2`` and launch_ros exist,
otherwise as the installed executables with the same params file. ``--record DIR`` also writes
what runs on the topics to a rosbag2 (mcap) in DIR, for the offline tools.

A monitor node in this process prints, about every second, the samples the trainer has received,
its training loss
(``/trainer/loss``), the predictor's accuracy and mean absolute error on a fresh evaluation batch
of the scenario (published on ``features``; its prediction is recognised by its size), and the
distance of the predictor's deployed weights (read with the get_parameters service) from the
ground truth. After ``--duration`` seconds, or Ctrl-C, it prints a summary, writes a PNG plot of
loss and accuracy over time, stops the nodes with SIGINT and exits 0.

Without the trainer (not installed, or ``--no-trainer``), the same demo shows the predictor
answering with its initial model.

This module starts and stops the nodes and runs the loop; the monitor node and the recorder are
in ``demo_monitor``, the table, summary and plot in ``demo_summary``.
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, TextIO, Tuple

import numpy as np

from nn_one_node.ros.isolation import (claim_domain_id, domain_id_from_env, loopback_env,
                                       use_domain_id)
from nn_one_node.sim.scenario import Scenario
from nn_one_node.tools.demo_monitor import Monitor, MonitorState, Recorder, Sample
from nn_one_node.tools.demo_summary import HEADER, plot, reference, row, summary

PACKAGE = 'nn_one_node'
PRINT_PERIOD = 1.0
STOP_TIMEOUT = 10.0
START_TIMEOUT = 30.0  # for every node to log its first line
_ISOLATION_KEYS = ('ROS_DOMAIN_ID', 'ROS_AUTOMATIC_DISCOVERY_RANGE', 'ROS_LOCALHOST_ONLY',
                   'ROS_STATIC_PEERS')


@dataclass(frozen=True)
class DemoPath:
    """What one path of the demo starts, and what runs on its topics."""

    name: str
    params: str                              # the installed config/ file
    nodes: Tuple[str, ...]                   # executables, in start order
    launch_arguments: Tuple[str, ...]        # for nn_one_launch.py
    topics: Tuple[Tuple[str, str, bool], ...]  # (topic, type, sensor QoS) its nodes talk on


_OUTPUTS = (('features', 'std_msgs/msg/Float64MultiArray', False),
            ('labeled_samples', 'std_msgs/msg/Float64MultiArray', False),
            ('prediction', 'std_msgs/msg/Float64MultiArray', False))
ROBOT = DemoPath(
    'robot', 'robot.yaml', ('predictor', 'trainer', 'assembler', 'sim_robot'),
    ('start_assembler:=true', 'start_sim_robot:=true'),
    (('scan', 'sensor_msgs/msg/LaserScan', True),
     ('odom', 'nav_msgs/msg/Odometry', True),
     ('joint_states', 'sensor_msgs/msg/JointState', True),
     ('imu', 'sensor_msgs/msg/Imu', True),
     ('temperature', 'sensor_msgs/msg/Temperature', True),
     ('slip', 'std_msgs/msg/Bool', False),
     ('slip_probability', 'std_msgs/msg/Float64', False)) + _OUTPUTS)
ARRAYS = DemoPath('arrays', 'nn_one.yaml', ('predictor', 'trainer', 'sim_sensor'),
                  ('start_sim_sensor:=true',), _OUTPUTS)


# ------------------------------------------------------------------------------- the children
def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Ask Linux to SIGTERM the child if the demo itself dies (e.g. SIGKILL): no orphan nodes."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Child:
    """A process the demo started, its output in a log file."""

    def __init__(self, name: str, argv: List[str], env: Dict[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, 'wb')
        # Its own session: a Ctrl-C in the terminal reaches the demo only, which then prints its
        # summary and stops the nodes in order.
        self.proc = subprocess.Popen(
            argv, env=env, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform.startswith('linux') else None)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def started(self) -> bool:
        """Whether the node has logged its first line: it is built, and rclpy handles SIGINT (a
        SIGINT before that kills the process at once, exit -2, instead of stopping it)."""
        self._log.flush()
        return self.log_path.stat().st_size > 0

    def tail(self, lines: int = 15) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors='replace').splitlines()
        return '\n'.join('    ' + line for line in text[-lines:])

    def stop(self) -> Optional[int]:
        """SIGINT (as Ctrl-C), then SIGKILL after STOP_TIMEOUT; returns the exit code."""
        if self.alive():
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT)
        self._log.close()
        return self.proc.returncode


@dataclass
class Installation:
    prefix: str
    share: str

    def params_file(self, path: DemoPath = ARRAYS) -> str:
        return os.path.join(self.share, 'config', path.params)

    def executable(self, name: str) -> Optional[str]:
        path = os.path.join(self.prefix, 'lib', PACKAGE, name)
        return path if os.access(path, os.X_OK) else None


def find_installation() -> Installation:
    from ament_index_python.packages import (PackageNotFoundError, get_package_prefix,
                                             get_package_share_directory)
    try:
        return Installation(get_package_prefix(PACKAGE), get_package_share_directory(PACKAGE))
    except PackageNotFoundError:
        raise SystemExit(
            f'{PACKAGE} is not installed in any AMENT_PREFIX_PATH: run `make demo`, or '
            '`colcon build` and `source install/setup.bash` first') from None


def ros2_launch_available() -> bool:
    # find_spec('launch') is no test: the repository's launch/ folder is a namespace package.
    return shutil.which('ros2') is not None and importlib.util.find_spec('launch_ros') is not None


def start_nodes(inst: Installation, env: Dict[str, str], log_dir: Path,
                use_launch: bool, with_trainer: bool, path: DemoPath = ARRAYS) -> List[Child]:
    if use_launch:
        argv = ['ros2', 'launch', PACKAGE, 'nn_one_launch.py', *path.launch_arguments,
                f'params_file:={inst.params_file(path)}']
        if not with_trainer:
            argv.append('start_trainer:=false')
        return [Child('ros2 launch', argv, env, log_dir / 'launch.log')]
    children = []
    for name in path.nodes:
        exe = inst.executable(name)
        if exe is None and name in ('assembler', 'sim_robot'):
            raise SystemExit(f'{name} is not installed in {inst.prefix}: rebuild the package '
                             '(`make demo` does), or run the array path with --arrays')
        if exe is None or (name == 'trainer' and not with_trainer):
            continue
        argv = [exe, '--ros-args', '--params-file', inst.params_file(path)]
        children.append(Child(name, argv, env, log_dir / f'{name}.log'))
    return children


# ----------------------------------------------------------------------------------- main
def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog='python -m nn_one_node.tools.demo',
        description='Watch the predictor and trainer learn a simulated robot scenario live.')
    parser.add_argument('--duration', type=float, default=30.0,
                        help='seconds to run before the summary (default 30); Ctrl-C ends it '
                             'earlier')
    parser.add_argument('--out', type=Path, default=Path('artifacts/demo.png'),
                        help='PNG plot of loss and accuracy over time (default '
                             'artifacts/demo.png); node logs go beside it')
    parser.add_argument('--no-trainer', action='store_true',
                        help='leave the trainer out: the predictor serves its initial model')
    parser.add_argument('--no-launch', action='store_true',
                        help='start the installed executables directly even where ros2 launch '
                             'exists')
    parser.add_argument('--arrays', action='store_true',
                        help='the array path: sim_sensor publishes ready-made features and '
                             'labeled_samples rows (config/nn_one.yaml), no assembler')
    parser.add_argument('--record', type=Path, metavar='DIR',
                        help='also record the topics of the run to a rosbag2 (mcap storage) in '
                             'DIR, which must not exist yet')
    args = parser.parse_args(argv)
    if not (0.0 < args.duration < 86400.0):
        parser.error('--duration must be between 0 and 86400 seconds')
    if args.record is not None:
        if os.path.lexists(args.record):
            parser.error(f'--record {args.record}: already exists (a bag is written to a new '
                         'directory)')
        if importlib.util.find_spec('rosbags') is None:
            parser.error('--record needs the rosbags package (pip install rosbags; `make demo` '
                         'has it)')
    return args


def _isolate(domain_id: int) -> Dict[str, str]:
    """Keep this process's own DDS (and its children's) on loopback and on ``domain_id``."""
    env = loopback_env(domain_id)
    for key in _ISOLATION_KEYS:
        if key in env:
            os.environ[key] = env[key]
        else:
            os.environ.pop(key, None)
    env['PYTHONUNBUFFERED'] = '1'
    return env


def run(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    inst = find_installation()
    try:
        chosen = domain_id_from_env()
    except ValueError as err:
        print(f'demo: {err}', file=sys.stderr)
        return 2
    # the user's domain, so that their own tools can watch the demo; else one nobody holds
    lock = use_domain_id(chosen) if chosen is not None else claim_domain_id()
    env = _isolate(lock.domain_id)
    log_dir = args.out.parent / 'demo-logs'
    log_dir.mkdir(parents=True, exist_ok=True)
    use_launch = ros2_launch_available() and not args.no_launch
    with_trainer = inst.executable('trainer') is not None and not args.no_trainer
    path = ARRAYS if args.arrays else ROBOT
    scenario = Scenario()
    p = functools.partial(print, file=out, flush=True)

    names = ', '.join(f'{s}' for s in scenario.feature_names)
    p(f'nn_one_node demo: learning wheel-slip risk online from {scenario.num_features} '
      f'sensors ({names})')
    if path is ROBOT:
        p('the robot path: sim_robot publishes typed topics (/scan LaserScan, /odom Odometry, '
          '/joint_states JointState, /imu Imu, /temperature Temperature) and the slip label '
          'late (/slip_probability); the assembler makes features rows of them for the '
          'predictor and joins each label to its moment for the trainer')
    else:
        p('the array path: sim_sensor publishes features and labeled_samples rows')
    p(f'ground truth: weights {np.round(scenario.true_weights, 3).tolist()}, '
      f'bias {scenario.true_bias}')
    how = (f'ros2 launch nn_one_node nn_one_launch.py {" ".join(path.launch_arguments)}'
           if use_launch else 'the installed executables')
    nodes = ', '.join(n for n in path.nodes if with_trainer or n != 'trainer')
    p(f'starting {nodes} with {how} and {inst.params_file(path)}')
    whose = ('yours' if chosen is not None else 'free, chosen for this run: export '
             'ROS_DOMAIN_ID to choose it')
    p(f'ROS_DOMAIN_ID {lock.domain_id} ({whose}), DDS on loopback only; node logs in '
      f'{log_dir}/')
    if not with_trainer:
        p('without the trainer: showing the predictor serving its initial model')

    children: List[Child] = []
    monitor: Optional[Monitor] = None
    recorder: Optional[Recorder] = None
    started = time.monotonic()
    failed = ''
    previous_handler = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    try:
        children = start_nodes(inst, env, log_dir, use_launch, with_trainer, path)
        if not use_launch:  # ros2 launch relays a Ctrl-C itself
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline and not all(
                    c.started() or not c.alive() for c in children):
                time.sleep(0.05)  # polling log files: no event to wait on
        if args.record is not None:
            args.record.parent.mkdir(parents=True, exist_ok=True)
            recorder = Recorder(args.record)
        monitor = Monitor(lock.domain_id, recorder, path.topics)
        p(f'running for {args.duration:g} s (Ctrl-C ends it early)')
        p(HEADER)
        tick = started
        while monitor.ok():
            tick += PRINT_PERIOD
            monitor.evaluate()
            monitor.spin_until(min(tick, started + args.duration))
            now = time.monotonic()
            s = monitor.state
            sample = Sample(now - started, s.samples, s.losses, s.loss, s.accuracy, s.mae,
                            s.weight_error)
            s.history.append(sample)
            p(row(sample))
            dead = [c for c in children if not c.alive()]
            if dead:
                failed = '; '.join(f'{c.name} exited ({c.proc.returncode})' for c in dead)
                p(f'stopping: {failed}')
                for c in dead:
                    p(c.tail())
                break
            if now - started >= args.duration:
                break
    except KeyboardInterrupt:
        p('interrupted: stopping')
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
        elapsed = time.monotonic() - started
        if monitor is not None:
            state = monitor.state
            monitor.close()
        else:
            state = MonitorState()
        if recorder is not None:
            recorder.close()
        codes = [(c.name, c.stop()) for c in children]
        lock.release()
    if codes:
        p('stopped ' + ', '.join(f'{name} (exit {code})' for name, code in codes))
    if recorder is not None:
        counts = ', '.join(f'{t} {n}' for t, n in recorder.counts.items())
        p(f'recorded to {args.record.resolve()} (rosbag2, mcap): {counts}')
    ref = reference()
    summary(state, scenario, ref, elapsed, out)
    if state.history:
        plot(state.history, ref, args.out, with_trainer)
        p(f'plot of loss and accuracy over time: {args.out.resolve()}')
    return 1 if failed else 0


def _sigterm_as_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: Optional[List[str]] = None) -> int:
    return run(parse_args(argv))


if __name__ == '__main__':
    sys.exit(main())
