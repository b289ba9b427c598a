"""Sample sources: a bag's messages, in time order, turned into labeled rows (N features, then
the label) exactly as the live nodes would. ``AssembledSource`` runs the live assembler's code;
``LabeledSource`` takes recorded ``labeled_samples`` arrays with the trainer's rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional

import numpy as np

from nn_one_node.learning.screening import Refusals, screen_rows
from nn_one_node.names import expand_topic_name
from nn_one_node.offline.params_file import ConfigError
from nn_one_node.offline.replay import NS

# The node names that '~' (a private topic name) expands with: the nodes' names in the launch
# file, and their executables' default names.
ASSEMBLER_NODE = 'assembler'
TRAINER_NODE = 'trainer'


@dataclass(frozen=True)
class Need:
    """One topic a source needs from a bag: the entry that names it (as written), the fully
    qualified name it resolves to, its type, and which section of the params file needs it."""
    entry: str
    written: str    # the topic name as the entry writes it
    topic: str
    type: str
    by: str


class LabeledSource:
    """labeled_samples arrays (std_msgs/Float64MultiArray, rows of N features and the label) as
    the trainer takes them: the layout read by ``conversions.matrix_from_msg``, the rows screened
    by ``screen_rows``. Refused messages and rows are counted by kind."""

    TYPE = 'std_msgs/msg/Float64MultiArray'

    def __init__(self, topic: str, num_features: int, activation: str,
                 namespace: str = '/') -> None:
        # the trainer node's name for it, resolved as the node resolves it
        self.topic = expand_topic_name(topic, TRAINER_NODE, namespace)
        self.num_features = num_features
        self.activation = activation
        self.inputs = {self.topic: self.TYPE}
        self.needs = [Need(f'{topic} (trainer input)', topic, self.topic, self.TYPE, 'trainer')]
        self.feature_names = [f'x{i}' for i in range(num_features)]
        self.messages_refused = Refusals()
        self.rows_refused = Refusals()
        self.rows_received = 0

    def on_message(self, topic: str, msg: Any, now_ns: int) -> List[np.ndarray]:
        from nn_one_node.ros.codecs import MessageError, matrix_from_msg
        try:
            rows = matrix_from_msg(msg, self.num_features + 1)
        except MessageError as err:
            self.messages_refused.refuse(err.kind, str(err))
            return []
        self.rows_received += rows.shape[0]
        kept = screen_rows(rows, self.num_features, self.activation, self.rows_refused)
        return [kept] if kept.shape[0] else []

    def advance(self, now_ns: int) -> List[np.ndarray]:
        return []  # no timers: rows come as they were recorded

    def jumped_back(self, now_ns: int) -> None:
        pass  # the trainer keeps its buffer across a jump

    def refusal_summary(self) -> str:
        parts = []
        for what, log in (('message(s)', self.messages_refused), ('row(s)', self.rows_refused)):
            if log.total:
                parts.append(f'{log.total} {what} refused (last: {log.last_reason})')
        return '; '.join(parts)

    def counters(self) -> Dict[str, Any]:
        return {'rows received': self.rows_received,
                'rows refused': self.rows_refused.total,
                'messages refused': self.messages_refused.total,
                **{f'rows refused: {k}': c for k, c in sorted(self.rows_refused.by_kind.items())},
                **{f'messages refused: {k}': c
                   for k, c in sorted(self.messages_refused.by_kind.items())}}


class AssembledSource:
    """The live assembler's own logic (``assembly.Assembler``) from its params-file section,
    driven as the node drives it: its rate timer ticks on bag time (``Assembler.step``, the
    node's timer callback, at each multiple of ``1 / rate``, the timer's first overdue call at
    the first time seen, and one period after a jump back, as rcl's timer does), messages given
    with their bag time as arrival time (``header.stamp`` where a message has one: the
    assembler reads it). Refusals, stale rows and unmatched labels are counted by the assembler
    itself (``counters``).

    Topic names are resolved as the node resolves them (``names.expand_topic_name``, for a node
    named ``assembler`` in ``namespace``): ``inputs`` and the topics given to ``on_message`` are
    the fully qualified names a bag records."""

    def __init__(self, section: Mapping[str, Any], resolve=None, namespace: str = '/') -> None:
        from nn_one_node.assembly.assembler import Assembler
        from nn_one_node.assembly.config import AssemblerConfig
        from nn_one_node.assembly.msgtypes import default_resolver
        self.config = cfg = AssemblerConfig.from_params(section)
        self.asm = Assembler(cfg, resolve=resolve or default_resolver)
        self.needs, self.inputs, self.on_message_s = _resolved(self.asm, namespace)
        self.feature_names = list(self.asm.feature_names)
        self.num_features = self.asm.num_features
        if self.asm.label_entry is None:
            raise ConfigError('the assembler section has no label: it builds no labeled '
                              'samples to train or evaluate on (set its label entry)')
        # rclpy's create_timer(1.0 / rate): the period in integer nanoseconds
        self.period_ns = int(float(1.0 / cfg.rate) * NS)
        self._next_ns: Optional[int] = None
        self.feature_rows: Optional[Callable[[np.ndarray, float], None]] = None

    def advance(self, now_ns: int) -> List[np.ndarray]:
        """Run the ticks due at or before ``now_ns``; return the labeled rows they settle."""
        out: List[np.ndarray] = []
        period = self.period_ns
        if self._next_ns is None:
            # The timer of a node started before the bag is overdue at the first time: it
            # fires once, then keeps its phase (multiples of the period), as rcl's does.
            self._tick(now_ns, out)
            self._next_ns = (now_ns // period + 1) * period
        while self._next_ns <= now_ns:
            t = self._next_ns
            self._tick(t, out)
            self._next_ns = t + period
        return out

    def _tick(self, t_ns: int, out: List[np.ndarray]) -> None:
        now = t_ns * 1e-9  # as the node: clock.now().nanoseconds * 1e-9
        row, samples = self.asm.step(now)
        if row is not None and self.feature_rows is not None:
            self.feature_rows(row, now)
        out.extend(samples)

    def jumped_back(self, now_ns: int) -> None:
        # The assembler clears itself on the earlier time (it is the node's own rule); the
        # timer restarts one period after the new time (rcl's rule for a jump back).
        self._next_ns = now_ns + self.period_ns

    def on_message(self, topic: str, msg: Any, now_ns: int) -> List[np.ndarray]:
        return self.on_message_s(topic, msg, now_ns * 1e-9)

    def refusal_summary(self) -> str:
        c = self.asm.counters()
        parts = []
        if c['refused total']:
            parts.append(f'{c["refused total"]} message(s) refused ({c["refused"]}; last: '
                         f'{c["last refusal"]})')
        if c['rows stale']:
            parts.append(f'{c["rows stale"]} of {c["ticks"]} rows stale (by input: '
                         f'{c["stale"]})')
        if c['labels unmatched']:
            parts.append(f'{c["labels unmatched"]} label(s) unmatched ({c["unmatched"]})')
        return '; '.join(parts)

    def counters(self) -> Dict[str, Any]:
        c = self.asm.counters()
        c.pop('last arrival', None)
        return c


def _resolved(asm, namespace: str):
    """The assembler's needs under their fully qualified names, ``inputs`` ({name: type}) and
    its ``on_message`` taking those names: the assembler keeps the names as its entries write
    them (its counters do too); the node subscribes to what they resolve to."""
    specs = [e.spec for e in asm.entries]
    if asm.label_entry is not None:
        specs.append(asm.label_entry.spec)
    needs: List[Need] = []
    full: Dict[str, str] = {}   # as written -> fully qualified
    inputs: Dict[str, str] = {}
    for spec in specs:
        try:
            name = full.get(spec.topic) or expand_topic_name(spec.topic, ASSEMBLER_NODE,
                                                             namespace)
        except ValueError as err:
            raise ConfigError(f'{spec.what} entry {spec.text!r}: {err}') from None
        if inputs.get(name, spec.type_name) != spec.type_name:
            raise ConfigError(f'{spec.what} entry {spec.text!r}: {name} is {inputs[name]} in '
                              'an earlier entry (one type per topic)')
        full[spec.topic] = name
        inputs[name] = spec.type_name
        needs.append(Need(spec.text, spec.topic, name, spec.type_name, 'assembler'))
    on = asm.on_message
    written: Dict[str, List[str]] = {}
    for raw, name in full.items():
        written.setdefault(name, []).append(raw)
    if all(raws == [name] for name, raws in written.items()):
        return needs, inputs, on   # every name is written fully qualified: nothing to map
    if all(len(raws) == 1 for raws in written.values()):
        one = {name: raws[0] for name, raws in written.items()}
        return needs, inputs, lambda topic, msg, now: on(one[topic], msg, now)

    def each(topic: str, msg: Any, now: float) -> List[np.ndarray]:
        # two entries' names (e.g. 'scan' and '/scan') resolve to one topic: as two
        # subscriptions of the node, each takes every message
        out: List[np.ndarray] = []
        for raw in written[topic]:
            out.extend(on(raw, msg, now))
        return out
    return needs, inputs, each
