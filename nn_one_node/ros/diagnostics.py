"""One builder for the nodes' ``/diagnostics`` status (diagnostic_msgs/DiagnosticArray).

Each node says what it knows (its role, the problems a user must act on, a message when all is
well, its counters) and this module writes the message the same way for all of them: the status
name ``<node's full name>: <role>``, hardware_id ``nn_one_node``, WARN while any problem stands
(the problems joined with '; '), else OK; the counters as key/value pairs in their order, then
each problem alone as ``problem 1``, ``problem 2`` ... (a reader need not split the message).
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional, Tuple

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

HARDWARE_ID = 'nn_one_node'
TOPIC = '/diagnostics'
DEPTH = 10


def create_publisher(node):
    """The node's ``/diagnostics`` publisher (absolute: one topic for the whole robot)."""
    return node.create_publisher(DiagnosticArray, TOPIC, DEPTH)


def status_message(node, role: str, problems: Iterable[str], ok_message: str,
                   values: Optional[Mapping[str, Any]] = None,
                   extra: Iterable[Tuple[str, Any]] = (), message: Optional[str] = None,
                   ok: Optional[bool] = None, clock=None) -> DiagnosticArray:
    """The DiagnosticArray of one status. ``message`` replaces the text made from the problems
    (e.g. "inactive: ..."); ``ok`` forces the level (an inactive node is not at fault);
    ``clock`` stamps it (default: the node's)."""
    problems = [p for p in problems if p]
    level_ok = not problems if ok is None else ok
    status = DiagnosticStatus(name=f'{node.get_fully_qualified_name()}: {role}',
                              hardware_id=HARDWARE_ID)
    status.level = DiagnosticStatus.OK if level_ok else DiagnosticStatus.WARN
    status.message = message if message is not None else ('; '.join(problems) or ok_message)
    pairs = list((values or {}).items()) + list(extra)
    pairs += [(f'problem {i}', p) for i, p in enumerate(problems, 1)]
    status.values = [KeyValue(key=str(k), value=str(v)) for k, v in pairs]
    msg = DiagnosticArray(status=[status])
    msg.header.stamp = (clock or node.get_clock()).now().to_msg()
    return msg
