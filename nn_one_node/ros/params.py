"""Declaring a node's parameter table (``parameters.ParamSpec``) on an rclpy node.

Each spec becomes a parameter with its ``ParameterDescriptor`` (what ``ros2 param describe``
shows: description, range, read-only); ``validate`` turns a proposed change into a
``SetParametersResult`` with a reason and never changes anything, so a refused change leaves the
old values in force.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple

from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)

from nn_one_node.parameters import NUM_FEATURES, ParamSpec, check_all, judge


def descriptor(spec: ParamSpec) -> ParameterDescriptor:
    d = ParameterDescriptor(description=spec.description, read_only=spec.read_only,
                            additional_constraints=spec.constraints)
    if spec.int_range is not None:
        d.integer_range = [IntegerRange(from_value=spec.int_range[0],
                                        to_value=spec.int_range[1], step=0)]
    if spec.float_range is not None:
        d.floating_point_range = [FloatingPointRange(from_value=spec.float_range[0],
                                                     to_value=spec.float_range[1], step=0.0)]
    return d


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
        node.declare_parameter(spec.name, _declared_value(spec), descriptor(spec))
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


def current_values(node, specs: Iterable[ParamSpec]) -> Dict[str, Any]:
    """The node's current values of ``specs``, as they are (each set was validated)."""
    return {s.name: _value_or_default(node, s) for s in specs}


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


def validate(specs: Iterable[ParamSpec], current: Mapping[str, Any],
             params: Iterable[Any]) -> Tuple[SetParametersResult, Dict[str, Any]]:
    """Judge a proposed change (rclpy Parameters) against the current values.

    Returns (result, merged values). Unknown names (e.g. QoS overrides) pass through untouched;
    type, range and read-only checks have already been made by rclpy from the descriptors.
    """
    reasons, merged = judge(specs, current, {p.name: p.value for p in params})
    return SetParametersResult(successful=not reasons, reason='; '.join(reasons)), merged
