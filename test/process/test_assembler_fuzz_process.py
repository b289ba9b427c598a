"""Hostile typed messages against the installed assembler (issue 15, in the style of issue 6's
reliability suite).

One assembler process per test, fed over real DDS one message at a time. Each message is judged
first by an oracle written here from doc/assembler.md's rules (not from nn_one_node.assembly): for
every entry, the value it must now hold (the message's, or the older one when the message's is a
bad reading). Every message carries a sequence number in a field that is always valid, which is
also a feature: the first row that shows it is the row of that message, and its other values
must be exactly the oracle's. The node must never die, never publish a non-finite value, and
count every bad reading in /diagnostics.

Inputs: hypothesis with ``derandomize=True`` (the same examples on every run): LaserScans whose
ranges mix NaN, +-inf, 0.0 dropouts, denormals, float32 extremes and empty arrays, with odd range
bounds (unset, reversed, infinite);
JointStates whose names come in any order, go missing or repeat, with effort arrays too short.
"""

import math
from array import array

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from reliability_kit import Diagnostics, record, refused_by_kind
from rclpy.qos import QoSProfile
from sensor_msgs.msg import JointState, LaserScan
from std_msgs.msg import Float64MultiArray

TIMEOUT = 30.0
FUZZ = settings(derandomize=True, deadline=None, database=None, print_blob=False,
                phases=[Phase.explicit, Phase.generate], max_examples=120,
                suppress_health_check=list(HealthCheck))
F32_MAX = float(np.finfo(np.float32).max)
F32_SPECIAL = [math.nan, math.inf, -math.inf, 0.0, -0.0, 1e-45, F32_MAX, -F32_MAX, 0.5, 3.0]
# Reliable subscriptions here (the documented QoS override): the fuzz is about content, and a
# best-effort reader may drop a message, which is its contract, not a fault of the node.
RELIABLE = {t: {'subscription': {'reliability': 'reliable', 'depth': 10}}
            for t in ('/scan', '/js')}


def f32(values):
    return [float(v) for v in np.asarray(values, dtype=np.float32)]


# ---------------------------------------------------------------------------------- oracle
def scan_oracle(ranges, rmin, rmax):
    """doc/assembler.md's rules for a LaserScan's entries: min, max, mean(ranges), ranges[0],
    ranges[-1], ranges[0:2]; None where the reading is bad. A reading is valid when it is finite
    and in [range_min, range_max]; -inf is range_min; min/max/mean are over the valid ones (and
    the -inf), range_max where there are none; an invalid element is range_max. Bounds that are
    no range refuse every entry; a value that is not finite is a bad reading."""
    r = f32(ranges)
    if not (math.isfinite(rmin) and rmin < rmax):
        return [None] * 6

    def valid(v):
        return rmin <= v <= rmax and math.isfinite(v)

    def read(v):
        return v if valid(v) else rmin if v == -math.inf else rmax

    def ok(v):
        return v if math.isfinite(v) else None
    kept = [read(v) for v in r if valid(v) or v == -math.inf]
    reductions = [None, None, None]
    if kept:
        mean = float(np.mean(np.asarray(kept, dtype=np.float64)))
        reductions = [min(kept), max(kept), mean]
    elif r:
        reductions = [ok(rmax)] * 3  # nothing valid: nothing near

    def element(i):
        if not -len(r) <= i < len(r):
            return None
        return ok(read(r[i]))
    pair = None
    if len(r) >= 2 and element(0) is not None and element(1) is not None:
        pair = [element(0), element(1)]
    return reductions + [element(0), element(-1), pair]


def joint_oracle(names, effort):
    """effort[a]: the element at the first 'a' in names, if effort has it and it is finite."""
    if 'a' not in names:
        return None
    i = names.index('a')
    if i >= len(effort) or not math.isfinite(effort[i]):
        return None
    return float(effort[i])


# ----------------------------------------------------------------------------- generators
ranges_st = st.one_of(
    st.lists(st.sampled_from(F32_SPECIAL), max_size=12),
    st.lists(st.floats(width=32, allow_nan=True, allow_infinity=True), max_size=12),
    st.lists(st.floats(0.125, 10.0, width=32), min_size=1, max_size=800))
bounds_st = st.sampled_from([(0.1, 12.0), (0.0, 0.0), (5.0, 1.0), (0.1, math.inf),
                             (-math.inf, 3.0), (0.1, F32_MAX)])
names_st = st.lists(st.sampled_from(['a', 'b', 'c', 'seq']), max_size=5)
efforts_st = st.lists(st.sampled_from([0.25, -3.0, math.nan, math.inf, 1e300, 0.0]), max_size=5)


class AssemblerUnderFuzz:
    def __init__(self, ros, features, topic, msg_type):
        self.ros = ros
        self.proc = ros.start('assembler', {'features': features, 'rate': 200.0,
                                            'max_age': 1000.0, 'diagnostics_period': 0.05,
                                            'qos_overrides': RELIABLE})
        self.rows = ros.collect(Float64MultiArray, '/features', QoSProfile(depth=1000))
        self.diags = Diagnostics(ros)
        self.pub = ros.publisher(msg_type, topic, QoSProfile(depth=10))
        ros.wait_for_subscribers(self.pub, 1, TIMEOUT)
        self.seq = 0
        self.sent = 0
        self.topic = topic
        self.refused_before = 0

    def check_refused(self, bad: int, what: str) -> None:
        """The node's count of refused readings, once it has counted this message, is the
        oracle's (``bad`` since the first message)."""
        key = f'messages: {self.topic}'
        d = self.diags.wait('assembler', lambda d: int(d[key]) == self.sent, TIMEOUT,
                            f'message {self.sent} counted')
        if self.sent == 1:
            self.refused_before = int(d['readings refused'])
        got = int(d['readings refused']) - self.refused_before
        assert got == bad, f'{what}: refused {got}, the oracle says {bad}; {d}'

    def send(self, msg, stamp_seq) -> np.ndarray:
        """Publish ``msg`` with the next sequence number; return the first row showing it."""
        self.seq += 1
        stamp_seq(msg, float(self.seq))
        before = len(self.rows)
        self.pub.publish(msg)
        self.sent += 1

        def row():
            for r in self.rows[before:]:
                values = np.frombuffer(r.data)
                if values[0] == self.seq:
                    return [values]
            return None
        values = self.ros.spin_until(row, TIMEOUT, f'the row of message {self.seq}')[0]
        assert np.isfinite(values).all(), values
        assert self.proc.alive()
        return values


def test_hostile_laser_scans_give_the_oracles_values_or_keep_the_older_ones(ros):
    features = ['/scan sensor_msgs/msg/LaserScan scan_time',
                '/scan sensor_msgs/msg/LaserScan min(ranges)',
                '/scan sensor_msgs/msg/LaserScan max(ranges)',
                '/scan sensor_msgs/msg/LaserScan mean(ranges)',
                '/scan sensor_msgs/msg/LaserScan ranges[0]',
                '/scan sensor_msgs/msg/LaserScan ranges[-1]',
                '/scan sensor_msgs/msg/LaserScan ranges[0:2]']
    fuzz = AssemblerUnderFuzz(ros, features, '/scan', LaserScan)

    def stamp_seq(msg, k):
        msg.scan_time = k
    bad = 0

    def send(ranges, rmin, rmax):
        nonlocal bad
        msg = LaserScan(range_min=rmin, range_max=rmax)
        msg.ranges = array('f', ranges)
        oracle = scan_oracle(ranges, float(np.float32(rmin)), float(np.float32(rmax)))
        for i, v in enumerate(oracle[:5]):
            if v is None:
                bad += 1
            else:
                expected[1 + i] = v
        if oracle[5] is None:
            bad += 1
        else:
            expected[6:8] = oracle[5]
        row = fuzz.send(msg, stamp_seq)
        fuzz.check_refused(bad, f'ranges={ranges} bounds=({rmin}, {rmax})')
        if all(v is not None for v in expected):
            np.testing.assert_allclose(row[1:], expected[1:], rtol=1e-12, atol=0,
                                       err_msg=f'ranges={ranges} bounds=({rmin}, {rmax})')
    # a valid scan first, so that every entry holds a value and rows flow
    expected = [None] * 8  # the feature values held (None: not yet)
    send([1.0, 2.0, 3.0], 0.1, 12.0)
    bad = 0

    @FUZZ
    @given(ranges_st, bounds_st)
    def fuzz_one(ranges, bounds):
        send(ranges, *bounds)
    fuzz_one()
    d = fuzz.diags.wait('assembler', lambda d: int(d['messages: /scan']) == fuzz.sent,
                        TIMEOUT, 'every message counted')
    assert int(d['readings refused']) == bad, (bad, d)
    assert set(refused_by_kind(d)) <= {'non-finite', 'empty', 'index out of range',
                                       'range bounds'}
    record('assembler_fuzz_scan', {'messages': fuzz.sent, 'bad readings counted': bad,
                                   'by kind': refused_by_kind(d)})
    assert fuzz.proc.stop() == 0


def test_joint_states_in_any_order_missing_or_repeated_names(ros):
    features = ['/js sensor_msgs/msg/JointState velocity[seq]',
                '/js sensor_msgs/msg/JointState effort[a]']
    fuzz = AssemblerUnderFuzz(ros, features, '/js', JointState)
    held = {'a': None}
    bad = 0

    def send(names, effort, seq_at):
        nonlocal bad
        names = list(names)
        names.insert(min(seq_at, len(names)), 'seq')  # velocity[seq] always readable
        velocity = [0.0] * len(names)
        msg = JointState(name=names, velocity=velocity, effort=effort)

        def stamp_seq(m, k):
            m.velocity[m.name.index('seq')] = k
        value = joint_oracle(names, effort)
        if value is None:
            bad += 1
        else:
            held['a'] = value
        row = fuzz.send(msg, stamp_seq)
        fuzz.check_refused(bad, f'names={names} effort={effort}')
        if held['a'] is not None:
            assert row[1] == held['a'], (names, effort, row)
    send(['a'], [0.0, 0.5], 0)  # names ['seq', 'a']: effort[a] is 0.5
    bad = 0

    @FUZZ
    @given(names_st, efforts_st, st.integers(0, 5))
    def fuzz_one(names, effort, seq_at):
        if 'seq' in names:
            names = [n for n in names if n != 'seq']
        send(names, effort, seq_at)
    fuzz_one()
    d = fuzz.diags.wait('assembler', lambda d: int(d['messages: /js']) == fuzz.sent,
                        TIMEOUT, 'every message counted')
    assert int(d['readings refused']) == bad, (bad, d)
    assert set(refused_by_kind(d)) <= {'missing name', 'index out of range', 'non-finite'}
    record('assembler_fuzz_joint_states', {'messages': fuzz.sent, 'bad readings counted': bad,
                                           'by kind': refused_by_kind(d)})
    assert fuzz.proc.stop() == 0
