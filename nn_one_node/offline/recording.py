"""What ``nn_one_bag record`` records, and how, without ROS: the topics a params file's
assembler section needs (its features' and its label's, resolved as the node resolves them: the
same ``commands.build_source`` that ``train`` reads a bag with), the QoS to ask each topic's
publishers for (rosbag2's rule), the bag it writes and its progress line. The subscriptions
themselves are ``ros/recorder.py``.

>>> adapt_qos([(True, False), (True, False)])      # (reliable, transient_local) offered
(True, False)
>>> adapt_qos([(True, False), (False, False)])     # a best-effort publisher among them
(False, False)
>>> progress_line(2.0, {'/scan': 50, '/odom': 100}, ['/bump'])
'nn_one_bag record: 2 s: /odom 100, /scan 50; no publisher yet on /bump'
"""

from __future__ import annotations

import os
from typing import Any, Dict, Iterable, List, Sequence, Tuple

from nn_one_node.offline.bagio import BagWriter
from nn_one_node.offline.commands import (DEFAULT_LABELED_TOPIC, PROG, Failure, build_source,
                                          check_namespace)
from nn_one_node.offline.params_file import has_node


def topics_to_record(document: Any, namespace: str, params_file: str) -> Dict[str, str]:
    """{fully qualified topic: 'pkg/msg/Type'} that the assembler section of ``document`` reads,
    under ``namespace``: what ``train`` will look for in the bag. Failure where the file has no
    assembler section or a bad one."""
    if not has_node(document, 'assembler'):
        raise Failure(f'{params_file} has no assembler section: record takes the topics of its '
                      'features and label (write one; see doc/assembler.md)')
    source = build_source('assembler', document, None, 'sigmoid', DEFAULT_LABELED_TOPIC,
                          check_namespace(namespace))
    return dict(source.inputs)


def adapt_qos(offers: Sequence[Tuple[bool, bool]]) -> Tuple[bool, bool]:
    """The (reliable, transient_local) to subscribe with, given each publisher's offer, as
    ``ros2 bag record`` chooses (rosbag2's ``adapt_request_to_offers``): reliable only if every
    publisher is (a reliable subscription gets nothing from a best-effort publisher), transient
    local only if every publisher is (then the latched message is recorded too)."""
    offers = list(offers)
    if not offers:
        return True, False
    return all(r for r, _ in offers), all(t for _, t in offers)


def progress_line(elapsed: float, counts: Dict[str, int], waiting: Iterable[str]) -> str:
    """One line of progress: the seconds recorded and the messages per topic so far."""
    parts = ', '.join(f'{t} {n:,}' for t, n in sorted(counts.items())) or 'no message yet'
    waiting = sorted(waiting)
    tail = f'; no publisher yet on {", ".join(waiting)}' if waiting else ''
    return f'{PROG} record: {elapsed:.0f} s: {parts}{tail}'


class BagSink:
    """The bag being recorded: serialized messages as received (rosbags' writer, the storage
    ``nn_one_bag`` reads), a topic added when its first subscription is made, as rosbag2 does.
    ``counts`` holds the messages written per topic."""

    def __init__(self, path: str, storage: str = 'mcap') -> None:
        self.path = path
        self.storage = storage
        self._bag = BagWriter(path, storage)
        self._bag.__enter__()
        self.counts: Dict[str, int] = {}
        self._types: Dict[str, str] = {}

    def add(self, topic: str, msgtype: str) -> None:
        self._bag.connection(topic, msgtype)
        self._types[topic] = msgtype
        self.counts.setdefault(topic, 0)

    def write(self, topic: str, t_ns: int, data: bytes) -> None:
        self._bag.write_raw(topic, self._types[topic], t_ns, data)
        self.counts[topic] += 1

    def close(self) -> None:
        if self._bag is not None:
            self._bag.__exit__(None, None, None)
            self._bag = None


# The largest ROS_DOMAIN_ID whose DDS ports fit (ROS 2's "Domain ID" page: 0..232 on Linux);
# Fast DDS ends the process (exit 1, no Python exception) when it builds a node on a larger one.
MAX_DOMAIN_ID = 232


def check_domain_id(env) -> None:
    """Failure where ``ROS_DOMAIN_ID`` is set to what DDS cannot use.

    >>> check_domain_id({'ROS_DOMAIN_ID': '42'})
    >>> check_domain_id({'ROS_DOMAIN_ID': '999'})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    nn_one_node.offline.commands.Failure: ROS_DOMAIN_ID=999 is not a domain DDS can use: ...
    """
    value = env.get('ROS_DOMAIN_ID', '').strip()
    if value and not (value.isdigit() and int(value) <= MAX_DOMAIN_ID):
        raise Failure(f'ROS_DOMAIN_ID={value} is not a domain DDS can use: give 0 to '
                      f'{MAX_DOMAIN_ID}')


def check_out(path: str) -> None:
    """Failure where ``path`` cannot take a new bag (it exists; a file is in the way)."""
    if os.path.lexists(path):
        raise Failure(f'{path} already exists: record writes a new bag directory (choose another '
                      'name, or remove it)')
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.exists(parent) and not os.path.isdir(parent):
        raise Failure(f'{parent} is not a directory: cannot write {path}')


def summary(path: str, storage: str, seconds: float, counts: Dict[str, int],
            missing: List[str], params_file: str, namespace: str) -> str:
    per_topic = ', '.join(f'{t} {n:,}' for t, n in sorted(counts.items()) if n) or 'no message'
    ns = '' if namespace in ('', '/') else f' --namespace {namespace}'
    text = (f'{PROG} record: wrote {path} (rosbag2, {storage}): {seconds:.1f} s, {per_topic}')
    if missing:
        text += f'; nothing heard on {", ".join(missing)}'
    if not any(counts.values()):  # nothing to train on: the names are what to look at
        return text + ('\n  no topic of the entries is published under this name: compare '
                       "them with the robot's (its namespace?)")
    return text + f'\n  train on it: {PROG} train {path} --params-file {params_file}{ns} ' \
        '--out model.yaml'
