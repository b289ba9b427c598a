"""The predictor's fast paths: ``model.RowPredictor`` and ``conversions.value_to_msg`` give what
the vectorized path gives for one-sample messages, ``conversions.MatrixDecoder`` and
``VectorEncoder`` read and write exactly what rclpy's (de)serialization does, and
``keep_freed_heap`` (no ROS process)."""

import math
import platform
from array import array

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rclpy.serialization import deserialize_message, serialize_message
from std_msgs.msg import Float64MultiArray, MultiArrayDimension

from nn_one_node.ros import codecs as conversions
from nn_one_node.ros.codecs import (MatrixDecoder, VectorEncoder, matrix_to_msg, value_to_msg,
                                     vector_to_msg)
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


# Silently, too: a numpy warning in the hot path would be a log line per message (or an error
# under -W error), which the pure-Python and the numpy paths must both avoid.
@pytest.mark.filterwarnings('error::RuntimeWarning')
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


@pytest.mark.filterwarnings('error::RuntimeWarning')
@pytest.mark.parametrize('n', [2, ROW_PYTHON_MAX_FEATURES + 2])
def test_an_overflowing_sum_is_left_to_the_vectorized_path(n):
    fast = RowPredictor(NeuronModel(n, weights=[1e300] * n))
    rest = [0.0] * (n - 2)
    assert fast(array('d', [1e10, 1e10] + rest)) is None  # z = inf from finite values
    assert fast(array('d', [1e10, -1e10] + rest)) is None  # inf - inf: NaN from finite values
    # and as the predictor reads them from the serialized message (above the Python path's
    # limit, an unaligned ndarray view of the bytes)
    reader = MatrixDecoder(n, ROW_PYTHON_MAX_FEATURES)
    assert fast(reader.row(serialize_message(features([1e10, 1e10] + rest)))) is None


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
    from nn_one_node.nodes.predictor import keep_freed_heap
    on_glibc = platform.libc_ver()[0] == 'glibc'
    assert keep_freed_heap() is on_glibc


def features(values):
    msg = Float64MultiArray()
    msg.data = array('d', values)
    return msg


def same_floats(a, b):
    """Bit for bit (NaN payloads and signed zeros included)."""
    return array('d', a).tobytes() == array('d', b).tobytes()


@settings(max_examples=100, deadline=None)
@given(n=st.sampled_from([1, 2, 3, 4, 64, ROW_PYTHON_MAX_FEATURES, ROW_PYTHON_MAX_FEATURES + 1,
                          1024]),
       data=st.data())
def test_raw_row_reader_reads_what_deserialization_reads(n, data):
    values = data.draw(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64),
                                min_size=n, max_size=n))
    reader = MatrixDecoder(n, ROW_PYTHON_MAX_FEATURES)
    assert reader.raw  # Fast DDS's CDR, as shipped: the fast path is on
    raw = serialize_message(features(values))
    row = reader.row(raw)
    assert row is not None
    assert same_floats(row, deserialize_message(raw, Float64MultiArray).data)
    assert isinstance(row, tuple) == (n <= ROW_PYTHON_MAX_FEATURES)


def test_raw_row_reader_ignores_the_padding_bytes():
    raw = bytearray(serialize_message(features([1.0, 2.0, 3.0])))
    raw[16:20] = b'\xff\xfe\xfd\xfc'  # alignment padding: any writer may leave anything there
    assert MatrixDecoder(3, ROW_PYTHON_MAX_FEATURES).row(bytes(raw)) == (1.0, 2.0, 3.0)


def other_messages(n):
    """Messages that are not exactly one sample of n values without a layout."""
    one_dim = features([0.5] * n)
    one_dim.layout.dim = [MultiArrayDimension(label='features', size=n, stride=n)]
    offset = features([0.5] * (n + 1))
    offset.layout.data_offset = 1
    return {'short': features([0.5] * (n - 1)), 'long': features([0.5] * (n + 1)),
            'batch of one': matrix_to_msg(np.full((1, n), 0.5)),
            'batch': matrix_to_msg(np.full((2, n), 0.5)), 'one dim': one_dim,
            'data offset': offset, 'empty': features([])}


@pytest.mark.parametrize('n', [1, 3, 64, 1024])
def test_raw_row_reader_leaves_every_other_message_to_deserialization(n):
    reader = MatrixDecoder(n)
    for name, msg in other_messages(n).items():
        assert reader.row(serialize_message(msg)) is None, name
    good = serialize_message(features([0.5] * n))
    for cut in (0, 4, 16, len(good) - 1):
        assert reader.row(good[:cut]) is None, cut
    assert reader.row(good + b'\0' * 8) is None


@pytest.mark.parametrize('y', [0.0, -0.0, 0.5, 1.0, 5e-324, 1 - 2**-53, -1e300])
def test_raw_value_writer_writes_what_serialization_writes(y):
    writer = VectorEncoder()
    assert writer.raw
    raw = writer.value(y)
    msg = deserialize_message(raw, Float64MultiArray)
    expected = value_to_msg(y)
    assert same_floats(msg.data, expected.data)
    assert [(d.label, d.size, d.stride) for d in msg.layout.dim] == \
        [(d.label, d.size, d.stride) for d in expected.layout.dim]
    assert msg.layout.data_offset == 0
    assert raw == serialize_message(expected)


@pytest.mark.parametrize('header', [b'\x00\x07\x00\x00', b'\x00\x0b\x00\x00', b''])
def test_an_unexpected_encoding_turns_the_fast_paths_off(monkeypatch, header):
    """Another middleware's encoding (here XCDR2 headers, or nothing) is not guessed at."""
    real = conversions._serialize
    monkeypatch.setattr(conversions, '_serialize', lambda msg: header + real(msg)[4:])
    assert not MatrixDecoder(3).raw
    assert not VectorEncoder().raw


dims_strategy = st.lists(st.tuples(st.text(max_size=12), st.integers(0, 2**32 - 1),
                                   st.integers(0, 2**32 - 1)), max_size=4)


@settings(max_examples=200, deadline=None)
@given(dims=dims_strategy, data_offset=st.integers(0, 2**32 - 1),
       values=st.lists(st.floats(width=64), max_size=40))
def test_raw_reader_reads_any_message_as_deserialization_does(dims, data_offset, values):
    msg = features(values)
    msg.layout.dim = [MultiArrayDimension(label=label, size=size, stride=stride)
                      for label, size, stride in dims]
    msg.layout.data_offset = data_offset
    raw = serialize_message(msg)
    parsed = MatrixDecoder(3).parse(raw)
    assert parsed is not None
    back = deserialize_message(raw, Float64MultiArray)
    assert same_floats(parsed.data, back.data)
    assert parsed.layout.data_offset == back.layout.data_offset
    assert [tuple(d) for d in parsed.layout.dim] == \
        [(d.label, d.size, d.stride) for d in back.layout.dim]
    for cut in range(len(raw)):  # every truncation is refused, never misread
        assert MatrixDecoder(3).parse(raw[:cut]) is None, cut
    assert MatrixDecoder(3).parse(raw + bytes(8)) is None


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=200))
def test_raw_reader_never_raises_on_arbitrary_bytes(raw):
    reader = MatrixDecoder(3)
    reader.row(raw)
    parsed = reader.parse(b'\x00\x01\x00\x00' + raw)
    if parsed is not None:
        assert parsed.data.dtype.kind == 'f'


@settings(max_examples=100, deadline=None)
@given(values=st.lists(st.floats(width=64), max_size=50))
def test_raw_vector_writer_writes_what_serialization_writes(values):
    y = np.array(values, dtype=np.float64)
    raw = VectorEncoder().vector(y)
    assert raw == serialize_message(vector_to_msg(y))  # 'samples': no padding bytes to differ
    back = deserialize_message(raw, Float64MultiArray)
    assert same_floats(back.data, y)
