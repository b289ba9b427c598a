"""Feature scaling for training: ``Standardizer`` holds the per-feature mean ``mu`` and standard
deviation ``sigma`` of the rows trained on and converts exactly between a model trained on
standardized features ``(x - mu) / sigma`` and the equivalent raw-feature model that the
predictor applies unchanged::

    w_raw = w_s / sigma            b_raw = b_s - sum(w_s * mu / sigma)
    w_s   = w_raw * sigma          b_s   = b_raw + sum(w_raw * mu)

``Workspace`` holds the work arrays of an update (grown on demand, reused: no allocation per
step). No ROS import.

Conditioning: evaluating the standardized model from raw features cancels terms of size
``|mu| / sigma`` against each other, which costs about ``log10(|mu| / sigma)`` of float64's 16
digits. A feature whose ``sigma`` is below ``STD_FLOOR_REL * |mu|`` (or ``STD_FLOOR_ABS``) carries
no usable information at that precision and is treated as constant (``sigma := 1``).

>>> import numpy as np
>>> s = Standardizer.fit(np.array([[1.0, 5.0], [3.0, 5.0]]))
>>> s.mean.tolist(), s.std.tolist(), s.constant.tolist()
([2.0, 5.0], [1.0, 1.0], [False, True])
>>> w_raw, b_raw = s.to_raw(np.array([2.0, 0.0]), 1.0)
>>> w_raw.tolist(), b_raw
([2.0, 0.0], -3.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from nn_one_node.learning.buffer import _check_count
from nn_one_node.model import ArrayLike


# A feature with sigma below either floor is treated as constant: sigma := 1 (see module doc).
# The absolute floor is sqrt of the smallest normal double: 1 / sigma and sigma**2 stay normal.
STD_FLOOR_ABS = float(np.sqrt(np.finfo(np.float64).tiny))
STD_FLOOR_REL = 1e-9

# Rows per block when computing the standard deviation without an (M, N) temporary.
_STATS_CHUNK_ROWS = 4096


class Workspace:
    """Work arrays for ``train_update``, grown on demand and reused, so steps do not allocate.

    Keep one per trainer and pass it to every ``train_update``; sized to the buffer's capacity it
    is allocated once. Not thread-safe: one update at a time per workspace.
    """

    def __init__(self, max_samples: int = 0, num_features: int = 0) -> None:
        self._m = 0
        self._n = 0
        self.ensure(max_samples, num_features)

    def ensure(self, num_samples: int, num_features: int) -> None:
        """Make room for ``num_samples`` x ``num_features`` (never shrinks)."""
        if num_samples > self._m:
            self._m = int(num_samples)
            self.z = np.empty(self._m)
            self.delta = np.empty(self._m)
            self.e = np.empty(self._m)
            self.one_minus_y = np.empty(self._m)
            self.mask = np.empty(self._m, dtype=bool)
        if num_features > self._n:
            self._n = int(num_features)
            self.ones = np.ones(_STATS_CHUNK_ROWS)
            self.chunk = np.empty((_STATS_CHUNK_ROWS, self._n))
            self.w_raw = np.empty(self._n)
            self.grad = np.empty(self._n)
            self.tmp_n = np.empty(self._n)
            self.w_half = np.empty(self._n)
            self.grad_block = np.empty(self._n)
            self.mask_n = np.empty(self._n, dtype=bool)


# --------------------------------------------------------------------------------- standardizer
@dataclass(frozen=True)
class Standardizer:
    """Per-feature ``mean`` (mu) and ``std`` (sigma; 1 for a constant feature) of a sample set.

    The arrays are read-only. ``constant`` marks the features whose sigma was replaced by 1.
    """

    mean: np.ndarray
    std: np.ndarray
    constant: np.ndarray

    @classmethod
    def identity(cls, num_features: int) -> 'Standardizer':
        """mu = 0, sigma = 1: standardized space is raw space (``normalize`` off)."""
        n = _check_count(num_features, 'num_features', 1)
        return cls._frozen(np.zeros(n), np.ones(n), np.zeros(n, dtype=bool))

    @classmethod
    def fit(cls, X: ArrayLike, workspace: Optional[Workspace] = None) -> 'Standardizer':
        """Mean and (population) standard deviation of each column of X, shape (M, N).

        Two passes over X, the second in row blocks, so no (M, N) temporary is allocated.
        Raises ValueError for an empty X or NaN/infinite values.
        """
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
            raise ValueError(f'X must be a non-empty (M, N) array, got shape {X.shape}')
        m, n = X.shape
        ws = workspace if workspace is not None else Workspace(0, n)
        ws.ensure(0, n)
        # Up to one block of rows (the trainer's training window), the column sums are a BLAS
        # product with a vector of ones: as exact as numpy's row-by-row sum over axis 0 (both
        # add the rows in order) and several times faster on few columns.
        small = m <= _STATS_CHUNK_ROWS and X.flags.c_contiguous
        mu = np.dot(ws.ones[:m], X) / m if small else np.mean(X, axis=0)
        if not np.all(np.isfinite(mu)):
            raise ValueError('X contains NaN or infinite values (or values too large to sum)')
        ss = np.zeros(n)
        for start in range(0, m, _STATS_CHUNK_ROWS):
            block = X[start:start + _STATS_CHUNK_ROWS]
            d = ws.chunk[:block.shape[0], :n]
            np.subtract(block, mu, out=d)
            np.multiply(d, d, out=d)
            ss += np.dot(ws.ones[:m], d) if small else np.sum(d, axis=0)
        sigma = np.sqrt(ss / m)
        if not np.all(np.isfinite(sigma)):
            raise ValueError('X has values too large for their variance to be computed')
        constant = (sigma < STD_FLOOR_ABS) | (sigma <= STD_FLOOR_REL * np.abs(mu))
        sigma[constant] = 1.0
        return cls._frozen(mu, sigma, constant)

    @classmethod
    def _frozen(cls, mu: np.ndarray, sigma: np.ndarray, constant: np.ndarray) -> 'Standardizer':
        for a in (mu, sigma, constant):
            a.flags.writeable = False
        return cls(mu, sigma, constant)

    @property
    def num_features(self) -> int:
        return int(self.mean.shape[0])

    def transform(self, X: ArrayLike) -> np.ndarray:
        """A new standardized copy ``(X - mu) / sigma`` (for tests and offline use)."""
        return (np.asarray(X, dtype=np.float64) - self.mean) / self.std

    def to_raw(self, w_s: ArrayLike, b_s: float) -> Tuple[np.ndarray, float]:
        """Raw-feature model equal to the standardized one: ``(w_s / sigma, b_s - w_raw . mu)``."""
        w_s = np.asarray(w_s, dtype=np.float64)
        w_raw = np.empty_like(self.std)
        b_raw = self._to_raw_into(w_s, float(b_s), w_raw)
        return w_raw, b_raw

    def from_raw(self, w_raw: ArrayLike, b_raw: float) -> Tuple[np.ndarray, float]:
        """Standardized-space model equal to a raw one: ``(w_raw * sigma, b_raw + w_raw . mu)``."""
        w_raw = np.asarray(w_raw, dtype=np.float64)
        return w_raw * self.std, float(b_raw) + float(np.dot(w_raw, self.mean))

    def _to_raw_into(self, w_s: np.ndarray, b_s: float, w_raw: np.ndarray) -> float:
        """``to_raw`` writing the weights into ``w_raw``; returns the raw bias. No allocation."""
        np.divide(w_s, self.std, out=w_raw)
        return b_s - float(np.dot(w_raw, self.mean))
