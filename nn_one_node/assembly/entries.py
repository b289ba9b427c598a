"""The entry grammar: one input of the assembler, ``'<topic> <pkg/msg/Type> <expression>'``,
read before its message type is known. The expression is

* ``twist.twist.linear.x``: a numeric field, nested to any depth (float, int; bool gives 0/1);
* ``ranges[0]``, ``ranges[-1]``: an element of an array field; ``transforms[0].transform.x``
  indexes an array of messages on the way;
* ``ranges[0:360:90]``: a slice, one feature per element (its size must be known at start: give
  its end, or a negative start, on a sequence of unbounded length);
* ``effort[left_wheel_joint]``: the element at the position of that name in the ``name`` array
  of the same message (JointState); the names may come in any order from message to message;
* ``min(ranges)``, ``max(ranges)``, ``mean(ranges)``, ``mean(ranges[0:90])``: over an array
  field, NaN ignored;
* ``min(ranges@-30:30)``: over a sector of a scan chosen by angle, in degrees, which may wrap
  around the array's ends (``sector.Sector``); only inside min/max/mean.

An entry may end with options, ``name=value``: ``max_age=2.0`` gives its input (its topic) its
own max_age in seconds, e.g. ``'battery sensor_msgs/msg/BatteryState voltage max_age=2.0'``
for a 1 Hz battery among 50 Hz sensors.

``parse_entry`` checks only the syntax (ConfigError naming the entry); ``getters.compile_entry``
checks it against the type's fields and turns it into a getter.

>>> spec = parse_entry('/scan sensor_msgs/LaserScan mean(ranges[0:90])')
>>> spec.topic, spec.type_name, spec.func, spec.segments, spec.index_kind
('/scan', 'sensor_msgs/msg/LaserScan', 'mean', (('ranges', '0:90'),), 'slice')
>>> spec.display_name
'mean(/scan/ranges[0:90])'
>>> parse_entry('/joints sensor_msgs/msg/JointState effort[left]').index_kind
'name'
>>> spec = parse_entry('scan sensor_msgs/msg/LaserScan min(ranges@-30:30)')
>>> spec.sector, spec.display_name
((-30.0, 30.0), 'min(scan/ranges@-30:30)')
>>> spec = parse_entry('battery sensor_msgs/msg/BatteryState voltage max_age=2.0')
>>> spec.max_age, spec.display_name
(2.0, 'battery/voltage')
>>> syntax_width(parse_entry('/scan sensor_msgs/msg/LaserScan ranges[0:360:90]'))
4
>>> parse_entry('/odom nav_msgs/msg/Odometry twist..x')  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
nn_one_node.assembly.errors.ConfigError: ...: cannot read the path 'twist..x' at '.x' (...)
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from nn_one_node.assembly.errors import ConfigError
from nn_one_node.assembly.sector import parse_angles
from nn_one_node.names import InvalidName, validate_topic_name

REDUCTIONS = ('min', 'max', 'mean')
_FUNC = re.compile(r'^(' + '|'.join(REDUCTIONS) + r')\((.*)\)$')
_SEGMENT = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)(?:\[([^\]]*)\])?')
_INT = re.compile(r'^[+-]?\d+$')
_OPTION = re.compile(r'\s+([A-Za-z_][A-Za-z0-9_]*)=(\S*)$')   # a trailing name=value
OPTIONS = ('max_age',)


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
    sector: Optional[Tuple[float, float]] = None      # ranges@from:to, degrees
    max_age: Optional[float] = None                  # the max_age=... option: its own

    @property
    def index_kind(self) -> Optional[str]:
        return index_kind(self.segments[-1][1])

    @property
    def display_name(self) -> str:
        """The entry's readable name: ``/topic/path``, or ``func(/topic/path)``."""
        expr = self.expr.replace(' ', '')
        topic = self.topic.rstrip('/')
        if self.func:
            return f'{self.func}({topic}/{expr[len(self.func) + 1:-1]})'
        return f'{topic}/{expr}'


def index_kind(raw: Optional[str]) -> Optional[str]:
    """What an index ``[raw]`` is: None (no index), 'slice', 'int' or 'name'."""
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
    expr, options = _options(expr.strip(), text, what)
    try:
        validate_topic_name(topic)  # rcl's rules, so the node can subscribe to what passes
    except InvalidName as err:
        raise ConfigError(f'{what} entry {text!r}: {err}') from None
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
    sector = None
    head, at, raw = path.rpartition('@')
    if at and not set(raw) & set('[]'):   # not a '@' inside a [name]
        path = head
        if func is None:
            raise ConfigError(f'{what} entry {text!r}: a sector by angle ({expr}) is read only '
                              f'inside min/max/mean, e.g. min({expr}): it holds many beams')
        try:
            sector = parse_angles(raw)
        except ValueError as err:
            raise ConfigError(f'{what} entry {text!r}: @{raw}: {err} (a sector is '
                              '<array>@<from>:<to> in degrees, e.g. min(ranges@-30:30))') from None
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
        if raw is not None and index_kind(raw) == 'slice':
            try:
                parse_slice(raw)
            except ValueError as err:
                raise ConfigError(f'{what} entry {text!r}: [{raw}]: {err}') from None
        elif raw is not None and not raw.strip():
            raise ConfigError(f'{what} entry {text!r}: {name}[] needs an index')
    if sector is not None and segments[-1][1] is not None:
        raise ConfigError(f'{what} entry {text!r}: a sector picks beams by angle from the whole '
                          f'array: write {segments[-1][0]}@..., without [{segments[-1][1]}]')
    return EntrySpec(text, topic, type_name, expr, func, tuple(segments), what, sector,
                     options.get('max_age'))


def _options(expr: str, text: str, what: str) -> Tuple[str, Dict[str, float]]:
    """The path without its trailing ``name=value`` options, and the options."""
    options: Dict[str, float] = {}
    while True:
        m = _OPTION.search(expr)
        if not m:
            return expr, options
        name, raw = m.group(1), m.group(2)
        expr = expr[:m.start()]
        if name not in OPTIONS:
            raise ConfigError(f'{what} entry {text!r}: unknown option {name!r} (an entry takes '
                              'max_age=<seconds>)')
        if name in options:
            raise ConfigError(f'{what} entry {text!r}: {name} is given twice')
        if what == 'label':
            raise ConfigError(f'{what} entry {text!r}: max_age does not apply to the label: rows '
                              'do not wait for it (label_delay, max_join_gap and history say '
                              'how late it may come)')
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value > 0.0):
            raise ConfigError(f'{what} entry {text!r}: {name}={raw}: give seconds > 0, e.g. '
                              f'{name}=2.0')
        options[name] = value


def syntax_width(spec: EntrySpec) -> Optional[int]:
    """The features an entry makes, as its syntax says: a slice its elements (None where that
    needs the array's size, e.g. ``[::2]`` of a fixed-size array), any other entry one."""
    if spec.func is not None or spec.index_kind != 'slice':
        return 1
    return slice_width(parse_slice(spec.segments[-1][1]), None)


def parse_slice(raw: str) -> slice:
    """``'0:360:90'`` -> ``slice(0, 360, 90)``; ValueError where it is not a forward slice."""
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


def slice_width(sl: slice, size: Optional[int]) -> Optional[int]:
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
