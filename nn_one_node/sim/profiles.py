"""The example robots sim_robot imitates (its ``profile`` parameter): topics, rates, a scan's
geometry, a battery, and the hidden rule behind each robot's late label. No ROS import.

A profile is what ``config/<profile>.yaml`` is written against: the topics (relative names, so a
namespace moves them all), their message types and rates as the real robot publishes them, and
the *features* its assembler entries read, each with its weight in the rule. The rule is one
sigmoid neuron of the clean features, as in the wheel-slip scenario (``scenario.py``)::

    p = sigmoid(sum(feature.weight * clean value) + bias),   label ~ Bernoulli(p)

so the course's model can learn it exactly from the entries as shipped; a feature of weight 0 is
one the model must learn to ignore (the battery, a clock-like input that drains slowly). The
state of each *moment* (``moment_period`` s) is a uniform draw of the profile's variables
(``profile_robot.py`` turns it into messages).

>>> tb3 = PROFILES['turtlebot3']
>>> [s.topic for s in tb3.streams]
['scan', 'odom', 'imu', 'joint_states', 'battery_state', 'bumper']
>>> tb3.entries()[0]
'scan sensor_msgs/msg/LaserScan min(ranges@-30:30)'
>>> tb3.logit({'front': 0.2, 'speed': 0.2, 'effort': 0.5, 'yaw_rate': 0.0,
...            'voltage': 12.0}) > 0       # near and fast: a bump is likely
True
>>> sorted(PROFILES)
['jackal', 'turtlebot3']
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict, Mapping, Tuple

SENSOR_KINDS = ('scan', 'odom', 'imu', 'joint_states', 'battery')


@dataclass(frozen=True)
class Stream:
    """One topic the robot publishes: ``kind`` says what it carries (a sensor kind, or
    ``label``), ``rate`` its messages per second (a label: one per moment)."""

    kind: str
    topic: str
    msg_type: str
    rate: float
    reliable: bool  # QoS: reliable (depth 10; a label 100) or sensor data (best effort)
    frame_id: str = ''


@dataclass(frozen=True)
class Variable:
    """A quantity of the robot's state, drawn uniformly in [low, high] each moment."""

    name: str
    unit: str
    low: float
    high: float
    meaning: str


@dataclass(frozen=True)
class Feature:
    """What one assembler entry reads: its clean value from the state, the noise its message
    adds, and its weight in the hidden rule (per unit of the feature)."""

    entry: str
    clean: Callable[[Mapping[str, float]], float]
    noise_std: float
    weight: float
    meaning: str


@dataclass(frozen=True)
class Lidar:
    """A 2D lidar's geometry and how it reports what it does not see.

    ``dropout``: the fraction of beams that report ``dropout_value`` (a dropout: 0.0, below
    range_min, as the LDS-01 does; or NaN); a beam with nothing within range_max reports
    ``no_return_value`` (+inf, REP 117). The nearest thing ahead lies on one beam within
    ``front_deg`` of angle 0, every other beam within ``clear_deg`` of it farther; the sides
    hold nearer walls (so that ``min(ranges)`` of the whole scan is no front distance).
    """

    beams: int
    angle_min: float
    angle_increment: float
    range_min: float
    range_max: float
    dropout: float
    dropout_value: float
    no_return_value: float = math.inf
    front_deg: float = 25.0
    clear_deg: float = 35.0


@dataclass(frozen=True)
class Battery:
    """A battery that drains linearly from ``full`` (V) by ``drain`` V/s from the first
    message of a timeline: a clock-like input."""

    full: float
    drain: float
    empty: float  # V at 0 %


@dataclass(frozen=True)
class Profile:
    name: str
    imitates: str
    streams: Tuple[Stream, ...]
    variables: Tuple[Variable, ...]
    features: Tuple[Feature, ...]
    bias: float
    moment_period: float  # s: one state, one label
    label_delay: float  # s from a moment's centre to its label
    joints: Tuple[str, ...]  # the wheel joints, in the order the driver publishes them
    wheel_radius: float  # m
    lidar: Lidar
    battery: Battery
    effort: bool  # whether joint_states fills effort (the first joint's is the state's)
    unconfirmed: Tuple[str, ...]  # what the imitation could not check against the robot

    def stream(self, kind: str) -> Stream:
        (s,) = [s for s in self.streams if s.kind == kind]
        return s

    @property
    def label(self) -> Stream:
        return self.stream('label')

    def entries(self) -> list:
        """The assembler's feature entries, in row order."""
        return [f.entry for f in self.features]

    def label_entry(self) -> str:
        return f'{self.label.topic} {self.label.msg_type} data'

    def clean_features(self, state: Mapping[str, float]) -> list:
        return [float(f.clean(state)) for f in self.features]

    def logit(self, state: Mapping[str, float]) -> float:
        return sum(f.weight * f.clean(state) for f in self.features) + self.bias

    def sensor_rates(self) -> Dict[str, float]:
        """Messages per second of each topic that reports a moment (the battery does not:
        it drains whatever the moment)."""
        return {s.topic: s.rate for s in self.streams if s.kind in SENSOR_KINDS
                and s.kind != 'battery'}


def _var(name: str) -> Callable[[Mapping[str, float]], float]:
    return lambda state: state[name]


DEG = math.pi / 180.0

# TurtleBot3 Burger: turtlebot3_node (ROBOTIS-GIT/turtlebot3) and the LDS-01 driver
# (hls_lfcd_lds_driver): 360 beams from angle_min 0, range 0.12..3.5 m, a dropout as 0.0.
TURTLEBOT3 = Profile(
    name='turtlebot3',
    imitates='ROBOTIS TurtleBot3 Burger (turtlebot3_bringup robot.launch.py)',
    streams=(
        Stream('scan', 'scan', 'sensor_msgs/msg/LaserScan', 5.0, False, 'base_scan'),
        Stream('odom', 'odom', 'nav_msgs/msg/Odometry', 30.0, True, 'odom'),
        Stream('imu', 'imu', 'sensor_msgs/msg/Imu', 100.0, True, 'imu_link'),
        Stream('joint_states', 'joint_states', 'sensor_msgs/msg/JointState', 30.0, True,
               'base_link'),
        Stream('battery', 'battery_state', 'sensor_msgs/msg/BatteryState', 1.0, True),
        Stream('label', 'bumper', 'std_msgs/msg/Bool', 0.0, True),
    ),
    variables=(
        Variable('front', 'm', 0.15, 2.5, 'the nearest thing ahead (within 25 degrees of 0)'),
        Variable('speed', 'm/s', 0.0, 0.22, 'forward speed (a Burger tops at 0.22 m/s)'),
        Variable('effort', 'N m', 0.0, 1.0, "the left wheel motor's load"),
        Variable('effort_right', 'N m', 0.0, 1.0, "the right wheel motor's load (no part of "
                 'the rule)'),
        Variable('yaw_rate', 'rad/s', -1.0, 1.0, 'turning rate'),
    ),
    features=(
        Feature('scan sensor_msgs/msg/LaserScan min(ranges@-30:30)', _var('front'), 0.01, -6.0,
                'nearest thing ahead, m (the sector wraps around the ends of the scan)'),
        Feature('odom nav_msgs/msg/Odometry twist.twist.linear.x', _var('speed'), 0.005, 60.0,
                'forward speed, m/s'),
        Feature('joint_states sensor_msgs/msg/JointState effort[wheel_left_joint]',
                _var('effort'), 0.02, 3.0, 'left wheel motor load'),
        Feature('imu sensor_msgs/msg/Imu angular_velocity.z', _var('yaw_rate'), 0.01, 0.0,
                'turning rate, rad/s (no part of the rule)'),
        Feature('battery_state sensor_msgs/msg/BatteryState voltage max_age=2.0',
                _var('voltage'), 0.01, 0.0, 'battery voltage, V (drains slowly: no part of the '
                'rule)'),
    ),
    bias=-0.15,
    moment_period=0.5,
    label_delay=0.5,
    joints=('wheel_left_joint', 'wheel_right_joint'),
    wheel_radius=0.033,
    lidar=Lidar(360, 0.0, 2.0 * math.pi / 360.0, 0.12, 3.5, 0.1, 0.0),
    battery=Battery(12.4, 0.0005, 11.0),
    effort=True,
    unconfirmed=(
        'the rates: turtlebot3_node publishes joint_states, imu and battery_state from one '
        '50 ms timer (20 Hz) and odom per joint_states message; 30 Hz odometry and joint '
        "states, 100 Hz IMU and a 1 Hz battery are the simulation's and issue 24's figures",
        "joint effort: turtlebot3_node's joint_state.cpp leaves effort empty (its current "
        'reading is commented out); the Gazebo simulation fills it',
        'the bumper: no TurtleBot3 topic; a Bool of your own bump detector, 0.5 s late',
        'the scan QoS (sensor data here); the other topics are reliable depth 10 as in '
        'turtlebot3_node',
    ),
)

JACKAL_WHEEL_RADIUS = 0.098  # m

# A Clearpath Jackal (J100) on the Clearpath ROS 2 stack: its topics live under the robot's
# namespace (e.g. /j100_0000/platform/odom/filtered), so the relative names here are theirs.
JACKAL = Profile(
    name='jackal',
    imitates='Clearpath Jackal J100 (Clearpath ROS 2 platform and sensors API)',
    streams=(
        Stream('scan', 'sensors/lidar2d_0/scan', 'sensor_msgs/msg/LaserScan', 10.0, True,
               'lidar2d_0_laser'),
        Stream('odom', 'platform/odom/filtered', 'nav_msgs/msg/Odometry', 50.0, True, 'odom'),
        Stream('imu', 'sensors/imu_0/data', 'sensor_msgs/msg/Imu', 50.0, False, 'imu_0_link'),
        Stream('joint_states', 'platform/joint_states', 'sensor_msgs/msg/JointState', 50.0,
               True, ''),
        Stream('battery', 'platform/bms/state', 'sensor_msgs/msg/BatteryState', 1.0, False),
        Stream('label', 'slip', 'std_msgs/msg/Bool', 0.0, True),
    ),
    variables=(
        Variable('front', 'm', 0.3, 8.0, 'the nearest thing ahead'),
        Variable('speed', 'm/s', 0.0, 1.0, 'forward speed over ground'),
        Variable('slip_speed', 'm/s', -0.2, 0.8, 'how much faster the wheels turn than the '
                 'robot moves'),
        Variable('yaw_rate', 'rad/s', -1.0, 1.0, 'turning rate'),
    ),
    features=(
        Feature('sensors/lidar2d_0/scan sensor_msgs/msg/LaserScan min(ranges@-30:30)',
                _var('front'), 0.01, 0.0, 'nearest thing ahead, m (no part of the rule)'),
        Feature('platform/odom/filtered nav_msgs/msg/Odometry twist.twist.linear.x',
                _var('speed'), 0.01, -12.0, 'forward speed over ground, m/s'),
        Feature('platform/joint_states sensor_msgs/msg/JointState '
                'velocity[front_left_wheel_joint]',
                lambda s: (s['speed'] + s['slip_speed']) / JACKAL_WHEEL_RADIUS, 0.05,
                12.0 * JACKAL_WHEEL_RADIUS, 'front left wheel speed, rad/s'),
        Feature('sensors/imu_0/data sensor_msgs/msg/Imu angular_velocity.z', _var('yaw_rate'),
                0.01, 0.0, 'turning rate, rad/s (no part of the rule)'),
        Feature('platform/bms/state sensor_msgs/msg/BatteryState voltage max_age=3.0',
                _var('voltage'), 0.02, 0.0, 'battery voltage, V (no part of the rule)'),
    ),
    bias=-3.6,
    moment_period=0.4,
    label_delay=1.0,
    joints=('front_left_wheel_joint', 'front_right_wheel_joint', 'rear_left_wheel_joint',
            'rear_right_wheel_joint'),
    wheel_radius=JACKAL_WHEEL_RADIUS,
    lidar=Lidar(1081, -135.0 * DEG, 0.25 * DEG, 0.06, 10.0, 0.05, math.nan),
    battery=Battery(28.8, 0.001, 24.0),
    effort=False,
    unconfirmed=(
        'the rates (50 Hz odometry, joint states and IMU, a 1 Hz battery, a 10 Hz lidar)',
        'the joint names (those of the ROS 1 jackal_description) and their order',
        'the lidar (a Hokuyo UST-10LX-like 270 degree scan of 1081 beams, 0.06..10 m, a '
        'dropout as NaN)',
        "the battery voltage's range",
        'the slip label: no Clearpath topic; a Bool of your own slip detector, 1 s late',
    ),
)
PROFILES: Dict[str, Profile] = {p.name: p for p in (TURTLEBOT3, JACKAL)}
