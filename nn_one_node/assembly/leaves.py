"""Leaf getters: the value(s) an entry takes from a message, built once per entry, with the
rules for bad readings. Every refusal is a ``MessageFault`` whose ``kind`` is counted.

Ranges (a LaserScan's ``ranges``, a Range's ``range``) are read as users of those sensors know
them: a reading is valid when it lies in [``range_min``, ``range_max``] (a Range's
``min_range``, ``max_range``) of its own message. The 0.0 many lidars report for a dropout, NaN
(REP 117: an invalid reading), +inf (REP 117: no return, nothing within range) and any finite
value outside the bounds are invalid; -inf (REP 117: an object closer than ``range_min``) is
read as ``range_min``, so that the nearest thing is never left out.

* ``min``/``max``/``mean`` over ranges (all, a slice, a sector) leave the invalid readings out.
  With no valid reading left all three give ``range_max``: nothing within the sensor's range,
  so the nearest thing is far (``min``), and a sector that sees nothing reads as open as far as
  the sensor sees (``max``, ``mean``); each moves continuously to ``range_max`` as the last
  obstacle leaves the sector.
* An element (``ranges[0]``), or each element of a slice, is a sector of one beam: an invalid
  reading gives ``range_max``.
* Bounds that are no range (``range_min`` not finite or not below ``range_max``: NaN, the
  zeros of a driver that leaves them unset) refuse the message (``range bounds``); so does a
  result that is not finite (an invalid reading under ``range_max: inf``).

Elsewhere a NaN or infinite field, element or slice is a bad reading (the input keeps its older
value); over an array that holds no ranges NaN is ignored by ``min``/``max``/``mean``,
infinities take part, and only a result that is not finite is a bad reading.

>>> from operator import attrgetter
>>> from types import SimpleNamespace as NS
>>> from nn_one_node.assembly.entries import parse_entry
>>> spec = parse_entry('/scan sensor_msgs/msg/LaserScan min(ranges)')
>>> extract, names, width = leaf_getter(('reduce', 'ranges', None, None), spec, lambda m: m,
...                                     attrgetter('ranges'), RANGE_FIELDS['ranges'])
>>> def scan(*ranges, range_min=0.12, range_max=3.5):
...     return NS(ranges=list(ranges), range_min=range_min, range_max=range_max)
>>> extract(scan(3.0, 0.0, math.nan, 2.0, math.inf))   # a dropout (0.0), NaN, no return
2.0
>>> extract(scan(0.0, math.inf, math.nan))             # nothing valid: nothing near
3.5
>>> extract(scan(-math.inf, 2.0))                      # closer than range_min
0.12
>>> try:
...     extract(scan(1.0, range_min=0.0, range_max=0.0))
... except MessageFault as fault:
...     print(f'{fault.kind}: {fault}')   # doctest: +ELLIPSIS
range bounds: min(/scan/ranges): range_min 0 and range_max 0 are no range ...
"""

from __future__ import annotations

import math
from array import array
from typing import Any, Callable, List, Optional, Tuple

import numpy as np

from nn_one_node.assembly.entries import EntrySpec
from nn_one_node.assembly.errors import MessageFault

# REP 117: the fields holding ranges, and the fields of the same message bounding them.
RANGE_FIELDS = {'ranges': ('range_min', 'range_max'), 'range': ('min_range', 'max_range')}
# (kind, field name, index | name | slice | None, width | None), as compile_entry finds it
Leaf = Tuple[str, str, Any, Optional[int]]
Getter = Callable[[Any], Any]


def leaf_getter(leaf: Leaf, spec: EntrySpec, parent_get: Getter, value_get: Getter,
                ranges: Optional[Tuple[str, str]]) -> Tuple[Getter, List[str], int]:
    """(extract, feature names, width) of a leaf: ``value_get(msg)`` is its field,
    ``parent_get(msg)`` the message holding it; ``ranges`` the bounds' names (REP 117) or None."""
    return LEAVES[leaf[0]](leaf, parent_get, value_get, ranges, spec.display_name, spec)


def as_array(value) -> np.ndarray:
    """An array field as a numpy array, without a copy where possible."""
    if type(value) is np.ndarray:
        return value
    if isinstance(value, array):
        return np.frombuffer(value, dtype=value.typecode)
    if isinstance(value, (bytes, bytearray)):
        return np.frombuffer(value, dtype=np.uint8)
    return np.asarray(value, dtype=np.float64)


def _number(v) -> float:
    if isinstance(v, (bytes, bytearray)):  # an octet scalar is a bytes of length 1 in rclpy
        return float(v[0])
    return float(v)


def _leaf_scalar(leaf, parent_get, value_get, ranges, label, spec):
    isfinite = math.isfinite
    if ranges:
        def extract(msg):
            lo, hi = _bounds(parent_get(msg), ranges, label)
            return _range_value(_number(value_get(msg)), lo, hi, ranges, label)
    else:
        def extract(msg):
            v = _number(value_get(msg))
            if not isfinite(v):
                raise MessageFault('non-finite', f'{label} is {v}')
            return v
    return extract, [label], 1


def _bounds(parent, ranges: Tuple[str, str], label: str) -> Tuple[float, float]:
    """A range message's bounds (``range_min``, ``range_max``), refused where they are none
    (``range_max`` may be +inf: then only a finite reading is valid)."""
    lo, hi = float(getattr(parent, ranges[0])), float(getattr(parent, ranges[1]))
    if not (math.isfinite(lo) and lo < hi):
        raise MessageFault('range bounds', f'{label}: {ranges[0]} {lo:g} and {ranges[1]} '
                           f'{hi:g} are no range (does the driver fill them?)')
    return lo, hi


def _range_value(v: float, lo: float, hi: float, ranges: Tuple[str, str], label: str) -> float:
    """One reading of a range: itself when valid, ``lo`` for -inf, else ``hi``."""
    if lo <= v <= hi and v != math.inf:
        return v
    bound, v = (ranges[0], lo) if v == -math.inf else (ranges[1], hi)
    if not math.isfinite(v):
        raise MessageFault('non-finite', f'{label}: an invalid reading, and {bound} is {v}')
    return v


def _leaf_element(leaf, parent_get, value_get, ranges, label, spec):
    _, field_name, idx, _ = leaf
    isfinite = math.isfinite

    def extract(msg):
        seq = value_get(msg)
        try:
            v = seq[idx]
        except IndexError:
            raise MessageFault('index out of range', f'{label}: the message has {len(seq)} '
                               f'values in {field_name}') from None
        v = _number(v)
        if ranges:
            lo, hi = _bounds(parent_get(msg), ranges, label)
            return _range_value(v, lo, hi, ranges, label)
        if not isfinite(v):
            raise MessageFault('non-finite', f'{label} is {v}')
        return v
    return extract, [label], 1


def _leaf_named(leaf, parent_get, value_get, ranges, label, spec):
    _, field_name, key, _ = leaf
    isfinite = math.isfinite
    cache: List[Any] = [None, 0]   # the names list last seen, and the key's index in it

    def extract(msg):
        parent = parent_get(msg)
        names = parent.name
        if names != cache[0]:
            index = getattr(names, 'index', None) or list(names).index
            try:
                cache[1] = index(key)
            except ValueError:
                cache[0] = None
                shown = ', '.join(map(str, list(names)[:8])) + (', ...' if len(names) > 8 else '')
                raise MessageFault('missing name', f"{label}: no {key!r} in this message's "
                                   f'name array [{shown}]') from None
            cache[0] = list(names)
        seq = getattr(parent, field_name)
        try:
            v = _number(seq[cache[1]])
        except IndexError:
            raise MessageFault('index out of range', f'{label}: {key!r} is name {cache[1]}, but '
                               f'{field_name} has {len(seq)} values') from None
        if not isfinite(v):
            raise MessageFault('non-finite', f'{label} is {v}')
        return v
    return extract, [label], 1


def _element_names(spec: EntrySpec, sl: slice, width: int) -> List[str]:
    topic = spec.topic.rstrip('/')
    name, _ = spec.segments[-1]
    head = spec.expr.replace(' ', '')
    head = head[:head.rindex('[')]
    start, step = sl.start or 0, sl.step or 1
    return [f'{topic}/{head}[{start + k * step}]' for k in range(width)]


def _leaf_slice(leaf, parent_get, value_get, ranges, label, spec):
    _, field_name, sl, width = leaf

    def extract(msg):
        values = as_array(value_get(msg))[sl]
        if values.shape[0] != width:
            raise MessageFault('index out of range', f'{label}: the message has '
                               f'{as_array(value_get(msg)).shape[0]} values in {field_name}, '
                               f'{values.shape[0]} in the slice, not {width}')
        values = values.astype(np.float64)  # a copy
        if ranges:
            lo, hi = _bounds(parent_get(msg), ranges, label)
            valid = (values >= lo) & (values <= hi)
            if hi == np.inf:
                valid &= values != hi
            if not valid.all():
                closer = values == -np.inf
                values[~valid] = hi
                values[closer] = lo
                if not np.isfinite(values).all():
                    raise MessageFault('non-finite', f'{label}: invalid readings, and '
                                       f'{ranges[0]} {lo:g} .. {ranges[1]} {hi:g}')
        elif not np.isfinite(values).all():
            raise MessageFault('non-finite', f'{label}: NaN or infinite values')
        return values if width > 1 else float(values[0])
    return extract, _element_names(spec, sl, width), width


def _mean(values) -> float:
    with np.errstate(invalid='ignore', over='ignore'):  # inf - inf, overflow: judged after
        return float(np.add.reduce(values, dtype=np.float64) / values.shape[0])


# The ufuncs' own reductions: np.min and np.max are these, behind a Python layer that costs
# as much as the reduction itself on a scan. min and max raise no floating-point warnings.
_REDUCE = {'min': lambda v: float(np.minimum.reduce(v)),
           'max': lambda v: float(np.maximum.reduce(v)), 'mean': _mean}


def _leaf_reduce(leaf, parent_get, value_get, ranges, label, spec):
    _, field_name, sl, _ = leaf
    sector = None if sl is None or isinstance(sl, slice) else sl   # a sector.Sector
    reduce = _REDUCE[spec.func]
    isfinite = math.isfinite
    lowest, highest = np.minimum.reduce, np.maximum.reduce
    inf = math.inf
    # with every reading valid, min and max are the very values the check computes
    answer = {'min': lambda lo_v, hi_v, v: float(lo_v), 'max': lambda lo_v, hi_v, v: float(hi_v),
              'mean': lambda lo_v, hi_v, v: _mean(v)}[spec.func]

    def extract(msg):
        values = as_array(value_get(msg))
        if values.shape[0] == 0:
            raise MessageFault('empty', f'{label}: {field_name} has no values')
        if sector is not None:
            values = sector.take(values, parent_get(msg), label)
        elif sl is not None:
            values = values[sl]
            if values.shape[0] == 0:
                raise MessageFault('empty', f'{label}: the slice of {field_name} has no values')
        if values.dtype == np.bool_:
            values = values.astype(np.float64)
        if ranges:
            lo, hi = _bounds(parent_get(msg), ranges, label)
            least, most = lowest(values), highest(values)   # NaN fails the checks below
            if lo <= least and most <= hi and most != inf:  # the usual scan: all valid
                return answer(least, most, values)
            valid = (values >= lo) & (values <= hi) & (values != inf)
            closer = values == -inf
            if closer.any():
                values = np.where(closer, lo, values)
                valid |= closer
            values = values[valid]
            r = reduce(values) if values.shape[0] else hi   # nothing valid: nothing near
            if not isfinite(r):
                raise MessageFault('non-finite', f'{label} is {r} ({ranges[0]} {lo:g}, '
                                   f'{ranges[1]} {hi:g})')
            return r
        r = reduce(values)  # infinities take part; a non-finite result is judged below
        if isfinite(r):
            return r
        values = values[~np.isnan(values)]  # the rare path: NaN present, ignored
        if values.shape[0] == 0:
            raise MessageFault('non-finite', f'{label}: every value is NaN')
        r = reduce(values)
        if not isfinite(r):
            raise MessageFault('non-finite', f'{label} is {r}')
        return r
    return extract, [label], 1


LEAVES = {'scalar': _leaf_scalar, 'element': _leaf_element, 'named': _leaf_named,
           'slice': _leaf_slice, 'reduce': _leaf_reduce}
