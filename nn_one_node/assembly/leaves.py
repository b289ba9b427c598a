"""Leaf getters: the value(s) an entry takes from a message, built once per entry, with the
rules for bad readings. Every refusal is a ``MessageFault`` whose ``kind`` is counted.

Ranges (LaserScan's ``ranges``, Range's ``range``) follow REP 117: +inf means no return within
the sensor's range (nothing near), -inf an object closer than its minimum, NaN an invalid
reading. +inf is read as the message's ``range_max`` (``max_range`` for Range) and -inf as its
``range_min``, so ``min(ranges)`` of a scan that sees nothing is ``range_max``: far, a finite
number a model can use. NaN is ignored by ``min``/``max``/``mean``; an element or a slice that
is NaN is a bad reading (the input keeps its older value). Elsewhere a NaN or infinite field,
element or slice is a bad reading too; over an array that holds no ranges, infinities take part
in ``min``/``max``/``mean`` and only a result that is not finite is a bad reading.

>>> from operator import attrgetter
>>> from types import SimpleNamespace as NS
>>> from nn_one_node.assembly.entries import parse_entry
>>> spec = parse_entry('/scan sensor_msgs/msg/LaserScan min(ranges)')
>>> extract, names, width = leaf_getter(('reduce', 'ranges', None, None), spec, lambda m: m,
...                                     attrgetter('ranges'), RANGE_FIELDS['ranges'])
>>> def scan(*ranges):
...     return NS(ranges=list(ranges), range_min=0.1, range_max=12.0)
>>> extract(scan(3.0, math.nan, 2.0)), extract(scan(math.inf, math.inf))   # NaN ignored; far
(2.0, 12.0)
>>> try:
...     extract(scan(math.nan))
... except MessageFault as fault:
...     print(f'{fault.kind}: {fault}')
non-finite: min(/scan/ranges): every value is NaN
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
        lo_name, hi_name = ranges

        def extract(msg):
            v = _number(value_get(msg))
            if not isfinite(v):
                v = _range_bound(v, parent_get(msg), lo_name, hi_name, label)
            return v
    else:
        def extract(msg):
            v = _number(value_get(msg))
            if not isfinite(v):
                raise MessageFault('non-finite', f'{label} is {v}')
            return v
    return extract, [label], 1


def _range_bound(v: float, parent, lo_name: str, hi_name: str, label: str) -> float:
    if v != v:
        raise MessageFault('non-finite', f'{label} is NaN (an invalid reading)')
    bound = float(getattr(parent, hi_name if v > 0 else lo_name))
    if not math.isfinite(bound):
        raise MessageFault('non-finite', f'{label} is {v} and {hi_name if v > 0 else lo_name} '
                           f'is {bound}')
    return bound


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
        if not isfinite(v):
            if ranges:
                return _range_bound(v, parent_get(msg), ranges[0], ranges[1], label)
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
        values = values.astype(np.float64)
        if not np.isfinite(values).all():
            if not ranges or np.isnan(values).any():
                raise MessageFault('non-finite', f'{label}: NaN or infinite values')
            parent = parent_get(msg)
            values[values == np.inf] = float(getattr(parent, ranges[1]))
            values[values == -np.inf] = float(getattr(parent, ranges[0]))
            if not np.isfinite(values).all():
                raise MessageFault('non-finite', f'{label}: infinite values and bounds')
        return values if width > 1 else float(values[0])
    return extract, _element_names(spec, sl, width), width


_REDUCE = {'min': np.min, 'max': np.max, 'mean': np.mean}


def _leaf_reduce(leaf, parent_get, value_get, ranges, label, spec):
    _, field_name, sl, _ = leaf
    func = _REDUCE[spec.func]
    kwargs = {'dtype': np.float64} if spec.func == 'mean' else {}
    isfinite = math.isfinite
    all_finite = np.isfinite

    if kwargs:
        def reduce(values) -> float:
            with np.errstate(invalid='ignore', over='ignore'):  # inf - inf, overflow: judged
                return float(func(values, **kwargs))
    else:
        def reduce(values) -> float:  # min and max raise no floating-point warnings
            return float(func(values))

    def extract(msg):
        values = as_array(value_get(msg))
        if sl is not None:
            values = values[sl]
        if values.shape[0] == 0:
            raise MessageFault('empty', f'{label}: {field_name} has no values')
        if values.dtype == np.bool_:
            values = values.astype(np.float64)
        if ranges:
            if all_finite(values).all():  # the usual scan: one pass to check, one to reduce
                return reduce(values)
        else:
            r = reduce(values)  # infinities take part; a non-finite result is judged below
            if isfinite(r):
                return r
        # The rare path: NaN present (ignored), or a range's infinities (the sensor's bounds).
        values = values[~np.isnan(values)].astype(np.float64)
        if values.shape[0] == 0:
            raise MessageFault('non-finite', f'{label}: every value is NaN')
        if ranges:
            parent = parent_get(msg)
            values[values == np.inf] = float(getattr(parent, ranges[1]))
            values[values == -np.inf] = float(getattr(parent, ranges[0]))
            if not all_finite(values).all():
                raise MessageFault('non-finite', f'{label}: infinite readings, and the range '
                                   f'bound they stand for ({ranges[0]}, {ranges[1]}) is not '
                                   'finite')
        r = reduce(values)
        if not isfinite(r):
            raise MessageFault('non-finite', f'{label} is {r}')
        return r
    return extract, [label], 1


LEAVES = {'scalar': _leaf_scalar, 'element': _leaf_element, 'named': _leaf_named,
           'slice': _leaf_slice, 'reduce': _leaf_reduce}
