"""The wheel-slip scenario (pure numpy, no ROS): shapes, reproducibility, and that one sigmoid
neuron trained on standardized features recovers its ground truth."""

import numpy as np
import pytest

from nn_one_node.model import NeuronModel
from nn_one_node.sim.scenario import (SENSORS, Scenario, accuracy, feature_names, mean_abs_error,
                                  weight_error)


def test_shapes_ranges_and_soft_labels():
    s = Scenario(seed=3)
    X, y = s.sample(500)
    assert X.shape == (500, s.num_features) and y.shape == (500,)
    assert X.dtype == np.float64 and y.dtype == np.float64
    assert s.num_features == len(SENSORS) == len(feature_names()) >= 4
    assert np.all((y > 0.0) & (y < 1.0))
    for j, sensor in enumerate(SENSORS):
        slack = 6.0 * sensor.noise_std  # clean values are uniform in range, plus noise
        assert sensor.low - slack <= X[:, j].min() and X[:, j].max() <= sensor.high + slack
    rows = s.labeled_rows(7)
    assert rows.shape == (7, s.num_features + 1)
    assert s.sample(0)[0].shape == (0, s.num_features)


def test_the_sensors_differ_in_scale_by_orders_of_magnitude():
    X, _ = Scenario(seed=0).sample(2000)
    spread = X.std(axis=0)
    assert spread.max() / spread.min() > 100.0
    assert np.abs(X.mean(axis=0)).max() / np.abs(X.mean(axis=0)).min() > 100.0


def test_reproducible_for_a_seed_and_different_across_seeds():
    a, b, c = Scenario(seed=5), Scenario(seed=5), Scenario(seed=6)
    for _ in range(3):
        (xa, ya), (xb, yb), (xc, _) = a.sample(10), b.sample(10), c.sample(10)
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
        assert not np.array_equal(xa, xc)


def test_soft_labels_are_the_ground_truth_of_the_clean_readings():
    s = Scenario(seed=1)
    X_clean = s.clean(300)
    p = s.probability(X_clean)
    expected = 1.0 / (1.0 + np.exp(-(X_clean @ s.true_weights + s.true_bias)))
    np.testing.assert_allclose(p, expected, rtol=1e-12)
    # the classes are about balanced, and the true model on noisy readings is near perfect
    X, y = s.sample(4000)
    assert 0.35 < np.mean(y >= 0.5) < 0.65
    truth = NeuronModel(s.num_features, weights=s.true_weights, bias=s.true_bias)
    assert accuracy(truth.predict(X), y) > 0.95
    assert mean_abs_error(truth.predict(X), y) < 0.03


def test_bernoulli_labels_are_zero_or_one_with_the_right_rate():
    s = Scenario(seed=2, bernoulli=True)
    _, y = s.sample(20000)
    assert set(np.unique(y)) == {0.0, 1.0}
    _, p = Scenario(seed=2).sample(20000)  # soft labels of the same draws' distribution
    assert abs(y.mean() - p.mean()) < 0.02
    _, soft = s.sample(10, bernoulli=False)
    assert np.all((soft > 0.0) & (soft < 1.0))


def test_true_weights_are_copies():
    s = Scenario()
    s.true_weights[0] = 123.0
    assert s.true_weights[0] == SENSORS[0].weight


def test_one_standardized_sigmoid_neuron_recovers_the_ground_truth():
    """What the trainer does with normalize on: fit on (x - mu) / sigma, deploy raw weights."""
    s = Scenario(seed=4)
    X, y = s.sample(3000)
    mu, sigma = X.mean(axis=0), X.std(axis=0)
    model = NeuronModel(s.num_features)
    model.fit((X - mu) / sigma, y, learning_rate=2.0, max_iterations=3000, tolerance=1e-12)
    w_raw = model.weights / sigma
    b_raw = model.bias - float(np.sum(model.weights * mu / sigma))
    assert weight_error(w_raw, b_raw, s) < 0.05
    np.testing.assert_allclose(w_raw, s.true_weights, rtol=0.1)
    assert b_raw == pytest.approx(s.true_bias, abs=0.3)
    X_test, y_test = s.sample(2000)
    deployed = NeuronModel(s.num_features, weights=w_raw, bias=b_raw)
    assert accuracy(deployed.predict(X_test), y_test) > 0.95


def test_raw_gradient_descent_without_scaling_is_far_worse():
    """Why the trainer normalizes: the same budget on raw features gets nowhere near."""
    s = Scenario(seed=4)
    X, y = s.sample(1000)
    model = NeuronModel(s.num_features)
    model.fit(X, y, learning_rate=0.5, max_iterations=300, tolerance=0.0)
    assert weight_error(model.weights, model.bias, s) > 0.5


def test_metrics():
    s = Scenario()
    assert weight_error(s.true_weights, s.true_bias, s) == 0.0
    assert weight_error(np.zeros(s.num_features), 0.0, s) > 0.9
    assert accuracy(np.array([0.9, 0.1, 0.6]), np.array([0.8, 0.4, 0.2])) == pytest.approx(2 / 3)
    assert mean_abs_error(np.array([0.5, 0.5]), np.array([0.0, 1.0])) == 0.5
    with pytest.raises(ValueError, match='shapes'):
        accuracy(np.zeros(2), np.zeros(3))
    with pytest.raises(ValueError, match='non-empty'):
        mean_abs_error(np.zeros(0), np.zeros(0))


@pytest.mark.parametrize('m', [-1, 2.5, True, '3'])
def test_bad_sample_counts_raise(m):
    with pytest.raises(ValueError, match='number of samples'):
        Scenario().sample(m)
