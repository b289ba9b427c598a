"""Features that drift like a clock, and the range a model was trained on. No ROS import.

A battery's voltage, a pose, an odometer or a counter moves one way over the training window.
Its past values say nothing about its next ones: a model fitted to them extrapolates as soon as
the robot goes on (the weight a voltage gets from a few hundred rows is small in standardized
units, and huge per volt). ``clock_features`` finds such features in the rows an update trains
on, oldest first:

* the rows are cut into ``CLOCK_BLOCKS`` blocks in arrival order; a feature drifts like a clock
  when its block means move one way only (each block's mean above the last, or each below) and
  the first and last block's means lie more than ``CLOCK_SHIFT`` within-block standard
  deviations apart;
* at least ``CLOCK_MIN_ROWS`` rows (a quarter of them a block), so that chance cannot do it: for
  a stationary feature the difference of two block means has a standard error of
  ``sqrt(2 / 25)`` = 0.28 standard deviations at 100 rows, so a shift of 2 is 7 standard errors.

The learning policy holds such a feature's weight back with the prior at its full strength
(``prior``, not ``prior / M``: see ``policy.LearningPolicy.update``), and the trainer's
``/diagnostics`` name it with advice (``health``). A feature that goes back and forth (a pose
on a round trip) or cycles within the window is not a clock.

``trained_ranges`` is the smallest and largest value of each feature in the rows a model was
trained on: the trainer deploys them with the model, and the predictor counts the rows outside
(``nn_one_node.ranges``).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> t = np.arange(400.0)
>>> X = np.column_stack([rng.normal(size=400),               # a sensor: no drift
...                      12.6 - 0.002 * t + rng.normal(scale=0.05, size=400),  # a battery
...                      np.sin(t / 20.0)])                  # cycles within the window
>>> [(i, round(shift, 1)) for i, shift in clock_features(X)]
[(1, 7.6)]
>>> clock_features(X[:99])                                   # too few rows to tell
[]
>>> low, high = trained_ranges(np.array([[1.0, 5.0], [3.0, -2.0]]))
>>> low.tolist(), high.tolist()
([1.0, -2.0], [3.0, 5.0])
"""

from __future__ import annotations

from typing import List, Tuple

import numpy as np

CLOCK_BLOCKS = 4  # blocks of rows in arrival order
CLOCK_MIN_ROWS = 100  # rows before a feature can be called a clock
CLOCK_SHIFT = 2.0  # first to last block mean, in within-block standard deviations


def clock_features(X: np.ndarray) -> List[Tuple[int, float]]:
    """The features of ``X`` (M, N; oldest row first) that drift like a clock, as
    ``(index, shift)``: the shift of the block means in within-block standard deviations
    (``inf`` for a feature constant within each block but not across them)."""
    X = np.asarray(X, dtype=np.float64)
    m = X.shape[0]
    if X.ndim != 2 or m < CLOCK_MIN_ROWS:
        return []
    blocks = np.array_split(X, CLOCK_BLOCKS)
    means = np.stack([b.mean(axis=0) for b in blocks])
    within = sum(b.var(axis=0) * b.shape[0] for b in blocks) / (m - CLOCK_BLOCKS)
    steps = np.diff(means, axis=0)
    one_way = np.all(steps > 0.0, axis=0) | np.all(steps < 0.0, axis=0)
    with np.errstate(divide='ignore', invalid='ignore'):
        shift = np.abs(means[-1] - means[0]) / np.sqrt(within)
    shift = np.where(within > 0.0, shift, np.where(one_way, np.inf, 0.0))
    found = np.flatnonzero(one_way & (shift > CLOCK_SHIFT))
    return [(int(i), float(shift[i])) for i in found]


def trained_ranges(X: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Each feature's smallest and largest value in the rows ``X`` (M >= 1, N)."""
    X = np.asarray(X, dtype=np.float64)
    return X.min(axis=0), X.max(axis=0)


def clock_advice(index: int, shift: float, rows: int) -> str:
    """The WARN for feature ``index``, with what to do.

    >>> print(clock_advice(4, 8.04, 2000)[:70])
    feature 4 drifts like a clock (over the 2000 rows trained on, its mean
    """
    size = 'more than any noise' if not np.isfinite(shift) else f'{shift:.1f} standard deviations'
    return (f'feature {index} drifts like a clock (over the {rows} rows trained on, its mean '
            f'moved one way by {size}): a model fitted to its past values extrapolates on its '
            'next ones, so its weight is held back by the prior at full strength. If it does '
            'not cause the label (a battery voltage, a pose, a counter, a time), leave it out '
            "of the assembler's features; if its change matters, feed its rate of change")
