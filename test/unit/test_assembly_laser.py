"""A LaserScan as its users know it, no ROS graph: readings outside [range_min, range_max] (0.0
dropouts, NaN, +inf, too near, too far) left out of min/max/mean, an all-invalid selection read
as nothing near (range_max), -inf as range_min, and a sector chosen by angle (``ranges@a:b``)
that wraps around the array's ends, with real sensor_msgs and rosbags messages."""

import math
from array import array

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sensor_msgs.msg import LaserScan

from nn_one_node.assembly.assembler import Assembler
from nn_one_node.assembly.config import AssemblerConfig
from nn_one_node.assembly.errors import ConfigError
from nn_one_node.assembly.sector import Sector

INF, NAN = math.inf, math.nan
DEG = math.radians(1.0)
# A TurtleBot3 LDS-01 scan: 360 beams from angle 0, float32 angles as the driver sends them.
LDS = {'angle_min': 0.0, 'angle_increment': 0.0174533, 'range_min': 0.12, 'range_max': 3.5}


def make(*features):
    refused = []
    cfg = AssemblerConfig.from_params({'features': list(features)})
    asm = Assembler(cfg, on_refusal=lambda kind, reason: refused.append((kind, reason)))
    return asm, refused


def scan(ranges, intensities=(), **fields):
    fields = {**LDS, **fields}
    msg = LaserScan(**fields)
    msg.angle_max = fields['angle_min'] + (len(ranges) - 1) * fields['angle_increment']
    msg.ranges = array('f', ranges)
    msg.intensities = array('f', intensities)
    return msg


def values(asm, msg, topic='/scan'):
    asm.on_message(topic, msg, 1.0)
    return asm._values.tolist()


ENTRIES = ['/scan sensor_msgs/msg/LaserScan min(ranges)',
           '/scan sensor_msgs/msg/LaserScan max(ranges)',
           '/scan sensor_msgs/msg/LaserScan mean(ranges)']


# ------------------------------------------------------------------------ invalid readings
def test_readings_outside_the_bounds_are_left_out_of_min_max_mean():
    asm, refused = make(*ENTRIES)
    # a dropout (0.0), NaN, no return (+inf), nearer than range_min, farther than range_max
    got = values(asm, scan([0.0, NAN, INF, 0.05, 4.0, 1.0, 2.0]))
    assert got == pytest.approx([1.0, 2.0, 1.5])
    # the bounds themselves are valid readings
    assert values(asm, scan([0.12, 3.5, 0.0])) == pytest.approx([0.12, 3.5, (0.12 + 3.5) / 2])
    assert not refused


def test_minus_infinity_is_an_object_closer_than_range_min_rep_117():
    asm, refused = make(*ENTRIES)
    assert values(asm, scan([-INF, 2.0, 0.0])) == pytest.approx([0.12, 2.0, (0.12 + 2) / 2])
    assert values(asm, scan([-INF, NAN])) == pytest.approx([0.12] * 3)
    assert not refused


@pytest.mark.parametrize('ranges', [[0.0] * 5, [NAN] * 5, [INF] * 5, [0.0, NAN, INF, 9.0]])
def test_a_selection_without_a_valid_reading_is_nothing_near_range_max(ranges):
    asm, refused = make(*ENTRIES, '/scan sensor_msgs/msg/LaserScan min(ranges@-30:30)')
    assert values(asm, scan(ranges)) == [3.5] * 4
    assert not refused and asm._stamps == [1.0] * 4


def test_an_invalid_element_is_a_sector_of_one_beam():
    asm, refused = make('/scan sensor_msgs/msg/LaserScan ranges[0]',
                        '/scan sensor_msgs/msg/LaserScan ranges[0:4]')
    for reading, value in [(0.0, 3.5), (NAN, 3.5), (INF, 3.5), (9.0, 3.5), (-INF, 0.12),
                           (1.25, 1.25)]:
        got = values(asm, scan([reading, 0.0, 2.0, -INF]))
        assert got == pytest.approx([value, value, 3.5, 2.0, 0.12]), reading
    assert not refused


def test_bounds_that_are_no_range_refuse_the_message_and_the_input_keeps_its_value():
    asm, refused = make(*ENTRIES, '/scan sensor_msgs/msg/LaserScan ranges[0]')
    before = values(asm, scan([1.0, 2.0]))
    # a driver that leaves range_min and range_max unset, sets them NaN, reversed, or -inf
    for bounds in ({'range_min': 0.0, 'range_max': 0.0}, {'range_max': NAN},
                   {'range_min': 5.0, 'range_max': 1.0}, {'range_min': -INF}):
        asm.on_message('/scan', scan([1.5, 2.5], **bounds), 2.0)
    assert asm._values.tolist() == before and asm._stamps == [1.0] * 4
    assert {k for k, _ in refused} == {'range bounds'} and len(refused) == 16
    assert 'range_min 0 and range_max 0 are no range' in refused[0][1]
    # range_max inf: finite readings in range are valid (+inf is still no return); nothing
    # valid cannot be given a finite value
    refused.clear()
    assert values(asm, scan([1.0, INF, 0.0], range_max=INF)) == pytest.approx([1.0] * 4)
    asm.on_message('/scan', scan([0.0, INF], range_max=INF), 2.0)
    assert {k for k, _ in refused} == {'non-finite'} and len(refused) == 4


# ---------------------------------------------------------------------------------- sectors
def marked(in_sector, n=360, inside=1.0, outside=2.0):
    """Ranges ``inside`` on the beams in_sector(i), ``outside`` elsewhere."""
    return [inside if in_sector(i) else outside for i in range(n)]


def test_the_front_of_a_scan_from_angle_0_wraps_around_the_array_ends():
    asm, refused = make('/scan sensor_msgs/msg/LaserScan min(ranges@-30:30)',
                        '/scan sensor_msgs/msg/LaserScan max(ranges@-30:30)',
                        '/scan sensor_msgs/msg/LaserScan mean(ranges@330:390)')
    assert asm.feature_names == ['min(/scan/ranges@-30:30)', 'max(/scan/ranges@-30:30)',
                                 'mean(/scan/ranges@330:390)']
    front = marked(lambda i: i >= 330 or i <= 30)   # beams 330..359 and 0..30: 61 beams
    assert values(asm, scan(front)) == pytest.approx([1.0, 1.0, 1.0])
    # the beams just outside (329, 31) and the back do not count; those on the edges do
    ranges = [3.0] * 360
    ranges[329] = ranges[31] = ranges[180] = 0.2
    ranges[330], ranges[30] = 0.5, 3.4
    assert values(asm, scan(ranges))[:2] == pytest.approx([0.5, 3.4])
    assert not refused


def test_the_same_sector_of_a_scan_from_minus_180_degrees_is_the_middle_of_the_array():
    asm, refused = make('/scan sensor_msgs/msg/LaserScan mean(ranges@-30:30)',
                        '/scan sensor_msgs/msg/LaserScan min(ranges@150:210)')
    msg = scan(marked(lambda i: 150 <= i <= 210), angle_min=-math.pi, angle_increment=DEG)
    # -30..30 degrees are beams 150..210; the back (150..210 degrees) wraps: 330..359, 0..30
    msg.ranges[0] = 0.25
    assert values(asm, msg) == pytest.approx([1.0, 0.25])
    assert not refused


def test_invalid_readings_in_a_sector_are_left_out_and_an_all_invalid_sector_is_far():
    asm, refused = make('/scan sensor_msgs/msg/LaserScan min(ranges@-30:30)',
                        '/scan sensor_msgs/msg/LaserScan mean(ranges@-30:30)')
    ranges = marked(lambda i: i >= 330 or i <= 30, inside=0.0)  # the front all dropouts
    ranges[180] = 0.3                                           # something behind
    assert values(asm, scan(ranges)) == [3.5, 3.5]
    ranges[340], ranges[10], ranges[20] = NAN, 1.0, 2.0
    assert values(asm, scan(ranges)) == pytest.approx([1.0, 1.5])
    assert not refused


def test_the_beams_of_a_sector_are_found_once_per_scan_geometry():
    sector = Sector(-30.0, 30.0)
    first = sector.indices(0.0, 0.0174533, 360)
    assert first.tolist() == list(range(0, 31)) + list(range(330, 360))
    assert sector.indices(0.0, 0.0174533, 360) is first         # the cached array
    assert sector.indices(0.0, 0.0174533, 720) is not first
    # a reversed scan (negative increment) has the same beams where its angles are the same
    back = Sector(150.0, 210.0).indices(math.pi, -DEG, 360)
    assert back.tolist() == list(range(0, 31)) + list(range(330, 360))


def test_a_scan_whose_angles_miss_the_sector_or_are_unusable_is_refused_with_a_reason():
    asm, refused = make('/scan sensor_msgs/msg/LaserScan min(ranges@170:190)')
    # a 90-degree scan facing forward has no beam behind
    asm.on_message('/scan', scan([1.0] * 91, angle_min=-math.pi / 4, angle_increment=DEG), 1.0)
    asm.on_message('/scan', scan([1.0] * 10, angle_increment=0.0), 1.0)
    asm.on_message('/scan', scan([], angle_increment=DEG), 1.0)
    assert [k for k, _ in refused] == ['empty', 'scan angles', 'empty']
    assert 'no beam of this scan lies in the sector' in refused[0][1]
    assert '-45 to 45 degrees' in refused[0][1]
    assert asm._stamps == [-math.inf]


def test_a_sector_of_intensities_is_not_a_range():
    asm, refused = make('/scan sensor_msgs/msg/LaserScan max(intensities@-30:30)')
    intensities = marked(lambda i: i <= 30 or i >= 330, inside=50.0, outside=90.0)
    intensities[0] = NAN   # ignored, as in any array that holds no ranges
    assert values(asm, scan([1.0] * 360, intensities)) == [50.0]
    assert not refused


def test_a_rosbags_scan_works_as_an_rclpy_one():
    from rosbags.typesys import Stores, get_typestore
    types = get_typestore(Stores.ROS2_JAZZY).types
    header = types['std_msgs/msg/Header'](
        stamp=types['builtin_interfaces/msg/Time'](sec=1, nanosec=0), frame_id='base_scan')
    ranges = np.array(marked(lambda i: i >= 330 or i <= 30, inside=0.0), dtype=np.float32)
    ranges[5] = 0.8
    msg = types['sensor_msgs/msg/LaserScan'](
        header=header, angle_min=0.0, angle_max=6.2657318, angle_increment=0.0174533,
        time_increment=0.0, scan_time=0.2, range_min=0.12, range_max=3.5, ranges=ranges,
        intensities=np.zeros(0, dtype=np.float32))
    asm, refused = make('/scan sensor_msgs/msg/LaserScan min(ranges@-30:30)')
    assert values(asm, msg) == pytest.approx([0.8]) and not refused


MALFORMED = {
    'min(ranges@-30)': 'is not <from>:<to> in degrees',
    'min(ranges@-30:30:5)': 'is not <from>:<to> in degrees',
    'min(ranges@a:30)': "'a' is not an angle in degrees",
    'min(ranges@-30:inf)': 'is not a finite angle',
    'min(ranges@30:-30)': 'must be below to -30',
    'min(ranges@10:10)': 'must be below to 10',
    'min(ranges@0:400)': 'more than a turn',
    'min(ranges@)': 'is not <from>:<to>',
    'ranges@-30:30': 'read only inside min/max/mean',
    'min(ranges[0:90]@-30:30)': 'without [0:90]',
}


@pytest.mark.parametrize('path', sorted(MALFORMED))
def test_a_malformed_sector_is_refused_at_start_naming_the_entry(path):
    entry = f'/scan sensor_msgs/msg/LaserScan {path}'
    with pytest.raises(ConfigError) as err:
        make(entry)
    assert repr(entry) in str(err.value) and MALFORMED[path] in str(err.value), str(err.value)


@pytest.mark.parametrize('entry,why', [
    ('/b sensor_msgs/msg/BatteryState min(cell_voltage@-30:30)', 'needs the angles of a scan'),
    ('/r sensor_msgs/msg/Range min(range@-30:30)', 'needs an array field'),
    ('/s sensor_msgs/msg/LaserScan min(range_max@-30:30)', 'needs an array field'),
])
def test_a_sector_of_anything_but_a_scan_array_is_refused_with_the_reason(entry, why):
    with pytest.raises(ConfigError) as err:
        make(entry)
    assert repr(entry) in str(err.value) and why in str(err.value), str(err.value)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.integers(-180, 179), st.sampled_from([1, -1, 2]), st.integers(1, 360),
       st.integers(-400, 400), st.integers(1, 360))
def test_a_beam_is_in_a_sector_when_its_angle_is_within_it_modulo_a_turn(
        start_deg, step_deg, n, lo, width):
    """Whole-degree scans against the definition: (angle - from) mod 360 <= to - from."""
    beams = Sector(float(lo), float(lo + width)).indices(math.radians(start_deg),
                                                         math.radians(step_deg), n)
    expected = [i for i in range(n) if (start_deg + i * step_deg - lo) % 360 <= width]
    assert beams.tolist() == expected
