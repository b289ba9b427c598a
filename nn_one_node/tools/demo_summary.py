"""What the demo prints and draws: the table's rows, the summary, the plot, and the reference
they are measured against (the ground-truth model itself on noisy readings)."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, TextIO

import numpy as np

from nn_one_node.sim.scenario import Scenario, accuracy, mean_abs_error
from nn_one_node.tools.demo_monitor import EVAL_SAMPLES, EVAL_SEED, MonitorState, Sample


@dataclass(frozen=True)
class Reference:
    """The ground-truth model itself, scored on noisy readings: the best any model can do."""

    mse: float
    accuracy: float
    mae: float


def reference(samples: int = 20000) -> Reference:
    s = Scenario(EVAL_SEED + 1)
    X, y = s.sample(samples)
    y_hat = s.probability(X)  # the true weights applied to the noisy readings
    return Reference(float(np.mean((y_hat - y) ** 2)), accuracy(y_hat, y),
                     mean_abs_error(y_hat, y))


def _fmt(value: float, spec: str, width: int) -> str:
    return f'{"-":>{width}}' if value is None or not math.isfinite(value) \
        else f'{value:{width}{spec}}'


def _percent(value: float) -> str:
    return '-' if not math.isfinite(value) else f'{100 * value:.1f}%'


HEADER = (f'{"time":>7}  {"samples":>8}  {"updates":>7}  {"train loss":>10}  {"accuracy":>8}  '
          f'{"MAE":>6}  {"w error":>7}')


def row(s: Sample) -> str:
    return (f'{s.t:6.1f}s  {s.samples:8d}  {s.updates:7d}  {_fmt(s.loss, ".2e", 10)}  '
            f'{_percent(s.accuracy):>8}  {_fmt(s.mae, ".3f", 6)}  '
            f'{_fmt(s.weight_error, ".3f", 7)}')


def summary(state: MonitorState, scenario: Scenario, ref: Reference, elapsed: float,
            out: TextIO) -> None:
    last = state.history[-1] if state.history else None
    p = functools.partial(print, file=out)
    p('')
    p(f'summary after {elapsed:.1f} s')
    p(f'  samples received by the trainer: {state.samples}'
      if state.trainer_seen else f'  labeled samples published: {state.samples}')
    if state.losses:
        p(f'  trainer updates (deployed):      {state.losses} ({state.deployments})')
        p(f'  final training loss:             {_fmt(state.loss, ".3e", 0).strip()} '
          f'(the true model on noisy readings: {ref.mse:.3e})')
    else:
        p('  trainer updates:                 none')
    acc = last.accuracy if last else math.nan
    p(f'  final accuracy:                  {_fmt(100 * acc, ".1f", 0).strip()} % '
      f'on {EVAL_SAMPLES}+ fresh samples (the true model: {100 * ref.accuracy:.1f} %)')
    p(f'  final mean abs error:            {_fmt(last.mae if last else math.nan, ".4f", 0)} '
      f'(the true model: {ref.mae:.4f})')
    p(f'  deployed weights vs truth:       relative error '
      f'{_fmt(state.weight_error, ".3f", 0).strip()}')
    if state.weights is not None:
        p(f'    {"sensor":<15}{"deployed":>10}{"true":>10}')
        for name, w, t in zip(scenario.feature_names, state.weights, scenario.true_weights):
            p(f'    {name:<15}{w:10.3f}{t:10.3f}')
        p(f'    {"bias":<15}{state.bias:10.3f}{scenario.true_bias:10.3f}')


def plot(history: Sequence[Sample], ref: Reference, path: Path, with_trainer: bool) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    t = np.array([s.t for s in history])
    fig, (ax_loss, ax_acc, ax_w) = plt.subplots(3, 1, figsize=(8, 9), sharex=True)
    loss = np.array([s.loss for s in history])
    if with_trainer and np.isfinite(loss).any():
        ax_loss.semilogy(t, loss, 'o-', ms=3, color='tab:red', label='trainer loss on its buffer')
        ax_loss.axhline(ref.mse, ls=':', color='gray', label='true model on noisy readings')
        ax_loss.legend(loc='upper right', fontsize='small')
    else:
        ax_loss.text(0.5, 0.5, 'no trainer: no training loss', ha='center', va='center',
                     transform=ax_loss.transAxes)
    ax_loss.set_ylabel('training loss (MSE)')
    ax_loss.set_title('nn_one_node: online learning of wheel-slip risk')
    ax_acc.plot(t, [100 * s.accuracy for s in history], 'o-', ms=3, label='accuracy')
    ax_acc.axhline(100 * ref.accuracy, ls=':', color='gray', label='true model')
    ax_acc.set_ylabel('predictor accuracy on\nfresh samples (%)')
    ax_acc.set_ylim(0, 105)
    ax_acc.legend(loc='center right', fontsize='small')
    ax_mae = ax_acc.twinx()
    ax_mae.plot(t, [s.mae for s in history], 's--', ms=3, color='tab:green', label='MAE')
    ax_mae.set_ylabel('mean abs error', color='tab:green')
    ax_mae.set_ylim(0, 0.6)
    ax_w.plot(t, [s.weight_error for s in history], 'o-', ms=3, color='tab:purple')
    ax_w.set_ylabel('deployed weights:\nrelative error')
    ax_w.set_xlabel('time (s)')
    ax_w.set_ylim(bottom=0)
    for ax in (ax_loss, ax_acc, ax_w):
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
