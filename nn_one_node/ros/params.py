"""One typed, documented table of parameters per node, and their validation.

Each ``ParamSpec`` carries what ``ros2 param describe`` shows (description, range, read-only) and a
pure ``check`` function. ``validate`` turns a proposed change into a ``SetParametersResult`` with a
reason; it never changes anything, so a refused change leaves the old values in force. The README's
parameter tables list the same entries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)

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

    def descriptor(self) -> ParameterDescriptor:
        d = ParameterDescriptor(description=self.description, read_only=self.read_only,
                                additional_constraints=self.constraints)
        if self.int_range is not None:
            d.integer_range = [IntegerRange(from_value=self.int_range[0],
                                            to_value=self.int_range[1], step=0)]
        if self.float_range is not None:
            d.floating_point_range = [FloatingPointRange(from_value=self.float_range[0],
                                                         to_value=self.float_range[1], step=0.0)]
        return d


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


# ------------------------------------------------------------------------------- node plumbing
NUM_FEATURES = ParamSpec(
    'num_features', 1, 'Number of input features N per sample. Read at start.',
    read_only=True, int_range=(1, 1 << 20))


def declare_sized(node, specs_for: Callable[[int], List[ParamSpec]], check: bool = True
                  ) -> Tuple[List[ParamSpec], Dict[str, Any]]:
    """Declare ``num_features`` first, then the table whose defaults depend on it (the weights).

    Returns (the whole table, its start-up values); raises ValueError as ``declare`` does.
    """
    n = declare(node, [NUM_FEATURES])['num_features']
    specs = [NUM_FEATURES] + specs_for(n)
    return specs, {'num_features': n,
                   **declare(node, specs[1:], known={'num_features': n}, check=check)}


def declare(node, specs: Iterable[ParamSpec], known: Optional[Mapping[str, Any]] = None,
            check: bool = True) -> Dict[str, Any]:
    """Declare every spec on ``node`` (overrides from params files and -p apply) and return values.

    ``known`` are values declared earlier that the checks may refer to (e.g. num_features).
    Raises ValueError with the reasons when the start-up values do not pass the checks, unless
    ``check`` is False (a managed node checks them when it is configured: ``checked_values``).
    """
    specs = list(specs)
    for spec in specs:
        node.declare_parameter(spec.name, _declared_value(spec), spec.descriptor())
    values = {s.name: _value_or_default(node, s) for s in specs}
    reasons = check_all(specs, {**(known or {}), **values}, [s.name for s in specs])
    if reasons and check:
        raise ValueError('invalid parameters at start: ' + '; '.join(reasons))
    return values


def checked_values(node, specs: Iterable[ParamSpec]) -> Dict[str, Any]:
    """The node's current values of ``specs``, every check passed; else ValueError with the
    reasons."""
    specs = list(specs)
    values = {s.name: _value_or_default(node, s) for s in specs}
    reasons = check_all(specs, values, [s.name for s in specs])
    if reasons:
        raise ValueError('invalid parameters: ' + '; '.join(reasons))
    return values


def _declared_value(spec: ParamSpec) -> Any:
    # rclpy cannot tell the type of an empty list (it declares a byte array): a string array
    # whose default is empty is declared by its type, statically typed, and left unset.
    if spec.type_name == 'string[]' and not spec.default:
        from rclpy.parameter import Parameter
        return Parameter.Type.STRING_ARRAY
    return spec.default


def _value_or_default(node, spec: ParamSpec) -> Any:
    from rclpy.exceptions import ParameterUninitializedException
    try:
        value = node.get_parameter(spec.name).value
    except ParameterUninitializedException:  # declared by its type (_declared_value), not set
        return spec.default
    return spec.default if value is None else value


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


def validate(specs: Iterable[ParamSpec], current: Mapping[str, Any],
             params: Iterable[Any]) -> Tuple[SetParametersResult, Dict[str, Any]]:
    """Judge a proposed change (rclpy Parameters) against the current values.

    Returns (result, merged values). Unknown names (e.g. QoS overrides) pass through untouched;
    type, range and read-only checks have already been made by rclpy from the descriptors.
    """
    specs = list(specs)
    merged = dict(current)
    changed = []
    for p in params:
        if p.name in merged:
            merged[p.name] = p.value
            changed.append(p.name)
    reasons = check_all(specs, merged, changed)
    result = SetParametersResult(successful=not reasons, reason='; '.join(reasons))
    return result, merged
