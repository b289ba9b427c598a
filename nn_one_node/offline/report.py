"""The PNG reports of ``nn_one_bag`` (matplotlib, Agg: no display needed). No ROS import.

Each report draws the figures of the run's metrics dictionary (the one ``--json`` writes) and
stores that dictionary's plotted part in the PNG's text chunk ``nn_one_bag`` (as JSON), so that a
report can be checked against its numbers: ``read_report_metadata(path)``.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Dict, List, Optional

METADATA_KEY = 'nn_one_bag'


def _figure(rows: int, height: float = 2.4):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(rows, 1, figsize=(11, height * rows + 0.8), squeeze=False)
    return plt, fig, [a[0] for a in axes]


def _time_zero(metrics: Dict[str, Any]) -> float:
    """The bag's start (its first message replayed), in the series' seconds: the reports' time
    axis counts from it, not from 1970."""
    first = (metrics.get('run') or {}).get('first_s')
    if first is not None:
        return float(first)
    t = metrics['series']['t']
    return float(t[0]) if t else 0.0


def _legend_outside(ax) -> None:
    """The legend right of the plot, off the data."""
    ax.legend(fontsize=7, loc='upper left', bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)


def _fmt(x: Optional[float], digits: int = 4) -> str:
    return 'n/a' if x is None or (isinstance(x, float) and not math.isfinite(x)) \
        else f'{x:.{digits}f}'


def _save(plt, fig, path: str, shown: Dict[str, Any]) -> None:
    fig.tight_layout()
    tmp = f'{path}.tmp-{os.getpid()}'
    try:
        fig.savefig(tmp, format='png', dpi=90,
                    metadata={METADATA_KEY: json.dumps(shown, sort_keys=True)})
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.remove(tmp)


def _clean(values: List[Any]) -> List[float]:
    return [math.nan if v is None else v for v in values]


def train_report(metrics: Dict[str, Any], path: str) -> Dict[str, Any]:
    """Prequential accuracy, log loss and MSE (one axis each), detected changes, and the
    weights over the seconds from the bag's start."""
    series = metrics['series']
    t0 = _time_zero(metrics)
    t = [x - t0 for x in series['t']]
    pre = metrics['prequential']
    changes = metrics['training']['change_times']
    names = metrics['feature_names']
    shown = {'prequential': {k: pre[k] for k in ('samples', 'accuracy', 'log_loss', 'mse')},
             'changes': changes, 'series': series, 'time_zero': t0,
             'model': metrics['model'], 'feature_names': names}
    plt, fig, (ax_acc, ax_log, ax_mse, ax_w) = _figure(4)
    fig.suptitle(f'nn_one_bag train: {pre["samples"]} samples, prequential accuracy '
                 f'{_fmt(pre["accuracy"])}, log loss {_fmt(pre["log_loss"])}, '
                 f'MSE {_fmt(pre["mse"])}; {len(changes)} change(s) detected', fontsize=10)
    ax_acc.plot(t, _clean(series['accuracy']), label='prequential accuracy\n(per update)')
    ax_acc.set_ylabel('accuracy')
    ax_acc.set_ylim(-0.02, 1.02)
    ax_log.plot(t, _clean(series['log_loss']), label='prequential log loss', color='tab:orange')
    ax_log.set_ylabel('log loss')
    ax_mse.plot(t, _clean(series['mse']), label='prequential MSE', color='tab:green')
    ax_mse.set_ylabel('MSE')
    for i, name in enumerate(names):
        ax_w.plot(t, series[f'w{i}'], label=name)
    ax_w.plot(t, series['bias'], label='bias', color='black', linestyle=':')
    ax_w.set_yscale('symlog', linthresh=1e-2)
    ax_w.set_ylabel('weights\n(raw features)')
    ax_w.set_xlabel("seconds from the bag's start")
    for ax in (ax_acc, ax_log, ax_mse, ax_w):
        for i, c in enumerate(changes):
            ax.axvline(c - t0, color='red', linestyle='--', linewidth=1,
                       label='change detected' if i == 0 else None)
        ax.grid(True, alpha=0.3)
        ax.set_xlim(left=0.0)
        _legend_outside(ax)
    _save(plt, fig, path, shown)
    return shown


def evaluate_report(metrics: Dict[str, Any], path: str) -> Dict[str, Any]:
    """Accuracy, log loss and MSE over the seconds from the bag's start (one axis each), a
    reliability diagram, the confusion counts."""
    scores = metrics['scores']
    series = metrics['series']
    t0 = _time_zero(metrics)
    t = [x - t0 for x in series['t']]
    shown = {'scores': scores, 'series': series, 'model': metrics['model'], 'time_zero': t0}
    plt, fig, (ax_acc, ax_log, ax_mse, ax_cal) = _figure(4)
    conf = scores['confusion']
    fig.suptitle(f'nn_one_bag evaluate: {scores["samples"]} samples, accuracy '
                 f'{_fmt(scores["accuracy"])}, log loss {_fmt(scores["log_loss"])}, MSE '
                 f'{_fmt(scores["mse"])}\nTP {conf["true_positive"]}  FP '
                 f'{conf["false_positive"]}  TN {conf["true_negative"]}  FN '
                 f'{conf["false_negative"]}', fontsize=10)
    for ax, key, label, color in ((ax_acc, 'accuracy', 'accuracy', 'tab:blue'),
                                  (ax_log, 'log_loss', 'log loss', 'tab:orange'),
                                  (ax_mse, 'mse', 'MSE', 'tab:green')):
        ax.plot(t, _clean(series[key]), label=f'{label} (per bin)', color=color, marker='.')
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        ax.set_xlim(left=0.0)
        _legend_outside(ax)
    ax_acc.set_ylim(-0.02, 1.02)
    ax_mse.set_xlabel("seconds from the bag's start")
    cal = [b for b in scores['calibration'] if b['count']]
    ax_cal.plot([0, 1], [0, 1], color='gray', linestyle=':', label='perfect calibration')
    ax_cal.plot([b['mean_predicted'] for b in cal], [b['observed_rate'] for b in cal],
                marker='o', label='model\n(each point: its\nsample count)')
    for b in cal:
        ax_cal.annotate(str(b['count']), (b['mean_predicted'], b['observed_rate']),
                        fontsize=7, textcoords='offset points', xytext=(3, -9))
    ax_cal.set_xlabel('mean predicted probability (bin)')
    ax_cal.set_ylabel('observed\nlabel rate')
    ax_cal.set_xlim(0, 1)
    ax_cal.set_ylim(-0.02, 1.02)
    ax_cal.grid(True, alpha=0.3)
    _legend_outside(ax_cal)
    _save(plt, fig, path, shown)
    return shown


def read_report_metadata(path: str) -> Dict[str, Any]:
    """The figures a report shows, as stored in its PNG text chunk."""
    from PIL import Image
    with Image.open(path) as img:
        return json.loads(img.text[METADATA_KEY])
