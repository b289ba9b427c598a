"""Prequential metrics: each labeled row is scored by the model in force *before* it is learned
("test-then-train"), so that accuracy, MSE and log loss over the newest rows say how well the
robot predicts now, not how well the model fits its buffer. No ROS import.

Reference: J. Gama, R. Sebastiao, P. P. Rodrigues, "On evaluating stream learning algorithms",
Machine Learning 90 (2013); River's ``evaluate.progressive_val_score``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nn_one_node.model import _BCE_EPS


class PrequentialMetrics:
    """Accuracy (threshold 0.5), MSE and log loss of predictions over the newest ``window`` rows.

    ``update(p, y)`` takes the predictions made *before* learning the rows, and their labels.
    Log loss needs probabilities (the sigmoid model): with ``probabilities=False`` it is NaN.

    >>> m = PrequentialMetrics(window=3)
    >>> m.update([0.9, 0.2, 0.6], [1.0, 0.0, 0.0])
    >>> round(m.accuracy, 4), round(m.mse, 4)            # 2 of 3 right; (0.01 + 0.04 + 0.36) / 3
    (0.6667, 0.1367)
    >>> m.update([0.8], [1.0])                          # the window slides: 0.9 leaves
    >>> round(m.accuracy, 4), m.count, m.seen
    (0.6667, 3, 4)
    """

    def __init__(self, window: int = 500, probabilities: bool = True) -> None:
        if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
            raise ValueError(f'window must be an integer >= 1, got {window!r}')
        self.window = int(window)
        self.probabilities = probabilities
        # Rings of Python floats, one entry a row: a row a message costs a few list stores,
        # not numpy calls; the means are taken when asked (the diagnostics' rate).
        self._correct = [0.0] * self.window
        self._squared = [0.0] * self.window
        self._log = [0.0] * self.window
        self._next = 0
        self.count = 0
        self.seen = 0
        self._right = 0  # rows right in the window: a count, exact, so accuracy is O(1)

    def update(self, p: Any, y: Any) -> None:
        if isinstance(p, float) and isinstance(y, float):
            self.update_one(p, y)
            return
        p = np.asarray(p, dtype=np.float64).reshape(-1)
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        for pi, yi in zip(p[-self.window:].tolist(), y[-self.window:].tolist()):
            self.update_one(pi, yi)
        self.seen += max(p.shape[0] - self.window, 0)

    def update_one(self, p: float, y: float) -> None:
        i = self._next
        right = 1.0 if (p >= 0.5) == (y >= 0.5) else 0.0
        if self.count == self.window:  # the window is full: row i leaves it
            self._right -= self._correct[i]
        self._right += right
        self._correct[i] = right
        d = p - y
        self._squared[i] = d * d
        if self.probabilities:
            pc = min(max(p, _BCE_EPS), 1.0 - _BCE_EPS)
            self._log[i] = -math.log(pc) if y >= 1.0 else -math.log1p(-pc) if y <= 0.0 else -(
                y * math.log(pc) + (1.0 - y) * math.log1p(-pc))
        self._next = i + 1 if i + 1 < self.window else 0
        if self.count < self.window:
            self.count += 1
        self.seen += 1

    def _mean(self, ring: list) -> float:
        if not self.count:
            return math.nan
        return math.fsum(ring[:self.count]) / self.count

    @property
    def accuracy(self) -> float:
        # asked for each robot of a fleet, once a second, and for the rest of it: not a sum
        return self._right / self.count if self.count else math.nan

    @property
    def mse(self) -> float:
        return self._mean(self._squared)

    @property
    def log_loss(self) -> float:
        return self._mean(self._log) if self.probabilities else math.nan

    def clear(self) -> None:
        self._next = 0
        self.count = 0
        self._right = 0
