"""Learning from and evaluating on recorded bags, as the robot does live: the pure core of
``nn_one_bag`` (no rclpy import).

* ``params_for(document, node)``: a node's ``ros__parameters`` from a ROS params file, matched as
  ROS matches them ('/**', '/**/trainer', 'trainer', '/trainer').
* Sample sources turn a bag's messages, in time order, into labeled rows (N features, then the
  label), exactly as the live nodes would:

  - ``AssembledSource``: the live assembler's own code (``assembly.Assembler``, built from the
    params file's ``assembler`` section), its rate ticks and arrival times driven by bag time;
  - ``LabeledSource``: ``labeled_samples`` arrays recorded from the trainer's input, screened
    with the trainer's rules (``screen_rows``), refusals counted by the same kinds.

* ``Replay`` drives a source and a learner through a recording: the clock is the bag's receive
  time (or its ``/clock`` topic, as ``use_sim_time`` would), timers fire at their periods of that
  time, and a backward jump of it clears the assembler as the live node does.
* ``TrainerLearner``: the trainer's policy and parameters (its ``trainer`` section): the
  trainer node's own ``policy.LearningPolicy`` (prequential scoring, change detection, cadence,
  the gate), its clock being bag time.
* ``Scores``: accuracy, log loss, MSE, a calibration table and confusion counts, accumulated in
  O(1) memory however long the bag.

Example: a stream of labeled rows whose ground truth is the scenario's, learned as live::

    >>> import numpy as np
    >>> from nn_one_node.sim.scenario import Scenario
    >>> learner = TrainerLearner({'num_features': 5, 'train_period': 1.0}, 5)
    >>> s = Scenario(seed=3)
    >>> for second in range(30):
    ...     learner.advance(second * 1_000_000_000)
    ...     learner.add(s.labeled_rows(50), second * 1_000_000_000)
    >>> learner.deployed > 20, learner.scores.accuracy() > 0.9
    (True, True)
"""

from __future__ import annotations

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

import numpy as np

from nn_one_node.model import sigmoid
from nn_one_node.offline.params_file import ConfigError
from nn_one_node.offline.replay import NS
from nn_one_node.offline.scores import Scores, Series, _num


def _predict(X: np.ndarray, w: np.ndarray, b: float, activation: str) -> np.ndarray:
    z = X @ w + b
    return sigmoid(z) if activation == 'sigmoid' else z


def trainer_values(section: Mapping[str, Any], num_features: int) -> Dict[str, Any]:
    """The trainer's parameter values from its params-file section: its typed table's defaults,
    overridden by the file, checked by the table's own checks (ConfigError naming the entry)."""
    from nn_one_node.parameters import NUM_FEATURES, check_all
    from nn_one_node.nodes.trainer import trainer_params  # the node's table (imports rclpy)
    n = section.get('num_features', num_features)
    if n != num_features:
        raise ConfigError(f'trainer num_features is {n!r} but the samples have {num_features} '
                          'features')
    specs = [NUM_FEATURES] + trainer_params(num_features)
    values = {s.name: s.default for s in specs}
    known = {s.name: s for s in specs}
    for name, value in section.items():
        spec = known.get(name)
        if spec is None:
            continue  # QoS overrides, use_sim_time ...: not the policy's
        if isinstance(spec.default, float) and isinstance(value, int) \
                and not isinstance(value, bool):
            raise ConfigError(f'trainer {name} must be a double (write {value}.0, as ROS '
                              f'requires), got {value!r}')
        if type(value) is not type(spec.default) and not (
                isinstance(spec.default, list) and isinstance(value, list)):
            raise ConfigError(f'trainer {name} must be of type {type(spec.default).__name__}, '
                              f'got {value!r}')
        lo_hi = spec.int_range or spec.float_range
        if lo_hi is not None and not (lo_hi[0] <= value <= lo_hi[1]):
            raise ConfigError(f'trainer {name} must lie in [{lo_hi[0]}, {lo_hi[1]}], '
                              f'got {value!r}')
        values[name] = value
    values['num_features'] = num_features
    reasons = check_all(specs, values, [s.name for s in specs])
    if reasons:
        raise ConfigError('trainer parameters: ' + '; '.join(reasons))
    return values


class TrainerLearner:
    """The trainer's learning, offline: ``policy.LearningPolicy`` (the code the trainer node
    runs) with the params file's ``trainer`` section, on bag time.

    Driven as the node drives it: ``add(rows, now_ns)`` scores the rows with the model in force,
    then keeps them (prequential), and updates when ``due_by_rows`` (fast start,
    ``update_every``, a detected change); ``advance(now_ns)`` is the node's ``train_period``
    timer, at multiples of the period of bag time (an update when ``can_update``).
    ``weights``, ``bias``, ``activation`` are the model in force; ``history`` holds the
    report's series, one point per update.
    """

    policy = "policy.LearningPolicy (the trainer node's)"

    def __init__(self, section: Mapping[str, Any], num_features: int) -> None:
        from nn_one_node.learning.policy import LearningPolicy
        from nn_one_node.learning.config import PolicyConfig, initial_weights
        self.values = v = trainer_values(section, num_features)
        self.num_features = n = num_features
        # The policy's own parameters that the trainer's table does not list (yet) are taken
        # from the section as they are; PolicyConfig checks them.
        from dataclasses import fields as _fields
        extra = {f.name: section[f.name] for f in _fields(PolicyConfig)
                 if f.name in section and f.name not in v}
        try:
            self.config = PolicyConfig.from_params({**v, **extra})
        except (TypeError, ValueError) as err:
            raise ConfigError(f'trainer parameters: {err}') from None
        weights = np.asarray(v['weights'], dtype=np.float64)
        if not np.any(weights) and v['seed'] >= 0:
            weights = initial_weights(n, v['seed'])
        self.pol = LearningPolicy(n, self.config, weights=weights, bias=float(v['bias']))
        self.activation = self.pol.activation
        self.period_ns = int(float(v['train_period']) * NS)
        self._next_ns: Optional[int] = None
        self.failed = 0
        self.last_reason = ''
        self.changes: List[int] = []  # bag times (ns) at which a change was detected
        self.scores = Scores()
        self.history = Series(['t', 'accuracy', 'log_loss', 'mse', 'samples', 'loss',
                               'deployed', 'bias'] + [f'w{i}' for i in range(n)])

    @property
    def weights(self) -> np.ndarray:
        return self.pol.weights

    @property
    def bias(self) -> float:
        return self.pol.bias

    @property
    def updates(self) -> int:
        return self.pol.updates + self.failed

    @property
    def deployed(self) -> int:
        return self.pol.deployed

    @property
    def buffer(self):
        return self.pol.buffer

    def add(self, rows: np.ndarray, now_ns: int) -> None:
        n = self.num_features
        pol = self.pol
        X, y = rows[:, :n], rows[:, n]
        self.scores.add(_predict(X, pol._model[0], pol._model[1], self.activation), y)
        changes = pol.changes
        now = now_ns * 1e-9
        pol.add(X, y, now)
        if pol.changes != changes:
            self.changes.append(now_ns)
        if pol.due_by_rows():  # as the node's _learn: the rows may make an update due
            self._update(now_ns)

    def advance(self, now_ns: int) -> None:
        if self._next_ns is None:
            self._next_ns = (now_ns // self.period_ns + 1) * self.period_ns
        while self._next_ns <= now_ns:
            t = self._next_ns
            if self.pol.can_update:  # as the node's train_period timer
                self._update(t)
            self._next_ns = t + self.period_ns

    def jumped_back(self, now_ns: int) -> None:
        """The clock went back: the timer restarts one period after the new time (rcl)."""
        self._next_ns = now_ns + self.period_ns

    def _update(self, t_ns: int) -> None:
        try:
            result = self.pol.update(t_ns * 1e-9)
        except ValueError as err:  # as the node: counted, the model in force stays
            self.failed += 1
            self.last_reason = f'update failed: {err}'
            return
        self.last_reason = result.reason
        m = self.pol.metrics()
        self.history.add(t_ns / NS, _num(m['accuracy']), _num(m['log_loss']), _num(m['mse']),
                         m['samples'], _num(result.loss), bool(result.deployed), self.bias,
                         *self.weights.tolist())

    def summary(self) -> Dict[str, Any]:
        m = self.pol.metrics()
        return {'policy': self.policy, 'updates': self.updates, 'updates_deployed': self.deployed,
                'updates_refused': self.pol.refused + self.failed,
                'last_update': self.last_reason, 'samples_held': self.buffer.count,
                'changes_detected': len(self.changes),
                'change_times': [t / NS for t in self.changes],
                'windowed': {k: (_num(v) if isinstance(v, float) else v)
                             for k, v in m.items()}}


