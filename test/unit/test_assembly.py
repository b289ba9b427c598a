"""nn_one_node.assembly alone, no ROS graph: real message classes (sensor_msgs, nav_msgs, ...),
rosbags-deserialized messages and plain objects, driven with explicit times."""

import math
import subprocess
import sys
from array import array
from types import SimpleNamespace as NS

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from hypothesis import given, settings
from hypothesis import strategies as st
from nav_msgs.msg import Odometry
from sensor_msgs.msg import BatteryState, Imu, JointState, LaserScan, Range
from std_msgs.msg import Bool, Float64

from nn_one_node.assembly.assembler import Assembler
from nn_one_node.assembly.config import AssemblerConfig
from nn_one_node.assembly.errors import ConfigError

INF, NAN = math.inf, math.nan


def make(features, label='', **params):
    refusals = []
    cfg = AssemblerConfig.from_params({'features': features, 'label': label, **params})
    asm = Assembler(cfg, on_refusal=lambda kind, reason: refusals.append((kind, reason)))
    return asm, refusals


def scan(ranges, stamp=0.0, range_min=0.1, range_max=12.0):
    msg = LaserScan(range_min=range_min, range_max=range_max)
    msg.ranges = array('f', ranges)
    set_stamp(msg, stamp)
    return msg


def set_stamp(msg, t):
    msg.header.stamp.sec = int(t)
    msg.header.stamp.nanosec = int(round((t - int(t)) * 1e9))
    return msg


def one(asm, topic, msg, now=1.0):
    """The value(s) the entries of ``topic`` take from ``msg``, read through a row."""
    asm.on_message(topic, msg, now)
    return asm._values.copy()


# ------------------------------------------------------------------------------ path forms
def test_nested_fields_of_any_depth_bools_and_ints():
    asm, refused = make(['/odom nav_msgs/msg/Odometry twist.twist.linear.x',
                         '/odom nav_msgs/msg/Odometry pose.pose.orientation.w',
                         '/flag std_msgs/msg/Bool data',
                         '/bat sensor_msgs/msg/BatteryState power_supply_status',
                         '/bat sensor_msgs/msg/BatteryState present'])
    odom = Odometry()
    odom.twist.twist.linear.x = 0.75
    odom.pose.pose.orientation.w = -0.5
    asm.on_message('/odom', odom, 1.0)
    asm.on_message('/flag', Bool(data=True), 1.0)
    asm.on_message('/bat', BatteryState(power_supply_status=3, present=False), 1.0)
    assert asm.tick(1.0).tolist() == [0.75, -0.5, 1.0, 3.0, 0.0]
    assert asm.feature_names == ['/odom/twist.twist.linear.x', '/odom/pose.pose.orientation.w',
                                 '/flag/data', '/bat/power_supply_status', '/bat/present']
    assert asm.inputs == {'/odom': 'nav_msgs/msg/Odometry', '/flag': 'std_msgs/msg/Bool',
                          '/bat': 'sensor_msgs/msg/BatteryState'}
    assert not refused


def test_elements_negative_indexes_and_slices_expand_in_place():
    asm, refused = make(['/scan sensor_msgs/msg/LaserScan ranges[0]',
                         '/scan sensor_msgs/msg/LaserScan ranges[0:720:180]',
                         '/scan sensor_msgs/msg/LaserScan ranges[-1]',
                         '/imu sensor_msgs/msg/Imu orientation_covariance[0:9:4]',
                         '/imu sensor_msgs/msg/Imu linear_acceleration_covariance[-1]',
                         '/scan sensor_msgs/msg/LaserScan ranges[-3:]'])
    values = np.arange(720, dtype=np.float32) / 100 + 0.5
    asm.on_message('/scan', scan(values), 1.0)
    imu = Imu()
    imu.orientation_covariance = np.arange(9.0)
    imu.linear_acceleration_covariance = np.arange(9.0) * 10
    asm.on_message('/imu', imu, 1.0)
    row = asm.tick(1.0)
    expect = [values[0], *values[0:720:180], values[-1], 0.0, 4.0, 8.0, 80.0, *values[-3:]]
    np.testing.assert_allclose(row, np.asarray(expect, dtype=np.float64))
    assert asm.num_features == len(asm.feature_names) == 13
    assert asm.feature_names[1:5] == ['/scan/ranges[0]', '/scan/ranges[180]',
                                      '/scan/ranges[360]', '/scan/ranges[540]']
    assert asm.feature_names[-3:] == ['/scan/ranges[-3]', '/scan/ranges[-2]', '/scan/ranges[-1]']
    assert not refused


def test_an_array_of_messages_is_indexed_on_the_way_and_octets_are_numbers():
    asm, refused = make(['/diagnostics diagnostic_msgs/msg/DiagnosticArray status[1].level'])
    msg = DiagnosticArray(status=[DiagnosticStatus(level=b'\x00'),
                                  DiagnosticStatus(level=DiagnosticStatus.ERROR)])
    assert one(asm, '/diagnostics', msg).tolist() == [2.0]
    asm.on_message('/diagnostics', DiagnosticArray(status=[DiagnosticStatus()]), 2.0)
    assert [k for k, _ in refused] == ['index out of range']


def test_elements_by_joint_name_in_any_order():
    asm, refused = make(['/js sensor_msgs/msg/JointState effort[left_wheel_joint]',
                         '/js sensor_msgs/msg/JointState effort[right_wheel_joint]',
                         '/js sensor_msgs/msg/JointState velocity[left_wheel_joint]'])
    orders = [['left_wheel_joint', 'right_wheel_joint'], ['right_wheel_joint', 'left_wheel_joint'],
              ['caster', 'right_wheel_joint', 'left_wheel_joint'],
              ['right_wheel_joint', 'left_wheel_joint']]
    for k, names in enumerate(orders):
        value = {'left_wheel_joint': 1.0 + k, 'right_wheel_joint': -1.0 - k, 'caster': 99.0}
        msg = JointState(name=names, effort=[value[n] for n in names],
                         velocity=[10 * value[n] for n in names])
        assert one(asm, '/js', msg, 1.0 + k).tolist() == [1.0 + k, -1.0 - k, 10 * (1.0 + k)]
    assert not refused


def test_a_missing_joint_or_a_short_effort_array_keeps_the_older_value_and_is_counted():
    asm, refused = make(['/js sensor_msgs/msg/JointState effort[left]',
                         '/js sensor_msgs/msg/JointState position[right]'])
    asm.on_message('/js', JointState(name=['left', 'right'], effort=[5.0, 6.0],
                                     position=[1.0, 2.0]), 1.0)
    asm.on_message('/js', JointState(name=['right'], effort=[7.0], position=[3.0]), 1.1)
    assert asm._values.tolist() == [5.0, 3.0]  # left missing: kept; right read
    asm.on_message('/js', JointState(name=['left', 'right'], position=[1.5, 2.5]), 1.2)
    assert asm._values.tolist() == [5.0, 2.5]  # effort empty: index out of range
    assert [k for k, _ in refused] == ['missing name', 'index out of range']
    assert "no 'left'" in refused[0][1] and '/js/effort[left]' in refused[0][1]
    assert asm.counters()['refused'] == {'missing name': 1, 'index out of range': 1}
    assert asm.tick(1.2).tolist() == [5.0, 2.5]  # effort[left] from 1.0 is 0.2 s old
    asm.on_message('/js', JointState(name=['right'], effort=[7.0], position=[4.0]), 1.6)
    assert asm.tick(1.6) is None  # effort[left] from 1.0 is now 0.6 s old: stale, alone
    assert asm.counters()['stale'] == {'/js/effort[left]': 1}


def test_the_names_cache_is_used_while_the_names_do_not_change():
    asm, _ = make(['/js sensor_msgs/msg/JointState effort[b]'])

    class Names(list):
        searches = 0

        def index(self, *args):
            Names.searches += 1
            return super().index(*args)
    header = NS(stamp=NS(sec=0, nanosec=0))
    for k in range(5):
        asm.on_message('/js', NS(header=header, name=Names(['a', 'b']),
                                 effort=[0.0, float(k)]), 1.0)
    assert Names.searches == 1 and asm._values.tolist() == [4.0]
    asm.on_message('/js', NS(header=header, name=Names(['b', 'a']), effort=[9.0, 0.0]), 1.0)
    assert Names.searches == 2 and asm._values.tolist() == [9.0]


def test_min_max_mean_ignore_nan():
    asm, refused = make(['/s sensor_msgs/msg/LaserScan min(ranges)',
                         '/s sensor_msgs/msg/LaserScan max(ranges)',
                         '/s sensor_msgs/msg/LaserScan mean(ranges)',
                         '/s sensor_msgs/msg/LaserScan mean(ranges[0:2])',
                         '/b sensor_msgs/msg/BatteryState min(cell_voltage)'])
    asm.on_message('/s', scan([2.0, NAN, 4.0, 6.0]), 1.0)
    asm.on_message('/b', BatteryState(cell_voltage=[3.7, NAN, 3.5]), 1.0)
    np.testing.assert_allclose(asm.tick(1.0), [2.0, 6.0, 4.0, 2.0, 3.5], rtol=1e-6)
    assert asm.feature_names[:2] == ['min(/s/ranges)', 'max(/s/ranges)']
    assert not refused


def test_a_range_message_reading_outside_its_bounds_is_its_max_range():
    """sensor_msgs/Range follows the LaserScan's rules (test_assembly_laser.py)."""
    asm, refused = make(['/r sensor_msgs/msg/Range range'])
    for reading, value in [(INF, 4.0), (-INF, 0.02), (NAN, 4.0), (0.0, 4.0), (9.0, 4.0),
                           (0.5, 0.5)]:
        got = one(asm, '/r', Range(range=reading, min_range=0.02, max_range=4.0))
        assert got.tolist() == pytest.approx([value]), reading
    assert not refused
    one(asm, '/r', Range(range=0.5, min_range=0.0, max_range=0.0))  # bounds left unset
    assert [k for k, _ in refused] == ['range bounds']


def test_nan_readings_are_bad_and_the_input_keeps_its_value():
    """Not a range (a scan's invalid readings are test_assembly_laser.py's)."""
    asm, refused = make(['/odom nav_msgs/msg/Odometry twist.twist.linear.x',
                         '/b sensor_msgs/msg/BatteryState mean(cell_voltage)'])
    odom = Odometry()
    odom.twist.twist.linear.x = 1.0
    asm.on_message('/odom', odom, 1.0)
    asm.on_message('/b', BatteryState(cell_voltage=[4.0]), 1.0)
    before = asm.tick(1.0).tolist()
    odom.twist.twist.linear.x = NAN
    asm.on_message('/odom', odom, 1.1)
    asm.on_message('/b', BatteryState(cell_voltage=[INF]), 1.1)  # not a range: no bound
    asm.on_message('/b', BatteryState(cell_voltage=[NAN]), 1.1)
    asm.on_message('/b', BatteryState(cell_voltage=[]), 1.1)
    assert asm.tick(1.1).tolist() == before
    kinds = [k for k, _ in refused]
    assert kinds.count('non-finite') == 3 and kinds.count('empty') == 1, refused
    assert asm._stamps == [1.0] * 2  # none took a new time either


def test_a_message_of_the_wrong_shape_is_counted_not_raised():
    asm, refused = make(['/odom nav_msgs/msg/Odometry twist.twist.linear.x',
                         '/js sensor_msgs/msg/JointState effort[a]'])
    assert asm.on_message('/odom', NS(header=None), 1.0) == []
    assert asm.on_message('/odom', Float64(data=1.0), 1.0) == []
    assert asm.on_message('/js', NS(name=None, effort=[1.0]), 1.0) == []
    assert {k for k, _ in refused} == {'wrong type'}
    with pytest.raises(KeyError):
        asm.on_message('/elsewhere', Float64(), 1.0)


def test_rosbags_messages_work_as_rclpy_ones():
    from rosbags.typesys import Stores, get_typestore
    types = get_typestore(Stores.ROS2_JAZZY).types
    Header, Time = types['std_msgs/msg/Header'], types['builtin_interfaces/msg/Time']
    asm, refused = make(['/scan sensor_msgs/msg/LaserScan min(ranges)',
                         '/scan sensor_msgs/msg/LaserScan ranges[0:2]',
                         '/js sensor_msgs/msg/JointState effort[l]'], max_age=0.5)
    header = Header(stamp=Time(sec=3, nanosec=500_000_000), frame_id='laser')
    msg = types['sensor_msgs/msg/LaserScan'](
        header=header, angle_min=0.0, angle_max=1.0, angle_increment=0.5, time_increment=0.0,
        scan_time=0.1, range_min=0.1, range_max=5.0,
        ranges=np.array([INF, 2.5, 3.0], dtype=np.float32),
        intensities=np.zeros(0, dtype=np.float32))
    asm.on_message('/scan', msg, now=3.6)
    js = types['sensor_msgs/msg/JointState'](header=header, name=['r', 'l'],
                                             position=np.zeros(2), velocity=np.zeros(2),
                                             effort=np.array([1.0, 2.0]))
    asm.on_message('/js', js, now=3.6)
    assert asm.tick(3.6).tolist() == [2.5, 5.0, 2.5, 2.0]
    assert asm._stamps == [3.5] * 3  # header stamps, not arrival
    assert not refused


# ------------------------------------------------------------------------------ staleness
def test_age_is_measured_by_header_stamp_where_there_is_one_else_by_arrival():
    asm, _ = make(['/imu sensor_msgs/msg/Imu linear_acceleration.z',
                   '/t std_msgs/msg/Float64 data'], max_age=0.3)
    asm.on_message('/imu', set_stamp(Imu(), 9.5), now=10.0)  # arrives now, taken 0.5 s ago
    asm.on_message('/t', Float64(data=1.0), now=10.0)
    assert asm.tick(10.0) is None
    assert asm.counters()['stale'] == {'/imu/linear_acceleration.z': 1}
    asm.on_message('/imu', set_stamp(Imu(), 10.1), now=10.0)  # 0.1 s ahead: clock skew, taken
    assert asm.tick(10.0) is not None
    assert asm.tick(10.25) is not None
    assert asm.tick(10.35) is None  # /t arrived at 10.0: 0.35 s old by arrival
    assert asm.counters()['stale'] == {'/imu/linear_acceleration.z': 1, '/t/data': 1}
    assert asm.counters()['rows stale'] == 2 and asm.counters()['rows published'] == 2


def test_a_zero_stamp_means_unset_and_arrival_counts():
    asm, _ = make(['/imu sensor_msgs/msg/Imu linear_acceleration.z'], max_age=0.3)
    asm.on_message('/imu', Imu(), now=50.0)
    assert asm.tick(50.2) is not None


def test_inputs_never_heard_are_stale_by_name():
    asm, _ = make(['/a std_msgs/msg/Float64 data', '/b std_msgs/msg/Float64 data'])
    asm.on_message('/a', Float64(data=1.0), 0.0)
    assert asm.tick(0.1) is None
    assert asm.counters()['stale'] == {'/b/data': 1}


def test_a_stamp_far_in_the_future_is_refused():
    asm, refused = make(['/imu sensor_msgs/msg/Imu linear_acceleration.z'], max_age=0.5)
    asm.on_message('/imu', set_stamp(Imu(), 100.0), now=10.0)
    assert [k for k, _ in refused] == ['future stamp'] and asm.tick(10.0) is None
    asm.on_message('/imu', set_stamp(Imu(), 10.2), now=10.0)  # a little ahead: clock skew
    assert asm.tick(10.0) is not None


# ------------------------------------------------------------------------------ labels
def clocked(label_delay=0.5, rate=10.0, **params):
    """An assembler whose one feature is the time of its reading: a row says when it is from."""
    return make(['/t std_msgs/msg/Float64 data'], '/y std_msgs/msg/Float64 data',
                rate=rate, label_delay=label_delay, **params)


def run_rows(asm, start, stop, rate=10.0):
    rows = {}
    for k in range(int(round(start * rate)), int(round(stop * rate)) + 1):
        t = k / rate
        asm.on_message('/t', Float64(data=t), t)
        row = asm.tick(t)
        if row is not None:
            rows[round(t, 6)] = row
    return rows


def test_step_is_a_tick_then_a_flush_as_the_node_and_the_bag_tool_run_it():
    stepped, _ = clocked(label_delay=0.0, max_join_gap=0.05)
    by_hand, _ = clocked(label_delay=0.0, max_join_gap=0.05)
    rows = samples = 0
    for k in range(40):
        t = k / 10
        for asm in (stepped, by_hand):
            if not 20 <= k < 28:  # no reading for 0.8 s: stale rows
                asm.on_message('/t', Float64(data=t), t)
        step = stepped.step(t)
        row = by_hand.tick(t)
        assert (step.row is None) == (row is None)
        if row is not None:
            assert step.row.tolist() == row.tolist()
            rows += 1
        assert [s.tolist() for s in step.samples] == [s.tolist() for s in by_hand.flush(t)]
        samples += len(step.samples)
        for asm in (stepped, by_hand):  # a label for this moment, heard before the next row
            assert asm.on_message('/y', Float64(data=0.5), t + 0.03) == []
    assert 0 < rows < 40 and samples > 0
    assert stepped.counters() == by_hand.counters()


def test_late_labels_join_the_row_of_their_moment_in_any_order():
    asm, refused = make(['/t std_msgs/msg/Float64 data'],
                        '/slip sensor_msgs/msg/Imu linear_acceleration.x', rate=10.0,
                        label_delay=0.5, max_join_gap=0.05, history=5.0)
    run_rows(asm, 0.0, 3.0)
    # labels for the moments 1.0 .. 2.0, stamped 0.5 s later, arriving shuffled at 3.0
    moments = [1.0, 1.7, 1.2, 2.0, 1.1, 1.5, 1.9, 1.3]
    samples = []
    for m in moments:
        label = Imu()
        label.linear_acceleration.x = m / 10
        samples += asm.on_message('/slip', set_stamp(label, m + 0.5), now=3.0)
    assert len(samples) == len(moments)
    for s, m in zip(samples, moments):
        assert s[0] == pytest.approx(m) and s[1] == pytest.approx(m / 10)
    assert asm.counters()['labels joined'] == len(moments) and not refused


def test_the_nearest_row_within_max_join_gap_else_unmatched():
    asm, _ = clocked(label_delay=0.0, max_join_gap=0.03, history=5.0)
    run_rows(asm, 0.0, 1.0)
    # arrival time is the stamp of a headerless label: the target is its arrival - delay
    asm._last_now = -math.inf
    got = asm.on_message('/y', Float64(data=0.5), now=0.52)
    assert len(got) == 1 and got[0][0] == pytest.approx(0.5)
    assert asm.on_message('/y', Float64(data=0.5), now=0.55) == []  # 0.05 from both rows
    assert asm.counters()['unmatched'] == {'no row within max_join_gap': 1}


def test_a_label_newer_than_every_row_waits_for_its_row():
    asm, _ = clocked(label_delay=0.0, max_join_gap=0.05)
    run_rows(asm, 0.0, 1.0)
    # a label stamped by arrival at 1.03: the row nearest 1.03 may be the one of 1.1 -> it waits
    assert asm.on_message('/y', Float64(data=1.0), now=1.03) == []
    assert asm.counters()['labels waiting'] == 1
    asm.on_message('/t', Float64(data=1.1), 1.1)
    asm.tick(1.1)
    got = asm.flush(1.1)
    assert len(got) == 1 and got[0][0] == pytest.approx(1.0)  # 1.0 is nearer than 1.1
    assert asm.counters()['labels waiting'] == 0


def test_a_waiting_label_whose_row_never_comes_is_unmatched_once_too_late():
    asm, _ = clocked(label_delay=0.0, max_join_gap=0.05)
    run_rows(asm, 0.0, 1.0)
    assert asm.on_message('/y', Float64(data=1.0), now=1.08) == []
    assert asm.flush(1.12) == []  # no row since 1.0 (inputs stale), 0.04 s after: waits
    assert asm.counters()['labels waiting'] == 1
    assert asm.flush(1.14) == []
    c = asm.counters()
    assert c['labels waiting'] == 0 and c['unmatched'] == {'no row within max_join_gap': 1}


def test_stamped_labels_use_their_header_stamp():
    asm, _ = make(['/t std_msgs/msg/Float64 data'],
                  '/slip sensor_msgs/msg/Imu linear_acceleration.x', label_delay=0.3,
                  label_threshold=0.5, history=3.0)
    run_rows(asm, 0.0, 2.0)
    slip = Imu()
    slip.linear_acceleration.x = 0.9
    got = asm.on_message('/slip', set_stamp(slip, 1.5), now=2.0)  # the slip of time 1.2
    assert len(got) == 1 and got[0].tolist() == [pytest.approx(1.2), 1.0]
    slip.linear_acceleration.x = 0.1
    assert asm.on_message('/slip', set_stamp(slip, 1.0), now=2.0)[0][1] == 0.0


def test_history_is_a_bounded_ring_and_older_labels_are_unmatched():
    asm, _ = clocked(label_delay=0.0, history=2.0)
    run_rows(asm, 0.0, 20.0)
    assert asm.counters()['rows held'] <= 2.0 * 10 + 2
    assert asm._ring.rows.shape[0] == 22  # preallocated: ceil(history * rate) + 2
    assert asm.on_message('/y', Float64(data=0.0), now=20.0) != []
    asm._last_now = -math.inf
    assert asm.on_message('/y', Float64(data=0.0), now=5.0) == []
    assert asm.counters()['unmatched'] == {'older than history': 1}


def test_label_threshold_and_label_range():
    asm, refused = clocked(label_delay=0.0)
    run_rows(asm, 0.0, 1.0)
    assert asm.on_message('/y', Float64(data=1.0), now=1.0) != []
    assert asm.on_message('/y', Float64(data=1.5), now=1.0) == []
    assert asm.on_message('/y', Float64(data=NAN), now=1.0) == []
    assert [k for k, _ in refused] == ['label range', 'label non-finite']
    assert 'label_range' in refused[0][1]
    lin, refused = clocked(label_delay=0.0, label_range=[-1e100, 1e100])
    run_rows(lin, 0.0, 1.0)
    assert lin.on_message('/y', Float64(data=-42.0), now=1.0)[0][1] == -42.0
    thr, _ = clocked(label_delay=0.0, label_threshold=10.0)
    run_rows(thr, 0.0, 1.0)
    assert [s[1] for s in thr.on_message('/y', Float64(data=42.0), now=1.0)
            + thr.on_message('/y', Float64(data=10.0), now=1.0)] == [1.0, 0.0]


def test_no_label_means_no_labeled_samples():
    asm, _ = make(['/t std_msgs/msg/Float64 data'])
    assert asm.label_entry is None and asm.inputs == {'/t': 'std_msgs/msg/Float64'}
    run_rows(asm, 0.0, 1.0)
    assert asm.flush(1.0) == []


def test_a_label_may_share_a_topic_with_features():
    asm, _ = make(['/odom nav_msgs/msg/Odometry twist.twist.linear.x'],
                  '/odom nav_msgs/msg/Odometry twist.twist.angular.z', label_threshold=0.0)
    assert asm.inputs == {'/odom': 'nav_msgs/msg/Odometry'}
    odom = Odometry()
    odom.twist.twist.linear.x, odom.twist.twist.angular.z = 0.5, 0.2
    asm.on_message('/odom', odom, 1.0)
    asm.tick(1.0)
    assert asm.on_message('/odom', odom, 1.0)[0].tolist() == [0.5, 1.0]


# ------------------------------------------------------------------------------ time jumps
def test_a_backward_time_jump_drops_values_rows_and_waiting_labels():
    cleared = []
    cfg = AssemblerConfig.from_params({'features': ['/t std_msgs/msg/Float64 data',
                                                    '/u std_msgs/msg/Float64 data'],
                                       'label': '/y std_msgs/msg/Float64 data',
                                       'label_delay': 0.0, 'history': 5.0})
    asm = Assembler(cfg, on_clear=cleared.append)
    for k in range(10, 31):
        t = k / 10
        asm.on_message('/t', Float64(data=t), t)
        asm.on_message('/u', Float64(data=-t), t)
        asm.tick(t)
    assert asm.on_message('/y', Float64(data=1.0), now=3.02) == []  # waits for a row
    # the world resets: time starts again at 0.5
    asm.on_message('/t', Float64(data=0.5), 0.5)
    assert len(cleared) == 1 and 'back from 3.020 s to 0.500 s' in cleared[0]
    c = asm.counters()
    assert c['rows held'] == 0 and c['labels waiting'] == 0 and c['time jumps'] == 1
    assert c['unmatched'] == {'dropped by a time jump': 1}
    assert asm.tick(0.5) is None  # /u's value is from the old timeline: gone, so stale
    asm.on_message('/u', Float64(data=-0.5), 0.5)
    assert asm.tick(0.5).tolist() == [0.5, -0.5]  # both sides of the row from after the jump
    # a label of now joins a row of the new timeline only, and nothing cleared again
    assert asm.on_message('/y', Float64(data=1.0), now=0.5)[0].tolist() == [0.5, -0.5, 1.0]
    assert len(cleared) == 1


def test_after_a_jump_messages_of_the_old_timeline_are_refused_by_their_stamps():
    asm, refused = make(['/imu sensor_msgs/msg/Imu linear_acceleration.z'],
                        '/slip sensor_msgs/msg/Imu linear_acceleration.x', label_delay=0.0,
                        label_threshold=0.5)
    asm.on_message('/imu', set_stamp(Imu(), 99.9), now=100.0)
    asm.tick(100.0)
    asm.on_message('/imu', set_stamp(Imu(), 0.1), now=0.1)  # jumped back: new timeline
    asm.tick(0.1)
    late = Imu()
    late.linear_acceleration.x = 1.0
    assert asm.on_message('/slip', set_stamp(late, 99.95), now=0.15) == []  # old, in flight
    assert asm.on_message('/imu', set_stamp(Imu(), 99.95), now=0.15) == []
    assert [k for k, _ in refused] == ['future stamp', 'future stamp']
    assert asm.counters()['labels joined'] == 0


# ------------------------------------------------------------------------------ bad configs
BAD = {
    '/x not_a_pkg_xyz/msg/Foo data': 'no interface package',
    '/x sensor_msgs/msg/NoSuchType data': "no message type 'NoSuchType'",
    '/x sensor_msgs/msg/LaserScan rangez[0]': "has no field 'rangez'",
    '/x sensor_msgs/msg/LaserScan ranges': 'is an array',
    '/x sensor_msgs/msg/LaserScan header.frame_id': 'not a number',
    '/x sensor_msgs/msg/LaserScan header': 'is a message',
    '/x sensor_msgs/msg/LaserScan ranges[0:]': 'must be known at start',
    '/x sensor_msgs/msg/LaserScan ranges[5:1]': 'selects no element',
    '/x sensor_msgs/msg/LaserScan ranges[0:10:-1]': 'step must be > 0',
    '/x sensor_msgs/msg/LaserScan ranges[a]': 'no name array',
    '/x sensor_msgs/msg/LaserScan min(range_max)': 'needs an array',
    '/x sensor_msgs/msg/LaserScan min(ranges[0])': 'whole array or a slice',
    '/x sensor_msgs/msg/LaserScan range_max[0]': 'not an array',
    '/x sensor_msgs/msg/Imu orientation_covariance[9]': 'out of range',
    '/x sensor_msgs/msg/Imu orientation.x.y': 'not a message',
    '/x nav_msgs/msg/Odometry twist..x': 'cannot read the path',
    '/x sensor_msgs/msg/JointState name[0]': 'not a number',
    '/x sensor_msgs/msg/JointState effort[]': 'needs an index',
    '/x sensor_msgs/msg/Imu': "expected '<topic> <pkg/msg/Type> <path>'",
    '/x sensor_msgs/LaserScan/extra ranges[0]': 'not a message type',
    'no-topic! std_msgs/msg/Float64 data': "topic name 'no-topic!' is invalid",
    'scan/ std_msgs/msg/Float64 data': "topic name 'scan/' is invalid",
    'a~b std_msgs/msg/Float64 data': "topic name 'a~b' is invalid",
    '/x diagnostic_msgs/msg/DiagnosticArray status[a].level': 'index it with an integer',
}


@pytest.mark.parametrize('entry', sorted(BAD))
def test_a_bad_entry_is_refused_at_start_naming_it(entry):
    with pytest.raises(ConfigError) as err:
        make([entry])
    assert repr(entry) in str(err.value) and BAD[entry] in str(err.value), str(err.value)


@pytest.mark.parametrize('label,why', [
    ('/s sensor_msgs/msg/LaserScan ranges[0:4]', 'is a slice'),
    ('/s sensor_msgs/msg/LaserScan ranges', 'is an array'),
    ('/s std_msgs/msg/String data', 'not a number'),
])
def test_a_label_that_is_not_one_scalar_is_refused(label, why):
    with pytest.raises(ConfigError) as err:
        make(['/t std_msgs/msg/Float64 data'], label)
    assert repr(label) in str(err.value) and why in str(err.value)


@pytest.mark.parametrize('params,why', [
    ({'features': []}, 'features is empty'),
    ({'rate': 0.0}, 'rate must be'),
    ({'max_age': -1.0}, 'max_age must be'),
    ({'label_delay': 20.0, 'label': '/y std_msgs/msg/Float64 data'}, 'history'),
    ({'label_range': [1.0, 0.0]}, 'label_range'),
    ({'label_threshold': INF}, 'label_threshold'),
    ({'features': ['/a std_msgs/msg/Float64 data', '/a std_msgs/msg/Bool data']},
     'one type per topic'),
])
def test_bad_settings_are_refused(params, why):
    with pytest.raises(ConfigError) as err:
        Assembler(AssemblerConfig.from_params({'features': ['/t std_msgs/msg/Float64 data'],
                                               **params}))
    assert why in str(err.value)


# ------------------------------------------------------------------------------ properties
@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(st.integers(0, 199), min_size=1, max_size=40),
       st.floats(0.0, 2.0), st.sampled_from([0.01, 0.05, 0.2]))
def test_every_label_joins_the_nearest_row_or_is_unmatched(moments, delay, gap):
    asm, _ = clocked(label_delay=delay, max_join_gap=gap, history=30.0)
    rows = run_rows(asm, 0.0, 25.0)
    times = np.array(sorted(rows))
    for m in moments:  # label stamps by arrival: sent at time 25, for moment m / 10 + jitter
        stamp = 5.0 + m / 20
        asm._last_now = -math.inf
        got = asm.on_message('/y', Float64(data=0.5), now=stamp)
        target = stamp - delay
        d = np.abs(times - target)
        if d.min() <= gap:
            assert len(got) == 1 and abs(got[0][0] - target) == pytest.approx(d.min())
        else:
            assert got == []
    c = asm.counters()
    assert c['labels joined'] + c['labels unmatched'] == len(moments)


@settings(max_examples=80, deadline=None, derandomize=True)
@given(st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.just(INF)),
                max_size=50),
       st.lists(st.sampled_from(['a', 'b', 'c', 'd']), max_size=4, unique=True),
       st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=5))
def test_any_message_content_gives_finite_values_or_a_counted_refusal(ranges, names, efforts):
    asm, refused = make(['/s sensor_msgs/msg/LaserScan min(ranges)',
                         '/s sensor_msgs/msg/LaserScan mean(ranges)',
                         '/s sensor_msgs/msg/LaserScan ranges[0:2]',
                         '/s sensor_msgs/msg/LaserScan ranges[-1]',
                         '/j sensor_msgs/msg/JointState effort[b]'])
    asm.on_message('/s', scan(ranges), 1.0)
    asm.on_message('/j', JointState(name=names, effort=efforts), 1.0)
    assert np.isfinite(asm._values).all()
    fresh = sum(1 for s in asm._stamps if s == 1.0)
    assert fresh + len(refused) == 5


# ------------------------------------------------------------------------------ no ROS
BLOCK_ROS = """
import doctest, importlib, importlib.abc, pkgutil, sys


class NoRos(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        top = name.split('.')[0]
        if (top.startswith(('rclpy', 'rcl_', 'rosidl', 'builtin_interfaces'))
                or top.endswith(('_msgs', '_interfaces'))):
            raise ImportError('no ROS here: ' + name)


sys.meta_path.insert(0, NoRos())
import nn_one_node.assembly as package
for info in pkgutil.iter_modules(package.__path__):
    module = importlib.import_module(f'nn_one_node.assembly.{info.name}')
    result = doctest.testmod(module)
    assert result.failed == 0 and result.attempted > 0, (info.name, result)
    print(info.name)
assert not any(m.split('.')[0] in ('rclpy', 'std_msgs') for m in sys.modules)
"""


def test_every_assembly_module_imports_and_runs_its_examples_without_ros():
    done = subprocess.run([sys.executable, '-c', BLOCK_ROS], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert set(done.stdout.split()) >= {'assembler', 'config', 'entries', 'getters', 'ring'}
