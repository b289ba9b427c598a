"""The example robots' streams (pure numpy, no ROS): each profile's messages carry its features as
its config's entries read them (the front sector's minimum over valid readings, a joint's field
by name), its scan reports like the real lidar (angle_min, dropouts, +inf), its battery drains
like a clock, and its late labels follow a rule the course's model can learn from the rows."""

import math

import numpy as np
import pytest

from nn_one_node.model import NeuronModel
from nn_one_node.sim.profile_robot import ProfileRobot
from nn_one_node.sim.profiles import PROFILES


def sector_min(robot, ranges, lo=-30.0, hi=30.0):
    """min(ranges@lo:hi) as doc/assembler.md defines it: valid readings only, else range_max."""
    lidar = robot.profile.lidar
    angles = np.degrees(lidar.angle_min + np.arange(lidar.beams) * lidar.angle_increment)
    wrapped = (angles + 180.0) % 360.0 - 180.0
    r = ranges[(wrapped >= lo) & (wrapped <= hi)].astype(float)
    valid = r[(r >= lidar.range_min) & (r <= lidar.range_max)]
    return float(valid.min()) if valid.size else lidar.range_max


def extracted(robot, t):
    """One row as the profile's config extracts it from the messages at time t."""
    p = robot.profile
    ranges = robot.scan_ranges(t)
    _, speed, _, _ = robot.odometry(t)
    names, _, velocities, efforts = robot.wheels(t)
    yaw, _ = robot.imu(t)
    voltage, _ = robot.battery(t)
    field, joint = p.features[2].entry.split()[2][:-1].split('[')
    wheel = {'effort': efforts, 'velocity': velocities}[field][names.index(joint)]
    return np.array([sector_min(robot, ranges), speed, wheel, yaw, voltage])


def moments(robot, count, start=1000.0):
    rows, clean, p, labels = [], [], [], []
    for k in range(count):
        t = start + (k + 0.5) * robot.period
        m = robot.moment_at(t)
        rows.append(extracted(robot, t))
        clean.append(robot.profile.clean_features(m.state))
        p.append(m.probability)
        labels.append(float(m.slip))
    return np.array(rows), np.array(clean), np.array(p), np.array(labels)


@pytest.mark.parametrize('name', sorted(PROFILES))
def test_each_message_carries_its_feature_plus_noise(name):
    robot = ProfileRobot(name, seed=4)
    rows, clean, _, _ = moments(robot, 300)
    noise = np.array([f.noise_std for f in robot.profile.features])
    err = np.abs(rows - clean)
    assert np.all(err <= 6.0 * noise + 1e-6), (err.max(axis=0), noise)


def test_turtlebot3_scan_is_the_lds01s_with_its_dropouts():
    robot = ProfileRobot('turtlebot3', seed=1)
    lidar = robot.profile.lidar
    assert (lidar.beams, lidar.angle_min, lidar.range_min, lidar.range_max) == (360, 0.0, 0.12,
                                                                                3.5)
    zeros = infs = whole_min_not_front = 0
    for k in range(200):
        t = 50.0 + k * robot.period
        ranges = robot.scan_ranges(t)
        m = robot.moment_at(t)
        zeros += int(np.sum(ranges == 0.0))
        infs += int(np.sum(np.isinf(ranges)))
        # the nearest thing ahead is on a beam at either end of the array (angle_min 0)
        ahead = np.r_[0:35, 326:360]  # within 35 degrees of 0: nothing nearer than the front
        r = np.where((ranges[ahead] >= 0.12) & (ranges[ahead] <= 3.5), ranges[ahead], np.inf)
        nearest = ahead[np.argmin(r)]
        assert nearest <= 25 or nearest >= 335, nearest
        assert sector_min(robot, ranges) == pytest.approx(m.state['front'], abs=0.05)
        valid = ranges[(ranges >= 0.12) & (ranges <= 3.5)]
        whole_min_not_front += bool(valid.min() < m.state['front'] - 0.1)
    assert 0.05 < zeros / (200 * 360) < 0.15  # dropouts as 0.0, as the LDS-01 reports them
    assert infs > 0
    # the walls at the sides are often nearer: min over the whole scan is no front distance
    assert whole_min_not_front > 50


def test_jackal_scan_has_its_front_in_the_middle_and_nan_dropouts():
    robot = ProfileRobot('jackal', seed=2)
    ranges = robot.scan_ranges(10.0)
    m = robot.moment_at(10.0)
    assert ranges.shape == (1081,) and np.isnan(ranges).any()
    valid = np.where((ranges >= 0.06) & (ranges <= 10.0), ranges, np.inf)
    assert valid[400:681].min() == pytest.approx(m.state['front'], abs=0.05)
    assert 440 <= 400 + np.argmin(valid[400:681]) <= 640  # within 25 degrees of beam 540


def test_battery_drains_like_a_clock_and_starts_full_after_a_jump_back():
    robot = ProfileRobot('turtlebot3', seed=0)
    b = robot.profile.battery
    v0, full0 = robot.battery(100.0)
    v1, _ = robot.battery(700.0)
    assert abs(v0 - b.full) < 0.05 and full0 == pytest.approx(1.0)
    assert v1 == pytest.approx(b.full - 600.0 * b.drain, abs=0.05)
    v2, _ = robot.battery(50.0)  # the clock jumped back: a new timeline, a full battery
    assert robot.timeline == 1 and abs(v2 - b.full) < 0.05


@pytest.mark.parametrize('name', sorted(PROFILES))
def test_the_labels_follow_a_rule_the_model_learns_from_the_rows(name):
    robot = ProfileRobot(name, seed=7)
    rows, clean, p, y = moments(robot, 3000)
    assert abs(y.mean() - p.mean()) < 0.04  # Bernoulli draws of the rule's probability
    assert 0.3 < y.mean() < 0.7  # balanced enough for the constant guess to be beatable
    bayes = np.mean((p >= 0.5) == (y >= 0.5))
    assert bayes > 0.8
    mu, sd = rows.mean(axis=0), rows.std(axis=0)
    model = NeuronModel(rows.shape[1])
    model.fit((rows - mu) / sd, y, learning_rate=2.0, max_iterations=3000)
    test_rows, _, test_p, test_y = moments(ProfileRobot(name, seed=8), 1000)
    p_hat = model.predict((test_rows - mu) / sd)
    # as right as the rule itself, and in agreement with it on nearly every row
    assert np.mean((p_hat >= 0.5) == (test_y >= 0.5)) > bayes - 0.05
    assert np.mean((p_hat >= 0.5) == (test_p >= 0.5)) > 0.9
    weights = model.weights.reshape(-1) / sd
    for f, w in zip(robot.profile.features, weights):
        if abs(f.weight) * np.std([f.clean(m.state) for m in [robot.moment(k) for k in
                                                               range(50)]]) > 1.0:
            assert math.copysign(1.0, w) == math.copysign(1.0, f.weight), (f.entry, w)
