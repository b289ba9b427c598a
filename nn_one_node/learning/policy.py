"""The trainer's learning policy: what is kept, what is trained on, when, and what is deployed.

No ROS import: the trainer core (``trainer_core``, which the node and ``nn_one_bag train``
drive) calls it; the gradient descent itself is ``descent.train_update`` (the course's vectorized
MSE gradient). It puts small concepts together, in the manner of River, each in its module:
prequential metrics (``metrics``: each row scored by the model in force before it is learned),
change detection (``page_hinkley``), the gate on rows a candidate was not fitted to (``gate``),
when to update (``cadence``: every ``train_period``, every ``update_every`` rows, and at each
doubling of a young training set), features that drift like a clock (``drift``). Forgetting is a
window: an update trains on the newest ``train_window`` rows of the ring (``buffer_size`` rows
are kept), narrowed to the rows after a detected change. Cost: a warm start from the model in
force, and a stop at convergence relative to the loss (``relative_tolerance``). Few rows cannot
make an over-confident model: the ``prior`` fades as rows accrue (see ``update``).

A stream whose concept flips midway, end to end:

>>> import numpy as np
>>> rng = np.random.default_rng(7)
>>> w_true = np.array([2.0, -1.0])
>>> pol = LearningPolicy(2, PolicyConfig())
>>> for t in range(4000):
...     if t == 2000:
...         w_true = -w_true                      # the world changes
...     x = rng.normal(size=(1, 2))
...     y = (rng.random(1) < 1 / (1 + np.exp(-x @ w_true))).astype(float)
...     _ = pol.add(x, y, now=t / 100)            # scored by the model in force, then kept
...     if pol.due(now=t / 100):
...         _ = pol.update(now=t / 100)
>>> m = pol.metrics()
>>> m['changes'], 2000 < m['last_change_at'] < 2200
(1, True)
>>> bool(m['accuracy'] > 0.7), bool(np.all(np.sign(pol.weights) == np.sign(w_true)))
(True, True)

References: E. S. Page, "Continuous inspection schemes", Biometrika 41 (1954); J. Gama, R.
Sebastiao, P. P. Rodrigues, "On evaluating stream learning algorithms", Machine Learning 90
(2013) (prequential evaluation, fading and windowed error); River's ``drift.PageHinkley`` and
``evaluate.progressive_val_score``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from nn_one_node.learning.buffer import SampleBuffer
from nn_one_node.learning.cadence import Cadence
from nn_one_node.learning.config import PolicyConfig
from nn_one_node.learning.descent import train_update
from nn_one_node.learning.drift import clock_features, trained_ranges
from nn_one_node.learning.gate import GATE_MIN_ROWS, paired_gate, row_losses
from nn_one_node.learning.metrics import PrequentialMetrics
from nn_one_node.learning.page_hinkley import PageHinkley
from nn_one_node.learning.standardizer import Workspace
from nn_one_node.model import activate_one, forward

# A model with standing (resumed from the weights file, set by hand) is judged against a
# candidate only on at least this many rows the candidate was not fitted to.
STANDING_MIN_HELD_OUT = 30

# An update that stops at relative_tolerance makes at least this many steps first.
RELATIVE_MIN_STEPS = 10

# train_window 0 (auto): rows a feature, and the least window.
AUTO_WINDOW_PER_FEATURE = 100
AUTO_WINDOW_MIN = 1000

# A linear model's squared error beyond this (or NaN) is not fed to the change detector: one
# overflow would make its running mean infinite for good.
_MAX_ERROR = 1e300


# ---------------------------------------------------------------------------- the policy
@dataclass(frozen=True)
class PolicyUpdate:
    """What one ``LearningPolicy.update`` did.

    ``deployed``: the candidate is the model in force now. ``loss``: the training loss of the
    model in force afterwards on the rows trained on (the trainer's ``~/loss``). ``rows``: rows
    trained on; ``held_out``: rows judged on; ``iterations``: gradient steps; ``reason``: words;
    ``idle``: no descent ran (neither deployed nor refused).
    """

    deployed: bool
    reason: str
    loss: float
    rows: int
    held_out: int
    iterations: int
    idle: bool = False  # nothing was trained: nothing new to learn, or the incumbent waits


class LearningPolicy:
    """The trainer's learning, driven by ``add`` (rows), ``due``/``update`` (time) and ``reset``.

    The model in force (``weights``, ``bias``, ``activation``: raw features, what the predictor
    serves) changes only when an update's candidate passes the gate, or by ``set_model``.
    """

    def __init__(self, num_features: int, config: Optional[PolicyConfig] = None,
                 weights: Optional[np.ndarray] = None, bias: float = 0.0) -> None:
        cfg = config if config is not None else PolicyConfig()
        reason = cfg.problem()
        if reason:
            raise ValueError(reason)
        self.num_features = int(num_features)
        self.cfg = cfg
        self.buffer = SampleBuffer(cfg.buffer_size, self.num_features)
        self._workspace = Workspace()
        w = np.zeros(self.num_features) if weights is None else np.asarray(weights, float)
        self._model = (w.astype(np.float64).copy(), float(bias))
        self._start: Optional[Tuple[np.ndarray, float]] = None  # set by reset(start=...)
        self._metrics = PrequentialMetrics(cfg.metrics_window, cfg.activation == 'sigmoid')
        self._detector = self._new_detector()
        self._cadence = Cadence(cfg.min_samples, cfg.train_period, cfg.update_every,
                                cfg.fast_start)
        self._young = 0  # rows held since the start, the last reset or the last change
        self._tol_scale = math.nan  # the last update's loss: scales relative_tolerance
        # The last descent ran to ``tolerance`` on every row held (or its candidate was refused
        # on them): with no new row, an update would only repeat it.
        self._settled = False
        # The model in force came from outside (the weights file, by hand) and has standing: a
        # candidate replaces it only when it is better on enough rows it was not fitted to.
        self.standing = False
        self.clocks: List[Tuple[int, float]] = []  # (feature, shift) in the last update's rows
        self.clock_rows = 0
        # the smallest and largest values the model in force was trained on (None: not known)
        self.trained_range: Optional[Tuple[np.ndarray, np.ndarray]] = None
        self._label_stats = [0, 0.0, 0.0]  # linear: rows, moving mean and variance of labels
        self.changes = 0
        self.last_change_at: Optional[int] = None  # rows seen when it was detected
        self.last_change_onset: Optional[int] = None  # rows seen where it began (estimate)
        self.updates = 0
        self.deployed = 0
        self.refused = 0
        self.last_loss = math.nan
        self.last_reason = ''

    # --------------------------------------------------------------------- configuration
    def _new_detector(self) -> Optional[PageHinkley]:
        c = self.cfg
        if not c.change_threshold:
            return None  # change detection off
        return PageHinkley(c.change_min_samples, c.change_delta, c.change_threshold)

    def configure(self, cfg: PolicyConfig) -> None:
        """New settings from the next row/update on (the node's live parameter changes)."""
        reason = cfg.problem()
        if reason:
            raise ValueError(reason)
        old, self.cfg = self.cfg, cfg
        if cfg != old:
            self._settled = False  # other settings: the next update trains under them
        if cfg.buffer_size != self.buffer.capacity:
            self.buffer.resize(cfg.buffer_size)
            self._young = min(self._young, self.buffer.count)
        if (cfg.metrics_window != old.metrics_window
                or cfg.activation != old.activation):
            self._metrics = PrequentialMetrics(cfg.metrics_window, cfg.activation == 'sigmoid')
        if (cfg.change_threshold, cfg.change_delta, cfg.change_min_samples) != (
                old.change_threshold, old.change_delta, old.change_min_samples):
            self._detector = self._new_detector()
        cad = self._cadence
        cad.min_samples, cad.train_period = cfg.min_samples, cfg.train_period
        cad.update_every, cad.fast_start = cfg.update_every, cfg.fast_start

    # ------------------------------------------------------------------------- the model
    @property
    def weights(self) -> np.ndarray:
        return self._model[0].copy()

    @property
    def bias(self) -> float:
        return self._model[1]

    @property
    def activation(self) -> str:
        return self.cfg.activation

    def set_model(self, weights: Any, bias: float) -> None:
        """A model set from outside (by hand, from a file): in force now, and the next start."""
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
        if w.shape[0] != self.num_features or not (np.all(np.isfinite(w))
                                                   and math.isfinite(bias)):
            raise ValueError(f'a model needs {self.num_features} finite weights and bias')
        self._model = (w.copy(), float(bias))
        self._start = None
        self._settled = False
        self.standing = True
        self.trained_range = None
        # a model with standing is no fresh start: no doubling cadence from scratch
        self._cadence.young_at_last = max(self._cadence.young_at_last, self.cfg.fast_start)

    def _predict(self, X: np.ndarray) -> np.ndarray:
        return forward(X, *self._model, self.cfg.activation)

    # ------------------------------------------------------------------------------ rows
    def add(self, X: Any, y: Any, now: float) -> Any:
        """Score the rows with the model in force (prequential), then keep them for training;
        returns the scores (a float for one row, else an array; None: no row).

        ``X`` (K, N) or one row (N,), ``y`` (K,). ValueError (nothing kept, nothing scored) for
        a wrong shape or a NaN/infinite value. ``now`` is the arrival time (s) on the node's
        clock; the rows' order is their order in time.
        """
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X.reshape(1, -1)
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        if X.shape == (1, self.num_features) and y.shape == (1,):
            p1 = self._add_one(X[0], float(y[0]))
            if p1 is not None:
                return p1
        k = self.buffer.add(X, y)  # checks shapes and values
        if not k:
            return None
        p = self._predict(X)
        with np.errstate(all='ignore'):
            self._metrics.update(p, y)
        if self.cfg.activation == 'sigmoid':
            errors = ((p >= 0.5) != (y >= 0.5)).tolist()
        else:
            errors = [self._linear_error(a, b) for a, b in zip(p.tolist(), y.tolist())]
        detector = self._detector
        seen0 = self._metrics.seen - k
        for i, e in enumerate(errors):
            self._young += 1
            if detector is not None and e <= _MAX_ERROR and detector.update(e):  # not NaN
                self._on_change(seen0 + i + 1, detector.onset)
        self._young = min(self._young, self.buffer.count)
        self._cadence.arrived(k)
        return p

    def _add_one(self, x: np.ndarray, label: float) -> Optional[float]:
        """A row a message, in Python floats but one dot product: its score; None (nothing
        done) unless the row's score and label are finite (the general path then checks and
        refuses)."""
        w, b = self._model
        z = float(np.dot(x, w)) + b
        # A NaN or infinite feature makes the dot product NaN or infinite (w is finite; inf * 0
        # is NaN), so a finite z means a finite row.
        if not (math.isfinite(z) and math.isfinite(label)):
            return None
        self.buffer.add_finite_row(x, label)
        p = activate_one(z, self.cfg.activation)
        if self.cfg.activation == 'sigmoid':
            error = 1.0 if (p >= 0.5) != (label >= 0.5) else 0.0
        else:
            error = self._linear_error(z, label)
        self._metrics.update_one(p, label)
        self._young += 1
        detector = self._detector
        if detector is not None and error <= _MAX_ERROR and detector.update(error):
            self._on_change(self._metrics.seen, self._detector.onset)
        if self._young > self.buffer.count:
            self._young = self.buffer.count
        self._cadence.new += 1
        return p

    def _linear_error(self, p: float, label: float) -> float:
        """The linear model's error for the detector: the squared error over the labels'
        moving variance (over about ``metrics_window`` rows), at most 1, so that it is as free
        of the labels' units as the 0/1 error and the same threshold and delta serve."""
        st = self._label_stats
        st[0] += 1
        a = max(1.0 / st[0], 1.0 / self.cfg.metrics_window)
        d = label - st[1]
        st[1] += a * d
        st[2] = (1.0 - a) * (st[2] + a * d * d)
        e = p - label
        e = e * e  # inf, not OverflowError as ** would raise
        return min(e / st[2], 1.0) if st[2] > 0.0 else (0.0 if e == 0.0 else 1.0)

    def _on_change(self, seen: int, onset: int) -> None:
        self.changes += 1
        self.last_change_at = seen
        self.last_change_onset = seen - onset
        # Train on the rows after the change only (at least min_samples); fast start again.
        self._young = max(onset, min(self.cfg.min_samples, self._young))
        self._cadence.restart()
        self._cadence.change = True

    # ---------------------------------------------------------------------------- updates
    def training_rows(self) -> int:
        """Rows the next update trains on (and judges on): the newest ``train_window`` of the
        ring, or fewer after a change."""
        held = self.buffer.count
        rows = min(held, self._young, self.window)
        return max(rows, min(self.cfg.min_samples, held))

    @property
    def window(self) -> int:
        """The training window: ``train_window``, or for 0 (auto) ``AUTO_WINDOW_PER_FEATURE``
        rows a feature, at least ``AUTO_WINDOW_MIN`` (a linear model's excess loss goes as
        features / rows: the same rows a feature, the same excess loss)."""
        w = self.cfg.train_window or max(AUTO_WINDOW_MIN,
                                         AUTO_WINDOW_PER_FEATURE * self.num_features)
        return min(w, self.buffer.capacity)

    def due(self, now: float) -> bool:
        """Whether an update is due now (see ``Cadence``): by the clock or by the rows."""
        return self._cadence.due(now, self.training_rows(), self.buffer.count)

    def due_by_rows(self) -> bool:
        """Whether the rows that arrived make an update due (fast start, ``update_every``, a
        change), leaving the clock out: for a driver whose own timer is the clock, as the
        trainer node's ``train_period`` timer is."""
        c = self._cadence
        if not (c.change or c.update_every or c.young_at_last < c.fast_start) or not c.new:
            return False  # no cadence by rows is running: a message's usual case, cheaply
        return c.due(None, self.training_rows(), self.buffer.count)

    @property
    def can_update(self) -> bool:
        """At least ``min_samples`` rows are held: what a timer tick needs to update."""
        return self.buffer.count >= self.cfg.min_samples

    def update(self, now: float, deadline: Optional[float] = None) -> PolicyUpdate:
        """Train a candidate and deploy it if the gate passes; ``deadline`` (time.monotonic)
        defaults to now + ``max_update_seconds``. ValueError from ``train_update`` (e.g. 'bce'
        with labels outside [0, 1]) propagates: nothing changes then.

        With no new row since a descent that ran to ``tolerance`` on every row held, there is
        nothing to learn: the update is idle (whoever asks, whenever). A descent cut short
        (``relative_tolerance`` while rows arrive, ``iterations_per_update``, the deadline)
        goes on from the model in force at the next update, so the same rows end at the same
        model. A model with standing (``set_model``) is replaced only by a candidate better on
        at least ``STANDING_MIN_HELD_OUT`` rows it was not fitted to."""
        cfg = self.cfg
        rows = self.training_rows()
        young = self._young
        if rows == 0:
            return PolicyUpdate(False, 'no samples held: nothing to train on', math.nan, 0, 0, 0)
        new = self._cadence.new
        if not new and self._settled and self._start is None:
            self._cadence.updated(now, young)
            return PolicyUpdate(False, 'nothing new to learn: the descent converged on the '
                                'rows held', self.last_loss, rows, 0, 0, idle=True)
        if self.standing:
            held_out = min(new, rows // 2)  # judged on up to half, fitted to the rest
            if held_out < STANDING_MIN_HELD_OUT:  # rows accrue until a candidate can be judged
                return PolicyUpdate(False, f'the model in force stands until '
                                    f'{STANDING_MIN_HELD_OUT} new rows can judge a candidate '
                                    f'({max(held_out, 0)} so far)', self.last_loss, rows, 0, 0,
                                    idle=True)
        else:
            held_out = min(new, rows // 4)
            if held_out < GATE_MIN_ROWS:  # too few to judge on: the training loss gate alone
                held_out = 0
        X, y = self.buffer.newest(rows)
        fit = rows - held_out
        w0, b0 = self._model if self._start is None else self._start
        tol, min_steps = cfg.tolerance, 1
        # Stop at convergence relative to the loss while rows arrive: the window is about to
        # change, its exact optimum is worth little; the descent goes on at the next update.
        # Not at one slow step: MSE through a saturated sigmoid has flat stretches.
        if cfg.relative_tolerance and math.isfinite(self._tol_scale) and new:
            tol = max(tol, cfg.relative_tolerance * self._tol_scale)
            min_steps = RELATIVE_MIN_STEPS
        if deadline is None:
            deadline = time.monotonic() + cfg.max_update_seconds
        # The prior: a pull toward zero that fades as rows accrue (l2 of prior / M); a
        # feature that drifts like a clock keeps it at full strength (drift.py).
        l2 = cfg.l2 + (cfg.prior / fit if cfg.prior else 0.0)
        self.clocks, self.clock_rows = clock_features(X[:fit]), fit
        if self.clocks and cfg.prior:
            l2 = np.full(self.num_features, l2)
            l2[[i for i, _ in self.clocks]] = cfg.l2 + cfg.prior
        result = train_update(X[:fit], y[:fit], w0, b0, learning_rate=cfg.learning_rate,
                              iterations=cfg.iterations_per_update, tolerance=tol,
                              activation=cfg.activation, loss=cfg.loss,
                              normalize=cfg.normalize, workspace=self._workspace,
                              deadline=deadline, l2=l2, min_steps=min_steps)
        self._cadence.updated(now, young)
        self.updates += 1
        deployed, reason = result.deployed, result.reason
        if deployed and held_out:
            with np.errstate(all='ignore'):
                mine = row_losses(X[fit:], y[fit:], result.weights, result.bias,
                                  cfg.activation, cfg.loss)
                theirs = row_losses(X[fit:], y[fit:], w0, b0, cfg.activation, cfg.loss)
            deployed, verdict = paired_gate(mine, theirs, cfg.gate_z)
            if deployed and self.standing and not float(np.mean(mine)) < float(np.mean(theirs)):
                deployed = False
                verdict += ': not better than the model in force, which stands'
            reason = (f'{reason}; {verdict}' if deployed else
                      f'refused: the candidate is worse on rows it was not fitted to: '
                      f'{verdict}')
        if deployed:
            self._model = (np.asarray(result.weights, dtype=np.float64).copy(),
                           float(result.bias))
            self._start = None
            self.standing = False
            self.trained_range = trained_ranges(X[:fit])
            self.deployed += 1
            self.last_loss = result.loss_after
        else:
            self.refused += 1
            self.last_loss = result.loss_before
        self._settled = (not held_out and tol == cfg.tolerance
                         and (result.converged or not deployed))
        if math.isfinite(self.last_loss):
            self._tol_scale = self.last_loss
        self.last_reason = reason
        return PolicyUpdate(deployed, reason, self.last_loss, fit, held_out, result.iterations)

    # ------------------------------------------------------------------------------ reset
    def reset(self, start: Optional[Tuple[Any, float]] = None) -> int:
        """Forget the held rows; the next update starts from ``start`` (default: zeros) and is
        judged against it. The model in force stays until an update deploys. Returns the number
        of rows dropped."""
        dropped = self.buffer.count
        self.buffer.clear()
        w, b = start if start is not None else (np.zeros(self.num_features), 0.0)
        self._start = (np.asarray(w, dtype=np.float64).copy(), float(b))
        self._young = 0
        if self._detector is not None:
            self._detector.clear()
        self._cadence.restart()
        self._cadence.new = 0
        self._cadence.last_update = None
        self._tol_scale = math.nan
        self.last_loss = math.nan
        self._settled = False
        self.standing = False
        return dropped

    # ---------------------------------------------------------------------------- metrics
    def metrics(self) -> Dict[str, Any]:
        """The windowed prequential metrics and the policy's counters (for /diagnostics)."""
        m = self._metrics
        return {
            'accuracy': m.accuracy,
            'mse': m.mse,
            'log_loss': m.log_loss,
            'window': m.count,
            'samples': m.seen,
            'changes': self.changes,
            'last_change_at': self.last_change_at,
            'last_change_onset': self.last_change_onset,
            'training_rows': self.training_rows() if self.buffer.count else 0,
            'updates': self.updates,
            'deployed': self.deployed,
            'refused': self.refused,
        }
