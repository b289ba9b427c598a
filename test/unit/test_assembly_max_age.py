"""max_age per input, no ROS graph: an entry's trailing ``max_age=<seconds>`` gives its topic its
own limit (the ``max_age`` parameter stays every other input's), in the rows, the future-stamp
check and the problems ``/diagnostics`` reports; two limits on one topic, one on the label or
a malformed one are refused at start with the reason."""

import math

import pytest
from nav_msgs.msg import Odometry
from sensor_msgs.msg import BatteryState, Imu
from std_msgs.msg import Bool

from nn_one_node.assembly.assembler import Assembler
from nn_one_node.assembly.config import AssemblerConfig
from nn_one_node.assembly.errors import ConfigError

RATE = 50.0
FAST = ['/imu sensor_msgs/msg/Imu linear_acceleration.z',
        '/odom nav_msgs/msg/Odometry twist.twist.linear.x']
BATTERY = '/battery sensor_msgs/msg/BatteryState voltage'


def make(features, **params):
    refused = []
    cfg = AssemblerConfig.from_params({'features': features, 'rate': RATE, **params})
    return Assembler(cfg, on_refusal=lambda k, r: refused.append((k, r))), refused


def stamped(msg, t):
    msg.header.stamp.sec = int(t)
    msg.header.stamp.nanosec = int(round((t - int(t)) * 1e9))
    return msg


def drive(asm, seconds, battery_until=math.inf, fast_until=math.inf, start=0.0):
    """50 Hz imu and odom, a 1 Hz battery, rows at 50 Hz; returns the rows published."""
    rows = 0
    for k in range(int(round(seconds * RATE))):
        t = start + k / RATE
        if t < fast_until:
            asm.on_message('/imu', stamped(Imu(), t), t)
            asm.on_message('/odom', stamped(Odometry(), t), t)
        if k % int(RATE) == 0 and t < battery_until:
            asm.on_message('/battery', stamped(BatteryState(voltage=12.0), t), t)
        rows += asm.tick(t) is not None
    return rows


def test_a_1hz_input_with_its_own_max_age_does_not_make_rows_stale():
    asm, refused = make(FAST + [BATTERY + ' max_age=2.0'], max_age=0.2)
    assert drive(asm, 10.0) == 500 and asm.rows_stale == 0 and not refused
    assert asm.max_age_of('/battery') == 2.0 and asm.max_age_of('/imu') == 0.2
    # the same robot with one max_age for all: most rows stale, as issue 24's robot saw
    asm, _ = make(FAST + [BATTERY], max_age=0.2)
    rows = drive(asm, 10.0)
    assert rows < 150 and asm.stale_by_input == {'/battery/voltage': 500 - rows}


def test_the_fast_inputs_keep_the_global_max_age_and_a_silent_battery_goes_stale():
    asm, _ = make(FAST + [BATTERY + ' max_age=2.0'], max_age=0.25)
    drive(asm, 2.0)
    rows = asm.rows
    drive(asm, 1.0, fast_until=2.5, start=2.0)   # imu and odom stop at 2.5 s (the last 2.48)
    assert asm.rows - rows == 25 + 12            # rows up to 2.48 + 0.25 s
    assert set(asm.stale_by_input) == {'/imu/linear_acceleration.z', '/odom/twist.twist.linear.x'}
    # the battery's last message at 4 s: stale from 6 s, not from 4.2 s
    asm, _ = make(FAST + [BATTERY + ' max_age=2.0'], max_age=0.2)
    assert drive(asm, 8.0, battery_until=4.5) == 6.0 * RATE + 1
    assert asm.stale_by_input == {'/battery/voltage': 2.0 * RATE - 1}


def test_problems_name_the_input_and_its_own_max_age():
    asm, _ = make(FAST + [BATTERY + ' max_age=2.0'], max_age=0.2)
    drive(asm, 8.0, battery_until=4.5)
    (problem,) = asm.problems(8.0)
    assert problem.startswith('no row published for 2.0 s (a row needs every input younger '
                              'than its max_age: /battery 2 s, others 0.2 s): '), problem
    assert problem.endswith('/battery older than max_age (4 s > 2 s): no message for 4 s')


def test_a_change_of_the_max_age_parameter_leaves_an_input_with_its_own_alone():
    asm, _ = make(FAST + [BATTERY + ' max_age=2.0'], max_age=0.2)
    asm.cfg.set_live('max_age', 0.05)
    assert asm.max_age_of('/battery') == 2.0 and asm.max_age_of('/odom') == 0.05


def test_max_age_belongs_to_the_topic_given_on_any_of_its_entries():
    asm, _ = make(['/battery sensor_msgs/msg/BatteryState voltage',
                   '/battery sensor_msgs/msg/BatteryState percentage max_age=2.0',
                   '/battery sensor_msgs/msg/BatteryState current max_age=2.0'] + FAST)
    assert asm.max_age_of('/battery') == 2.0 and asm.max_age_of('/imu') == 0.5
    assert asm.feature_names[:2] == ['/battery/voltage', '/battery/percentage']
    with pytest.raises(ConfigError, match='give topic /battery two max_ages'):
        make([BATTERY + ' max_age=2.0',
              '/battery sensor_msgs/msg/BatteryState current max_age=3.0'])


def test_a_stamp_ahead_of_the_clock_is_judged_by_the_input_s_own_max_age():
    asm, refused = make(FAST + [BATTERY + ' max_age=2.0'], max_age=0.2)
    asm.on_message('/battery', stamped(BatteryState(), 11.5), 10.0)
    asm.on_message('/imu', stamped(Imu(), 10.5), 10.0)
    assert [k for k, _ in refused] == ['future stamp']
    assert refused[0][1].startswith('/imu: stamped 10.500 s')


@pytest.mark.parametrize('option,why', [
    ('max_age=abc', 'give seconds > 0'),
    ('max_age=0', 'give seconds > 0'),
    ('max_age=-1.0', 'give seconds > 0'),
    ('max_age=nan', 'give seconds > 0'),
    ('max_age=', 'give seconds > 0'),
    ('max_age=1e6', 'more than 86400 s'),
    ('maxage=2.0', "unknown option 'maxage'"),
    ('max_age=2.0 max_age=3.0', 'max_age is given twice'),
])
def test_a_malformed_max_age_is_refused_at_start_naming_the_entry(option, why):
    entry = f'{BATTERY} {option}'
    with pytest.raises(ConfigError) as err:
        make([entry])
    assert repr(entry) in str(err.value) and why in str(err.value), str(err.value)


def test_max_age_does_not_apply_to_the_label():
    with pytest.raises(ConfigError, match='max_age does not apply to the label'):
        make(FAST, label='/bump std_msgs/msg/Bool data max_age=2.0')
    # rows never wait for the label: a label silent for long makes no row stale
    asm, _ = make(FAST, label='/bump std_msgs/msg/Bool data', max_age=0.2, history=5.0)
    asm.on_message('/bump', Bool(data=True), 0.0)
    assert drive(asm, 3.0, battery_until=0.0) == 150
