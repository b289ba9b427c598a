"""``nn_one_bag evaluate``: score a fixed model on the samples of bags, overall and over time."""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from nn_one_node.model import forward
from nn_one_node.offline.bagio import Recording
from nn_one_node.offline.commands import (PROG, Failure, fmt, load_document, prepare,
                                          replay_bag, trainer_section, write_outputs)
from nn_one_node.offline.replay import NS
from nn_one_node.offline.scores import Scores, Series

EVAL_BINS = 100  # time bins of the evaluate report's series


class Evaluator:
    """Scores a fixed model on each arriving row, overall and per time bin."""

    def __init__(self, weights: np.ndarray, bias: float, activation: str, num_features: int,
                 start_ns: int, end_ns: int) -> None:
        self.w, self.b, self.activation, self.n = weights, bias, activation, num_features
        self.scores = Scores()
        self.bin_ns = max((end_ns - start_ns) // EVAL_BINS, 1)
        self.start_ns = start_ns
        self._bin: Optional[int] = None
        self._window = Scores(bins=1)
        self.series = Series(['t', 'accuracy', 'log_loss', 'mse', 'samples'])

    def add(self, rows: np.ndarray, now_ns: int) -> None:
        X, y = rows[:, :self.n], rows[:, self.n]
        p = forward(X, self.w, self.b, self.activation)
        b = (now_ns - self.start_ns) // self.bin_ns
        if self._bin is not None and b != self._bin:
            self._emit()
        self._bin = b
        self.scores.add(p, y)
        self._window.add(p, y)

    def _emit(self) -> None:
        w = self._window
        if w.count:
            t = (self.start_ns + (self._bin + 0.5) * self.bin_ns) / NS
            self.series.add(t, _num(w.accuracy()), _num(w.log_loss()), _num(w.mse()), w.count)
        self._window = Scores(bins=1)

    def finish(self) -> None:
        self._emit()


def _num(x: float) -> Optional[float]:
    return float(x) if math.isfinite(x) else None


def cmd_evaluate(args) -> int:
    from nn_one_node.offline.report import evaluate_report
    from nn_one_node.learning.weights_file import WeightsFileError, load_weights_file
    document = load_document(args.params_file)
    _, n = trainer_section(document)
    try:
        model = load_weights_file(args.weights, require_checksum=False)
    except WeightsFileError as err:
        raise Failure(str(err)) from None
    if n is not None and n != model.num_features:
        raise Failure(f'{args.weights} holds a model of {model.num_features} features; the '
                      f'params file says trainer num_features {n}')
    with Recording(args.bags) as rec:
        setup = prepare(args, document, rec, model.num_features, model.activation, learn=False)
        kind, source = setup.kind, setup.source
        if source.num_features != model.num_features:
            raise Failure(f'{args.weights} holds a model of {model.num_features} features; the '
                          f'assembler section builds {source.num_features}')
        setup.require()
        ev = Evaluator(np.asarray(model.weights), model.bias, model.activation,
                       model.num_features, rec.start_ns, rec.end_ns)
        run = replay_bag(rec, source, None, ev.add, setup.clock, 'evaluate', args.quiet)
        ev.finish()
        storages = rec.storages()
    if ev.scores.count == 0:
        raise Failure(f'no labeled samples in {", ".join(args.bags)} to evaluate on')
    metrics = {
        'command': 'evaluate', 'bags': list(args.bags), 'storages': storages, 'source': kind,
        'feature_names': list(source.feature_names), 'run': run,
        'model': {'weights': np.asarray(model.weights).tolist(), 'bias': model.bias,
                  'activation': model.activation, 'file': args.weights},
        'scores': ev.scores.summary(), 'series': ev.series.as_dict(),
        'inputs': source.counters(),
    }
    write_outputs(args, metrics, evaluate_report)
    s = metrics['scores']
    c = s['confusion']
    print('calibration (predicted probability bin: samples, mean predicted, observed rate):')
    for b in s['calibration']:
        if b['count']:
            print(f'  [{b["low"]:.1f}, {b["high"]:.1f}): {b["count"]:>8,}  '
                  f'{b["mean_predicted"]:.3f}  {b["observed_rate"]:.3f}')
    print(f'{PROG} evaluate: {s["samples"]:,} samples from {run["messages"]:,} messages: '
          f'accuracy {fmt(s["accuracy"])}, log loss {fmt(s["log_loss"])}, MSE '
          f'{fmt(s["mse"])} (TP {c["true_positive"]}, FP {c["false_positive"]}, '
          f'TN {c["true_negative"]}, FN {c["false_negative"]})')
    return 0
