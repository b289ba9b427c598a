"""Online training core for the trainer node: sample ring buffer, feature scaling, gated updates.

No ROS import: the trainer node converts messages and parameters to arrays and calls this module.

* ``SampleBuffer`` keeps the newest ``capacity`` labeled samples in preallocated float64 storage,
  so memory stays flat however long the robot runs.
* ``Standardizer`` holds the per-feature mean ``mu`` and standard deviation ``sigma`` of a buffer
  and converts exactly between a model trained on standardized features ``(x - mu) / sigma``
  and the equivalent raw-feature model that the predictor applies unchanged::

      w_raw = w_s / sigma            b_raw = b_s - sum(w_s * mu / sigma)
      w_s   = w_raw * sigma          b_s   = b_raw + sum(w_raw * mu)

* ``train_update`` runs one trainer update: warm start from the deployed raw model, up to
  ``iterations`` full-batch gradient-descent steps with the maths of ``NeuronModel`` (same
  activation, loss, vectorized gradient and stopping rule as ``NeuronModel.fit``), conversion back
  to raw weights, and the deployment gate (see ``train_update``). The losses before and after
  the update are computed exactly as the model computes them (bit for bit); for MSE the steps use
  a fused kernel (``_Kernel.mse_step``) equal to the model's formulas within rounding (relative
  ~1e-12 after hundreds of steps), not bit for bit.

Performance: the buffer is never copied or standardized. The standardized model
``z = ((X - mu) / sigma) . w_s + b_s`` is evaluated as the raw model ``z = X . w_raw + b_raw``, and
its gradient as ``dL/dw_s = ((delta . X) - sum(delta) mu) / sigma / M``, so a step costs two
matrix-vector products over the raw buffer plus O(M) + O(N) work in arrays preallocated in a
``Workspace`` (numpy ``out=`` arguments; no O(M) allocation per step). For MSE the O(M) work is
eight passes (six elementwise, two sums; it was about fifteen), and a buffer too large for the
cache is processed in row blocks so that it is read from memory once per step (see
``_Kernel.mse_step``).

Conditioning: evaluating the standardized model from raw features cancels terms of size
``|mu| / sigma`` against each other, which costs about ``log10(|mu| / sigma)`` of float64's 16
digits. A feature whose ``sigma`` is below ``STD_FLOOR_REL * |mu|`` (or ``STD_FLOOR_ABS``) carries
no usable information at that precision and is treated as constant (``sigma := 1``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from nn_one_node.model import (_BCE_EPS, ArrayLike, as_bias, as_weights, check_activation,
                    check_learning_rate, check_loss, check_tolerance)

# A feature with sigma below either floor is treated as constant: sigma := 1 (see module doc).
# The absolute floor is sqrt of the smallest normal double: 1 / sigma and sigma**2 stay normal.
STD_FLOOR_ABS = float(np.sqrt(np.finfo(np.float64).tiny))
STD_FLOOR_REL = 1e-9

# Rows per block when computing the standard deviation without an (M, N) temporary.
_STATS_CHUNK_ROWS = 4096

# The gate's notion of "worse": a rise of the loss by more than this relative amount. Below it
# the difference is rounding (gradient descent at its optimum), not a worse model: refusing it
# would warn "learning_rate too large?" about a converged model.
GATE_RTOL = 1e-9

# A fused MSE gradient step (``_Kernel.mse_step``) on a buffer larger than _STEP_BLOCKED_BYTES
# (too large for the last-level cache) runs in row blocks of about _STEP_BLOCK_BYTES, so that the
# gradient product reads the block of X that the forward product has just brought into the L2
# cache: one pass over the buffer from memory instead of two. Smaller buffers are read from the
# last-level cache anyway, and there one block is faster: fewer numpy calls per step (on one
# BLAS thread, 5k-30k x 64: 1.16-1.38x the two products in one block, 1.39-1.62x in 1 MB blocks).
_STEP_BLOCKED_BYTES = 16 << 20
_STEP_BLOCK_BYTES = 1 << 20


def _check_count(value: int, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f'{name} must be an integer >= {minimum}, got {value!r}')
    return int(value)


# ------------------------------------------------------------------------------- sample buffer
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


# ----------------------------------------------------------------------------------- workspace
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


# ------------------------------------------------------------------------- vectorized GD kernel
class _Kernel:
    """NeuronModel's forward pass, loss and gradient bracket on one data set, in work arrays.

    In ``loss`` and ``gradient_bracket`` every operation is the one ``NeuronModel`` performs, in
    the same order, so results are bitwise equal; only the temporaries live in the workspace
    instead of fresh arrays (``mse_step`` trades that for speed: equal within rounding). The
    temporaries share as few arrays as possible (z, e, delta; plus 1 - y for 'bce'), to keep the
    O(M) working set small next to the buffer that the matrix-vector products stream through.
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, activation: str, loss: str,
                 ws: Workspace) -> None:
        m = X.shape[0]
        self.X, self.y, self.m = X, y, m
        self.sigmoid = activation == 'sigmoid'
        self.bce = loss == 'bce'
        self.z = ws.z[:m]
        self.delta = ws.delta[:m]
        # The direction of the next blocked mse_step (see there): the first step follows the
        # loss pass, which reads X forward, so it goes backward.
        self.backward = True
        self.e = ws.e[:m]
        self.one_minus_y = ws.one_minus_y[:m]
        self.ws = ws
        if self.bce:
            np.subtract(1.0, y, out=self.one_minus_y)
        elif self.sigmoid:  # for mse_step: 2 (y_hat - y) = t + (1 - 2 y), t = tanh(z / 2)
            np.multiply(y, -2.0, out=self.one_minus_y)
            self.one_minus_y += 1.0

    def loss(self, w: np.ndarray, b: float) -> float:
        """Loss of the raw model (w, b); leaves y_hat in ``z`` and ``y_hat - y`` in ``delta``."""
        z, e, d = self.z, self.e, self.delta
        np.dot(self.X, w, out=z)
        z += b
        if self.sigmoid:
            # model.sigmoid bit for bit: e = exp(-|z|); 1 / (1 + e), times e where z < 0. The
            # masked multiply (``where=``) is slow on a random sign pattern, so every element is
            # multiplied by max(e, z >= 0) instead: e where z < 0, exactly 1.0 elsewhere (e <= 1).
            np.greater_equal(z, 0.0, out=d)  # 1.0 / 0.0; d is free until y_hat - y
            np.abs(z, out=e)
            np.negative(e, out=e)
            np.exp(e, out=e)
            np.add(1.0, e, out=z)
            np.divide(1.0, z, out=z)
            np.maximum(e, d, out=e)
            np.multiply(z, e, out=z)
        if self.bce:  # y log(p) + (1 - y) log(1 - p), p = clip(y_hat), summed as the model does
            np.clip(z, _BCE_EPS, 1.0 - _BCE_EPS, out=e)
            np.log(e, out=d)
            np.multiply(self.y, d, out=d)
            np.negative(e, out=e)
            np.log1p(e, out=e)
            np.multiply(self.one_minus_y, e, out=e)
            np.add(d, e, out=d)
            value = float(-np.mean(d))
            np.subtract(z, self.y, out=d)
            return value
        np.subtract(z, self.y, out=d)
        return float(np.dot(d, d) / self.m)

    def gradient_bracket(self) -> np.ndarray:
        """Turn ``delta`` into the gradient bracket (times y_hat (1 - y_hat) for sigmoid + MSE)."""
        if self.sigmoid and not self.bce:
            np.subtract(1.0, self.z, out=self.e)
            np.multiply(self.z, self.e, out=self.e)
            np.multiply(self.delta, self.e, out=self.delta)
        return self.delta

    def mse_step(self, w: np.ndarray, b: float, grad: np.ndarray) -> Tuple[float, float]:
        """MSE loss of the raw model (w, b) and its gradient bracket's products, in one pass.

        Writes ``delta . X`` into ``grad`` and returns ``(loss, sum(delta))``, where ``delta`` is
        the bracket ``y_hat - y`` (linear) or ``(y_hat - y) y_hat (1 - y_hat)`` (sigmoid): the
        same formulas as ``loss`` and ``gradient_bracket``, with fewer passes over O(M) arrays,
        so equal to them within rounding (relative ~1e-15 per element; the sums are taken in
        another order), not bit for bit:

        * a large buffer is processed in row blocks (see ``_STEP_BLOCKED_BYTES``), so that the
          gradient product reads a block of X that the forward product has just brought into
          the cache; successive steps walk the blocks in opposite directions, so that a step
          starts with the blocks the one before read last, still in the last-level cache (a
          32 MB cache, one BLAS thread, two A/B runs: 1.30-1.46 against 1.59-1.80 ms a step at
          50k x 64, 2.59-3.01 against 2.92-3.42 ms at 100k x 64);
        * the sigmoid is ``y_hat = (1 + t) / 2`` with ``t = tanh(z / 2)`` (one ufunc, no
          overflow), ``2 (y_hat - y) = t + (1 - 2 y)`` and ``4 y_hat (1 - y_hat) = 1 - t^2``;
          the exact factors 1/2, 1/4 and 1/8 are applied to the sums, not to every element.
        """
        X, m, ws = self.X, self.m, self.ws
        rows = m if X.nbytes <= _STEP_BLOCKED_BYTES else max(_STEP_BLOCK_BYTES // X[0].nbytes, 1)
        t_all, u_all = self.z, self.delta  # work arrays of M elements; a block uses the start
        g = ws.grad_block[:X.shape[1]]
        if self.sigmoid:
            w_half = ws.w_half[:X.shape[1]]
            np.multiply(w, 0.5, out=w_half)  # X . (w / 2) + b / 2 = z / 2 exactly
            w_eval, b_eval, c = w_half, 0.5 * b, self.one_minus_y
        else:
            w_eval, b_eval, c = w, b, self.y
        sq = 0.0
        s = 0.0
        starts = range(0, m, rows)
        if rows < m:
            if self.backward:
                starts = starts[::-1]
            self.backward = not self.backward
        first = True
        for start in starts:
            stop = min(start + rows, m)
            Xb = X[start:stop]
            t, u = t_all[:stop - start], u_all[:stop - start]
            np.dot(Xb, w_eval, out=t)
            t += b_eval
            if self.sigmoid:
                np.tanh(t, out=t)
                np.add(t, c[start:stop], out=u)  # 2 (y_hat - y)
                sq += float(np.dot(u, u))
                np.multiply(t, t, out=t)
                np.subtract(1.0, t, out=t)  # 4 y_hat (1 - y_hat)
                np.multiply(u, t, out=u)  # 8 delta
            else:
                np.subtract(t, c[start:stop], out=u)  # delta = y_hat - y
                sq += float(np.dot(u, u))
            s += float(u.sum())
            if first:
                np.dot(u, Xb, out=grad)
                first = False
            else:
                np.dot(u, Xb, out=g)
                grad += g
        if self.sigmoid:  # powers of two: exact
            sq *= 0.25
            s *= 0.125
            grad *= 0.125
        return sq / m, s


# ---------------------------------------------------------------------------------- the update
@dataclass(frozen=True)
class UpdateResult:
    """Outcome of one trainer update.

    ``weights``/``bias`` are the raw-feature model to have in force afterwards: the new model if
    ``deployed``, else a copy of the deployed one, unchanged. ``loss_before`` is the deployed
    model's loss on the buffer, ``loss_after`` the candidate's (so, when refused, not the loss of
    the returned weights). ``iterations`` counts gradient steps applied; ``reason`` says in words
    why the candidate was deployed or refused.
    """

    weights: np.ndarray
    bias: float
    loss_before: float
    loss_after: float
    iterations: int
    deployed: bool
    reason: str


def train_update(X: ArrayLike, y: ArrayLike, weights: ArrayLike, bias: float, *,
                 learning_rate: float, iterations: int, tolerance: float = 1e-9,
                 activation: str = 'sigmoid', loss: str = 'mse', normalize: bool = True,
                 workspace: Optional[Workspace] = None,
                 deadline: Optional[float] = None, l2: float = 0.0) -> UpdateResult:
    """One trainer update on the samples ``X`` (M, N), ``y`` (M,), e.g. ``*buffer.arrays()``.

    1. Warm start from the deployed raw model ``(weights, bias)``; with ``normalize`` the model is
       moved to standardized space with the buffer's ``Standardizer`` (else mu = 0, sigma = 1).
    2. Up to ``iterations`` full-batch gradient-descent steps of the course's formulas, as
       ``NeuronModel.fit`` (equal within rounding): stop once ``|L_k - L_(k-1)| < tolerance``,
       or once ``time.monotonic()`` passes ``deadline`` (at least one step is made).
       With ``l2 > 0`` each step also shrinks the standardized weights (not the bias):
       ``w_s -= alpha l2 w_s`` (ridge / weight decay, as scikit-learn's ``alpha``), and the
       losses the gate compares (and ``loss_before``/``loss_after``) are the objective the
       steps descend: the loss plus ``l2 |w_s|^2`` for MSE (whose course gradient is half the
       loss's) and plus ``l2 |w_s|^2 / 2`` for 'bce'. ``l2 = 0`` (the default) is the plain
       course update, bit for bit.
    3. Back to raw weights, and the deployment gate: the candidate is refused if its loss, weights
       or bias are not finite (also when a step diverges midway), or if its loss on the buffer is
       greater than the deployed model's. A deployed model whose loss is not finite is replaced
       by any finite candidate.

    Inputs are never mutated. Bad arguments or data (shapes, NaN in X or y, a label outside
    [0, 1] for 'bce', learning_rate <= 0, ...) raise ValueError: they are caller errors, not
    training outcomes. Pass a ``Workspace`` kept across updates to avoid reallocating work arrays.
    """
    activation = check_activation(activation)
    loss = check_loss(loss, activation)
    lr = check_learning_rate(learning_rate)
    max_steps = _check_count(iterations, 'iterations', 1)
    tol = check_tolerance(tolerance)
    l2 = float(l2)
    if not (np.isfinite(l2) and l2 >= 0.0):
        raise ValueError(f'l2 must be a finite number >= 0, got {l2!r}')
    X = np.ascontiguousarray(X, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.float64).reshape(-1)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f'X must be a non-empty (M, N) array, got shape {X.shape}')
    m, n = X.shape
    w0 = as_weights(weights, n)
    b0 = as_bias(bias)
    if y.shape[0] != m:
        raise ValueError(f'y must have one label per sample ({m}), got {y.shape[0]}')

    ws = workspace if workspace is not None else Workspace()
    ws.ensure(m, n)
    if not np.isfinite(y, out=ws.mask[:m]).all():
        raise ValueError('y contains NaN or infinite values')
    if loss == 'bce' and (y.min() < 0.0 or y.max() > 1.0):
        raise ValueError("labels must lie in [0, 1] for loss 'bce'")
    if normalize:
        scaler = Standardizer.fit(X, ws)
    else:
        if not np.all(np.isfinite(np.sum(X, axis=0))):
            raise ValueError('X contains NaN or infinite values (or values too large to sum)')
        scaler = Standardizer.identity(n)

    # Overflow and NaN are outcomes the gate handles below, not warnings for the log.
    with np.errstate(all='ignore'):
        return _update(X, y, w0, b0, lr, max_steps, tol, activation, loss, scaler, ws, deadline,
                       l2)


def _update(X: np.ndarray, y: np.ndarray, w0: np.ndarray, b0: float, lr: float, max_steps: int,
            tol: float, activation: str, loss: str, scaler: Standardizer,
            ws: Workspace, deadline: Optional[float] = None, l2: float = 0.0) -> UpdateResult:
    """``train_update`` after argument checks: the descent and the gate."""
    m, n = X.shape
    kernel = _Kernel(X, y, activation, loss, ws)
    mu, sigma, constant = scaler.mean, scaler.std, scaler.constant
    # The L2 term of the objective, in standardized space (see train_update).
    penalty = (l2 if loss == 'mse' else 0.5 * l2) if l2 else 0.0
    w_s, b_s = scaler.from_raw(w0, b0)  # fresh array: updated in place below
    loss_before = kernel.loss(w0, b0)
    if penalty:
        loss_before += penalty * float(np.dot(w_s, w_s))

    w_raw, grad, tmp, finite_n = ws.w_raw[:n], ws.grad[:n], ws.tmp_n[:n], ws.mask_n[:n]
    step_scale = lr / (m * sigma)  # dL/dw_s = (delta . X - sum(delta) mu) / sigma / M
    steps = 0
    failure = ''
    previous = None
    for _ in range(max_steps):
        b_raw = scaler._to_raw_into(w_s, b_s, w_raw)
        if kernel.bce:
            current = kernel.loss(w_raw, b_raw)
            if np.isfinite(current):
                delta = kernel.gradient_bracket()
                np.dot(delta, X, out=grad)  # delta . X
                s = delta.sum()
        else:
            current, s = kernel.mse_step(w_raw, b_raw, grad)  # grad = delta . X
        if penalty:
            current += penalty * float(np.dot(w_s, w_s))
        if not np.isfinite(current):
            failure = f'the loss became non-finite at step {steps + 1}'
            break
        np.multiply(mu, s, out=tmp)
        np.subtract(grad, tmp, out=grad)  # delta . X_s = (delta . X - sum(delta) mu) / sigma
        # A constant feature's standardized value is 0: its gradient is 0, not the rounding
        # error of delta . X - sum(delta) mu, which is of order |mu| eps sum|delta| and would
        # move its weight (at |mu| >= ~1e16 by more than any step can repair).
        np.putmask(grad, constant, 0.0)
        np.multiply(grad, step_scale, out=grad)
        if l2:
            grad += (lr * l2) * w_s
        np.subtract(w_s, grad, out=w_s)
        b_s = float(b_s - lr * (s / m))
        steps += 1
        if not (np.isfinite(w_s, out=finite_n).all() and np.isfinite(b_s)):
            failure = f'the weights became non-finite at step {steps}'
            break
        if previous is not None and abs(current - previous) < tol:
            break
        previous = current
        if deadline is not None and time.monotonic() >= deadline:
            break  # the time budget: the steps so far go through the gate as usual

    b_new = scaler._to_raw_into(w_s, b_s, w_raw)
    w_new = w_raw.copy()
    finite_model = bool(np.all(np.isfinite(w_new)) and np.isfinite(b_new))
    loss_after = kernel.loss(w_new, b_new) if finite_model and not failure else float('nan')
    if penalty:
        loss_after += penalty * float(np.dot(w_s, w_s))
    hint = f' (learning_rate {lr:g} too large?)'
    if failure or not finite_model:
        reason = f'refused: {failure or "the new weights are not finite"}{hint}'
    elif not np.isfinite(loss_after):
        reason = f'refused: the new loss is {loss_after}{hint}'
    elif np.isfinite(loss_before) and loss_after > loss_before * (1.0 + GATE_RTOL):
        reason = (f'refused: the loss on the buffer would rise from {loss_before:.6g} to '
                  f'{loss_after:.6g}{hint}')
    else:
        return UpdateResult(w_new, b_new, loss_before, loss_after, steps, True,
                            f'deployed: loss {loss_before:.6g} -> {loss_after:.6g} after '
                            f'{steps} step(s) on {m} samples')
    return UpdateResult(w0, b0, loss_before, loss_after, steps, False, reason)
