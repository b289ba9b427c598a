"""The installed `sim_robot` executable as a process, observed over real DDS by a test node: each
typed topic carries the scenario's state of its stamp's moment, the labels come late by
label_delay on simulated time, and a /clock jump back starts a new timeline."""

import math
import signal
import time

import numpy as np
import pytest
from nav_msgs.msg import Odometry
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import BatteryState, Imu, JointState, LaserScan, Temperature
from std_msgs.msg import Bool, Float64

from nn_one_node.sim.profiles import PROFILES

from nn_one_node.sim.robot_scenario import (CURRENT, LIDAR, RANGE_MAX, RANGE_MIN, SPEED,
                                            TEMPERATURE, VIBRATION, RobotScenario)
from nn_one_node.sim.scenario import SENSORS

SENSOR_TYPES = {'scan': LaserScan, 'odom': Odometry, 'joint_states': JointState, 'imu': Imu,
                'temperature': Temperature}


def seconds(stamp) -> float:
    """As sim_robot reads its clock (integer nanoseconds * 1e-9): the same moment at a
    boundary."""
    return (stamp.sec * 10**9 + stamp.nanosec) * 1e-9


def clock_msg(t: float) -> Clock:
    msg = Clock()
    ns = int(round(t * 1e9))
    msg.clock.sec, msg.clock.nanosec = divmod(ns, 10**9)
    return msg


def subscribe_all(ros):
    got = {name: ros.collect(kind, name, qos_profile_sensor_data)
           for name, kind in SENSOR_TYPES.items()}
    got['slip'] = ros.collect(Bool, 'slip', QoSProfile(depth=1000))
    return got


def reading(topic, msg):
    """The field config/robot.yaml's assembler picks, as it picks it."""
    if topic == 'scan':
        return float(np.min(np.asarray(msg.ranges)))
    if topic == 'odom':
        return msg.twist.twist.linear.x
    if topic == 'joint_states':
        return msg.effort[list(msg.name).index('left_wheel_joint')]
    if topic == 'imu':
        return msg.linear_acceleration.z
    return msg.temperature


FEATURE = {'scan': LIDAR, 'odom': SPEED, 'joint_states': CURRENT, 'imu': VIBRATION,
           'temperature': TEMPERATURE}


class SimClock:
    """The test's /clock, advanced in steps; records the simulated time each label arrives at."""

    def __init__(self, ros, t0: float, step: float = 0.005) -> None:
        self.ros, self.t, self.step = ros, t0, step
        self.pub = ros.publisher(Clock, '/clock')
        self.labels = []  # (sim time at arrival, value)
        ros.node.create_subscription(
            Float64, 'slip_probability', lambda m: self.labels.append((self.t, m.data)),
            QoSProfile(depth=1000))

    def run(self, sim_seconds: float, wall_per_step: float = 0.002) -> None:
        for _ in range(int(round(sim_seconds / self.step))):
            self.t += self.step
            self.pub.publish(clock_msg(self.t))
            end = time.monotonic() + wall_per_step
            while time.monotonic() < end:
                self.ros.executor.spin_once(timeout_sec=max(0.0, end - time.monotonic()))

    def jump_to(self, t: float) -> None:
        self.t = t - self.step
        self.run(self.step)


def check_readings(got, robot, timeline, t_from, t_to):
    """Every sensor message stamped in [t_from, t_to] reports its stamp's moment, plus noise."""
    checked = 0
    for topic, msgs in got.items():
        if topic == 'slip':
            continue
        for msg in msgs:
            t = seconds(msg.header.stamp)
            if not (t_from <= t <= t_to):
                continue
            clean = robot.moment(robot.index_at(t), timeline).clean[FEATURE[topic]]
            if topic == 'scan':
                clean = min(max(clean, RANGE_MIN), RANGE_MAX)
            noise = SENSORS[FEATURE[topic]].noise_std
            assert abs(reading(topic, msg) - clean) < 6.0 * noise + 1e-6, (topic, t)
            checked += 1
    return checked


@pytest.mark.slow
def test_typed_topics_stamped_on_sim_time_labels_late_and_a_jump_back(ros):
    seed, period, delay = 11, 0.2, 0.5
    proc = ros.start('sim_robot', {'use_sim_time': True, 'seed': seed, 'moment_period': period,
                                   'label_delay': delay, 'scan_rate': 20.0, 'odom_rate': 25.0,
                                   'joint_states_rate': 25.0, 'imu_rate': 50.0,
                                   'temperature_rate': 20.0, 'scan_beams': 90})
    got = subscribe_all(ros)
    clock = SimClock(ros, 100.0)
    ros.wait_for_subscribers(clock.pub, 1)
    ros.spin_for(1.0)  # a second of wall time while ROS time stands at zero
    assert all(not msgs for msgs in got.values()) and not clock.labels, \
        'sim_robot published before /clock ticked'

    clock.run(6.0)
    t_jump = clock.t
    robot = RobotScenario(seed, period, delay)
    # every sensor reported, stamped with the simulated time, the state of that time's moment
    for topic, msgs in got.items():
        assert len(msgs) > 10, topic
    for topic in SENSOR_TYPES:
        stamps = [seconds(m.header.stamp) for m in got[topic]]
        assert 100.0 < min(stamps) and max(stamps) <= t_jump + 1e-9, topic
    assert check_readings(got, robot, 0, 100.0, t_jump) > 100
    assert {tuple(m.name) for m in got['joint_states']} == {
        ('left_wheel_joint', 'right_wheel_joint'), ('right_wheel_joint', 'left_wheel_joint')}
    assert any(np.isinf(np.asarray(m.ranges)).any() for m in got['scan'])

    # each label is the moment's own, out label_delay after its centre, never before (checked
    # ten times a moment: within a tenth of a moment, plus the delivery to this node; the clock
    # runs at 2.5x real time, so 0.5 s of it is 0.2 s of wall time for a busy machine: a label
    # arrived 0.47 s of sim time late once while the whole suite ran)
    by_p = {robot.moment(k, 0).probability: k for k in range(495, 535)}
    indices = []
    for arrived, p in clock.labels:
        assert p in by_p, f'label {p} is no moment of timeline 0'
        k = by_p[p]
        due = robot.moment(k, 0).centre + delay
        assert due - 1e-6 <= arrived <= due + period / 10.0 + 0.5, (k, arrived, due)
        indices.append(k)
    assert indices == list(range(indices[0], indices[0] + len(indices)))
    assert indices[0] == robot.index_at(100.0) + 1 and len(indices) >= 20
    slips = [m.data for m in got['slip']]
    assert slips[:len(indices)] == [robot.moment(k, 0).slip for k in indices][:len(slips)]

    # the world is reset: /clock from 50.0 again
    before = len(clock.labels)
    for msgs in got.values():
        msgs.clear()
    clock.jump_to(50.0)
    clock.run(3.0)
    after = clock.labels[before:]
    new = {robot.moment(k, 1).probability: k for k in range(245, 270)}
    old_pending = {robot.moment(k, 0).probability for k in range(indices[0], 540)
                   if robot.moment(k, 0).centre + delay > t_jump + 1e-6}  # due after the jump
    assert after, 'no label after the jump'
    for arrived, p in after:
        assert p not in old_pending, 'a label pending from before the jump was published'
        if p in new:
            assert robot.moment(new[p], 1).centre > 50.0
        else:  # in flight at the jump: published before it
            assert p in by_p and robot.moment(by_p[p], 0).centre + delay <= t_jump + 1e-6
    assert sum(p in new for _, p in after) >= 8
    assert check_readings(got, robot, 1, 50.0, clock.t) > 50
    assert proc.stop(signal.SIGINT) == 0
    assert 'jumped back' in proc.output()


def test_wall_time_defaults_message_fields_and_live_parameters(ros):
    proc = ros.start('sim_robot')
    got = subscribe_all(ros)
    probability = ros.collect(Float64, 'slip_probability', QoSProfile(depth=1000))
    for topic, msgs in got.items():
        ros.wait_for_messages(msgs, 3 if topic != 'slip' else 1, timeout=30.0, what=topic)
    ros.wait_for_messages(probability, 1, timeout=30.0, what='slip_probability')
    scan = got['scan'][-1]
    assert scan.header.frame_id == 'base_scan'
    assert (scan.range_min, scan.range_max) == pytest.approx((RANGE_MIN, RANGE_MAX))
    assert len(scan.ranges) == 360
    assert scan.angle_increment == pytest.approx(2 * math.pi / 360)
    odom = got['odom'][-1]
    assert (odom.header.frame_id, odom.child_frame_id) == ('odom', 'base_link')
    imu = got['imu'][-1]
    assert imu.orientation_covariance[0] == -1.0 and imu.header.frame_id == 'imu_link'
    assert got['temperature'][-1].variance == pytest.approx(0.25)
    assert 0.0 < probability[-1].data < 1.0
    wall = time.time()
    assert abs(seconds(scan.header.stamp) - wall) < 5.0  # stamped with the (wall) ROS time

    (result,) = ros.set_parameters('/sim_robot', {'scan_beams': 720})
    assert result.successful, result.reason
    n = len(got['scan'])
    ros.spin_until(lambda: any(len(m.ranges) == 720 for m in got['scan'][n:]), 20.0,
                   'a scan of 720 beams')
    (result,) = ros.set_parameters('/sim_robot', {'moment_period': 1.0})
    assert not result.successful  # read-only: the moments would shift under the labels
    assert proc.stop(signal.SIGINT) == 0
    assert proc.alive() is False


@pytest.mark.parametrize('name, namespace', [('turtlebot3', None), ('jackal', '/j100_0000')])
def test_a_profile_publishes_its_robots_topics_types_rates_and_scan(ros, name, namespace):
    """profile:=NAME: every topic of the example robot (relative, under the node's namespace),
    of its type and at its rate by the stamps, the scan of its geometry with its dropouts, a
    battery that drains, and the late Bool label; none of the wheel-slip robot's topics."""
    profile = PROFILES[name]
    proc = ros.start('sim_robot', {'profile': name}, namespace=namespace)
    ns = namespace or ''
    types = {'scan': LaserScan, 'odom': Odometry, 'imu': Imu, 'joint_states': JointState,
             'battery': BatteryState, 'label': Bool}
    got = {s.kind: ros.collect(types[s.kind], f'{ns}/{s.topic}',
                               QoSProfile(depth=100) if s.kind == 'label'
                               else qos_profile_sensor_data) for s in profile.streams}
    temperature = ros.collect(Temperature, f'{ns}/temperature', qos_profile_sensor_data)
    for kind, msgs in got.items():
        ros.wait_for_messages(msgs, 4, timeout=30.0, what=f'{name} {kind}')
    for s in profile.streams:
        if s.kind == 'label':
            continue
        stamps = [seconds(m.header.stamp) for m in got[s.kind]]
        rate = (len(stamps) - 1) / (stamps[-1] - stamps[0])
        assert rate == pytest.approx(s.rate, rel=0.25), (s.topic, rate)
    lidar = profile.lidar
    scans = got['scan']
    ranges = np.concatenate([np.asarray(m.ranges) for m in scans])
    assert {len(m.ranges) for m in scans} == {lidar.beams}
    assert scans[-1].angle_min == pytest.approx(lidar.angle_min)
    assert (scans[-1].range_min, scans[-1].range_max) == pytest.approx((lidar.range_min,
                                                                        lidar.range_max))
    dropouts = np.isnan(ranges) if math.isnan(lidar.dropout_value) else ranges == 0.0
    assert dropouts.any() and np.isinf(ranges).any()
    joints = got['joint_states'][-1]
    assert list(joints.name) == list(profile.joints)
    assert len(joints.effort) == (len(profile.joints) if profile.effort else 0)
    volts = [m.voltage for m in got['battery']]
    assert profile.battery.empty < volts[-1] <= profile.battery.full + 0.1
    assert not temperature  # the wheel-slip robot's topics are not published
    assert name in proc.output() and profile.imitates in proc.output()
    assert proc.stop(signal.SIGINT) == 0


@pytest.mark.parametrize('params, reason', [
    ({'moment_period': 0.0}, 'moment_period'),
    ({'scan_rate': 0.0001}, 'scan_rate'),
    ({'profile': 'roomba'}, "profile must be one of '', 'turtlebot3', 'jackal'"),
])
def test_bad_start_up_parameters_exit_2_with_the_reason(ros, params, reason):
    proc = ros.start('sim_robot', params)
    assert proc.proc.wait(timeout=30) == 2, proc.output()
    assert reason in proc.output()
