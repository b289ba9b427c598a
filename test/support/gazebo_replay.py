"""A Gazebo robot replayed from the test node: the topics config/gazebo_bridge.yaml bridges (same
names, same types), stamped on a /clock the test publishes, with a world reset in the middle.

``check_gazebo_learning`` is the scenario of test_gazebo_launch.py (launch_testing, where ros_gz
and launch_testing are installed) and of test_gazebo_process.py (everywhere). The world holds one
state per *moment* (0.4 simulated seconds): a nearest obstacle, a speed, a wheel effort and a
vertical acceleration, each reported by its sensor at its own rate with fresh noise, and a slip
label (std_msgs/Bool, the sign of a known linear function of the state) published label_delay
after the moment's centre, as a slip detector would. Epoch A runs from t = 1 s; then the world is
reset: /clock jumps back 3 s (within the assembler's 5 s of history: the hard case, where A's rows
of the very times B replays would still be held), and epoch B runs with new states.

Every value the test publishes is unique (noise drawn in float64), so each labeled sample the
assembler publishes names the epoch and the moment of each of its features. A sample that mixes
the epochs, or joins a label of B to a row of A, is seen as such: it holds values of A while it
arrives after the reset (A's samples have all arrived before it), or values of both.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import numpy as np
import yaml
from nav_msgs.msg import Odometry
from rclpy.qos import QoSProfile
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Imu, JointState, LaserScan
from std_msgs.msg import Bool, Float64, Float64MultiArray

from nn_one_node.ros.codecs import matrix_from_msg, matrix_to_msg
from nn_one_node.sim.scenario import accuracy

PACKAGE = 'nn_one_node'
MSG_TYPES = {'sensor_msgs/msg/LaserScan': LaserScan, 'nav_msgs/msg/Odometry': Odometry,
             'sensor_msgs/msg/JointState': JointState, 'sensor_msgs/msg/Imu': Imu,
             'std_msgs/msg/Bool': Bool}
# the state: nearest obstacle (m), speed (m/s), left wheel effort (N m), vertical accel. (m/s^2)
LOW = np.array([0.2, 0.0, 0.0, 9.81])
HIGH = np.array([10.0, 2.0, 20.0, 13.81])
NOISE = np.array([0.02, 0.01, 0.1, 0.05])
W_TRUE = np.array([-0.4, 2.0, 0.25, 0.8])
B_TRUE = -float(W_TRUE @ ((LOW + HIGH) / 2.0))  # about half the moments slip
STEP = 0.01            # simulated seconds per /clock message
MOMENT_STEPS = 40      # 0.4 s per moment
EVERY = {'scan': (5, 0), 'odom': (5, 1), 'joint_states': (5, 3), 'imu': (2, 0)}  # (steps, phase)
T0 = 1.0               # simulated time of epoch A's start
JUMP_BACK = 3.0        # how far /clock jumps back at the reset (s)


def installed_config(name: str) -> str:
    from ament_index_python.packages import get_package_share_directory
    return os.path.join(get_package_share_directory(PACKAGE), 'config', name)


def slips(clean: np.ndarray) -> np.ndarray:
    return clean @ W_TRUE + B_TRUE > 0.0


def clock_msg(t: float) -> Clock:
    msg = Clock()
    msg.clock.sec, msg.clock.nanosec = divmod(int(round(t * 1e9)), 10**9)
    return msg


@dataclass
class Epoch:
    name: str
    clean: np.ndarray                                       # (moments, 4)
    origin: Dict[float, Tuple[str, int]] = field(default_factory=dict)  # value -> (epoch, k)
    labels_sent: int = 0


class GazeboWorld:
    """Publishes what ros_gz_bridge would, on the topic names and types of the bridge config."""

    def __init__(self, ros, seed: int = 0) -> None:
        self.ros = ros
        self.rng = np.random.default_rng(seed)
        with open(installed_config('gazebo_bridge.yaml')) as f:
            bridge = yaml.safe_load(f)
        with open(installed_config('gazebo.yaml')) as f:
            self.assembler = yaml.safe_load(f)['/**/assembler']['ros__parameters']
        self.delay_steps = int(round(self.assembler['label_delay'] / STEP))
        self.topics = {e['ros_topic_name']: e['ros_type_name'] for e in bridge}
        assert self.topics.pop('/clock') == 'rosgraph_msgs/msg/Clock'
        # the bridge publishes with the default QoS: reliable, depth 10
        self.pubs = {t: ros.publisher(MSG_TYPES[kind], t, QoSProfile(depth=10))
                     for t, kind in self.topics.items()}
        self.clock = ros.publisher(Clock, '/clock', QoSProfile(depth=10))
        self.t = T0

    def wait_ready(self, clock_subscribers: int, timeout: float = 30.0) -> None:
        for pub in self.pubs.values():
            self.ros.wait_for_subscribers(pub, 1, timeout)
        self.ros.wait_for_subscribers(self.clock, clock_subscribers, timeout)

    def draw(self, name: str, moments: int) -> Epoch:
        return Epoch(name, LOW + self.rng.uniform(size=(moments, 4)) * (HIGH - LOW))

    def eval_batch(self, m: int = 200) -> Tuple[np.ndarray, np.ndarray]:
        clean = LOW + self.rng.uniform(size=(m, 4)) * (HIGH - LOW)
        X = clean + self.rng.normal(size=clean.shape) * NOISE
        return X, slips(clean).astype(np.float64)

    # ------------------------------------------------------------------------- one epoch
    def run(self, epoch: Epoch, t0: float = T0, wall_step: float = 0.004, tail_steps: int = 150,
            quiet_steps: int = 0) -> None:
        """Replay ``epoch`` from ``t0`` (/clock jumping back if it was further), then
        ``tail_steps`` more steps of the last state without labels, so every label due is out. The
        sensors are silent for the first ``quiet_steps`` (the world restarting); the labels of
        the moments they miss still come."""
        moments = len(epoch.clean)
        total = moments * MOMENT_STEPS + tail_steps
        label_step = {k * MOMENT_STEPS + MOMENT_STEPS // 2 + self.delay_steps: k
                      for k in range(moments)}
        started = time.monotonic()
        for i in range(total):
            self.t = t0 + i * STEP
            self.clock.publish(clock_msg(self.t))
            k = min(i // MOMENT_STEPS, moments - 1)
            for topic, (every, phase) in EVERY.items():
                if i >= quiet_steps and i % every == phase:
                    self._publish_sensor(topic, epoch, k)
            if i in label_step and label_step[i] < moments:
                j = label_step[i]
                self.pubs['slip'].publish(Bool(data=bool(slips(epoch.clean[j]))))
                epoch.labels_sent += 1
            deadline = started + (i + 1) * wall_step
            self.ros.executor.spin_once(timeout_sec=0.0)
            while time.monotonic() < deadline:
                self.ros.executor.spin_once(timeout_sec=max(0.0, deadline - time.monotonic()))

    def _value(self, epoch: Epoch, k: int, j: int, float32: bool = False) -> float:
        v = float(epoch.clean[k, j] + self.rng.normal() * NOISE[j])
        if float32:
            v = float(np.float32(v))
        epoch.origin[v] = (epoch.name, k)
        return v

    def _publish_sensor(self, topic: str, epoch: Epoch, k: int) -> None:
        stamp = clock_msg(self.t).clock
        if topic == 'scan':
            msg = LaserScan()
            n = 36
            msg.angle_min, msg.angle_increment = -np.pi, 2 * np.pi / n
            msg.angle_max = msg.angle_min + (n - 1) * msg.angle_increment
            msg.range_min, msg.range_max = 0.05, 30.0
            nearest = self._value(epoch, k, 0, float32=True)
            ranges = nearest + 0.5 + self.rng.uniform(0.0, 40.0, size=n)
            ranges[ranges > 30.0] = np.inf
            ranges[n // 2] = nearest
            msg.ranges = ranges.astype(np.float32).tolist()
        elif topic == 'odom':
            msg = Odometry()
            msg.child_frame_id = 'robot/base_link'
            msg.twist.twist.linear.x = self._value(epoch, k, 1)
        elif topic == 'joint_states':
            msg = JointState()
            left = self._value(epoch, k, 2)
            right = float(self.rng.uniform(0.0, 20.0))
            if self.rng.uniform() < 0.5:
                msg.name, msg.effort = ['left_wheel_joint', 'right_wheel_joint'], [left, right]
            else:
                msg.name, msg.effort = ['right_wheel_joint', 'left_wheel_joint'], [right, left]
            msg.position = [0.0, 0.0]
            msg.velocity = [0.0, 0.0]
        else:
            msg = Imu()
            msg.linear_acceleration.z = self._value(epoch, k, 3)
        msg.header.stamp = stamp
        self.pubs[topic].publish(msg)


# ------------------------------------------------------------------------------ the checks
def origins(row: np.ndarray, epochs: List[Epoch]) -> List[Tuple[str, int]]:
    """(epoch, moment) of each feature value of a labeled sample; ('?', -1) if published by no
    one."""
    out = []
    for v in row[:4]:
        found = ('?', -1)
        for e in epochs:
            if float(v) in e.origin:
                found = e.origin[float(v)]
                break
        out.append(found)
    return out


def predictor_accuracy(ros, world: GazeboWorld, features, predictions, m: int = 200) -> float:
    X, y = world.eval_batch(m)
    reply = ros.ask_until_answered(features, matrix_to_msg(X), predictions,
                                   lambda p: len(p.data) == m,
                                   'the prediction of an evaluation batch')
    return accuracy(np.asarray(reply.data), y)


def check_gazebo_learning(ros, moments_a: int = 100, moments_b: int = 30) -> Dict[str, float]:
    """Replay epoch A, check the nodes learnt; reset the world, replay epoch B; check that no
    labeled sample crosses the reset. The assembler, predictor and trainer must be running with
    use_sim_time on the default topic names."""
    world = GazeboWorld(ros)
    labeled = ros.collect(Float64MultiArray, 'labeled_samples')
    loss = ros.collect(Float64, '/trainer/loss')
    features = ros.publisher(Float64MultiArray, 'features')
    predictions = ros.collect(Float64MultiArray, 'prediction')
    world.wait_ready(clock_subscribers=3)
    ros.wait_for_subscribers(features, 1)
    ros.spin_until(lambda: ros.node.count_publishers('prediction') >= 1
                   and ros.node.count_publishers('labeled_samples') >= 1, 30.0,
                   "the predictor's and the assembler's publishers")
    # before any training: zero weights answer 0.5 for everything
    initial = predictor_accuracy(ros, world, features, predictions)

    a = world.draw('A', moments_a)
    world.run(a)
    ros.spin_for(0.5)  # A's last samples in flight (the clock stands still: nothing new comes)
    n_a = len(labeled)
    updates_a = len(loss)
    model = ros.get_parameters('/predictor', ['weights', 'bias'])
    learnt = predictor_accuracy(ros, world, features, predictions)

    b = world.draw('B', moments_b)
    # The world is reset: /clock jumps back JUMP_BACK s, less than the assembler's history, so
    # that A's last rows cover the times B replays. B's sensors are silent for its first 0.6 s
    # while the labels of its first moments come: an assembler that kept A's rows or values
    # would join those labels to them.
    world.run(b, t0=world.t - JUMP_BACK, quiet_steps=60)
    ros.spin_for(0.5)
    samples = [matrix_from_msg(m, 5) for m in labeled]
    rows_a = np.vstack(samples[:n_a]) if n_a else np.zeros((0, 5))
    rows_b = np.vstack(samples[n_a:]) if len(samples) > n_a else np.zeros((0, 5))

    exact = {'A': 0, 'B': 0}
    for part, rows, epoch in (('A', rows_a, a), ('B', rows_b, b)):
        truth = slips(epoch.clean)
        for row in rows:
            where = origins(row, [a, b])
            names = {e for e, _ in where}
            assert names == {part}, (
                f'a labeled sample {"received before" if part == "A" else "after"} the reset '
                f'holds values of {sorted(names)} (feature origins {where})')
            ks = {k for _, k in where}
            if len(ks) == 1 and bool(row[4]) == bool(truth[ks.pop()]):
                exact[part] += 1
    return {'initial_accuracy': initial, 'accuracy': learnt, 'weights': model['weights'],
            'bias': model['bias'], 'samples_a': len(rows_a), 'samples_b': len(rows_b),
            'labels_a': a.labels_sent, 'labels_b': b.labels_sent, 'exact_a': exact['A'],
            'exact_b': exact['B'], 'updates_a': updates_a, 'updates_b': len(loss) - updates_a}


def standardized_cosine(weights) -> float:
    """Cosine between the learnt and the true weights per standard deviation of each input."""
    std = (HIGH - LOW) / np.sqrt(12.0)
    w = np.asarray(weights, dtype=np.float64) * std
    t = W_TRUE * std
    return float(w @ t / (np.linalg.norm(w) * np.linalg.norm(t) + 1e-300))


def assert_learnt_without_crossing(r: Dict[str, float]) -> None:
    """What both tests require of ``check_gazebo_learning``'s result."""
    assert r['initial_accuracy'] < 0.7  # 0.5 for everything: about the share of slips
    assert r['updates_a'] >= 5, r
    assert r['accuracy'] >= 0.85, r
    assert standardized_cosine(r['weights']) > 0.8, r
    for part in ('a', 'b'):
        assert r[f'samples_{part}'] >= 0.5 * r[f'labels_{part}'], r  # the join works at all
        assert r[f'exact_{part}'] >= 0.8 * r[f'samples_{part}'], r  # each label to its moment
    assert r['updates_b'] >= 2, r  # the trainer goes on after the reset
