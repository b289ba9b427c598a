"""sim_robot's example robots as typed messages: the publishers, timers and messages of a
``profile`` (``sim/profiles.py``; the values come from ``sim/profile_robot.py``).

Each stream of the profile gets a publisher under its relative name (so a namespace moves them
all), with the QoS the real driver uses (reliable depth 10, or sensor data) and overridable
(``qos_overrides``), and a timer at its rate on ROS time; the label is a std_msgs/Bool, looked
for ten times a moment and published once due, reliable with depth 100.
"""

from __future__ import annotations

import math
from array import array
from typing import Any, Callable, Dict, List

from nav_msgs.msg import Odometry
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import BatteryState, Imu, JointState, LaserScan
from std_msgs.msg import Bool

from nn_one_node.sim.profile_robot import ProfileRobot

LABEL_DEPTH = 100
SENSOR_DEPTH = 10
CHILD_FRAME = 'base_link'
_TYPES = {'scan': LaserScan, 'odom': Odometry, 'imu': Imu, 'joint_states': JointState,
          'battery': BatteryState, 'label': Bool}


class ProfilePublisher:
    """Publishes ``robot``'s streams from ``node``; ``publish(topic, msg)`` sends one message
    (the node counts it)."""

    def __init__(self, node, robot: ProfileRobot, publish: Callable[[str, Any], None]) -> None:
        self.node = node
        self.robot = robot
        self.profile = robot.profile
        self._send = publish
        self.publishers: Dict[str, Any] = {}
        self.timers: List[Any] = []
        fill = {'scan': self._scan, 'odom': self._odom, 'imu': self._imu,
                'joint_states': self._joint_states, 'battery': self._battery}
        for stream in self.profile.streams:
            qos = (QoSProfile(depth=LABEL_DEPTH if stream.kind == 'label' else SENSOR_DEPTH)
                   if stream.reliable else qos_profile_sensor_data)
            self.publishers[stream.topic] = node.create_publisher(
                _TYPES[stream.kind], stream.topic, qos,
                qos_overriding_options=QoSOverridingOptions.with_default_policies())
            if stream.kind == 'label':
                period = self.profile.moment_period / 10.0
                self.timers.append(node.create_timer(period, self._labels))
            else:
                self.timers.append(node.create_timer(
                    1.0 / stream.rate, lambda s=stream, f=fill[stream.kind]: f(s)))

    def summary(self) -> str:
        """One line: each topic, resolved, with its rate."""
        return ', '.join(
            f'{self.node.resolve_topic_name(s.topic)} {s.rate:g} Hz'
            for s in self.profile.streams if s.kind != 'label')

    # --------------------------------------------------------------------------- messages
    def _now(self):
        stamp = self.node.get_clock().now()
        return stamp.to_msg(), stamp.nanoseconds * 1e-9

    def _scan(self, stream) -> None:
        stamp, now = self._now()
        lidar = self.profile.lidar
        ranges = self.robot.scan_ranges(now)
        msg = LaserScan()
        msg.header.stamp = stamp
        msg.header.frame_id = stream.frame_id
        msg.angle_min = lidar.angle_min
        msg.angle_increment = lidar.angle_increment
        msg.angle_max = lidar.angle_min + (lidar.beams - 1) * lidar.angle_increment
        msg.scan_time = 1.0 / stream.rate
        msg.time_increment = msg.scan_time / lidar.beams
        msg.range_min = lidar.range_min
        msg.range_max = lidar.range_max
        msg.ranges = array('f', ranges.tobytes())
        self._send(stream.topic, msg)

    def _odom(self, stream) -> None:
        stamp, now = self._now()
        x, speed, yaw_rate, variance = self.robot.odometry(now)
        msg = Odometry()
        msg.header.stamp = stamp
        msg.header.frame_id = stream.frame_id
        msg.child_frame_id = CHILD_FRAME
        msg.pose.pose.position.x = x
        msg.pose.pose.orientation.w = 1.0
        msg.twist.twist.linear.x = speed
        msg.twist.twist.angular.z = yaw_rate
        cov = [0.0] * 36
        cov[0] = variance
        msg.twist.covariance = cov
        self._send(stream.topic, msg)

    def _imu(self, stream) -> None:
        stamp, now = self._now()
        yaw_rate, z = self.robot.imu(now)
        msg = Imu()
        msg.header.stamp = stamp
        msg.header.frame_id = stream.frame_id
        msg.orientation.w = 1.0
        msg.angular_velocity.z = yaw_rate
        msg.linear_acceleration.z = z
        self._send(stream.topic, msg)

    def _joint_states(self, stream) -> None:
        stamp, now = self._now()
        names, positions, velocities, efforts = self.robot.wheels(now)
        msg = JointState()
        msg.header.stamp = stamp
        msg.header.frame_id = stream.frame_id
        msg.name = names
        msg.position = positions
        msg.velocity = velocities
        msg.effort = efforts
        self._send(stream.topic, msg)

    def _battery(self, stream) -> None:
        stamp, now = self._now()
        voltage, charge = self.robot.battery(now)
        msg = BatteryState()
        msg.header.stamp = stamp
        msg.voltage = voltage
        msg.percentage = min(max(charge, 0.0), 1.0)
        msg.current = math.nan  # unmeasured (sensor_msgs/BatteryState: NaN)
        msg.charge = math.nan
        msg.capacity = math.nan
        msg.design_capacity = math.nan
        msg.temperature = math.nan
        msg.power_supply_status = BatteryState.POWER_SUPPLY_STATUS_DISCHARGING
        msg.power_supply_technology = BatteryState.POWER_SUPPLY_TECHNOLOGY_LION
        msg.present = True
        self._send(stream.topic, msg)

    def _labels(self) -> None:
        _, now = self._now()
        topic = self.profile.label.topic
        for label in self.robot.labels_due(now):
            self._send(topic, Bool(data=label.slip))
