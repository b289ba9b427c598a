"""The fleet benchmark's helper processes (bench/fleet_bench.py), driven over stdin/stdout as
bench/endpoints.py's are (one JSON command a line, one JSON answer a line):

    python bench/fleet_workers.py robots '{"robots": ["/r1", "/r2"], "input_rate": 10, ...}'
    python bench/fleet_workers.py monitor '{"robots": ["/r1", "/r2"], "trainer": "/trainer"}'

``robots``: the typed inputs of a few robots, as their drivers would publish them: per robot
``<ns>/odom`` (nav_msgs/Odometry), ``<ns>/imu`` (sensor_msgs/Imu) at ``input_rate``, and its
label ``<ns>/bump`` (std_msgs/Bool) at ``label_rate``, a fixed rule of the three values (a slow
random walk, so that the row the assembler joins a label to is near the values it was made of).

``monitor``: what the benchmark measures from outside, as any ROS tool could: every
``/parameter_events`` of the trainer and of each robot's predictor (each new model the trainer
holds, and when each predictor took a model, by the events' stamps: one system clock on one
machine), the trainer's own ``/diagnostics`` status, and which robot nodes are in the graph.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import Odometry
from rcl_interfaces.msg import ParameterEvent
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile
from sensor_msgs.msg import Imu
from std_msgs.msg import Bool

from endpoints import serve

W_RULE = np.array([1.5, -1.0, 0.8])  # the label: w . x + b > 0
B_RULE = 0.2
WALK = 0.95  # x_t = WALK x_{t-1} + sqrt(1 - WALK^2) noise: unit variance, slow


class Robots(Node):
    """The inputs and labels of ``robots`` (namespaces), from one timer."""

    def __init__(self, robots: List[str], input_rate: float, label_rate: float,
                 seed: int = 0) -> None:
        super().__init__('fleet_bench_robots')
        self.robots = list(robots)
        qos = QoSProfile(depth=10)
        self._pubs = [(self.create_publisher(Odometry, f'{ns}/odom', qos),
                       self.create_publisher(Imu, f'{ns}/imu', qos),
                       self.create_publisher(Bool, f'{ns}/bump', qos)) for ns in self.robots]
        self._rng = np.random.default_rng(seed)
        self._x = self._rng.normal(size=(len(self.robots), 3))
        self._due = np.zeros(len(self.robots))
        self._label_step = label_rate / input_rate
        self._noise = float(np.sqrt(1.0 - WALK * WALK))
        self.ticks = 0
        self.labels = 0
        self._odom, self._imu = Odometry(), Imu()
        self.create_timer(1.0 / input_rate, self._tick)

    def _tick(self) -> None:
        self.ticks += 1
        self._x = WALK * self._x + self._noise * self._rng.normal(size=self._x.shape)
        self._due += self._label_step
        stamp = self.get_clock().now().to_msg()
        for i, (odom, imu, bump) in enumerate(self._pubs):
            x = self._x[i]
            self._odom.header.stamp = self._imu.header.stamp = stamp
            self._odom.twist.twist.linear.x, self._odom.twist.twist.angular.z = x[0], x[1]
            self._imu.linear_acceleration.x = x[2]
            odom.publish(self._odom)
            imu.publish(self._imu)
            if self._due[i] >= 1.0:
                self._due[i] -= 1.0
                bump.publish(Bool(data=bool(float(W_RULE @ x) + B_RULE > 0.0)))
                self.labels += 1

    def counts(self) -> Dict[str, int]:
        return {'ticks': self.ticks, 'labels': self.labels}


Model = Tuple[float, ...]


class Monitor(Node):
    """The trainer's models and each robot's predictor's, by their parameter events."""

    def __init__(self, robots: List[str], trainer: str) -> None:
        super().__init__('fleet_bench_monitor')
        self.robots = list(robots)
        self.trainer = trainer
        self._predictor_of = {f'{ns}/predictor': ns for ns in self.robots}
        self._lock = threading.Lock()
        self.made: List[Tuple[float, Model]] = []  # (stamp, weights) of the trainer
        self.taken: Dict[str, List[Tuple[float, Model]]] = {ns: [] for ns in self.robots}
        self.status: Dict[str, str] = {}
        self.status_count = 0
        self.create_subscription(ParameterEvent, '/parameter_events', self._on_event,
                                 QoSProfile(depth=10000))
        self.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics,
                                 QoSProfile(depth=1000))

    def _on_event(self, msg: ParameterEvent) -> None:
        weights = None
        for p in (*msg.new_parameters, *msg.changed_parameters):
            if p.name == 'weights':
                weights = tuple(p.value.double_array_value)
        if weights is None:
            return
        stamp = msg.stamp.sec + msg.stamp.nanosec * 1e-9
        with self._lock:
            if msg.node == self.trainer:
                self.made.append((stamp, weights))
            elif msg.node in self._predictor_of:
                self.taken[self._predictor_of[msg.node]].append((stamp, weights))

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for s in msg.status:
            if s.name == f'{self.trainer}: trainer':
                with self._lock:
                    self.status = {kv.key: kv.value for kv in s.values}
                    self.status_count += 1

    # ------------------------------------------------------------------------------ commands
    def graph(self) -> Dict[str, int]:
        """How many of the robots' predictors and assemblers are in the graph now."""
        names = {f'{ns.rstrip("/")}/{n}' for n, ns in self.get_node_names_and_namespaces()}
        return {role: sum(f'{ns}/{role}' in names for ns in self.robots)
                for role in ('predictor', 'assembler')}

    def in_graph(self, name: str) -> Dict[str, bool]:
        """Whether the node ``name`` (fully qualified) is in the graph now: its name, or its
        parameter service's server (which comes first), as the trainer finds a predictor."""
        names = {f'{ns.rstrip("/")}/{n}' for n, ns in self.get_node_names_and_namespaces()}
        return {'in_graph': name in names
                or self.count_services(f'{name}/set_parameters_atomically') > 0}

    def watch(self, ns: str) -> Dict[str, str]:
        """Record the models of one more robot's predictor (a robot that joins late)."""
        with self._lock:
            self._predictor_of[f'{ns}/predictor'] = ns
            self.taken.setdefault(ns, [])
        return {'watching': ns}

    def served(self, ns: str) -> Dict[str, Optional[float]]:
        """When robot ``ns``'s predictor first took a model the trainer made (its stamp)."""
        with self._lock:
            made = {w for _, w in self.made}
            return {'at': min((t for t, w in self.taken.get(ns, []) if w in made),
                              default=None)}

    def trainer_status(self) -> Dict[str, Any]:
        with self._lock:
            return {'count': self.status_count, 'values': dict(self.status)}

    def first_taken(self, since: float) -> Dict[str, Optional[float]]:
        """Each robot's first model taken at or after ``since`` (a system-clock time)."""
        with self._lock:
            return {ns: min((t for t, _ in ev if t >= since), default=None)
                    for ns, ev in self.taken.items()}

    def deployments(self, start: float, end: float) -> Dict[str, Any]:
        """For each model the trainer made in [start, end]: the seconds until each robot's
        predictor took it or a later one (None: not by the time of the call)."""
        with self._lock:
            made = list(self.made)
            taken = {ns: list(ev) for ns, ev in self.taken.items()}
        version: Dict[Model, int] = {}
        for v, (_, w) in enumerate(made):
            version.setdefault(w, v)
        delays: List[Optional[float]] = []
        unknown = 0
        for v, (t, w) in enumerate(made):
            if not start <= t <= end or version[w] != v:
                continue
            for ns, events in taken.items():
                later = [s for s, tw in events if version.get(tw, -1) >= v]
                delays.append(min(later) - t if later else None)
        for events in taken.values():  # models taken in the window that the trainer never made
            unknown += sum(1 for t, tw in events if t >= start and tw not in version)
        return {'models': len([1 for t, _ in made if start <= t <= end]), 'delays': delays,
                'foreign_models': unknown}


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    role, config = argv[0], json.loads(argv[1])
    reply = os.fdopen(os.dup(1), 'w')  # answers on the original stdout; the rest on stderr
    os.dup2(2, 1)
    rclpy.init()
    node: Node = Robots(**config) if role == 'robots' else Monitor(**config)
    executor = SingleThreadedExecutor()
    executor.add_node(node)

    def spin() -> None:
        try:
            executor.spin()
        except Exception:  # noqa: BLE001 - a timer that fired while the context went down
            if rclpy.ok():
                raise
    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    try:
        serve(node, reply)
    finally:
        executor.shutdown(timeout_sec=5.0)
        rclpy.try_shutdown()
        thread.join(timeout=5.0)
    return 0


if __name__ == '__main__':
    sys.exit(main())
