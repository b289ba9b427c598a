"""The learning benchmark's streams (issue 23): real data sets and streams of our own.

Each stream is a fixed sequence of labeled rows ``X`` (M, N), ``y`` (M,) in {0, 1}, the same for
every learner and protocol: a seed fixes it. Two sets:

* **tuning**: the streams a change to the learning may be tuned on (issue 16's streams and the
  two that issue 23 reports);
* **validation**: held out from tuning (about a third, a real data set and a drifting stream
  among them). A change is judged on them, never shaped by them: look at their figures only
  after a change is made, and do not move a stream from one set to the other to suit a result.

Real data sets ship with scikit-learn (nothing is downloaded), at their raw feature scales, each
made binary as ``label`` says and shuffled with its seed; their rows arrive at 10 a second of
stream time (labeled events are rarer than sensor rows). Our own streams arrive at 100 rows a
second; labels are drawn from a logistic concept ``P(y = 1) = sigmoid(x . w + b)`` (the robot
streams: the demo's wheel-slip ground truth, ``nn_one_node.sim.scenario``).

>>> s = make(STREAMS['restart'], quick=True)
>>> s['X'].shape, s['restart_at'], s['set']
((2000, 6), 1000, 'tuning')
>>> sorted({spec.set for spec in STREAMS.values()})
['tuning', 'validation']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

import numpy as np

OWN_ROWS, OWN_ROWS_QUICK = 20000, 2000
REAL_RATE, OWN_RATE = 10.0, 100.0  # rows per second of stream time
QUICK_REAL_ROWS = 600  # --quick cuts the one large data set (digits) to this many rows

Made = Tuple[np.ndarray, np.ndarray, Optional[int]]  # X, y, the row of an abrupt change


@dataclass(frozen=True)
class Stream:
    name: str
    set: str  # 'tuning' or 'validation'
    kind: str  # 'real' or 'own'
    label: str  # what it is, and for a data set how it is made binary
    seed: int
    make: Callable[[int, np.random.Generator], Made]
    drift: str = ''  # 'abrupt', 'gradual' or '' (stationary)
    restart: bool = False  # the trainer restarts midway from its weights file
    clock: Optional[int] = None  # the column of a feature that drifts like a clock


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _draw(rng: np.random.Generator, z: np.ndarray) -> np.ndarray:
    return (rng.random(z.shape[0]) < _sigmoid(z)).astype(np.float64)


def _concept(rng: np.random.Generator, n: int, informative: Optional[int] = None,
             strength: float = 3.0, first: int = 0) -> np.ndarray:
    k = n if informative is None else informative
    w = np.zeros(n)
    w[first:first + k] = rng.normal(size=k)
    return w * (strength / np.linalg.norm(w))


# ------------------------------------------------------------------------------- real data sets
def _dataset(loader: str, binary: Callable[[np.ndarray], np.ndarray], **kw) -> Callable:
    def make(rows: int, rng: np.random.Generator) -> Made:
        from sklearn import datasets
        d = getattr(datasets, loader)(**kw)
        order = rng.permutation(d.target.shape[0])[:rows]
        return (np.asarray(d.data, dtype=np.float64)[order],
                binary(np.asarray(d.target)[order]).astype(np.float64), None)
    return make


# ---------------------------------------------------------------------------- our own streams
def _features(n: int, informative: Optional[int] = None, bias: float = 0.0,
              scale: Optional[np.ndarray] = None, offset: Optional[np.ndarray] = None) -> Callable:
    """Stationary: N standard-normal features (then raw ``scale`` and ``offset``)."""
    def make(rows: int, rng: np.random.Generator) -> Made:
        X = rng.normal(size=(rows, n))
        y = _draw(rng, X @ _concept(rng, n, informative) + bias)
        if scale is not None:
            X = X * scale + offset
        return X, y, None
    return make


def _abrupt(n: int, at: float = 0.5, swap: bool = False, scale: Optional[np.ndarray] = None,
            offset: Optional[np.ndarray] = None) -> Callable:
    """The concept is replaced at row ``at`` x M. ``swap``: the informative half of the features
    moves to the other half and the positives fall from 50 % to about 30 % (a sensor remounted)."""
    def make(rows: int, rng: np.random.Generator) -> Made:
        X = rng.normal(size=(rows, n))
        change = int(rows * at)
        if swap:
            w1, w2 = _concept(rng, n, n // 2), _concept(rng, n, n // 2, first=n // 2)
            b1, b2 = 0.0, -1.2
        else:
            w1, w2, b1, b2 = _concept(rng, n), _concept(rng, n), 0.0, 0.0
        z = np.concatenate([X[:change] @ w1 + b1, X[change:] @ w2 + b2])
        y = _draw(rng, z)
        if scale is not None:
            X = X * scale + offset
        return X, y, change
    return make


def _gradual(n: int) -> Callable:
    """Rows come from the new concept with a probability rising linearly from 40 % to 60 % of
    the stream."""
    def make(rows: int, rng: np.random.Generator) -> Made:
        X = rng.normal(size=(rows, n))
        w1, w2 = _concept(rng, n), _concept(rng, n)
        start, end = int(rows * 0.4), int(rows * 0.6)
        p_new = np.zeros(rows)
        p_new[start:end] = np.linspace(0.0, 1.0, end - start)
        p_new[end:] = 1.0
        new = rng.random(rows) < p_new
        return X, _draw(rng, np.where(new, X @ w2, X @ w1)), None
    return make


def _robot(rows: int, rng: np.random.Generator) -> Made:
    """The demo's five wheel-slip sensors (hard labels) and a battery voltage falling steadily
    from 25.2 V to 22.2 V over the stream (noise 0.02 V): a feature that drifts like a clock and
    says nothing about the label."""
    from nn_one_node.sim.scenario import Scenario
    X, y = Scenario(int(rng.integers(2**31)), bernoulli=True).sample(rows)
    volts = np.linspace(25.2, 22.2, rows) + rng.normal(0.0, 0.02, rows)
    return np.column_stack([X, volts]), y, None


MIXED_SCALE = np.array([1e-2, 1e-1, 1.0, 1e2, 1e3])
MIXED_OFFSET = np.array([0.5, -3.0, 10.0, 200.0, -5000.0])

STREAMS: Dict[str, Stream] = {s.name: s for s in (
    # real data sets
    Stream('breast_cancer', 'tuning', 'real', 'load_breast_cancer: 569 x 30, benign = 1', 101,
           _dataset('load_breast_cancer', lambda t: t == 1)),
    Stream('diabetes', 'tuning', 'real', 'load_diabetes(scaled=False): 442 x 10 raw, '
           "progression above its median = 1 (issue 23's small data set)", 102,
           _dataset('load_diabetes', lambda t: t > np.median(t), scaled=False)),
    Stream('iris', 'tuning', 'real', 'load_iris: 150 x 4, virginica = 1', 103,
           _dataset('load_iris', lambda t: t == 2)),
    Stream('wine', 'validation', 'real', 'load_wine: 178 x 13, cultivar 0 = 1', 104,
           _dataset('load_wine', lambda t: t == 0)),
    Stream('digits', 'validation', 'real', 'load_digits: 1797 x 64 pixels, digit >= 5 = 1',
           105, _dataset('load_digits', lambda t: t >= 5)),
    # our own
    Stream('stationary', 'tuning', 'own', '5 features, stationary', 1, _features(5)),
    Stream('imbalance', 'tuning', 'own', '5 features, about 10 % positives', 5,
           _features(5, bias=-4.5)),
    Stream('features50', 'tuning', 'own', "50 features, 10 informative (issue 23's)", 6,
           _features(50, 10)),
    Stream('abrupt', 'tuning', 'own', '5 features, the concept replaced midway', 2,
           _abrupt(5), drift='abrupt'),
    Stream('gradual', 'tuning', 'own', '5 features, a new concept phased in over 40-60 %', 3,
           _gradual(5), drift='gradual'),
    Stream('mixed_scales', 'tuning', 'own', '5 features of raw spreads 1e-2 .. 1e3 with '
           'offsets, the concept replaced midway', 4,
           _abrupt(5, scale=MIXED_SCALE, offset=MIXED_OFFSET), drift='abrupt'),
    Stream('battery', 'tuning', 'own', "the demo robot's 5 sensors + a battery voltage "
           'falling steadily (a clock-like feature)', 7, _robot, clock=5),
    Stream('restart', 'tuning', 'own', 'as battery (another seed); the trainer restarts '
           'midway from its weights file', 8, _robot, restart=True, clock=5),
    Stream('features2', 'validation', 'own', '2 features (a position in metres: offsets 5 '
           'and 20, spreads 2 and 0.5)', 9,
           _features(2, scale=np.array([2.0, 0.5]), offset=np.array([5.0, 20.0]))),
    Stream('features100', 'validation', 'own', '100 features, 20 informative', 10,
           _features(100, 20)),
    Stream('sensor_swap', 'validation', 'own', '20 features; at 60 % the informative half '
           'moves to the other half and positives fall from 50 % to about 30 %', 11,
           _abrupt(20, at=0.6, swap=True), drift='abrupt'),
)}


def make(spec: Stream, quick: bool = False) -> Dict:
    """The stream's rows and how they arrive: ``rate`` (rows per second of stream time), ``K``
    (rows a round of the batch protocol), ``change`` (row of an abrupt change, or None),
    ``restart_at`` (row before which the trainer restarts, or None), ``clock`` (the column of a
    clock-like feature, or None)."""
    rng = np.random.default_rng(spec.seed)
    if spec.kind == 'real':
        rows, rate = (QUICK_REAL_ROWS if quick else 1_000_000), REAL_RATE
    else:
        rows, rate = (OWN_ROWS_QUICK if quick else OWN_ROWS), OWN_RATE
    X, y, change = spec.make(rows, rng)
    m = X.shape[0]
    return dict(name=spec.name, set=spec.set, kind=spec.kind, label=spec.label,
                drift=spec.drift, X=X, y=y, change=change, rate=rate,
                K=10 if m < 1000 else 100, restart_at=m // 2 if spec.restart else None,
                clock=spec.clock)
