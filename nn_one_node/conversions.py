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
