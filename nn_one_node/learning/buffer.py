"""The trainer's sample ring: the newest ``capacity`` labeled samples in preallocated float64
storage, so memory stays flat however long the robot runs. No ROS import.

>>> buf = SampleBuffer(capacity=3, num_features=2)
>>> for k in range(5):
...     _ = buf.add([[k, -k]], [k % 2])
>>> buf.count, buf.total_added
(3, 5)
>>> X, y = buf.newest(2)
>>> X.tolist(), y.tolist()
([[3.0, -3.0], [4.0, -4.0]], [1.0, 0.0])
"""

from __future__ import annotations

import math
from typing import Tuple

import numpy as np

from nn_one_node.model import ArrayLike


def _check_count(value: int, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f'{name} must be an integer >= {minimum}, got {value!r}')
    return int(value)


class SampleBuffer:
    """Bounded ring buffer of labeled samples ``(x, y)`` in preallocated float64 storage.

    Holds at most ``capacity`` samples; adding more overwrites the oldest. Storage is allocated
    once (and again only by ``resize``), so memory does not grow with the number of samples added.
    """

    def __init__(self, capacity: int, num_features: int) -> None:
        self._capacity = _check_count(capacity, 'capacity', 1)
        self._num_features = _check_count(num_features, 'num_features', 1)
        self._X = np.empty((self._capacity, self._num_features), dtype=np.float64)
        self._y = np.empty(self._capacity, dtype=np.float64)
        self._next = 0  # row the next sample goes to; when full, also the oldest sample's row
        self._count = 0
        self._total_added = 0

    def __repr__(self) -> str:
        return (f'SampleBuffer(capacity={self._capacity}, num_features={self._num_features}, '
                f'count={self._count}, total_added={self._total_added})')

    def __len__(self) -> int:
        return self._count

    @property
    def capacity(self) -> int:
        """Maximum number of samples held."""
        return self._capacity

    @property
    def num_features(self) -> int:
        """Features per sample, N."""
        return self._num_features

    @property
    def count(self) -> int:
        """Number of samples held now (<= capacity)."""
        return self._count

    @property
    def total_added(self) -> int:
        """Samples accepted by ``add`` since construction (not reset by ``clear``/``resize``)."""
        return self._total_added

    def add(self, X_rows: ArrayLike, y_rows: ArrayLike) -> int:
        """Append K samples: ``X_rows`` of shape (K, N) (or one sample (N,)), ``y_rows`` (K,).

        Vectorized: at most two slice copies, however many rows. If K > capacity only the newest
        ``capacity`` rows are kept. Raises ValueError (and inserts nothing) for a wrong shape or a
        NaN/infinite value. Returns K.
        """
        X = np.asarray(X_rows, dtype=np.float64)
        y = np.asarray(y_rows, dtype=np.float64)
        if (1 <= X.ndim <= 2 and X.size == self._num_features and X.shape[-1] == X.size
                and y.size == 1 and y.ndim <= 1):
            # One row (a sample a message): a sum that is finite has no NaN or inf in it.
            label = float(y.reshape(-1)[0])
            if math.isfinite(float(X.sum())) and math.isfinite(label):
                row = self._next
                self._X[row] = X.reshape(-1)
                self._y[row] = label
                self._next = (row + 1) % self._capacity
                self._count = min(self._count + 1, self._capacity)
                self._total_added += 1
                return 1
        if X.ndim == 1:
            X = X.reshape(1, -1)
        y = y.reshape(-1) if y.ndim <= 1 else y
        if X.ndim != 2 or X.shape[1] != self._num_features:
            raise ValueError(
                f'samples must have shape (K, {self._num_features}), got {np.shape(X_rows)}')
        k = X.shape[0]
        if y.ndim != 1 or y.shape[0] != k:
            raise ValueError(f'need one label per sample ({k}), got shape {np.shape(y_rows)}')
        if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
            raise ValueError('samples contain NaN or infinite values')
        if k == 0:
            return 0
        cap = self._capacity
        if k >= cap:
            self._X[:] = X[k - cap:]
            self._y[:] = y[k - cap:]
            self._next = 0
        else:
            first = min(k, cap - self._next)
            self._X[self._next:self._next + first] = X[:first]
            self._y[self._next:self._next + first] = y[:first]
            rest = k - first
            if rest:
                self._X[:rest] = X[first:]
                self._y[:rest] = y[first:]
            self._next = (self._next + k) % cap
        self._count = min(self._count + k, cap)
        self._total_added += k
        return k

    def add_finite_row(self, x: np.ndarray, label: float) -> None:
        """Append one sample that the caller has checked: ``x`` a float64 (N,) array of finite
        values, ``label`` a finite float. The fast path of a sample a message (no checks)."""
        row = self._next
        self._X[row] = x
        self._y[row] = label
        self._next = row + 1 if row + 1 < self._capacity else 0
        if self._count < self._capacity:
            self._count += 1
        self._total_added += 1

    def arrays(self) -> Tuple[np.ndarray, np.ndarray]:
        """Read-only views ``(X (count, N), y (count,))`` of the held samples, without copying.

        The row order is storage order, not arrival order (once the ring has wrapped, the oldest
        sample sits anywhere): irrelevant for full-batch gradient descent and the feature
        statistics, which are sums over all rows. The views alias the storage, so a later
        ``add`` changes what they show; use ``ordered`` for an oldest-first copy.
        """
        X = self._X[:self._count]
        y = self._y[:self._count]
        X.flags.writeable = False
        y.flags.writeable = False
        return X, y

    def ordered(self) -> Tuple[np.ndarray, np.ndarray]:
        """Copies ``(X, y)`` of the held samples, oldest first."""
        if self._count < self._capacity:
            return self._X[:self._count].copy(), self._y[:self._count].copy()
        order = np.r_[self._next:self._capacity, 0:self._next]
        return self._X[order], self._y[order]

    def newest(self, k: int) -> Tuple[np.ndarray, np.ndarray]:
        """The newest ``k`` samples (at most ``count``), oldest first, C-contiguous.

        Read-only views of the storage when they lie in one piece (no copy: a later ``add`` may
        change what they show), else copies of the two pieces joined.
        """
        k = min(max(int(k), 0), self._count)
        start = self._next - k
        if start >= 0:
            X, y = self._X[start:self._next], self._y[start:self._next]
            X.flags.writeable = False
            y.flags.writeable = False
            return X, y
        return (np.concatenate((self._X[start:], self._X[:self._next])),
                np.concatenate((self._y[start:], self._y[:self._next])))

    def clear(self) -> None:
        """Forget every held sample (storage is kept; ``total_added`` is not reset)."""
        self._next = 0
        self._count = 0

    def resize(self, new_capacity: int) -> None:
        """Change the capacity, keeping the newest ``min(count, new_capacity)`` samples."""
        new_capacity = _check_count(new_capacity, 'capacity', 1)
        X, y = self.ordered()
        keep = min(self._count, new_capacity)
        self._X = np.empty((new_capacity, self._num_features), dtype=np.float64)
        self._y = np.empty(new_capacity, dtype=np.float64)
        self._X[:keep] = X[X.shape[0] - keep:]
        self._y[:keep] = y[y.shape[0] - keep:]
        self._capacity = new_capacity
        self._count = keep
        self._next = keep % new_capacity
