"""The assembler's settings: its parameter table (each parameter's default, range, description
and check, written once), the checks, and ``AssemblerConfig``, whose defaults are the table's.

The node declares the table (``nn_one_node.ros.params.declare``), the docs render it and
``nn_one_bag`` reads a params file's ``assembler`` section through ``AssemblerConfig``, so the
three cannot disagree.

>>> cfg = AssemblerConfig.from_params({
...     'features': ['/odom nav_msgs/msg/Odometry twist.twist.linear.x'], 'rate': 50.0})
>>> cfg.rate, cfg.max_age == SPECS['max_age'].default
(50.0, True)
>>> AssemblerConfig.from_params({'features': [], 'rate': 0.0})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
nn_one_node.assembly.errors.ConfigError: features is empty: ...; rate must be a finite number ...
>>> LIVE   # what a set-parameters call may change while the node runs
('max_age', 'label_threshold', 'label_range', 'label_delay', 'max_join_gap')
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from nn_one_node.assembly.entries import parse_entry, syntax_width
from nn_one_node.assembly.errors import ConfigError
from nn_one_node.assembly.getters import compile_entry
from nn_one_node.parameters import (ParamSpec, non_negative_number, off_or_at_least,
                                    positive_number)

MAX_RATE_HZ = 1000.0
MIN_RATE_HZ = 1e-3
MAX_HISTORY_ROWS = 10_000_000
MAX_PENDING_LABELS = 10000  # labels waiting for their row; the oldest is dropped beyond
MAX_AGE_RANGE = (0.0, 86400.0)  # s: the max_age parameter's, and an entry's own max_age=


# Pure checks, shaped as nn_one_node.parameters expects (value, all values) -> reason or None: the
# node's parameter table holds them, and AssemblerConfig.from_params applies the same.
def check_features(value: Sequence[str], _values: Mapping[str, Any]) -> Optional[str]:
    if not value:
        return ("is empty: give one entry per input, '<topic> <pkg/msg/Type> <path>', e.g. "
                "'/odom nav_msgs/msg/Odometry twist.twist.linear.x'")
    ages: Dict[str, Any] = {}   # topic -> (its own max_age, the entry giving it)
    for text in value:
        try:
            spec = parse_entry(text)
        except ConfigError as err:
            return str(err)
        if spec.max_age is None:
            continue
        if spec.max_age > MAX_AGE_RANGE[1]:
            return f'entry {text!r}: max_age={spec.max_age:g} is more than {MAX_AGE_RANGE[1]:g} s'
        age, first = ages.setdefault(spec.topic, (spec.max_age, text))
        if age != spec.max_age:
            return (f'entries {first!r} and {text!r} give topic {spec.topic} two max_ages: '
                    'max_age belongs to a topic (its messages carry one stamp), give it once')
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


def check_threshold(value: float, _values: Mapping[str, Any]) -> Optional[str]:
    if math.isinf(value):
        return f'must be a finite number, or NaN for unset, got {value}'
    return None


def check_label_range(value: Sequence[float], _values: Mapping[str, Any]) -> Optional[str]:
    if len(value) != 2 or any(math.isnan(v) for v in value) or value[0] > value[1]:
        return f'must be two numbers [low, high] with low <= high, got {list(value)}'
    return None


def check_history(value: float, values: Mapping[str, Any]) -> Optional[str]:
    reason = positive_number(value, values)
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
    reason = non_negative_number(value, values)
    if reason:
        return reason
    # The rule of check_history seen from label_delay (only changed names are checked when a
    # parameter is set at run time).
    history = values.get('history', DEFAULTS['history'])
    need = values.get('label_delay', 0.0) + values.get('max_join_gap', 0.0)
    if values.get('label') and history < need:
        return (f'makes label_delay + max_join_gap = {need:g} s, more than history '
                f'({history:g} s): the rows a label is for would be gone when it arrives')
    return None


def check_gap(value: float, values: Mapping[str, Any]) -> Optional[str]:
    # history >= label_delay + max_join_gap is said by label_delay's and history's checks
    return non_negative_number(value, values)


def param_specs() -> List[ParamSpec]:
    """The assembler node's parameter table, in the order the docs show it (the ROS layer adds
    ``executor``). A fresh list each call: the defaults may be lists."""
    return [
        ParamSpec('features', [],
                  "One entry per input, '<topic> <pkg/msg/Type> <path>': a numeric field "
                  "('twist.twist.linear.x'), an element ('ranges[0]', 'ranges[-1]'), a slice "
                  "('ranges[0:360:90]', one feature per element), an element by joint name "
                  "('effort[left_wheel_joint]'), or 'min(ranges)' / 'max(...)' / 'mean(...)', "
                  "also over a sector by angle in degrees ('min(ranges@-30:30)'). A trailing "
                  "'max_age=2.0' gives the entry's topic its own max_age. "
                  'Feature order is entry order. Read at start.',
                  read_only=True, type_name='string[]', constraints='at least one entry',
                  check=check_features),
        ParamSpec('feature_names', [],
                  'One readable name per feature, in row order: filled by the node at start '
                  '(set values are ignored).', read_only=True, type_name='string[]'),
        ParamSpec('rate', 20.0, 'Rows per second (ROS time) on features, each built from '
                  'the newest value of every input. Read at start.', read_only=True,
                  float_range=(MIN_RATE_HZ, MAX_RATE_HZ), check=check_rate),
        ParamSpec('max_age', 0.5, 'Seconds: a row is published only when every '
                  "input's value is younger than this (by header.stamp where the message has "
                  'one, else by arrival on the node clock); otherwise it is skipped and counted '
                  "stale, by input. An entry's own 'max_age=...' overrides it for its topic.",
                  float_range=MAX_AGE_RANGE, constraints='> 0',
                  check=positive_number),
        ParamSpec('label', '', "The label, one scalar in the features' syntax, e.g. "
                  "'/slip std_msgs/msg/Bool data'; empty: no labeled samples. Read at start.",
                  read_only=True, check=check_label),
        ParamSpec('label_threshold', math.nan, 'NaN: unset, the value is the label '
                  '(and must be in label_range); a number: the label is 1.0 when value > '
                  'threshold, else 0.0.', constraints='NaN or finite', check=check_threshold),
        ParamSpec('label_range', [0.0, 1.0], 'Without label_threshold, labels '
                  'outside [low, high] are refused and counted: [0, 1] for the sigmoid model; '
                  'for a linear trainer e.g. [-1.0e100, 1.0e100] (its limit).',
                  constraints='[low, high], low <= high', check=check_label_range),
        ParamSpec('label_delay', 0.0, 'Seconds: a label stamped t is the label of '
                  'the row nearest t - label_delay.', float_range=(0.0, 86400.0),
                  constraints='label_delay + max_join_gap <= history', check=check_delay),
        ParamSpec('max_join_gap', 0.05, 'Seconds: a label with no row this near to '
                  'its moment is counted unmatched (half the row period or more joins every '
                  'label while no input is stale).', float_range=(0.0, 86400.0),
                  check=check_gap),
        ParamSpec('history', 10.0, 'Seconds of rows kept for late labels (a ring of '
                  'history x rate rows). Read at start.', read_only=True,
                  float_range=(0.0, 86400.0), constraints='> 0, >= label_delay + max_join_gap',
                  check=check_history),
        ParamSpec('diagnostics_period', 1.0, 'Seconds between /diagnostics messages (ROS '
                  'time); 0 disables them. Read at start.', read_only=True,
                  float_range=(0.0, 3600.0), constraints='0 or >= 0.01',
                  check=off_or_at_least(0.01)),
    ]


SPECS: Dict[str, ParamSpec] = {s.name: s for s in param_specs()}
NODE_ONLY = ('feature_names', 'diagnostics_period')  # the node's, not the core's
DEFAULTS: Dict[str, Any] = {
    **{name: s.default for name, s in SPECS.items() if name not in NODE_ONLY},
    'max_pending_labels': MAX_PENDING_LABELS}


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

    def set_live(self, name: str, value: Any) -> None:
        """A change of one of ``LIVE`` (checked already), in force from the next message or
        tick."""
        setattr(self, name, list(value) if name == 'label_range' else float(value))


# The table's checks in the order of AssemblerConfig's fields (from_params reports in it).
CHECKS: Dict[str, Callable[[Any, Mapping[str, Any]], Optional[str]]] = {
    f.name: SPECS[f.name].check for f in fields(AssemblerConfig)
    if f.name in SPECS and SPECS[f.name].check is not None}
# What the core reads at every message or tick: a change of these applies from the next one.
LIVE = tuple(f.name for f in fields(AssemblerConfig)
             if f.name in SPECS and not SPECS[f.name].read_only)


# ------------------------------------------------------------------------- the feature count
def count_features(entries: Sequence[str], resolve: Optional[Callable[[str], Any]] = None
                   ) -> int:
    """The number of features ``entries`` make (the predictor's and trainer's num_features):
    a slice counts its elements, every other entry one. From the syntax alone, without ROS,
    unless a slice's width depends on its array's size (``[::2]`` of a fixed-size array): then
    ``resolve`` ('pkg/msg/Type' -> message class, as ``Assembler`` takes it) gives the size, and
    without it that is a ConfigError saying how to write the slice. A malformed entry is a
    ConfigError naming it."""
    total = 0
    for text in entries:
        spec = parse_entry(text)
        width = syntax_width(spec)
        if width is None and resolve is not None:
            width = compile_entry(spec, resolve).width
        if width is None:
            name, raw = spec.segments[-1]
            raise ConfigError(f'features entry {text!r}: {name}[{raw}] makes as many features '
                              'as the array has elements, which the entry does not say: give '
                              f'the slice its start and end, e.g. {name}[0:9:3]')
        if width == 0:
            raise ConfigError(f'features entry {text!r}: the slice selects no element')
        total += width
    return total


def derive_num_features(sections: Mapping[str, Mapping[str, Any]],
                        resolve: Optional[Callable[[str], Any]] = None) -> Optional[int]:
    """The num_features of the predictor and the trainer, derived from the assembler's entries.

    ``sections``: a params file's ros__parameters by node name (``'assembler'``,
    ``'predictor'``, ``'trainer'``, ...). None where the assembler's section lists no
    features. A num_features another section sets by hand to a different number is a
    ConfigError naming both numbers; ``resolve`` as ``count_features`` takes it.

    >>> entries = ['scan sensor_msgs/msg/LaserScan min(ranges@-30:30)',
    ...            'scan sensor_msgs/msg/LaserScan ranges[0:360:90]']
    >>> derive_num_features({'assembler': {'features': entries}, 'trainer': {}})
    5
    >>> derive_num_features({'assembler': {'features': entries},
    ...                      'predictor': {'num_features': 4}})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    nn_one_node.assembly.errors.ConfigError: num_features 4 in the predictor's section, but ...
    """
    entries = (sections.get('assembler') or {}).get('features') or []
    if not entries:
        return None
    if isinstance(entries, str) or not all(isinstance(t, str) for t in entries):
        raise ConfigError(f"the assembler's features must be a list of strings, got {entries!r}")
    n = count_features(entries, resolve)
    for node, params in sections.items():
        given = (params or {}).get('num_features') if node != 'assembler' else None
        if given is not None and (isinstance(given, bool) or given != n):
            raise ConfigError(f"num_features {given!r} in the {node}'s section, but the "
                              f"assembler's {len(entries)} entries make {n} features: leave "
                              f'num_features out (it is derived) or make it {n}')
    return n
