"""What the assembler's /diagnostics WARN (``Assembler.problems``), with explicit times and real
message classes, no ROS graph: no row for a while and why, input by input; rows skipped on
most ticks; nothing while rows flow or before they are due."""

import pytest
from sensor_msgs.msg import Imu, JointState
from std_msgs.msg import Bool, Float64

from nn_one_node.assembly.assembler import NO_ROWS_MIN_SEC, NO_ROWS_TICKS, Assembler
from nn_one_node.assembly.config import AssemblerConfig

IMU = '/imu sensor_msgs/msg/Imu linear_acceleration.z'
BATTERY = '/battery std_msgs/msg/Float64 data'


def make(features, **params):
    cfg = AssemblerConfig.from_params({'features': features, 'rate': 20.0, 'max_age': 0.5,
                                       **params})
    return Assembler(cfg)


def imu(stamp: float) -> Imu:
    msg = Imu()
    msg.header.stamp.sec = int(stamp)
    msg.header.stamp.nanosec = int(round((stamp - int(stamp)) * 1e9))
    msg.linear_acceleration.z = 9.81
    return msg


def run(asm, start: float, end: float, inputs=None, period: float = 0.05) -> None:
    """Ticks at ``period`` from ``start`` to ``end``; ``inputs(t)`` publishes before each."""
    t = start
    while t <= end + 1e-9:
        if inputs is not None:
            inputs(t)
        asm.step(t)
        t = round(t + period, 9)


def test_rows_flowing_are_no_problem_and_the_threshold_is_a_second_or_five_ticks():
    asm = make([IMU, BATTERY])
    assert asm.no_rows_after == max(NO_ROWS_MIN_SEC, NO_ROWS_TICKS / 20.0) == 1.0
    assert make([IMU], rate=0.5).no_rows_after == 10.0  # five row periods at 0.5 Hz
    assert asm.seconds_without_rows(0.0) is None and asm.problems(0.0) == []  # no tick yet

    def both(t):
        asm.on_message('/imu', imu(t), t)
        asm.on_message('/battery', Float64(data=24.0), t)
    run(asm, 1.0, 5.0, both)
    assert asm.rows == 81 and asm.problems(5.0) == []
    assert asm.seconds_without_rows(5.02) == pytest.approx(0.02)


def test_an_input_never_heard_from_says_so_once_rows_have_been_missing_a_while():
    asm = make([IMU, BATTERY])
    run(asm, 1.0, 1.9, lambda t: asm.on_message('/imu', imu(t), t))
    assert asm.rows == 0
    assert asm.problems(1.9) == []  # 0.9 s without a row: not yet "a while"
    run(asm, 1.95, 2.5, lambda t: asm.on_message('/imu', imu(t), t))
    (problem,) = asm.problems(2.5)
    assert problem == ('no row published for 1.5 s (a row needs every input younger than '
                       'max_age 0.5 s): no message yet on /battery')
    # more words on a topic from the node (publishers of another type), appended
    (problem,) = asm.problems(2.5, {'/battery': 'its publishers are of type std_msgs/msg/Int32'})
    assert problem.endswith('no message yet on /battery (its publishers are of type '
                            'std_msgs/msg/Int32)')


def test_an_input_that_arrives_stamped_too_old_says_older_than_max_age_not_no_message():
    asm = make([IMU, BATTERY])

    def late(t):  # every 50 ms, as fresh as the battery by arrival, but stamped 0.9 s back
        asm.on_message('/imu', imu(t - 0.9), t)
        asm.on_message('/battery', Float64(data=24.0), t)
    run(asm, 10.0, 12.0, late)
    assert asm.rows == 0
    (problem,) = asm.problems(12.0)
    assert 'no row published for 2.0 s' in problem
    assert '/imu older than max_age (0.9 s > 0.5 s)' in problem, problem
    assert 'stamped 0.9 s behind the clock' in problem and 'no message' not in problem
    assert '/battery' not in problem  # young: not the cause


def test_an_input_that_stopped_says_how_long_ago():
    asm = make([IMU, BATTERY])

    def both(t):
        asm.on_message('/imu', imu(t), t)
        if t < 3.0:
            asm.on_message('/battery', Float64(data=24.0), t)
    run(asm, 1.0, 5.0, both)
    (problem,) = asm.problems(5.0)
    # the last row was at 3.45 s (the battery's 2.95 s message aged past 0.5 s after it)
    assert problem.startswith('no row published for 1.5 s'), problem
    assert problem.endswith('/battery older than max_age (2.05 s > 0.5 s): no message for '
                            '2.05 s'), problem


def test_an_input_whose_every_message_is_refused_names_the_entry_and_the_refusal():
    asm = make([IMU, '/joint_states sensor_msgs/msg/JointState effort[left_wheel_joint]'])

    def inputs(t):
        asm.on_message('/imu', imu(t), t)
        asm.on_message('/joint_states', JointState(name=['right_wheel_joint'], effort=[1.0]), t)
    run(asm, 1.0, 3.0, inputs)
    (problem,) = asm.problems(3.0)
    assert ('/joint_states: no value yet from /joint_states/effort[left_wheel_joint] (41 '
            'message(s), none usable; last refusal: ') in problem, problem
    assert 'left_wheel_joint' in asm.last_refusal


def test_rows_skipped_on_most_ticks_by_a_slow_input_name_it_and_its_gap():
    asm = make([IMU, BATTERY])
    asm.problems(0.0)

    def slow(t):  # the battery every 1.5 s: rows for 0.5 s after each message, none for 1 s
        asm.on_message('/imu', imu(t), t)
        if round(t * 100) % 150 == 0:
            asm.on_message('/battery', Float64(data=24.0), t)
    run(asm, 1.5, 3.0, slow)
    assert (asm.rows, asm.ticks) == (12, 31)
    (problem,) = asm.problems(3.0)  # at 3.0 s a battery message is fresh: the gap says why
    assert problem.startswith(f'rows skipped on {asm.rows_stale} of {asm.ticks} ticks since '
                              'the last status'), problem
    assert problem.endswith('/battery older than max_age (1.5 s > 0.5 s) between its '
                            'messages'), problem
    # the next status counts from here: rows flowing again are no problem
    run(asm, 3.05, 5.0, lambda t: (asm.on_message('/imu', imu(t), t),
                                   asm.on_message('/battery', Float64(data=24.0), t)))
    assert asm.problems(5.0) == []


def test_a_1_hz_battery_under_the_common_max_age_is_a_problem_at_every_status():
    """What a new user's TurtleBot3 config did: a 1 Hz battery under max_age 0.5 leaves every
    other row stale (9 or 10 of 20: the rule of the old 'more than half' missed it, and half the
    labels went unmatched); each 1 s status must say so, not OK."""
    asm = make([IMU, BATTERY])

    def one_hz(t):
        asm.on_message('/imu', imu(t), t)
        if round(t * 100) % 100 == 0:
            asm.on_message('/battery', Float64(data=24.0), t)
    run(asm, 1.0, 2.0, one_hz)
    asm.problems(2.0)
    for second in range(2, 6):
        run(asm, second + 0.05, second + 1.0, one_hz)
        (problem,) = asm.problems(second + 1.0)
        assert problem.startswith('rows skipped on ') and ' of 20 ticks' in problem, problem
        assert '/battery older than max_age (1 s > 0.5 s) between its messages' in problem
    # its own max_age: no problem
    asm = make([IMU, BATTERY + ' max_age=2.0'])
    run(asm, 1.0, 6.0, one_hz)
    assert asm.rows_stale == 0 and asm.problems(6.0) == []


def test_a_label_topic_alone_never_holds_rows_back_and_activation_restarts_the_wait():
    cfg = AssemblerConfig.from_params({'features': [BATTERY], 'label': '/bump std_msgs/msg/Bool '
                                       'data', 'rate': 20.0, 'max_age': 0.5})
    asm = Assembler(cfg)
    run(asm, 1.0, 3.0, lambda t: asm.on_message('/battery', Float64(data=24.0), t) if t < 1.5
        else None)
    (problem,) = asm.problems(3.0)
    assert '/bump' not in problem and '/battery older than max_age' in problem
    asm.on_message('/bump', Bool(data=True), 3.0)  # a label: not a row input
    asm.expect_rows()  # the node's activation after a pause: the wait starts again
    assert asm.seconds_without_rows(10.0) is None and asm.problems(10.0) == []
    run(asm, 10.0, 10.5)
    assert asm.problems(10.5) == []  # 0.5 s without a row since the activation
    run(asm, 10.55, 11.2)
    assert asm.problems(11.2) and asm.seconds_without_rows(11.2) == pytest.approx(1.2)


def test_a_time_jump_back_restarts_the_wait():
    asm = make([BATTERY])
    run(asm, 5.0, 7.0)
    assert asm.problems(7.0)
    asm.on_message('/battery', Float64(data=24.0), 1.0)  # the world reset: time jumped back
    assert asm.time_jumps == 1 and asm.seconds_without_rows(1.0) is None
