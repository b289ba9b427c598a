"""A small robotics scenario with a known ground truth: the risk that a wheel slips.

No ROS import. The simulated sensor node publishes what this module draws, the demo and the tests
score the predictor against it.

A ground robot reads five sensors of very different scales and noise (see ``SENSORS``). The true
probability that a wheel slips is one sigmoid neuron of the clean readings::

    p = sigmoid(x_clean . w_true + b_true)

so the course's model can represent it exactly, and the raw-feature weights a trainer deploys
(``normalize`` on: trained on standardized features, converted back to raw ones) should approach
``w_true`` and ``b_true``. The sensors report ``x_noisy = x_clean + noise``; their ranges differ by
three orders of magnitude (vibration ~0.1 g, current ~10 A, temperature ~50 C), which is what makes
plain gradient descent on raw features stall and feature scaling necessary.

Labels: by default the soft label ``y = p`` (the ground-truth probability); with ``bernoulli=True``
the hard label ``y ~ Bernoulli(p)``, as a robot that records whether a slip actually happened would
see. Either way the labels lie in [0, 1], and over many samples the MSE is smallest at ``w_true``.

Measurement noise makes the learnt weights slightly smaller in magnitude than ``w_true``
(errors-in-variables attenuation, ``var(noise) / var(x)`` per feature, here below 2 %).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple, Union

import numpy as np

from nn_one_node.model import sigmoid


@dataclass(frozen=True)
class Sensor:
    """One feature: its uniform range of clean values, its noise, its true weight."""

    name: str
    unit: str
    low: float
    high: float
    noise_std: float
    weight: float
    meaning: str


# The ground truth. The weights are per unit of each raw reading; the bias centres the logit so
# that about half the samples are risky. Standardized, every feature carries a weight of about
# 0.9..1.4, so no feature dominates and none is negligible.
SENSORS: Tuple[Sensor, ...] = (
    Sensor('lidar_range', 'm', 0.2, 10.0, 0.05, -0.4,
           'distance to the nearest obstacle ahead: close obstacles mean hard braking'),
    Sensor('speed', 'm/s', 0.0, 2.0, 0.02, 2.0, 'wheel odometry speed'),
    Sensor('motor_current', 'A', 0.0, 20.0, 0.5, 0.25, 'drive motor current: torque demand'),
    Sensor('imu_vibration', 'g', 0.01, 0.5, 0.02, 8.0,
           'RMS vertical acceleration: rough or loose ground'),
    Sensor('temperature', 'C', 20.0, 80.0, 0.5, -0.05,
           'tyre temperature: warm rubber grips better'),
)
TRUE_BIAS = -2.0


def feature_names() -> Tuple[str, ...]:
    return tuple(s.name for s in SENSORS)


class Scenario:
    """Draws noisy sensor readings and ground-truth slip labels, reproducibly for a seed.

    >>> s = Scenario(seed=1)
    >>> X, y = s.sample(4)          # X (4, 5) noisy raw readings, y (4,) in [0, 1]
    >>> rows = s.labeled_rows(4)    # (4, 6): features followed by the label, as the trainer wants
    """

    def __init__(self, seed: Union[None, int, np.random.SeedSequence] = 0,
                 bernoulli: bool = False) -> None:
        self.bernoulli = bool(bernoulli)
        self._rng = np.random.default_rng(seed)
        self._low = np.array([s.low for s in SENSORS])
        self._high = np.array([s.high for s in SENSORS])
        self._noise = np.array([s.noise_std for s in SENSORS])
        self._w = np.array([s.weight for s in SENSORS])
        self._b = TRUE_BIAS

    @property
    def num_features(self) -> int:
        return len(SENSORS)

    @property
    def feature_names(self) -> Tuple[str, ...]:
        return feature_names()

    @property
    def true_weights(self) -> np.ndarray:
        """w_true per raw unit, shape (N,) (a copy)."""
        return self._w.copy()

    @property
    def true_bias(self) -> float:
        return float(self._b)

    def probability(self, X_clean: np.ndarray) -> np.ndarray:
        """The ground truth: sigmoid(X_clean . w_true + b_true), shape (M,)."""
        X_clean = np.asarray(X_clean, dtype=np.float64)
        return sigmoid(X_clean @ self._w + self._b)

    def clean(self, m: int) -> np.ndarray:
        """m clean readings, each sensor uniform over its range, shape (m, N)."""
        m = self._count(m)
        return self._rng.uniform(self._low, self._high, size=(m, self.num_features))

    def noisy(self, X_clean: np.ndarray) -> np.ndarray:
        """What the sensors report for ``X_clean``: Gaussian measurement noise added."""
        X_clean = np.asarray(X_clean, dtype=np.float64)
        return X_clean + self._rng.normal(0.0, 1.0, size=X_clean.shape) * self._noise

    def sample(self, m: int, bernoulli: Optional[bool] = None) -> Tuple[np.ndarray, np.ndarray]:
        """(X_noisy (m, N), y (m,)): readings and their labels.

        y is the ground-truth probability of the clean readings, or a Bernoulli draw of it with
        ``bernoulli=True`` (default: the value given to the constructor).
        """
        X = self.clean(m)
        p = self.probability(X)
        hard = self.bernoulli if bernoulli is None else bool(bernoulli)
        y = (self._rng.uniform(size=p.shape) < p).astype(np.float64) if hard else p
        return self.noisy(X), y

    def labeled_rows(self, m: int, bernoulli: Optional[bool] = None) -> np.ndarray:
        """m samples as rows of N features followed by the label, shape (m, N + 1)."""
        X, y = self.sample(m, bernoulli)
        return np.hstack([X, y[:, None]])

    @staticmethod
    def _count(m: int) -> int:
        if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 0:
            raise ValueError(f'the number of samples must be an integer >= 0, got {m!r}')
        return int(m)


def accuracy(y_pred: np.ndarray, y_true: np.ndarray, threshold: float = 0.5) -> float:
    """Fraction of samples whose predicted class (y >= threshold) is the true one."""
    y_pred = np.asarray(y_pred, dtype=np.float64)
    y_true = np.asarray(y_true, dtype=np.float64)
    if y_pred.shape != y_true.shape or y_pred.size == 0:
        raise ValueError(f'need two equal, non-empty shapes, got {y_pred.shape} and '
                         f'{y_true.shape}')
    return float(np.mean((y_pred >= threshold) == (y_true >= threshold)))


def mean_abs_error(y_pred: np.ndarray, y_true: np.ndarray) -> float:
    y_pred = np.asarray(y_pred, dtype=np.float64)
    y_true = np.asarray(y_true, dtype=np.float64)
    if y_pred.shape != y_true.shape or y_pred.size == 0:
        raise ValueError(f'need two equal, non-empty shapes, got {y_pred.shape} and '
                         f'{y_true.shape}')
    return float(np.mean(np.abs(y_pred - y_true)))


def weight_error(weights: np.ndarray, bias: float, scenario: Scenario) -> float:
    """Relative distance of a raw-feature model from the ground truth, measured where it matters.

    Raw weights are in different units, so their plain distance is dominated by the feature with
    the smallest scale. This compares the standardized weights ``w * std(x)`` (the logit change per
    standard deviation of each sensor) and the logit at the centre of the ranges:
    ``|| [dw * std, db_centre] || / || [w_true * std, ...] ||``; 0 is the ground truth itself.
    """
    w = np.asarray(weights, dtype=np.float64)
    lo = np.array([s.low for s in SENSORS])
    hi = np.array([s.high for s in SENSORS])
    std = (hi - lo) / np.sqrt(12.0)  # of a uniform distribution
    centre = (lo + hi) / 2.0
    w_true = scenario.true_weights
    diff = np.append((w - w_true) * std, (w - w_true) @ centre + (bias - scenario.true_bias))
    ref = np.append(w_true * std, w_true @ centre + scenario.true_bias)
    return float(np.linalg.norm(diff) / np.linalg.norm(ref))
