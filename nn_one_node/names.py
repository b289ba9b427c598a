"""ROS names without ROS: a topic name expanded as rcl expands it for a node.

No rclpy import. ``expand_topic_name(name, node_name, namespace)`` gives the fully qualified name
a node named ``node_name`` in ``namespace`` subscribes to when it asks for ``name``, by rcl's
rules (``rcl_expand_topic_name``, then rmw's check of the full name), before any remapping:

* an absolute name (``/scan``) is kept;
* a relative name (``scan``) goes under the namespace (``/robot1/scan``);
* a private name (``~/bump``, or ``~``) goes under the node's fully qualified name
  (``/robot1/assembler/bump``);
* the substitutions ``{node}``, ``{ns}`` and ``{namespace}`` are replaced; any other is refused;
* a name that is not valid (``scan/``, ``1scan``, ``a~b``, ``a//b``, characters other than ASCII
  letters, digits and ``_``, too long) is refused with ``InvalidName`` and rcl's reason.

The live nodes get the same answer from rclpy (``Node.resolve_topic_name(name,
only_expand=True)``); ``nn_one_bag`` takes it from here, so that a bag is read under the names the
nodes would have used (a test compares the two on a table of cases). ``node_namespace`` reads a
namespace as a node takes it (``robot1`` -> ``/robot1``, empty -> ``/``). Namespace patterns (the
trainer's ``fleet``: ``/r*``, fnmatch on each name, so ``*`` never crosses a ``/``) are checked
by ``pattern_problem``, made absolute by ``resolve_pattern`` and matched by ``namespace_matches``.

>>> expand_topic_name('scan', 'assembler', '/')
'/scan'
>>> expand_topic_name('scan', 'assembler', '/robot1')
'/robot1/scan'
>>> expand_topic_name('/clock', 'assembler', '/robot1')
'/clock'
>>> expand_topic_name('~/bump', 'assembler', '/robot1')
'/robot1/assembler/bump'
>>> expand_topic_name('{node}/state', 'assembler', '/robot1')
'/robot1/assembler/state'
>>> node_namespace('robot1')
'/robot1'
>>> expand_topic_name('scan/', 'assembler', '/')
Traceback (most recent call last):
...
nn_one_node.names.InvalidName: topic name 'scan/' is invalid: it must not end with '/'
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from typing import Optional, Sequence

# rmw's limits: RMW_TOPIC_MAX_NAME_LENGTH (255 - 8), RMW_NAMESPACE_MAX_LENGTH (that - 2),
# RMW_NODE_NAME_MAX_NAME_LENGTH.
TOPIC_MAX_LENGTH = 247
NAMESPACE_MAX_LENGTH = TOPIC_MAX_LENGTH - 2
NODE_NAME_MAX_LENGTH = 255

_ALNUM = re.compile(r'[A-Za-z0-9]')  # rcutils_isalnum_no_locale: ASCII only
_WORD = re.compile(r'^[A-Za-z0-9_]*$')
_PATH = re.compile(r'^[A-Za-z0-9_/]*$')


class InvalidName(ValueError):
    """A topic name, node name or namespace that rcl refuses; the text says which and why."""


def _topic_problem(name: str) -> str:
    """Why rcl refuses ``name`` as a topic name (``rcl_validate_topic_name``), or ''."""
    if not name:
        return 'it must not be empty'
    if name[0].isdigit() and name[0].isascii():
        return 'a name token must not start with a number'
    if name[-1] == '/':
        return "it must not end with '/'"
    in_braces = False
    opened = 0
    for i, c in enumerate(name):
        if _ALNUM.match(c):
            if c.isdigit() and in_braces and i == opened + 1:
                return 'a substitution must not start with a number'
        elif c == '_':
            continue
        elif c == '/':
            if in_braces:
                return "a substitution may hold letters, digits and '_' only"
        elif c == '~':
            if i != 0:
                return "'~' may only be its first character"
        elif c == '{':
            if in_braces:
                return "a substitution may hold letters, digits and '_' only"
            in_braces, opened = True, i
        elif c == '}':
            if not in_braces:
                return "its curly braces '{}' are unbalanced"
            in_braces = False
        elif in_braces:
            return "a substitution may hold letters, digits and '_' only"
        else:
            return ("it may hold only letters, digits, '_', '/', a leading '~' and {substitutions}"
                    f', not {c!r}')
    if in_braces:
        return "its curly braces '{}' are unbalanced"
    for i in range(len(name) - 1):
        if name[i] == '/' and name[i + 1].isdigit() and name[i + 1].isascii():
            return 'a name token must not start with a number'
        if i == 1 and name[0] == '~' and name[1] != '/':
            return "'~' must be followed by '/'"
    return ''


def validate_topic_name(name: str) -> None:
    """InvalidName if rcl refuses ``name`` as a topic name (before expansion), with rcl's reason.

    >>> validate_topic_name('~/bump')
    >>> validate_topic_name('a~b')
    Traceback (most recent call last):
    ...
    nn_one_node.names.InvalidName: topic name 'a~b' is invalid: '~' may only be its first character
    """
    problem = _topic_problem(name) if isinstance(name, str) else 'it is not a string'
    if problem:
        raise InvalidName(f'topic name {name!r} is invalid: {problem}')


def _full_problem(name: str, what: str, limit: int) -> str:
    """Why rmw refuses ``name`` as a fully qualified topic name or namespace, or ''."""
    if not name:
        return 'it must not be empty'
    if name[0] != '/':
        return "it must be absolute (start with '/')"
    if name != '/' and name[-1] == '/':
        return "it must not end with '/'"
    if not _PATH.match(name):
        bad = next(c for c in name if not (c.isascii() and (c.isalnum() or c in '_/')))
        return f"it may hold only letters, digits, '_' and '/', not {bad!r}"
    if '//' in name:
        return "it must not hold '//'"
    if any(token[:1].isdigit() for token in name.split('/')):
        return 'a name token must not start with a number'
    if len(name) > limit:
        return f'it is longer than {limit} characters'
    if what == 'topic' and name == '/':
        return "it must not end with '/'"
    return ''


def node_namespace(namespace: str) -> str:
    """A namespace as a node takes it (rcl_node_init): '' -> '/', a missing leading '/' added;
    then checked (InvalidName naming the rule it breaks).

    >>> node_namespace(''), node_namespace('/'), node_namespace('/robot1/arm')
    ('/', '/', '/robot1/arm')
    """
    if not isinstance(namespace, str):
        raise InvalidName(f'namespace {namespace!r} is not a string')
    ns = namespace if namespace.startswith('/') else '/' + namespace
    problem = _full_problem(ns, 'namespace', NAMESPACE_MAX_LENGTH)
    if problem:
        raise InvalidName(f'namespace {namespace!r} is invalid: {problem}')
    return ns


def _check_node_name(node_name: str) -> None:
    problem = ''
    if not isinstance(node_name, str) or not node_name:
        problem = 'it must not be empty'
    elif not _WORD.match(node_name):
        problem = "it may hold only letters, digits and '_'"
    elif node_name[0].isdigit():
        problem = 'it must not start with a number'
    elif len(node_name) > NODE_NAME_MAX_LENGTH:
        problem = f'it is longer than {NODE_NAME_MAX_LENGTH} characters'
    if problem:
        raise InvalidName(f'node name {node_name!r} is invalid: {problem}')


def expand_topic_name(name: str, node_name: str, namespace: str) -> str:
    """The fully qualified topic name a node ``node_name`` in ``namespace`` (absolute, as a node
    holds it: see ``node_namespace``) uses for ``name``; InvalidName where rcl refuses one of
    them. rclpy's ``expand_topic_name`` followed by ``validate_full_topic_name``."""
    validate_topic_name(name)
    _check_node_name(node_name)
    problem = _full_problem(namespace, 'namespace', NAMESPACE_MAX_LENGTH) \
        if isinstance(namespace, str) else 'it is not a string'
    if problem:
        raise InvalidName(f'namespace {namespace!r} is invalid: {problem}')
    if name[0] == '/' and '{' not in name:
        out = name
    else:
        out = name
        if out[0] == '~':
            out = (namespace if namespace == '/' else namespace + '/') + node_name + out[1:]
        while '{' in out:
            start = out.index('{')
            sub = out[start:out.index('}', start) + 1]
            if sub == '{node}':
                value = node_name
            elif sub in ('{ns}', '{namespace}'):
                value = namespace
            else:
                raise InvalidName(f'topic name {name!r} is invalid: unknown substitution {sub} '
                                  '(rcl knows {node}, {ns} and {namespace})')
            out = out.replace(sub, value)
        if out[0] != '/':
            out = (namespace if namespace == '/' else namespace + '/') + out
    problem = _full_problem(out, 'topic', TOPIC_MAX_LENGTH)
    if problem:
        raise InvalidName(f'topic name {name!r} is invalid: it expands to {out!r}, but {problem}'
                          if out != name else f'topic name {name!r} is invalid: {problem}')
    return out


# ------------------------------------------------------------------ namespace patterns
_PATTERN_NAME = re.compile(r'^[A-Za-z0-9_*?\[\]!-]+$')


def pattern_problem(pattern: str) -> Optional[str]:
    """Why ``pattern`` is no namespace or namespace pattern, or None.

    >>> pattern_problem('/r*'), pattern_problem('warehouse/amr_[0-9]')
    (None, None)
    >>> pattern_problem('/r1/')
    "'/r1/' is not a namespace pattern: names of letters, digits, _ and * ? [ ] ! between /"
    """
    parts = pattern[1:].split('/') if pattern.startswith('/') else pattern.split('/')
    if not pattern or not all(_PATTERN_NAME.match(p) for p in parts):
        return (f'{pattern!r} is not a namespace pattern: names of letters, digits, _ and '
                '* ? [ ] ! between /')
    return None


def resolve_pattern(pattern: str, namespace: str) -> str:
    """``pattern`` made absolute under a node's ``namespace``.

    >>> [resolve_pattern(p, ns) for p, ns in [('r*', '/fleet'), ('/r1', '/fleet'), ('r1', '/')]]
    ['/fleet/r*', '/r1', '/r1']
    """
    return pattern if pattern.startswith('/') else f'{namespace.rstrip("/")}/{pattern}'


def namespace_matches(namespace: str, patterns: Sequence[str]) -> bool:
    """Whether ``namespace`` matches one of the (absolute) ``patterns``, name by name; the root
    namespace matches none.

    >>> [namespace_matches(ns, ['/r*']) for ns in ('/r1', '/r1/arm', '/R1', '/')]
    [True, False, False, False]
    """
    names = namespace.strip('/').split('/')
    if names == ['']:
        return False
    for pattern in patterns:
        parts = pattern.strip('/').split('/')
        if len(parts) == len(names) and all(map(fnmatchcase, names, parts)):
            return True
    return False
