"""The predictor's fast paths: ``model.RowPredictor`` and ``conversions.value_to_msg`` give what
the vectorized path gives for one-sample messages, and ``keep_freed_heap`` (no ROS process)."""

import math
import platform
from array import array

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nn_one_node.conversions import value_to_msg, vector_to_msg
from nn_one_node.model import ROW_PYTHON_MAX_FEATURES, NeuronModel, RowPredictor

EPS = np.finfo(np.float64).eps


def model_and_row(seed, n, activation, scale=3.0):
    rng = np.random.default_rng(seed)
    model = NeuronModel(n, activation=activation, weights=rng.normal(0.0, 1.0, size=n),
                        bias=float(rng.normal()))
    return model, rng.normal(0.0, scale, size=n)


def error_bound(model, x):
    """A forward-error bound of x . w + b summed in any order, and of the sigmoid after it."""
    n = model.num_features
    return 4 * (n + 2) * EPS * (np.abs(x) @ np.abs(model.weights) + abs(model.bias)) + 8 * EPS


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1),
       n=st.sampled_from([1, 2, 3, 4, 17, 64, ROW_PYTHON_MAX_FEATURES,
                          ROW_PYTHON_MAX_FEATURES + 1, 1024]),
       activation=st.sampled_from(['sigmoid', 'linear']),
       scale=st.sampled_from([1e-3, 1.0, 30.0]))
def test_agrees_with_the_vectorized_predict(seed, n, activation, scale):
    model, x = model_and_row(seed, n, activation, scale)
    fast = RowPredictor(model)
    expected = float(model.predict(x)[0])
    for row in (array('d', x), x.tolist()):  # a message's array('d'), or any float sequence
        got = fast(row)
        assert got is not None
        assert abs(got - expected) <= error_bound(model, x), (got, expected)


@pytest.mark.parametrize('n', [3, ROW_PYTHON_MAX_FEATURES + 5])
@pytest.mark.parametrize('bad', [math.nan, math.inf, -math.inf])
def test_a_non_finite_value_is_never_predicted_even_under_a_zero_weight(n, bad):
    weights = np.zeros(n)
    weights[0] = 1.0
    fast = RowPredictor(NeuronModel(n, weights=weights))
    for where in (0, n - 1):  # under the weight 1, and under a weight 0
        row = array('d', [0.5] * n)
        row[where] = bad
        assert fast(row) is None


def test_an_overflowing_sum_is_left_to_the_vectorized_path():
    fast = RowPredictor(NeuronModel(2, weights=[1e300, 1e300]))
    assert fast(array('d', [1e10, 1e10])) is None  # z = inf from finite values
    assert fast(array('d', [1e10, -1e10])) is None  # inf - inf: NaN from finite values


def test_is_a_snapshot_of_the_model():
    model = NeuronModel(2, weights=[1.0, 2.0], bias=0.5, activation='linear')
    fast = RowPredictor(model)
    model.weights[:] = 0.0
    assert fast([1.0, 1.0]) == 3.5
    assert fast([0.0, 0.0]) == 0.5
    assert RowPredictor(NeuronModel(1, weights=[0.0]))([0.0]) == 0.5  # sigmoid(0)


@pytest.mark.parametrize('y', [0.0, 0.25, 1.0, -3.5e300])
def test_value_to_msg_is_vector_to_msg_of_one(y):
    a, b = value_to_msg(y), vector_to_msg(np.array([y]))
    assert a.data == b.data and a.layout.data_offset == b.layout.data_offset
    assert [(d.label, d.size, d.stride) for d in a.layout.dim] == \
        [(d.label, d.size, d.stride) for d in b.layout.dim]


def test_keep_freed_heap_takes_on_glibc_and_is_a_no_op_elsewhere():
    from nn_one_node.predictor_node import keep_freed_heap
    on_glibc = platform.libc_ver()[0] == 'glibc'
    assert keep_freed_heap() is on_glibc
