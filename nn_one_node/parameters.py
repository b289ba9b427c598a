"""Typed, documented parameter tables and their checks, without ROS.

Each ``ParamSpec`` is one parameter's single source of truth: its name, default, description,
range, read-only flag and a pure ``check(value, values)`` that returns a reason or None. The nodes
declare these tables (``ros.params``), the docs render them (``tools.docs``), and ``nn_one_bag``
reads params files with them (``values_from_section``): nothing is written twice.

>>> spec = ParamSpec('rate', 10.0, 'Rows per second.', float_range=(0.001, 1000.0),
...                  check=positive_number)
>>> judge([spec], {'rate': 10.0}, {'rate': -1.0})[0]
['rate must be a finite number > 0, got -1.0']
>>> values_from_section([spec], {'rate': 5}, 'assembler')
Traceback (most recent call last):
...
ValueError: assembler rate must be a double (write 5.0, as ROS requires), got 5
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

# check(value, values) -> reason or None; ``values`` are all the node's values after the change.
Check = Callable[[Any, Mapping[str, Any]], Optional[str]]


@dataclass(frozen=True)
class ParamSpec:
    name: str
    default: Any
    description: str
    read_only: bool = False
    int_range: Optional[Tuple[int, int]] = None
    float_range: Optional[Tuple[float, float]] = None
    constraints: str = ''
    check: Optional[Check] = None
    # The parameter's type where the default does not show it (an empty list): 'string[]'.
    type_name: str = ''


# ------------------------------------------------------------------------------- reusable checks
def finite_number(value: Any, _values: Mapping[str, Any]) -> Optional[str]:
    if not math.isfinite(value):
        return f'must be a finite number, got {value}'
    return None


def positive_number(value: Any, _values: Mapping[str, Any]) -> Optional[str]:
    if not math.isfinite(value) or value <= 0.0:
        return f'must be a finite number > 0, got {value}'
    return None


def non_negative_number(value: Any, _values: Mapping[str, Any]) -> Optional[str]:
    if not math.isfinite(value) or value < 0.0:
        return f'must be a finite number >= 0, got {value}'
    return None


def off_or_at_least(minimum: float) -> Check:
    """0 (off), or a finite number >= ``minimum``: for rates and periods that become timers, where
    a tiny positive value would overflow the timer's int64 nanoseconds or spin a core."""
    def check(value: Any, _values: Mapping[str, Any]) -> Optional[str]:
        if not math.isfinite(value) or value < 0.0 or 0.0 < value < minimum:
            return f'must be 0 (off) or at least {minimum:g}, got {value}'
        return None
    return check


def one_of(*choices: str) -> Check:
    def check(value: Any, _values: Mapping[str, Any]) -> Optional[str]:
        if value not in choices:
            return f'must be one of {", ".join(repr(c) for c in choices)}, got {value!r}'
        return None
    return check


def weights_vector(value: Sequence[float], values: Mapping[str, Any]) -> Optional[str]:
    n = values.get('num_features')
    if n is not None and len(value) != n:
        return f'must have num_features = {n} values, got {len(value)}'
    if not all(math.isfinite(v) for v in value):
        return 'must contain only finite numbers (no NaN or inf)'
    return None


NUM_FEATURES = ParamSpec(
    'num_features', 1, 'Number of input features N per sample. Read at start.',
    read_only=True, int_range=(1, 1 << 20))


# ----------------------------------------------------------------------------------- judging
def check_all(specs: Iterable[ParamSpec], values: Mapping[str, Any],
              names: Iterable[str]) -> List[str]:
    """Reasons, one per failing parameter among ``names``, judged against all ``values``."""
    by_name = {s.name: s for s in specs}
    reasons = []
    for name in names:
        spec = by_name.get(name)
        if spec is None or spec.check is None:
            continue
        reason = spec.check(values[name], values)
        if reason:
            reasons.append(f'{name} {reason}')
    return reasons


def judge(specs: Iterable[ParamSpec], current: Mapping[str, Any],
          changes: Mapping[str, Any]) -> Tuple[List[str], Dict[str, Any]]:
    """A proposed change judged against the current values: (reasons, merged values). Names
    that are not in ``current`` (e.g. QoS overrides) pass through untouched; nothing changes."""
    specs = list(specs)
    merged = dict(current)
    changed = [name for name in changes if name in merged]
    merged.update({name: changes[name] for name in changed})
    return check_all(specs, merged, changed), merged


def values_from_section(specs: Sequence[ParamSpec], section: Mapping[str, Any], who: str,
                        known: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """A node's values from its params-file section as ROS would take them: the table's
    defaults, overridden by the file (types as ROS requires them: 1.0 for a double, ranges),
    then every check. ValueError names the entry. ``known``: values fixed already
    (num_features)."""
    values = {s.name: s.default for s in specs}
    values.update(known or {})
    for spec in specs:
        if spec.name not in section or spec.name in (known or {}):
            continue
        value = section[spec.name]
        if isinstance(spec.default, float) and isinstance(value, int) \
                and not isinstance(value, bool):
            raise ValueError(f'{who} {spec.name} must be a double (write {value}.0, as ROS '
                             f'requires), got {value!r}')
        if type(value) is not type(spec.default) and not (
                isinstance(spec.default, list) and isinstance(value, list)):
            raise ValueError(f'{who} {spec.name} must be of type '
                             f'{type(spec.default).__name__}, got {value!r}')
        lo_hi = spec.int_range or spec.float_range
        if lo_hi is not None and not (lo_hi[0] <= value <= lo_hi[1]):
            raise ValueError(f'{who} {spec.name} must lie in [{lo_hi[0]}, {lo_hi[1]}], '
                             f'got {value!r}')
        values[spec.name] = value
    reasons = check_all(specs, values, [s.name for s in specs])
    if reasons:
        raise ValueError(f'{who} parameters: ' + '; '.join(reasons))
    return values
