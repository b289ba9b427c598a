"""std_msgs/Float64MultiArray <-> numpy, in one place, without per-element Python loops.

Layouts (row-major, as std_msgs/MultiArrayLayout documents them):

* one row: ``cols`` values, with no ``layout.dim`` or with one dim of size ``cols``;
* a batch of M rows: two dims ``[{label: <rows>, size: M, stride: M*cols},
  {label: <cols>, size: cols, stride: cols}]``.

``layout.data_offset`` leading values are skipped. Labels are written by this package but not
required on input: sizes and strides are what must agree with the data.

A ``float64[]`` field of a received message is an ``array.array('d')``: ``np.frombuffer`` reads it
without a copy, and ``array('d').frombytes`` fills one far faster than ``ndarray.tolist()``.
"""

from __future__ import annotations

import struct
from array import array

import numpy as np
from std_msgs.msg import Float64MultiArray, MultiArrayDimension

SAMPLES_LABEL = 'samples'
FEATURES_LABEL = 'features'
FEATURES_LABEL_LABELED = 'features+label'


class MessageError(ValueError):
    """A message that cannot be used; the text is the reason given to the user.

    ``kind`` is a short category for counters: 'length', 'layout', 'empty' or 'non-finite'.
    """

    def __init__(self, reason: str, kind: str = 'layout') -> None:
        super().__init__(reason)
        self.kind = kind


def check_finite(x: np.ndarray) -> np.ndarray:
    """Raise MessageError(kind='non-finite') if ``x`` holds a NaN or an infinity."""
    if not np.isfinite(x).all():
        bad = int(np.count_nonzero(~np.isfinite(x)))
        raise MessageError(f'{bad} value(s) are NaN or infinite', kind='non-finite')
    return x


def _as_array(data) -> np.ndarray:
    if isinstance(data, array) and data.typecode == 'd':
        return np.frombuffer(data, dtype=np.float64)
    return np.asarray(data, dtype=np.float64).reshape(-1)


def matrix_from_msg(msg: Float64MultiArray, cols: int) -> np.ndarray:
    """Return the message's data as an (M, cols) float64 array (a view where possible).

    Raises MessageError naming the problem when the layout does not match the data. Values are
    not checked for finiteness here.
    """
    data = _as_array(msg.data)
    dims = msg.layout.dim
    offset = int(msg.layout.data_offset)
    if offset:
        if offset > data.shape[0]:
            raise MessageError(
                f'layout.data_offset {offset} is past the end of the data '
                f'({data.shape[0]} values)')
        data = data[offset:]
    n = data.shape[0]
    if len(dims) == 0:
        if n != cols:
            raise MessageError(
                f'expected {cols} values for one sample, got {n} '
                '(a batch needs a 2-D layout)', kind='length')
        return data.reshape(1, cols)
    if len(dims) == 1:
        d = dims[0]
        if d.size != cols or n != cols:
            raise MessageError(
                f'expected one sample of {cols} values, got layout size {d.size} '
                f'and {n} values (a batch needs a 2-D layout)')
        return data.reshape(1, cols)
    if len(dims) == 2:
        rows_dim, cols_dim = dims
        m = int(rows_dim.size)
        if cols_dim.size != cols:
            raise MessageError(
                f'layout dim[1].size is {cols_dim.size}, expected {cols} values per sample')
        if cols_dim.stride != cols or rows_dim.stride != m * cols:
            raise MessageError(
                f'layout strides ({rows_dim.stride}, {cols_dim.stride}) do not match '
                f'a dense {m}x{cols} batch (expected ({m * cols}, {cols}))')
        if m == 0:
            raise MessageError('empty batch: layout dim[0].size is 0', kind='empty')
        if n != m * cols:
            raise MessageError(
                f'layout says {m}x{cols} = {m * cols} values, the data has {n}', kind='length')
        return data.reshape(m, cols)
    raise MessageError(f'layout has {len(dims)} dims; expected 0, 1 or 2')


def matrix_to_msg(x: np.ndarray, rows_label: str = SAMPLES_LABEL,
                  cols_label: str = FEATURES_LABEL) -> Float64MultiArray:
    """An (M, cols) array as a Float64MultiArray with the package's 2-D batch layout."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x.reshape(1, -1)
    m, cols = x.shape
    msg = Float64MultiArray()
    msg.layout.dim = [
        MultiArrayDimension(label=rows_label, size=m, stride=m * cols),
        MultiArrayDimension(label=cols_label, size=cols, stride=cols),
    ]
    msg.data = to_float64_array(x)
    return msg


def vector_to_msg(y: np.ndarray, label: str = SAMPLES_LABEL) -> Float64MultiArray:
    """An (M,) array as a Float64MultiArray with layout dim[0] {label, M, M}."""
    y = np.ascontiguousarray(y, dtype=np.float64).reshape(-1)
    msg = Float64MultiArray()
    m = y.shape[0]
    msg.layout.dim = [MultiArrayDimension(label=label, size=m, stride=m)]
    msg.data = to_float64_array(y)
    return msg


def value_to_msg(y: float, label: str = SAMPLES_LABEL) -> Float64MultiArray:
    """One value as ``vector_to_msg`` writes a vector of one, without a numpy call."""
    msg = Float64MultiArray()
    msg.layout.dim = [MultiArrayDimension(label=label, size=1, stride=1)]
    msg.data = array('d', (y,))
    return msg


def to_float64_array(x: np.ndarray) -> array:
    """A contiguous float64 ndarray as array('d'), the type rclpy keeps float64[] fields in."""
    out = array('d')
    x = np.ascontiguousarray(x, dtype=np.float64)
    if x.size:
        out.frombytes(memoryview(x).cast('B'))
    return out


# ----------------------------------------------------------------------- the serialized form
# The predictor's hot path takes features messages serialized (rclpy's ``raw=True``) and
# publishes one-sample predictions serialized: rclpy's conversion between a message and its
# Python object costs more than a one-sample prediction itself (about 4.7 us to take one,
# 2 us of the 4 us of a publish, against 0.1 us to read N values with ``struct``).
#
# The serialized form is what the middleware writes: a 4-byte encapsulation header (byte 1 says
# the byte order), then CDR. A one-sample message without a layout is
#     header | dim count = 0 | data_offset = 0 | data length = N | padding | N float64
# Rather than trusting that description, both classes below serialize a probe message with the
# running middleware (rclpy.serialization) and check that it is exactly so; if it is not (another
# encoding), they report ``enabled = False`` and the caller uses messages throughout. Any
# received message that is not byte for byte of this form is deserialized as usual.

_BYTE_ORDER = {b'\x00\x00': '>', b'\x00\x01': '<'}  # CDR big- and little-endian encapsulation


def _serialize(msg: Float64MultiArray) -> bytes:
    from rclpy.serialization import serialize_message  # needs only the type support library
    return serialize_message(msg)


class RawRowReader:
    """Reads the N values of a serialized one-sample features message, without deserializing.

    ``row(raw)`` returns the values (a tuple of floats for N <= ``tuple_max``, else a read-only
    float64 ndarray viewing ``raw``) when ``raw`` is a message of exactly N values with no layout
    and no data_offset, and None for anything else (which the caller deserializes and handles in
    full). Values are not checked for finiteness.
    """

    def __init__(self, num_features: int, tuple_max: int = 256) -> None:
        self.num_features = n = int(num_features)
        probe = Float64MultiArray()
        probe.data = array('d', [float(i) + 0.5 for i in range(n)])
        raw = _serialize(probe)
        order = _BYTE_ORDER.get(raw[:2])
        self._offset = len(raw) - 8 * n
        self.enabled = False
        if order is None or self._offset < 16:
            return
        # header | 0 dims | data_offset 0 | length N, in the stream's byte order; then padding.
        self._prefix = raw[:4] + struct.pack(order + '3I', 0, 0, n)
        self._length = len(raw)
        self._struct = struct.Struct(f'{order}{n}d') if n <= tuple_max else None
        self._dtype = np.dtype(order + 'f8')
        self.enabled = (raw.startswith(self._prefix)
                        and self.row(raw) is not None
                        and list(self.row(raw)) == list(probe.data))

    def row(self, raw: bytes):
        if len(raw) != self._length or not raw.startswith(self._prefix):
            return None
        if self._struct is not None:
            return self._struct.unpack_from(raw, self._offset)
        return np.frombuffer(raw, dtype=self._dtype, count=self.num_features,
                             offset=self._offset)


class RawValueWriter:
    """The serialized form of ``value_to_msg(y)``: a template with the value's 8 bytes patched.

    ``encode(y)`` returns bytes for ``Publisher.publish``; ``enabled`` is False (and ``encode``
    must not be used) where the probe does not end in the value's 8 bytes.
    """

    def __init__(self, label: str = SAMPLES_LABEL) -> None:
        probe_value = 0.1234567890123
        raw = _serialize(value_to_msg(probe_value, label))
        order = _BYTE_ORDER.get(raw[:2])
        self.enabled = order is not None and raw.endswith(struct.pack(order + 'd', probe_value))
        self._head = raw[:-8]
        self._pack = struct.Struct((order or '<') + 'd').pack

    def encode(self, y: float) -> bytes:
        return self._head + self._pack(y)
