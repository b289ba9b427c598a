"""std_msgs/Float64MultiArray <-> numpy, in one place, without per-element Python loops.

Layouts (row-major, as std_msgs/MultiArrayLayout documents them):

* one row: ``cols`` values, with no ``layout.dim`` or with one dim of size ``cols``;
* a batch of M rows: two dims ``[{label: <rows>, size: M, stride: M*cols},
  {label: <cols>, size: cols, stride: cols}]``.

``layout.data_offset`` leading values are skipped. Labels are written by this package but not
required on input: sizes and strides are what must agree with the data.

A ``float64[]`` field of a received message is an ``array.array('d')``: ``np.frombuffer`` reads it
without a copy, and ``array('d').frombytes`` fills one far faster than ``ndarray.tolist()``.

A node's input and output go through one decoder and one encoder: ``MatrixDecoder`` reads
(M, cols) matrices, ``VectorEncoder`` writes (M,) vectors. Each reads or writes the serialized form
(the bytes of rclpy's ``raw=True`` subscriptions, and what ``publish`` takes as bytes) directly
where the middleware's encoding is the one it expects, since for one sample that costs less than
rclpy's conversion to and from a message object (see the section below), and messages elsewhere.
"""

from __future__ import annotations

import struct
from array import array
from typing import List, NamedTuple, Optional

import numpy as np
from std_msgs.msg import Float64MultiArray, MultiArrayDimension

SAMPLES_LABEL = 'samples'
FEATURES_LABEL = 'features'
FEATURES_LABEL_LABELED = 'features+label'
COLUMN_LABELS = (FEATURES_LABEL, FEATURES_LABEL_LABELED)


class MessageError(ValueError):
    """A message that cannot be used; the text is the reason given to the user.

    ``kind`` is a short category for counters: 'length', 'layout', 'empty', or 'malformed' (bytes
    that do not deserialize); the predictor adds 'non-finite' and 'overflow'.
    """

    def __init__(self, reason: str, kind: str = 'layout') -> None:
        super().__init__(reason)
        self.kind = kind


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
        if rows_dim.label in COLUMN_LABELS or cols_dim.label == SAMPLES_LABEL:
            # Labels are not required, but labels that say 'one row per feature' are believed:
            # a square batch (M == cols) laid out that way passes every size check, and would
            # be read as rows of the wrong values.
            raise MessageError(
                f'layout labels ({rows_dim.label!r}, {cols_dim.label!r}) put the features first; '
                f'expected one row per sample: ({SAMPLES_LABEL!r}, {FEATURES_LABEL!r})')
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
# rclpy's conversion between a message and its Python object costs more than a one-sample
# prediction itself (about 4.7 us to take one, 2 us of the 4 us of a publish, against 0.1 us to
# read N values with ``struct``): so the decoder and the encoder below read and write the bytes.
#
# The serialized form is what the middleware writes: a 4-byte encapsulation header (byte 1 says
# the byte order), then CDR. A one-sample message without a layout is
#     header | dim count = 0 | data_offset = 0 | data length = N | padding | N float64
# and any other message the same CDR, with its layout's dims (label string, size, stride) first.
# Rather than trusting that description, both classes check themselves at start against rclpy's
# own (de)serialization on the running middleware; if they disagree (another encoding), they
# report ``raw = False`` and take and give messages throughout. A received message that does not
# parse is left to rclpy's deserializer, which says what is wrong with it.

_BYTE_ORDER = {b'\x00\x00': '>', b'\x00\x01': '<'}  # CDR big- and little-endian encapsulation
# A matrix read in place from the bytes is unaligned (CDR puts float64 data 4 bytes off 8), and
# numpy then leaves BLAS for a slower loop: it is copied into a buffer kept for the next message,
# up to this many values (8 MB); a larger one is copied afresh.
ALIGNED_KEEP_VALUES = 1 << 20


def _serialize(msg: Float64MultiArray) -> bytes:
    from rclpy.serialization import serialize_message  # needs only the type support library
    return serialize_message(msg)


def _deserialize(raw: bytes) -> Float64MultiArray:
    from rclpy.serialization import deserialize_message
    return deserialize_message(raw, Float64MultiArray)


def _dims(msg) -> List[tuple]:
    """A message's (or ParsedMessage's) layout dims as (label, size, stride) tuples."""
    return [(d.label, d.size, d.stride) for d in msg.layout.dim]


class _Dim(NamedTuple):
    label: str
    size: int
    stride: int


class _Layout(NamedTuple):
    dim: List[_Dim]
    data_offset: int


class ParsedMessage(NamedTuple):
    """A Float64MultiArray read from its serialized form: the attributes ``matrix_from_msg``
    reads, with ``data`` a read-only float64 ndarray viewing the serialized bytes."""
    layout: _Layout
    data: np.ndarray


class MatrixDecoder:
    """The one reader of a Float64MultiArray input of ``cols`` values a row.

    ``raw`` says what it reads: True where the running middleware's encoding is the one described
    above (the subscription is then made with ``raw=True`` and the methods take its bytes), else
    False (they take messages).

    * ``row(data)``: the ``cols`` values of the common message, one sample with no layout and no
      data_offset, at the least cost; None for any other message (``matrix`` reads those). From
      bytes, a tuple of floats for ``cols <= tuple_max`` (for a caller that computes in Python
      floats), else a read-only ndarray viewing the bytes; from a message, its ``array('d')``.
    * ``matrix(data)``: any message as an (M, cols) aligned float64 array, or MessageError with the
      reason (``matrix_from_msg``'s; kind 'malformed' for bytes that do not deserialize). The
      array may view ``data`` or a buffer of the decoder's, reused by the next call.
    * ``parse(raw)``: the bytes as a ``ParsedMessage`` whose data views ``raw`` (no copy), or None
      where they are not a well-formed message of the expected encoding (or ``raw`` is False).

    Values are not checked for finiteness.
    """

    def __init__(self, cols: int, tuple_max: int = 0) -> None:
        self.cols = n = int(cols)
        self.raw = False
        self.row = self._message_row
        self.matrix = self._message_matrix
        self._aligned = np.empty(0)
        probe = Float64MultiArray()
        probe.data = array('d', [float(i) + 0.5 for i in range(n)])
        raw = _serialize(probe)
        order = _BYTE_ORDER.get(raw[:2])
        self._offset = len(raw) - 8 * n
        if order is None or self._offset < 16:
            return
        self._u32 = struct.Struct(order + 'I').unpack_from
        self._u32x2 = struct.Struct(order + '2I').unpack_from
        # header | 0 dims | data_offset 0 | length N, in the stream's byte order; then padding.
        self._prefix = raw[:4] + struct.pack(order + '3I', 0, 0, n)
        self._length = len(raw)
        self._struct = struct.Struct(f'{order}{n}d') if n <= tuple_max else None
        self._dtype = np.dtype(order + 'f8')
        batch = matrix_to_msg(np.arange(2.0 * n).reshape(2, n) + 0.25)
        batch.layout.data_offset = 0
        row = self._raw_row(raw)  # None unless raw starts with the prefix described above
        if (row is not None and list(row) == list(probe.data)
                and self._same(batch) and self._same(probe)):
            # Bound once here, so that a message costs one call and no test of ``raw``.
            self.raw = True
            self.row = self._raw_row
            self.matrix = self._raw_matrix

    def _same(self, msg: Float64MultiArray) -> bool:
        parsed = self._parse(_serialize(msg))
        return (parsed is not None and parsed.data.tolist() == list(msg.data)
                and parsed.layout.data_offset == msg.layout.data_offset
                and _dims(parsed) == _dims(msg))

    # ------------------------------------------------------------------------------- messages
    def _message_row(self, msg: Float64MultiArray):
        data, layout = msg.data, msg.layout
        if len(data) == self.cols and not layout.dim and not layout.data_offset:
            return data
        return None

    def _message_matrix(self, msg) -> np.ndarray:
        x = matrix_from_msg(msg, self.cols)
        return x if x.flags.aligned else self._aligned_copy(x)

    def _aligned_copy(self, x: np.ndarray) -> np.ndarray:
        if x.size > self._aligned.size:
            if x.size > ALIGNED_KEEP_VALUES:
                return np.array(x, dtype=np.float64)
            self._aligned = np.empty(x.size)
        out = self._aligned[:x.size].reshape(x.shape)
        np.copyto(out, x)
        return out

    # ---------------------------------------------------------------------------------- bytes
    def _raw_row(self, raw: bytes):
        if len(raw) != self._length or not raw.startswith(self._prefix):
            return None
        if self._struct is not None:
            return self._struct.unpack_from(raw, self._offset)
        return np.frombuffer(raw, dtype=self._dtype, count=self.cols, offset=self._offset)

    def _raw_matrix(self, raw: bytes) -> np.ndarray:
        # Batches and layouts are read in place (the data a view of ``raw``: no copy); what does
        # not parse is deserialized, which names what is wrong with it.
        msg = self._parse(raw)
        if msg is None:
            try:
                msg = _deserialize(raw)
            except Exception as err:  # noqa: BLE001 - whatever the type support raises
                raise MessageError(f'cannot be deserialized ({len(raw)} bytes): '
                                   f'{type(err).__name__}: {err}', kind='malformed') from None
        return self._message_matrix(msg)

    def parse(self, raw: bytes) -> Optional[ParsedMessage]:
        return self._parse(raw) if self.raw else None

    def _parse(self, raw: bytes) -> Optional[ParsedMessage]:
        # CDR: every field aligned to its size, counted from the end of the 4-byte header.
        end = len(raw)
        if end < 8 or raw[:2] != self._prefix[:2]:
            return None
        u32 = self._u32
        (ndims,) = u32(raw, 4)
        pos = 8
        if ndims > (end - pos) // 16:  # a dimension takes 16 bytes at least
            return None
        dims = []
        for _ in range(ndims):
            pos += -(pos - 4) % 4
            if pos + 4 > end:
                return None
            (length,) = u32(raw, pos)  # the label, with its terminating NUL
            pos += 4
            if length < 1 or pos + length > end or raw[pos + length - 1] != 0:
                return None
            label = raw[pos:pos + length - 1].decode('utf-8', 'replace')
            pos += length
            pos += -(pos - 4) % 4
            if pos + 8 > end:
                return None
            size, stride = self._u32x2(raw, pos)
            pos += 8
            dims.append(_Dim(label, size, stride))
        pos += -(pos - 4) % 4
        if pos + 8 > end:
            return None
        data_offset, count = self._u32x2(raw, pos)
        pos += 8
        pos += -(pos - 4) % 8
        stop = pos + 8 * count
        if stop > end or end - stop >= 8:  # short, or more than trailing padding left over
            return None
        data = np.frombuffer(raw, dtype=self._dtype, count=count, offset=pos)
        return ParsedMessage(_Layout(dims, data_offset), data)


class VectorEncoder:
    """The one writer of (M,) vectors as ``vector_to_msg`` lays them out ([{label, M, M}]).

    ``vector(y)`` (an (M,) float64 ndarray) and ``value(y)`` (one float, the common case) return
    what ``Publisher.publish`` takes: where ``raw`` is True, the serialized bytes, built directly
    (rclpy deserializes them into exactly ``vector_to_msg``'s message: checked at start); else a
    message, for ``value`` one message refilled on every call (``publish`` serializes it before it
    returns, so it is free again at once).
    """

    def __init__(self, label: str = SAMPLES_LABEL) -> None:
        self._label = label
        self._one = value_to_msg(0.0, label)
        self.raw = False
        self.vector = self._message_vector
        self.value = self._message_value
        probe = _serialize(value_to_msg(0.5, label))
        order = _BYTE_ORDER.get(probe[:2])
        if order is None:
            return
        self._order = order
        name = label.encode('utf-8') + b'\0'
        head = struct.pack(order + '2I', 1, len(name)) + name
        head += bytes(-len(head) % 4)  # CDR alignment, counted after the 4-byte header
        self._label_part = probe[:4] + head
        self._tail_pad = bytes(-(len(head) + 16) % 8)
        self._sizes = struct.Struct(order + '4I')  # size, stride, data_offset, data length
        self._value = struct.Struct(order + 'd')
        self._native = np.dtype(order + 'f8') == np.dtype(np.float64)
        self._one_head = self._head(1)
        if (all(self._round_trips(y) for y in (
                np.array([0.1234567890123]), np.array([0.1, -2.5, 1e300]), np.zeros(0)))
                and self._raw_value(0.1234567890123)
                == self._raw_vector(np.array([0.1234567890123]))):
            self.raw = True
            self.vector = self._raw_vector
            self.value = self._raw_value

    def _message_vector(self, y: np.ndarray) -> Float64MultiArray:
        return vector_to_msg(y, self._label)

    def _message_value(self, y: float) -> Float64MultiArray:
        out = self._one
        out.data[0] = y
        return out

    def _head(self, m: int) -> bytes:
        return self._label_part + self._sizes.pack(m, m, 0, m) + self._tail_pad

    def _raw_vector(self, y: np.ndarray) -> bytes:
        y = np.ascontiguousarray(y, dtype=np.float64).reshape(-1)
        data = y.tobytes() if self._native else y.astype(self._order + 'f8').tobytes()
        return self._head(y.shape[0]) + data

    def _raw_value(self, y: float) -> bytes:
        return self._one_head + self._value.pack(y)

    def _round_trips(self, y: np.ndarray) -> bool:
        try:
            back = _deserialize(self._raw_vector(y))
        except Exception:  # noqa: BLE001 - another encoding: the writer stays off
            return False
        expected = vector_to_msg(y, self._label)
        return (back.data.tobytes() == expected.data.tobytes()
                and back.layout.data_offset == 0 and _dims(back) == _dims(expected))

