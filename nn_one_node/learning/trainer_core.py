"""The trainer without ROS: labeled rows in, deployed models out.

``TrainerCore`` is what the trainer node runs and what ``nn_one_bag train`` runs offline, so the
two cannot drift apart. It holds the learning policy (``policy.LearningPolicy``: prequential
scoring, change detection, cadence, descent, gate), the deployment to the predictor
(``deployment.Deployment`` over a ``PredictorLink``, or none), the weights file, and the
counters the diagnostics show. The node converts messages, parameters and services to calls:

* ``receive(rows, now)``: a labeled_samples message's rows (N features, then the label),
  screened with the trainer's rules; ``learn(X, y, now)`` for rows screened already. Rows that
  make an update due (fast start, ``update_every``, a change) update at once.
* ``tick(now)``: the ``train_period`` timer: an update once ``min_samples`` rows are held.
* ``sync()``: the weights file and the predictor brought up to the model in force.
* ``check(values)`` judges a parameter change (no side effect); ``apply(values)`` reacts to
  one that was made (a model set by hand, another activation, new settings).
* ``problems(now)`` and ``counters(now)``: what ``/diagnostics`` WARN and show; the learning's
  WARNs (a silent label topic, every row refused, worse than the constant guess, no update
  deployed) are ``health.TrainerHealth``'s.

>>> import numpy as np
>>> from nn_one_node.learning.config import DEFAULTS
>>> core = TrainerCore({**DEFAULTS, 'num_features': 2, 'weights': [0.0, 0.0]})
>>> rng = np.random.default_rng(1)
>>> for second in range(1, 31):
...     X = rng.normal(size=(20, 2))
...     y = (X @ np.array([2.0, -3.0]) > 0).astype(float)
...     core.receive(np.column_stack([X, y]), now=float(second))
...     core.tick(now=float(second))
>>> core.policy.deployed > 5, bool(core.weights[0] > 0 > core.weights[1])
(True, True)
>>> core.receive(np.array([[1.0, np.nan, 1.0]]), now=31.0)   # refused and counted, not learned
>>> core.rows_refused.by_kind
{'non-finite': 1}
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np

from nn_one_node.learning.config import PolicyConfig, initial_weights
from nn_one_node.learning.deployment import Deployment
from nn_one_node.learning.link import PredictorLink
from nn_one_node.learning.drift import clock_advice
from nn_one_node.learning.fleet import Fleet
from nn_one_node.learning.health import UNDEPLOYED_RUN, TrainerHealth
from nn_one_node.learning.policy import LearningPolicy, PolicyUpdate
from nn_one_node.learning.screening import Refusals, screen_rows
from nn_one_node.learning.weights_file import (WeightsFileUnreadable, resume_weights_file,
                                              save_weights_file)
from nn_one_node.model import check_loss

STOPPED_DURING_UPDATE = 'stopped during the update: not deployed'
THROTTLE_SEC = 5.0


class _Quiet:
    def debug(self, *_a: Any, **_k: Any) -> None: ...
    info = warning = error = debug


class TrainerCore:
    """Rows in, deployed models out. ``values``: the trainer's parameter values (checked).

    ``link``: the predictor to deploy to (None: nowhere); ``logger``: an rclpy-style logger;
    ``active()``: whether deploying is allowed now (a managed trainer's state); ``running()``:
    False once a stop arrived during an update (its result is then dropped, as any undeployed
    one). ``on_update(result)`` and ``on_change()`` are called after an update and a detected
    change (the node publishes ``~/loss``, its own parameters, ``~/changes``). ``fleet``: a
    ``fleet.Fleet`` deployed to instead of ``link`` (fleet mode); rows then come with the
    namespace of the robot they are from (``robot``), which the fleet counts and scores.
    """

    def __init__(self, values: Mapping[str, Any], link: Optional[PredictorLink] = None,
                 logger: Any = None, active: Callable[[], bool] = lambda: True,
                 running: Callable[[], bool] = lambda: True,
                 rows_refused: Optional[Refusals] = None,
                 messages_refused: Optional[Refusals] = None,
                 fleet: Optional[Fleet] = None) -> None:
        self.values = dict(values)
        self.num_features = n = int(values['num_features'])
        self.log = logger if logger is not None else _Quiet()
        self.active = active
        self.running = running
        self.rows_refused = rows_refused if rows_refused is not None else Refusals()
        self.messages_refused = messages_refused if messages_refused is not None else Refusals()
        self.health = TrainerHealth(n)
        self.on_update: Callable[[PolicyUpdate], None] = lambda result: None
        self.on_change: Callable[[], None] = lambda: None
        weights = np.asarray(values['weights'], dtype=np.float64)
        given = bool(np.any(weights) or values['bias'])
        if not given and values['seed'] >= 0:
            weights = initial_weights(n, values['seed'])
        self.policy = LearningPolicy(n, PolicyConfig.from_params(values), weights,
                                     float(values['bias']))
        if given:  # a model set by hand (a params file): it has standing
            self.policy.set_model(weights, float(values['bias']))
        self.fleet = fleet
        self.deployment: Union[Deployment, Fleet] = fleet if fleet is not None else Deployment(
            link, self.log, deploy_timeout=values['deploy_timeout'],
            check_period=values['train_period'], throttle=THROTTLE_SEC)
        self.training_enabled = True
        self.failed = 0  # updates that raised (a buffer the loss cannot use)
        self.last_loss = math.nan
        self.last_update_reason = ''
        self.weights_file = values.get('weights_file', '')
        self.file_writes = 0
        self.file_error = ''
        self.saved_version = 0  # the version in the weights file (0: none written or needed)
        self._gated_at: Optional[float] = None  # time.monotonic() of the last update deployed

    # ------------------------------------------------------------------------------ the model
    @property
    def weights(self) -> np.ndarray:
        return self.policy.weights

    @property
    def bias(self) -> float:
        return self.policy.bias

    @property
    def activation(self) -> str:
        return self.policy.activation

    def resume(self) -> Optional[str]:
        """Resume the model in force from the weights file; returns the file's activation when
        it differs from the parameter's (the node then sets that parameter). ValueError: a
        start-up mistake (a file that cannot be read, a model the loss cannot train)."""
        if not self.weights_file:
            return None
        try:
            found = resume_weights_file(self.weights_file, self.num_features)
        except WeightsFileUnreadable as err:
            raise ValueError(str(err)) from None
        for level, text in found.log:
            getattr(self.log, level)(text)
        self.file_error = found.error
        content = found.content
        if content is None:
            return None
        other = None
        if content.activation != self.activation:
            try:
                check_loss(self.values['loss'], content.activation)
            except ValueError as err:
                raise ValueError(f'weights file {self.weights_file} holds a model with activation '
                                 f'{content.activation!r}, which loss {self.values["loss"]!r} '
                                 f'cannot train ({err}): start with another loss or file')
            self.log.warning(f'weights file {self.weights_file} was trained with activation '
                             f'{content.activation!r}; using it (the activation parameter said '
                             f'{self.activation!r})')
            other = content.activation
            self.values['activation'] = other
            self.policy.configure(PolicyConfig.from_params(self.values))
        self.policy.set_model(content.weights, content.bias)
        self.saved_version = self.deployment.new_model(self.weights, self.bias, self.activation)
        self.log.info(f'resumed the model from {self.weights_file}: will deploy it')
        return other

    # ------------------------------------------------------------------------------ parameters
    def check(self, values: Mapping[str, Any]) -> Optional[str]:
        """Why a parameter change to ``values`` cannot be made, or None. No side effect."""
        if values['activation'] == 'sigmoid' and self.activation != 'sigmoid' \
                and self.policy.buffer.count:
            # Samples taken while linear may have labels a sigmoid cannot reach (ingestion only
            # refuses them for the sigmoid): the switch is refused then.
            y = self.policy.buffer.arrays()[1]
            outside = int(np.count_nonzero((y < 0.0) | (y > 1.0)))
            if outside:
                return (f'activation sigmoid needs labels in [0, 1]: {outside} of the '
                        f'{self.policy.buffer.count} samples held (taken while linear) are '
                        'outside it; call ~/reset to drop them first')
        return PolicyConfig.problem_of(values)

    def apply(self, values: Mapping[str, Any]) -> None:
        """React to parameters that were set (by hand, or by the node itself): a model that is
        not the one in force becomes it, another activation is deployed, the settings apply
        from the next row or update. The node's own writes of the model in force change
        nothing, since they are the model in force."""
        w = np.asarray(values['weights'], dtype=np.float64)
        b = float(values['bias'])
        new_model = not (np.array_equal(w, self.policy.weights) and b == self.policy.bias)
        changed = new_model or values['activation'] != self.activation
        self.values = dict(values)
        self.policy.configure(PolicyConfig.from_params(values))  # buffer_size resizes it
        if new_model:
            self.policy.set_model(w, b)  # in force now, and the start of the next update
        self.deployment.deploy_timeout = values['deploy_timeout']
        self.deployment.check_period = values['train_period']
        if self.fleet is not None:
            self.fleet.configure(values)
        if changed:
            self.deployment.new_model(self.weights, self.bias, self.activation,
                                      ranges=self.policy.trained_range)
            self.sync()  # now, not at the next tick: train_period may be hours

    # ----------------------------------------------------------------------------------- rows
    def receive(self, rows: np.ndarray, now: float, robot: Optional[str] = None) -> None:
        """The rows of a labeled_samples message (M, N + 1): screened, then learned;
        ``robot``: the namespace of the fleet's robot that sent them."""
        n = self.num_features
        self.health.heard(now)
        refused = self.rows_refused.total
        kept = screen_rows(rows, n, self.activation, self.rows_refused)
        if self.rows_refused.total != refused:
            self.health.rows_refused(self.rows_refused, self.rows_refused.total - refused)
        if robot is not None and self.fleet is not None:
            self.fleet.received(robot, rows.shape[0], self.rows_refused.total - refused)
        if kept.shape[0]:
            self.health.kept()
            self.learn(kept[:, :n], kept[:, n], now, robot)

    def refuse_message(self, kind: str, reason: str, now: float,
                       width: Optional[int] = None, robot: Optional[str] = None) -> None:
        """A labeled_samples message refused whole (its layout); ``width``: the values a row
        has by it, when known (the health's words: "rows have 6 values, num_features is 4")."""
        self.messages_refused.refuse(kind, reason)
        self.health.message_refused(kind, reason, now, width)
        if robot is not None and self.fleet is not None:
            self.fleet.message_refused(robot)

    def learn(self, X: np.ndarray, y: np.ndarray, now: float,
              robot: Optional[str] = None) -> None:
        """Checked rows to the policy (scored, then kept); an update if the rows make it due.
        Not while the clock stands at zero (use_sim_time before /clock ticks): with simulated
        time, training follows the clock, by the samples too."""
        changes = self.policy.changes
        if self.health.model_rows is None and self.deployment.version:
            self.health.model_given(self.policy.buffer.total_added)  # rows scored before it
        scores = self.policy.add(X, y, now)  # by the model in force
        if robot is not None and self.fleet is not None:
            self.fleet.learned(robot, scores, y)
        if self.policy.changes != changes:
            self.on_change()
        if self.training_enabled and now > 0.0 and self.policy.due_by_rows():
            self.update(now)
            self.sync()

    def tick(self, now: float) -> None:
        """The train_period timer: an update once min_samples rows are held, then a sync."""
        if self.training_enabled and self.policy.can_update:
            self.update(now)
        self.sync()

    # -------------------------------------------------------------------------------- updates
    def update(self, now: float, deadline: Optional[float] = None) -> str:
        """One update (the policy's: train, then its gate); returns the reason (deployed,
        refused, or nothing to do). A deployed model is saved; ``sync`` sends it."""
        if self.policy.buffer.count == 0:
            return 'no samples held: nothing to train on'
        if deadline is None:
            deadline = time.monotonic() + self.values['max_update_seconds']
        try:
            result = self.policy.update(now, deadline=deadline)
        except ValueError as err:  # a buffer the chosen loss cannot use (e.g. bce labels)
            self.failed += 1
            self.last_update_reason = f'update failed: {err}'
            self.health.updated(False, self.last_update_reason)
            self.log.warning(self.last_update_reason, throttle_duration_sec=THROTTLE_SEC)
            return self.last_update_reason
        if not self.running():
            return STOPPED_DURING_UPDATE
        if result.idle:
            self.last_update_reason = result.reason
            return result.reason
        self.last_update_reason = result.reason
        self.last_loss = result.loss
        run = self.health.updated(result.deployed, result.reason)
        if result.deployed:
            self.deployment.new_model(self.weights, self.bias, self.activation,
                                      ranges=self.policy.trained_range)
            self._gated_at = time.monotonic()
            if self.weights_file:
                self.save()
            self.log.debug(result.reason)
        elif run < UNDEPLOYED_RUN:  # a refusal is the gate at work: WARN only when they persist
            self.log.info(f'update not deployed, the previous model stays: {result.reason}',
                          throttle_duration_sec=THROTTLE_SEC)
        else:
            self.log.warning(f'{run} updates in a row not deployed, the previous model stays: '
                             f'{result.reason}', throttle_duration_sec=THROTTLE_SEC)
        self.on_update(result)
        return result.reason

    def sync(self) -> None:
        """Bring the weights file and the predictor up to the model in force; never blocks.
        Deploys only while ``active()`` (an inactive managed trainer deploys nothing)."""
        if self.weights_file and self.saved_version < self.deployment.version:
            self.save()  # weights set by hand, or a write that failed: (re)try now
        if self.active():
            self.deployment.poll()

    def reset(self) -> str:
        """Forget the held rows; the next update starts from the initial weights. The model in
        force stays (served, in the parameters and the weights file) until an update deploys."""
        seed = self.values['seed']
        dropped = self.policy.reset(start=(initial_weights(self.num_features, seed), 0.0))
        self.last_loss = math.nan
        init = f'the random weights of seed {seed}' if seed >= 0 else 'zeros'
        return (f'{dropped} samples dropped; the next update starts from {init}; until one '
                'deploys, the model in force stays (served by the predictor, shown by the '
                'weights parameters, in weights_file)')

    def save_now(self) -> Tuple[bool, str]:
        """``~/save``: (saved, what happened)."""
        if not self.weights_file:
            return False, 'weights_file is empty: persistence is off'
        if self.save():
            return True, f'saved to {self.weights_file}'
        return False, self.file_error

    def enable(self, on: bool) -> str:
        """``~/enable_training``: training on or paused; what it now does."""
        self.training_enabled = on
        return 'training enabled' if on else 'training paused (samples are still collected)'

    def save(self) -> bool:
        version = self.deployment.version
        try:
            save_weights_file(self.weights_file, self.weights, self.bias, self.activation)
        except (OSError, ValueError) as err:
            self.file_error = f'cannot write {self.weights_file}: {err}'
            self.log.error(self.file_error, throttle_duration_sec=THROTTLE_SEC)
            return False
        self.file_writes += 1
        self.file_error = ''
        self.saved_version = version
        return True

    # ---------------------------------------------------------------------------- diagnostics
    @property
    def last_deployed_at(self) -> Optional[float]:
        """time.monotonic() of the last update deployed or the predictor's last confirmation
        (which is also that of a resumed or hand-set model)."""
        times = [t for t in (self._gated_at, self.deployment.confirmed_at) if t is not None]
        return max(times) if times else None

    def _window_labels(self) -> Optional[np.ndarray]:
        """The labels of the prequential metrics' window (the newest rows held, scored in that
        order); None for a linear model, or when the ring no longer holds them all."""
        k = self.policy.metrics()['window']
        if self.activation != 'sigmoid' or not k or self.policy.buffer.count < k:
            return None
        return self.policy.buffer.newest(k)[1]

    def problems(self, now: Optional[float] = None, listening: bool = True) -> List[str]:
        """What a user must act on (a deployment in flight within deploy_timeout is not); with
        ``now`` (ROS time), also the learning's WARNs (``health.TrainerHealth``); without
        ``listening`` (a bag's end), not the label topic's silence."""
        found = [p for p in (self.file_error, self.deployment.problem()) if p]
        if now is not None:
            pol = self.policy
            found += self.health.problems(now, self.active() and listening,
                                          self.values['train_period'],
                                          pol.metrics()['accuracy'], self._window_labels(),
                                          pol.buffer.total_added)
            found += [clock_advice(i, shift, pol.clock_rows) for i, shift in pol.clocks]
        return found

    def counters(self, now: Optional[float] = None) -> Dict[str, Any]:
        pol = self.policy
        m = pol.metrics()
        since = ('never' if self.last_deployed_at is None
                 else f'{time.monotonic() - self.last_deployed_at:.1f}')
        return {
            'samples held': pol.buffer.count,
            'samples received': pol.buffer.total_added + self.rows_refused.total,
            'samples refused': self.rows_refused.total,
            'updates': pol.updates,
            'updates deployed': pol.deployed,
            'updates refused': pol.refused + self.failed,
            'last loss': self.last_loss,
            'seconds since last deployment': since,
            'training enabled': self.training_enabled,
            'predictor in sync': self.deployment.in_sync,
            'weights file writes': self.file_writes,
            'last update': self.last_update_reason,
            **self.deployment.counters(),
            'prequential accuracy': m['accuracy'],
            'prequential mse': m['mse'],
            'prequential log loss': m['log_loss'],
            'prequential window': m['window'],
            'changes detected': m['changes'],
            'last change at sample': ('never' if m['last_change_at'] is None
                                      else m['last_change_at']),
            'training samples': m['training_rows'],
            'features drifting like a clock': (', '.join(str(i) for i, _ in pol.clocks)
                                               or 'none'),
            **(self.health.figures(now, self._window_labels()) if now is not None else {}),
        }
