"""Message types, resolved once at start: 'pkg/msg/Type' to its class, a field's type string to
its kind, and the stamp a message carries.

A class is anything with ``get_fields_and_field_types()`` (rclpy's generated messages, or a
stand-in in tests); ``default_resolver`` imports ``pkg.msg`` only when it is called, so this
module imports no ROS package. A value is stamped by ``header.stamp`` where its type has a
``std_msgs/Header`` (and the stamp is not zero), else by its arrival.

>>> field_type('sequence<float>'), field_type('double[9]'), field_type('std_msgs/Header')
(('seq', 'float', None), ('array', 'double', 9), ('scalar', 'std_msgs/Header', None))
>>> from types import SimpleNamespace as NS
>>> class Stamped:
...     @staticmethod
...     def get_fields_and_field_types():
...         return {'header': 'std_msgs/Header', 'data': 'double'}
>>> stamp = stamp_getter(Stamped)
>>> stamp(NS(header=NS(stamp=NS(sec=3, nanosec=500_000_000))))
3.5
>>> stamp(NS(header=NS(stamp=NS(sec=0, nanosec=0)))) is None   # unset: arrival time then
True
"""

from __future__ import annotations

import importlib
import re
from typing import Any, Callable, Dict, Optional, Tuple

from nn_one_node.assembly.errors import ConfigError

NUMERIC_TYPES = frozenset((
    'boolean', 'octet', 'char', 'byte', 'float', 'double', 'long double', 'float32', 'float64',
    'int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64'))
HEADER_TYPES = ('std_msgs/Header', 'std_msgs/msg/Header')


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


def field_type(t: str) -> Tuple[str, str, Optional[int]]:
    """'sequence<float>' -> ('seq', 'float', None); 'double[9]' -> ('array', 'double', 9);
    'std_msgs/Header' -> ('scalar', 'std_msgs/Header', None)."""
    m = re.fullmatch(r'sequence<\s*([^,>]+?)\s*(?:,\s*\d+\s*)?>', t)
    if m:
        return 'seq', m.group(1), None
    m = re.fullmatch(r'(.+)\[(\d+)\]', t)
    if m:
        return 'array', m.group(1), int(m.group(2))
    return 'scalar', t, None


def is_message(elem: str) -> bool:
    return '/' in elem


def message_type(elem: str) -> str:
    """A field's type as a resolver takes it: 'std_msgs/Header' -> 'std_msgs/msg/Header'."""
    parts = elem.split('/')
    return f'{parts[0]}/msg/{parts[-1]}'


def fields_of(cls) -> Dict[str, str]:
    try:
        return dict(cls.get_fields_and_field_types())
    except (AttributeError, TypeError):
        raise ConfigError(f'{cls!r} is not a ROS message class '
                          '(no get_fields_and_field_types())') from None


def resolve_for(resolve, type_name: str, text: str, what: str):
    """``resolve(type_name)`` for an entry: any failure is a ConfigError naming the entry."""
    try:
        return resolve(type_name)
    except ConfigError as err:
        raise ConfigError(f'{what} entry {text!r}: {err}') from None
    except (KeyError, LookupError, ImportError, AttributeError, ValueError) as err:
        raise ConfigError(f'{what} entry {text!r}: cannot resolve type {type_name!r} '
                          f'({type(err).__name__}: {err})') from None


def stamp_getter(cls) -> Optional[Callable[[Any], Optional[float]]]:
    """The getter of a message's ``header.stamp`` in seconds (None for a zero stamp), or None
    where the type has no header."""
    kind, elem, _ = field_type(fields_of(cls).get('header', ''))
    if kind != 'scalar' or elem not in HEADER_TYPES:
        return None

    def stamp(msg):
        s = msg.header.stamp
        t = s.sec + s.nanosec * 1e-9
        return t if t else None  # a zero stamp is an unset one: arrival time then
    return stamp
