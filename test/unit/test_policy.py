"""Tests of nn_one_node.learning.policy alone (no ROS): metrics, change detection, forgetting, the
gate,
the cadence, and the training additions it relies on (l2, SampleBuffer.newest)."""

import math
import random

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from nn_one_node.learning.cadence import Cadence
from nn_one_node.learning.policy import LearningPolicy
from nn_one_node.learning.page_hinkley import PageHinkley
from nn_one_node.learning.config import PolicyConfig
from nn_one_node.learning.metrics import PrequentialMetrics
from nn_one_node.learning.gate import paired_gate, row_losses
from nn_one_node.learning.buffer import SampleBuffer
from nn_one_node.learning.descent import train_update

FAST = settings(derandomize=True, deadline=None, max_examples=30)


def logistic_stream(rows: int, weights, seed: int, change_at=None, new_weights=None):
    """Rows x ~ N(0, 1); labels drawn from sigmoid(x . w); w -> new_weights from change_at."""
    rng = np.random.default_rng(seed)
    w = np.asarray(weights, dtype=np.float64)
    X = rng.normal(size=(rows, w.shape[0]))
    W = np.tile(w, (rows, 1))
    if change_at is not None:
        W[change_at:] = new_weights
    p = 1.0 / (1.0 + np.exp(-np.sum(X * W, axis=1)))
    y = (rng.random(rows) < p).astype(np.float64)
    return X, y


def drive(pol: LearningPolicy, X, y, rate: float = 100.0, start: int = 0, per_message: int = 1):
    """Feed the rows as the trainer node does: add a message, update when due (clock too)."""
    for i in range(0, X.shape[0], per_message):
        now = (start + i + per_message) / rate
        pol.add(X[i:i + per_message], y[i:i + per_message], now)
        if pol.due(now):
            pol.update(now)


# ------------------------------------------------------------------------------- metrics
def test_metrics_against_hand_computation():
    m = PrequentialMetrics(window=4)
    p = [0.9, 0.2, 0.6, 0.4, 0.7]
    y = [1.0, 0.0, 0.0, 1.0, 1.0]
    m.update(p[:2], y[:2])
    m.update(p[2], y[2])  # a plain float pair
    m.update(np.array(p[3:]), np.array(y[3:]))
    held_p, held_y = p[1:], y[1:]  # the window of 4 has dropped the first row
    correct = [(a >= 0.5) == (b >= 0.5) for a, b in zip(held_p, held_y)]
    assert m.count == 4 and m.seen == 5
    assert m.accuracy == pytest.approx(sum(correct) / 4)
    assert m.mse == pytest.approx(sum((a - b) ** 2 for a, b in zip(held_p, held_y)) / 4)
    hand = -sum(b * math.log(a) + (1 - b) * math.log(1 - a) for a, b in zip(held_p, held_y)) / 4
    assert m.log_loss == pytest.approx(hand)


def test_metrics_empty_are_nan_and_linear_has_no_log_loss():
    m = PrequentialMetrics(window=3, probabilities=False)
    assert math.isnan(m.accuracy) and math.isnan(m.mse)
    m.update([2.0], [1.0])
    assert m.mse == 1.0 and math.isnan(m.log_loss)
    with pytest.raises(ValueError):
        PrequentialMetrics(window=0)


@FAST
@given(st.lists(st.tuples(st.floats(0, 1), st.sampled_from([0.0, 1.0])), min_size=1,
                max_size=60), st.integers(1, 20))
def test_metrics_batch_equals_row_by_row(pairs, window):
    a, b = PrequentialMetrics(window), PrequentialMetrics(window)
    p = np.array([q for q, _ in pairs])
    y = np.array([v for _, v in pairs])
    a.update(p, y)
    for q, v in pairs:
        b.update_one(q, v)
    assert (a.count, a.seen) == (b.count, b.seen)
    for name in ('accuracy', 'mse', 'log_loss'):
        assert getattr(a, name) == pytest.approx(getattr(b, name))


@FAST
@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=80),
       st.integers(1, 20), st.integers(0, 80))
def test_metrics_accuracy_is_the_share_right_in_the_window(pairs, window, clear_at):
    """accuracy is kept as a count (O(1), asked per fleet robot): it must be the share of the
    rows in the window that were right, also across the window's wrap and a clear()."""
    m = PrequentialMetrics(window)
    held = []
    for i, (q, v) in enumerate(pairs):
        if i == clear_at:
            m.clear()
            held = []
        m.update_one(q, v)
        held = (held + [(q >= 0.5) == (v >= 0.5)])[-window:]
        assert m.accuracy == sum(held) / len(held)


# ------------------------------------------------------------------------ change detection
@pytest.mark.parametrize('seed', range(10))
def test_page_hinkley_detects_a_known_change_within_a_bound(seed):
    rng = random.Random(seed)
    ph = PageHinkley()
    found = None
    for i in range(4000):
        if ph.update(float(rng.random() < (0.15 if i < 2000 else 0.45))):
            found = i
            break
    # a 0.30 rise of the error at delta 0.05 and threshold 30: about 30 / 0.25 = 120 rows
    assert found is not None and 2000 <= found <= 2000 + 200
    assert abs((found - ph.onset) - 2000) <= 150  # the onset estimate points at the change


@pytest.mark.parametrize('error_rate', [0.05, 0.2, 0.35, 0.5])
def test_page_hinkley_no_false_change_on_a_long_stationary_stream(error_rate):
    rng = random.Random(99)
    ph = PageHinkley()
    assert not any(ph.update(float(rng.random() < error_rate)) for _ in range(200_000))


def test_page_hinkley_checks_its_parameters():
    for bad in (dict(threshold=0.0), dict(delta=-1.0), dict(alpha=0.0), dict(alpha=1.5)):
        with pytest.raises(ValueError):
            PageHinkley(**bad)


def test_policy_detects_an_abrupt_change_and_trains_after_it():
    w1, w2 = np.array([2.5, -1.5, 1.0]), np.array([-2.0, 0.5, 2.5])
    X, y = logistic_stream(12000, w1, seed=3, change_at=6000, new_weights=w2)
    pol = LearningPolicy(3)
    drive(pol, X[:6000], y[:6000])
    assert pol.changes == 0
    before = pol.metrics()['accuracy']
    drive(pol, X[6000:6400], y[6000:6400], start=6000)
    m = pol.metrics()
    assert m['changes'] == 1 and 6000 < m['last_change_at'] <= 6000 + 300
    assert abs(m['last_change_onset'] - 6000) <= 200
    drive(pol, X[6400:], y[6400:], start=6400)
    assert pol.changes == 1
    assert pol.metrics()['accuracy'] >= before - 0.05  # recovered on the new concept
    assert np.all(np.sign(pol.weights) == np.sign(w2))


def test_policy_no_false_change_on_a_long_stationary_stream():
    X, y = logistic_stream(60000, [2.0, -1.0, 0.5, 1.5, -2.5], seed=11)
    pol = LearningPolicy(5)
    drive(pol, X, y, per_message=5)
    assert pol.changes == 0
    assert pol.metrics()['samples'] == 60000


def test_change_detection_off():
    w1, w2 = np.array([2.5, -1.5]), np.array([-2.5, 1.5])
    X, y = logistic_stream(4000, w1, seed=4, change_at=2000, new_weights=w2)
    pol = LearningPolicy(2, PolicyConfig(change_threshold=0.0))
    drive(pol, X, y)
    assert pol.changes == 0 and pol.metrics()['last_change_at'] is None


# --------------------------------------------------------------------------------- forgetting
def test_forgetting_measured_the_window_and_the_narrowing():
    w1, w2 = np.array([2.5, -1.5]), np.array([-2.5, 1.5])
    X, y = logistic_stream(9000, w1, seed=5, change_at=8000, new_weights=w2)
    pol = LearningPolicy(2)  # buffer_size 10000: every row is held
    drive(pol, X[:8000], y[:8000])
    assert pol.buffer.count == 8000
    assert pol.training_rows() == pol.window == 1000  # the automatic window, 2 features
    for i in range(8000, 9000):  # until the change is found
        drive(pol, X[i:i + 1], y[i:i + 1], start=i)
        if pol.changes:
            break
    since_change = i + 1 - 8000
    rows = pol.training_rows()
    # narrowed to about the rows after the change (the onset estimate may include a few before)
    assert pol.cfg.min_samples <= rows <= since_change + 150 and rows < 400


def test_forgetting_weight_of_old_rows_is_zero_outside_the_window():
    # Two policies see different old rows but the same newest window: the same model results.
    X, y = logistic_stream(3000, [1.5, -2.0], seed=6)
    cfg = PolicyConfig(train_window=500, change_threshold=0.0, fast_start=0, train_period=1e6)
    a, b = LearningPolicy(2, cfg), LearningPolicy(2, cfg)
    a.add(X[:2500], y[:2500], 0.0)
    b.add(X[:2500], 1.0 - y[:2500], 0.0)  # old rows with flipped labels
    a.add(X[2500:], y[2500:], 1.0)
    b.add(X[2500:], y[2500:], 1.0)
    ra, rb = a.update(2.0), b.update(2.0)
    assert ra.rows == rb.rows <= 500
    np.testing.assert_array_equal(a.weights, b.weights)


# ----------------------------------------------------------------------------------- the gate
def test_paired_gate_accepts_better_and_equal_refuses_worse():
    rng = np.random.default_rng(0)
    base = rng.random(200)
    assert paired_gate(base * 0.8, base)[0]
    assert paired_gate(base, base)[0]
    ok, why = paired_gate(base + 0.2, base)
    assert not ok and 'worse by' in why
    assert not paired_gate(np.array([np.nan, 1.0]), np.array([0.1, 0.1]))[0]
    assert paired_gate(np.array([0.3, 0.2]), np.array([np.inf, 0.1]))[0]


def test_paired_gate_tolerates_noise_of_an_equal_model():
    rng = np.random.default_rng(1)
    refused = 0
    for _ in range(400):
        a, b = rng.random(100), rng.random(100)  # equal in distribution
        refused += not paired_gate(a, b, z=2.0)[0]
    assert refused < 40  # about 2.3% expected: not a coin flip


def test_the_gate_refuses_a_candidate_worse_on_rows_it_was_not_fitted_to():
    w_true = np.array([2.0, -2.0, 1.0])
    X, y = logistic_stream(1200, w_true, seed=8)
    cfg = PolicyConfig(change_threshold=0.0, train_window=1200, train_period=1e6, fast_start=0)
    pol = LearningPolicy(3, cfg, weights=w_true, bias=0.0)  # the truth in force
    pol.add(X[:1000], 1.0 - y[:1000], 0.0)  # rows it will be fitted to: labels flipped
    pol.update(0.5)  # the refit starts afresh from here: the next held-out rows are new
    pol.set_model(w_true, 0.0)
    pol.add(X[1000:], y[1000:], 1.0)  # 200 clean rows arrive: held out of the fit
    result = pol.update(2.0)
    assert result.held_out == 200
    assert not result.deployed and 'not fitted to' in result.reason
    np.testing.assert_array_equal(pol.weights, w_true)
    assert pol.refused >= 1


def test_the_gate_accepts_a_better_candidate():
    w_true = np.array([2.0, -2.0, 1.0])
    X, y = logistic_stream(1200, w_true, seed=9)
    pol = LearningPolicy(3, PolicyConfig(change_threshold=0.0, fast_start=0))
    pol.add(X, y, 0.0)
    result = pol.update(1.0)
    assert result.deployed and result.held_out > 0 and 'held-out loss' in result.reason
    assert np.all(np.sign(pol.weights) == np.sign(w_true))


def test_row_losses_match_the_formulas():
    X = np.array([[1.0, 2.0], [0.0, -1.0]])
    y = np.array([1.0, 0.0])
    w, b = np.array([0.5, -0.25]), 0.1
    z = X @ w + b
    p = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(row_losses(X, y, w, b, 'sigmoid', 'mse'), (p - y) ** 2)
    np.testing.assert_allclose(row_losses(X, y, w, b, 'sigmoid', 'bce'),
                               -(y * np.log(p) + (1 - y) * np.log(1 - p)))
    np.testing.assert_allclose(row_losses(X, y, w, b, 'linear', 'mse'), (z - y) ** 2)


# --------------------------------------------------------------------------------- cadence
def test_fast_start_updates_within_the_first_messages():
    X, y = logistic_stream(40, [2.0, -1.0], seed=2)
    pol = LearningPolicy(2)  # min_samples 5
    due_at = []
    for i in range(40):  # one row a message at 100 rows/s: train_period (1 s) never passes
        pol.add(X[i], y[i:i + 1], i / 100)
        if pol.due(i / 100):
            pol.update(i / 100)
            due_at.append(i + 1)
    assert due_at == [5, 10, 20, 40]  # at min_samples, then at each doubling
    assert pol.deployed >= 1 and np.any(pol.weights != 0.0)


def test_cadence_by_clock_and_by_rows():
    c = Cadence(min_samples=1, train_period=10.0, update_every=0, fast_start=0)
    c.arrived(1)
    assert c.due(0.0, 1)  # first update: as soon as min_samples are held
    c.updated(0.0, 1)
    c.arrived(500)
    assert not c.due(9.9, 501) and c.due(10.0, 501)  # the clock: train_period
    c.updated(10.0, 501)
    assert c.due(20.0, 501)  # the clock goes on without new rows: the descent continues
    assert not c.due(None, 501)  # but the rows alone do not make an update due
    c.update_every = 50
    c.arrived(49)
    assert not c.due(11.0, 550)
    c.arrived(1)
    assert c.due(11.0, 551)


# ------------------------------------------------------------------------ reset, bad input
def test_reset_keeps_the_model_in_force_until_an_update_deploys():
    X, y = logistic_stream(500, [2.0, -1.0], seed=12)
    pol = LearningPolicy(2)
    drive(pol, X[:300], y[:300])
    w = pol.weights
    assert pol.reset() == 300 and pol.buffer.count == 0
    np.testing.assert_array_equal(pol.weights, w)
    assert not pol.due(10.0)
    drive(pol, X[300:], y[300:], start=300)
    assert pol.deployed >= 2 and not np.array_equal(pol.weights, w)


def test_bad_rows_are_refused_and_change_nothing():
    pol = LearningPolicy(2)
    pol.add([[0.5, 1.0]], [1.0], 0.0)
    for X, y in (([[np.nan, 1.0]], [1.0]), ([[np.inf, 1.0]], [0.0]), ([[1.0, 2.0]], [np.nan]),
                 ([[1.0, 2.0, 3.0]], [1.0]), ([[1.0, 2.0], [3.0, np.inf]], [1.0, 0.0])):
        with pytest.raises(ValueError):
            pol.add(X, y, 1.0)
    assert pol.buffer.count == 1 and pol.metrics()['samples'] == 1


def test_a_huge_linear_error_does_not_poison_the_detector():
    pol = LearningPolicy(1, PolicyConfig(activation='linear', learning_rate=0.1),
                         weights=np.array([1e200]))
    pol.add([[1e150]], [0.0], 0.0)  # squared error overflows to inf
    pol.add([[1.0]], [0.0], 0.0)
    assert pol.metrics()['samples'] == 2 and pol.changes == 0


def test_config_from_params_ignores_other_names_and_names_a_bad_entry():
    cfg = PolicyConfig.from_params({'learning_rate': 0.5, 'weights_file': 'x.yaml', 'l2': 0.01})
    assert cfg.learning_rate == 0.5 and cfg.l2 == 0.01
    for bad, name in (({'l2': -1.0}, 'l2'), ({'train_window': -5}, 'train_window'),
                      ({'loss': 'bce', 'activation': 'linear'}, 'loss'),
                      ({'min_samples': 20, 'buffer_size': 10}, 'min_samples'),
                      ({'change_threshold': math.nan}, 'change_threshold')):
        with pytest.raises(ValueError, match=name):
            PolicyConfig.from_params(bad)


# ------------------------------------------------------------------- the training additions
def test_l2_zero_is_the_plain_update_and_l2_shrinks_the_weights():
    X, y = logistic_stream(400, [3.0, -2.0, 1.0], seed=13)
    kw = dict(learning_rate=2.0, iterations=200, tolerance=0.0)
    plain = train_update(X, y, np.zeros(3), 0.0, **kw)
    zero = train_update(X, y, np.zeros(3), 0.0, l2=0.0, **kw)
    np.testing.assert_array_equal(plain.weights, zero.weights)
    ridge = train_update(X, y, np.zeros(3), 0.0, l2=0.05, **kw)
    assert ridge.deployed and np.linalg.norm(ridge.weights) < np.linalg.norm(plain.weights)
    with pytest.raises(ValueError):
        train_update(X, y, np.zeros(3), 0.0, l2=-1.0, **kw)


def test_l2_gate_compares_the_objective_not_the_bare_loss():
    # From the unregularised optimum, an l2 update lowers the objective but raises the bare
    # loss: it must be deployed, and its loss_after include the penalty.
    X, y = logistic_stream(400, [3.0, -2.0], seed=14)
    opt = train_update(X, y, np.zeros(2), 0.0, learning_rate=2.0, iterations=3000,
                       tolerance=0.0)
    r = train_update(X, y, opt.weights, opt.bias, learning_rate=2.0, iterations=50,
                     tolerance=0.0, l2=0.1)
    assert r.deployed and r.loss_after < r.loss_before


def test_buffer_newest_and_the_one_row_paths():
    buf = SampleBuffer(5, 2)
    for i in range(7):
        buf.add(np.array([i, i + 0.5]), np.array([float(i)]))
    X, y = buf.newest(3)
    np.testing.assert_array_equal(y, [4.0, 5.0, 6.0])  # wrapped: joined, oldest first
    X, y = buf.newest(2)
    np.testing.assert_array_equal(X, [[5.0, 5.5], [6.0, 6.5]])
    assert buf.newest(99)[1].shape == (5,)
    buf.add_finite_row(np.array([9.0, 9.5]), 1.0)
    assert buf.newest(1)[1][0] == 1.0 and buf.total_added == 8
    with pytest.raises(ValueError):
        buf.add(np.array([np.nan, 1.0]), np.array([1.0]))
    with pytest.raises(ValueError):
        buf.add(np.array([[1.0], [2.0]]), np.array([1.0]))  # (2, 1) is not one row of 2
