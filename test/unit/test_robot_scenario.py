"""The simulated robot's streams (pure numpy, no ROS): the fields an assembler picks out of its
messages are the scenario's features plus noise, its labels come once each, late by label_delay,
and a clock jump back starts a new timeline."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nn_one_node.model import NeuronModel
from nn_one_node.sim.robot_scenario import (CURRENT, RANGE_MAX, RANGE_MIN, WHEEL_JOINTS,
                                        RobotScenario, too_slow)
from nn_one_node.sim.scenario import SENSORS, Scenario, accuracy, weight_error

N = len(SENSORS)


def extracted(robot, t):
    """One row as the assembler of config/robot.yaml extracts it from the messages at time t."""
    ranges = robot.scan_ranges(t)
    _, speed, _ = robot.odometry(t)
    names, _, _, efforts = robot.wheels(t)
    vibration, _ = robot.vibration(t)
    temperature, _ = robot.temperature(t)
    return np.array([float(np.min(ranges)), speed, efforts[names.index('left_wheel_joint')],
                     vibration, temperature])


def rows_of_moments(robot, moments, start=1000.0):
    """(rows, clean, probability, slip) of ``moments`` consecutive moments, read at each
    centre."""
    rows, clean, p, slip = [], [], [], []
    for k in range(moments):
        t = start + (k + 0.5) * robot.period
        m = robot.moment_at(t)
        rows.append(extracted(robot, t))
        clean.append(m.clean)
        p.append(m.probability)
        slip.append(m.slip)
    return np.array(rows), np.array(clean), np.array(p), np.array(slip)


def test_the_extracted_fields_are_the_scenario_features_plus_its_noise():
    robot = RobotScenario(seed=1, moment_period=0.1)
    rows, clean, p, slip = rows_of_moments(robot, 4000)
    residual = rows - clean
    for j, sensor in enumerate(SENSORS):
        if j == 0:
            # float32 ranges, and the nearest return clipped to range_min (about 1e-4 of rows)
            assert np.all(rows[:, 0] >= RANGE_MIN)
        assert abs(residual[:, j].mean()) < 0.1 * sensor.noise_std, sensor.name
        assert residual[:, j].std() == pytest.approx(sensor.noise_std, rel=0.1), sensor.name
        lo, hi = clean[:, j].min(), clean[:, j].max()  # the clean values span the range
        assert lo < sensor.low + 0.01 * (sensor.high - sensor.low)
        assert hi > sensor.high - 0.01 * (sensor.high - sensor.low)
    # the ground truth is the scenario's: the sigmoid neuron of the clean readings
    truth = Scenario()
    np.testing.assert_allclose(p, truth.probability(clean), rtol=1e-12)
    assert abs(slip.mean() - p.mean()) < 0.03


def test_the_course_model_learns_the_ground_truth_from_the_extracted_rows():
    """What the trainer does with normalize on, fed the assembled rows and the probability."""
    robot = RobotScenario(seed=2, moment_period=0.1)
    rows, _, p, _ = rows_of_moments(robot, 3000)
    mu, sigma = rows.mean(axis=0), rows.std(axis=0)
    model = NeuronModel(N)
    model.fit((rows - mu) / sigma, p, learning_rate=2.0, max_iterations=3000, tolerance=1e-12)
    w_raw = model.weights / sigma
    b_raw = model.bias - float(np.sum(model.weights * mu / sigma))
    s = Scenario()
    assert weight_error(w_raw, b_raw, s) < 0.05
    X_test, y_test = Scenario(9).sample(2000)
    assert accuracy(NeuronModel(N, weights=w_raw, bias=b_raw).predict(X_test), y_test) > 0.95


def test_picking_the_wheel_by_position_would_be_wrong():
    """Names come in both orders; the right wheel's effort is another motor, unrelated to the
    slip: a join by index instead of by name gives a useless feature."""
    robot = RobotScenario(seed=3)
    orders, left, right, clean = set(), [], [], []
    for k in range(2000):
        t = 50.0 + (k + 0.5) * robot.period
        names, positions, velocities, efforts = robot.wheels(t)
        assert sorted(names) == sorted(WHEEL_JOINTS) and len(positions) == len(velocities) == 2
        orders.add(tuple(names))
        left.append(efforts[names.index('left_wheel_joint')])
        right.append(efforts[names.index('right_wheel_joint')])
        clean.append(robot.moment_at(t).clean[CURRENT])
    assert len(orders) == 2
    assert np.corrcoef(left, clean)[0, 1] > 0.99
    assert abs(np.corrcoef(right, clean)[0, 1]) < 0.1


def test_scans_have_one_nearest_return_ahead_and_no_return_beams():
    robot = RobotScenario(seed=4, scan_beams=360, no_return_fraction=0.2)
    inf_share = []
    for k in range(300):
        t = 7.0 + k * 0.05
        r = robot.scan_ranges(t)
        assert r.dtype == np.float32 and r.shape == (360,)
        finite = r[np.isfinite(r)]
        assert np.all(finite <= RANGE_MAX) and np.all(finite >= RANGE_MIN)
        nearest = int(np.argmin(r))
        assert abs(nearest - 180) <= 9  # within the beams around angle 0
        others = np.delete(r, nearest)
        assert np.all(others >= r[nearest] + 0.29)  # one nearest return, all else farther
        assert np.all(np.isinf(r[r > RANGE_MAX]))
        inf_share.append(np.isinf(r).mean())
    assert 0.2 < np.mean(inf_share) < 0.6
    assert RobotScenario(seed=4, scan_beams=1).scan_ranges(1.0).shape == (1,)


def test_same_seed_same_moments_and_the_moment_follows_the_clock():
    a, b = RobotScenario(seed=5), RobotScenario(seed=5)
    for t in (0.0, 0.05, 0.1, 12.34, 1.7e9):
        ma, mb = a.moment_at(t), b.moment_at(t)
        assert ma.index == math.floor(t / a.period) and ma.start <= t < ma.start + ma.period
        np.testing.assert_array_equal(ma.clean, mb.clean)
        assert (ma.probability, ma.slip) == (mb.probability, mb.slip)
    assert not np.array_equal(RobotScenario(seed=6).moment(3).clean, a.moment(3).clean)
    # random access: a moment's state does not depend on what was asked before
    np.testing.assert_array_equal(RobotScenario(seed=5).moment(17).clean, a.moment(17).clean)


def test_labels_are_late_by_label_delay_once_each_in_order():
    robot = RobotScenario(seed=6, moment_period=0.1, label_delay=1.0)
    t, step = 100.0, 0.01
    robot.moment_at(t)
    seen = []
    while t < 110.0:
        t += step
        for label in robot.labels_due(t):
            assert label.due <= t + 1e-9 and label.due > t - step - 1e-9  # never late
            assert label.due == pytest.approx(label.describes + 1.0)
            m = robot.moment(label.index)
            assert label.describes == pytest.approx(m.centre)
            assert (label.slip, label.probability) == (m.slip, m.probability)
            seen.append(label.index)
    assert seen == list(range(seen[0], seen[-1] + 1))
    assert seen[0] == robot.index_at(100.0) + 1  # the first moment seen whole
    assert len(seen) == pytest.approx(90, abs=2)


def test_a_jump_back_starts_a_new_timeline_and_drops_the_pending_labels():
    robot = RobotScenario(seed=7, moment_period=0.1, label_delay=1.0)
    for i in range(1, 300):
        robot.labels_due(10.0 + i * 0.01)   # up to 12.99: labels up to moment 119 out
    before = robot.moment(125)
    assert robot.timeline == 0 and before.timeline == 0
    after = []
    for i in range(400):                    # the world is reset: time from 5.0 again
        after += robot.labels_due(5.0 + i * 0.01)
    assert robot.timeline == 1 and robot.jumps == 1
    # nothing pending from the old timeline comes out, and no label describes a moment before
    # the jump (those moments were never reported in this timeline)
    assert after and all(lab.timeline == 1 for lab in after)
    assert min(lab.describes for lab in after) > 5.0
    again = robot.moment(125)
    assert again.timeline == 1 and not np.array_equal(again.clean, before.clean)
    np.testing.assert_array_equal(robot.moment(125, timeline=0).clean, before.clean)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.0, 0.35), min_size=1, max_size=200),
       st.floats(0.0, 2.0), st.sampled_from([0.05, 0.1, 0.3]))
def test_labels_property_each_due_label_once_never_early(steps, delay, period):
    robot = RobotScenario(seed=8, moment_period=period, label_delay=delay)
    t = 20.0
    robot.moment_at(t)
    first = robot.index_at(t) + 1
    out = []
    for dt in steps:
        t += dt
        labels = robot.labels_due(t)
        assert all(lab.due <= t + 1e-9 for lab in labels)
        out += [lab.index for lab in labels]
    assert out == list(range(first, first + len(out)))
    due_by_now = max(0, robot.index_at(t - delay - period / 2.0) - first + 1)
    assert len(out) == due_by_now


def test_too_slow_names_the_sensors_that_miss_a_moment_centre():
    rates = {'scan': 40.0, 'odom': 50.0, 'temperature': 10.0, 'off': 0.0}
    assert too_slow(rates, 0.1) == ['temperature']
    assert too_slow(rates, 1.0) == []
    assert too_slow({'scan': 40.0}, 0.05) == ['scan']


@pytest.mark.parametrize('kwargs', [{'moment_period': 0.0}, {'moment_period': math.nan},
                                    {'label_delay': -1.0}, {'label_delay': math.inf}])
def test_bad_settings_raise(kwargs):
    with pytest.raises(ValueError):
        RobotScenario(**kwargs)
