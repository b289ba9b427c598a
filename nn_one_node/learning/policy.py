"""The trainer's learning policy: what is kept, what is trained on, when, and what is deployed.

No ROS import: the trainer node (and ``nn_one_bag train`` offline) converts messages and
parameters and calls this module; the gradient descent itself is ``training.train_update`` (the
course's vectorized MSE gradient, unchanged). Small concepts, in the manner of River:

* ``PrequentialMetrics``: each arriving labeled row is scored by the model in force *before* it
  is learned ("test-then-train"); accuracy at 0.5, MSE and log loss over the newest ``window``
  rows say how well the robot predicts now, not how well the model fits its buffer.
* ``PageHinkley``: a change detector on the prequential error (0/1 for the sigmoid; for the
  linear model the squared error over the labels' variance, at most 1), with an estimate of
  where the change began.
* ``paired_gate``: a candidate is judged on rows it was not fitted to (the rows that arrived
  since the last update, at most a quarter of the training set, held out of its training),
  against the model it started from, row by row: refused when it is worse by more than the
  noise of that comparison. (With fewer than ``GATE_MIN_ROWS`` such rows, the training loss
  alone decides, as ``train_update``'s own gate does; those rows are trained on next time.)
* ``Cadence``: when to update: every ``train_period`` of the clock (its meaning is unchanged),
  every ``update_every`` arriving rows, and, while the training set is young (after the start, a
  reset or a detected change), each time it has doubled: updates at min_samples, 2x, 4x, ... rows,
  so a useful model exists within the first few labeled messages.
* ``LearningPolicy`` puts them together. Forgetting is a window: an update trains on the newest
  ``train_window`` rows of the ring (``buffer_size`` rows are kept), narrowed to the rows after
  the change when one is detected. Cost: warm start from the model in force, a stop at
  convergence relative to the loss (``relative_tolerance``), and L2 (``l2``) as a parameter.

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
...     pol.add(x, y, now=t / 100)                # scored by the model in force, then kept
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
from dataclasses import dataclass, fields, replace
from typing import Any, Dict, Mapping, Optional, Tuple

import numpy as np

from nn_one_node.model import _BCE_EPS, ACTIVATIONS, LOSSES, NeuronModel, check_loss, sigmoid
from nn_one_node.learning.descent import SampleBuffer, Workspace, train_update


# The gate judges a candidate on the rows held out of its training only when there are at least
# this many (a quarter of the rows trained on, at most those since the last update); with fewer,
# as at the first updates of a fast start, train_update's gate (the training loss) decides alone.
GATE_MIN_ROWS = 8

# train_window 0 (auto): rows a feature, and the least window.
AUTO_WINDOW_PER_FEATURE = 100
AUTO_WINDOW_MIN = 1000

# A linear model's squared error beyond this (or NaN) is not fed to the change detector: one
# overflow would make its running mean infinite for good.
_MAX_ERROR = 1e300


# ---------------------------------------------------------------------------------- metrics
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
        self._correct[i] = 1.0 if (p >= 0.5) == (y >= 0.5) else 0.0
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
        return self._mean(self._correct)

    @property
    def mse(self) -> float:
        return self._mean(self._squared)

    @property
    def log_loss(self) -> float:
        return self._mean(self._log) if self.probabilities else math.nan

    def clear(self) -> None:
        self._next = 0
        self.count = 0


# ------------------------------------------------------------------------- change detection
class PageHinkley:
    """Page-Hinkley test for an increase of the mean of a stream (here: the prequential error).

    Parameters: ``min_instances`` rows before a change can be flagged; ``delta``, the increase of
    the mean tolerated (below it nothing is flagged; it also sets how rarely noise alone is
    flagged); ``threshold``, the evidence needed (lambda: larger is slower and rarer); ``alpha``,
    the fading factor of the cumulative sum (1: none; River's default 0.9999 fades the sum but
    not its minimum, which flags noise: on a stationary 17% error, 25 false changes in 300,000
    rows against none without fading). As River's ``drift.PageHinkley(mode='up')``, plus
    ``onset``: how many updates ago the cumulative sum was at its minimum, the least-squares
    estimate of where the change began (Page's CUSUM change point).

    >>> import random
    >>> rng = random.Random(12345)
    >>> ph = PageHinkley()
    >>> errors = [rng.random() < 0.1 for _ in range(1000)] + [rng.random() < 0.5
    ...                                                        for _ in range(1000)]
    >>> for i, e in enumerate(errors):
    ...     if ph.update(e):
    ...         print(f'change detected at {i}, began about {ph.onset} rows earlier')
    ...         break
    change detected at 1108, began about 143 rows earlier
    """

    def __init__(self, min_instances: int = 30, delta: float = 0.05, threshold: float = 30.0,
                 alpha: float = 1.0) -> None:
        if not (threshold > 0.0 and math.isfinite(threshold)):
            raise ValueError(f'threshold must be a finite number > 0, got {threshold!r}')
        if not (delta >= 0.0 and math.isfinite(delta)):
            raise ValueError(f'delta must be a finite number >= 0, got {delta!r}')
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f'alpha must lie in (0, 1], got {alpha!r}')
        self.min_instances = int(min_instances)
        self.delta = float(delta)
        self.threshold = float(threshold)
        self.alpha = float(alpha)
        self.drift_detected = False
        self.onset = 0
        self._reset()

    def _reset(self) -> None:
        self.n = 0
        self._mean = 0.0
        self._sum = 0.0
        self._min = 0.0
        self._min_at = 0

    def update(self, x: float) -> bool:
        """Add one value; True when a change is detected (the test then starts afresh)."""
        if self.drift_detected:
            self.drift_detected = False
            self._reset()
        self.n += 1
        self._mean += (x - self._mean) / self.n
        self._sum = self.alpha * self._sum + (x - self._mean - self.delta)
        if self._sum < self._min:
            self._min = self._sum
            self._min_at = self.n
        if self.n >= self.min_instances and self._sum - self._min > self.threshold:
            self.drift_detected = True
            self.onset = self.n - self._min_at
        return self.drift_detected

    def clear(self) -> None:
        self.drift_detected = False
        self._reset()


# --------------------------------------------------------------------------------- the gate
def row_losses(X: np.ndarray, y: np.ndarray, w: np.ndarray, b: float, activation: str,
               loss: str) -> np.ndarray:
    """Each row's loss under the model ``(w, b)``: squared error, or cross-entropy for 'bce'."""
    z = X @ w + b
    p = sigmoid(z) if activation == 'sigmoid' else z
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
    false refusals at z = 2) or when a loss is not finite. An equal model is accepted.

    >>> ok, why = paired_gate(np.array([0.1, 0.2, 0.1, 0.3]), np.array([0.2, 0.2, 0.3, 0.3]))
    >>> ok
    True
    >>> ok, why = paired_gate(np.array([0.5, 0.6, 0.7, 0.6]), np.array([0.1, 0.2, 0.1, 0.2]))
    >>> ok, why
    (False, 'held-out loss 0.6 against 0.15 on 4 rows (worse by 0.45 +- 0.05)')
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
    if mean > z * stderr and mean > 0.0:
        return False, f'{text} (worse by {mean:.3g} +- {stderr:.3g})'
    return True, text


# --------------------------------------------------------------------------------- config
@dataclass(frozen=True)
class PolicyConfig:
    """The policy's settings: the trainer's parameters of the same names (and defaults)."""

    learning_rate: float = 2.0
    activation: str = 'sigmoid'
    loss: str = 'mse'
    normalize: bool = True
    buffer_size: int = 10000
    min_samples: int = 10
    train_period: float = 1.0
    iterations_per_update: int = 100
    max_update_seconds: float = 1.0
    tolerance: float = 1e-9
    # issue 16
    relative_tolerance: float = 1e-3
    train_window: int = 0
    update_every: int = 0
    fast_start: int = 1000
    l2: float = 0.0
    change_threshold: float = 30.0
    change_delta: float = 0.05
    change_min_samples: int = 30
    gate_z: float = 2.0
    metrics_window: int = 500

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> 'PolicyConfig':
        """From a node's ``ros__parameters`` (unknown names ignored); ValueError names a bad
        entry."""
        known = {f.name: f for f in fields(cls)}
        values = {k: v for k, v in params.items() if k in known}
        cfg = cls(**values)
        reason = cfg.problem()
        if reason:
            raise ValueError(reason)
        return cfg

    def problem(self) -> Optional[str]:
        """Why these settings cannot work, or None (the node's ParamSpec checks say the same)."""
        for name in ('learning_rate', 'train_period', 'max_update_seconds'):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (
                    math.isfinite(v) and v > 0):
                return f'{name} must be a finite number > 0, got {v!r}'
        for name in ('tolerance', 'relative_tolerance', 'l2', 'change_delta', 'gate_z',
                     'change_threshold'):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (
                    math.isfinite(v) and v >= 0):
                return f'{name} must be a finite number >= 0, got {v!r}'
        for name, least in (('buffer_size', 1), ('min_samples', 1), ('iterations_per_update', 1),
                            ('train_window', 0), ('update_every', 0), ('fast_start', 0),
                            ('change_min_samples', 1), ('metrics_window', 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < least:
                return f'{name} must be an integer >= {least}, got {v!r}'
        if self.activation not in ACTIVATIONS:
            return f'activation must be one of {ACTIVATIONS}, got {self.activation!r}'
        if self.loss not in LOSSES:
            return f'loss must be one of {LOSSES}, got {self.loss!r}'
        try:
            check_loss(self.loss, self.activation)
        except ValueError as err:
            return f'loss: {err}'
        if self.min_samples > self.buffer_size:
            return (f'min_samples ({self.min_samples}) must be at most buffer_size '
                    f'({self.buffer_size})')
        return None

    def with_changes(self, **changes: Any) -> 'PolicyConfig':
        return replace(self, **changes)


# ------------------------------------------------------------------------------- cadence
class Cadence:
    """When an update is due. Any of, once ``min_samples`` rows are held and a row is new:

    * the clock: ``train_period`` since the last update (the trainer's meaning, unchanged);
    * rows: ``update_every`` rows arrived since the last update (0: off);
    * fast start: while the training set is younger than ``fast_start`` rows (after the start,
      a reset, a detected change), each time it has doubled since the last update;
    * a change was just detected.

    >>> c = Cadence(min_samples=10, train_period=60.0, update_every=0, fast_start=100)
    >>> due = []
    >>> for n in range(1, 200):              # one row a second; the clock alone: at 60, 120, 180
    ...     c.arrived(1)
    ...     if c.due(now=float(n), young=n):
    ...         c.updated(now=float(n), young=n)
    ...         due.append(n)
    >>> due
    [10, 20, 40, 80, 140]
    """

    def __init__(self, min_samples: int, train_period: float, update_every: int,
                 fast_start: int) -> None:
        self.min_samples = min_samples
        self.train_period = train_period
        self.update_every = update_every
        self.fast_start = fast_start
        self.new = 0  # rows since the last update
        self.last_update: Optional[float] = None
        self.young_at_last = 0  # the training set's age (rows) at the last update
        self.change = False

    def arrived(self, k: int) -> None:
        self.new += k

    def due(self, now: Optional[float], young: int, held: Optional[int] = None) -> bool:
        """``now`` None: by the rows alone (the clock is someone else's timer)."""
        held = young if held is None else held
        if held < self.min_samples:
            return False
        if now is not None and (self.last_update is None
                                or now - self.last_update >= self.train_period):
            return True  # the clock: also without new rows (the descent goes on)
        if self.new <= 0:
            return False
        if self.change:
            return True
        if self.update_every and self.new >= self.update_every:
            return True
        return self.young_at_last < self.fast_start and young >= 2 * self.young_at_last

    def updated(self, now: float, young: int) -> None:
        self.new = 0
        self.last_update = now
        self.young_at_last = young
        self.change = False

    def restart(self) -> None:
        """The training set starts afresh (reset, change): fast start again."""
        self.young_at_last = 0


# ---------------------------------------------------------------------------- the policy
@dataclass(frozen=True)
class PolicyUpdate:
    """What one ``LearningPolicy.update`` did.

    ``deployed``: the candidate is the model in force now. ``loss``: the training loss of the
    model in force afterwards on the rows trained on (the trainer's ``~/loss``). ``rows``: rows
    trained on; ``held_out``: rows judged on; ``iterations``: gradient steps; ``reason``: words.
    """

    deployed: bool
    reason: str
    loss: float
    rows: int
    held_out: int
    iterations: int


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
        self._label_stats = [0, 0.0, 0.0]  # linear: rows, moving mean and variance of labels
        self.changes = 0
        self.last_change_at: Optional[int] = None  # rows seen when it was detected
        self.last_change_onset: Optional[int] = None  # rows seen where it began (estimate)
        self.updates = 0
        self.deployed = 0
        self.refused = 0
        self.last_loss = math.nan
        self.last_reason = ''
        self.last_iterations = 0

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

    def _predict(self, X: np.ndarray) -> np.ndarray:
        w, b = self._model
        z = X @ w + b
        return sigmoid(z) if self.cfg.activation == 'sigmoid' else z

    # ------------------------------------------------------------------------------ rows
    def add(self, X: Any, y: Any, now: float) -> None:
        """Score the rows with the model in force (prequential), then keep them for training.

        ``X`` (K, N) or one row (N,), ``y`` (K,). ValueError (nothing kept, nothing scored) for
        a wrong shape or a NaN/infinite value. ``now`` is the arrival time (s) on the node's
        clock; the rows' order is their order in time.
        """
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X.reshape(1, -1)
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        if X.shape == (1, self.num_features) and y.shape == (1,) and self._add_one(X[0],
                                                                                   float(y[0])):
            return
        k = self.buffer.add(X, y)  # checks shapes and values
        if not k:
            return
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

    def _add_one(self, x: np.ndarray, label: float) -> bool:
        """A row a message, in Python floats but one dot product; False (nothing done) unless
        the row's score and label are finite (the general path then checks and refuses)."""
        w, b = self._model
        z = float(np.dot(x, w)) + b
        # A NaN or infinite feature makes the dot product NaN or infinite (w is finite; inf * 0
        # is NaN), so a finite z means a finite row.
        if not (math.isfinite(z) and math.isfinite(label)):
            return False
        self.buffer.add_finite_row(x, label)
        if self.cfg.activation == 'sigmoid':
            p = 1.0 / (1.0 + math.exp(-z)) if z >= -700.0 else 0.0
            error = 1.0 if (p >= 0.5) != (label >= 0.5) else 0.0
        else:
            p = z
            error = self._linear_error(z, label)
        self._metrics.update_one(p, label)
        self._young += 1
        detector = self._detector
        if detector is not None and error <= _MAX_ERROR and detector.update(error):
            self._on_change(self._metrics.seen, self._detector.onset)
        if self._young > self.buffer.count:
            self._young = self.buffer.count
        self._cadence.new += 1
        return True

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
        with labels outside [0, 1]) propagates: nothing changes then."""
        cfg = self.cfg
        rows = self.training_rows()
        young = self._young
        if rows == 0:
            return PolicyUpdate(False, 'no samples held: nothing to train on', math.nan, 0, 0, 0)
        X, y = self.buffer.newest(rows)
        held_out = min(self._cadence.new, rows // 4)
        if held_out < GATE_MIN_ROWS:  # too few to judge on: the training loss gate alone
            held_out = 0
        fit = rows - held_out
        w0, b0 = self._model if self._start is None else self._start
        tol = cfg.tolerance
        # Stop at convergence relative to the loss while rows arrive: the window is about to
        # change, its exact optimum is worth little. Without new rows the descent goes on to
        # ``tolerance`` (what a robot at rest has time for).
        if cfg.relative_tolerance and math.isfinite(self._tol_scale) and self._cadence.new:
            tol = max(tol, cfg.relative_tolerance * self._tol_scale)
        if deadline is None:
            deadline = time.monotonic() + cfg.max_update_seconds
        result = train_update(X[:fit], y[:fit], w0, b0, learning_rate=cfg.learning_rate,
                              iterations=cfg.iterations_per_update, tolerance=tol,
                              activation=cfg.activation, loss=cfg.loss,
                              normalize=cfg.normalize, workspace=self._workspace,
                              deadline=deadline, l2=cfg.l2)
        self._cadence.updated(now, young)
        self.updates += 1
        self.last_iterations = result.iterations
        deployed, reason = result.deployed, result.reason
        if deployed and held_out:
            with np.errstate(all='ignore'):
                mine = row_losses(X[fit:], y[fit:], result.weights, result.bias,
                                  cfg.activation, cfg.loss)
                theirs = row_losses(X[fit:], y[fit:], w0, b0, cfg.activation, cfg.loss)
            deployed, verdict = paired_gate(mine, theirs, cfg.gate_z)
            reason = (f'{reason}; {verdict}' if deployed else
                      f'refused: the candidate is worse on rows it was not fitted to: '
                      f'{verdict}')
        if deployed:
            self._model = (np.asarray(result.weights, dtype=np.float64).copy(),
                           float(result.bias))
            self._start = None
            self.deployed += 1
            self.last_loss = result.loss_after
        else:
            self.refused += 1
            self.last_loss = result.loss_before
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


def initial_weights(num_features: int, seed: int) -> np.ndarray:
    """The trainer's start (and reset) weights: zeros for seed -1, else small random ones."""
    return NeuronModel.random_weights(num_features, seed) if seed >= 0 else np.zeros(
        num_features)
