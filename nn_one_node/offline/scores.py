"""Scores of predictions against labels (accuracy, log loss, MSE, calibration, confusion) in
O(1) memory, and the report series (``Series``) thinned to a bounded number of points."""

from __future__ import annotations

import math
from typing import Any, Dict, Iterable, List, Optional, Tuple

import numpy as np

LOG_EPS = 1e-12  # predictions are clipped into [eps, 1 - eps] for the log loss
CALIBRATION_BINS = 10
MAX_POINTS = 4096  # points kept per report series: the oldest half is thinned when full


class Scores:
    """Accuracy (threshold 0.5 on prediction and label), log loss, MSE, calibration and
    confusion counts of predictions ``p`` against labels ``y`` (soft labels allowed), in O(1)
    memory.

    >>> s = Scores()
    >>> s.add(np.array([0.9, 0.2, 0.6]), np.array([1.0, 0.0, 0.0]))
    >>> s.count, round(s.accuracy(), 3), s.confusion()
    (3, 0.667, {'true_positive': 1, 'false_positive': 1, 'true_negative': 1, 'false_negative': 0})
    """

    def __init__(self, bins: int = CALIBRATION_BINS) -> None:
        self.bins = bins
        self.count = 0
        self.correct = 0
        self.sq_err = 0.0
        self.log_loss_sum = 0.0
        self.tp = self.fp = self.tn = self.fn = 0
        self.bin_count = np.zeros(bins, dtype=np.int64)
        self.bin_p = np.zeros(bins)
        self.bin_y = np.zeros(bins)

    def add(self, p: np.ndarray, y: np.ndarray) -> None:
        m = int(p.shape[0])
        if not m:
            return
        self.count += m
        d = p - y
        self.sq_err += float(np.dot(d, d))
        q = np.clip(p, LOG_EPS, 1.0 - LOG_EPS)
        self.log_loss_sum -= float(np.dot(y, np.log(q)) + np.dot(1.0 - y, np.log1p(-q)))
        pred = p >= 0.5
        true = y >= 0.5
        tp = int(np.count_nonzero(pred & true))
        fp = int(np.count_nonzero(pred & ~true))
        pos = int(np.count_nonzero(true))
        self.tp += tp
        self.fp += fp
        self.fn += pos - tp
        self.tn += m - pos - fp
        self.correct += tp + (m - pos - fp)
        idx = np.clip((np.clip(p, 0.0, 1.0) * self.bins).astype(np.intp), 0, self.bins - 1)
        self.bin_count += np.bincount(idx, minlength=self.bins)
        self.bin_p += np.bincount(idx, weights=p, minlength=self.bins)
        self.bin_y += np.bincount(idx, weights=y, minlength=self.bins)

    def accuracy(self) -> float:
        return self.correct / self.count if self.count else math.nan

    def mse(self) -> float:
        return self.sq_err / self.count if self.count else math.nan

    def log_loss(self) -> float:
        return self.log_loss_sum / self.count if self.count else math.nan

    def confusion(self) -> Dict[str, int]:
        return {'true_positive': self.tp, 'false_positive': self.fp,
                'true_negative': self.tn, 'false_negative': self.fn}

    def calibration(self) -> List[Dict[str, Any]]:
        """One row per bin of predicted probability: its range, count, mean prediction and
        observed label rate (None where the bin is empty)."""
        out = []
        for i in range(self.bins):
            c = int(self.bin_count[i])
            out.append({'low': i / self.bins, 'high': (i + 1) / self.bins, 'count': c,
                        'mean_predicted': float(self.bin_p[i] / c) if c else None,
                        'observed_rate': float(self.bin_y[i] / c) if c else None})
        return out

    def summary(self) -> Dict[str, Any]:
        return {'samples': self.count, 'accuracy': _num(self.accuracy()),
                'log_loss': _num(self.log_loss()), 'mse': _num(self.mse()),
                'confusion': self.confusion(), 'calibration': self.calibration()}


def _num(x: float) -> Optional[float]:
    return float(x) if math.isfinite(x) else None


class Series:
    """Points (t, values...) for a report, at most ``MAX_POINTS`` kept: when full, every other
    point is dropped and only every 2nd (then 4th ...) new point kept, so memory stays bounded
    and the series still spans the whole bag."""

    def __init__(self, names: Iterable[str], limit: int = MAX_POINTS) -> None:
        self.names = list(names)
        self.points: List[Tuple[Any, ...]] = []
        self._limit = limit
        self._stride = 1
        self._seen = 0

    def add(self, *values: Any) -> None:
        if self._seen % self._stride == 0:
            self.points.append(values)
            if len(self.points) >= self._limit:
                self.points = self.points[::2]
                self._stride *= 2
        self._seen += 1

    def as_dict(self) -> Dict[str, List[Any]]:
        cols = list(zip(*self.points)) if self.points else [[] for _ in self.names]
        return {name: list(col) for name, col in zip(self.names, cols)}

