"""The course's multi-input, one-output neural model in plain numpy (no ROS import).

Notation follows the lecture "Neural Network NO1: Multi-Input One-Output Model":

* ``X`` is the feature matrix, shape ``(M, N)``: M samples, N features.
* ``w`` is the weight row vector, shape ``(N,)`` (the slides' ``(1, N)``), ``b`` a scalar bias.
* Forward pass: ``z = X . w^T + b`` and ``y_hat = sigma(z)`` (``y_hat = z`` for the linear model).
* Loss: mean squared error ``L = (1/M) sum (y_hat - y)^2``.
* Gradients, vectorized exactly as on the slides:

  - linear:  ``dL/dw = (1/M) (y_hat - y)^T . X``, ``dL/db = mean(y_hat - y)``
  - sigmoid: ``dL/dw = (1/M) [(y_hat - y) * y_hat * (1 - y_hat)]^T . X``,
    ``dL/db = mean((y_hat - y) * y_hat * (1 - y_hat))``

  Two facts about those formulas, kept on purpose:

  1. They are the gradient of *half* the MSE, ``L/2``; the exact gradient of the MSE is twice them.
     The factor 2 is folded into the learning rate, as the course does.
  2. The slide for the linear ``dL/db`` writes ``y_hat - y`` without the mean; the mean is what the
     per-parameter formula above it (``(1/M) sum ...``) says, and what is implemented.

* Gradient descent: ``w := w - alpha dL/dw``, ``b := b - alpha dL/db``, repeated until the loss
  changes by less than ``tolerance`` between two iterations, or ``max_iterations`` is reached.

An optional cross-entropy loss (``loss='bce'``, sigmoid only) is offered for the trainer node; its
gradient with the sigmoid is ``(1/M) (y_hat - y)^T . X`` (exact, no factor folded).

Bad input raises ``ValueError`` with a message naming the problem, and leaves the model unchanged.
"""

from __future__ import annotations

import math
import operator
from array import array
from typing import Optional, Sequence, Tuple, Union

import numpy as np

ArrayLike = Union[np.ndarray, Sequence[float], Sequence[Sequence[float]]]

ACTIVATIONS = ('sigmoid', 'linear')
LOSSES = ('mse', 'bce')

# Cross-entropy clips y_hat into [EPS, 1 - EPS] so that log() stays finite.
_BCE_EPS = 1e-12


def all_finite(x: np.ndarray) -> bool:
    """True when no value of the float64 array ``x`` is NaN or infinite.

    The sum of squares is finite exactly when every value is, unless finite values above ~1e154
    overflow it, which the exact check then clears. ``np.vdot`` (one BLAS dot product, no
    temporary) checks no floating-point flags, so it needs no ``np.errstate``; in the predictor
    a 1000 x 64 batch took 14-24 us this way against 62-83 us with ``errstate`` and ``np.sum``.
    """
    return math.isfinite(float(np.vdot(x, x))) or bool(np.isfinite(x).all())


def sigmoid(z: np.ndarray, out: Optional[np.ndarray] = None) -> np.ndarray:
    """Logistic function 1 / (1 + e^-z), computed without overflow for any finite or infinite z.

    Uses ``e^-|z|``, which never overflows: for z >= 0, 1 / (1 + e^-z); for z < 0, e^z / (1 + e^z).
    """
    z = np.asarray(z, dtype=np.float64)
    if out is None:
        out = np.empty_like(z)
    neg = z < 0  # before writing: ``out`` may be ``z`` itself
    # e^-|z| underflows to 0 for |z| > ~745, which is the right answer: keep that silent even
    # where the caller made underflow an error (np.seterr / np.errstate(all='raise')).
    with np.errstate(under='ignore'):
        e = np.exp(-np.abs(z))
        np.divide(1.0, 1.0 + e, out=out)
        np.multiply(out, e, out=out, where=neg)
    return out


def sigmoid_one(z: float) -> float:
    """``sigmoid`` of one Python float, the same formula (``e^-|z|``: never overflows).

    >>> sigmoid_one(0.0), sigmoid_one(-800.0), sigmoid_one(800.0)
    (0.5, 0.0, 1.0)
    """
    e = math.exp(-abs(z))
    y = 1.0 / (1.0 + e)
    return y * e if z < 0.0 else y


def forward(X: np.ndarray, weights: np.ndarray, bias: float, activation: str = 'sigmoid',
            out: Optional[np.ndarray] = None) -> np.ndarray:
    """The course's forward pass, ``y_hat = sigma(X . w^T + b)`` (``z`` itself for 'linear'):
    the one implementation that the model, the predictor's batches, the learning policy's
    scoring, its gate and the offline tool all call. ``X`` (M, N) or (N,), float64.

    >>> forward(np.array([[1.0, 2.0], [0.0, 0.0]]), np.array([0.5, -0.25]), 0.0).tolist()
    [0.5, 0.5]
    >>> forward(np.array([2.0, 1.0]), np.array([1.0, 1.0]), -1.0, 'linear').tolist()
    2.0
    """
    z = np.matmul(X, weights, out=out)
    z += bias
    if activation == 'sigmoid':
        return sigmoid(z, out=z)
    return z


def activate_one(z: float, activation: str) -> float:
    """The activation of one logit ``z`` (a Python float): ``forward`` for a single row."""
    return sigmoid_one(z) if activation == 'sigmoid' else z


def check_activation(activation: str) -> str:
    if activation not in ACTIVATIONS:
        raise ValueError(
            f'unknown activation {activation!r}: expected one of {", ".join(ACTIVATIONS)}')
    return activation


def check_loss(loss: str, activation: str) -> str:
    if loss not in LOSSES:
        raise ValueError(f'unknown loss {loss!r}: expected one of {", ".join(LOSSES)}')
    if loss == 'bce' and activation != 'sigmoid':
        raise ValueError("loss 'bce' (cross-entropy) needs activation 'sigmoid'")
    return loss


def check_learning_rate(learning_rate: float) -> float:
    try:
        lr = float(learning_rate)
    except (TypeError, ValueError):
        raise ValueError(f'learning_rate must be a number, got {learning_rate!r}') from None
    if not np.isfinite(lr) or lr <= 0.0:
        raise ValueError(f'learning_rate must be a finite number > 0, got {learning_rate!r}')
    return lr


def check_tolerance(tolerance: float) -> float:
    try:
        tol = float(tolerance)
    except (TypeError, ValueError):
        raise ValueError(f'tolerance must be a number, got {tolerance!r}') from None
    if not np.isfinite(tol) or tol < 0.0:
        raise ValueError(f'tolerance must be a finite number >= 0, got {tolerance!r}')
    return tol


def as_weights(weights: ArrayLike, num_features: int) -> np.ndarray:
    """``weights`` as a fresh float64 array of shape (num_features,), or raise ValueError."""
    try:
        w = np.array(weights, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError('weights must be a sequence of numbers') from None
    if w.ndim == 2 and w.shape[0] == 1:
        w = w[0]  # the slides' (1, N) row vector
    if w.ndim != 1 or w.shape[0] != num_features:
        raise ValueError(
            f'weights must have {num_features} values (one per feature), got shape {w.shape}')
    if not np.all(np.isfinite(w)):
        raise ValueError('weights contain NaN or infinite values')
    return w


def as_bias(bias: float) -> float:
    try:
        b = float(bias)
    except (TypeError, ValueError):
        raise ValueError(f'bias must be a number, got {bias!r}') from None
    if not np.isfinite(b):
        raise ValueError(f'bias must be finite, got {bias!r}')
    return b


class NeuronModel:
    """One neuron: ``y_hat = activation(X . w^T + b)`` trained by vectorized gradient descent."""

    def __init__(self, num_features: int, activation: str = 'sigmoid',
                 weights: Optional[ArrayLike] = None, bias: float = 0.0,
                 seed: Optional[int] = None, loss: str = 'mse') -> None:
        if isinstance(num_features, bool) or not isinstance(num_features, (int, np.integer)):
            raise ValueError(f'num_features must be an integer, got {num_features!r}')
        if num_features < 1:
            raise ValueError(f'num_features must be >= 1, got {num_features}')
        self.num_features = int(num_features)
        self.activation = check_activation(activation)
        self.loss_name = check_loss(loss, activation)
        self.bias = as_bias(bias)
        if weights is not None:
            self.weights = as_weights(weights, self.num_features)
        elif seed is not None:
            self.weights = self.random_weights(self.num_features, seed)
        else:
            self.weights = np.zeros(self.num_features)

    @staticmethod
    def random_weights(num_features: int, seed: Optional[int]) -> np.ndarray:
        """The course's "randomly initialize": small normal weights, reproducible for a seed."""
        return np.random.default_rng(seed).normal(0.0, 0.01, size=num_features)

    def __repr__(self) -> str:
        return (f'NeuronModel(num_features={self.num_features}, activation={self.activation!r}, '
                f'loss={self.loss_name!r}, weights={self.weights.tolist()!r}, bias={self.bias!r})')

    # ----------------------------------------------------------------------------- input checks
    def _features(self, X: ArrayLike) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X.reshape(1, -1)
        if X.ndim != 2:
            raise ValueError(f'X must be (M, N) or (N,), got an array of {X.ndim} dimensions')
        if X.shape[0] == 0:
            raise ValueError('X is empty: at least one sample is needed')
        if X.shape[1] != self.num_features:
            raise ValueError(
                f'X has {X.shape[1]} features per sample, the model expects {self.num_features}')
        if not all_finite(X):
            raise ValueError('X contains NaN or infinite values')
        return X

    def _labels(self, y: ArrayLike, num_samples: int) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        if y.ndim == 2 and 1 in y.shape:
            y = y.reshape(-1)
        if y.ndim == 0:
            y = y.reshape(1)
        if y.ndim != 1 or y.shape[0] != num_samples:
            raise ValueError(
                f'y must have one label per sample ({num_samples}), got shape {y.shape}')
        if not np.all(np.isfinite(y)):
            raise ValueError('y contains NaN or infinite values')
        if self.loss_name == 'bce' and (np.any(y < 0.0) or np.any(y > 1.0)):
            raise ValueError("labels must lie in [0, 1] for loss 'bce'")
        return y

    # --------------------------------------------------------------------------------- the maths
    def _forward(self, X: np.ndarray) -> np.ndarray:
        return forward(X, self.weights, self.bias, self.activation)

    def _logits(self, X: np.ndarray) -> np.ndarray:
        z = X @ self.weights
        z += self.bias
        return z

    def activate(self, z: np.ndarray) -> np.ndarray:
        """The activation applied to ``z`` in place (a float64 array); returns it."""
        if self.activation == 'sigmoid':
            return sigmoid(z, out=z)
        return z

    def _loss(self, y_hat: np.ndarray, y: np.ndarray) -> float:
        if self.loss_name == 'bce':
            p = np.clip(y_hat, _BCE_EPS, 1.0 - _BCE_EPS)
            return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log1p(-p)))
        d = y_hat - y
        return float(np.dot(d, d) / d.shape[0])

    def _delta(self, y_hat: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The bracket of the vectorized gradient, one value per sample."""
        d = y_hat - y
        if self.activation == 'sigmoid' and self.loss_name == 'mse':
            d *= y_hat * (1.0 - y_hat)
        return d

    def _gradients(self, X: np.ndarray, y_hat: np.ndarray,
                   y: np.ndarray) -> Tuple[np.ndarray, float]:
        delta = self._delta(y_hat, y)
        m = X.shape[0]
        return (delta @ X) / m, float(delta.sum() / m)

    def predict(self, X: ArrayLike) -> np.ndarray:
        """y_hat for X of shape (M, N) or one sample (N,); returns shape (M,)."""
        return self._forward(self._features(X))

    def logits(self, X: ArrayLike) -> np.ndarray:
        """``z = X . w + b`` before the activation, checked as ``predict`` checks X; shape (M,).

        ``predict(X) == activate(logits(X))``. A z that overflowed to +-inf (or to NaN, inf -
        inf) can only be seen here: the sigmoid maps +-inf to 1 or 0 as if it were an answer.
        """
        return self._logits(self._features(X))

    def loss(self, X: ArrayLike, y: ArrayLike) -> float:
        """MSE ``mean((y_hat - y)**2)`` (or the mean cross-entropy with ``loss='bce'``)."""
        X = self._features(X)
        y = self._labels(y, X.shape[0])
        return self._loss(self._forward(X), y)

    def gradients(self, X: ArrayLike, y: ArrayLike) -> Tuple[np.ndarray, float]:
        """(dL/dw as (N,), dL/db as float): the course's vectorized formulas (see module doc).

        For the MSE these are the gradients of half the MSE, as on the slides.
        """
        X = self._features(X)
        y = self._labels(y, X.shape[0])
        return self._gradients(X, self._forward(X), y)

    def step(self, X: ArrayLike, y: ArrayLike, learning_rate: float) -> float:
        """One gradient-descent step ``w -= lr dL/dw; b -= lr dL/db``; returns the loss before it.

        If the update would make the weights non-finite, ValueError is raised and the model is
        left as it was.
        """
        lr = check_learning_rate(learning_rate)
        X = self._features(X)
        y = self._labels(y, X.shape[0])
        return self._step(X, y, lr)

    def _step(self, X: np.ndarray, y: np.ndarray, lr: float) -> float:
        y_hat = self._forward(X)
        loss = self._loss(y_hat, y)
        dw, db = self._gradients(X, y_hat, y)
        w = self.weights - lr * dw
        b = self.bias - lr * db
        if not (np.all(np.isfinite(w)) and np.isfinite(b)):
            raise ValueError(
                f'gradient step diverged (learning_rate {lr} too large?): weights left unchanged')
        self.weights, self.bias = w, float(b)
        return loss

    def fit(self, X: ArrayLike, y: ArrayLike, learning_rate: float,
            max_iterations: int = 1000, tolerance: float = 1e-9) -> np.ndarray:
        """Repeat ``step`` until ``|L_k - L_(k-1)| < tolerance`` or ``max_iterations`` steps.

        Returns the loss history: the loss before each step, then the loss after the last one.
        On divergence (non-finite weights) ValueError is raised and the model keeps the weights
        it had before ``fit``.
        """
        lr = check_learning_rate(learning_rate)
        if isinstance(max_iterations, bool) or not isinstance(max_iterations, (int, np.integer)) \
                or max_iterations < 1:
            raise ValueError(f'max_iterations must be an integer >= 1, got {max_iterations!r}')
        tol = check_tolerance(tolerance)
        X = self._features(X)
        y = self._labels(y, X.shape[0])
        saved = (self.weights.copy(), self.bias)
        history = []
        try:
            for _ in range(int(max_iterations)):
                history.append(self._step(X, y, lr))
                if len(history) >= 2 and abs(history[-1] - history[-2]) < tol:
                    break
            history.append(self._loss(self._forward(X), y))
        except ValueError:
            self.weights, self.bias = saved
            raise
        if not np.isfinite(history[-1]):
            self.weights, self.bias = saved
            raise ValueError('fit diverged: the loss is not finite; weights left unchanged')
        return np.asarray(history)


# One sample of up to this many features is predicted in Python floats by ``RowPredictor``: a few
# numpy calls cost more than the arithmetic there, most of all in a node whose caches have gone
# cold between two messages, as they have at sensor rates. Above it, one ``np.vdot``. Measured
# here with the caches flushed before each call (numpy 2.3, Python 3.11): Python 9 us at 64
# features, 15 at 128, 27 at 256; ``np.vdot`` 15-18 us at any of them (hot: 1.6, 3.1, 6.1 us
# against 1.0-1.2).
ROW_PYTHON_MAX_FEATURES = 128


class RowPredictor:
    """``NeuronModel.predict`` for one sample at a time, at the least cost per call.

    The predictor node's hot path for single-sample messages. A snapshot of a model's weights,
    bias and activation, taken at construction. Calling it with the N values of one sample (any
    sequence of floats, e.g. a message's ``array('d')``) returns y_hat as a float, or None when
    ``z = x . w + b`` is not finite: a NaN or infinite value in the sample, or an overflow. The
    caller then takes ``predict``'s vectorized path, which tells the two apart.

    The formula is ``predict``'s, with the operations in another order (a sequential sum, or
    ``np.vdot`` above ``ROW_PYTHON_MAX_FEATURES``, then ``math.exp``): the results agree with
    ``predict`` to a few units in the last place, not bit for bit. The length of ``row`` is the
    caller's to check.
    """

    __slots__ = ('num_features', 'bias', 'is_sigmoid', '_weights', '_weights_list')

    def __init__(self, model: NeuronModel) -> None:
        self.num_features = model.num_features
        self.bias = float(model.bias)
        self.is_sigmoid = model.activation == 'sigmoid'
        self._weights = model.weights.copy()
        self._weights_list = (self._weights.tolist()
                              if self.num_features <= ROW_PYTHON_MAX_FEATURES else None)

    def __call__(self, row: Sequence[float]) -> Optional[float]:
        if self._weights_list is not None:
            # NaN and inf propagate through the products and the sum (inf * 0 is NaN), so a
            # finite z proves a finite row.
            z = sum(map(operator.mul, row, self._weights_list)) + self.bias
        else:
            x = (np.frombuffer(row, dtype=np.float64)
                 if isinstance(row, array) and row.typecode == 'd'
                 else np.asarray(row, dtype=np.float64))
            # A dot product (BLAS ddot, unlike gemv, skips no zero) propagates NaN and inf like
            # the sum above, which the tests check. ``vdot``, unlike ``dot``, checks no
            # floating-point flags, so an overflow or inf * 0 warns of nothing and needs no
            # ``np.errstate``, which costs more than the product once the caches are cold
            # (about 15 of 30 us).
            z = float(np.vdot(x, self._weights)) + self.bias
        if not math.isfinite(z):
            return None
        return sigmoid_one(z) if self.is_sigmoid else z
