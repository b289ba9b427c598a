"""``ros.codecs.MatrixDecoder`` and ``VectorEncoder``: the predictor's one reader and one writer
give the same answer, value for value and refusal for refusal, whether they work on serialized
bytes (``raw``, Fast DDS's CDR) or on messages (the fallback for another encoding). No node."""

import math
from array import array

import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from std_msgs.msg import Float64MultiArray, MultiArrayDimension

from nn_one_node.ros import codecs
from nn_one_node.ros.codecs import (MatrixDecoder, MessageError, VectorEncoder, matrix_to_msg,
                                    value_to_msg, vector_to_msg)

N = 3


def one(values):
    msg = Float64MultiArray()
    msg.data = array('d', values)
    return msg


def messages():
    """Good and bad features messages of N columns, as the predictor may receive them."""
    bad_stride = matrix_to_msg(np.ones((2, N)))
    bad_stride.layout.dim[0].stride = 5
    short_batch = matrix_to_msg(np.ones((2, N)))
    short_batch.layout.dim[0].size = 3
    short_batch.layout.dim[0].stride = 9
    three_d = matrix_to_msg(np.ones((2, N)))
    three_d.layout.dim.append(MultiArrayDimension(label='x', size=1, stride=1))
    offset_past_end = one([1.0, 2.0, 3.0])
    offset_past_end.layout.data_offset = 10
    offset = one([9.0, 1.0, 2.0, 3.0])
    offset.layout.data_offset = 1
    one_dim = one([1.0, 2.0, 3.0])
    one_dim.layout.dim = [MultiArrayDimension(label='features', size=N, stride=N)]
    features_first = matrix_to_msg(np.ones((N, N)), rows_label='features',
                                   cols_label='samples')
    return {'one': one([1.0, -2.0, 0.5]), 'nan': one([1.0, math.nan, 0.0]),
            'batch': matrix_to_msg(np.arange(12.0).reshape(4, N) - 5.5),
            'batch of one': matrix_to_msg(np.full((1, N), 0.25)), 'one dim': one_dim,
            'offset': offset, 'wrong length': one([1.0, 2.0]), 'bad stride': bad_stride,
            'short batch': short_batch, 'empty batch': matrix_to_msg(np.ones((0, N))),
            '3-d layout': three_d, 'offset past end': offset_past_end,
            'wrong width': matrix_to_msg(np.ones((2, N + 1))), 'features first': features_first}


def decode(decoder, data):
    """(row or None, matrix copy or (kind, reason))."""
    row = decoder.row(data)
    try:
        x = decoder.matrix(data)
    except MessageError as err:
        return row, (err.kind, str(err))
    assert x.flags.aligned and x.dtype == np.float64 and x.shape[1] == N
    return row, x.copy()


def same(a, b):
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)
                and a.shape == b.shape and a.tobytes() == b.tobytes())
    return a == b


@pytest.fixture
def message_decoder(monkeypatch):
    """A decoder on another encoding (an XCDR2 header): it takes messages."""
    real = codecs._serialize
    monkeypatch.setattr(codecs, '_serialize', lambda msg: b'\x00\x07\x00\x00' + real(msg)[4:])
    decoder = MatrixDecoder(N)
    monkeypatch.undo()
    assert not decoder.raw
    return decoder


def test_bytes_and_messages_decode_alike(message_decoder):
    raw_decoder = MatrixDecoder(N, tuple_max=N)
    assert raw_decoder.raw
    for name, msg in messages().items():
        raw_row, raw_x = decode(raw_decoder, serialize_message(msg))
        msg_row, msg_x = decode(message_decoder, msg)
        assert (raw_row is None) == (msg_row is None), name
        if raw_row is not None:
            assert isinstance(raw_row, tuple), name
            assert array('d', raw_row).tobytes() == array('d', msg_row).tobytes(), name
        assert same(raw_x, msg_x), (name, raw_x, msg_x)
    assert decode(raw_decoder, serialize_message(messages()['one']))[1].tolist() == \
        [[1.0, -2.0, 0.5]]


def test_bytes_that_do_not_deserialize_are_refused_as_malformed():
    decoder = MatrixDecoder(N)
    good = serialize_message(one([1.0, 2.0, 3.0]))
    for raw in (good[:7], good[:-9], b'\x00\x01\x00\x00' + b'\xff' * 12):
        assert decoder.row(raw) is None
        with pytest.raises(MessageError, match=r'cannot be deserialized \(\d+ bytes\)') as err:
            decoder.matrix(raw)
        assert err.value.kind == 'malformed'


def test_a_batch_read_in_place_is_copied_aligned_into_a_kept_buffer():
    decoder = MatrixDecoder(N)
    x = np.arange(30.0).reshape(10, N)
    raw = serialize_message(matrix_to_msg(x))
    assert not decoder.parse(raw).data.flags.aligned  # CDR: float64 data 4 bytes off 8
    first = decoder.matrix(raw)
    assert first.flags.aligned and np.array_equal(first, x)
    second = decoder.matrix(serialize_message(matrix_to_msg(x[:4] + 1.0)))
    assert np.shares_memory(first, second) and np.array_equal(second, x[:4] + 1.0)


@pytest.mark.parametrize('y', [np.array([0.25]), np.array([0.1, -2.5, 1e300]), np.zeros(0)])
def test_bytes_and_messages_encode_alike(monkeypatch, y):
    raw_encoder = VectorEncoder()
    real = codecs._serialize
    monkeypatch.setattr(codecs, '_serialize', lambda msg: b'' + real(msg)[4:])
    message_encoder = VectorEncoder()
    monkeypatch.undo()
    assert raw_encoder.raw and not message_encoder.raw
    assert raw_encoder.vector(y) == serialize_message(message_encoder.vector(y))
    assert raw_encoder.vector(y) == serialize_message(vector_to_msg(y))
    if y.shape == (1,):
        assert raw_encoder.value(float(y[0])) == serialize_message(
            message_encoder.value(float(y[0])))
        back = deserialize_message(raw_encoder.value(float(y[0])), Float64MultiArray)
        assert list(back.data) == list(value_to_msg(float(y[0])).data)
