"""Bags for the nn_one_bag tests and benchmark, written with rosbags' Writer (no ROS needed).

* ``write_labeled_bag``: labeled_samples arrays (Float64MultiArray batches of the scenario's
  rows, N features + label), as the trainer receives them.
* ``write_robot_bag``: the robot path's typed topics (sensor_msgs Imu, JointState, LaserScan,
  nav_msgs Odometry) carrying the wheel-slip scenario's features, and its label on /slip
  (std_msgs/Float64, late by ``label_delay``); ``ROBOT_ASSEMBLER`` is the assembler section that
  reads them back into the scenario's five features.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional

import numpy as np

from nn_one_node.offline.bagio import BagWriter
from nn_one_node.sim.scenario import Scenario

NS = 1_000_000_000
JOINTS = ['left_wheel_joint', 'right_wheel_joint']


def labeled_msg(bag: BagWriter, rows: np.ndarray, layout: bool = True) -> Any:
    rows = np.ascontiguousarray(rows, dtype=np.float64)
    m, cols = rows.shape
    dims = []
    if layout:
        dims = [bag.make('std_msgs/msg/MultiArrayDimension', label='samples', size=m,
                         stride=m * cols),
                bag.make('std_msgs/msg/MultiArrayDimension', label='features+label',
                         size=cols, stride=cols)]
    return bag.make('std_msgs/msg/Float64MultiArray',
                    layout=bag.make('std_msgs/msg/MultiArrayLayout', dim=dims, data_offset=0),
                    data=rows.reshape(-1).copy())


def write_labeled_bag(path, storage: str = 'mcap', seconds: float = 30.0, rate: float = 2.0,
                      batch: int = 50, seed: int = 0, start_s: float = 100.0,
                      topic: str = '/labeled_samples', bernoulli: bool = False) -> Scenario:
    """Labeled arrays at ``rate`` messages/s of ``batch`` scenario rows; returns the scenario."""
    s = Scenario(seed=seed, bernoulli=bernoulli)
    with BagWriter(path, storage) as bag:
        for k in range(int(seconds * rate)):
            t = int((start_s + k / rate) * NS)
            bag.write(topic, 'std_msgs/msg/Float64MultiArray', t,
                      labeled_msg(bag, s.labeled_rows(batch)))
    return s


def _stamp(bag: BagWriter, t_ns: int) -> Any:
    return bag.make('std_msgs/msg/Header',
                    stamp=bag.make('builtin_interfaces/msg/Time', sec=t_ns // NS,
                                   nanosec=t_ns % NS), frame_id='base_link')


# The assembler section that reads the robot bag's topics back into the scenario's features
# (lidar_range, speed, motor_current, imu_vibration, temperature).
ROBOT_FEATURES = [
    '/scan sensor_msgs/msg/LaserScan min(ranges)',
    '/odom nav_msgs/msg/Odometry twist.twist.linear.x',
    '/joint_states sensor_msgs/msg/JointState effort[left_wheel_joint]',
    '/imu sensor_msgs/msg/Imu linear_acceleration.z',
    '/joint_states sensor_msgs/msg/JointState position[right_wheel_joint]',
]
ROBOT_LABEL = '/slip std_msgs/msg/Float64 data'


def robot_params(rate: float = 20.0, label_delay: float = 0.5, max_age: float = 0.5,
                 extra_assembler: Optional[Dict[str, Any]] = None,
                 extra_trainer: Optional[Dict[str, Any]] = None,
                 relative: bool = False) -> Dict[str, Any]:
    """A params file document for the robot bag: assembler and trainer sections; ``relative``:
    its topic names relative (``scan``, as config/robot.yaml writes them), not absolute."""
    features, label = list(ROBOT_FEATURES), ROBOT_LABEL
    if relative:
        features, label = [f[1:] for f in features], label[1:]
    assembler = {'features': features, 'label': label, 'rate': rate,
                 'max_age': max_age, 'label_delay': label_delay, 'max_join_gap': 0.1,
                 'history': 5.0}
    assembler.update(extra_assembler or {})
    trainer = {'num_features': 5, 'train_period': 1.0, 'min_samples': 10}
    trainer.update(extra_trainer or {})
    return {'/**/assembler': {'ros__parameters': assembler},
            '/**/trainer': {'ros__parameters': trainer},
            '/**/predictor': {'ros__parameters': {'num_features': 5}}}


def write_robot_bag(path, storage: str = 'mcap', seconds: float = 20.0, seed: int = 0,
                    start_s: float = 100.0, imu_hz: float = 200.0, joint_hz: float = 50.0,
                    scan_hz: float = 20.0, odom_hz: float = 50.0, state_hz: float = 4.0,
                    label_delay: float = 0.5, ranges: int = 90,
                    label_topic: str = '/slip', truth_seed: Optional[int] = None,
                    namespace: str = '') -> Scenario:
    """Typed robot topics over ``seconds`` of receive time from ``start_s``, under
    ``namespace`` (e.g. '/robot1': /robot1/imu, ..., and the label topic under it too).

    The robot's state (a scenario sample: clean sensor readings and its slip probability)
    changes ``state_hz`` times a second; each sensor publishes that state's reading, with the
    scenario's noise, at its own rate, header-stamped with its receive time; the label (the slip
    probability of the state) of time t is published at t + ``label_delay``, stamped t (the
    moment it is the label of).
    """
    s = Scenario(seed=seed)
    states = int(seconds * state_hz)
    X_clean = s.clean(states)
    p = s.probability(X_clean)
    rng = np.random.default_rng(seed + 1 if truth_seed is None else truth_seed)
    noise = np.array([sn.noise_std for sn in __import__('nn_one_node.sim.scenario',
                                                        fromlist=['SENSORS']).SENSORS])
    t0 = int(start_s * NS)
    end = t0 + int(seconds * NS)
    state_ns = int(NS / state_hz)
    events = []  # (t_ns, order, kind)

    def every(hz: float, kind: str, order: int) -> None:
        step = int(NS / hz)
        t = t0 + step // 3 + order  # off the tick grid, distinct per topic
        while t < end:
            events.append((t, order, kind))
            t += step

    every(imu_hz, 'imu', 1)
    every(joint_hz, 'joint', 2)
    every(scan_hz, 'scan', 3)
    every(odom_hz, 'odom', 4)
    for k in range(states):
        t = t0 + k * state_ns + state_ns // 2 + int(label_delay * NS)
        if t < end:
            events.append((t, 5, ('label', k)))
    events.sort(key=lambda e: (e[0], e[1]))
    with BagWriter(path, storage) as bag:
        mk = bag.make
        zeros9 = np.zeros(9)
        for t, _order, kind in events:
            if isinstance(kind, tuple):
                k = kind[1]
                stamp_ns = t0 + k * state_ns + state_ns // 2
                bag.write(namespace + label_topic, 'std_msgs/msg/Float64', t,
                          mk('std_msgs/msg/Float64', data=float(p[k])))
                del stamp_ns
                continue
            k = min((t - t0) // state_ns, states - 1)
            x = X_clean[k] + rng.normal(0.0, 1.0, size=5) * noise
            head = _stamp(bag, t)
            if kind == 'imu':
                bag.write(namespace + '/imu', 'sensor_msgs/msg/Imu', t, mk(
                    'sensor_msgs/msg/Imu', header=head,
                    orientation=mk('geometry_msgs/msg/Quaternion', w=1.0),
                    orientation_covariance=zeros9, angular_velocity_covariance=zeros9,
                    linear_acceleration_covariance=zeros9,
                    linear_acceleration=mk('geometry_msgs/msg/Vector3', x=0.0, y=0.0,
                                           z=float(x[3]))))
            elif kind == 'joint':
                bag.write(namespace + '/joint_states', 'sensor_msgs/msg/JointState', t, mk(
                    'sensor_msgs/msg/JointState', header=head,
                    name=list(JOINTS) if k % 2 else list(reversed(JOINTS)),
                    position=np.array([0.0, float(x[4])] if k % 2 else [float(x[4]), 0.0]),
                    velocity=np.zeros(2),
                    effort=np.array([float(x[2]), 1.0] if k % 2 else [1.0, float(x[2])])))
            elif kind == 'scan':
                r = np.full(ranges, 30.0, dtype=np.float32)
                r[::7] = np.inf  # no return
                r[ranges // 2] = x[0]
                bag.write(namespace + '/scan', 'sensor_msgs/msg/LaserScan', t, mk(
                    'sensor_msgs/msg/LaserScan', header=head, angle_min=-1.5, angle_max=1.5,
                    angle_increment=3.0 / ranges, range_min=0.05, range_max=40.0, ranges=r,
                    intensities=np.zeros(0, dtype=np.float32)))
            else:
                twist = mk('geometry_msgs/msg/TwistWithCovariance',
                           twist=mk('geometry_msgs/msg/Twist',
                                    linear=mk('geometry_msgs/msg/Vector3', x=float(x[1])),
                                    angular=mk('geometry_msgs/msg/Vector3')),
                           covariance=np.zeros(36))
                bag.write(namespace + '/odom', 'nav_msgs/msg/Odometry', t, mk(
                    'nav_msgs/msg/Odometry', header=head, child_frame_id='base_link',
                    twist=twist))
    return s


def write_params(path, document: Dict[str, Any]) -> str:
    import yaml
    with open(path, 'w', encoding='utf-8') as f:
        yaml.safe_dump(document, f, sort_keys=False)
    return os.fspath(path)
