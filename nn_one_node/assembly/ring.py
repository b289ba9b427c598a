"""The row history: the newest rows and their times in a preallocated ring, searched by time
for the row a late label is for.

>>> ring = RowRing(capacity=3, width=1)
>>> for t in (1.0, 1.1, 1.2, 1.3):
...     ring.append(t, np.array([10 * t]))
>>> ring.count, float(ring.dropped_newest_time)   # 1.0 was pushed out
(3, 1.0)
>>> i, gap = ring.nearest(1.12)
>>> float(ring.rows[i][0]), round(float(gap), 3)
(11.0, 0.02)
>>> ring.forget_before(1.25)
>>> ring.count, ring.newest_time()
(1, 1.3)
"""

from __future__ import annotations

import bisect
import math
from typing import Optional, Tuple

import numpy as np


class _Times:
    """The ring's times in order, as a sequence ``bisect`` can search."""

    def __init__(self, ring: 'RowRing') -> None:
        self.ring = ring

    def __len__(self) -> int:
        return self.ring.count

    def __getitem__(self, i: int) -> float:
        r = self.ring
        return r.times[(r.start + i) % r.capacity]


class RowRing:
    """The newest ``capacity`` rows and their times (increasing), preallocated."""

    def __init__(self, capacity: int, width: int) -> None:
        self.capacity = capacity
        self.times = np.empty(capacity)
        self.rows = np.empty((capacity, width))
        self.start = 0
        self.count = 0
        self.dropped_newest_time = -math.inf  # the newest time ever pushed out

    def append(self, t: float, row: np.ndarray) -> None:
        if self.count == self.capacity:
            self.dropped_newest_time = self.times[self.start]
            self.start = (self.start + 1) % self.capacity
            self.count -= 1
        i = (self.start + self.count) % self.capacity
        self.times[i] = t
        self.rows[i] = row
        self.count += 1

    def forget_before(self, t: float) -> None:
        while self.count and self.times[self.start] < t:
            self.dropped_newest_time = self.times[self.start]
            self.start = (self.start + 1) % self.capacity
            self.count -= 1

    def newest_time(self) -> float:
        if not self.count:
            return -math.inf
        return float(self.times[(self.start + self.count - 1) % self.capacity])

    def nearest(self, t: float) -> Tuple[Optional[int], float]:
        """(physical index, |time - t|) of the row nearest ``t``; (None, inf) when empty."""
        if not self.count:
            return None, math.inf
        times = _Times(self)
        k = bisect.bisect_left(times, t)
        best, gap = None, math.inf
        for j in (k - 1, k):
            if 0 <= j < self.count:
                d = abs(times[j] - t)
                if d < gap:
                    best, gap = (self.start + j) % self.capacity, d
        return best, gap

    def clear(self) -> None:
        self.start = self.count = 0
        self.dropped_newest_time = -math.inf
