"""One trainer update: the course's full-batch gradient descent, warm started, on the rows
trained on, then the training-loss gate. No ROS import.

``train_update`` runs one update: warm start from the deployed raw model, up to ``iterations``
full-batch gradient-descent steps with the maths of ``NeuronModel`` (same activation, loss,
vectorized gradient and stopping rule as ``NeuronModel.fit``), conversion back to raw weights
(``standardizer.Standardizer``), and the deployment gate (see ``train_update``). The losses
before and after the update are computed exactly as the model computes them (bit for bit); for
MSE the steps use a fused kernel (``_Kernel.mse_step``) equal to the model's formulas within
rounding (relative ~1e-12 after hundreds of steps), not bit for bit.

Performance: the buffer is never copied or standardized. The standardized model
``z = ((X - mu) / sigma) . w_s + b_s`` is evaluated as the raw model ``z = X . w_raw + b_raw``, and
its gradient as ``dL/dw_s = ((delta . X) - sum(delta) mu) / sigma / M``, so a step costs two
matrix-vector products over the raw buffer plus O(M) + O(N) work in arrays preallocated in a
``Workspace`` (numpy ``out=`` arguments; no O(M) allocation per step). For MSE the O(M) work is
eight passes (six elementwise, two sums; it was about fifteen), and a buffer too large for the
cache is processed in row blocks so that it is read from memory once per step (see

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(200, 2))
>>> y = (X @ np.array([3.0, -2.0]) > 0).astype(float)
>>> r = train_update(X, y, np.zeros(2), 0.0, learning_rate=2.0, iterations=200)
>>> r.deployed, r.loss_after < r.loss_before, bool(r.weights[0] > 0 > r.weights[1])
(True, True, True)
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional, Tuple, Union

import numpy as np

from nn_one_node.learning.buffer import _check_count
from nn_one_node.learning.gate import GATE_RTOL
from nn_one_node.learning.standardizer import Standardizer, Workspace
from nn_one_node.model import (_BCE_EPS, ArrayLike, as_bias, as_weights, check_activation,
                               check_learning_rate, check_loss, check_tolerance)


# A fused MSE gradient step (``_Kernel.mse_step``) on a buffer larger than _STEP_BLOCKED_BYTES
# (too large for the last-level cache) runs in row blocks of about _STEP_BLOCK_BYTES, so that the
# gradient product reads the block of X that the forward product has just brought into the L2
# cache: one pass over the buffer from memory instead of two. Smaller buffers are read from the
# last-level cache anyway, and there one block is faster: fewer numpy calls per step (on one
# BLAS thread, 5k-30k x 64: 1.16-1.38x the two products in one block, 1.39-1.62x in 1 MB blocks).
_STEP_BLOCKED_BYTES = 16 << 20
_STEP_BLOCK_BYTES = 1 << 20


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
    converged: bool = False  # the descent stopped at ``tolerance``, not at its budget


def train_update(X: ArrayLike, y: ArrayLike, weights: ArrayLike, bias: float, *,
                 learning_rate: float, iterations: int, tolerance: float = 1e-9,
                 activation: str = 'sigmoid', loss: str = 'mse', normalize: bool = True,
                 workspace: Optional[Workspace] = None,
                 deadline: Optional[float] = None, l2: Union[float, ArrayLike] = 0.0,
                 min_steps: int = 1) -> UpdateResult:
    """One trainer update on the samples ``X`` (M, N), ``y`` (M,), e.g. ``*buffer.arrays()``.

    1. Warm start from the deployed raw model ``(weights, bias)``; with ``normalize`` the model is
       moved to standardized space with the buffer's ``Standardizer`` (else mu = 0, sigma = 1).
    2. Up to ``iterations`` full-batch gradient-descent steps of the course's formulas, as
       ``NeuronModel.fit`` (equal within rounding): stop once ``|L_k - L_(k-1)| < tolerance``
       (after ``min_steps`` steps at least), or once ``time.monotonic()`` passes ``deadline``
       (at least one step is made).
       With ``l2 > 0`` each step also shrinks the standardized weights (not the bias):
       ``w_s -= alpha l2 w_s`` (ridge / weight decay, as scikit-learn's ``alpha``), and the
       losses the gate compares (and ``loss_before``/``loss_after``) are the objective the
       steps descend: the loss plus ``l2 |w_s|^2`` for MSE (whose course gradient is half the
       loss's) and plus ``l2 |w_s|^2 / 2`` for 'bce'. ``l2 = 0`` (the default) is the plain
       course update, bit for bit. ``l2`` may also be one value per feature (N,): each
       standardized weight is pulled by its own.
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
    l2 = _check_l2(l2)
    X = np.ascontiguousarray(X, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.float64).reshape(-1)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f'X must be a non-empty (M, N) array, got shape {X.shape}')
    m, n = X.shape
    w0 = as_weights(weights, n)
    b0 = as_bias(bias)
    if y.shape[0] != m:
        raise ValueError(f'y must have one label per sample ({m}), got {y.shape[0]}')
    if isinstance(l2, np.ndarray) and l2.shape != (n,):
        raise ValueError(f'l2 must be one number or one per feature ({n}), got shape {l2.shape}')

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
                       l2, min_steps)


def _check_l2(l2: Union[float, ArrayLike]) -> Union[float, np.ndarray]:
    if np.ndim(l2) == 0:
        value = float(l2)
        if not (np.isfinite(value) and value >= 0.0):
            raise ValueError(f'l2 must be a finite number >= 0, got {l2!r}')
        return value
    values = np.asarray(l2, dtype=np.float64).reshape(-1)
    if not (np.all(np.isfinite(values)) and np.all(values >= 0.0)):
        raise ValueError(f'l2 must hold finite numbers >= 0, got {values.tolist()!r}')
    return values


def _penalty(penalty: Union[float, np.ndarray], w_s: np.ndarray) -> float:
    """The L2 term of the objective: ``penalty |w_s|^2``, weight by weight."""
    if isinstance(penalty, np.ndarray):
        return float(np.dot(penalty * w_s, w_s))
    return penalty * float(np.dot(w_s, w_s))


def _update(X: np.ndarray, y: np.ndarray, w0: np.ndarray, b0: float, lr: float, max_steps: int,
            tol: float, activation: str, loss: str, scaler: Standardizer,
            ws: Workspace, deadline: Optional[float] = None,
            l2: Union[float, np.ndarray] = 0.0, min_steps: int = 1) -> UpdateResult:
    """``train_update`` after argument checks: the descent and the gate."""
    m, n = X.shape
    kernel = _Kernel(X, y, activation, loss, ws)
    mu, sigma, constant = scaler.mean, scaler.std, scaler.constant
    # The L2 term of the objective, in standardized space (see train_update).
    penalized = bool(np.any(l2))
    penalty = (l2 if loss == 'mse' else 0.5 * l2) if penalized else 0.0
    w_s, b_s = scaler.from_raw(w0, b0)  # fresh array: updated in place below
    loss_before = kernel.loss(w0, b0)
    if penalized:
        loss_before += _penalty(penalty, w_s)

    w_raw, grad, tmp, finite_n = ws.w_raw[:n], ws.grad[:n], ws.tmp_n[:n], ws.mask_n[:n]
    step_scale = lr / (m * sigma)  # dL/dw_s = (delta . X - sum(delta) mu) / sigma / M
    steps = 0
    failure = ''
    previous = None
    converged = False
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
        if penalized:
            current += _penalty(penalty, w_s)
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
        if penalized:
            grad += (lr * l2) * w_s
        np.subtract(w_s, grad, out=w_s)
        b_s = float(b_s - lr * (s / m))
        steps += 1
        if not (np.isfinite(w_s, out=finite_n).all() and np.isfinite(b_s)):
            failure = f'the weights became non-finite at step {steps}'
            break
        if previous is not None and abs(current - previous) < tol and steps >= min_steps:
            converged = True
            break
        previous = current
        if deadline is not None and time.monotonic() >= deadline:
            break  # the time budget: the steps so far go through the gate as usual

    b_new = scaler._to_raw_into(w_s, b_s, w_raw)
    w_new = w_raw.copy()
    finite_model = bool(np.all(np.isfinite(w_new)) and np.isfinite(b_new))
    loss_after = kernel.loss(w_new, b_new) if finite_model and not failure else float('nan')
    if penalized:
        loss_after += _penalty(penalty, w_s)
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
                            f'{steps} step(s) on {m} samples', converged)
    return UpdateResult(w0, b0, loss_before, loss_after, steps, False, reason, converged)
