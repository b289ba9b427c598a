"""The deployment gate: a candidate is judged on rows it was not fitted to (the rows that arrived
since the last update, at most a quarter of the training set, held out of its training), against
the model it started from, row by row, and refused when it is worse by more than the noise of
that comparison. With fewer than ``GATE_MIN_ROWS`` such rows, the training loss alone decides
(``descent.train_update``'s own gate). No ROS import.
"""

from __future__ import annotations

import math
from typing import Tuple

import numpy as np

from nn_one_node.model import _BCE_EPS, forward

# The gate judges a candidate on the rows held out of its training only when there are at least
# this many (a quarter of the rows trained on, at most those since the last update); with fewer,
# as at the first updates of a fast start, train_update's gate (the training loss) decides alone.
GATE_MIN_ROWS = 8

# The gate's notion of "worse": a rise of the loss by more than this relative amount. Below it
# the difference is rounding (gradient descent at its optimum, a candidate equal to the
# incumbent), not a worse model: refusing it would warn about a converged model.
GATE_RTOL = 1e-9


def row_losses(X: np.ndarray, y: np.ndarray, w: np.ndarray, b: float, activation: str,
               loss: str) -> np.ndarray:
    """Each row's loss under the model ``(w, b)``: squared error, or cross-entropy for 'bce'."""
    p = forward(X, w, b, activation)
    if loss == 'bce':
        pc = np.clip(p, _BCE_EPS, 1.0 - _BCE_EPS)
        return -(y * np.log(pc) + (1.0 - y) * np.log1p(-pc))
    d = p - y
    return d * d


def paired_gate(candidate: np.ndarray, incumbent: np.ndarray,
                z: float = 2.0) -> Tuple[bool, str]:
    """Accept a candidate unless its held-out losses are worse than the incumbent's beyond noise.

    The rows are the same for both (a paired comparison): with ``d = candidate - incumbent``,
    the candidate is refused when ``mean(d) > z * std(d) / sqrt(len(d))`` (one-sided, about 2.3%
    false refusals at z = 2) or when a loss is not finite. An equal model is accepted, and so
    is one worse by rounding alone (``GATE_RTOL`` of the incumbent's loss): a tie is no refusal.

    >>> ok, why = paired_gate(np.array([0.1, 0.2, 0.1, 0.3]), np.array([0.2, 0.2, 0.3, 0.3]))
    >>> ok
    True
    >>> ok, why = paired_gate(np.array([0.5, 0.6, 0.7, 0.6]), np.array([0.1, 0.2, 0.1, 0.2]))
    >>> ok, why
    (False, 'held-out loss 0.6 against 0.15 on 4 rows (worse by 0.45 +- 0.05)')
    >>> paired_gate(np.array([0.25, 0.25 + 1e-17]), np.array([0.25, 0.25]))[0]   # a tie
    True
    """
    candidate = np.asarray(candidate, dtype=np.float64)
    incumbent = np.asarray(incumbent, dtype=np.float64)
    k = candidate.shape[0]
    lc, li = float(np.mean(candidate)), float(np.mean(incumbent))
    if not math.isfinite(lc):
        return False, f'held-out loss of the candidate is {lc}'
    if not math.isfinite(li):  # the incumbent is broken: any finite candidate is better
        return True, f'held-out loss {lc:.6g} against {li} on {k} rows'
    d = candidate - incumbent
    mean = float(np.mean(d))
    stderr = float(np.std(d, ddof=1) / math.sqrt(k)) if k > 1 else 0.0
    text = f'held-out loss {lc:.6g} against {li:.6g} on {k} rows'
    if mean > z * stderr and mean > GATE_RTOL * abs(li):
        return False, f'{text} (worse by {mean:.3g} +- {stderr:.3g})'
    return True, text
