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
* ``TrainerLearner``: the trainer's parameters (its ``trainer`` section) and the trainer
  node's own ``learning.trainer_core.TrainerCore`` (prequential scoring, change detection,
  cadence, the gate), its clock being bag time.
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

from dataclasses import fields
from typing import Any, Dict, List, Mapping, Optional

import numpy as np

from nn_one_node.learning import config
from nn_one_node.learning.config import PolicyConfig
from nn_one_node.learning.trainer_core import TrainerCore
from nn_one_node.model import forward
from nn_one_node.offline.params_file import ConfigError
from nn_one_node.offline.replay import NS
from nn_one_node.offline.scores import Scores, Series, _num
from nn_one_node.parameters import NUM_FEATURES, values_from_section


def trainer_values(section: Mapping[str, Any], num_features: int) -> Dict[str, Any]:
    """The trainer's parameter values from its params-file section: the trainer's table
    (``learning.config``) read as ROS reads it; ConfigError names the entry. The policy's own
    settings that the table does not list (``change_min_samples``) are taken as they are."""
    n = section.get('num_features', num_features)
    if n != num_features:
        raise ConfigError(f'trainer num_features is {n!r} but the samples have {num_features} '
                          'features')
    specs = [NUM_FEATURES] + config.trainer_params(num_features)
    try:
        values = values_from_section(specs, section, 'trainer',
                                     known={'num_features': num_features})
    except ValueError as err:
        raise ConfigError(str(err)) from None
    values.update({f.name: section[f.name] for f in fields(PolicyConfig)
                   if f.name in section and f.name not in values})
    return values


class TrainerLearner:
    """The trainer's learning, offline: ``TrainerCore`` (the code the trainer node runs) with
    the params file's ``trainer`` section, on bag time.

    Driven as the node drives it: ``add(rows, now_ns)`` gives the rows to the core (scored by
    the model in force, then kept; an update when they make one due); ``advance(now_ns)`` is the
    node's ``train_period`` timer, at multiples of the period of bag time. ``weights``,
    ``bias``, ``activation`` are the model in force; ``history`` holds the report's series,
    one point per update.
    """

    policy = "learning.trainer_core.TrainerCore (the trainer node's)"

    def __init__(self, section: Mapping[str, Any], num_features: int) -> None:
        self.values = v = trainer_values(section, num_features)
        self.num_features = n = num_features
        try:
            self.core = TrainerCore({**v, 'weights_file': '', 'predictor_node': ''})
        except (TypeError, ValueError) as err:
            raise ConfigError(f'trainer parameters: {err}') from None
        self.core.on_update = self._on_update
        self.core.on_change = self._on_change
        self.pol = self.core.policy
        self.activation = self.pol.activation
        self.period_ns = int(float(v['train_period']) * NS)
        self._next_ns: Optional[int] = None
        self._now_ns = 0
        self.changes: List[int] = []  # bag times (ns) at which a change was detected
        self.scores = Scores()
        self.history = Series(['t', 'accuracy', 'log_loss', 'mse', 'samples', 'loss',
                               'deployed', 'bias'] + [f'w{i}' for i in range(n)])

    @property
    def weights(self) -> np.ndarray:
        return self.core.weights

    @property
    def bias(self) -> float:
        return self.core.bias

    @property
    def updates(self) -> int:
        return self.pol.updates + self.core.failed

    @property
    def deployed(self) -> int:
        return self.pol.deployed

    @property
    def buffer(self):
        return self.pol.buffer

    @property
    def last_reason(self) -> str:
        return self.core.last_update_reason

    def add(self, rows: np.ndarray, now_ns: int) -> None:
        n = self.num_features
        X, y = rows[:, :n], rows[:, n]
        self.scores.add(forward(X, self.core.weights, self.core.bias, self.activation), y)
        self._now_ns = now_ns
        self.core.learn(X, y, now_ns * 1e-9)

    def advance(self, now_ns: int) -> None:
        if self._next_ns is None:
            self._next_ns = (now_ns // self.period_ns + 1) * self.period_ns
        while self._next_ns <= now_ns:
            self._now_ns = t = self._next_ns
            self.core.tick(t * 1e-9)  # as the node's train_period timer
            self._next_ns = t + self.period_ns

    def jumped_back(self, now_ns: int) -> None:
        """The clock went back: the timer restarts one period after the new time (rcl)."""
        self._next_ns = now_ns + self.period_ns

    def _on_change(self) -> None:
        self.changes.append(self._now_ns)

    def _on_update(self, result) -> None:
        m = self.pol.metrics()
        self.history.add(self._now_ns / NS, _num(m['accuracy']), _num(m['log_loss']),
                         _num(m['mse']), m['samples'], _num(result.loss),
                         bool(result.deployed), self.bias, *self.weights.tolist())

    def warnings(self) -> List[str]:
        """What the trainer node would WARN of at the bag's end about its learning (a feature
        drifting like a clock, accuracy below the constant guess ...)."""
        return self.core.problems(self._now_ns / NS, listening=False)

    def summary(self) -> Dict[str, Any]:
        m = self.pol.metrics()
        return {'policy': self.policy, 'updates': self.updates, 'updates_deployed': self.deployed,
                'warnings': self.warnings(),
                'updates_refused': self.pol.refused + self.core.failed,
                'last_update': self.last_reason, 'samples_held': self.buffer.count,
                'changes_detected': len(self.changes),
                'change_times': [t / NS for t in self.changes],
                'windowed': {k: (_num(v) if isinstance(v, float) else v)
                             for k, v in m.items()}}
