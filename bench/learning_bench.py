"""Issue 16: the trainer's learning, prequentially, side by side with River and scikit-learn.

Every learner sees the same streams, row by row, in the same order. Each row is first predicted
by the model in force (the probability of class 1), then learned: prequential evaluation
("test-then-train", as River's ``evaluate.progressive_val_score``).

Learners
* ``today``: the trainer's policy before issue 16 (its defaults at commit ac20e5a): a
  ``training.SampleBuffer`` of 10,000 samples and, every ``train_period`` (1 s) of stream time
  with at least 10 samples held, one ``training.train_update`` of at most 100 full-batch steps
  (learning_rate 2.0, MSE, sigmoid, normalized, 1 s budget) warm-started from the model in force,
  which it replaces when the gate passes. Replayed as the node's timer does it.
* ``policy``: ``nn_one_node.learning.policy.LearningPolicy`` with the trainer's default parameters
  (``PolicyConfig.from_params({})``), driven as the trainer node drives it: ``add`` per message,
  ``update`` whenever ``due`` (after a message and at each timer tick of ``train_period``).
* ``river``: ``preprocessing.StandardScaler() | linear_model.LogisticRegression()``
  (``predict_proba_one`` then ``learn_one``), River's defaults.
* ``sklearn``: ``StandardScaler.partial_fit`` then ``SGDClassifier(loss='log_loss').partial_fit``
  on each row (the scaler's ``transform`` before predicting); 0.5 before the first fit.

Streams (fixed seeds; labels drawn from a logistic concept ``P(y=1) = sigmoid(x . w + b)``):
stationary (5 features); abrupt change (the concept's weights are replaced midway); gradual change
(rows come from the new concept with a probability rising linearly over 20% of the stream);
mixed raw scales (features with spreads from 1e-2 to 1e3 and offsets, abrupt change midway);
class imbalance (about 10% positives); more features (50, of which 10 informative); and the
demo's wheel-slip scenario (``nn_one_node.sim.scenario``: soft labels, 50 rows a message).
The rows arrive at ``--rate`` samples per second of stream time, ``--rows-per-message`` a
message: the clock that the trainer's ``train_period`` counts.

Figures per stream and learner
* accuracy (threshold 0.5) and log loss (probabilities clipped to [1e-12, 1 - 1e-12]) over the
  whole stream, prequentially;
* recovery (streams with a change): the pre-change accuracy is the learner's prequential accuracy
  over the ``PRE_WINDOW`` rows before the change (for the gradual stream: before the transition
  starts); recovery is the number of rows after the change (gradual: after the transition ends)
  until the accuracy over the last ``RECOVERY_WINDOW`` rows, all after the change, first reaches
  90% of it. So ``RECOVERY_WINDOW`` is the least possible value; ``null`` means never.
* CPU per row in microseconds (``time.process_time``, this process): ``learn`` is what the learner
  spends learning (River/sklearn: ``learn_one``/``partial_fit`` including the scaler; today/policy:
  adding the rows, the updates, and for the policy its own prequential scoring and metrics);
  ``predict`` is the bench's prediction call.

    python bench/learning_bench.py [--quick] [--rows N] [--only today,river] [--out PREFIX]

Writes PREFIX.json, PREFIX.md and PREFIX.png (default bench/results/learning).
"""

from __future__ import annotations

from nn_one_node import blas_threads  # noqa: F401 - one BLAS thread, as the trainer runs

import argparse
import json
import math
import platform
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np

from nn_one_node.learning.buffer import SampleBuffer
from nn_one_node.learning.standardizer import Workspace
from nn_one_node.learning.descent import train_update

RATE = 100.0  # rows per second of stream time
TRAIN_PERIOD = 1.0  # the trainer's default train_period (s)
PRE_WINDOW = 2000
RECOVERY_WINDOW = 200
RECOVERY_FRACTION = 0.9
PLOT_WINDOW = 500
EPS = 1e-12
LEARNERS = ('today', 'policy', 'river', 'sklearn')

# The trainer's defaults at ac20e5a (before issue 16): "today's policy".
TODAY = dict(buffer_size=10000, min_samples=10, learning_rate=2.0, iterations=100,
             tolerance=1e-9, max_update_seconds=1.0)


# ------------------------------------------------------------------------------------ streams
def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _concept(rng: np.random.Generator, n: int, informative: Optional[int] = None,
             strength: float = 3.0) -> np.ndarray:
    k = n if informative is None else informative
    w = np.zeros(n)
    w[:k] = rng.normal(size=k)
    return w * (strength / np.linalg.norm(w))


def make_stream(name: str, rows: int, seed: int = 0) -> Dict:
    """The rows ``X`` (rows, N), labels ``y`` and, for a change, its row(s)."""
    if name == 'demo':  # the demo's wheel-slip scenario: soft labels, 50 rows a message
        from nn_one_node.sim.scenario import Scenario
        X, y = Scenario(seed).sample(rows)
        return dict(name=name, X=X, y=y, change=None, per_message=DEMO_ROWS_PER_MESSAGE)
    rng = np.random.default_rng(seed)
    change = None
    n = 50 if name == 'features50' else 5
    X = rng.normal(size=(rows, n))
    w1 = _concept(rng, n, 10 if name == 'features50' else None)
    w2 = _concept(rng, n)
    b = 0.0
    p_new = np.zeros(rows)
    if name in ('abrupt', 'mixed_scales'):
        change = rows // 2
        p_new[change:] = 1.0
    elif name == 'gradual':
        start, end = int(rows * 0.4), int(rows * 0.6)
        p_new[start:end] = np.linspace(0.0, 1.0, end - start)
        p_new[end:] = 1.0
        change = (start, end)
    elif name == 'imbalance':
        b = -3.2
    new = rng.random(rows) < p_new
    z = np.where(new, X @ w2, X @ w1) + b
    y = (rng.random(rows) < _sigmoid(z)).astype(np.float64)
    if name == 'mixed_scales':  # raw scales 1e-2 .. 1e3 and offsets: the concept is unchanged
        scale = np.array([1e-2, 1e-1, 1.0, 1e2, 1e3])
        offset = np.array([0.5, -3.0, 10.0, 200.0, -5000.0])
        X = X * scale + offset
    return dict(name=name, X=X, y=y, change=change)


STREAMS = ('stationary', 'abrupt', 'gradual', 'mixed_scales', 'imbalance', 'features50', 'demo')
DEMO_ROWS_PER_MESSAGE = 50  # config/nn_one.yaml: label_batch 50 at label_rate 2 Hz = 100 rows/s
EARLY = 1000  # rows of the "early" accuracy: how fast a learner starts


# ----------------------------------------------------------------------------------- learners
class Today:
    """The trainer before issue 16, replayed: ring buffer + a train_update every train_period."""

    def __init__(self, n: int) -> None:
        self.buffer = SampleBuffer(TODAY['buffer_size'], n)
        self.ws = Workspace()
        self.w = np.zeros(n)
        self.b = 0.0
        self.next_tick = TRAIN_PERIOD

    def predict(self, X: np.ndarray) -> np.ndarray:
        return _sigmoid(X @ self.w + self.b)

    def learn(self, X: np.ndarray, y: np.ndarray, now: float) -> None:
        self.tick(now)
        self.buffer.add(X, y)

    def tick(self, now: float) -> None:
        while now >= self.next_tick:
            self.next_tick += TRAIN_PERIOD
            if self.buffer.count >= TODAY['min_samples']:
                r = train_update(*self.buffer.arrays(), self.w, self.b,
                                 learning_rate=TODAY['learning_rate'],
                                 iterations=TODAY['iterations'], tolerance=TODAY['tolerance'],
                                 workspace=self.ws,
                                 deadline=time.monotonic() + TODAY['max_update_seconds'])
                if r.deployed:
                    self.w, self.b = r.weights, r.bias


class Policy:
    """nn_one_node.learning.policy with the trainer's defaults, driven as the trainer node drives
    it."""

    def __init__(self, n: int, params: Optional[Dict] = None) -> None:
        from nn_one_node.learning.policy import LearningPolicy
        from nn_one_node.learning.config import PolicyConfig
        self.pol = LearningPolicy(n, PolicyConfig.from_params(params or {}))
        self.next_tick = TRAIN_PERIOD

    def predict(self, X: np.ndarray) -> np.ndarray:
        return _sigmoid(X @ self.pol.weights + self.pol.bias)

    def learn(self, X: np.ndarray, y: np.ndarray, now: float) -> None:
        pol = self.pol
        while now >= self.next_tick:  # the node's train_period timer
            if pol.can_update:
                pol.update(self.next_tick)
            self.next_tick += TRAIN_PERIOD
        pol.add(X, y, now)
        if pol.due_by_rows():  # the node's sample callback
            pol.update(now)


class River:
    def __init__(self, n: int) -> None:
        from river import linear_model, preprocessing
        self.model = preprocessing.StandardScaler() | linear_model.LogisticRegression()

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.array([self.model.predict_proba_one(dict(enumerate(x))).get(True, 0.5)
                         for x in X.tolist()])

    def learn(self, X: np.ndarray, y: np.ndarray, now: float) -> None:
        for x, label in zip(X.tolist(), y.tolist()):
            self.model.learn_one(dict(enumerate(x)), label > 0.5)


class Sklearn:
    def __init__(self, n: int) -> None:
        from sklearn.linear_model import SGDClassifier
        from sklearn.preprocessing import StandardScaler
        self.scaler = StandardScaler()
        self.model = SGDClassifier(loss='log_loss', random_state=0)
        self.fitted = False

    def predict(self, X: np.ndarray) -> np.ndarray:
        if not self.fitted:
            return np.full(X.shape[0], 0.5)
        return self.model.predict_proba(self.scaler.transform(X))[:, 1]

    def learn(self, X: np.ndarray, y: np.ndarray, now: float) -> None:
        self.scaler.partial_fit(X)
        self.model.partial_fit(self.scaler.transform(X), (y > 0.5).astype(int), classes=[0, 1])
        self.fitted = True


FACTORIES: Dict[str, Callable[[int], object]] = {
    'today': Today, 'policy': Policy, 'river': River, 'sklearn': Sklearn}


# ---------------------------------------------------------------------------------- the run
def run_learner(learner, stream: Dict, rate: float, per_message: int) -> Dict:
    X, y = stream['X'], stream['y']
    m = X.shape[0]
    p = np.empty(m)
    learn_cpu = predict_cpu = 0.0
    clock = time.process_time
    for start in range(0, m, per_message):
        stop = min(start + per_message, m)
        now = stop / rate  # the message's arrival, in stream seconds
        Xm, ym = X[start:stop], y[start:stop]
        t0 = clock()
        p[start:stop] = learner.predict(Xm)
        t1 = clock()
        learner.learn(Xm, ym, now)
        t2 = clock()
        predict_cpu += t1 - t0
        learn_cpu += t2 - t1
    return dict(p=p, learn_us=learn_cpu / m * 1e6, predict_us=predict_cpu / m * 1e6)


def score(p: np.ndarray, y: np.ndarray, change) -> Dict:
    correct = ((p >= 0.5) == (y > 0.5)).astype(np.float64)
    pc = np.clip(p, EPS, 1.0 - EPS)
    logloss = -(y * np.log(pc) + (1.0 - y) * np.log1p(-pc))
    out = dict(accuracy=float(correct.mean()), log_loss=float(logloss.mean()),
               mse=float(np.mean((p - y) ** 2)), early_accuracy=float(correct[:EARLY].mean()))
    if change is not None:
        before, after = (change, change) if isinstance(change, int) else change
        pre = float(correct[max(0, before - PRE_WINDOW):before].mean())
        target = RECOVERY_FRACTION * pre
        c = np.concatenate([[0.0], np.cumsum(correct[after:])])
        k = np.arange(RECOVERY_WINDOW, c.shape[0])
        rolling = (c[k] - c[k - RECOVERY_WINDOW]) / RECOVERY_WINDOW
        hit = np.nonzero(rolling >= target)[0]
        out.update(pre_change_accuracy=pre,
                   recovery=int(k[hit[0]]) if hit.size else None,
                   accuracy_after_change=float(correct[after:].mean()))
    return out


def rolling_accuracy(p: np.ndarray, y: np.ndarray, window: int) -> np.ndarray:
    correct = ((p >= 0.5) == (y > 0.5)).astype(np.float64)
    c = np.concatenate([[0.0], np.cumsum(correct)])
    k = np.arange(1, c.shape[0])
    lo = np.maximum(k - window, 0)
    return (c[k] - c[lo]) / (k - lo)


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--quick', action='store_true', help='4,000 rows a stream')
    ap.add_argument('--rows', type=int, default=20000)
    ap.add_argument('--rate', type=float, default=RATE)
    ap.add_argument('--rows-per-message', type=int, default=1)
    ap.add_argument('--only', default=','.join(LEARNERS))
    ap.add_argument('--streams', default=','.join(STREAMS))
    ap.add_argument('--out', default=str(Path(__file__).parent / 'results' / 'learning'))
    ap.add_argument('--no-plot', action='store_true')
    args = ap.parse_args(argv)
    rows = 4000 if args.quick else args.rows
    learners = [name for name in args.only.split(',') if name]
    results: Dict = dict(rows=rows, rate=args.rate, rows_per_message=args.rows_per_message,
                         train_period=TRAIN_PERIOD, recovery_window=RECOVERY_WINDOW,
                         pre_window=PRE_WINDOW, machine=platform.platform(),
                         python=platform.python_version(), streams={})
    curves: Dict = {}
    for sname in args.streams.split(','):
        stream = make_stream(sname, rows, seed=STREAMS.index(sname) + 1)
        results['streams'][sname] = {}
        curves[sname] = {}
        for lname in learners:
            learner = FACTORIES[lname](stream['X'].shape[1])
            r = run_learner(learner, stream, args.rate,
                            stream.get('per_message', args.rows_per_message))
            s = score(r['p'], stream['y'], stream['change'])
            s.update(learn_us=r['learn_us'], predict_us=r['predict_us'])
            if lname == 'policy':
                s['changes_detected'] = learner.pol.metrics()['changes']
                s['updates'] = learner.pol.metrics()['updates']
            results['streams'][sname][lname] = s
            curves[sname][lname] = rolling_accuracy(r['p'], stream['y'], PLOT_WINDOW)
            print(f'{sname:13s} {lname:8s} acc {s["accuracy"]:.4f} logloss '
                  f'{s["log_loss"]:.4f} recovery {s.get("recovery", "-")!s:>5} learn '
                  f'{s["learn_us"]:7.1f} us/row', flush=True)
        results['streams'][sname]['change'] = stream['change']
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix('.json').write_text(json.dumps(results, indent=1) + '\n')
    out.with_suffix('.md').write_text(markdown(results, learners))
    if not args.no_plot:
        plot(curves, results, out.with_suffix('.png'))
    return 0


def goals(results: Dict) -> List[str]:
    """The issue's goals, judged on this run (needs the policy, River and today)."""
    lines = []
    for sname, by in results['streams'].items():
        if not all(k in by for k in ('policy', 'river', 'today')):
            continue
        pol, riv, today = by['policy'], by['river'], by['today']
        ok = pol['accuracy'] >= riv['accuracy'] - 0.005
        lines.append(f'{sname}: accuracy {pol["accuracy"]:.4f} >= river {riv["accuracy"]:.4f} '
                     f'- 0.005: {"yes" if ok else "NO"}')
        if pol.get('recovery', None) is not None or riv.get('recovery') is not None:
            a, b = pol.get('recovery'), riv.get('recovery')
            ok = a is not None and (b is None or a <= b)
            lines.append(f'{sname}: recovery {a} <= river {b}: {"yes" if ok else "NO"}')
        ok = pol['learn_us'] <= riv['learn_us']
        lines.append(f'{sname}: learning CPU {pol["learn_us"]:.1f} <= river '
                     f'{riv["learn_us"]:.1f} us/row: {"yes" if ok else "NO"}')
        if sname in ('stationary', 'features50', 'imbalance', 'demo'):
            ok = pol['accuracy'] >= today['accuracy'] - 0.005
            lines.append(f'{sname}: accuracy {pol["accuracy"]:.4f} >= today '
                         f'{today["accuracy"]:.4f} - 0.005: {"yes" if ok else "NO"}')
    return lines


def markdown(results: Dict, learners: List[str]) -> str:
    lines = [f'# Learning benchmark ({results["rows"]} rows a stream, {results["rate"]:g} rows/s, '
             f'{results["rows_per_message"]} row(s) a message, train_period '
             f'{results["train_period"]:g} s)', '',
             f'{results["machine"]}, Python {results["python"]}. Recovery: rows after the change '
             f'until the accuracy over the last {results["recovery_window"]} rows reaches 90% of '
             f'the accuracy over the {results["pre_window"]} rows before it (least possible: '
             f'{results["recovery_window"]}). CPU: microseconds per row, time.process_time.', '',
             f'Early: accuracy over the first {EARLY} rows. The demo stream is the wheel-slip '
             'scenario of the demo (soft labels, 50 rows a message).', '',
             '| stream | learner | accuracy | early | log loss | recovery | learn us/row | '
             'predict us/row |', '| --- | --- | --- | --- | --- | --- | --- | --- |']
    for sname, by in results['streams'].items():
        for lname in learners:
            s = by[lname]
            rec = s.get('recovery', '-')
            lines.append(f'| {sname} | {lname} | {s["accuracy"]:.4f} | '
                         f'{s["early_accuracy"]:.4f} | {s["log_loss"]:.4f} | '
                         f'{"never" if rec is None else rec} | {s["learn_us"]:.1f} | '
                         f'{s["predict_us"]:.1f} |')
    g = goals(results)
    if g:
        lines += ['', '## Goals (issue 16)', ''] + [f'- {line}' for line in g]
    return '\n'.join(lines) + '\n'


def plot(curves: Dict, results: Dict, path: Path) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    names = list(curves)
    cols = 4
    fig, axes = plt.subplots(math.ceil(len(names) / cols), cols, figsize=(18, 8), squeeze=False)
    for ax, sname in zip(axes.flat, names):
        for lname, acc in curves[sname].items():
            ax.plot(acc, label=lname, linewidth=1.0)
        change = results['streams'][sname]['change']
        for c in ([] if change is None else [change] if isinstance(change, int) else change):
            ax.axvline(c, color='grey', linestyle=':', linewidth=1.0)
        ax.set_title(sname)
        ax.set_xlabel('row')
        ax.set_ylabel(f'accuracy (last {PLOT_WINDOW} rows)')
        ax.set_ylim(0.3, 1.0)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(names):]:
        ax.axis('off')
    axes.flat[0].legend(loc='lower right')
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


if __name__ == '__main__':
    raise SystemExit(main())
