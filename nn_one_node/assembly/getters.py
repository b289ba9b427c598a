"""An entry compiled against its message type: its path checked against the type's fields
(``get_fields_and_field_types()``) once at start, and turned into a getter, so no string is
parsed per message. An unknown package, type or field, a non-numeric leaf, an array without an
index raise ``ConfigError`` naming the entry.

>>> from types import SimpleNamespace as NS
>>> from nn_one_node.assembly.entries import parse_entry
>>> class Vector3:
...     @staticmethod
...     def get_fields_and_field_types():
...         return {'x': 'double', 'y': 'double', 'z': 'double'}
>>> class Imu:
...     @staticmethod
...     def get_fields_and_field_types():
...         return {'linear_acceleration': 'geometry_msgs/Vector3',
...                 'orientation_covariance': 'double[9]'}
>>> types = {'my_msgs/msg/Imu': Imu, 'geometry_msgs/msg/Vector3': Vector3}
>>> entry = compile_entry(parse_entry('/imu my_msgs/msg/Imu linear_acceleration.z'),
...                       types.__getitem__)
>>> entry.names, entry.width, entry.extract(NS(linear_acceleration=NS(z=9.81)))
(['/imu/linear_acceleration.z'], 1, 9.81)
>>> compile_entry(parse_entry('/imu my_msgs/msg/Imu orientation_covariance[9]'),
...               types.__getitem__)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
nn_one_node.assembly.errors.ConfigError: ...: orientation_covariance has 9 elements: index 9 ...
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Tuple

from nn_one_node.assembly.entries import EntrySpec, index_kind, parse_slice, slice_width
from nn_one_node.assembly.errors import ConfigError
from nn_one_node.assembly.leaves import RANGE_FIELDS, leaf_getter
from nn_one_node.assembly.msgtypes import (NUMERIC_TYPES, default_resolver, field_type,
                                           fields_of, is_message, message_type, resolve_for)
from nn_one_node.assembly.sector import Sector

SECTOR_FIELDS = ('angle_min', 'angle_increment')  # a scan's fields giving its beams' angles


@dataclass
class CompiledEntry:
    """One entry resolved against its type: ``extract(msg)`` gives its value(s)."""
    spec: EntrySpec
    cls: Any
    names: List[str]
    width: int
    extract: Callable[[Any], Any]   # -> float (width 1) or float64 ndarray (a slice)


def _chain(steps: List[Tuple[str, Any]]) -> Callable[[Any], Any]:
    """A getter walking attribute names and integer indexes, as few Python calls as it can."""
    if not steps:
        return lambda msg: msg
    funcs = []
    attrs: List[str] = []
    for kind, arg in steps:
        if kind == 'attr':
            attrs.append(arg)
            continue
        if attrs:
            funcs.append(operator.attrgetter('.'.join(attrs)))
            attrs = []
        funcs.append(operator.itemgetter(arg))
    if attrs:
        funcs.append(operator.attrgetter('.'.join(attrs)))
    if len(funcs) == 1:
        return funcs[0]

    def get(msg):
        for f in funcs:
            msg = f(msg)
        return msg
    return get


def compile_entry(spec: EntrySpec, resolve=default_resolver) -> CompiledEntry:
    """Resolve an entry's type and check its path against the type's fields (ConfigError)."""
    text, what = spec.text, spec.what

    def fail(reason: str) -> ConfigError:
        return ConfigError(f'{what} entry {text!r}: {reason}')
    root = resolve_for(resolve, spec.type_name, text, what)
    cls = root
    cls_name = spec.type_name
    steps: List[Tuple[str, Any]] = []
    parent_fields: Dict[str, str] = {}
    walked = ''
    last = len(spec.segments) - 1
    leaf = None
    for i, (name, raw) in enumerate(spec.segments):
        fields = fields_of(cls)
        if name not in fields:
            raise fail(f'{cls_name} has no field {name!r}'
                       + (f' (in {walked})' if walked else '')
                       + f'; its fields: {", ".join(fields) or "(none)"}')
        kind, elem, size = field_type(fields[name])
        here = f'{walked}.{name}' if walked else name
        ikind = index_kind(raw)
        if i < last:
            if not is_message(elem):
                raise fail(f'{here} is a {fields[name]}, not a message: it has no fields')
            steps.append(('attr', name))
            if kind == 'scalar':
                if raw is not None:
                    raise fail(f'{here} is not an array: [{raw}] cannot apply')
            else:
                if ikind != 'int':
                    raise fail(f'{here} is an array of messages: index it with an integer, '
                               f'e.g. {name}[0]')
                idx = int(raw)
                if size is not None and not -size <= idx < size:
                    raise fail(f'{here} has {size} elements: index {idx} is out of range')
                steps.append(('item', idx))
            cls_name = message_type(elem)
            cls = resolve_for(resolve, cls_name, text, what)
            walked = f'{here}[{raw}]' if raw is not None else here
            continue
        # the leaf
        parent_fields = fields
        if is_message(elem):
            sub = ', '.join(fields_of(resolve_for(resolve, message_type(elem), text, what)))
            raise fail(f'{here} is a message ({elem}): name one of its fields ({sub})')
        if elem not in NUMERIC_TYPES:
            raise fail(f'{here} is a {fields[name]}, not a number')
        if spec.func is not None:
            if kind == 'scalar':
                raise fail(f'{spec.func}() needs an array field; {here} is one {elem}')
            if ikind not in (None, 'slice'):
                raise fail(f'{spec.func}() takes a whole array or a slice, not {name}[{raw}]')
            sl = parse_slice(raw) if ikind == 'slice' else None
            if sl is not None and size is not None and slice_width(sl, size) == 0:
                raise fail(f'{name}[{raw}] selects no element of {size}')
            if spec.sector is not None:
                if not set(SECTOR_FIELDS) <= set(parent_fields):
                    raise fail(f'a sector by angle ({name}@...) needs the angles of a scan '
                               f'({", ".join(SECTOR_FIELDS)}), which {cls_name} has not: a '
                               f"LaserScan's ranges or intensities; else a slice {name}[a:b]")
                sl = Sector(*spec.sector)
            leaf = ('reduce', name, sl, None)
        elif kind == 'scalar':
            if raw is not None:
                raise fail(f'{here} is not an array: [{raw}] cannot apply')
            leaf = ('scalar', name, None, None)
        elif ikind is None:
            by_name = f', an element by name {name}[joint]' if 'name' in fields else ''
            raise fail(f'{here} is an array ({fields[name]}): pick an element {name}[0], a '
                       f'slice {name}[0:10:2]{by_name}, or min/max/mean({name})')
        elif ikind == 'int':
            idx = int(raw)
            if size is not None and not -size <= idx < size:
                raise fail(f'{here} has {size} elements: index {idx} is out of range')
            leaf = ('element', name, idx, None)
        elif ikind == 'slice':
            sl = parse_slice(raw)
            width = slice_width(sl, size)
            if width is None:
                raise fail(f'{name}[{raw}]: the number of elements must be known at start: give '
                           f'the slice its end, e.g. {name}[0:360:90]')
            if width == 0:
                raise fail(f'{name}[{raw}] selects no element')
            leaf = ('slice', name, sl, width)
        else:
            key = raw.strip().strip('\'"')
            ntype = parent_fields.get('name', '')
            nkind, nelem, _ = field_type(ntype) if ntype else ('', '', None)
            if nkind not in ('seq', 'array') or not nelem.startswith('string'):
                raise fail(f'{name}[{key}] picks by name, but {cls_name} has no name array '
                           '(string[] name, as JointState)')
            leaf = ('named', name, key, None)
    assert leaf is not None
    parent_get = _chain(steps)
    value_get = _chain(steps + [('attr', leaf[1])])
    ranges = RANGE_FIELDS.get(leaf[1])
    if ranges and not all(f in parent_fields for f in ranges):
        ranges = None
    extract, names, width = leaf_getter(leaf, spec, parent_get, value_get, ranges)
    return CompiledEntry(spec, root, names, width, extract)
