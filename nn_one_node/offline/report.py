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


def _figure(rows: int):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(rows, 1, figsize=(9, 3.0 * rows), squeeze=False)
    return plt, fig, [a[0] for a in axes]


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
    """Prequential accuracy and loss over bag time, detected changes, weights over time."""
    series = metrics['series']
    t = series['t']
    pre = metrics['prequential']
    changes = metrics['training']['change_times']
    names = metrics['feature_names']
    shown = {'prequential': {k: pre[k] for k in ('samples', 'accuracy', 'log_loss', 'mse')},
             'changes': changes, 'series': series,
             'model': metrics['model'], 'feature_names': names}
    plt, fig, (ax_acc, ax_loss, ax_w) = _figure(3)
    fig.suptitle(f'nn_one_bag train: {pre["samples"]} samples, prequential accuracy '
                 f'{_fmt(pre["accuracy"])}, log loss {_fmt(pre["log_loss"])}, '
                 f'MSE {_fmt(pre["mse"])}; {len(changes)} change(s) detected', fontsize=10)
    ax_acc.plot(t, _clean(series['accuracy']), label='prequential accuracy (per update)')
    ax_acc.set_ylabel('accuracy')
    ax_acc.set_ylim(-0.02, 1.02)
    ax_loss.plot(t, _clean(series['log_loss']), label='log loss')
    ax_loss.plot(t, _clean(series['mse']), label='MSE')
    ax_loss.set_ylabel('prequential loss')
    for ax in (ax_acc, ax_loss, ax_w):
        for i, c in enumerate(changes):
            ax.axvline(c, color='red', linestyle='--', linewidth=1,
                       label='change detected' if i == 0 else None)
    for i, name in enumerate(names):
        ax_w.plot(t, series[f'w{i}'], label=name)
    ax_w.plot(t, series['bias'], label='bias', color='black', linestyle=':')
    ax_w.set_yscale('symlog', linthresh=1e-2)
    ax_w.set_ylabel('weights (raw features)')
    ax_w.set_xlabel('bag time (s)')
    for ax in (ax_acc, ax_loss, ax_w):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc='best', ncol=2)
    _save(plt, fig, path, shown)
    return shown


def evaluate_report(metrics: Dict[str, Any], path: str) -> Dict[str, Any]:
    """Accuracy and loss over bag time, a reliability diagram, the confusion counts."""
    scores = metrics['scores']
    series = metrics['series']
    shown = {'scores': scores, 'series': series, 'model': metrics['model']}
    plt, fig, (ax_t, ax_cal) = _figure(2)
    conf = scores['confusion']
    fig.suptitle(f'nn_one_bag evaluate: {scores["samples"]} samples, accuracy '
                 f'{_fmt(scores["accuracy"])}, log loss {_fmt(scores["log_loss"])}, MSE '
                 f'{_fmt(scores["mse"])}\nTP {conf["true_positive"]}  FP '
                 f'{conf["false_positive"]}  TN {conf["true_negative"]}  FN '
                 f'{conf["false_negative"]}', fontsize=10)
    ax_t.plot(series['t'], _clean(series['accuracy']), label='accuracy')
    ax_t.plot(series['t'], _clean(series['log_loss']), label='log loss')
    ax_t.plot(series['t'], _clean(series['mse']), label='MSE')
    ax_t.set_xlabel('bag time (s)')
    ax_t.grid(True, alpha=0.3)
    ax_t.legend(fontsize=8)
    cal = [b for b in scores['calibration'] if b['count']]
    ax_cal.plot([0, 1], [0, 1], color='gray', linestyle=':', label='perfect calibration')
    ax_cal.plot([b['mean_predicted'] for b in cal], [b['observed_rate'] for b in cal],
                marker='o', label='model')
    for b in cal:
        ax_cal.annotate(str(b['count']), (b['mean_predicted'], b['observed_rate']),
                        fontsize=7, textcoords='offset points', xytext=(3, -9))
    ax_cal.set_xlabel('mean predicted probability (bin)')
    ax_cal.set_ylabel('observed label rate')
    ax_cal.set_xlim(0, 1)
    ax_cal.set_ylim(-0.02, 1.02)
    ax_cal.grid(True, alpha=0.3)
    ax_cal.legend(fontsize=8)
    _save(plt, fig, path, shown)
    return shown


def read_report_metadata(path: str) -> Dict[str, Any]:
    """The figures a report shows, as stored in its PNG text chunk."""
    from PIL import Image
    with Image.open(path) as img:
        return json.loads(img.text[METADATA_KEY])
