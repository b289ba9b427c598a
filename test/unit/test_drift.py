"""Features that drift like a clock (issue 23): found, named with advice in the trainer's
problems, and held back so that they cannot drive the model to extreme weights; features that do
not drift are never called clocks; the trained ranges go with the model."""

import numpy as np
import pytest

from nn_one_node.learning.config import DEFAULTS, PolicyConfig
from nn_one_node.learning.drift import CLOCK_MIN_ROWS, clock_features
from nn_one_node.learning.policy import LearningPolicy
from nn_one_node.learning.trainer_core import TrainerCore
from nn_one_node.model import forward

RATE = 10.0  # labeled rows per second


def robot(rows: int, seed: int, start: int = 0):
    """Two informative sensors and a battery that drains (12.6 V to about 11.1 V over 6000 rows,
    50 mV of noise); the label does not depend on the battery at all."""
    rng = np.random.default_rng(seed)
    t = np.arange(start, start + rows, dtype=float)
    sensors = rng.normal(size=(rows, 2))
    battery = 12.6 - 2.5e-4 * t + rng.normal(scale=0.05, size=rows)
    p = 1.0 / (1.0 + np.exp(-(sensors @ np.array([2.0, -1.5]))))
    y = (rng.random(rows) < p).astype(float)
    return np.column_stack([sensors, battery]), y


def learn(pol: LearningPolicy, X, y, t0: float = 0.0) -> None:
    """As the trainer node drives its policy: rows, and a tick every second."""
    for i in range(X.shape[0]):
        now = t0 + (i + 1) / RATE
        pol.add(X[i], y[i:i + 1], now)
        if pol.due_by_rows() or pol.due(now):
            pol.update(now)


def test_a_stationary_or_cycling_feature_is_never_a_clock():
    rng = np.random.default_rng(3)
    t = np.arange(3000.0)
    for seed in range(20):
        r = np.random.default_rng(seed)
        X = np.column_stack([
            r.normal(size=3000),                                     # a sensor
            r.exponential(size=3000),                                # skewed
            (r.random(3000) < 0.1).astype(float),                    # a rare event
            np.where(t < 1500, 0.0, 0.0) + r.integers(0, 3, 3000),   # a mode switch
        ])
        for rows in (CLOCK_MIN_ROWS, 400, 3000):
            assert clock_features(X[:rows]) == [], (seed, rows)
        # a pose on round trips, over a window of several (within one leg it does drift)
        pose = np.sin(t / 150.0) + r.normal(scale=0.1, size=3000)
        assert clock_features(pose[:, None]) == [], seed
    # a feature that went up and came back over the window is no clock either
    trip = np.concatenate([np.linspace(0, 5, 500), np.linspace(5, 0, 500)])
    assert clock_features(np.column_stack([trip + rng.normal(scale=0.1, size=1000)])) == []


@pytest.mark.parametrize('name, column', [
    ('a counter', lambda t, r: t),
    ('a battery', lambda t, r: 12.6 - 1e-3 * t + r.normal(scale=0.05, size=t.size)),
    ('a pose driving away', lambda t, r: 0.01 * t + r.normal(scale=0.5, size=t.size)),
    ('a stamp in seconds', lambda t, r: 1.79e9 + t / 30.0),
])
def test_a_feature_that_drifts_one_way_is_a_clock(name, column):
    r = np.random.default_rng(0)
    t = np.arange(1000.0)
    X = np.column_stack([r.normal(size=1000), column(t, r)])
    assert [i for i, _ in clock_features(X)] == [1], name


def test_a_drifting_feature_is_named_with_advice_and_held_back():
    X, y = robot(3000, seed=1)
    values = {**DEFAULTS, 'num_features': 3, 'weights': [0.0] * 3, 'predictor_node': ''}
    core = TrainerCore(values)
    for i in range(0, 3000, 10):
        core.receive(np.column_stack([X[i:i + 10], y[i:i + 10]]), 1.0 + i / RATE)
        core.tick(1.0 + i / RATE)
    problems = core.problems(now=1.0 + 3000 / RATE)
    (clock,) = [p for p in problems if 'drifts like a clock' in p]
    assert clock.startswith('feature 2 drifts like a clock')
    assert 'leave it out' in clock and 'rate of change' in clock
    assert core.counters(now=400.0)['features drifting like a clock'] == '2'
    # held back: its standardized weight stays small, whatever the noise made of it
    sigma = X[-core.policy.training_rows():].std(axis=0)
    w_s = core.weights * sigma
    assert abs(w_s[2]) < 0.1 < min(abs(w_s[0]), abs(w_s[1])), w_s


def test_a_clock_cannot_drive_the_predictions_once_it_leaves_its_trained_range():
    """The robot goes on after the training window: the battery drains below anything trained
    on. Its predictions stay as good as those of the same learning without the battery at all;
    without the clock's prior (prior 0) the battery's weight is what the noise made of it."""
    X, y = robot(3000, seed=2)
    X_on, y_on = robot(3000, seed=3, start=6000)  # 11.1 V and below: never seen
    held = LearningPolicy(3, PolicyConfig())
    learn(held, X, y)
    blind = LearningPolicy(2, PolicyConfig())
    learn(blind, X[:, :2], y)
    assert [i for i, _ in held.clocks] == [2]
    assert X_on[:, 2].max() < X[:, 2].min()

    def acc(w, b, X_, y_):
        return float(np.mean((forward(X_, w, b) >= 0.5) == (y_ >= 0.5)))
    with_clock = acc(held.weights, held.bias, X_on, y_on)
    without = acc(blind.weights, blind.bias, X_on[:, :2], y_on)
    assert with_clock >= without - 0.01, (with_clock, without)
    # the battery moves the logit of a row far outside its range (3 V below) by little
    assert abs(held.weights[2]) * 3.0 < 0.5, held.weights


def test_the_trained_ranges_are_the_rows_the_model_in_force_was_trained_on():
    X, y = robot(600, seed=4)
    pol = LearningPolicy(3, PolicyConfig())
    assert pol.trained_range is None
    learn(pol, X, y)
    low, high = pol.trained_range
    rows = pol.training_rows()
    assert np.all(X.min(axis=0) <= low) and np.all(high <= X.max(axis=0))
    # the newest rows were trained on (all but those held out to judge the candidate)
    assert np.all(low <= X[-rows // 2:].min(axis=0)) and np.all(X[-rows // 2:].max(axis=0) <= high)
    pol.set_model([0.1, 0.2, 0.3], 0.0)  # from outside: what it was trained on is not known
    assert pol.trained_range is None

