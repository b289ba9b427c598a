"""The trainer's settings, written once: its parameter table and the learning policy's config.

Each trainer parameter's default, range, description and cross-checks live here, in
``trainer_params``; the trainer node declares this table (plus the process's ``executor``), the
docs render it, and ``nn_one_bag`` reads a params file's ``trainer`` section with it.
``PolicyConfig`` is the part the learning policy uses, its defaults taken from the same table, and
``PolicyConfig.problem`` runs the table's own checks. No ROS import.

>>> PolicyConfig().learning_rate == DEFAULTS['learning_rate'] == 2.0
True
>>> PolicyConfig(loss='bce', activation='linear').problem()
"activation must fit loss 'bce': loss 'bce' (cross-entropy) needs activation 'sigmoid'"
>>> initial_weights(3, -1).tolist()
[0.0, 0.0, 0.0]
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Dict, List, Mapping, Optional

import numpy as np

from nn_one_node.learning.fleet import check_fleet
from nn_one_node.model import ACTIVATIONS, LOSSES, NeuronModel, check_loss
from nn_one_node.parameters import (ParamSpec, check_all, finite_number, non_negative_number,
                                    off_or_at_least, one_of, positive_number, weights_vector)

MAX_BUFFER_BYTES = 1 << 30  # the sample ring may hold at most 1 GiB


# ---------------------------------------------------------------------------------- cross-checks
def _loss_fits_activation(value: Any, values: Mapping[str, Any]) -> Optional[str]:
    reason = one_of(*LOSSES)(value, values)
    if reason:
        return reason
    try:
        check_loss(value, values['activation'])
    except ValueError as err:  # 'loss ' precedes this reason: say more than 'loss' again
        return f'must fit activation {values["activation"]!r}: {err}'
    return None


def _activation_fits_loss(value: Any, values: Mapping[str, Any]) -> Optional[str]:
    # The same rule as _loss_fits_activation, seen from the activation: only the changed names
    # are checked, so without this 'linear' could be set while the loss is 'bce'.
    reason = one_of(*ACTIVATIONS)(value, values)
    if reason:
        return reason
    try:
        check_loss(values['loss'], value)
    except ValueError as err:
        return f'must fit loss {values["loss"]!r}: {err}'
    return None


def _buffer_fits(value: Any, values: Mapping[str, Any]) -> Optional[str]:
    n = values.get('num_features')
    nbytes = value * (n + 1) * 8 if n is not None else 0
    if nbytes > MAX_BUFFER_BYTES:
        return (f'would need {nbytes / 2**30:.1f} GiB for {value} samples of '
                f'{n} features (limit {MAX_BUFFER_BYTES / 2**30:.0f} GiB)')
    if value < values['min_samples']:
        return (f'must be at least min_samples ({values["min_samples"]}): the buffer could '
                'never hold enough samples to train')
    return None


def _min_samples_fit(value: Any, values: Mapping[str, Any]) -> Optional[str]:
    # The rule of _buffer_fits seen from min_samples (only the changed names are checked): a
    # buffer smaller than min_samples never trains, and the trainer would wait without a word.
    if value > values['buffer_size']:
        return (f'must be at most buffer_size ({values["buffer_size"]}): the buffer could '
                'never hold enough samples to train')
    return None


def _relative_node_name(value: Any, _values: Mapping[str, Any]) -> Optional[str]:
    # ROS names are ASCII: str.isidentifier alone lets 'prédicteur' through, which rcl then
    # refuses with an exception when the client is made.
    if value and not all(part.isascii() and part.isidentifier()
                         for part in value.strip('/').split('/')):
        return f'must be a node name (letters, digits, _), optionally with a namespace: {value!r}'
    return None


# ------------------------------------------------------------------------------------ the table
def trainer_params(num_features: int) -> List[ParamSpec]:
    """The trainer's parameter table (the weights default depends on num_features)."""
    return [
        ParamSpec('learning_rate', 2.0, 'Gradient-descent step size alpha; used from the next '
                  'update. 2.0 suits the sigmoid model on normalized features; lower it for '
                  'linear or unnormalized training.',
                  constraints='> 0, finite', check=positive_number),
        ParamSpec('activation', 'sigmoid', "Model activation: 'sigmoid' or 'linear'.",
                  constraints="'sigmoid' | 'linear'", check=_activation_fits_loss),
        ParamSpec('loss', 'mse', "Training loss: 'mse' (the course's) or 'bce' (cross-entropy, "
                  'sigmoid only).', constraints="'mse' | 'bce'", check=_loss_fits_activation),
        ParamSpec('weights', [0.0] * num_features,
                  'The live model weights (raw features). Deployed values show here; setting '
                  'them seeds or overrides the model.',
                  constraints='length num_features, finite', check=weights_vector),
        ParamSpec('bias', 0.0, 'The live model bias.', constraints='finite',
                  check=finite_number),
        ParamSpec('buffer_size', 10000, 'Newest labeled samples kept (an update trains on the '
                  'newest train_window of them).',
                  constraints='>= min_samples', int_range=(1, 100_000_000),
                  check=_buffer_fits),
        ParamSpec('min_samples', 5, 'Samples needed before the first update (the prior '
                  'keeps so few from making an over-confident model).',
                  constraints='<= buffer_size', int_range=(1, 100_000_000),
                  check=_min_samples_fit),
        ParamSpec('train_period', 1.0, 'Seconds of ROS time between updates.',
                  float_range=(0.001, 86400.0), check=positive_number),
        ParamSpec('iterations_per_update', 100, 'Gradient-descent steps at most per update.',
                  int_range=(1, 1_000_000)),
        ParamSpec('max_update_seconds', 1.0, 'Time budget of one update: the descent stops '
                  'after the step that passes it (and the gate judges what it has), so that '
                  'no iterations_per_update can keep the node from its messages and services.',
                  float_range=(0.001, 3600.0), check=positive_number),
        ParamSpec('tolerance', 1.0e-9, 'An update stops early once the loss changes by less '
                  'than this between two steps.', float_range=(0.0, 1.0e6),
                  check=non_negative_number),
        ParamSpec('normalize', True, 'Train on standardized features (mean/std of the rows '
                  'trained on) and deploy the equivalent raw-feature weights.'),
        ParamSpec('train_window', 0, 'Newest samples an update trains on: older '
                  'ones are forgotten (they stay in the buffer). 0: automatic, 100 a feature '
                  'and at least 1000; capped by buffer_size. After a detected change, only the '
                  'samples since it, until there are as many.', int_range=(0, 100_000_000)),
        ParamSpec('relative_tolerance', 1.0e-3, 'An update also stops once a '
                  "step changes the loss by less than this fraction of the last update's loss "
                  '(stop at convergence: a converged model costs a few steps); 0: off.',
                  float_range=(0.0, 1.0), check=non_negative_number),
        ParamSpec('l2', 0.0, 'L2 regularisation (weight decay) of the standardized weights, '
                  'not the bias: each step also shrinks them by learning_rate * l2 (the '
                  'objective is the loss + l2 |w_s|^2 for mse, + l2 |w_s|^2 / 2 for bce).',
                  float_range=(0.0, 1.0e6), check=non_negative_number),
        ParamSpec('prior', 0.1, 'A prior that holds a young training set back: each step '
                  'also pulls the standardized weights toward zero by learning_rate * prior / '
                  'M (M: the rows the update fits), so that a few rows cannot make an '
                  'over-confident model; it fades as rows accrue. Added to l2. 0: off.',
                  float_range=(0.0, 1.0e6), check=non_negative_number),
        ParamSpec('update_every', 0, 'Also update once this many samples have '
                  'arrived since the last update, between train_period ticks; 0: off.',
                  int_range=(0, 100_000_000)),
        ParamSpec('fast_start', 1000, 'Fast start: while the training set is younger '
                  'than this many samples (after the start, ~/reset or a detected change), '
                  'also update each time it has doubled (at min_samples, 2x, 4x ...), between '
                  'train_period ticks; 0: off.', int_range=(0, 100_000_000)),
        ParamSpec('change_threshold', 30.0, 'Change detection (Page-Hinkley on '
                  'the prequential error: 0/1 for sigmoid; for linear the squared error over '
                  "the labels' variance, at most 1): the evidence needed to flag a change; "
                  'larger is slower and rarer. 0: off.',
                  float_range=(0.0, 1.0e6), check=non_negative_number),
        ParamSpec('change_delta', 0.05, 'Change detection: a rise of the mean error '
                  'smaller than this is not a change (it also sets how rarely noise is '
                  'flagged).', float_range=(0.0, 1.0e6), check=non_negative_number),
        ParamSpec('gate_z', 2.0, 'Deployment gate: a candidate is refused if its loss '
                  'on the samples held out of its training (those since the last update) is '
                  'worse than the model it started from by more than gate_z standard errors '
                  '(0: worse at all).', float_range=(0.0, 100.0), check=non_negative_number),
        ParamSpec('metrics_window', 500, 'Newest samples the prequential '
                  'metrics are taken over (a change restarts them).',
                  int_range=(1, 1_000_000)),
        ParamSpec('predictor_node', 'predictor', 'Node to deploy to (its set_parameters_'
                  "atomically service), in the trainer's namespace unless absolute; empty: "
                  'deploy nowhere. Read at start.', read_only=True, check=_relative_node_name),
        ParamSpec('fleet', [], 'Fleet mode: robot namespaces or patterns (/r1, /r*: fnmatch on '
                  "each name; relative ones under the trainer's namespace). Robots that match "
                  'are found while the trainer runs, by their labeled_samples publishers and '
                  'predictor_node (relative, under each robot); all teach the one model and '
                  "each predictor gets every model. Empty: one robot, the trainer's own "
                  'labeled_samples and predictor_node. Read at start (doc/fleet.md).',
                  read_only=True, type_name='string[]', check=check_fleet),
        ParamSpec('deploy_timeout', 2.0, 'Seconds to wait for the predictor to confirm a '
                  'deployment before retrying at the next update; /diagnostics says WARN '
                  'beyond it (and for a predictor not up for longer), not before.',
                  float_range=(0.01, 3600.0), check=positive_number),
        ParamSpec('weights_file', '', 'Params YAML the deployed model is saved to (atomically) '
                  'and resumed from at start; empty: no persistence. Read at start.',
                  read_only=True),
        ParamSpec('seed', -1, 'Initial and reset weights: -1 zeros, >= 0 small random normal '
                  'weights from this seed (at start, used when weights are all zero, as when '
                  'not given).',
                  int_range=(-1, 2**31 - 1)),
        ParamSpec('diagnostics_period', 1.0, 'Seconds between /diagnostics messages (ROS '
                  'time); 0 disables them. Read at start.', read_only=True,
                  float_range=(0.0, 3600.0), constraints='0 or >= 0.01',
                  check=off_or_at_least(0.01)),
        ParamSpec('metrics_period', 1.0, 'Seconds between ~/metrics/* messages (ROS time); '
                  '0 disables them. Read at start.', read_only=True, float_range=(0.0, 3600.0),
                  constraints='0 or >= 0.01', check=off_or_at_least(0.01)),
        ParamSpec('niceness', 19, 'Scheduling niceness the trainer runs at (0-19; higher '
                  'yields the CPU sooner): training is background work, and at 19 it disturbs '
                  'the predictor least on a shared computer. Raised at start for all its '
                  'threads, never lowered (a higher niceness it was started with stays). Read '
                  'at start.', read_only=True, int_range=(0, 19)),
    ]


_TABLE = {spec.name: spec for spec in trainer_params(1)}
DEFAULTS: Dict[str, Any] = {name: spec.default for name, spec in _TABLE.items()}

# Not a parameter (yet): rows the change detector sees before it may flag a change.
CHANGE_MIN_SAMPLES = 30


# ------------------------------------------------------------------------------ policy config
@dataclass(frozen=True)
class PolicyConfig:
    """The learning policy's settings: the trainer's parameters of the same names (and defaults,
    from ``trainer_params``)."""

    learning_rate: float = DEFAULTS['learning_rate']
    activation: str = DEFAULTS['activation']
    loss: str = DEFAULTS['loss']
    normalize: bool = DEFAULTS['normalize']
    buffer_size: int = DEFAULTS['buffer_size']
    min_samples: int = DEFAULTS['min_samples']
    train_period: float = DEFAULTS['train_period']
    iterations_per_update: int = DEFAULTS['iterations_per_update']
    max_update_seconds: float = DEFAULTS['max_update_seconds']
    tolerance: float = DEFAULTS['tolerance']
    relative_tolerance: float = DEFAULTS['relative_tolerance']
    train_window: int = DEFAULTS['train_window']
    update_every: int = DEFAULTS['update_every']
    fast_start: int = DEFAULTS['fast_start']
    l2: float = DEFAULTS['l2']
    prior: float = DEFAULTS['prior']
    change_threshold: float = DEFAULTS['change_threshold']
    change_delta: float = DEFAULTS['change_delta']
    change_min_samples: int = CHANGE_MIN_SAMPLES
    gate_z: float = DEFAULTS['gate_z']
    metrics_window: int = DEFAULTS['metrics_window']

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> 'PolicyConfig':
        """From a node's ``ros__parameters`` (unknown names ignored); ValueError names a bad
        entry."""
        reason = cls.problem_of(params)
        if reason:
            raise ValueError(reason)
        return cls(**cls._known(params))

    @classmethod
    def problem_of(cls, params: Mapping[str, Any]) -> Optional[str]:
        """``problem()`` of the settings in ``params`` (unknown names ignored)."""
        return cls(**cls._known(params)).problem()

    @classmethod
    def _known(cls, params: Mapping[str, Any]) -> Dict[str, Any]:
        names = {f.name for f in fields(cls)}
        return {k: v for k, v in params.items() if k in names}

    def problem(self) -> Optional[str]:
        """Why these settings cannot work, or None: each value's type and range, then the
        table's own checks (the same ones the node runs on a parameter change)."""
        values = asdict(self)
        for name, value in values.items():
            spec = _TABLE.get(name)
            default = spec.default if spec is not None else CHANGE_MIN_SAMPLES
            if isinstance(default, bool):
                if not isinstance(value, bool):
                    return f'{name} must be true or false, got {value!r}'
            elif isinstance(default, int):
                lo = spec.int_range[0] if spec is not None else 1
                if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
                        or value < lo:
                    return f'{name} must be an integer >= {lo}, got {value!r}'
            elif isinstance(default, float):
                if isinstance(value, bool) or not isinstance(value, (int, float)) \
                        or not math.isfinite(value):
                    return f'{name} must be a finite number, got {value!r}'
        reasons = check_all(_TABLE.values(), values, list(values))
        return reasons[0] if reasons else None


def initial_weights(num_features: int, seed: int) -> np.ndarray:
    """The trainer's start (and reset) weights: zeros for seed -1, else small random ones."""
    if seed >= 0:
        return NeuronModel.random_weights(num_features, seed)
    return np.zeros(num_features)
