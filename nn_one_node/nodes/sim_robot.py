"""The simulated robot node: the wheel-slip scenario as the typed topics of a real robot.

Where ``sim_sensor`` publishes ready-made feature rows, ``sim_robot`` publishes what a robot's
drivers publish, each sensor at its own rate with the header stamp of its reading, and the slip
label on topics of its own, late (robot_scenario.py has the encodings and the timing):

* ``scan`` (sensor_msgs/LaserScan): the nearest return is the lidar_range feature;
* ``odom`` (nav_msgs/Odometry): ``twist.twist.linear.x`` is the speed;
* ``joint_states`` (sensor_msgs/JointState): ``effort[left_wheel_joint]`` is the motor current
  (the two wheel joints come in varying order);
* ``imu`` (sensor_msgs/Imu): ``linear_acceleration.z`` is the RMS vertical vibration, in g;
* ``temperature`` (sensor_msgs/Temperature): the tyre temperature;
* ``slip`` (std_msgs/Bool, whether the wheel slipped) and ``slip_probability`` (std_msgs/Float64,
  the true probability), ``label_delay`` seconds after the centre of the moment they describe.

With ``profile`` set (``turtlebot3``, ``jackal``: sim/profiles.py) it imitates that example robot
instead: its topics, types, rates, scan geometry and battery, and a Bool label from a hidden rule
(ros/profile_publisher.py publishes them; config/<profile>.yaml is the assembler's side).

Sensors use sensor-data QoS (best effort), the labels reliable QoS (training data); both can be
overridden with ``qos_overrides`` parameters. Every timer runs on ROS time: with ``use_sim_time``
nothing is published until ``/clock`` ticks, and when ``/clock`` jumps back a new timeline starts
(new states; the labels pending from before the jump are dropped).
"""

from __future__ import annotations

import sys
from array import array
from typing import Any, Dict, List, Optional

from nav_msgs.msg import Odometry
from rcl_interfaces.msg import SetParametersResult
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import Imu, JointState, LaserScan, Temperature
from std_msgs.msg import Bool, Float64

from nn_one_node.parameters import ParamSpec, off_or_at_least, one_of
from nn_one_node.ros.params import declare, validate
from nn_one_node.ros.profile_publisher import ProfilePublisher
from nn_one_node.sim.profile_robot import ProfileRobot
from nn_one_node.sim.profiles import PROFILES
from nn_one_node.sim.robot_scenario import RANGE_MAX, RANGE_MIN, RobotScenario, too_slow
from nn_one_node.ros.runtime import executor_param, run
from nn_one_node.ros.stopping import QuietStopNode

MAX_RATE_HZ = 1000.0
MIN_RATE_HZ = 1e-3  # below, 1 / rate overflows a timer's int64 nanoseconds
LABEL_DEPTH = 100
# (topic, rate parameter, default Hz, what it is)
SENSOR_TOPICS = (
    ('scan', 'scan_rate', 25.0, 'sensor_msgs/LaserScan'),
    ('odom', 'odom_rate', 50.0, 'nav_msgs/Odometry'),
    ('joint_states', 'joint_states_rate', 50.0, 'sensor_msgs/JointState'),
    ('imu', 'imu_rate', 100.0, 'sensor_msgs/Imu'),
    ('temperature', 'temperature_rate', 25.0, 'sensor_msgs/Temperature'),
)
FRAMES = {'scan': 'base_scan', 'odom': 'odom', 'imu': 'imu_link',
          'temperature': 'tyre_temperature_link'}
CHILD_FRAME = 'base_link'


def sim_robot_params() -> List[ParamSpec]:
    """The simulated robot's parameter table."""
    rates = [
        ParamSpec(param, default,
                  f'Messages per second (ROS time) on {topic} ({kind}); 0 publishes none. '
                  'Read at start.', read_only=True, float_range=(0.0, MAX_RATE_HZ),
                  constraints=f'0 or >= {MIN_RATE_HZ:g}', check=off_or_at_least(MIN_RATE_HZ))
        for topic, param, default, kind in SENSOR_TOPICS]
    return [
        ParamSpec('profile', '',
                  "The robot to imitate: '' (the wheel-slip robot, the other parameters apply), "
                  + ', '.join(f"'{name}'" for name in PROFILES) + ' (its topics, rates and '
                  'timing as doc/nodes/sim_robot.md lists them; seed still applies). Read at '
                  'start.', read_only=True,
                  constraints=' | '.join(f"'{c}'" for c in ('', *PROFILES)),
                  check=one_of('', *PROFILES)),
        ParamSpec('seed', 0, "Seed of the scenario's random draws: the same seed, the same "
                  'moments and noise. Read at start.', read_only=True, int_range=(0, 2**31 - 1)),
        ParamSpec('moment_period', 0.2,
                  "Seconds (ROS time) one state of the robot holds: one draw of the scenario's "
                  'clean readings and slip, reported by every sensor with fresh noise. Read at '
                  'start.', read_only=True, float_range=(0.01, 3600.0)),
        ParamSpec('label_delay', 1.0,
                  "Seconds (ROS time) from the centre of a moment to the publication of its "
                  "label on slip and slip_probability; give the assembler's label_delay the same "
                  'value. Read at start.', read_only=True, float_range=(0.0, 3600.0)),
        *rates,
        ParamSpec('scan_beams', 360, 'Beams per scan, over [-pi, pi); the nearest return is '
                  'one of the beams ahead.', int_range=(1, 100_000)),
        ParamSpec('no_return_fraction', 0.2,
                  'Fraction of the other beams that see nothing (+inf, as a lidar reports no '
                  'return within range_max).', float_range=(0.0, 1.0)),
        executor_param(),
    ]


class SimRobotNode(QuietStopNode):
    """Publishes the scenario as a robot's typed sensor topics and late slip labels."""

    def __init__(self, node_name: str = 'sim_robot', **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self._specs = sim_robot_params()
        self._values: Dict[str, Any] = declare(self, self._specs)
        v = self._values
        self.published: Dict[str, int] = {}
        self._last_jumps = 0
        self.add_on_set_parameters_callback(self._on_set_parameters)
        if v['profile']:
            self._start_profile(v['profile'], v['seed'])
            return
        self.robot = RobotScenario(v['seed'], v['moment_period'], v['label_delay'],
                                   v['scan_beams'], v['no_return_fraction'])

        def publisher(msg_type, topic: str, qos):
            self.published[topic] = 0
            return self.create_publisher(
                msg_type, topic, qos,
                qos_overriding_options=QoSOverridingOptions.with_default_policies())

        sensor_qos = qos_profile_sensor_data
        self._pubs = {
            'scan': publisher(LaserScan, 'scan', sensor_qos),
            'odom': publisher(Odometry, 'odom', sensor_qos),
            'joint_states': publisher(JointState, 'joint_states', sensor_qos),
            'imu': publisher(Imu, 'imu', sensor_qos),
            'temperature': publisher(Temperature, 'temperature', sensor_qos),
            'slip': publisher(Bool, 'slip', QoSProfile(depth=LABEL_DEPTH)),
            'slip_probability': publisher(Float64, 'slip_probability',
                                          QoSProfile(depth=LABEL_DEPTH)),
        }
        callbacks = {'scan': self.publish_scan, 'odom': self.publish_odom,
                     'joint_states': self.publish_joint_states, 'imu': self.publish_imu,
                     'temperature': self.publish_temperature}
        # create_timer uses the node's clock: ROS time, which follows /clock with use_sim_time.
        self._timers = []
        rates = {}
        for topic, param, _, _ in SENSOR_TOPICS:
            rates[topic] = v[param]
            if v[param] > 0.0:
                self._timers.append(self.create_timer(1.0 / v[param], callbacks[topic]))
        # Labels are looked at ten times a moment: each is out within a tenth of a moment of its
        # due time, whatever the phase of the timers after a jump of the clock.
        self._timers.append(self.create_timer(v['moment_period'] / 10.0, self.publish_labels))

        summary = ', '.join(f'{self.resolve_topic_name(t)} {r:g} Hz' for t, r in rates.items())
        self.get_logger().info(
            f'simulating a robot ({summary}); a new state every {v["moment_period"]:g} s, its '
            f'label on {self.resolve_topic_name("slip")} and '
            f'{self.resolve_topic_name("slip_probability")} {v["label_delay"]:g} s after it')
        slow = too_slow(rates, v['moment_period'])
        if slow:
            self.get_logger().warning(
                f'{", ".join(slow)}: too slow to report every moment of {v["moment_period"]:g} s '
                'before its centre, which its label describes (rows at 50 Hz): expect labels '
                'joined to stale or mixed readings')

    def _start_profile(self, name: str, seed: int) -> None:
        """Imitate the example robot ``name``: its streams, from ProfileRobot's values."""
        self.robot = ProfileRobot(name, seed)
        profile = self.robot.profile
        for stream in profile.streams:
            self.published[stream.topic] = 0
        self._profile = ProfilePublisher(self, self.robot, self._publish)
        self._pubs, self._timers = self._profile.publishers, self._profile.timers
        self.get_logger().info(
            f'imitating {profile.imitates} (profile {name}: {self._profile.summary()}); a new '
            f'state every {profile.moment_period:g} s, its label on '
            f'{self.resolve_topic_name(profile.label.topic)} {profile.label_delay:g} s after '
            'it; the rate, moment_period and label_delay parameters do not apply')

    def _on_set_parameters(self, params) -> SetParametersResult:
        result, merged = validate(self._specs, self._values, params)
        if result.successful:
            self._values = merged
            self.robot.scan_beams = merged['scan_beams']
            self.robot.no_return_fraction = merged['no_return_fraction']
        else:
            self.get_logger().warning(f'parameter change refused: {result.reason}')
        return result

    # ------------------------------------------------------------------------ publishing
    def _now(self):
        stamp = self.get_clock().now()
        return stamp.to_msg(), stamp.nanoseconds * 1e-9

    def _publish(self, topic: str, msg) -> None:
        self._pubs[topic].publish(msg)
        self.published[topic] += 1
        if self.robot.jumps != self._last_jumps:
            self._last_jumps = self.robot.jumps
            self.get_logger().info(
                'ROS time jumped back: a new timeline of states starts; the labels pending '
                'from before the jump are dropped')

    def publish_scan(self) -> None:
        stamp, now = self._now()
        ranges = self.robot.scan_ranges(now)
        n = len(ranges)
        msg = LaserScan()
        msg.header.stamp = stamp
        msg.header.frame_id = FRAMES['scan']
        msg.angle_min = -3.141592653589793
        msg.angle_increment = 2.0 * 3.141592653589793 / n
        msg.angle_max = msg.angle_min + (n - 1) * msg.angle_increment
        msg.scan_time = 1.0 / self._values['scan_rate']
        msg.time_increment = msg.scan_time / n
        msg.range_min = RANGE_MIN
        msg.range_max = RANGE_MAX
        msg.ranges = array('f', ranges.tobytes())
        self._publish('scan', msg)

    def publish_odom(self) -> None:
        stamp, now = self._now()
        x, speed, variance = self.robot.odometry(now)
        msg = Odometry()
        msg.header.stamp = stamp
        msg.header.frame_id = FRAMES['odom']
        msg.child_frame_id = CHILD_FRAME
        msg.pose.pose.position.x = x
        msg.pose.pose.orientation.w = 1.0
        msg.twist.twist.linear.x = speed
        cov = [0.0] * 36
        cov[0] = variance
        msg.twist.covariance = cov
        self._publish('odom', msg)

    def publish_joint_states(self) -> None:
        stamp, now = self._now()
        names, positions, velocities, efforts = self.robot.wheels(now)
        msg = JointState()
        msg.header.stamp = stamp
        msg.name = names
        msg.position = positions
        msg.velocity = velocities
        msg.effort = efforts
        self._publish('joint_states', msg)

    def publish_imu(self) -> None:
        stamp, now = self._now()
        vibration, variance = self.robot.vibration(now)
        msg = Imu()
        msg.header.stamp = stamp
        msg.header.frame_id = FRAMES['imu']
        msg.orientation_covariance[0] = -1.0  # no orientation estimate (REP 145)
        msg.linear_acceleration.z = vibration
        msg.linear_acceleration_covariance[8] = variance
        self._publish('imu', msg)

    def publish_temperature(self) -> None:
        stamp, now = self._now()
        value, variance = self.robot.temperature(now)
        msg = Temperature()
        msg.header.stamp = stamp
        msg.header.frame_id = FRAMES['temperature']
        msg.temperature = value
        msg.variance = variance
        self._publish('temperature', msg)

    def publish_labels(self) -> None:
        _, now = self._now()
        for label in self.robot.labels_due(now):
            self._publish('slip', Bool(data=label.slip))
            self._publish('slip_probability', Float64(data=label.probability))


def main(args: Optional[List[str]] = None) -> None:
    sys.exit(run(SimRobotNode, args))


if __name__ == '__main__':
    main()
