"""The assembler: feature rows from the newest value of every input, and late labels joined to
the rows of their moment. No ROS import: the ``assembler`` node and ``nn_one_bag`` both drive it
through ``on_message`` and ``step``, with messages as duck-typed objects (attribute access;
arrays as ``array.array``, list, tuple or numpy array: rclpy's messages and rosbags' alike) and
times given explicitly as float seconds.

A value is stamped by the message's ``header.stamp`` where its type has a header (and the stamp
is not zero), else by its arrival ``now`` on the node's clock. ``step(now)`` (one rate tick)
builds one row from the newest value of every input when each is younger than its max_age (an
entry's ``max_age=`` for its topic, else ``max_age``); otherwise the row is skipped and counted
stale, by input. A label stamped t is for the row nearest t - label_delay within
``max_join_gap``; rows of the last ``history`` seconds are kept in a ring. A label whose moment
is newer than the newest row waits until a row at or after it exists, or until no row could
still be near enough. A time that goes backwards (a world reset, a looping bag) drops every
value, row and waiting label: no row mixes both sides, no label joins across. A stamp more than
its max_age ahead of the clock is refused (kind ``'future stamp'``): after a jump back it is a
message of the old timeline still in flight.

``problems(now)`` is what the node's ``/diagnostics`` WARN: no row published for ``no_rows_after``
seconds (at least ``NO_ROWS_MIN_SEC``, or ``NO_ROWS_TICKS`` row periods), or rows skipped on more
than ``SKIPPED_SHARE`` of the ticks since the last status; and why, input by input: never heard
from, or heard but older than ``max_age`` (stopped, too slow, stamped in the past, or its values
refused).

A fake message type stands in for a ROS one here (a ROS type works the same way):

>>> from types import SimpleNamespace as NS
>>> class Wheel:
...     @staticmethod
...     def get_fields_and_field_types():
...         return {'name': 'sequence<string>', 'effort': 'sequence<double>'}
>>> class Flag:
...     @staticmethod
...     def get_fields_and_field_types():
...         return {'data': 'boolean'}
>>> types = {'my_msgs/msg/Wheel': Wheel, 'my_msgs/msg/Flag': Flag}
>>> cfg = AssemblerConfig.from_params({
...     'features': ['/wheels my_msgs/msg/Wheel effort[left]',
...                  '/wheels my_msgs/msg/Wheel effort[right]'],
...     'label': '/slip my_msgs/msg/Flag data', 'rate': 10.0, 'label_delay': 0.5})
>>> asm = Assembler(cfg, resolve=types.__getitem__)
>>> asm.feature_names
['/wheels/effort[left]', '/wheels/effort[right]']
>>> _ = asm.on_message('/wheels', NS(name=['right', 'left'], effort=[2.0, 1.0]), now=1.0)
>>> asm.step(1.0)
Step(row=array([1., 2.]), samples=[])
>>> _ = asm.on_message('/wheels', NS(name=['left', 'right'], effort=[3.0, 4.0]), now=1.1)
>>> asm.step(1.1).row
array([3., 4.])
>>> asm.on_message('/slip', NS(data=True), now=1.5)   # the slip of time 1.0, felt at 1.5
[array([1., 2., 1.])]
>>> asm.step(5.0)                                     # nothing heard for 3.9 s: stale
Step(row=None, samples=[])
>>> asm.counters()['stale']
{'/wheels/effort[left]': 1, '/wheels/effort[right]': 1}
>>> for part in asm.problems(5.0)[0].split(': ', 1):   # no row since 1.1 s, and why
...     print(part)
no row published for 3.9 s (a row needs every input younger than max_age 0.5 s)
/wheels older than max_age (3.9 s > 0.5 s): no message for 3.9 s
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Tuple

import numpy as np

from nn_one_node.assembly.config import AssemblerConfig
from nn_one_node.assembly.entries import parse_entry
from nn_one_node.assembly.errors import ConfigError, MessageFault
from nn_one_node.assembly.getters import CompiledEntry, compile_entry
from nn_one_node.assembly.msgtypes import default_resolver, stamp_getter
from nn_one_node.assembly.ring import RowRing

# No row published for this long is a WARN (the predictor then answers nothing): at least a second
# (a stale input for less is a hiccup, counted in 'rows stale'), and at least this many row
# periods at a slow rate.
NO_ROWS_MIN_SEC = 1.0
NO_ROWS_TICKS = 5
# Rows skipped on more than this share of the ticks since the last status is a WARN: a 1 Hz
# battery under max_age 0.5 skips every other tick; a healthy stack skips none.
SKIPPED_SHARE = 0.25


class Step(NamedTuple):
    """A rate tick's row (a copy; None when an input is stale) and the rows (N + 1) it labels."""
    row: Optional[np.ndarray]
    samples: List[np.ndarray]


@dataclass
class _Topic:
    type_name: str
    cls: Any
    stamp: Optional[Callable[[Any], Optional[float]]]
    features: List[Tuple[int, int, int, Callable[[Any], Any]]]   # (entry, lo, hi, extract)
    label: Optional[Callable[[Any], float]] = None
    max_age: Optional[float] = None   # its own (an entry's max_age=); None: cfg.max_age


class Assembler:
    """Rows from the newest value of every input, and labels joined to the rows of their time.

    ``resolve`` maps 'pkg/msg/Type' to a class with ``get_fields_and_field_types()``.
    ``on_refusal(kind, reason)`` is called for every bad message (the node logs it, throttled);
    ``on_clear(reason)`` once when a backward time jump drops everything.
    """

    def __init__(self, cfg: AssemblerConfig, resolve=default_resolver,
                 on_refusal: Optional[Callable[[str, str], None]] = None,
                 on_clear: Optional[Callable[[str], None]] = None) -> None:
        self.cfg = cfg
        self._on_refusal = on_refusal
        self._on_clear = on_clear
        self._topics: Dict[str, _Topic] = {}
        self.entries: List[CompiledEntry] = []
        names: List[str] = []
        for text in cfg.features:
            entry = compile_entry(parse_entry(text), resolve)
            topic = self._topic_for(entry)
            lo = len(names)
            names += entry.names
            topic.features.append((len(self.entries), lo, len(names), entry.extract))
            self.entries.append(entry)
        self.label_entry: Optional[CompiledEntry] = None
        if cfg.label:
            spec = parse_entry(cfg.label, what='label')
            entry = compile_entry(spec, resolve)
            if entry.width != 1 or spec.index_kind == 'slice':
                raise ConfigError(f'label entry {cfg.label!r} is not one scalar')
            self._topic_for(entry).label = entry.extract
            self.label_entry = entry
        self.feature_names = names
        self.num_features = len(names)
        self.input_names = [e.spec.display_name for e in self.entries]
        self._own_ages = [self._topics[e.spec.topic].max_age for e in self.entries]
        self.inputs: Dict[str, str] = {t: v.type_name for t, v in self._topics.items()}
        self.classes: Dict[str, Any] = {t: v.cls for t, v in self._topics.items()}
        n = self.num_features
        self._values = np.zeros(n)
        self._stamps = [-math.inf] * len(self.entries)
        capacity = max(2, int(math.ceil(cfg.history * cfg.rate)) + 2)
        self._ring = RowRing(capacity, n)
        self._pending: List[Tuple[float, float, float]] = []   # (target, stamp, label)
        self._last_now = -math.inf
        # counters
        self.ticks = 0
        self.rows = 0
        self.rows_stale = 0
        self.stale_by_input: Dict[str, int] = {}
        self.messages: Dict[str, int] = {t: 0 for t in self._topics}
        self.last_arrival: Dict[str, Optional[float]] = {t: None for t in self._topics}
        self.last_stamp: Dict[str, float] = {t: -math.inf for t in self._topics}
        self._rows_since: Optional[float] = None  # the last row, or when rows became due
        self._gaps: Dict[str, float] = dict.fromkeys(self._topics, 0.0)  # since the last status
        self._at_status = (0, 0)  # ticks and stale rows at the last status
        self.refused: Dict[str, int] = {}
        self.last_refusal = ''
        self.labels_received = 0
        self.labels_joined = 0
        self.unmatched: Dict[str, int] = {}
        self.time_jumps = 0

    def _topic_for(self, entry: CompiledEntry) -> _Topic:
        spec = entry.spec
        topic = self._topics.get(spec.topic)
        if topic is None:
            topic = _Topic(spec.type_name, entry.cls, stamp_getter(entry.cls), [])
            self._topics[spec.topic] = topic
        elif topic.type_name != spec.type_name:
            raise ConfigError(f'{spec.what} entry {spec.text!r}: topic {spec.topic} is '
                              f'{topic.type_name} in an earlier entry (one type per topic)')
        if spec.max_age is not None:  # AssemblerConfig refused two different ones
            topic.max_age = spec.max_age
        return topic

    def max_age_of(self, topic: str) -> float:
        """The max_age of an input topic: its own (``max_age=`` on an entry), else max_age."""
        own = self._topics[topic].max_age
        return self.cfg.max_age if own is None else own

    # ---------------------------------------------------------------------------- time
    def _check_time(self, now: float) -> None:
        if now < self._last_now:
            self.clear(f'time jumped back from {self._last_now:.3f} s to {now:.3f} s')
        self._last_now = now

    def clear(self, reason: str = 'cleared') -> None:
        """Drop every held value, row and waiting label (time jumped back)."""
        self._values[:] = 0.0
        self._stamps = [-math.inf] * len(self.entries)
        self._ring.clear()
        if self._pending:
            self._count(self.unmatched, 'dropped by a time jump', len(self._pending))
        self._pending = []
        self._last_now = -math.inf
        self._rows_since = None
        self.time_jumps += 1
        if self._on_clear is not None:
            self._on_clear(reason)

    # ---------------------------------------------------------------------------- input
    @staticmethod
    def _count(d: Dict[str, int], key: str, n: int = 1) -> None:
        d[key] = d.get(key, 0) + n

    def _refuse(self, kind: str, reason: str) -> None:
        self._count(self.refused, kind)
        self.last_refusal = reason
        if self._on_refusal is not None:
            self._on_refusal(kind, reason)

    def on_message(self, topic: str, msg: Any, now: float) -> List[np.ndarray]:
        """Take one message received at ``now``; return the labeled rows (N + 1) it settles."""
        self._check_time(now)
        t = self._topics.get(topic)
        if t is None:
            raise KeyError(f'{topic} is not an input of this assembler')
        self.messages[topic] += 1
        last = self.last_arrival[topic]
        if last is not None and now - last > self._gaps[topic]:
            self._gaps[topic] = now - last
        self.last_arrival[topic] = now
        when = now
        if t.stamp is not None:
            try:
                stamp = t.stamp(msg)
            except (AttributeError, TypeError) as err:
                self._refuse('wrong type', f'{topic}: no header.stamp ({err})')
                return []
            if stamp is not None:
                when = stamp
                if stamp > now + (t.max_age or self.cfg.max_age):
                    self._refuse('future stamp', f'{topic}: stamped {stamp:.3f} s, '
                                 f'{stamp - now:.3f} s ahead of the clock ({now:.3f} s)')
                    return []
        self.last_stamp[topic] = when
        values, stamps = self._values, self._stamps
        for k, lo, hi, extract in t.features:
            try:
                v = extract(msg)
            except MessageFault as fault:
                self._refuse(fault.kind, str(fault))
                continue
            except IndexError as err:  # an array of messages on the way is too short
                self._refuse('index out of range', f'{self.input_names[k]}: {err}')
                continue
            except (AttributeError, TypeError, ValueError) as err:
                self._refuse('wrong type', f'{self.input_names[k]}: {type(err).__name__}: {err}')
                continue
            if hi - lo == 1:
                values[lo] = v
            else:
                values[lo:hi] = v
            stamps[k] = when
        if t.label is None:
            return []
        return self._take_label(t.label, msg, when, now)

    def _take_label(self, extract, msg, when: float, now: float) -> List[np.ndarray]:
        name = self.label_entry.spec.display_name
        try:
            v = extract(msg)
        except MessageFault as fault:
            self._refuse(f'label {fault.kind}', str(fault))
            return []
        except IndexError as err:
            self._refuse('label index out of range', f'{name}: {err}')
            return []
        except (AttributeError, TypeError, ValueError) as err:
            self._refuse('label wrong type', f'{name}: {type(err).__name__}: {err}')
            return []
        cfg = self.cfg
        threshold = cfg.threshold
        if threshold is not None:
            y = 1.0 if v > threshold else 0.0
        else:
            lo, hi = cfg.label_range
            if not lo <= v <= hi:
                self._refuse('label range', f'{name} is {v:g}, outside label_range '
                             f'[{lo:g}, {hi:g}] (set label_threshold, or label_range for a '
                             'linear model)')
                return []
            y = float(v)
        self.labels_received += 1
        if len(self._pending) >= cfg.max_pending_labels:
            self._pending.pop(0)
            self._count(self.unmatched, 'too many waiting')
        self._pending.append((when - cfg.label_delay, when, y))
        return self._settle(now)

    # ---------------------------------------------------------------------------- rows
    def tick(self, now: float) -> Optional[np.ndarray]:
        """The row due at this tick (a copy), or None when an input is stale (counted)."""
        self._check_time(now)
        self.ticks += 1
        if self._rows_since is None:
            self._rows_since = now
        max_age = self.cfg.max_age
        stale = False
        for k, s in enumerate(self._stamps):
            if not now - s <= (self._own_ages[k] or max_age):
                stale = True
                name = self.input_names[k]
                self.stale_by_input[name] = self.stale_by_input.get(name, 0) + 1
        if stale:
            self.rows_stale += 1
            return None
        row = self._values.copy()
        self._ring.append(now, row)
        self.rows += 1
        self._rows_since = now
        return row

    def flush(self, now: float) -> List[np.ndarray]:
        """The labeled rows that can be settled now (call after ``tick``)."""
        self._check_time(now)
        return self._settle(now) if self._pending else []

    def step(self, now: float) -> Step:
        """One tick of the rate timer, as the node and ``nn_one_bag`` both run it: the row due
        now (None when stale), then the labeled rows that can be settled."""
        row = self.tick(now)
        return Step(row, self.flush(now))

    def _settle(self, now: float) -> List[np.ndarray]:
        ring = self._ring
        ring.forget_before(now - self.cfg.history)
        newest = ring.newest_time()
        gap = self.cfg.max_join_gap
        out: List[np.ndarray] = []
        keep = []
        for item in self._pending:
            target, _stamp, y = item
            if newest < target and now - target <= gap:
                keep.append(item)   # its row may still come
                continue
            i, d = ring.nearest(target)
            if i is None or d > gap:
                if target < ring.dropped_newest_time + gap:
                    self._count(self.unmatched, 'older than history')
                else:
                    self._count(self.unmatched, 'no row within max_join_gap')
                continue
            sample = np.empty(self.num_features + 1)
            sample[:-1] = ring.rows[i]
            sample[-1] = y
            out.append(sample)
            self.labels_joined += 1
        self._pending = keep
        return out

    # ---------------------------------------------------------------------------- health
    def expect_rows(self) -> None:
        """Rows are due from the next tick on (the node's activation): a gap before it is none."""
        self._rows_since = None

    @property
    def no_rows_after(self) -> float:
        """Seconds without a row that make a WARN."""
        return max(NO_ROWS_MIN_SEC, NO_ROWS_TICKS / self.cfg.rate)

    def seconds_without_rows(self, now: float) -> Optional[float]:
        """Seconds since the last row (or since rows became due); None before the first tick."""
        return None if self._rows_since is None else max(0.0, now - self._rows_since)

    def problems(self, now: float, notes: Optional[Mapping[str, str]] = None) -> List[str]:
        """What a user must act on, once a status (the ticks since the last call count): no row
        for ``no_rows_after`` seconds, or rows skipped on more than ``SKIPPED_SHARE`` of the
        ticks since the last call; and why (``notes``: more words on a topic, e.g. publishers of
        another type). Empty while rows flow, and when every input is young again."""
        ticks, stale = self.ticks - self._at_status[0], self.rows_stale - self._at_status[1]
        self._at_status = (self.ticks, self.rows_stale)
        gaps, self._gaps = self._gaps, dict.fromkeys(self._topics, 0.0)
        max_age = self.cfg.max_age
        own = ', '.join(f'{t} {v.max_age:g} s' for t, v in self._topics.items()
                        if v.max_age is not None and v.features)
        rule = ('(a row needs every input younger than ' + (
            f'its max_age: {own}, others ' if own else 'max_age ') + f'{max_age:g} s)')
        gap = self.seconds_without_rows(now)
        if gap is not None and gap >= self.no_rows_after:
            why = self.stale_inputs(now, notes)
            return [f'no row published for {gap:.1f} s {rule}: ' + '; '.join(why)] if why else []
        if ticks >= NO_ROWS_TICKS and ticks > stale > SKIPPED_SHARE * ticks:  # rows, too few
            why = self.stale_inputs(now, notes) or [
                f'{t} older than max_age ({g:.3g} s > {self.max_age_of(t):g} s) between its '
                'messages' for t, g in gaps.items()
                if g > self.max_age_of(t) and self._topics[t].features]
            return [f'rows skipped on {stale} of {ticks} ticks since the last status {rule}'
                    + (': ' + '; '.join(why) if why else ' (see stale: <input>)')]
        return []

    def stale_inputs(self, now: float, notes: Optional[Mapping[str, str]] = None) -> List[str]:
        """Why each input topic that holds a row back does, in words: never heard from, or
        older than its max_age (no message lately, stamps behind, or values refused)."""
        notes = notes or {}
        out = []
        for topic, t in self._topics.items():
            if not t.features:
                continue  # the label alone: rows do not wait for it
            max_age = self.max_age_of(topic)
            note = f' ({notes[topic]})' if notes.get(topic) else ''
            last = self.last_arrival[topic]
            if last is None:
                out.append(f'no message yet on {topic}{note}')
                continue
            ages = {self.input_names[k]: now - self._stamps[k] for k, *_ in t.features}
            age = max(ages.values())
            if age <= max_age:
                continue
            since = now - last
            if math.isinf(age):
                never = ', '.join(name for name, a in ages.items() if math.isinf(a))
                out.append(f'{topic}: no value yet from {never} ({self.messages[topic]} '
                           f'message(s), none usable; last refusal: {self.last_refusal})')
                continue
            text = f'{topic} older than max_age ({age:.3g} s > {max_age:g} s)'
            if since > max_age:
                text += f': no message for {since:.3g} s'
            elif now - self.last_stamp[topic] > max_age:
                text += (f': messages arrive, stamped {now - self.last_stamp[topic]:.3g} s '
                         'behind the clock (latency, or the clocks of two computers apart)')
            else:
                text += f': messages arrive, their values refused ({self.last_refusal})'
            out.append(text + note)
        return out

    # ---------------------------------------------------------------------------- counters
    def counters(self) -> Dict[str, Any]:
        return {
            'features': self.num_features,
            'ticks': self.ticks,
            'rows published': self.rows,
            'rows stale': self.rows_stale,
            'stale': dict(self.stale_by_input),
            'messages': dict(self.messages),
            'last arrival': dict(self.last_arrival),
            'refused': dict(self.refused),
            'refused total': sum(self.refused.values()),
            'last refusal': self.last_refusal,
            'labels received': self.labels_received,
            'labels joined': self.labels_joined,
            'labels unmatched': sum(self.unmatched.values()),
            'unmatched': dict(self.unmatched),
            'labels waiting': len(self._pending),
            'rows held': self._ring.count,
            'time jumps': self.time_jumps,
        }
