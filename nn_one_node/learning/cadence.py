"""When an update is due: by the clock, by the rows that arrived, and, while the training set is
young, each time it has doubled (a fast start). No ROS import."""

from __future__ import annotations

from typing import Optional


class Cadence:
    """When an update is due. Any of, once ``min_samples`` rows are held and a row is new:

    * the clock: ``train_period`` since the last update (the trainer's meaning, unchanged);
    * rows: ``update_every`` rows arrived since the last update (0: off);
    * fast start: while the training set is younger than ``fast_start`` rows (after the start,
      a reset, a detected change), each time it has doubled since the last update;
    * a change was just detected.

    >>> c = Cadence(min_samples=10, train_period=60.0, update_every=0, fast_start=100)
    >>> due = []
    >>> for n in range(1, 200):              # one row a second; the clock alone: at 60, 120, 180
    ...     c.arrived(1)
    ...     if c.due(now=float(n), young=n):
    ...         c.updated(now=float(n), young=n)
    ...         due.append(n)
    >>> due
    [10, 20, 40, 80, 140]
    """

    def __init__(self, min_samples: int, train_period: float, update_every: int,
                 fast_start: int) -> None:
        self.min_samples = min_samples
        self.train_period = train_period
        self.update_every = update_every
        self.fast_start = fast_start
        self.new = 0  # rows since the last update
        self.last_update: Optional[float] = None
        self.young_at_last = 0  # the training set's age (rows) at the last update
        self.change = False

    def arrived(self, k: int) -> None:
        self.new += k

    def due(self, now: Optional[float], young: int, held: Optional[int] = None) -> bool:
        """``now`` None: by the rows alone (the clock is someone else's timer)."""
        held = young if held is None else held
        if held < self.min_samples:
            return False
        if now is not None and (self.last_update is None
                                or now - self.last_update >= self.train_period):
            return True  # the clock: also without new rows (the descent goes on)
        if self.new <= 0:
            return False
        if self.change:
            return True
        if self.update_every and self.new >= self.update_every:
            return True
        return self.young_at_last < self.fast_start and young >= 2 * self.young_at_last

    def updated(self, now: float, young: int) -> None:
        self.new = 0
        self.last_update = now
        self.young_at_last = young
        self.change = False

    def restart(self) -> None:
        """The training set starts afresh (reset, change): fast start again."""
        self.young_at_last = 0
