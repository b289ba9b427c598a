"""Playing a recording to a sample source and a learner on bag time, as the live nodes see it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, Optional, Tuple

import numpy as np

NS = 1_000_000_000


@dataclass
class ReplayStats:
    messages: int = 0
    rows: int = 0
    jumps_back: int = 0
    first_ns: Optional[int] = None
    last_ns: Optional[int] = None
    extra: Dict[str, Any] = field(default_factory=dict)


class Replay:
    """Plays ``(topic, t_ns, msg)`` in bag order to a source (and a learner), on bag time.

    The clock is each message's receive time, or, with ``clock_topic`` (a recorded /clock, as
    the nodes see it with use_sim_time), the newest /clock value. Before each message the
    source's rate ticks and the learner's update ticks that fall at or before its time are run;
    then the message is given to the source with its time as arrival time; the labeled rows it
    completes go to ``on_rows(rows, t_ns)``. A clock that goes back clears the source and
    restarts the timers.
    """

    def __init__(self, source, on_rows: Callable[[np.ndarray, int], None],
                 learner=None, clock_topic: Optional[str] = None) -> None:
        self.source = source
        self.learner = learner
        self.on_rows = on_rows
        self.clock_topic = clock_topic
        self.now_ns: Optional[int] = None
        self.stats = ReplayStats()

    def _set_clock(self, t_ns: int) -> None:
        if self.now_ns is not None and t_ns < self.now_ns:
            self.stats.jumps_back += 1
            self.source.jumped_back(t_ns)
            if self.learner is not None:
                self.learner.jumped_back(t_ns)
        self.now_ns = t_ns
        for rows in self.source.advance(t_ns):
            self._rows(rows, t_ns)
        if self.learner is not None:
            self.learner.advance(t_ns)

    def _rows(self, rows: np.ndarray, t_ns: int) -> None:
        if rows.ndim == 1:
            rows = rows.reshape(1, -1)
        self.stats.rows += rows.shape[0]
        self.on_rows(rows, t_ns)

    def feed(self, topic: str, t_ns: int, msg: Any) -> None:
        st = self.stats
        st.messages += 1
        if st.first_ns is None:
            st.first_ns = t_ns
        st.last_ns = t_ns
        if self.clock_topic is not None:
            if topic == self.clock_topic:
                self._set_clock(int(msg.clock.sec) * NS + int(msg.clock.nanosec))
                return
            now = self.now_ns if self.now_ns is not None else 0  # before /clock: time 0
        else:
            self._set_clock(t_ns)
            now = t_ns
        for rows in self.source.on_message(topic, msg, now):
            self._rows(rows, now)

    def _next_due(self) -> float:
        """The earliest bag time at which a timer (the source's or the learner's) is due."""
        due = getattr(self.source, '_next_ns', None)
        due = math.inf if due is None else due
        if self.learner is not None and self.learner._next_ns is not None:
            due = min(due, self.learner._next_ns)
        return due

    def run(self, stream: Iterable[Tuple[str, int, Any]],
            progress: Optional[Callable[[int], None]] = None,
            every: int = 4096) -> ReplayStats:
        """Play the whole stream; ``progress(messages so far)`` every ``every`` messages.

        On receive time (no clock topic) this is the lean loop: the clock and the timers are
        only touched when a timer is due (or time goes back), so a message costs the source's
        ``on_message`` and little more."""
        st = self.stats
        n = 0
        if self.clock_topic is not None:
            feed = self.feed
            for topic, t_ns, msg in stream:
                feed(topic, t_ns, msg)
                n += 1
                if progress is not None and not n % every:
                    progress(n)
            return st
        on_message = self.source.on_message
        direct = getattr(self.source, 'on_message_s', None)  # takes seconds: one call less
        rows_out = self._rows
        due = -math.inf
        last = None
        first = None
        try:
            for topic, t_ns, msg in stream:
                if t_ns >= due or t_ns < last:
                    if first is None:
                        first = t_ns
                    self._set_clock(t_ns)
                    due = self._next_due()
                last = t_ns
                rows = (direct(topic, msg, t_ns * 1e-9) if direct is not None
                        else on_message(topic, msg, t_ns))
                if rows:
                    for r in rows:
                        rows_out(r, t_ns)
                n += 1
                if progress is not None and not n % every:
                    progress(n)
        finally:
            st.messages += n
            if n:
                st.first_ns = first if st.first_ns is None else st.first_ns
                st.last_ns = last
        return st
