"""Tests of the pure-numpy model core ``nn_one_node.model`` (no ROS).

The checks are numerical where they can be: finite differences for the gradients, the closed-form
least-squares solution for the linear model, a per-sample loop of the course's per-parameter sums
for the vectorized formulas, and hypothesis property tests for shapes and bad values.
"""

import copy
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nn_one_node.model import NeuronModel, all_finite, sigmoid

# ------------------------------------------------------------------------------------- helpers


def make_data(seed, num_samples=40, num_features=4, scale=1.0):
    rng = np.random.default_rng(seed)
    X = rng.normal(0.0, scale, size=(num_samples, num_features))
    return rng, X


def make_model(num_features=4, activation='sigmoid', loss='mse', seed=0):
    rng = np.random.default_rng(seed + 1000)
    return NeuronModel(num_features, activation=activation, loss=loss,
                       weights=rng.normal(0.0, 0.5, size=num_features),
                       bias=float(rng.normal(0.0, 0.5)))


def snapshot(m):
    return (m.weights.copy(), m.bias, m.num_features, m.activation, m.loss_name)


def assert_unchanged(m, before):
    weights, bias, num_features, activation, loss_name = before
    np.testing.assert_array_equal(m.weights, weights)
    assert m.bias == bias
    assert (m.num_features, m.activation, m.loss_name) == (num_features, activation, loss_name)


def finite_difference_gradients(m, X, y, scale=1.0, h=1e-6):
    """Central differences of ``scale * m.loss(X, y)`` w.r.t. each weight and the bias."""
    dw = np.empty(m.num_features)
    for n in range(m.num_features):
        plus, minus = copy.deepcopy(m), copy.deepcopy(m)
        plus.weights[n] += h
        minus.weights[n] -= h
        dw[n] = scale * (plus.loss(X, y) - minus.loss(X, y)) / (2.0 * h)
    plus, minus = copy.deepcopy(m), copy.deepcopy(m)
    plus.bias += h
    minus.bias -= h
    db = scale * (plus.loss(X, y) - minus.loss(X, y)) / (2.0 * h)
    return dw, db


def loop_gradients(X, y, weights, bias, activation):
    """The course's per-parameter sums, one sample at a time, in plain Python floats.

    dL/dw_n = (1/M) sum_i (y_hat_i - y_i) y_hat_i (1 - y_hat_i) x_in   (sigmoid)
    dL/dw_n = (1/M) sum_i (y_hat_i - y_i) x_in                         (linear)
    dL/db   = the same sums without x_in
    """
    M, N = len(X), len(weights)
    dw = [0.0] * N
    db = 0.0
    for i in range(M):
        z = bias
        for n in range(N):
            z += float(X[i][n]) * float(weights[n])
        if activation == 'sigmoid':
            y_hat = 1.0 / (1.0 + math.exp(-z))
            factor = (y_hat - float(y[i])) * y_hat * (1.0 - y_hat)
        else:
            y_hat = z
            factor = y_hat - float(y[i])
        for n in range(N):
            dw[n] += factor * float(X[i][n])
        db += factor
    return [d / M for d in dw], db / M


# ------------------------------------------------------------------- gradients: finite differences


@pytest.mark.parametrize('activation', ['sigmoid', 'linear'])
def test_mse_gradients_are_finite_differences_of_half_the_mse(activation):
    rng, X = make_data(1)
    y = rng.uniform(0.0, 1.0, size=X.shape[0]) if activation == 'sigmoid' \
        else rng.normal(0.0, 2.0, size=X.shape[0])
    m = make_model(activation=activation)
    dw, db = m.gradients(X, y)
    fd_dw, fd_db = finite_difference_gradients(m, X, y, scale=0.5)
    np.testing.assert_allclose(dw, fd_dw, rtol=1e-6, atol=1e-9)
    assert db == pytest.approx(fd_db, rel=1e-6, abs=1e-9)
    # ... and so half the exact gradient of the full MSE: the factor 2 is folded, as on the slides.
    full_dw, full_db = finite_difference_gradients(m, X, y, scale=1.0)
    np.testing.assert_allclose(2.0 * dw, full_dw, rtol=1e-6, atol=1e-9)
    assert 2.0 * db == pytest.approx(full_db, rel=1e-6, abs=1e-9)


def test_bce_gradients_are_finite_differences_of_the_full_cross_entropy():
    rng, X = make_data(2)
    y = (rng.uniform(size=X.shape[0]) > 0.5).astype(float)
    y[:5] = rng.uniform(size=5)  # soft labels in [0, 1] too
    m = make_model(loss='bce')
    dw, db = m.gradients(X, y)
    fd_dw, fd_db = finite_difference_gradients(m, X, y, scale=1.0)
    np.testing.assert_allclose(dw, fd_dw, rtol=1e-6, atol=1e-9)
    assert db == pytest.approx(fd_db, rel=1e-6, abs=1e-9)
    # the documented closed form: (1/M) (y_hat - y)^T . X
    y_hat = m.predict(X)
    np.testing.assert_allclose(dw, (y_hat - y) @ X / len(y), rtol=1e-12, atol=1e-15)
    assert db == pytest.approx(np.mean(y_hat - y), rel=1e-12, abs=1e-15)


def test_bce_loss_value():
    rng, X = make_data(3, num_samples=10)
    y = (rng.uniform(size=10) > 0.5).astype(float)
    m = make_model(loss='bce')
    p = 1.0 / (1.0 + np.exp(-(X @ m.weights + m.bias)))
    expected = -np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p))
    assert m.loss(X, y) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize('activation', ['sigmoid', 'linear'])
def test_mse_loss_value(activation):
    rng, X = make_data(4, num_samples=10)
    y = rng.uniform(size=10)
    m = make_model(activation=activation)
    z = X @ m.weights + m.bias
    y_hat = 1.0 / (1.0 + np.exp(-z)) if activation == 'sigmoid' else z
    assert m.loss(X, y) == pytest.approx(np.mean((y_hat - y) ** 2), rel=1e-12)


# ------------------------------------------------------ gradients: the course's per-sample sums


@pytest.mark.parametrize('activation', ['sigmoid', 'linear'])
@pytest.mark.parametrize('shape', [(1, 1), (7, 1), (1, 5), (25, 3), (60, 6)])
def test_vectorized_gradients_equal_the_per_sample_sums(activation, shape):
    rng, X = make_data(5 + shape[0], *shape, scale=2.0)
    y = rng.uniform(0.0, 1.0, size=shape[0])
    m = make_model(shape[1], activation=activation, seed=shape[0])
    dw, db = m.gradients(X, y)
    loop_dw, loop_db = loop_gradients(X.tolist(), y.tolist(), m.weights.tolist(), m.bias,
                                      activation)
    np.testing.assert_allclose(dw, loop_dw, rtol=1e-10, atol=1e-13)
    assert db == pytest.approx(loop_db, rel=1e-10, abs=1e-13)


def test_gradients_do_not_mutate_inputs():
    rng, X = make_data(6)
    y = rng.uniform(size=X.shape[0])
    X0, y0 = X.copy(), y.copy()
    m = make_model()
    before = snapshot(m)
    m.predict(X)
    m.loss(X, y)
    m.gradients(X, y)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)
    assert_unchanged(m, before)


def test_column_labels_are_accepted():
    rng, X = make_data(7)
    y = rng.uniform(size=X.shape[0])
    m = make_model()
    dw, db = m.gradients(X, y)
    dw_col, db_col = m.gradients(X, y.reshape(-1, 1))
    np.testing.assert_array_equal(dw, dw_col)
    assert db == db_col
    assert m.loss(X, y) == m.loss(X, y.reshape(-1, 1))


# ----------------------------------------------------------------------------- training results


def test_linear_fit_reaches_the_least_squares_solution():
    rng = np.random.default_rng(8)
    M, N = 300, 5
    X = rng.normal(size=(M, N)) * np.array([1.0, 2.0, 0.5, 1.5, 1.0]) + np.array(
        [0.5, -1.0, 0.0, 2.0, 0.3])
    true_w = np.array([1.5, -2.0, 0.7, 0.0, 3.0])
    y = X @ true_w - 0.8 + rng.normal(0.0, 0.3, size=M)

    A = np.hstack([X, np.ones((M, 1))])
    solution = np.linalg.lstsq(A, y, rcond=None)[0]
    # The step uses half the MSE gradient, whose Hessian is A^T A / M: lr below 2 / lambda_max.
    lr = 1.0 / np.linalg.eigvalsh(A.T @ A / M).max()

    m = NeuronModel(N, activation='linear', seed=8)
    history = m.fit(X, y, learning_rate=lr, max_iterations=20000, tolerance=1e-18)
    np.testing.assert_allclose(m.weights, solution[:N], atol=1e-6)
    assert m.bias == pytest.approx(solution[N], abs=1e-6)
    assert history[-1] == pytest.approx(np.mean((A @ solution - y) ** 2), rel=1e-9)
    assert len(history) < 20001  # it converged rather than hitting the cap


@pytest.mark.parametrize('loss', ['mse', 'bce'])
def test_sigmoid_fit_separates_linearly_separable_data(loss):
    rng = np.random.default_rng(9)
    X = rng.uniform(-3.0, 3.0, size=(400, 3))
    w, b = np.array([1.0, -2.0, 0.5]), 0.3
    margin = X @ w + b
    keep = np.abs(margin) > 0.5
    X, y = X[keep], (margin[keep] > 0).astype(float)
    assert 0.2 < y.mean() < 0.8

    m = NeuronModel(3, activation='sigmoid', loss=loss, seed=9)
    history = m.fit(X, y, learning_rate=2.0, max_iterations=3000, tolerance=1e-12)
    accuracy = np.mean((m.predict(X) > 0.5) == (y == 1.0))
    assert accuracy == 1.0
    assert history[-1] < history[0]


# --------------------------------------------------------------------------------------- step()


@pytest.mark.parametrize('activation,loss', [('sigmoid', 'mse'), ('linear', 'mse'),
                                             ('sigmoid', 'bce')])
def test_step_returns_loss_before_and_updates_exactly(activation, loss):
    rng, X = make_data(10)
    y = rng.uniform(size=X.shape[0])
    m = make_model(activation=activation, loss=loss)
    w0, b0 = m.weights.copy(), m.bias
    loss_before = m.loss(X, y)
    dw, db = m.gradients(X, y)
    lr = 0.37
    returned = m.step(X, y, lr)
    assert returned == loss_before
    assert isinstance(returned, float)
    np.testing.assert_array_equal(m.weights, w0 - lr * dw)
    assert m.bias == b0 - lr * db
    assert isinstance(m.bias, float)
    assert m.weights.dtype == np.float64
    assert m.loss(X, y) < loss_before  # a descent step


# ---------------------------------------------------------------------------------------- fit()


def _regression(seed=11):
    rng, X = make_data(seed, num_samples=50, num_features=3)
    y = X @ np.array([0.5, -1.0, 2.0]) + 0.25 + rng.normal(0.0, 0.1, size=50)
    return X, y


def test_fit_stops_when_loss_change_is_below_tolerance():
    X, y = _regression()
    m = NeuronModel(3, activation='linear')
    tol = 1e-4
    history = m.fit(X, y, learning_rate=0.1, max_iterations=10000, tolerance=tol)
    assert len(history) < 10000
    # history = [L_0, ..., L_(k-1)] (loss before each of the k steps) + [loss after the last]
    before_steps = history[:-1]
    changes = np.abs(np.diff(before_steps))
    assert changes[-1] < tol
    assert np.all(changes[:-1] >= tol)
    assert history[-1] == m.loss(X, y)


def test_fit_is_capped_by_max_iterations_and_equals_repeated_steps():
    X, y = _regression()
    m = make_model(3, activation='linear')
    twin = copy.deepcopy(m)
    initial = m.loss(X, y)
    history = m.fit(X, y, learning_rate=0.01, max_iterations=7, tolerance=0.0)
    assert isinstance(history, np.ndarray)
    assert history.dtype == np.float64
    assert len(history) == 8
    assert history[0] == initial
    steps = [twin.step(X, y, 0.01) for _ in range(7)]
    np.testing.assert_array_equal(history[:-1], steps)
    np.testing.assert_array_equal(m.weights, twin.weights)
    assert m.bias == twin.bias
    assert history[-1] == twin.loss(X, y)


def test_fit_convergence_rule_is_strictly_less_than_tolerance():
    # A model that already fits exactly: the loss stays 0, every change is exactly 0.
    X = np.array([[1.0, 2.0], [3.0, -1.0], [0.0, 4.0]])
    m = NeuronModel(2, activation='linear', weights=[2.0, -1.0], bias=0.5)
    y = X @ np.array([2.0, -1.0]) + 0.5
    np.testing.assert_array_equal(m.fit(X, y, 0.1, max_iterations=50), [0.0, 0.0, 0.0])
    # |0 - 0| < 0 never holds: tolerance 0 runs every iteration.
    np.testing.assert_array_equal(m.fit(X, y, 0.1, max_iterations=5, tolerance=0.0), [0.0] * 6)


def test_fit_single_iteration():
    X, y = _regression()
    m = NeuronModel(3, activation='linear')
    history = m.fit(X, y, learning_rate=0.05, max_iterations=1)
    assert len(history) == 2
    assert history[1] < history[0]


@pytest.mark.parametrize('activation,loss', [('sigmoid', 'mse'), ('linear', 'mse'),
                                             ('sigmoid', 'bce')])
def test_fit_loss_is_non_increasing_for_a_small_learning_rate(activation, loss):
    _, X = make_data(12, num_samples=60, num_features=4)
    y = (X @ np.array([1.0, -1.0, 0.5, 0.0]) > 0).astype(float)
    m = make_model(activation=activation, loss=loss)
    history = m.fit(X, y, learning_rate=0.01, max_iterations=300, tolerance=0.0)
    assert len(history) == 301
    assert np.all(np.diff(history) <= 0.0)
    assert history[-1] < history[0]


# ------------------------------------------------------------------------------------- sigmoid


def test_sigmoid_huge_and_infinite_inputs_without_warnings():
    z = np.array([-np.inf, -1e308, -1e4, -800.0, -745.0, -710.0, -40.0, 0.0, 40.0, 710.0,
                  800.0, 1e4, 1e308, np.inf])
    with warnings.catch_warnings(), np.errstate(all='raise'):
        warnings.simplefilter('error')
        s = sigmoid(z)
    assert s.dtype == np.float64
    assert np.all(np.isfinite(s))
    assert np.all((s >= 0.0) & (s <= 1.0))
    assert np.all(np.diff(s) >= 0.0)
    assert s[0] == 0.0 and s[1] == 0.0 and s[-1] == 1.0 and s[-2] == 1.0
    assert s[7] == 0.5


def test_sigmoid_values():
    assert sigmoid(0.0) == 0.5
    assert sigmoid(np.zeros(3)).tolist() == [0.5, 0.5, 0.5]
    z = np.linspace(-30.0, 30.0, 601)
    s = sigmoid(z)
    np.testing.assert_allclose(s, 1.0 / (1.0 + np.exp(-z)), rtol=1e-14, atol=0.0)
    np.testing.assert_allclose(sigmoid(-z), 1.0 - s, rtol=0.0, atol=1e-15)
    assert np.all((s > 0.0) & (s < 1.0))
    assert np.all(np.diff(s) > 0.0)
    assert sigmoid([-1, 0, 1]).dtype == np.float64


def test_sigmoid_in_place_output():
    z = np.linspace(-50.0, 50.0, 101)
    expected = sigmoid(z.copy())
    out = sigmoid(z, out=z)
    assert out is z
    np.testing.assert_array_equal(z, expected)


@pytest.mark.parametrize('activation', ['sigmoid', 'linear'])
def test_predict_on_huge_features_is_finite(activation):
    X = np.array([[1e6, -1e6, 3e6], [-2e6, 5e5, 1e6], [0.0, 0.0, 0.0]])
    m = NeuronModel(3, activation=activation, weights=[50.0, -20.0, 7.0], bias=1.0)
    with warnings.catch_warnings(), np.errstate(all='raise'):
        warnings.simplefilter('error')
        y_hat = m.predict(X)
        m.gradients(X, [1.0, 0.0, 1.0])
    assert np.all(np.isfinite(y_hat))
    if activation == 'sigmoid':
        assert np.all((y_hat >= 0.0) & (y_hat <= 1.0))
        assert y_hat.tolist()[:2] == [1.0, 0.0]


# ----------------------------------------------------------------------------------- dtypes


@pytest.mark.parametrize('dtype', [np.int32, np.int64, np.float32, np.float64])
@pytest.mark.parametrize('activation', ['sigmoid', 'linear'])
def test_everything_is_float64(dtype, activation):
    X = np.array([[1, 2], [3, -4], [0, 5]], dtype=dtype)
    y = np.array([1, 0, 1], dtype=dtype)
    m = NeuronModel(2, activation=activation, weights=np.array([1, -1], dtype=dtype), bias=1)
    assert m.weights.dtype == np.float64
    assert isinstance(m.bias, float)
    assert m.predict(X).dtype == np.float64
    assert m.predict(X.tolist()).dtype == np.float64
    dw, db = m.gradients(X, y)
    assert dw.dtype == np.float64
    assert isinstance(db, float)
    assert isinstance(m.loss(X, y), float)
    m.step(X, y, 0.01)
    assert m.weights.dtype == np.float64
    assert isinstance(m.bias, float)


def test_float32_input_is_computed_in_float64():
    X32 = np.array([[0.1, 0.2, 0.3]], dtype=np.float32)
    m = NeuronModel(3, activation='linear', weights=[1.0, 1.0, 1.0])
    expected = float(np.float64(np.float32(0.1)) + np.float64(np.float32(0.2))
                     + np.float64(np.float32(0.3)))
    assert m.predict(X32)[0] == pytest.approx(expected, rel=1e-15)


# ----------------------------------------------------------------------------- initialization


def test_random_init_is_reproducible_and_small():
    a, b = NeuronModel(6, seed=3), NeuronModel(6, seed=3)
    np.testing.assert_array_equal(a.weights, b.weights)
    c = NeuronModel(6, seed=4)
    assert not np.array_equal(a.weights, c.weights)
    assert np.all(a.weights != 0.0)
    assert np.all(np.abs(a.weights) < 0.1)
    assert a.weights.shape == (6,) and a.weights.dtype == np.float64
    assert a.bias == 0.0
    np.testing.assert_array_equal(NeuronModel.random_weights(6, 3), a.weights)


def test_no_seed_no_weights_gives_zeros():
    m = NeuronModel(4)
    np.testing.assert_array_equal(m.weights, np.zeros(4))
    assert m.weights.dtype == np.float64
    assert m.bias == 0.0
    assert m.activation == 'sigmoid' and m.loss_name == 'mse'
    np.testing.assert_array_equal(m.predict(np.ones((2, 4))), [0.5, 0.5])


def test_explicit_weights_win_over_seed_and_are_copied():
    weights_list = [1.0, 2.0, 3.0]
    m = NeuronModel(3, weights=weights_list, seed=5, bias=-0.5)
    weights_list[0] = 100.0
    np.testing.assert_array_equal(m.weights, [1.0, 2.0, 3.0])
    assert m.bias == -0.5

    weights_array = np.array([1.0, 2.0, 3.0])
    m = NeuronModel(3, weights=weights_array)
    weights_array[:] = 7.0
    np.testing.assert_array_equal(m.weights, [1.0, 2.0, 3.0])
    assert not np.shares_memory(m.weights, weights_array)

    row = np.array([[1.0, 2.0, 3.0]])
    m = NeuronModel(3, weights=row)
    row[0, 0] = -9.0
    assert m.weights.shape == (3,)
    np.testing.assert_array_equal(m.weights, [1.0, 2.0, 3.0])


def test_numpy_integer_num_features_is_accepted():
    m = NeuronModel(np.int64(3))
    assert m.num_features == 3 and isinstance(m.num_features, int)


def test_repr_mentions_the_parameters():
    text = repr(NeuronModel(2, activation='linear', weights=[1.0, 2.0], bias=0.5))
    assert 'linear' in text and '[1.0, 2.0]' in text and '0.5' in text


# -------------------------------------------------------------------------------------- shapes


@pytest.mark.parametrize('activation', ['sigmoid', 'linear'])
def test_predict_shapes(activation):
    m = make_model(3, activation=activation)
    X = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0], [0.0, 0.0, 1.0], [4.0, 4.0, 4.0]])
    batch = m.predict(X)
    assert batch.shape == (4,)
    single = m.predict(X[1])
    assert single.shape == (1,)
    assert single[0] == pytest.approx(batch[1], rel=1e-15)
    assert m.predict([[1.0, 2.0, 3.0]]).shape == (1,)
    assert m.predict([1.0, 2.0, 3.0]).shape == (1,)


def test_single_feature_model():
    m = NeuronModel(1, activation='linear', weights=[2.0], bias=1.0)
    np.testing.assert_array_equal(m.predict([[1.0], [2.0], [3.0]]), [3.0, 5.0, 7.0])
    np.testing.assert_array_equal(m.predict([4.0]), [9.0])
    m = NeuronModel(1, activation='linear', weights=[[2.0]])  # (1, N) row vector with N = 1
    assert m.weights.shape == (1,)


def test_row_vector_weights_like_the_slides():
    m = NeuronModel(4, activation='linear', weights=[[1.0, 2.0, 3.0, 4.0]], bias=0.5)
    assert m.weights.shape == (4,)
    assert m.predict([1.0, 1.0, 1.0, 1.0])[0] == 10.5


# ---------------------------------------------------------------------------------- bad input

GOOD_X = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0], [0.0, 0.0, 1.0]])
GOOD_Y = np.array([1.0, 0.0, 0.5])


def _with(array, index, value):
    array = array.copy()
    array[index] = value
    return array


BAD_X = [
    pytest.param(GOOD_X[:, :2], 'has 2 features per sample.*expects 3', id='X-too-narrow'),
    pytest.param(np.ones((3, 4)), 'has 4 features per sample.*expects 3', id='X-too-wide'),
    pytest.param(np.ones(5), 'has 5 features', id='single-sample-wrong-width'),
    pytest.param(np.empty((0, 3)), 'X is empty', id='X-empty'),
    pytest.param(np.ones((3, 3, 1)), 'X must be', id='X-3d'),
    pytest.param(_with(GOOD_X, (1, 2), np.nan), 'X contains NaN', id='X-nan'),
    pytest.param(_with(GOOD_X, (0, 0), np.inf), 'X contains NaN or infinite', id='X-inf'),
    pytest.param(_with(GOOD_X, (2, 1), -np.inf), 'X contains NaN or infinite', id='X-minus-inf'),
]
BAD_Y = [
    pytest.param(GOOD_Y[:2], 'one label per sample', id='y-too-short'),
    pytest.param(np.ones(4), 'one label per sample', id='y-too-long'),
    pytest.param(np.ones((3, 2)), 'one label per sample', id='y-2d'),
    pytest.param(_with(GOOD_Y, 1, np.nan), 'y contains NaN', id='y-nan'),
    pytest.param(_with(GOOD_Y, 0, np.inf), 'y contains NaN or infinite', id='y-inf'),
]


def _call(method, m, X, y):
    if method == 'predict':
        return m.predict(X)
    if method == 'loss':
        return m.loss(X, y)
    if method == 'gradients':
        return m.gradients(X, y)
    if method == 'step':
        return m.step(X, y, 0.1)
    return m.fit(X, y, 0.1, max_iterations=5)


def _assert_rejected(method, X, y, message, **model_kwargs):
    m = make_model(3, **model_kwargs)
    before = snapshot(m)
    X_copy, y_copy = np.copy(X), np.copy(y)
    with pytest.raises(ValueError, match=message):
        _call(method, m, X, y)
    assert_unchanged(m, before)
    np.testing.assert_array_equal(X, X_copy)  # inputs untouched too
    np.testing.assert_array_equal(y, y_copy)


@pytest.mark.parametrize('method', ['predict', 'loss', 'gradients', 'step', 'fit'])
@pytest.mark.parametrize('X,message', BAD_X)
def test_bad_X_raises_and_leaves_model_unchanged(method, X, message):
    y = np.zeros(len(X)) if X.ndim > 1 else GOOD_Y[:1]
    _assert_rejected(method, X, y, message)


@pytest.mark.parametrize('method', ['loss', 'gradients', 'step', 'fit'])
@pytest.mark.parametrize('y,message', BAD_Y)
def test_bad_y_raises_and_leaves_model_unchanged(method, y, message):
    _assert_rejected(method, GOOD_X, y, message)


@pytest.mark.parametrize('method', ['loss', 'gradients', 'step', 'fit'])
@pytest.mark.parametrize('bad', [-0.1, 1.5, -1e-9, 2.0])
def test_bce_labels_outside_unit_interval_raise(method, bad):
    _assert_rejected(method, GOOD_X, _with(GOOD_Y, 1, bad),
                     r"labels must lie in \[0, 1\] for loss 'bce'", loss='bce')


def test_mse_accepts_labels_outside_unit_interval():
    m = make_model(3, activation='linear')
    assert np.isfinite(m.loss(GOOD_X, [5.0, -3.0, 10.0]))


@pytest.mark.parametrize('lr', [0.0, -0.1, -np.inf, np.inf, np.nan, 'fast', None, [0.1]])
@pytest.mark.parametrize('method', ['step', 'fit'])
def test_bad_learning_rate_raises_and_leaves_model_unchanged(method, lr):
    m = make_model(3)
    before = snapshot(m)
    with pytest.raises(ValueError, match='learning_rate must be'):
        if method == 'step':
            m.step(GOOD_X, GOOD_Y, lr)
        else:
            m.fit(GOOD_X, GOOD_Y, lr)
    assert_unchanged(m, before)


@pytest.mark.parametrize('kwargs,message', [
    ({'max_iterations': 0}, 'max_iterations must be an integer >= 1'),
    ({'max_iterations': -3}, 'max_iterations must be an integer >= 1'),
    ({'max_iterations': 2.5}, 'max_iterations must be an integer >= 1'),
    ({'max_iterations': True}, 'max_iterations must be an integer >= 1'),
    ({'tolerance': -1e-9}, 'tolerance must be a finite number >= 0'),
    ({'tolerance': np.nan}, 'tolerance must be a finite number >= 0'),
    ({'tolerance': np.inf}, 'tolerance must be a finite number >= 0'),
    ({'tolerance': 'small'}, 'tolerance must be a number'),
])
def test_bad_fit_settings_raise_and_leave_model_unchanged(kwargs, message):
    m = make_model(3)
    before = snapshot(m)
    with pytest.raises(ValueError, match=message):
        m.fit(GOOD_X, GOOD_Y, 0.1, **kwargs)
    assert_unchanged(m, before)


@pytest.mark.parametrize('kwargs,message', [
    ({'activation': 'relu'}, "unknown activation 'relu'"),
    ({'activation': 'Sigmoid'}, "unknown activation 'Sigmoid'"),
    ({'loss': 'mae'}, "unknown loss 'mae'"),
    ({'loss': 'bce', 'activation': 'linear'}, "loss 'bce'.*needs activation 'sigmoid'"),
    ({'weights': [1.0, 2.0]}, 'weights must have 3 values'),
    ({'weights': [1.0, 2.0, 3.0, 4.0]}, 'weights must have 3 values'),
    ({'weights': [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]}, 'weights must have 3 values'),
    ({'weights': 1.0}, 'weights must have 3 values'),
    ({'weights': [1.0, np.nan, 3.0]}, 'weights contain NaN'),
    ({'weights': [1.0, 2.0, np.inf]}, 'weights contain NaN or infinite'),
    ({'weights': ['a', 'b', 'c']}, 'weights must be a sequence of numbers'),
    ({'bias': np.nan}, 'bias must be finite'),
    ({'bias': -np.inf}, 'bias must be finite'),
    ({'bias': 'zero'}, 'bias must be a number'),
])
def test_bad_constructor_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        NeuronModel(3, **kwargs)


@pytest.mark.parametrize('num_features,message', [
    (0, 'num_features must be >= 1'),
    (-2, 'num_features must be >= 1'),
    (2.0, 'num_features must be an integer'),
    (True, 'num_features must be an integer'),
    ('3', 'num_features must be an integer'),
    (None, 'num_features must be an integer'),
])
def test_bad_num_features(num_features, message):
    with pytest.raises(ValueError, match=message):
        NeuronModel(num_features)


def _diverging_problem():
    rng = np.random.default_rng(13)
    X = rng.uniform(-1e3, 1e3, size=(30, 4))
    y = rng.normal(size=30)
    return X, y


def test_diverging_fit_raises_and_restores_the_weights():
    X, y = _diverging_problem()
    m = make_model(4, activation='linear')
    before = snapshot(m)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)  # overflow on the way is expected
        with pytest.raises(ValueError, match='diverged'):
            m.fit(X, y, learning_rate=1e6, max_iterations=1000)
    assert_unchanged(m, before)
    assert np.isfinite(m.loss(X, y))


def test_diverging_step_raises_and_keeps_the_last_finite_weights():
    X, y = _diverging_problem()
    m = make_model(4, activation='linear')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)
        for _ in range(1000):
            before = snapshot(m)
            try:
                m.step(X, y, 1e6)
            except ValueError as error:
                assert 'diverged' in str(error)
                break
        else:
            pytest.fail('step never diverged with learning_rate 1e6')
    assert_unchanged(m, before)
    assert np.all(np.isfinite(m.weights)) and np.isfinite(m.bias)


def test_single_diverging_step_on_huge_features():
    X = np.full((4, 2), 1e200)
    m = NeuronModel(2, activation='linear', weights=[1.0, 1.0])
    before = snapshot(m)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)
        with pytest.raises(ValueError, match='diverged'):
            m.step(X, np.zeros(4), 1e6)
    assert_unchanged(m, before)


# --------------------------------------------------------------------- property tests (hypothesis)

finite_floats = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@st.composite
def problems(draw, activation='sigmoid'):
    M = draw(st.integers(1, 50))
    N = draw(st.integers(1, 8))
    X = draw(hnp.arrays(np.float64, (M, N), elements=finite_floats))
    y = draw(hnp.arrays(np.float64, M, elements=st.floats(0.0, 1.0)))
    w = draw(hnp.arrays(np.float64, N, elements=st.floats(-10.0, 10.0)))
    b = draw(st.floats(-10.0, 10.0))
    return X, y, NeuronModel(N, activation=activation, weights=w, bias=b)


@settings(derandomize=True, max_examples=60, deadline=None)
@given(problem=problems('sigmoid'))
def test_property_sigmoid_shapes_range_and_finiteness(problem):
    X, y, m = problem
    M, N = X.shape
    y_hat = m.predict(X)
    assert y_hat.shape == (M,) and y_hat.dtype == np.float64
    assert np.all((y_hat >= 0.0) & (y_hat <= 1.0))
    dw, db = m.gradients(X, y)
    assert dw.shape == (N,) and dw.dtype == np.float64
    assert isinstance(db, float)
    assert np.all(np.isfinite(dw)) and np.isfinite(db)
    loss = m.loss(X, y)
    assert isinstance(loss, float) and 0.0 <= loss <= 1.0
    np.testing.assert_allclose(m.predict(X[0]), y_hat[:1], rtol=1e-12, atol=1e-300)


@settings(derandomize=True, max_examples=60, deadline=None)
@given(problem=problems('linear'))
def test_property_linear_shapes_and_finiteness(problem):
    X, y, m = problem
    M, N = X.shape
    y_hat = m.predict(X)
    assert y_hat.shape == (M,) and y_hat.dtype == np.float64
    assert np.all(np.isfinite(y_hat))
    dw, db = m.gradients(X, y)
    assert dw.shape == (N,) and isinstance(db, float)
    assert np.all(np.isfinite(dw)) and np.isfinite(db)
    assert np.isfinite(m.loss(X, y)) and m.loss(X, y) >= 0.0


@settings(derandomize=True, max_examples=40, deadline=None)
@given(problem=problems('sigmoid'), data=st.data())
def test_property_step_matches_gradients(problem, data):
    X, y, m = problem
    lr = data.draw(st.floats(1e-4, 1.0))
    w0, b0 = m.weights.copy(), m.bias
    loss = m.loss(X, y)
    dw, db = m.gradients(X, y)
    assert m.step(X, y, lr) == loss
    np.testing.assert_array_equal(m.weights, w0 - lr * dw)
    assert m.bias == b0 - lr * db


@st.composite
def poisoned(draw):
    X, y, m = draw(problems(draw(st.sampled_from(['sigmoid', 'linear']))))
    bad = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    if draw(st.booleans()):
        where = draw(st.lists(st.integers(0, X.size - 1), min_size=1, max_size=3))
        X.flat[where] = bad
        target = 'X'
    else:
        where = draw(st.lists(st.integers(0, y.size - 1), min_size=1, max_size=3))
        y[where] = bad
        target = 'y'
    return X, y, m, target


@settings(derandomize=True, max_examples=80, deadline=None)
@given(case=poisoned(), method=st.sampled_from(['predict', 'loss', 'gradients', 'step', 'fit']))
def test_property_nan_or_inf_always_raises(case, method):
    X, y, m, target = case
    if method == 'predict' and target == 'y':
        method = 'loss'
    before = snapshot(m)
    with pytest.raises(ValueError, match=f'{target} contains NaN or infinite values'):
        _call(method, m, X, y)
    assert_unchanged(m, before)


@pytest.mark.filterwarnings('error::RuntimeWarning')
@settings(max_examples=300, deadline=None)
@given(x=hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=2, min_side=0, max_side=40),
                    elements=st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                                       st.sampled_from([1e154, 1e200, -1e308, 1e308,
                                                        5e-324, -0.0]))),
       step=st.sampled_from([1, 2]))
def test_all_finite_is_isfinite_all_and_silent(x, step):
    # any values, huge finite ones whose squares overflow included, on strided views too
    view = x[::step] if x.ndim == 1 else x[:, ::step]
    assert all_finite(view) == bool(np.isfinite(view).all())


@pytest.mark.filterwarnings('error::RuntimeWarning')
@pytest.mark.parametrize('bad', [math.nan, math.inf, -math.inf])
def test_all_finite_finds_one_bad_value_anywhere_in_a_batch(bad):
    x = np.full((1000, 64), 1e200)  # squares overflow: the exact check decides
    assert all_finite(x)
    for where in [(0, 0), (999, 63), (500, 17)]:
        y = np.ones((1000, 64))
        y[where] = bad
        assert not all_finite(y)
        x[where] = bad
        assert not all_finite(x)
        x[where] = 1e200
