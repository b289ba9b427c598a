"""The installed ``assembler`` as a process, fed real typed messages over DDS by the test node
(sensor_msgs Imu, LaserScan, JointState, nav_msgs Odometry, std_msgs Bool, geometry_msgs
PointStamped, rosgraph_msgs Clock): every path form, feature_names through GetParameters,
staleness and refusals in /diagnostics, the delayed join with labels out of order under
use_sim_time, a backward /clock jump, bad configurations (exit 2 and the reason), what
/diagnostics WARN when no row is published: an input never heard from, one older than max_age;
and a TurtleBot3's front sector (wrapping around a scan from angle 0, with 0.0 dropouts) beside
a 1 Hz battery with its own max_age."""

import math
import re
from array import array

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PointStamped
from nav_msgs.msg import Odometry
from reliability_kit import Diagnostics, refused_by_kind
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import BatteryState, Imu, JointState, LaserScan
from std_msgs.msg import Bool, Float64, Float64MultiArray

TIMEOUT = 30.0

PATH_FORMS = [
    '/imu sensor_msgs/msg/Imu linear_acceleration.z',
    '/scan sensor_msgs/msg/LaserScan ranges[0]',
    '/scan sensor_msgs/msg/LaserScan ranges[-1]',
    '/scan sensor_msgs/msg/LaserScan ranges[0:8:4]',
    '/scan sensor_msgs/msg/LaserScan min(ranges)',
    '/scan sensor_msgs/msg/LaserScan max(ranges)',
    '/scan sensor_msgs/msg/LaserScan mean(ranges)',
    '/joint_states sensor_msgs/msg/JointState effort[left_wheel_joint]',
    '/odom nav_msgs/msg/Odometry twist.twist.linear.x',
    '/bump std_msgs/msg/Bool data',
]
NAMES = ['/imu/linear_acceleration.z', '/scan/ranges[0]', '/scan/ranges[-1]',
         '/scan/ranges[0]', '/scan/ranges[4]', 'min(/scan/ranges)', 'max(/scan/ranges)',
         'mean(/scan/ranges)', '/joint_states/effort[left_wheel_joint]',
         '/odom/twist.twist.linear.x', '/bump/data']


def stamp_of(t: float) -> Time:
    ns = int(round(t * 1e9))
    return Time(sec=ns // 10**9, nanosec=ns % 10**9)


class Robot:
    """The test node's publishers of a small robot's typed topics."""

    def __init__(self, ros) -> None:
        self.ros = ros
        self.imu = ros.publisher(Imu, '/imu')
        self.scan = ros.publisher(LaserScan, '/scan')
        self.joints = ros.publisher(JointState, '/joint_states')
        self.odom = ros.publisher(Odometry, '/odom')
        self.bump = ros.publisher(Bool, '/bump')

    def wait(self) -> None:
        for pub in (self.imu, self.scan, self.joints, self.odom, self.bump):
            self.ros.wait_for_subscribers(pub, 1, TIMEOUT)

    def publish(self, k: int, stamp: Time, bump: bool = True, names=None) -> None:
        imu = Imu()
        imu.header.stamp = stamp
        imu.linear_acceleration.z = 9.81 + k
        self.imu.publish(imu)
        scan = LaserScan(range_min=0.1, range_max=12.0)
        scan.header.stamp = stamp
        scan.ranges = array('f', [math.inf, 2.0, math.nan, 4.0, 1.5 + k, 6.0, 7.0, 0.5])
        self.scan.publish(scan)
        names = names or (['left_wheel_joint', 'right_wheel_joint'] if k % 2 else
                          ['right_wheel_joint', 'caster', 'left_wheel_joint'])
        effort = {'left_wheel_joint': 0.25 * k, 'right_wheel_joint': -1.0, 'caster': 5.0}
        js = JointState(name=names, effort=[effort.get(n, 0.0) for n in names])
        js.header.stamp = stamp
        self.joints.publish(js)
        odom = Odometry()
        odom.header.stamp = stamp
        odom.twist.twist.linear.x = 0.1 * k
        self.odom.publish(odom)
        if bump:
            self.bump.publish(Bool(data=bool(k % 2)))


def expected_row(k: int) -> list:
    valid = [2.0, 4.0, 1.5 + k, 6.0, 7.0, 0.5]  # +inf (no return) and NaN left out
    return [9.81 + k, 12.0, 0.5, 12.0, 1.5 + k, min(valid), max(valid),  # ranges[0] inf: far
            float(np.mean(np.asarray(valid, np.float32).astype(np.float64))),
            0.25 * k, 0.1 * k, float(k % 2)]


def test_every_path_form_from_typed_topics_with_names_stale_inputs_and_bad_messages(ros):
    proc = ros.start('assembler', {'features': PATH_FORMS, 'rate': 20.0, 'max_age': 1.0,
                                   'diagnostics_period': 0.1})
    rows = ros.collect(Float64MultiArray, '/features')
    diags = Diagnostics(ros)
    robot = Robot(ros)
    robot.wait()
    for k in (3, 4):  # names in both orders (JointState), each row exactly as expected
        def row_of_k(k=k):
            robot.publish(k, ros.node.get_clock().now().to_msg())
            ros.spin_for(0.1)
            return any(np.allclose(np.frombuffer(r.data), expected_row(k), rtol=1e-6)
                       for r in rows)
        ros.spin_until(row_of_k, TIMEOUT, f'a features row for step {k}')
    assert all(len(r.data) == len(NAMES) and not r.layout.dim for r in rows)
    assert ros.get_parameters('/assembler', ['feature_names'])['feature_names'] == NAMES
    assert 'feature_names: ' + ', '.join(NAMES) in proc.output()

    # bad messages: a joint missing, an effort array too short; the node goes on
    def now():  # a fresh stamp at each call (a bound to_msg of one Time would keep its stamp)
        return ros.node.get_clock().now().to_msg()
    for names, effort in ((['right_wheel_joint'], [1.0]), (['left_wheel_joint'], [])):
        bad = JointState(name=names, effort=effort)
        bad.header.stamp = now()
        robot.joints.publish(bad)
    d = diags.wait('assembler', lambda d: {'missing name', 'index out of range'}
                   <= set(refused_by_kind(d)), TIMEOUT, 'the bad JointStates counted')
    assert int(d['readings refused']) >= 2 and proc.alive()

    # /bump stops (no header: its age is by arrival): rows stop, counted stale by input
    imu_stale = diags.of('assembler').get('stale: /imu/linear_acceleration.z')  # from the start

    def stale_counted():
        robot.publish(5, now(), bump=False)
        ros.spin_for(0.05)
        d = diags.of('assembler')
        return d and int(d.get('stale: /bump/data', 0)) > 0
    ros.spin_until(stale_counted, TIMEOUT, '/bump counted stale')
    assert diags.of('assembler').get('stale: /imu/linear_acceleration.z') == imu_stale

    def assembling_again():  # once /bump is back
        robot.publish(6, now())
        ros.spin_for(0.05)
        return rows and np.allclose(np.frombuffer(rows[-1].data), expected_row(6), rtol=1e-6)
    ros.spin_until(assembling_again, TIMEOUT, 'rows again')
    assert proc.alive()
    assert proc.stop() == 0


def test_the_delayed_join_out_of_order_and_a_clock_jump_back_with_sim_time(ros):
    """/clock from the test: rows at 20 Hz of simulated time, labels 0.5 s late arriving shuffled,
    a gap in the inputs (labels of it unmatched), then the world reset: /clock jumps back."""
    proc = ros.start('assembler', {
        'features': ['/imu sensor_msgs/msg/Imu linear_acceleration.z',
                     '/odom nav_msgs/msg/Odometry twist.twist.linear.x'],
        'label': '/slip geometry_msgs/msg/PointStamped point.x',
        'rate': 20.0, 'max_age': 0.12, 'label_delay': 0.5, 'max_join_gap': 0.03,
        'history': 5.0, 'diagnostics_period': 0.05, 'use_sim_time': True,
        # labels come in bursts here: a reliable subscription of depth 100 keeps them all
        # (sensor-data QoS, the default, keeps 5), which also shows the override works
        'qos_overrides': {'/slip': {'subscription': {'reliability': 'reliable',
                                                     'depth': 100}}}})
    clock = ros.publisher(Clock, '/clock')
    imu = ros.publisher(Imu, '/imu')
    odom = ros.publisher(Odometry, '/odom')
    slip = ros.publisher(PointStamped, '/slip')
    rows = ros.collect(Float64MultiArray, '/features')
    samples = ros.collect(Float64MultiArray, '/labeled_samples')
    diags = Diagnostics(ros)
    for pub in (clock, imu, odom, slip):
        ros.wait_for_subscribers(pub, 1, TIMEOUT)
    step_ns = 50_000_000

    def inputs(t_ns: int, value: float) -> None:
        m = Imu()
        m.header.stamp = Time(sec=t_ns // 10**9, nanosec=t_ns % 10**9)
        m.linear_acceleration.z = value
        imu.publish(m)
        o = Odometry()
        o.header.stamp = m.header.stamp
        o.twist.twist.linear.x = value
        odom.publish(o)

    sim = {'ns': 0}

    def publish_clock(t_ns: int) -> None:
        sim['ns'] = t_ns
        clock.publish(Clock(clock=Time(sec=t_ns // 10**9, nanosec=t_ns % 10**9)))

    def diagnostics_when(check, what):
        # /diagnostics runs on ROS time too: time must pass for it to be published
        def ok():
            publish_clock(sim['ns'] + 1_000_000)
            d = diags.of('assembler')
            return d if d is not None and check(d) else None
        return ros.spin_until(ok, TIMEOUT, what)

    def run(start_ns: int, steps: int, sign: float, gap=range(0)) -> None:
        for k in range(steps):
            t_ns = start_ns + k * step_ns
            if k not in gap:
                inputs(t_ns, sign * t_ns / 1e9)
            before = len(rows)
            publish_clock(t_ns)
            if k in gap or k - 3 in gap or k < 2:
                ros.spin_for(0.05)  # rows may be skipped here: nothing to wait for
            else:
                ros.spin_until(lambda: len(rows) > before, TIMEOUT, f'the row of tick {k}')
    def first_row():  # the whole loop matched: /clock, the inputs, the features
        publish_clock(sim['ns'] + step_ns if sim['ns'] else 9 * 10**9)
        inputs(sim['ns'], 9.0)
        ros.spin_for(0.05)
        return rows
    ros.spin_until(first_row, TIMEOUT, 'a first row')
    assert sim['ns'] < 10 * 10**9
    run(10 * 10**9, 60, 1.0, gap=range(30, 40))  # 10.00 .. 12.95 s; no inputs 11.50 .. 11.95
    assert rows and all(len(r.data) == 2 for r in rows)

    moments = [10.5, 11.0, 10.2, 11.75, 11.2, 10.8]  # 11.75 falls in the gap
    for m in moments:
        label = PointStamped()
        label.header.stamp = stamp_of(m + 0.5)
        label.point.x = 1.0 if m > 11.0 else 0.0
        slip.publish(label)
    ros.spin_until(lambda: len(samples) >= len(moments) - 1, TIMEOUT, 'the labeled samples')
    got = sorted((s.data[0], s.data[1], s.data[2]) for s in samples)
    joined = sorted(m for m in moments if m != 11.75)
    assert len(got) == len(joined)
    for (a, b, y), m in zip(got, joined):
        # the row of tick m holds the inputs of m, or of m - 0.05 if they came after the tick
        assert m - 0.05 - 1e-9 <= a <= m + 1e-9 and a == b, (a, m)
        assert y == (1.0 if m > 11.0 else 0.0)
    d = diagnostics_when(lambda d: int(d['labels unmatched']) == 1,
                         'the label of the gap unmatched')
    assert int(d['labels joined']) == 5
    assert int(d['stale: /imu/linear_acceleration.z']) > 0
    assert int(d['stale: /odom/twist.twist.linear.x']) > 0

    # the world resets: /clock jumps back to 1 s
    future_before = int(d.get('refused: future stamp', 0))
    publish_clock(10**9)
    proc.wait_for_output('Detected jump back in time', TIMEOUT)
    marker = len(rows)
    old = PointStamped()
    old.header.stamp = stamp_of(12.9)  # a label of the old timeline, still in flight
    old.point.x = 1.0
    slip.publish(old)
    run(1 * 10**9 + step_ns, 30, -1.0)  # the new timeline: negative values
    # rows of the old timeline may still be in flight at the marker; none after the first of
    # the new one, and no row mixes both (positive: before the jump, negative: after)
    after = [np.frombuffer(r.data) for r in rows[marker:]]
    first_new = next(i for i, row in enumerate(after) if (row < 0).any())
    assert first_new <= 2 and all((row < 0).all() for row in after[first_new:]), after[:4]
    assert all((row > 0).all() for row in after[:first_new])
    d = diagnostics_when(lambda d: int(d.get('refused: future stamp', 0)) > future_before,
                         'the old-timeline label refused')
    assert int(d['time jumps']) == 1 and int(d['labels joined']) == 5
    n = len(samples)
    label = PointStamped()
    label.header.stamp = stamp_of(2.0)  # the new timeline's moment 1.5
    label.point.x = 1.0

    def new_sample():
        slip.publish(label)  # best effort: sent again until one lands
        ros.spin_for(0.05)
        return len(samples) > n
    ros.spin_until(new_sample, TIMEOUT, 'a sample of the new timeline')
    assert samples[-1].data[0] < 0 and samples[-1].data[2] == 1.0
    assert proc.output().count('Detected jump back in time') == 1
    assert proc.stop() == 0


@pytest.mark.parametrize('params,reason', [
    ({'features': ['/x no_such_pkg_xyz/msg/Foo data']}, "no interface package 'no_such_pkg_xyz'"),
    ({'features': ['/odom nav_msgs/msg/Odometry twist.twist.linear.w']}, "no field 'w'"),
    ({'features': ['/scan sensor_msgs/msg/LaserScan header.frame_id']}, 'not a number'),
    ({'features': ['/imu sensor_msgs/msg/Imu linear_acceleration.z'],
      'label': '/scan sensor_msgs/msg/LaserScan ranges[0:4]'}, 'is a slice'),
    ({}, 'features is empty'),
])
def test_bad_configuration_exits_2_naming_the_entry(ros, params, reason):
    proc = ros.start('assembler', params)
    proc.proc.wait(timeout=TIMEOUT)
    assert proc.proc.returncode == 2, proc.output()
    out = proc.output()
    assert 'cannot start' in out and reason in out, out
    for entry in params.get('features', []) + ([params['label']] if 'label' in params else []):
        if reason in out and entry in out:
            break
    else:
        assert not params, f'the entry is not named: {out}'


def test_a_float64_input_and_label_by_threshold_without_headers(ros):
    """Headerless topics (std_msgs/Float64): ages by arrival, the label by label_threshold."""
    ros.start('assembler', {'features': ['/speed std_msgs/msg/Float64 data'],
                            'label': '/current std_msgs/msg/Float64 data',
                            'label_threshold': 10.0, 'rate': 50.0, 'max_age': 1.0,
                            'max_join_gap': 0.05})
    speed = ros.publisher(Float64, '/speed')
    current = ros.publisher(Float64, '/current')
    samples = ros.collect(Float64MultiArray, '/labeled_samples')
    rows = ros.collect(Float64MultiArray, '/features')
    ros.wait_for_subscribers(speed, 1, TIMEOUT)
    ros.wait_for_subscribers(current, 1, TIMEOUT)
    ros.spin_until(lambda: speed.publish(Float64(data=0.5)) or rows, TIMEOUT, 'rows')

    def labeled():
        speed.publish(Float64(data=0.5))
        current.publish(Float64(data=12.5))
        ros.spin_for(0.05)
        return samples
    ros.spin_until(labeled, TIMEOUT, 'a labeled sample')
    assert samples[0].data.tolist() == [0.5, 1.0]


def test_no_rows_is_a_warning_naming_the_input_never_heard_or_older_than_max_age(ros):
    proc = ros.start('assembler', {'features': ['/imu sensor_msgs/msg/Imu linear_acceleration.z',
                                                '/battery std_msgs/msg/Float64 data'],
                                   'rate': 20.0, 'max_age': 0.5, 'diagnostics_period': 0.2})
    imu = ros.publisher(Imu, '/imu')
    battery = ros.publisher(Float64, '/battery')
    rows = ros.collect(Float64MultiArray, '/features')
    diags = ros.collect(DiagnosticArray, '/diagnostics')
    for pub in (imu, battery):
        ros.wait_for_subscribers(pub, 1, TIMEOUT)

    def publish(imu_behind: float, with_battery: bool) -> None:
        msg = Imu()
        t = ros.node.get_clock().now().nanoseconds - int(imu_behind * 1e9)
        msg.header.stamp = Time(sec=t // 10**9, nanosec=t % 10**9)
        msg.linear_acceleration.z = 9.81
        imu.publish(msg)
        if with_battery:
            battery.publish(Float64(data=24.0))

    def status_while(imu_behind: float, with_battery: bool, check, what):
        """Publishing every ~50 ms, the assembler's first status from now on that ``check``."""
        start = len(diags)

        def found():
            publish(imu_behind, with_battery)
            return next((s for msg in diags[start:] for s in msg.status
                         if s.name.endswith(': assembler') and check(s)), None)
        return ros.spin_until(found, TIMEOUT, what)

    # /battery never heard from: after a second without a row, WARN, naming it
    s = status_while(0.0, False, lambda s: s.level == DiagnosticStatus.WARN, 'the WARN')
    assert s.message.startswith('no row published for '), s.message
    assert s.message.endswith('(a row needs every input younger than max_age 0.5 s): no message '
                              'yet on /battery'), s.message
    values = {kv.key: kv.value for kv in s.values}
    assert float(values['seconds since last row']) >= 1.0 and values['rows published'] == '0'
    assert not rows

    # /battery fresh, /imu arriving every 50 ms but stamped 0.9 s back: older than max_age
    s = status_while(0.9, True, lambda s: '/imu older than max_age' in s.message, 'the old /imu')
    assert s.level == DiagnosticStatus.WARN, s
    # 0.9 s and the time since the newest message (up to a spin's delay on a busy machine)
    age = r'(0\.9\d*|1(\.\d+)?) s'
    assert re.search(rf'/imu older than max_age \({age} > 0\.5 s\): messages arrive, stamped '
                     rf'{age} behind the clock', s.message), s.message
    assert 'no message' not in s.message and '/battery' not in s.message, s.message
    assert not rows

    # both fresh: rows, and OK
    s = status_while(0.0, True, lambda s: s.level == DiagnosticStatus.OK, 'OK with rows')
    assert s.message == 'assembling' and rows
    assert proc.alive() and proc.stop() == 0


def lds_scan(stamp: Time, front: dict, back: float = 0.2) -> LaserScan:
    """A TurtleBot3 LDS-01 scan: 360 beams from angle 0, 1 degree apart; the front (330..359,
    0..30) all dropouts (0.0) but the beams in ``front``, the rest ``back``."""
    ranges = [0.0 if i >= 330 or i <= 30 else back for i in range(360)]
    for i, r in front.items():
        ranges[i] = r
    scan = LaserScan(angle_min=0.0, angle_max=6.2657318, angle_increment=0.0174533,
                     range_min=0.12, range_max=3.5, ranges=array('f', ranges))
    scan.header.stamp = stamp
    return scan


def test_a_front_sector_across_the_scan_ends_and_a_1hz_battery_with_its_own_max_age(ros):
    proc = ros.start('assembler', {
        'features': ['/scan sensor_msgs/msg/LaserScan min(ranges@-30:30)',
                     '/scan sensor_msgs/msg/LaserScan mean(ranges@-30:30)',
                     '/imu sensor_msgs/msg/Imu linear_acceleration.z',
                     '/battery sensor_msgs/msg/BatteryState voltage max_age=2.0'],
        'rate': 20.0, 'max_age': 0.3, 'diagnostics_period': 0.1})
    scan_pub = ros.publisher(LaserScan, '/scan')
    imu_pub = ros.publisher(Imu, '/imu')
    battery_pub = ros.publisher(BatteryState, '/battery')
    rows = ros.collect(Float64MultiArray, '/features')
    statuses = ros.collect(DiagnosticArray, '/diagnostics')
    for pub in (scan_pub, imu_pub, battery_pub):
        ros.wait_for_subscribers(pub, 1, TIMEOUT)
    clock = ros.node.get_clock()
    # beams 345 and 15 valid, 31 and 329 (just outside) and the back nearer: not in the sector
    front = {345: 0.6, 15: 0.8, 31: 0.3, 329: 0.3}

    def publish(front=front, battery=False):
        stamp = clock.now().to_msg()
        scan_pub.publish(lds_scan(stamp, front))
        imu = Imu()
        imu.header.stamp = stamp
        imu.linear_acceleration.z = 9.81
        imu_pub.publish(imu)
        if battery:
            msg = BatteryState(voltage=12.0)
            msg.header.stamp = stamp
            battery_pub.publish(msg)
        ros.spin_for(0.05)

    def seconds(t) -> float:
        return t.sec + t.nanosec * 1e-9

    def status_after(t: float, check=lambda s: True):
        """The assembler's first status stamped at or after ROS time t that passes check, as
        (stamp, status)."""
        return next(((seconds(m.header.stamp), s) for m in list(statuses)
                     if seconds(m.header.stamp) >= t for s in m.status
                     if s.name.endswith(': assembler') and check(s)), None)

    # the battery once (best effort: again until a row shows it arrived), then never again
    ros.spin_until(lambda: publish(battery=True) or rows, TIMEOUT, 'the first row')
    t0 = clock.now().nanoseconds * 1e-9   # the battery's newest stamp is before this
    first = np.frombuffer(rows[0].data)
    np.testing.assert_allclose(first, [0.6, (0.6 + 0.8) / 2, 9.81, 12.0], rtol=1e-6)

    def status_at(t: float, front=front):
        return ros.spin_until(lambda: publish(front) or status_after(t), TIMEOUT,
                              f'a status at {t:.1f} s')
    _, status = status_at(t0)
    before = {kv.key: kv.value for kv in status.values}
    # a second later (three times max_age 0.3 s): rows still flow, the battery is not stale;
    # the front all dropouts meanwhile: nothing near, range_max
    stamp, status = status_at(t0 + 1.0, front={})
    after = {kv.key: kv.value for kv in status.values}
    assert stamp < t0 + 1.9, f'the status of {stamp - t0:.2f} s is too late to judge'
    assert after.get('stale: /battery/voltage') == before.get('stale: /battery/voltage')
    assert int(after['rows published']) - int(before['rows published']) >= 10, (before, after)
    assert after['max_age: /battery'] == '2' and after['max_age: /imu'] == '0.3'
    assert np.frombuffer(rows[-1].data).tolist()[:2] == [3.5, 3.5]

    # the battery silent for more than its own 2 s: rows stop, and the WARN says why
    _, warn = ros.spin_until(
        lambda: publish({}) or status_after(t0 + 2.0, lambda s: s.level == DiagnosticStatus.WARN),
        TIMEOUT, 'the WARN of the silent battery')
    assert '(a row needs every input younger than its max_age: /battery 2 s, others 0.3 s)' \
        in warn.message, warn.message
    assert re.search(r'/battery older than max_age \([\d.]+ s > 2 s\): no message for',
                     warn.message), warn.message
    assert '/imu' not in warn.message and '/scan' not in warn.message
    assert proc.alive() and proc.stop() == 0
