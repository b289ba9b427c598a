"""Issue 23: the trainer's own learning code, prequentially, side by side with River.

Measures ``nn_one_node.learning.trainer_core.TrainerCore`` in this process, driven exactly as the
trainer node drives it, with the trainer's defaults (``learning.config.DEFAULTS``, only
``num_features`` set and ``weights`` zeros; deploying nowhere): ``core.receive(rows, now)`` for a
labeled_samples message, ``core.tick(now)`` for the ``train_period`` timer, ``core.update(now)``
then ``core.sync()`` for ``~/train_now``. Prequential ("test-then-train"): every row is predicted
by the model in force (``core.weights``, ``core.bias`` through ``nn_one_node.model.forward``)
before it is given to the core. The peer sees the same rows in the same messages: River's
``preprocessing.StandardScaler() | linear_model.LogisticRegression()`` at its defaults
(``predict_proba_one`` for every row of a message, then ``learn_one`` for each); with ``--peers
river,sklearn`` also scikit-learn's ``SGDClassifier(loss='log_loss')`` after a
``StandardScaler``, ``partial_fit`` per message.

Streams: ``learning_streams.py`` (real data sets of scikit-learn, streams of our own; a tuning
and a validation set). Stream time: rows arrive at the stream's rate (10 rows/s for the data sets,
100 rows/s for ours); the timer counts that time.

Protocols
1. ``row``: one row a message at the stream's rate; the timer ticks every ``train_period`` from
   the start (a tick due at a row's time comes first).
2. ``batch``: rounds of K rows (K = 10 for a stream under 1000 rows, else 100), one a K/rate
   seconds: predict the K rows, give them in one message, then ``~/train_now`` (update + sync).
   The timer runs too, its ticks half a period off the rounds (``train_period`` / 2 after them).
3. ``irregular``: messages of 1, 2, 3 ... rows (geometric, mean 2.5) at random intervals
   (exponential, the stream's mean rate); the timer starts at a random phase and each tick comes
   late by a random 0-25 % of the period (a busy executor).

Restart (the ``restart`` stream): before the message holding the middle row, the trainer stops
and a new ``TrainerCore`` with the same values resumes from the weights file the first one wrote
(``values['weights_file']``, ``core.resume()``); its timer starts then. River keeps its model.

Figures per stream, protocol and learner: prequential accuracy (threshold 0.5) over the whole
stream and over its first 10 %; log loss; recovery after an abrupt change: the rows after the
change until the accuracy over the last ``RECOVERY_WINDOW`` rows (all after the change) is back
within ``RECOVERY_TOLERANCE`` of the learner's own accuracy over the ``PRE_WINDOW`` rows before
it (least possible ``RECOVERY_WINDOW``; None: never); learning CPU per row
(``time.process_time`` around the learning calls only: receive, tick, train_now, the restart;
River's ``learn_one`` including the dict it takes); for the restart, the accuracy over the
``RESTART_WINDOW`` rows after it and before it.

    python bench/learning_bench.py [--quick] [--streams a,b] [--protocols row,batch]
                                   [--peers river,sklearn] [--out PREFIX] [--no-plot]

Writes PREFIX.json, PREFIX.md and PREFIX.png (default bench/results/learning).
"""

from __future__ import annotations

from nn_one_node import blas_threads  # noqa: F401 - one BLAS thread, as the trainer runs

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np

import learning_report
import learning_streams
from provenance import run_meta
from nn_one_node.learning.config import DEFAULTS
from nn_one_node.learning.trainer_core import TrainerCore
from nn_one_node.model import forward

PROTOCOLS = ('row', 'batch', 'irregular')
PEERS = ('river', 'sklearn')
PRE_WINDOW = 1000
RECOVERY_WINDOW = 100
RECOVERY_TOLERANCE = 0.05
RESTART_WINDOW = 1000
EARLY_FRACTION = 0.1
JITTER = 0.25  # the irregular protocol's ticks come late by up to this fraction of the period
EPS = 1e-12
REPO = Path(__file__).resolve().parents[1]
# Trainer parameters set by --set (a study of one parameter); none: the trainer's defaults.
OVERRIDES: Dict[str, object] = {}


# ----------------------------------------------------------------------------------- learners
class Ours:
    """The trainer node's code: ``TrainerCore`` with the trainer's defaults."""

    def __init__(self, n: int, weights_file: str = '') -> None:
        self.values = {**DEFAULTS, **OVERRIDES, 'num_features': n, 'weights': [0.0] * n,
                       'weights_file': weights_file}
        self.core = TrainerCore(self.values)
        self.restarts = 0
        self.totals = dict(updates=0, deployed=0, refused=0, changes=0)

    def predict(self, X: np.ndarray) -> np.ndarray:
        core = self.core
        return forward(X, core.weights, core.bias, core.activation)

    def give(self, rows: np.ndarray, now: float) -> None:
        self.core.receive(rows, now)  # a labeled_samples message

    def tick(self, now: float) -> None:
        self.core.tick(now)  # the train_period timer

    def train_now(self, now: float) -> None:
        self.core.update(now)  # ~/train_now
        self.core.sync()

    def restart(self) -> None:
        """SIGINT, then a new trainer with the same parameters, resuming the weights file."""
        self._count()
        self.core = TrainerCore(self.values)
        self.core.resume()
        self.restarts += 1

    def _count(self) -> None:
        pol = self.core.policy
        for key, value in (('updates', pol.updates), ('deployed', pol.deployed),
                           ('refused', pol.refused), ('changes', pol.metrics()['changes'])):
            self.totals[key] += value

    def summary(self) -> Dict:
        self._count()
        w = self.core.weights
        return dict(self.totals, restarts=self.restarts, final_weights=w.tolist(),
                    final_bias=self.core.bias)


class RiverPeer:
    def __init__(self, n: int) -> None:
        from river import linear_model, preprocessing
        self.model = preprocessing.StandardScaler() | linear_model.LogisticRegression()

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.array([self.model.predict_proba_one(dict(enumerate(x))).get(True, 0.5)
                         for x in X.tolist()])

    def learn(self, X: np.ndarray, y: np.ndarray) -> None:
        for x, label in zip(X.tolist(), y.tolist()):
            self.model.learn_one(dict(enumerate(x)), label > 0.5)

    def summary(self) -> Dict:
        return {}


class SklearnPeer:
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

    def learn(self, X: np.ndarray, y: np.ndarray) -> None:
        self.scaler.partial_fit(X)
        self.model.partial_fit(self.scaler.transform(X), (y > 0.5).astype(int), classes=[0, 1])
        self.fitted = True

    def summary(self) -> Dict:
        return {}


PEER_CLASSES = {'river': RiverPeer, 'sklearn': SklearnPeer}


# ---------------------------------------------------------------------------------- schedules
def messages(protocol: str, m: int, rate: float, K: int,
             rng: np.random.Generator) -> Iterator[Tuple[float, int, int, bool]]:
    """(time, first row, end row, train_now) of each message, in time order."""
    if protocol == 'row':
        for i in range(m):
            yield (i + 1) / rate, i, i + 1, False
    elif protocol == 'batch':
        for j, start in enumerate(range(0, m, K)):
            yield (j + 1) * K / rate, start, min(start + K, m), True
    else:
        t, start = 0.0, 0
        while start < m:
            size = int(rng.geometric(0.4))
            t += float(rng.exponential(size / rate))
            yield t, start, min(start + size, m), False
            start += size


class Timer:
    """The node's ``train_period`` timer, created at ``start``: ticks at ``start + phase + k
    period`` (phase: one period, as rclpy's first callback), each late by ``jitter`` x a uniform
    draw in [0, 1) of the period (not cumulative)."""

    def __init__(self, start: float, period: float, phase: float, jitter: float = 0.0,
                 rng: Optional[np.random.Generator] = None) -> None:
        self.next = start + phase
        self.period, self.jitter, self.rng = period, jitter, rng
        self._late = self._draw()

    def _draw(self) -> float:
        return float(self.rng.random()) * self.jitter * self.period if self.jitter else 0.0

    def due(self, now: float) -> Iterator[float]:
        while self.next + self._late <= now:
            t = self.next + self._late
            self.next += self.period
            self._late = self._draw()
            yield t


def new_timer(protocol: str, start: float, period: float, rng: np.random.Generator) -> Timer:
    if protocol == 'row':
        return Timer(start, period, period)
    if protocol == 'batch':
        return Timer(start, period, 0.5 * period)
    return Timer(start, period, float(rng.random()) * period, JITTER, rng)


# ------------------------------------------------------------------------------------ the run
def run(stream: Dict, protocol: str, peers: List[str], workdir: str) -> Dict:
    """One stream through one protocol: every learner's predictions and learning CPU."""
    X, y = stream['X'], stream['y']
    m, n = X.shape
    rows = np.column_stack([X, y])
    rng = np.random.default_rng([learning_streams.STREAMS[stream['name']].seed,
                                 PROTOCOLS.index(protocol)])
    weights_file = os.path.join(workdir, f'{stream["name"]}-{protocol}.yaml') \
        if stream['restart_at'] is not None else ''
    ours = Ours(n, weights_file)
    others = {name: PEER_CLASSES[name](n) for name in peers}
    p = {name: np.empty(m) for name in ['ours', *others]}
    cpu = dict.fromkeys(p, 0.0)
    clock = time.process_time
    period = float(DEFAULTS['train_period'])
    timer = new_timer(protocol, 0.0, period, rng)
    restart_at = stream['restart_at']
    restarted_row = None
    for now, a, b, train_now in messages(protocol, m, stream['rate'], stream['K'], rng):
        for t in timer.due(now):
            t0 = clock()
            ours.tick(t)
            cpu['ours'] += clock() - t0
        if restart_at is not None and restarted_row is None and b > restart_at:
            t0 = clock()
            ours.restart()
            cpu['ours'] += clock() - t0
            timer = new_timer(protocol, now, period, rng)
            restarted_row = a
        Xm = X[a:b]
        p['ours'][a:b] = ours.predict(Xm)
        for name, peer in others.items():
            p[name][a:b] = peer.predict(Xm)
        t0 = clock()
        ours.give(rows[a:b], now)
        if train_now:
            ours.train_now(now)
        cpu['ours'] += clock() - t0
        for name, peer in others.items():
            t0 = clock()
            peer.learn(Xm, y[a:b])
            cpu[name] += clock() - t0
    learners = {'ours': ours, **others}
    out: Dict = {name: dict(p=p[name], learn_us=cpu[name] / m * 1e6,
                            info=learners[name].summary()) for name in p}
    out['restarted_row'] = restarted_row
    return out


def score(p: np.ndarray, y: np.ndarray, change: Optional[int],
          restarted_row: Optional[int]) -> Dict:
    m = y.shape[0]
    correct = ((p >= 0.5) == (y > 0.5)).astype(np.float64)
    pc = np.clip(p, EPS, 1.0 - EPS)
    logloss = -(y * np.log(pc) + (1.0 - y) * np.log1p(-pc))
    early = max(1, math.ceil(EARLY_FRACTION * m))
    out = dict(accuracy=float(correct.mean()), first10=float(correct[:early].mean()),
               log_loss=float(logloss.mean()))
    if change is not None:
        pre = float(correct[max(0, change - PRE_WINDOW):change].mean())
        c = np.concatenate([[0.0], np.cumsum(correct[change:])])
        k = np.arange(RECOVERY_WINDOW, c.shape[0])
        rolling = (c[k] - c[k - RECOVERY_WINDOW]) / RECOVERY_WINDOW
        hit = np.nonzero(rolling >= pre - RECOVERY_TOLERANCE - 1e-12)[0]
        out.update(pre_change_accuracy=pre, recovery=int(k[hit[0]]) if hit.size else None,
                   accuracy_after_change=float(correct[change:].mean()))
    if restarted_row is not None:
        r, w = restarted_row, min(RESTART_WINDOW, restarted_row, m - restarted_row)
        out.update(restart_window=w, before_restart=float(correct[r - w:r].mean()),
                   after_restart=float(correct[r:r + w].mean()))
    return out


def rolling_accuracy(p: np.ndarray, y: np.ndarray, window: int) -> np.ndarray:
    correct = ((p >= 0.5) == (y > 0.5)).astype(np.float64)
    c = np.concatenate([[0.0], np.cumsum(correct)])
    k = np.arange(1, c.shape[0])
    lo = np.maximum(k - window, 0)
    return (c[k] - c[lo]) / (k - lo)


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--quick', action='store_true',
                    help=f'{learning_streams.OWN_ROWS_QUICK} rows a stream of our own, '
                    f'{learning_streams.QUICK_REAL_ROWS} at most of a data set')
    ap.add_argument('--streams', default=','.join(learning_streams.STREAMS))
    ap.add_argument('--protocols', default=','.join(PROTOCOLS))
    ap.add_argument('--peers', default='river', help='river and optionally sklearn (slow)')
    ap.add_argument('--out', default=str(REPO / 'bench' / 'results' / 'learning'))
    ap.add_argument('--no-plot', action='store_true')
    ap.add_argument('--set', action='append', default=[], metavar='NAME=VALUE',
                    help='a trainer parameter other than its default, e.g. prior=0.3 (for a '
                    'study; the goals are judged on the defaults)')
    args = ap.parse_args(argv)
    for item in args.set:
        name, _, text = item.partition('=')
        if name not in DEFAULTS or name in ('weights', 'num_features') or not text:
            ap.error(f'--set {item}: NAME=VALUE with NAME a trainer parameter')
        kind = type(DEFAULTS[name])
        try:
            OVERRIDES[name] = (text.lower() in ('1', 'true') if kind is bool else kind(text))
        except ValueError:
            ap.error(f'--set {item}: {text!r} is no {kind.__name__}')
    started = time.monotonic()
    names = [s for s in args.streams.split(',') if s]
    protocols = [s for s in args.protocols.split(',') if s]
    peers = [s for s in args.peers.split(',') if s]
    for bad, known, what in ((names, learning_streams.STREAMS, '--streams'),
                             (protocols, PROTOCOLS, '--protocols'), (peers, PEERS, '--peers')):
        unknown = [x for x in bad if x not in known]
        if unknown:
            ap.error(f'{what}: unknown {unknown}; known: {", ".join(known)}')
    if 'river' not in peers:
        ap.error('--peers: river is the peer the goals are judged against')
    streams = {name: learning_streams.make(learning_streams.STREAMS[name], args.quick)
               for name in names}
    results: Dict = dict(
        config=dict(quick=args.quick, protocols=protocols, peers=peers,
                    train_period=DEFAULTS['train_period'], pre_window=PRE_WINDOW,
                    recovery_window=RECOVERY_WINDOW, recovery_tolerance=RECOVERY_TOLERANCE,
                    restart_window=RESTART_WINDOW, early_fraction=EARLY_FRACTION,
                    jitter=JITTER, trainer_values={k: v for k, v in {**DEFAULTS,
                                                                     **OVERRIDES}.items()
                                                   if k != 'weights'}),
        streams={name: {k: s[k] for k in ('set', 'kind', 'label', 'drift', 'rate', 'K',
                                          'change', 'restart_at', 'clock')}
                 | dict(rows=int(s['X'].shape[0]), features=int(s['X'].shape[1]),
                        positives=float(s['y'].mean()),
                        clock_range=(None if s['clock'] is None else
                                     np.ptp(s['X'][:, s['clock']]).item()))
                 for name, s in streams.items()},
        results={})
    curves: Dict = {}
    with tempfile.TemporaryDirectory(prefix='learning_bench-') as workdir:
        for protocol in protocols:
            results['results'][protocol] = by_stream = {}
            for name, s in streams.items():
                r = run(s, protocol, peers, workdir)
                by_stream[name] = entry = {}
                for learner in ['ours', *peers]:
                    e = score(r[learner]['p'], s['y'], s['change'], r['restarted_row'])
                    e.update(learn_us=r[learner]['learn_us'], **r[learner]['info'])
                    entry[learner] = e
                    window = max(20, min(500, s['X'].shape[0] // 10))
                    curves.setdefault(name, {})[(protocol, learner)] = \
                        rolling_accuracy(r[learner]['p'], s['y'], window)
                entry['goals'] = learning_report.goals(entry, s)
                o, rv = entry['ours'], entry['river']
                print(f'{protocol:9s} {name:13s} acc {o["accuracy"]:.4f} river '
                      f'{rv["accuracy"]:.4f}  first10 {o["first10"]:.3f} / '
                      f'{rv["first10"]:.3f}  cpu {o["learn_us"]:6.1f} / {rv["learn_us"]:6.1f} '
                      f'us/row  goals {learning_report.met_text(entry["goals"])}', flush=True)
    results['summary'] = learning_report.summary(results)
    results['meta'] = run_meta('learning_bench.py', argv, started, ('river', 'sklearn', 'numpy'))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # out + '.json' etc.: not with_suffix, which would cut 'learning_prior_0.3' at its dot
    (out.parent / (out.name + '.json')).write_text(json.dumps(results, indent=1) + '\n')
    (out.parent / (out.name + '.md')).write_text(learning_report.markdown(results))
    if not args.no_plot:
        learning_report.plot(curves, results, out.parent / (out.name + '.png'))
    print(f'{results["meta"]["duration_s"]} s; wrote {out}.json, .md'
          + ('' if args.no_plot else ', .png'))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
