"""Feature rows and late-labeled samples from a robot's typed topics: the assembler's whole logic.

No ROS import: the ``assembler`` node and the offline bag tool both drive it, with messages as
duck-typed objects (attribute access; arrays as ``array.array``, list, tuple or numpy array:
rclpy's messages and rosbags' alike) and times given explicitly as float seconds.

Entries
-------
One entry per input, ``'<topic> <pkg/msg/Type> <expression>'``; the expression is

* ``twist.twist.linear.x``: a numeric field, nested to any depth (float, int; bool gives 0/1);
* ``ranges[0]``, ``ranges[-1]``: an element of an array field; ``transforms[0].transform.x``
  indexes an array of messages on the way;
* ``ranges[0:360:90]``: a slice, one feature per element (its size must be known at start: give
  its end, or a negative start, on a sequence of unbounded length);
* ``effort[left_wheel_joint]``: the element at the position of that name in the ``name`` array
  of the same message (JointState); the names may come in any order from message to message;
* ``min(ranges)``, ``max(ranges)``, ``mean(ranges)``, ``mean(ranges[0:90])``: over an array
  field, NaN ignored.

Ranges (LaserScan's ``ranges``, Range's ``range``) follow REP 117: +inf means no return within
the sensor's range (nothing near), -inf an object closer than its minimum, NaN an invalid
reading. +inf is read as the message's ``range_max`` (``max_range`` for Range) and -inf as its
``range_min``, so ``min(ranges)`` of a scan that sees nothing is ``range_max``: far, a finite
number a model can use. NaN is ignored by ``min``/``max``/``mean``; an element or a slice that
is NaN is a bad reading (the input keeps its older value). Elsewhere a NaN or infinite field,
element or slice is a bad reading too; over an array that holds no ranges, infinities take part
in ``min``/``max``/``mean`` and only a result that is not finite is a bad reading.

Types are resolved once at start (``default_resolver``: ``importlib`` of ``pkg.msg``) and every
entry is checked against its type's fields (``get_fields_and_field_types()``): an unknown
package, type or field, a non-numeric leaf, an array without an index, a label that is not one
scalar raise ``ConfigError`` naming the entry. Each entry is compiled into a getter once: no
string is parsed per message.

Time
----
A value is stamped by the message's ``header.stamp`` where its type has a header (and the stamp
is not zero), else by its arrival ``now`` on the node's clock. ``tick(now)`` builds one row from
the newest value of every input when each is younger than ``max_age``; otherwise the row is
skipped and counted stale, by input. A label stamped t is for the row nearest t - label_delay
within ``max_join_gap``; rows of the last ``history`` seconds are kept in a ring. A label whose
moment is newer than the newest row waits until a row at or after it exists, or until no row
could still be near enough. A time that goes backwards (a world reset, a looping bag) drops
every value, row and waiting label: no row mixes both sides, no label joins across. A stamp more
than ``max_age`` ahead of the clock is refused (kind ``'future stamp'``): after a jump back it is
a message of the old timeline still in flight.

Example
-------
A fake message type stands in for a ROS one here (a ROS type works the same way):

>>> from types import SimpleNamespace as NS
>>> class Wheel:
...     @staticmethod
...     def get_fields_and_field_types():
...         return {'name': 'sequence<string>', 'effort': 'sequence<double>'}
>>> class Flag:
...     @staticmethod
...     def get_fields_and_field_types():
...         return {'data': 'boolean'}
>>> types = {'my_msgs/msg/Wheel': Wheel, 'my_msgs/msg/Flag': Flag}
>>> cfg = AssemblerConfig.from_params({
...     'features': ['/wheels my_msgs/msg/Wheel effort[left]',
...                  '/wheels my_msgs/msg/Wheel effort[right]'],
...     'label': '/slip my_msgs/msg/Flag data', 'rate': 10.0, 'label_delay': 0.5})
>>> asm = Assembler(cfg, resolve=types.__getitem__)
>>> asm.feature_names
['/wheels/effort[left]', '/wheels/effort[right]']
>>> _ = asm.on_message('/wheels', NS(name=['right', 'left'], effort=[2.0, 1.0]), now=1.0)
>>> asm.tick(1.0)
array([1., 2.])
>>> _ = asm.on_message('/wheels', NS(name=['left', 'right'], effort=[3.0, 4.0]), now=1.1)
>>> asm.tick(1.1)
array([3., 4.])
>>> asm.on_message('/slip', NS(data=True), now=1.5)   # the slip of time 1.0, felt at 1.5
[array([1., 2., 1.])]
>>> asm.tick(5.0) is None                              # nothing heard for 3.9 s: stale
True
>>> asm.counters()['stale']
{'/wheels/effort[left]': 1, '/wheels/effort[right]': 1}
"""

from __future__ import annotations

import bisect
import importlib
import math
import operator
import re
from array import array
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

# ------------------------------------------------------------------------------ configuration
DEFAULTS: Dict[str, Any] = {
    'features': [],
    'rate': 20.0,
    'max_age': 0.5,
    'label': '',
    'label_threshold': math.nan,
    'label_range': [0.0, 1.0],
    'label_delay': 0.0,
    'history': 10.0,
    'max_join_gap': 0.05,
    'max_pending_labels': 10000,
}
MAX_RATE_HZ = 1000.0
MIN_RATE_HZ = 1e-3
MAX_HISTORY_ROWS = 10_000_000
REDUCTIONS = ('min', 'max', 'mean')
NUMERIC_TYPES = frozenset((
    'boolean', 'octet', 'char', 'byte', 'float', 'double', 'long double', 'float32', 'float64',
    'int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64'))
# REP 117: the fields holding ranges, and the fields of the same message bounding them.
RANGE_FIELDS = {'ranges': ('range_min', 'range_max'), 'range': ('min_range', 'max_range')}


class ConfigError(ValueError):
    """A configuration that cannot work; the text names the entry or parameter and says why."""


class MessageFault(ValueError):
    """A message whose value cannot be used: ``kind`` is the counter's name, the text why."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind


# Pure checks, shaped as nn_one_node.ros.params expects (value, all values) -> reason or None: the
# node's parameter table uses them, and AssemblerConfig.from_params applies the same.
def check_features(value: Sequence[str], _values: Mapping[str, Any]) -> Optional[str]:
    if not value:
        return ("is empty: give one entry per input, '<topic> <pkg/msg/Type> <path>', e.g. "
                "'/odom nav_msgs/msg/Odometry twist.twist.linear.x'")
    for text in value:
        try:
            parse_entry(text)
        except ConfigError as err:
            return str(err)
    return None


def check_label(value: str, _values: Mapping[str, Any]) -> Optional[str]:
    if not value:
        return None
    try:
        spec = parse_entry(value, what='label')
    except ConfigError as err:
        return str(err)
    if spec.index_kind == 'slice':
        return f'{value!r} is a slice: a label is one scalar (an element, a field, min/max/mean)'
    return None


def check_rate(value: float, _values: Mapping[str, Any]) -> Optional[str]:
    if not math.isfinite(value) or not MIN_RATE_HZ <= value <= MAX_RATE_HZ:
        return f'must be a finite number in [{MIN_RATE_HZ:g}, {MAX_RATE_HZ:g}] Hz, got {value}'
    return None


def check_positive(value: float, _values: Mapping[str, Any]) -> Optional[str]:
    if not math.isfinite(value) or value <= 0.0:
        return f'must be a finite number > 0, got {value}'
    return None


def check_non_negative(value: float, _values: Mapping[str, Any]) -> Optional[str]:
    if not math.isfinite(value) or value < 0.0:
        return f'must be a finite number >= 0, got {value}'
    return None


def check_threshold(value: float, _values: Mapping[str, Any]) -> Optional[str]:
    if math.isinf(value):
        return f'must be a finite number, or NaN for unset, got {value}'
    return None


def check_label_range(value: Sequence[float], _values: Mapping[str, Any]) -> Optional[str]:
    if len(value) != 2 or any(math.isnan(v) for v in value) or value[0] > value[1]:
        return f'must be two numbers [low, high] with low <= high, got {list(value)}'
    return None


def check_history(value: float, values: Mapping[str, Any]) -> Optional[str]:
    reason = check_positive(value, values)
    if reason:
        return reason
    need = values.get('label_delay', 0.0) + values.get('max_join_gap', 0.0)
    if values.get('label') and value < need:
        return (f'must be at least label_delay + max_join_gap = {need:g} s, got {value:g}: '
                'the rows a label is for would be gone when it arrives')
    rows = value * values.get('rate', DEFAULTS['rate'])
    if rows > MAX_HISTORY_ROWS:
        return f'times rate is {rows:.0f} rows, more than {MAX_HISTORY_ROWS} kept at most'
    return None


def check_delay(value: float, values: Mapping[str, Any]) -> Optional[str]:
    reason = check_non_negative(value, values)
    if reason:
        return reason
    return _history_fits(values)


def check_gap(value: float, values: Mapping[str, Any]) -> Optional[str]:
    # history >= label_delay + max_join_gap is said by label_delay's and history's checks
    return check_non_negative(value, values)


def _history_fits(values: Mapping[str, Any]) -> Optional[str]:
    # The rule of check_history seen from label_delay and max_join_gap (only changed names are
    # checked when a parameter is set at run time).
    history = values.get('history', DEFAULTS['history'])
    need = values.get('label_delay', 0.0) + values.get('max_join_gap', 0.0)
    if values.get('label') and history < need:
        return (f'makes label_delay + max_join_gap = {need:g} s, more than history '
                f'({history:g} s): the rows a label is for would be gone when it arrives')
    return None


CHECKS: Dict[str, Callable[[Any, Mapping[str, Any]], Optional[str]]] = {
    'features': check_features, 'rate': check_rate, 'max_age': check_positive,
    'label': check_label, 'label_threshold': check_threshold, 'label_range': check_label_range,
    'label_delay': check_delay, 'history': check_history, 'max_join_gap': check_gap,
}


@dataclass
class AssemblerConfig:
    """The assembler's settings (the node's ros__parameters of the same names)."""
    features: List[str]
    rate: float = DEFAULTS['rate']
    max_age: float = DEFAULTS['max_age']
    label: str = DEFAULTS['label']
    label_threshold: float = DEFAULTS['label_threshold']
    label_range: List[float] = field(default_factory=lambda: list(DEFAULTS['label_range']))
    label_delay: float = DEFAULTS['label_delay']
    history: float = DEFAULTS['history']
    max_join_gap: float = DEFAULTS['max_join_gap']
    max_pending_labels: int = DEFAULTS['max_pending_labels']

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> 'AssemblerConfig':
        """From a ros__parameters dict (missing keys take their defaults; other keys, such as
        ``executor`` or ``qos_overrides``, are ignored). Raises ConfigError with the reasons."""
        values = {**DEFAULTS, **{k: v for k, v in params.items() if k in DEFAULTS}}
        values['features'] = list(values['features'] or [])
        for name in ('rate', 'max_age', 'label_threshold', 'label_delay', 'history',
                     'max_join_gap'):
            try:
                values[name] = float(values[name])
            except (TypeError, ValueError):
                raise ConfigError(f'{name} must be a number, got {values[name]!r}') from None
        values['label_range'] = [float(v) for v in values['label_range']]
        values['label'] = values['label'] or ''
        if not all(isinstance(t, str) for t in values['features']):
            raise ConfigError(f'features must be strings, got {values["features"]!r}')
        reasons = []
        for name, check in CHECKS.items():
            reason = check(values[name], values)
            if reason:
                reasons.append(reason if reason.startswith(name) else f'{name} {reason}')
        if reasons:
            raise ConfigError('; '.join(reasons))
        return cls(**values)

    @property
    def threshold(self) -> Optional[float]:
        return None if math.isnan(self.label_threshold) else self.label_threshold


# ------------------------------------------------------------------------------ entry syntax
_FUNC = re.compile(r'^(min|max|mean)\((.*)\)$')
_SEGMENT = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)(?:\[([^\]]*)\])?')
_INT = re.compile(r'^[+-]?\d+$')


@dataclass(frozen=True)
class EntrySpec:
    """An entry's syntax, before its type is known."""
    text: str
    topic: str
    type_name: str           # normalized: pkg/msg/Type
    expr: str                # as written, for names
    func: Optional[str]      # 'min' | 'max' | 'mean' | None
    segments: Tuple[Tuple[str, Optional[str]], ...]   # (field, raw index or None)
    what: str = 'features'

    @property
    def index_kind(self) -> Optional[str]:
        return _index_kind(self.segments[-1][1])


def _index_kind(raw: Optional[str]) -> Optional[str]:
    if raw is None:
        return None
    s = raw.strip()
    if ':' in s:
        return 'slice'
    if _INT.match(s):
        return 'int'
    return 'name'


def normalize_type(type_name: str) -> str:
    parts = type_name.split('/')
    if len(parts) == 2:
        parts = [parts[0], 'msg', parts[1]]
    if len(parts) != 3 or parts[1] != 'msg' or not all(parts):
        raise ValueError(type_name)
    return '/'.join(parts)


def parse_entry(text: str, what: str = 'features') -> EntrySpec:
    """The syntax of one entry; ConfigError naming it where it is not ``topic type path``."""
    if not isinstance(text, str):
        raise ConfigError(f'{what} entry {text!r} is not a string')
    parts = text.split(None, 2)
    if len(parts) != 3:
        raise ConfigError(f"{what} entry {text!r}: expected '<topic> <pkg/msg/Type> <path>', "
                          "e.g. '/scan sensor_msgs/msg/LaserScan min(ranges)'")
    topic, type_name, expr = parts
    expr = expr.strip()
    if not re.match(r'^[~/A-Za-z_][~/A-Za-z0-9_{}]*$', topic) or '//' in topic:
        raise ConfigError(f'{what} entry {text!r}: {topic!r} is not a topic name')
    try:
        type_name = normalize_type(type_name)
    except ValueError:
        raise ConfigError(f"{what} entry {text!r}: {type_name!r} is not a message type "
                          "'pkg/msg/Type'") from None
    func = None
    path = expr.replace(' ', '')
    m = _FUNC.match(path)
    if m:
        func, path = m.group(1), m.group(2)
    segments = []
    pos = 0
    while True:
        m = _SEGMENT.match(path, pos)
        if not m:
            raise ConfigError(f'{what} entry {text!r}: cannot read the path {expr!r} at '
                              f'{path[pos:]!r} (fields joined by dots, [index], [a:b:c], '
                              '[name], min/max/mean(...))')
        segments.append((m.group(1), m.group(2)))
        pos = m.end()
        if pos == len(path):
            break
        if path[pos] != '.':
            raise ConfigError(f'{what} entry {text!r}: cannot read the path {expr!r} at '
                              f'{path[pos:]!r}')
        pos += 1
    for name, raw in segments:
        if raw is not None and _index_kind(raw) == 'slice':
            try:
                _parse_slice(raw)
            except ValueError as err:
                raise ConfigError(f'{what} entry {text!r}: [{raw}]: {err}') from None
        elif raw is not None and not raw.strip():
            raise ConfigError(f'{what} entry {text!r}: {name}[] needs an index')
    return EntrySpec(text, topic, type_name, expr, func, tuple(segments), what)


def _parse_slice(raw: str) -> slice:
    parts = raw.split(':')
    if len(parts) > 3:
        raise ValueError('a slice is start:stop:step')
    nums = []
    for p in parts:
        p = p.strip()
        if p and not _INT.match(p):
            raise ValueError(f'{p!r} is not an integer')
        nums.append(int(p) if p else None)
    while len(nums) < 3:
        nums.append(None)
    if nums[2] is not None and nums[2] <= 0:
        raise ValueError('the step must be > 0')
    return slice(*nums)


def _slice_width(sl: slice, size: Optional[int]) -> Optional[int]:
    """Elements a slice takes from an array of ``size`` (None: unbounded; then None when it
    depends on the message's length)."""
    if size is not None:
        return len(range(*sl.indices(size)))
    start, stop, step = sl.start or 0, sl.stop, sl.step or 1
    if stop is None:
        return len(range(start, 0, step)) if start < 0 else None
    if (start >= 0) != (stop >= 0):
        return None
    return len(range(start, stop, step))


# ------------------------------------------------------------------------------ types
def default_resolver(type_name: str):
    """'pkg/msg/Type' -> the installed Python message class (``pkg.msg.Type``)."""
    pkg, _, name = type_name.split('/')
    try:
        module = importlib.import_module(f'{pkg}.msg')
    except ImportError:
        raise ConfigError(f'no interface package {pkg!r} is installed (import {pkg}.msg '
                          'failed): install it, and source its setup file') from None
    cls = getattr(module, name, None)
    if cls is None or not hasattr(cls, 'get_fields_and_field_types'):
        raise ConfigError(f'package {pkg!r} has no message type {name!r}')
    return cls


def _field_type(t: str) -> Tuple[str, str, Optional[int]]:
    """'sequence<float>' -> ('seq', 'float', None); 'double[9]' -> ('array', 'double', 9);
    'std_msgs/Header' -> ('scalar', 'std_msgs/Header', None)."""
    m = re.fullmatch(r'sequence<\s*([^,>]+?)\s*(?:,\s*\d+\s*)?>', t)
    if m:
        return 'seq', m.group(1), None
    m = re.fullmatch(r'(.+)\[(\d+)\]', t)
    if m:
        return 'array', m.group(1), int(m.group(2))
    return 'scalar', t, None


def _is_message(elem: str) -> bool:
    return '/' in elem


def _message_type(elem: str) -> str:
    parts = elem.split('/')
    return f'{parts[0]}/msg/{parts[-1]}'


def _fields(cls) -> Dict[str, str]:
    try:
        return dict(cls.get_fields_and_field_types())
    except (AttributeError, TypeError):
        raise ConfigError(f'{cls!r} is not a ROS message class '
                          '(no get_fields_and_field_types())') from None


def _resolve(resolve, type_name: str, text: str, what: str):
    try:
        return resolve(type_name)
    except ConfigError as err:
        raise ConfigError(f'{what} entry {text!r}: {err}') from None
    except (KeyError, LookupError, ImportError, AttributeError, ValueError) as err:
        raise ConfigError(f'{what} entry {text!r}: cannot resolve type {type_name!r} '
                          f'({type(err).__name__}: {err})') from None


# ------------------------------------------------------------------------------ getters
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
    root = _resolve(resolve, spec.type_name, text, what)
    cls = root
    cls_name = spec.type_name
    steps: List[Tuple[str, Any]] = []
    parent_fields: Dict[str, str] = {}
    walked = ''
    last = len(spec.segments) - 1
    leaf = None
    for i, (name, raw) in enumerate(spec.segments):
        fields = _fields(cls)
        if name not in fields:
            raise fail(f'{cls_name} has no field {name!r}'
                       + (f' (in {walked})' if walked else '')
                       + f'; its fields: {", ".join(fields) or "(none)"}')
        kind, elem, size = _field_type(fields[name])
        here = f'{walked}.{name}' if walked else name
        ikind = _index_kind(raw)
        if i < last:
            if not _is_message(elem):
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
            cls_name = _message_type(elem)
            cls = _resolve(resolve, cls_name, text, what)
            walked = f'{here}[{raw}]' if raw is not None else here
            continue
        # the leaf
        parent_fields = fields
        if _is_message(elem):
            sub = ', '.join(_fields(_resolve(resolve, _message_type(elem), text, what)))
            raise fail(f'{here} is a message ({elem}): name one of its fields ({sub})')
        if elem not in NUMERIC_TYPES:
            raise fail(f'{here} is a {fields[name]}, not a number')
        if spec.func is not None:
            if kind == 'scalar':
                raise fail(f'{spec.func}() needs an array field; {here} is one {elem}')
            if ikind not in (None, 'slice'):
                raise fail(f'{spec.func}() takes a whole array or a slice, not {name}[{raw}]')
            sl = _parse_slice(raw) if ikind == 'slice' else None
            if sl is not None and size is not None and _slice_width(sl, size) == 0:
                raise fail(f'{name}[{raw}] selects no element of {size}')
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
            sl = _parse_slice(raw)
            width = _slice_width(sl, size)
            if width is None:
                raise fail(f'{name}[{raw}]: the number of elements must be known at start: give '
                           f'the slice its end, e.g. {name}[0:360:90]')
            if width == 0:
                raise fail(f'{name}[{raw}] selects no element')
            leaf = ('slice', name, sl, width)
        else:
            key = raw.strip().strip('\'"')
            ntype = parent_fields.get('name', '')
            nkind, nelem, _ = _field_type(ntype) if ntype else ('', '', None)
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
    label = _display(spec)
    extract, names, width = _LEAVES[leaf[0]](leaf, parent_get, value_get, ranges, label, spec)
    return CompiledEntry(spec, root, names, width, extract)


def _display(spec: EntrySpec) -> str:
    expr = spec.expr.replace(' ', '')
    topic = spec.topic.rstrip('/')
    if spec.func:
        return f'{spec.func}({topic}/{expr[len(spec.func) + 1:-1]})'
    return f'{topic}/{expr}'


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


_LEAVES = {'scalar': _leaf_scalar, 'element': _leaf_element, 'named': _leaf_named,
           'slice': _leaf_slice, 'reduce': _leaf_reduce}


def _stamp_getter(cls) -> Optional[Callable[[Any], Optional[float]]]:
    fields = _fields(cls)
    kind, elem, _ = _field_type(fields.get('header', ''))
    if kind != 'scalar' or elem not in ('std_msgs/Header', 'std_msgs/msg/Header'):
        return None

    def stamp(msg):
        s = msg.header.stamp
        t = s.sec + s.nanosec * 1e-9
        return t if t else None  # a zero stamp is an unset one: arrival time then
    return stamp


# ------------------------------------------------------------------------------ the history
class _Times:
    """The ring's times in order, as a sequence ``bisect`` can search."""

    def __init__(self, ring: 'RowRing') -> None:
        self.ring = ring

    def __len__(self) -> int:
        return self.ring.count

    def __getitem__(self, i: int) -> float:
        r = self.ring
        return r.times[(r.start + i) % r.capacity]


class RowRing:
    """The newest ``capacity`` rows and their times (increasing), preallocated."""

    def __init__(self, capacity: int, width: int) -> None:
        self.capacity = capacity
        self.times = np.empty(capacity)
        self.rows = np.empty((capacity, width))
        self.start = 0
        self.count = 0
        self.dropped_newest_time = -math.inf  # the newest time ever pushed out

    def append(self, t: float, row: np.ndarray) -> None:
        if self.count == self.capacity:
            self.dropped_newest_time = self.times[self.start]
            self.start = (self.start + 1) % self.capacity
            self.count -= 1
        i = (self.start + self.count) % self.capacity
        self.times[i] = t
        self.rows[i] = row
        self.count += 1

    def forget_before(self, t: float) -> None:
        while self.count and self.times[self.start] < t:
            self.dropped_newest_time = self.times[self.start]
            self.start = (self.start + 1) % self.capacity
            self.count -= 1

    def newest_time(self) -> float:
        if not self.count:
            return -math.inf
        return float(self.times[(self.start + self.count - 1) % self.capacity])

    def nearest(self, t: float) -> Tuple[Optional[int], float]:
        """(physical index, |time - t|) of the row nearest ``t``; (None, inf) when empty."""
        if not self.count:
            return None, math.inf
        times = _Times(self)
        k = bisect.bisect_left(times, t)
        best, gap = None, math.inf
        for j in (k - 1, k):
            if 0 <= j < self.count:
                d = abs(times[j] - t)
                if d < gap:
                    best, gap = (self.start + j) % self.capacity, d
        return best, gap

    def clear(self) -> None:
        self.start = self.count = 0
        self.dropped_newest_time = -math.inf


# ------------------------------------------------------------------------------ the assembler
@dataclass
class _Topic:
    type_name: str
    cls: Any
    stamp: Optional[Callable[[Any], Optional[float]]]
    features: List[Tuple[int, int, int, Callable[[Any], Any]]]   # (entry, lo, hi, extract)
    label: Optional[Callable[[Any], float]] = None


class Assembler:
    """Rows from the newest value of every input, and labels joined to the rows of their time.

    ``resolve`` maps 'pkg/msg/Type' to a class with ``get_fields_and_field_types()``.
    ``on_refusal(kind, reason)`` is called for every bad message (the node logs it, throttled);
    ``on_clear(reason)`` once when a backward time jump drops everything.
    """

    def __init__(self, cfg: AssemblerConfig, resolve=default_resolver,
                 on_refusal: Optional[Callable[[str, str], None]] = None,
                 on_clear: Optional[Callable[[str], None]] = None) -> None:
        self.cfg = cfg
        self._on_refusal = on_refusal
        self._on_clear = on_clear
        self._topics: Dict[str, _Topic] = {}
        self.entries: List[CompiledEntry] = []
        names: List[str] = []
        for text in cfg.features:
            entry = compile_entry(parse_entry(text), resolve)
            topic = self._topic_for(entry)
            lo = len(names)
            names += entry.names
            topic.features.append((len(self.entries), lo, len(names), entry.extract))
            self.entries.append(entry)
        self.label_entry: Optional[CompiledEntry] = None
        if cfg.label:
            spec = parse_entry(cfg.label, what='label')
            entry = compile_entry(spec, resolve)
            if entry.width != 1 or spec.index_kind == 'slice':
                raise ConfigError(f'label entry {cfg.label!r} is not one scalar')
            self._topic_for(entry).label = entry.extract
            self.label_entry = entry
        self.feature_names = names
        self.num_features = len(names)
        self.input_names = [_display(e.spec) for e in self.entries]
        self.inputs: Dict[str, str] = {t: v.type_name for t, v in self._topics.items()}
        self.classes: Dict[str, Any] = {t: v.cls for t, v in self._topics.items()}
        n = self.num_features
        self._values = np.zeros(n)
        self._stamps = [-math.inf] * len(self.entries)
        capacity = max(2, int(math.ceil(cfg.history * cfg.rate)) + 2)
        self._ring = RowRing(capacity, n)
        self._pending: List[Tuple[float, float, float]] = []   # (target, stamp, label)
        self._last_now = -math.inf
        # counters
        self.ticks = 0
        self.rows = 0
        self.rows_stale = 0
        self.stale_by_input: Dict[str, int] = {}
        self.messages: Dict[str, int] = {t: 0 for t in self._topics}
        self.last_arrival: Dict[str, Optional[float]] = {t: None for t in self._topics}
        self.refused: Dict[str, int] = {}
        self.last_refusal = ''
        self.labels_received = 0
        self.labels_joined = 0
        self.unmatched: Dict[str, int] = {}
        self.time_jumps = 0

    def _topic_for(self, entry: CompiledEntry) -> _Topic:
        spec = entry.spec
        topic = self._topics.get(spec.topic)
        if topic is None:
            topic = _Topic(spec.type_name, entry.cls, _stamp_getter(entry.cls), [])
            self._topics[spec.topic] = topic
        elif topic.type_name != spec.type_name:
            raise ConfigError(f'{spec.what} entry {spec.text!r}: topic {spec.topic} is '
                              f'{topic.type_name} in an earlier entry (one type per topic)')
        return topic

    # ---------------------------------------------------------------------------- time
    def _check_time(self, now: float) -> None:
        if now < self._last_now:
            self.clear(f'time jumped back from {self._last_now:.3f} s to {now:.3f} s')
        self._last_now = now

    def clear(self, reason: str = 'cleared') -> None:
        """Drop every held value, row and waiting label (time jumped back)."""
        self._values[:] = 0.0
        self._stamps = [-math.inf] * len(self.entries)
        self._ring.clear()
        if self._pending:
            self._count(self.unmatched, 'dropped by a time jump', len(self._pending))
        self._pending = []
        self._last_now = -math.inf
        self.time_jumps += 1
        if self._on_clear is not None:
            self._on_clear(reason)

    # ---------------------------------------------------------------------------- input
    @staticmethod
    def _count(d: Dict[str, int], key: str, n: int = 1) -> None:
        d[key] = d.get(key, 0) + n

    def _refuse(self, kind: str, reason: str) -> None:
        self._count(self.refused, kind)
        self.last_refusal = reason
        if self._on_refusal is not None:
            self._on_refusal(kind, reason)

    def on_message(self, topic: str, msg: Any, now: float) -> List[np.ndarray]:
        """Take one message received at ``now``; return the labeled rows (N + 1) it settles."""
        self._check_time(now)
        t = self._topics.get(topic)
        if t is None:
            raise KeyError(f'{topic} is not an input of this assembler')
        self.messages[topic] += 1
        self.last_arrival[topic] = now
        when = now
        if t.stamp is not None:
            try:
                stamp = t.stamp(msg)
            except (AttributeError, TypeError) as err:
                self._refuse('wrong type', f'{topic}: no header.stamp ({err})')
                return []
            if stamp is not None:
                when = stamp
                if stamp > now + self.cfg.max_age:
                    self._refuse('future stamp', f'{topic}: stamped {stamp:.3f} s, '
                                 f'{stamp - now:.3f} s ahead of the clock ({now:.3f} s)')
                    return []
        values, stamps = self._values, self._stamps
        for k, lo, hi, extract in t.features:
            try:
                v = extract(msg)
            except MessageFault as fault:
                self._refuse(fault.kind, str(fault))
                continue
            except IndexError as err:  # an array of messages on the way is too short
                self._refuse('index out of range', f'{self.input_names[k]}: {err}')
                continue
            except (AttributeError, TypeError, ValueError) as err:
                self._refuse('wrong type', f'{self.input_names[k]}: {type(err).__name__}: {err}')
                continue
            if hi - lo == 1:
                values[lo] = v
            else:
                values[lo:hi] = v
            stamps[k] = when
        if t.label is None:
            return []
        return self._take_label(t.label, msg, when, now)

    def _take_label(self, extract, msg, when: float, now: float) -> List[np.ndarray]:
        name = _display(self.label_entry.spec)
        try:
            v = extract(msg)
        except MessageFault as fault:
            self._refuse(f'label {fault.kind}', str(fault))
            return []
        except IndexError as err:
            self._refuse('label index out of range', f'{name}: {err}')
            return []
        except (AttributeError, TypeError, ValueError) as err:
            self._refuse('label wrong type', f'{name}: {type(err).__name__}: {err}')
            return []
        cfg = self.cfg
        threshold = cfg.threshold
        if threshold is not None:
            y = 1.0 if v > threshold else 0.0
        else:
            lo, hi = cfg.label_range
            if not lo <= v <= hi:
                self._refuse('label range', f'{name} is {v:g}, outside label_range '
                             f'[{lo:g}, {hi:g}] (set label_threshold, or label_range for a '
                             'linear model)')
                return []
            y = float(v)
        self.labels_received += 1
        if len(self._pending) >= cfg.max_pending_labels:
            self._pending.pop(0)
            self._count(self.unmatched, 'too many waiting')
        self._pending.append((when - cfg.label_delay, when, y))
        return self._settle(now)

    # ---------------------------------------------------------------------------- rows
    def tick(self, now: float) -> Optional[np.ndarray]:
        """The row due at this tick (a copy), or None when an input is stale (counted)."""
        self._check_time(now)
        self.ticks += 1
        max_age = self.cfg.max_age
        stale = False
        for k, s in enumerate(self._stamps):
            if not now - s <= max_age:
                stale = True
                name = self.input_names[k]
                self.stale_by_input[name] = self.stale_by_input.get(name, 0) + 1
        if stale:
            self.rows_stale += 1
            return None
        row = self._values.copy()
        self._ring.append(now, row)
        self.rows += 1
        return row

    def flush(self, now: float) -> List[np.ndarray]:
        """The labeled rows that can be settled now (call after ``tick``)."""
        self._check_time(now)
        return self._settle(now) if self._pending else []

    def _settle(self, now: float) -> List[np.ndarray]:
        ring = self._ring
        ring.forget_before(now - self.cfg.history)
        newest = ring.newest_time()
        gap = self.cfg.max_join_gap
        out: List[np.ndarray] = []
        keep = []
        for item in self._pending:
            target, _stamp, y = item
            if newest < target and now - target <= gap:
                keep.append(item)   # its row may still come
                continue
            i, d = ring.nearest(target)
            if i is None or d > gap:
                if target < ring.dropped_newest_time + gap:
                    self._count(self.unmatched, 'older than history')
                else:
                    self._count(self.unmatched, 'no row within max_join_gap')
                continue
            sample = np.empty(self.num_features + 1)
            sample[:-1] = ring.rows[i]
            sample[-1] = y
            out.append(sample)
            self.labels_joined += 1
        self._pending = keep
        return out

    # ---------------------------------------------------------------------------- counters
    def counters(self) -> Dict[str, Any]:
        return {
            'features': self.num_features,
            'ticks': self.ticks,
            'rows published': self.rows,
            'rows stale': self.rows_stale,
            'stale': dict(self.stale_by_input),
            'messages': dict(self.messages),
            'last arrival': dict(self.last_arrival),
            'refused': dict(self.refused),
            'refused total': sum(self.refused.values()),
            'last refusal': self.last_refusal,
            'labels received': self.labels_received,
            'labels joined': self.labels_joined,
            'labels unmatched': sum(self.unmatched.values()),
            'unmatched': dict(self.unmatched),
            'labels waiting': len(self._pending),
            'rows held': self._ring.count,
            'time jumps': self.time_jumps,
        }
