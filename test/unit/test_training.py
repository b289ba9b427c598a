"""Tests of nn_one_node.learning.descent: ring buffer, feature scaling, the update and its gate."""

import time
import tracemalloc
from collections import deque

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from nn_one_node.model import NeuronModel, sigmoid
from nn_one_node.learning import descent
from nn_one_node.learning.descent import _Kernel, train_update, UpdateResult
from nn_one_node.learning.buffer import SampleBuffer
from nn_one_node.learning.standardizer import Standardizer, Workspace

FAST = settings(derandomize=True, deadline=None, max_examples=40)
CASES = [('sigmoid', 'mse'), ('linear', 'mse'), ('sigmoid', 'bce')]


def rows(start: int, k: int, n: int = 2):
    """k samples numbered start.. (feature j of sample i is i + j / 10, label i)."""
    i = np.arange(start, start + k, dtype=np.float64)
    return i[:, None] + np.arange(n) / 10.0, i


def scaled_data(seed: int, m: int = 300, activation: str = 'sigmoid'):
    """Features of scales 1e-3 .. 1e4 with offsets, one constant; labels of a known model."""
    rng = np.random.default_rng(seed)
    scales = np.array([1e-3, 1.0, 1e2, 1e4, 1.0])
    X = (rng.normal(size=(m, 5)) + rng.normal(size=5)) * scales
    X[:, 4] = 7.5  # constant
    Xs = (X - X.mean(axis=0)) / np.where(X.std(axis=0) > 0, X.std(axis=0), 1.0)
    z = Xs @ rng.normal(size=5) + 0.2
    y = sigmoid(z) if activation == 'sigmoid' else z
    return X, y


# ------------------------------------------------------------------------------ SampleBuffer
def test_buffer_fills_then_wraps_keeping_the_newest():
    buf = SampleBuffer(5, 2)
    assert buf.count == 0 and buf.total_added == 0 and buf.arrays()[0].shape == (0, 2)
    buf.add(*rows(0, 3))
    assert (buf.count, buf.total_added) == (3, 3)
    np.testing.assert_array_equal(buf.ordered()[1], [0, 1, 2])
    buf.add(*rows(3, 4))  # wraps around
    assert (buf.count, buf.total_added, len(buf)) == (5, 7, 5)
    X, y = buf.ordered()
    np.testing.assert_array_equal(y, [2, 3, 4, 5, 6])
    np.testing.assert_array_equal(X, rows(2, 5)[0])
    held_X, held_y = buf.arrays()  # storage order: same samples
    assert sorted(held_y.tolist()) == [2, 3, 4, 5, 6]
    np.testing.assert_array_equal(held_X[:, 0], held_y)


@pytest.mark.parametrize('k', [5, 6, 12])
def test_buffer_batch_larger_than_capacity_keeps_only_the_newest(k):
    buf = SampleBuffer(5, 2)
    buf.add(*rows(100, 2))
    buf.add(*rows(0, k))
    assert (buf.count, buf.total_added) == (5, k + 2)
    np.testing.assert_array_equal(buf.ordered()[1], np.arange(k - 5, k))
    buf.add(*rows(k, 1))
    np.testing.assert_array_equal(buf.ordered()[1], np.arange(k - 4, k + 1))


def test_buffer_single_row_empty_batch_and_bad_input():
    buf = SampleBuffer(3, 2)
    buf.add([1.0, 2.0], 0.5)
    assert buf.add(np.empty((0, 2)), np.empty(0)) == 0
    assert (buf.count, buf.total_added) == (1, 1)
    for X, y in [(np.ones((2, 3)), np.ones(2)), (np.ones((2, 2)), np.ones(3)),
                 ([[1.0, np.nan]], [0.0]), ([[1.0, 2.0]], [np.inf]), (np.ones((2, 2, 2)), [1, 1])]:
        with pytest.raises(ValueError):
            buf.add(X, y)
    assert (buf.count, buf.total_added) == (1, 1)  # a refused batch inserts nothing
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError):
            SampleBuffer(bad, 2)
        with pytest.raises(ValueError):
            SampleBuffer(2, bad)


def test_buffer_arrays_are_read_only_views_of_fixed_storage():
    buf = SampleBuffer(4, 3)
    address = buf.arrays()[0].__array_interface__['data'][0]
    for start in range(0, 1000, 7):
        buf.add(*rows(start, 7, 3))
    X, y = buf.arrays()
    assert X.__array_interface__['data'][0] == address  # no reallocation however long it runs
    assert not X.flags.writeable and not y.flags.writeable
    with pytest.raises(ValueError):
        X[0, 0] = 1.0
    buf.add(*rows(5000, 1, 3))  # views alias the storage (documented)
    assert 5000.0 in y


def test_buffer_clear_and_resize():
    buf = SampleBuffer(4, 2)
    buf.add(*rows(0, 6))
    buf.clear()
    assert (buf.count, buf.total_added) == (0, 6)
    buf.add(*rows(10, 3))
    np.testing.assert_array_equal(buf.ordered()[1], [10, 11, 12])
    buf.resize(2)  # smaller: the newest survive
    assert (buf.capacity, buf.count) == (2, 2)
    np.testing.assert_array_equal(buf.ordered()[1], [11, 12])
    buf.resize(5)  # larger: everything kept, then fills up
    buf.add(*rows(13, 4))
    np.testing.assert_array_equal(buf.ordered()[1], [12, 13, 14, 15, 16])
    np.testing.assert_array_equal(buf.ordered()[0], rows(12, 5)[0])
    assert buf.total_added == 13


@FAST
@given(capacity=st.integers(1, 9),
       ops=st.lists(st.one_of(st.integers(0, 25), st.just('clear'),
                              st.tuples(st.just('resize'), st.integers(1, 9))), max_size=25))
def test_buffer_matches_a_reference_deque(capacity, ops):
    buf = SampleBuffer(capacity, 2)
    ref = deque(maxlen=capacity)
    counter = total = 0
    for op in ops:
        if op == 'clear':
            buf.clear()
            ref.clear()
        elif isinstance(op, tuple):
            buf.resize(op[1])
            ref = deque(ref, maxlen=op[1])
        else:
            buf.add(*rows(counter, op))
            ref.extend(range(counter, counter + op))
            counter += op
            total += op
        assert (buf.count, buf.total_added) == (len(ref), total)
        X, y = buf.ordered()
        np.testing.assert_array_equal(y, list(ref))
        np.testing.assert_array_equal(X, rows(0, 0)[0] if not ref else rows(ref[0], len(ref))[0])
        np.testing.assert_array_equal(np.sort(buf.arrays()[1]), list(ref))


# ------------------------------------------------------------------------------ Standardizer
def test_standardizer_statistics_and_constant_features():
    X, _ = scaled_data(0)
    X[:, 1] = 0.0  # constant zero
    s = Standardizer.fit(X)
    np.testing.assert_allclose(s.mean, X.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(s.std[:4][[0, 2, 3]], X.std(axis=0)[[0, 2, 3]], rtol=1e-12)
    assert s.std[1] == 1.0 and s.std[4] == 1.0
    np.testing.assert_array_equal(s.constant, [False, True, False, False, True])
    assert not s.mean.flags.writeable and not s.std.flags.writeable
    big = np.vstack([X] * 30)  # several row blocks
    np.testing.assert_allclose(Standardizer.fit(big).std[[0, 2, 3]], s.std[[0, 2, 3]],
                               rtol=1e-12)
    for bad in (np.empty((0, 3)), np.ones(3), [[1.0, np.nan]], [[np.inf, 1.0]]):
        with pytest.raises(ValueError):
            Standardizer.fit(bad)


@FAST
@given(seed=st.integers(0, 2**32 - 1), activation=st.sampled_from(['sigmoid', 'linear']))
def test_raw_and_standardized_models_predict_the_same(seed, activation):
    X, _ = scaled_data(seed)
    s = Standardizer.fit(X)
    rng = np.random.default_rng(seed)
    w_s, b_s = rng.normal(size=5), float(rng.normal())
    w_raw, b_raw = s.to_raw(w_s, b_s)
    standardized = NeuronModel(5, activation, w_s, b_s).predict(s.transform(X))
    raw = NeuronModel(5, activation, w_raw, b_raw).predict(X)
    np.testing.assert_allclose(raw, standardized, rtol=1e-9, atol=1e-11)
    w_back, b_back = s.from_raw(w_raw, b_raw)  # and the inverse conversion
    np.testing.assert_allclose(w_back, w_s, rtol=1e-12)
    assert b_back == pytest.approx(b_s, rel=1e-9, abs=1e-9)
    np.testing.assert_allclose(w_raw, w_s / s.std)
    assert b_raw == pytest.approx(b_s - np.sum(w_s * s.mean / s.std), rel=1e-12, abs=1e-9)


def test_identity_standardizer_is_raw_space():
    s = Standardizer.identity(3)
    w, b = s.to_raw([1.0, -2.0, 0.5], 0.25)
    np.testing.assert_array_equal(w, [1.0, -2.0, 0.5])
    assert b == 0.25


# --------------------------------------------------------------------- the fast path == the core
def test_kernel_sigmoid_and_losses_bitwise_equal_the_model():
    z = np.array([0.0, -0.0, 1e-300, -1e-300, 3.0, -3.0, 40.0, -40.0, 800.0, -800.0, 1e308])
    X = z.reshape(-1, 1)
    for activation, loss in CASES:
        y = np.clip(np.linspace(-0.2, 1.2, z.size), 0.0, 1.0)
        model = NeuronModel(1, activation, [1.0], 0.0, loss=loss)
        k = _Kernel(X, y, activation, loss, Workspace(z.size, 1))
        with np.errstate(all='ignore'):
            value = k.loss(np.array([1.0]), 0.0)
            expected = model._loss(model._forward(X), y)
        np.testing.assert_array_equal(k.z, model._forward(X))
        assert value == expected or (np.isnan(value) and np.isnan(expected))
        np.testing.assert_array_equal(k.gradient_bracket(), model._delta(model._forward(X), y))
    np.testing.assert_array_equal(sigmoid(z), model._forward(X))


@pytest.mark.parametrize('m', [1, 300, 5000])
@pytest.mark.parametrize('activation', ['sigmoid', 'linear'])
def test_fused_mse_step_equals_the_model_within_rounding(activation, m, monkeypatch):
    # The gradient step's fused kernel (tanh form of the sigmoid, blocked over rows) against
    # NeuronModel's loss and gradients; 5000 x 3 rows also run in several row blocks.
    monkeypatch.setattr(descent, '_STEP_BLOCKED_BYTES', 64 << 10)
    monkeypatch.setattr(descent, '_STEP_BLOCK_BYTES', 8 << 10)
    rng = np.random.default_rng(m)
    X = rng.normal(size=(m, 3)) * [1.0, 3.0, 30.0]  # |z| up to ~100: saturated samples too
    y = rng.random(m) if activation == 'sigmoid' else rng.normal(size=m)
    w, b = np.array([0.7, -0.4, 0.1]), 0.3
    model = NeuronModel(3, activation, w, b)
    k = _Kernel(X, y, activation, 'mse', Workspace(m, 3))
    grad = np.empty(3)
    dw, db = model.gradients(X, y)
    for _ in range(3):  # blocked, successive steps walk the blocks backward, forward, backward
        value, s = k.mse_step(w, b, grad)
        assert value == pytest.approx(model.loss(X, y), rel=1e-12)
        np.testing.assert_allclose(grad / m, dw, rtol=1e-12, atol=1e-14 * np.abs(dw).max())
        assert s / m == pytest.approx(db, rel=1e-12, abs=1e-14 * np.abs(dw).max())


@pytest.mark.parametrize('activation,loss', CASES)
def test_without_normalize_an_update_is_neuron_model_fit(activation, loss):
    X, y = scaled_data(3, activation=activation)
    X = X / np.array([1e-3, 1.0, 1e2, 1e4, 1.0])  # moderate scales so that raw GD converges
    X = X - X.mean(axis=0)
    w0 = np.full(5, 0.01)
    model = NeuronModel(5, activation, w0, 0.1, loss=loss)
    history = model.fit(X, y, learning_rate=0.5, max_iterations=2000, tolerance=1e-6)
    r = train_update(X, y, w0, 0.1, learning_rate=0.5, iterations=2000, tolerance=1e-6,
                     activation=activation, loss=loss, normalize=False)
    assert r.deployed, r.reason
    # Equal within rounding (the fused MSE step sums in another order), over ~800 steps.
    np.testing.assert_allclose(r.weights, model.weights, rtol=1e-12)
    assert r.bias == pytest.approx(model.bias, rel=1e-12)
    assert r.loss_before == history[0]  # the same code as the model's
    assert r.loss_after == pytest.approx(history[-1], rel=1e-12)
    assert r.iterations == history.size - 1
    assert r.iterations < 2000  # the tolerance stopped it, as it stopped fit


@pytest.mark.parametrize('activation,loss', CASES)
def test_normalized_update_equals_steps_on_explicitly_standardized_features(activation, loss):
    X, y = scaled_data(4, activation=activation)
    rng = np.random.default_rng(4)
    w0, b0 = rng.normal(size=5) * 1e-3, 0.05
    s = Standardizer.fit(X)
    w_s, b_s = s.from_raw(w0, b0)
    reference = NeuronModel(5, activation, w_s, b_s, loss=loss)
    Xs = s.transform(X)
    for _ in range(25):
        reference.step(Xs, y, learning_rate=0.3)
    r = train_update(X, y, w0, b0, learning_rate=0.3, iterations=25, tolerance=0.0,
                     activation=activation, loss=loss)
    assert r.deployed and r.iterations == 25
    w_ref, b_ref = s.to_raw(reference.weights, reference.bias)
    scale = np.abs(w_ref).max()
    np.testing.assert_allclose(r.weights, w_ref, rtol=1e-10, atol=1e-10 * scale)
    assert r.bias == pytest.approx(b_ref, rel=1e-10, abs=1e-10)
    assert r.loss_after == pytest.approx(reference.loss(Xs, y), rel=1e-9)


def test_workspace_is_reused_and_grows():
    ws = Workspace()
    small = scaled_data(5, m=50)
    large = scaled_data(6, m=400)
    kwargs = dict(learning_rate=0.5, iterations=20)
    for X, y in (small, large, small):
        with_ws = train_update(X, y, np.zeros(5), 0.0, workspace=ws, **kwargs)
        fresh = train_update(X, y, np.zeros(5), 0.0, **kwargs)
        np.testing.assert_array_equal(with_ws.weights, fresh.weights)
    assert ws.z.shape == (400,)


def test_steps_allocate_nothing_of_the_buffers_size():
    m, n = 200_000, 4
    rng = np.random.default_rng(7)
    X, y = rng.normal(size=(m, n)), rng.random(m)
    ws = Workspace(m, n)
    for activation, loss in CASES:
        peaks = []
        for iterations in (1, 30):
            tracemalloc.start()
            start = tracemalloc.get_traced_memory()[0]
            train_update(X, y, np.zeros(n), 0.0, learning_rate=0.1, iterations=iterations,
                         tolerance=0.0, activation=activation, loss=loss, workspace=ws)
            peaks.append(tracemalloc.get_traced_memory()[1] - start)
            tracemalloc.stop()
        assert max(peaks) < m * 8 / 8, peaks  # far below one O(M) float64 array
        assert peaks[1] < peaks[0] + 16_384, peaks  # and no growth with the step count


# -------------------------------------------------------------------------------- the gate
def test_a_good_update_deploys_and_lowers_the_loss():
    X, y = scaled_data(8)
    buf = SampleBuffer(1000, 5)
    buf.add(X, y)
    w0 = np.zeros(5)
    r = train_update(*buf.arrays(), w0, 0.0, learning_rate=1.0, iterations=200)
    assert isinstance(r, UpdateResult)
    assert r.deployed and r.reason.startswith('deployed')
    assert r.loss_after < 0.1 * r.loss_before
    assert r.loss_after == pytest.approx(NeuronModel(5, 'sigmoid', r.weights, r.bias).loss(X, y),
                                         rel=1e-12)
    again = train_update(*buf.arrays(), r.weights, r.bias, learning_rate=1.0, iterations=50)
    assert again.loss_before == pytest.approx(r.loss_after, rel=1e-12)  # warm start
    assert again.deployed and again.loss_after <= again.loss_before


@pytest.mark.parametrize('activation', ['sigmoid', 'linear'])
def test_a_huge_learning_rate_is_refused_and_the_deployed_model_stays(activation):
    X, y = scaled_data(9, activation=activation)
    good = train_update(X, y, np.zeros(5), 0.0, learning_rate=0.5, iterations=300,
                        activation=activation)
    assert good.deployed
    w_in = good.weights.copy()
    X_in, y_in = X.copy(), y.copy()
    r = train_update(X, y, w_in, good.bias, learning_rate=1e6, iterations=50,
                     activation=activation)
    assert not r.deployed
    assert r.reason.startswith('refused') and 'learning_rate' in r.reason
    np.testing.assert_array_equal(r.weights, good.weights)
    assert r.bias == good.bias and r.weights is not w_in
    assert r.loss_before == pytest.approx(good.loss_after, rel=1e-12)
    assert not (r.loss_after <= r.loss_before)  # worse, or NaN
    np.testing.assert_array_equal(w_in, good.weights)  # inputs untouched
    np.testing.assert_array_equal(X, X_in)
    np.testing.assert_array_equal(y, y_in)


@FAST
@given(seed=st.integers(0, 1000), log_lr=st.floats(-3.0, 12.0),
       case=st.sampled_from(CASES), normalize=st.booleans())
def test_nothing_non_finite_or_worse_is_ever_deployed(seed, log_lr, case, normalize):
    activation, loss = case
    X, y = scaled_data(seed, m=60, activation=activation)
    if loss == 'bce':
        y = (y > 0.5).astype(float)
    rng = np.random.default_rng(seed)
    w0, b0 = rng.normal(size=5) * 1e-4, 0.0
    r = train_update(X, y, w0, b0, learning_rate=10.0 ** log_lr, iterations=20,
                     activation=activation, loss=loss, normalize=normalize)
    if r.deployed:
        assert np.all(np.isfinite(r.weights)) and np.isfinite(r.bias)
        assert np.isfinite(r.loss_after) and r.loss_after <= r.loss_before
    else:
        np.testing.assert_array_equal(r.weights, w0)
        assert r.bias == b0 and r.reason.startswith('refused')


def test_normalized_training_converges_where_raw_gradient_descent_stalls():
    rng = np.random.default_rng(1)
    scales = np.array([1e-3, 1.0, 1e3, 1e4])
    X = (rng.normal(size=(400, 4)) + np.array([0.5, -1.0, 2.0, 0.3])) * scales
    Xs = (X - X.mean(axis=0)) / X.std(axis=0)
    y = sigmoid(Xs @ np.array([1.5, -2.0, 1.0, 0.8]) + 0.3)  # a perfect fit has loss 0
    w0 = np.zeros(4)
    normalized = train_update(X, y, w0, 0.0, learning_rate=1.0, iterations=2000, tolerance=0.0)
    assert normalized.deployed and normalized.loss_after < 1e-6
    raw_losses = []
    for lr in (1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1.0):
        raw = train_update(X, y, w0, 0.0, learning_rate=lr, iterations=2000, tolerance=0.0,
                           normalize=False)
        raw_losses.append(raw.loss_after if raw.deployed else raw.loss_before)
    # Raw GD: a small rate stalls (the 1e-3 feature barely moves), a larger one overshoots on the
    # 1e4 feature and is refused. The best it reaches is ~1e5 times worse.
    assert min(raw_losses) > 0.1
    assert min(raw_losses) > 1e5 * normalized.loss_after
    stalled = NeuronModel(4).fit(X, y, learning_rate=1e-7, max_iterations=2000, tolerance=0.0)
    assert stalled[-1] > 0.9 * stalled[0]  # the core, on raw features, agrees


def test_bad_arguments_raise_value_error():
    X, y = scaled_data(10, m=20)
    w = np.zeros(5)
    ok = dict(learning_rate=0.1, iterations=5)
    bad_calls = [
        dict(X=X, y=y, weights=w, bias=0.0, learning_rate=0.0, iterations=5),
        dict(X=X, y=y, weights=w, bias=0.0, learning_rate=np.nan, iterations=5),
        dict(X=X, y=y, weights=w, bias=0.0, learning_rate=0.1, iterations=0),
        dict(X=X, y=y, weights=w, bias=0.0, tolerance=-1.0, **ok),
        dict(X=X, y=y, weights=np.zeros(4), bias=0.0, **ok),
        dict(X=X, y=y, weights=[np.nan] * 5, bias=0.0, **ok),
        dict(X=X, y=y, weights=w, bias=np.inf, **ok),
        dict(X=X, y=y[:-1], weights=w, bias=0.0, **ok),
        dict(X=X[:0], y=y[:0], weights=w, bias=0.0, **ok),
        dict(X=np.where(X == X[0, 0], np.nan, X), y=y, weights=w, bias=0.0, **ok),
        dict(X=np.where(X == X[0, 0], np.nan, X), y=y, weights=w, bias=0.0, normalize=False,
             **ok),
        dict(X=X, y=np.where(y == y[0], np.inf, y), weights=w, bias=0.0, **ok),
        dict(X=X, y=y + 2.0, weights=w, bias=0.0, loss='bce', **ok),
        dict(X=X, y=y, weights=w, bias=0.0, activation='linear', loss='bce', **ok),
        dict(X=X, y=y, weights=w, bias=0.0, activation='relu', **ok),
    ]
    for kwargs in bad_calls:
        with pytest.raises(ValueError):
            train_update(**kwargs)


def test_a_deadline_stops_the_descent_and_the_gate_still_judges_the_result():
    rng = np.random.default_rng(11)
    X = rng.normal(size=(500, 3))
    y = 1.0 / (1.0 + np.exp(-(X @ np.array([1.0, -2.0, 0.5]))))
    kwargs = dict(learning_rate=1.0, iterations=100_000, tolerance=0.0)
    past = train_update(X, y, np.zeros(3), 0.0, deadline=time.monotonic() - 1.0, **kwargs)
    assert past.iterations == 1 and past.deployed and past.loss_after < past.loss_before
    started = time.monotonic()
    budget = train_update(X, y, np.zeros(3), 0.0, deadline=started + 0.05, **kwargs)
    assert 1 < budget.iterations < 100_000
    assert time.monotonic() - started < 2.0
    assert budget.deployed and budget.loss_after <= past.loss_after
