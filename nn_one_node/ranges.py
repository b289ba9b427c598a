"""The rows a predictor serves outside the range its model was trained on, counted by feature.

The trainer deploys, with each model, each feature's smallest and largest value in the rows it
was trained on (the predictor's ``trained_min`` and ``trained_max``; -inf and inf where that is
not known: a model resumed from a file or set by hand). A prediction for a row outside that
range is an extrapolation: fine a little way out, wrong far out, and a sign of a feature that
drifts like a clock (``learning.drift``). ``RangeWatch`` counts such rows by feature since the
ranges were set, and says which features are outside for at least ``OUTSIDE_WARN`` of at least
``OUTSIDE_MIN_ROWS`` rows. No ROS import; the cost is a comparison per value.

>>> import numpy as np
>>> watch = RangeWatch([0.0, 11.9], [1.0, 12.4])
>>> watch.row((0.5, 12.0)); watch.row((0.2, 11.5))            # the second: a low battery
>>> watch.matrix(np.array([[0.9, 11.8], [0.1, 11.7]]))
>>> watch.rows, watch.outside.tolist()
(4, [0, 3])
>>> print(watch.problems(min_rows=4)[0][:72])
feature 1: 3 of 4 rows served since the model came were outside the rang
>>> RangeWatch([-np.inf], [np.inf]).known
False
"""

from __future__ import annotations

import math
from typing import List, Sequence

import numpy as np

OUTSIDE_WARN = 0.1  # share of the rows outside a feature's trained range that makes a WARN
OUTSIDE_MIN_ROWS = 100  # rows since the ranges were set, before the share is judged


def ranges_problem(low: Sequence[float], high: Sequence[float]) -> str:
    """Why ``(low, high)`` are no trained ranges ('' when they are): equal lengths, no NaN,
    low <= high feature by feature.

    >>> ranges_problem([0.0, 1.0], [1.0, 0.5])
    'trained_min must not exceed trained_max: feature 1 has 1.0 > 0.5'
    """
    if len(low) != len(high):
        return (f'trained_min and trained_max must have one value per feature each, got '
                f'{len(low)} and {len(high)}')
    for i, (lo, hi) in enumerate(zip(low, high)):
        if math.isnan(lo) or math.isnan(hi):
            return f'trained_min and trained_max must not hold NaN (feature {i})'
        if lo > hi:
            return f'trained_min must not exceed trained_max: feature {i} has {lo} > {hi}'
    return ''


class RangeWatch:
    """Counts, by feature, the rows outside ``[low, high]`` since it was made."""

    def __init__(self, low: Sequence[float], high: Sequence[float]) -> None:
        self.low = np.asarray(low, dtype=np.float64)
        self.high = np.asarray(high, dtype=np.float64)
        self._pairs = list(zip(self.low.tolist(), self.high.tolist()))
        self.known = bool(np.isfinite(self.low).any() or np.isfinite(self.high).any())
        self.rows = 0
        self.outside = np.zeros(len(self._pairs), dtype=np.int64)

    def row(self, row: Sequence[float]) -> None:
        """One row: a tuple of floats (the predictor's short rows), compared in Python; an
        ndarray (its long rows) takes the vectorized path, which costs less there."""
        if isinstance(row, np.ndarray):
            self.matrix(row.reshape(1, -1))
            return
        self.rows += 1
        if not self.known:
            return
        for i, (value, (lo, hi)) in enumerate(zip(row, self._pairs)):
            if value < lo or value > hi:
                self.outside[i] += 1

    def matrix(self, X: np.ndarray) -> None:
        """Rows (M, N)."""
        self.rows += X.shape[0]
        if self.known:
            self.outside += np.count_nonzero((X < self.low) | (X > self.high), axis=0)

    def problems(self, min_rows: int = OUTSIDE_MIN_ROWS) -> List[str]:
        """A line for each feature outside its range in ``OUTSIDE_WARN`` of the rows, or more."""
        if self.rows < min_rows:
            return []
        return [f'feature {i}: {n} of {self.rows} rows served since the model came were outside '
                f'the range it was trained on [{self.low[i]:.6g}, {self.high[i]:.6g}]: '
                'predictions there extrapolate'
                for i, n in enumerate(self.outside.tolist()) if n >= OUTSIDE_WARN * self.rows]

    def counts(self) -> str:
        """The counts for /diagnostics: 'feature: rows' where any, else 'none'."""
        found = [f'{i}: {n}' for i, n in enumerate(self.outside.tolist()) if n]
        return ', '.join(found) if found else 'none'


def trained_range_check(value: Sequence[float], values) -> str:
    """The parameter check of ``trained_min`` and ``trained_max`` (``parameters.Check``): one
    value per feature, and together a range (judged with the other's value after the change).

    >>> trained_range_check([0.0], {'num_features': 2, 'trained_min': [0.0], 'trained_max': [1.0]})
    'must have num_features = 2 values, got 1'
    """
    n = values.get('num_features')
    if n is not None and len(value) != n:
        return f'must have num_features = {n} values, got {len(value)}'
    low, high = values.get('trained_min', value), values.get('trained_max', value)
    return ranges_problem(low, high) or None
