"""The trainer node: collects labeled samples and retrains the model online, then deploys it.

* subscribes ``labeled_samples`` (std_msgs/Float64MultiArray): rows of N features then the label;
  one row, or a batch with the layout [{'samples', M, M*(N+1)}, {'features+label', N+1, N+1}].
  Reliable, depth 1000. Bad rows (NaN/inf, a value beyond +-1e100, a label outside
  [0, 1] for the sigmoid model) are refused and counted; the rest of the message is kept.
* hands the rows to the learning policy (``policy.LearningPolicy``: no ROS in it), which scores
  each row with the model in force before keeping it (prequential metrics), watches that error
  for a change (Page-Hinkley), keeps the newest ``buffer_size`` rows in a preallocated ring and
  trains on the newest ``train_window`` of them (fewer after a detected change).
* every ``train_period`` seconds of ROS time, with at least ``min_samples`` held, and between
  ticks when the policy says the rows make it due (fast start, ``update_every``, a change), runs
  up to ``iterations_per_update`` full-batch gradient-descent steps (training.train_update) and,
  when the policy's gate passes, makes the result the model in force: its own ``weights``/
  ``bias`` parameters, the weights file, and the predictor's parameters (set atomically,
  asynchronously, retried until the predictor confirms: ``deployment.Deployment``).
* publishes ``~/loss`` (std_msgs/Float64) after each update; the prequential metrics
  ``~/metrics/accuracy``, ``~/metrics/mse``, ``~/metrics/log_loss`` (std_msgs/Float64, every
  ``metrics_period``); ``~/changes`` (std_msgs/UInt32, transient local: the count of changes
  detected, at start and at each change); and a status on ``/diagnostics``.
* services ``~/train_now``, ``~/reset``, ``~/save`` (std_srvs/Trigger), ``~/enable_training``
  (std_srvs/SetBool). ``~/reset`` clears the buffer and makes the next update start from the
  initial weights; the model in force (served, shown by the parameters, saved) stays until an
  update deploys.
"""

from __future__ import annotations

from nn_one_node import blas_threads  # noqa: F401 - first: one BLAS thread, set before numpy loads

import math
import os
import sys
import time
from typing import Any, Dict, List, Optional

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import SetParametersResult
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile
from rclpy.qos_overriding_options import QoSOverridingOptions
from std_msgs.msg import Float64, Float64MultiArray, UInt32
from std_srvs.srv import SetBool, Trigger

from nn_one_node.ros.codecs import MessageError, matrix_from_msg
from nn_one_node.learning.deployment import Deployment
from nn_one_node.ros.lifecycle import SteppedNode
from nn_one_node.model import ACTIVATIONS, LOSSES, NeuronModel, check_loss
from nn_one_node.parameters import (ParamSpec, finite_number, non_negative_number, off_or_at_least,
                                    one_of, positive_number, weights_vector)
from nn_one_node.ros.params import checked_values, declare_sized, validate
from nn_one_node.ros.predictor_link import RosPredictorLink
from nn_one_node.learning.policy import LearningPolicy
from nn_one_node.learning.config import PolicyConfig
from nn_one_node.ros.runtime import RefusalLog, executor_param, lower_priority, run
from nn_one_node.learning.screening import screen_rows
from nn_one_node.learning.weights_file import (WeightsFileError, WeightsFileUnreadable,
                                               load_weights_file, remove_stale_temporaries,
                                               save_weights_file)

MAX_BUFFER_BYTES = 1 << 30  # the sample ring may hold at most 1 GiB
WARN_THROTTLE_SEC = 5.0
STOPPED_DURING_UPDATE = 'stopped during the update: not deployed'


def _loss_fits_activation(value: Any, values: Dict[str, Any]) -> Optional[str]:
    reason = one_of(*LOSSES)(value, values)
    if reason:
        return reason
    try:
        check_loss(value, values['activation'])
    except ValueError as err:  # 'loss ' precedes this reason: say more than 'loss' again
        return f'must fit activation {values["activation"]!r}: {err}'
    return None


def _activation_fits_loss(value: Any, values: Dict[str, Any]) -> Optional[str]:
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


def _buffer_fits(value: Any, values: Dict[str, Any]) -> Optional[str]:
    nbytes = value * (values['num_features'] + 1) * 8
    if nbytes > MAX_BUFFER_BYTES:
        return (f'would need {nbytes / 2**30:.1f} GiB for {value} samples of '
                f'{values["num_features"]} features (limit {MAX_BUFFER_BYTES / 2**30:.0f} GiB)')
    if value < values['min_samples']:
        return (f'must be at least min_samples ({values["min_samples"]}): the buffer could '
                'never hold enough samples to train')
    return None


def _min_samples_fit(value: Any, values: Dict[str, Any]) -> Optional[str]:
    # The rule of _buffer_fits seen from min_samples (only the changed names are checked): a
    # buffer smaller than min_samples never trains, and the trainer would wait without a word.
    if value > values['buffer_size']:
        return (f'must be at most buffer_size ({values["buffer_size"]}): the buffer could '
                'never hold enough samples to train')
    return None


def _relative_node_name(value: Any, _values: Dict[str, Any]) -> Optional[str]:
    # ROS names are ASCII: str.isidentifier alone lets 'prédicteur' through, which rcl then
    # refuses with an exception when the client is made.
    if value and not all(part.isascii() and part.isidentifier()
                         for part in value.strip('/').split('/')):
        return f'must be a node name (letters, digits, _), optionally with a namespace: {value!r}'
    return None



def trainer_params(num_features: int) -> List[ParamSpec]:
    """The trainer's parameter table (the weights default depends on num_features)."""
    D = PolicyConfig()  # the learning policy's defaults: one source
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
        ParamSpec('min_samples', 10, 'Samples needed before the first update.',
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
        ParamSpec('train_window', D.train_window, 'Newest samples an update trains on: older '
                  'ones are forgotten (they stay in the buffer). 0: automatic, 100 a feature '
                  'and at least 1000; capped by buffer_size. After a detected change, only the '
                  'samples since it, until there are as many.', int_range=(0, 100_000_000)),
        ParamSpec('relative_tolerance', D.relative_tolerance, 'An update also stops once a '
                  "step changes the loss by less than this fraction of the last update's loss "
                  '(stop at convergence: a converged model costs a few steps); 0: off.',
                  float_range=(0.0, 1.0), check=non_negative_number),
        ParamSpec('l2', D.l2, 'L2 regularisation (weight decay) of the standardized weights, '
                  'not the bias: each step also shrinks them by learning_rate * l2 (the '
                  'objective is the loss + l2 |w_s|^2 for mse, + l2 |w_s|^2 / 2 for bce).',
                  float_range=(0.0, 1.0e6), check=non_negative_number),
        ParamSpec('update_every', D.update_every, 'Also update once this many samples have '
                  'arrived since the last update, between train_period ticks; 0: off.',
                  int_range=(0, 100_000_000)),
        ParamSpec('fast_start', D.fast_start, 'Fast start: while the training set is younger '
                  'than this many samples (after the start, ~/reset or a detected change), '
                  'also update each time it has doubled (at min_samples, 2x, 4x ...), between '
                  'train_period ticks; 0: off.', int_range=(0, 100_000_000)),
        ParamSpec('change_threshold', D.change_threshold, 'Change detection (Page-Hinkley on '
                  'the prequential error: 0/1 for sigmoid; for linear the squared error over '
                  "the labels' variance, at most 1): the evidence needed to flag a change; "
                  'larger is slower and rarer. 0: off.',
                  float_range=(0.0, 1.0e6), check=non_negative_number),
        ParamSpec('change_delta', D.change_delta, 'Change detection: a rise of the mean error '
                  'smaller than this is not a change (it also sets how rarely noise is '
                  'flagged).', float_range=(0.0, 1.0e6), check=non_negative_number),
        ParamSpec('gate_z', D.gate_z, 'Deployment gate: a candidate is refused if its loss '
                  'on the samples held out of its training (those since the last update) is '
                  'worse than the model it started from by more than gate_z standard errors '
                  '(0: worse at all).', float_range=(0.0, 100.0), check=non_negative_number),
        ParamSpec('metrics_window', D.metrics_window, 'Newest samples the prequential '
                  'metrics are taken over (a change restarts them).',
                  int_range=(1, 1_000_000)),
        ParamSpec('predictor_node', 'predictor', 'Node to deploy to (its set_parameters_'
                  "atomically service), in the trainer's namespace unless absolute; empty: "
                  'deploy nowhere. Read at start.', read_only=True, check=_relative_node_name),
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
        executor_param(),
    ]


class TrainerNode(SteppedNode):
    """Online trainer: buffer, gradient descent, deployment gate, persistence, deployment.

    Plain, or managed with ``--managed`` (nn_one_node.ros.lifecycle): declare_step declares the
    parameters; configure_step checks them, loads the weights file, builds the policy (buffer)
    and creates the topics and services; activate_step starts the training and metrics timers
    and the deployment; while inactive, samples are ignored and counted, nothing is trained,
    deployed or published but /diagnostics; cleanup_step releases the buffer and the topics.
    """

    default_node_name = 'trainer'

    def declare_step(self) -> None:
        self._specs, _ = declare_sized(self, trainer_params, check=False)
        self._values: Optional[Dict[str, Any]] = None  # set by configure_step
        self._timer = self._metrics_timer = self._diag_timer = None
        self._sub = self._diag_pub = self._loss_pub = self._changes_pub = None
        self._metric_pubs: Dict[str, Any] = {}
        self._trainer_services: List[Any] = []
        self.deployment = None
        self.policy = self.buffer = None
        self.add_on_set_parameters_callback(self._on_set_parameters)

    def configure_step(self) -> None:
        self._values = v = checked_values(self, self._specs)
        self.niceness = lower_priority(v['niceness'])
        n = self.num_features = v['num_features']
        self.training_enabled = True
        # counters
        self.rows_refused = RefusalLog(self.get_logger(), 'labeled sample row(s)',
                                       WARN_THROTTLE_SEC)
        self.messages_refused = RefusalLog(self.get_logger(), 'labeled_samples message',
                                           WARN_THROTTLE_SEC)
        self.updates = 0
        self.deployments = 0
        self.updates_refused = 0
        self.last_loss = math.nan
        self.last_update_reason = ''
        self.file_writes = 0
        self.file_error = ''

        weights = np.asarray(v['weights'], dtype=np.float64)
        if not np.any(weights) and v['seed'] >= 0:
            weights = NeuronModel.random_weights(n, v['seed'])
        # The learning: what is kept and trained on, when, the gate, the metrics. The model in
        # force is the policy's; ~/reset sets where the next update starts (policy.reset).
        self.policy = LearningPolicy(n, PolicyConfig.from_params(v), weights, float(v['bias']))
        self.buffer = self.policy.buffer

        # deployment to the predictor (deployment.Deployment: versions, retries, read-back)
        self._saved_version = 0  # the version in the weights file (0: none written or needed)
        target = v['predictor_node']
        if target and not target.startswith('/'):
            target = f'{self.get_namespace().rstrip("/")}/{target}'
        self._predictor_name = target
        self.deployment = Deployment(
            RosPredictorLink(self, target) if target else None, self.get_logger(),
            deploy_timeout=v['deploy_timeout'], check_period=v['train_period'],
            throttle=WARN_THROTTLE_SEC)
        self._gated_at: Optional[float] = None  # time.monotonic() of the last update deployed

        self._weights_file = v['weights_file']
        if self._weights_file:
            self._resume_from_file()
        self._publish_own_params()

        self._loss_pub = self.create_publisher(Float64, '~/loss', 10)
        self._metric_pubs = {name: self.create_publisher(Float64, f'~/metrics/{name}', 10)
                             for name in ('accuracy', 'mse', 'log_loss')}
        self._changes_pub = self.create_publisher(
            UInt32, '~/changes', QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL))
        self._diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self._sub = self.create_subscription(
            Float64MultiArray, 'labeled_samples',
            self.serving(self._on_samples, 'labeled_samples'), QoSProfile(depth=1000),
            qos_overriding_options=QoSOverridingOptions.with_default_policies())
        self._trainer_services = [
            self.create_service(Trigger, '~/train_now', self._srv_train_now),
            self.create_service(Trigger, '~/reset', self._srv_reset),
            self.create_service(Trigger, '~/save', self._srv_save),
            self.create_service(SetBool, '~/enable_training', self._srv_enable)]
        period = v['diagnostics_period']
        self._diag_timer = self.create_timer(period, self.publish_diagnostics) if period else None
        self.get_logger().info(
            f'training on {self.resolve_topic_name("labeled_samples")} ({n} features + label), '
            f'every {v["train_period"]} s, deploying to '
            f'{self._predictor_name or "(nowhere)"}'
            + (f', saving to {self._weights_file}' if self._weights_file else '')
            + f', at niceness {self.niceness}')

    def activate_step(self) -> None:
        v = self._values
        self._changes_pub.publish(UInt32(data=min(self.policy.changes, 2**32 - 1)))
        self._timer = self.create_timer(v['train_period'], self._on_timer)
        period = v['metrics_period']
        self._metrics_timer = self.create_timer(period, self.publish_metrics) if period else None
        if self.managed:
            self._deploy_if_needed()  # at once: the model may have waited for activation

    def deactivate_step(self) -> None:
        if self.deployment is not None:
            self.deployment.hold()  # an answer in flight must not deploy while inactive
        for timer in (self._timer, self._metrics_timer):
            if timer is not None:
                self.destroy_timer(timer)
        self._timer = self._metrics_timer = None

    def cleanup_step(self) -> None:
        # Also after a configure that stopped half-way: only what exists is destroyed.
        self.deactivate_step()
        if self._diag_timer is not None:
            self.destroy_timer(self._diag_timer)
        if self._sub is not None:
            self.destroy_subscription(self._sub)
        for pub in (self._loss_pub, self._changes_pub, self._diag_pub,
                    *self._metric_pubs.values()):
            if pub is not None:
                self.destroy_publisher(pub)
        for service in self._trainer_services:
            self.destroy_service(service)
        if self.deployment is not None and self.deployment.link is not None:
            self.deployment.link.destroy()
        self._diag_timer = self._sub = None
        self._loss_pub = self._changes_pub = self._diag_pub = None
        self._metric_pubs, self._trainer_services = {}, []
        self.deployment = None
        self.policy = self.buffer = None  # the sample buffer released
        self._values = None

    def on_exit(self) -> None:
        """Every exit. The weights file holds the model in force: it is written at each
        deployment, so Ctrl-C and SIGTERM leave it as it is (a signal may be inside a write,
        which then removes its temporary). After the shutdown transition (no signal in play), a
        write that had failed or was cut short is made now."""
        if (self.finished and self.configured and self._values is not None
                and self._weights_file and self._saved_version < self.deployment.version):
            self._save()

    # ----------------------------------------------------------------------------- the model
    @property
    def weights(self) -> np.ndarray:
        return self.policy.weights

    @property
    def bias(self) -> float:
        return self.policy.bias

    @property
    def _model(self) -> tuple:
        """The model in force (the policy's), as (weights, bias)."""
        return self.policy.weights, self.policy.bias

    @_model.setter
    def _model(self, model: tuple) -> None:
        """Set from outside (by hand, from the file): in force now, and the next start."""
        self.policy.set_model(*model)

    def _publish_own_params(self) -> None:
        """Make the trainer's own weights/bias parameters show the model in force."""
        w, b = self._model
        self._setting_own = True
        try:
            self.set_parameters([Parameter('weights', value=w.tolist()),
                                 Parameter('bias', value=float(b))])
        finally:
            self._setting_own = False

    def _resume_from_file(self) -> None:
        path = self._weights_file
        stale = remove_stale_temporaries(path)
        if stale:
            self.get_logger().info(
                f'removed {len(stale)} temporary file(s) of {path} left by a writer killed '
                f'mid-write: {", ".join(sorted(stale))}')
        if not os.path.exists(path):
            self.get_logger().info(f'no weights file at {path} yet: starting fresh')
            return
        try:
            content = load_weights_file(path, num_features=self.num_features)
        except WeightsFileUnreadable as err:
            # A directory, a device, no permission: not moved aside, which would rename what
            # someone else owns. A bad start-up configuration (exit code 2).
            raise ValueError(str(err)) from None
        except WeightsFileError as err:  # read, and malformed
            stamp = f'{time.strftime("%Y%m%d-%H%M%S")}-{time.time_ns() % 10**9:09d}'
            kept = f'{path}.corrupt-{stamp}'  # unique: two in one second do not collide
            try:
                os.replace(path, kept)
                where = f'moved aside to {kept}'
            except OSError as move_err:
                where = f'could not be moved aside ({move_err})'
            self.file_error = str(err)
            self.get_logger().error(
                f'weights file {path} is unusable ({err}); it was {where}; starting fresh')
            return
        if content.activation != self._values['activation']:
            try:
                check_loss(self._values['loss'], content.activation)
            except ValueError as err:
                raise ValueError(f'weights file {path} holds a model with activation '
                                 f'{content.activation!r}, which loss {self._values["loss"]!r} '
                                 f'cannot train ({err}): start with another loss or file')
            self.get_logger().warning(
                f'weights file {path} was trained with activation {content.activation!r}; '
                f'using it (the activation parameter said {self._values["activation"]!r})')
            self._setting_own = True  # the file's model, not a change by hand
            try:
                result = self.set_parameters([Parameter('activation',
                                                        value=content.activation)])[0]
            finally:
                self._setting_own = False
            if not result.successful:  # parameter and model must not disagree
                raise ValueError(f'weights file {path}: activation {content.activation!r} '
                                 f'refused: {result.reason}')
        self._model = (np.asarray(content.weights, dtype=np.float64), float(content.bias))
        # deploy it; the file holds it
        self._saved_version = self.deployment.new_model(*self._model, self._values['activation'])
        self.get_logger().info(f'resumed the model from {path}: will deploy it')

    _setting_own = False

    # ---------------------------------------------------------------------------- parameters
    def _on_set_parameters(self, params) -> SetParametersResult:
        if self._values is None:
            # Unconfigured (managed): rclpy has checked types, ranges and read-only; configure
            # judges the whole set, so that a set that only works together can be made.
            return SetParametersResult(successful=True)
        result, merged = validate(self._specs, self._values, params)
        if result.successful:
            reason = self._labels_refused_by(merged) or PolicyConfig(**{
                k: merged[k] for k in PolicyConfig.__dataclass_fields__ if k in merged
            }).problem()
            if reason:
                result = SetParametersResult(successful=False, reason=reason)
        if not result.successful:
            self.get_logger().warning(f'parameter change refused: {result.reason}')
            return result
        names = {p.name for p in params}
        by_hand = not self._setting_own
        new_weights = by_hand and bool({'weights', 'bias'} & names)
        if new_weights:  # the new model in force, and the start of the next update
            self._model = (np.asarray(merged['weights'], dtype=np.float64),
                           float(merged['bias']))
        # Another activation changes what the model in force computes: deploy and save it too.
        changed = new_weights or (by_hand and merged['activation'] != self._values['activation'])
        if changed:
            self.deployment.new_model(*self._model, merged['activation'])
        self.policy.configure(PolicyConfig.from_params(merged))  # buffer_size resizes it
        new_period = merged['train_period'] != self._values['train_period']
        self._values = merged
        self.deployment.deploy_timeout = merged['deploy_timeout']
        self.deployment.check_period = merged['train_period']
        if new_period and self._timer is not None:  # from now, not after the old period
            self._timer.timer_period_ns = int(merged['train_period'] * 1e9)
            self._timer.reset()
        if changed:
            self._sync()  # now, not at the next tick: train_period may be hours
        return result

    def _labels_refused_by(self, merged: Dict[str, Any]) -> Optional[str]:
        """Samples taken while the model was linear may have labels that a sigmoid cannot
        reach (ingestion only refuses them for the sigmoid); the switch is refused then."""
        if (merged['activation'] != 'sigmoid' or self._values['activation'] == 'sigmoid'
                or not self.buffer.count):
            return None
        y = self.buffer.arrays()[1]
        outside = int(np.count_nonzero((y < 0.0) | (y > 1.0)))
        if not outside:
            return None
        return (f'activation sigmoid needs labels in [0, 1]: {outside} of the '
                f'{self.buffer.count} samples held (taken while linear) are outside it; '
                'call ~/reset to drop them first')

    # ------------------------------------------------------------------------------- samples
    def _on_samples(self, msg: Float64MultiArray) -> None:
        n = self.num_features
        try:
            rows = matrix_from_msg(msg, n + 1)
        except MessageError as err:
            self.messages_refused.refuse(err.kind, str(err))
            return
        kept = screen_rows(rows, n, self._values['activation'], self.rows_refused)
        if kept.shape[0]:
            self._learn(kept[:, :n], kept[:, n])

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _learn(self, X: np.ndarray, y: np.ndarray) -> None:
        """Give checked rows to the policy (scored, then kept); update if the rows make it due.

        Not while ROS time stands at zero (use_sim_time before /clock ticks): with simulated
        time, training follows the clock, by the samples too."""
        changes = self.policy.changes
        now = self._now()
        self.policy.add(X, y, now)
        if self.policy.changes != changes:
            self._on_change()
        if self.training_enabled and now > 0.0 and self.policy.due_by_rows():
            self.update()
            self._sync()

    def _on_change(self) -> None:
        m = self.policy.metrics()
        self.get_logger().info(
            f'change detected at sample {m["last_change_at"]}: the prequential error rose '
            f'(began about sample {m["last_change_onset"]}); training on the '
            f'{m["training_rows"]} sample(s) since ({m["changes"]} change(s) so far)',
            throttle_duration_sec=WARN_THROTTLE_SEC)
        self._changes_pub.publish(UInt32(data=min(m['changes'], 2**32 - 1)))

    # ------------------------------------------------------------------------------- updates
    def _on_timer(self) -> None:
        # A signal during the update (up to max_update_seconds) ends this callback quietly:
        # every callback is registered through stopping.quiet_on_stop.
        if self.training_enabled and self.policy.can_update:
            self.update()
        self._sync()

    def _sync(self) -> None:
        """Bring the weights file and the predictor up to the model in force."""
        if self._weights_file and self._saved_version < self.deployment.version:
            self._save()  # weights set by hand, or a write that failed: (re)try now
        self._deploy_if_needed()

    def update(self) -> str:
        """One update (the policy's: train, then its gate); returns the reason (deployed,
        refused, or nothing to do)."""
        if self.buffer.count == 0:
            return 'no samples held: nothing to train on'
        v = self._values
        try:
            result = self.policy.update(self._now(),
                                        deadline=time.monotonic() + v['max_update_seconds'])
        except ValueError as err:  # a buffer the chosen loss cannot use (e.g. bce labels)
            self.updates_refused += 1
            self.last_update_reason = f'update failed: {err}'
            self.get_logger().warning(self.last_update_reason,
                                      throttle_duration_sec=WARN_THROTTLE_SEC)
            return self.last_update_reason
        if not self.context.ok():
            # SIGINT/SIGTERM arrived during the update (up to max_update_seconds): publishing
            # now would raise from a shut-down context. The result goes, as any undeployed one.
            return STOPPED_DURING_UPDATE
        self.updates += 1
        self.last_update_reason = result.reason
        self.last_loss = result.loss
        if result.deployed:
            self.deployment.new_model(*self._model, v['activation'])
            self.deployments += 1
            self._gated_at = time.monotonic()
            self._publish_own_params()
            if self._weights_file:
                self._save()
            self.get_logger().debug(result.reason)
        else:
            self.updates_refused += 1
            self.get_logger().warning(f'update not deployed, the previous model stays: '
                                      f'{result.reason}', throttle_duration_sec=WARN_THROTTLE_SEC)
        self._loss_pub.publish(Float64(data=float(self.last_loss)))
        self._deploy_if_needed()
        return result.reason

    # ---------------------------------------------------------------------------- persistence
    def _save(self) -> bool:
        w, b = self._model
        version = self.deployment.version
        try:
            save_weights_file(self._weights_file, w, b, self._values['activation'])
        except (OSError, ValueError) as err:
            self.file_error = f'cannot write {self._weights_file}: {err}'
            self.get_logger().error(self.file_error, throttle_duration_sec=WARN_THROTTLE_SEC)
            return False
        self.file_writes += 1
        self.file_error = ''
        self._saved_version = version
        return True

    # ----------------------------------------------------------------------------- deployment
    def _deploy_if_needed(self) -> None:
        """Send the model in force to the predictor unless it has it; never blocks. Only while
        active (managed: an inactive trainer deploys nothing; activate resumes)."""
        if self.active:
            self.deployment.poll()

    @property
    def predictor_in_sync(self) -> bool:
        return self.deployment.in_sync

    @property
    def last_deployed_at(self) -> Optional[float]:
        """time.monotonic() of the last update deployed or the predictor's last confirmation
        (which is also that of a resumed or hand-set model)."""
        times = [t for t in (self._gated_at, self.deployment.confirmed_at) if t is not None]
        return max(times) if times else None

    # ------------------------------------------------------------------------------ services
    def _srv_train_now(self, _request, response):
        if not self.active:
            response.success = False
            response.message = f'{self.lifecycle_state()}: activate the trainer to train'
            return response
        # what a signal during the update answers (quiet_on_stop sends the response as it stands)
        response.message = STOPPED_DURING_UPDATE
        response.message = self.update()
        response.success = response.message.startswith('deployed')
        return response

    def _srv_reset(self, _request, response):
        n, seed = self.num_features, self._values['seed']
        weights = NeuronModel.random_weights(n, seed) if seed >= 0 else np.zeros(n)
        # Not the model in force: the predictor keeps serving it, so the weights parameters and
        # the weights file (which a restart would deploy) keep showing it too.
        dropped = self.policy.reset(start=(weights, 0.0))
        self.last_loss = math.nan
        response.success = True
        init = f'the random weights of seed {seed}' if seed >= 0 else 'zeros'
        response.message = (f'{dropped} samples dropped; the next update starts from {init}; '
                            'until one deploys, the model in force stays (served by the '
                            'predictor, shown by the weights parameters, in weights_file)')
        self.get_logger().info(response.message)
        return response

    def _srv_save(self, _request, response):
        if not self._weights_file:
            response.success = False
            response.message = 'weights_file is empty: persistence is off'
        else:
            response.success = self._save()
            response.message = (f'saved to {self._weights_file}' if response.success
                                else self.file_error)
        return response

    def _srv_enable(self, request, response):
        self.training_enabled = bool(request.data)
        response.success = True
        response.message = ('training enabled' if self.training_enabled else
                            'training paused (samples are still collected)')
        self.get_logger().info(response.message)
        return response

    # --------------------------------------------------------------------------- diagnostics
    def counters(self) -> Dict[str, Any]:
        since = ('never' if self.last_deployed_at is None
                 else f'{time.monotonic() - self.last_deployed_at:.1f}')
        return {
            'samples held': self.buffer.count,
            'samples received': self.buffer.total_added + self.rows_refused.total,
            'samples refused': self.rows_refused.total,
            'messages refused': self.messages_refused.total,
            'updates': self.updates,
            'updates deployed': self.deployments,
            'updates refused': self.updates_refused,
            'last loss': self.last_loss,
            'seconds since last deployment': since,
            'training enabled': self.training_enabled,
            'predictor in sync': self.predictor_in_sync,
            'weights file writes': self.file_writes,
            'last update': self.last_update_reason,
            **self.deployment.counters(),
            **self.policy_counters(),
            **({'lifecycle state': self.lifecycle_state(),
                'messages ignored (inactive)': self.ignored.get('labeled_samples', 0)}
               if self.managed else {}),
        }

    def policy_counters(self) -> Dict[str, Any]:
        m = self.policy.metrics()
        return {
            'prequential accuracy': m['accuracy'],
            'prequential mse': m['mse'],
            'prequential log loss': m['log_loss'],
            'prequential window': m['window'],
            'changes detected': m['changes'],
            'last change at sample': ('never' if m['last_change_at'] is None
                                      else m['last_change_at']),
            'training samples': m['training_rows'],
        }

    def publish_metrics(self) -> None:
        """The windowed prequential metrics, one std_msgs/Float64 topic each (rqt_plot:
        /trainer/metrics/accuracy/data); nothing before a row has been scored."""
        m = self.policy.metrics()
        if not m['window']:
            return
        for name, pub in self._metric_pubs.items():
            if math.isfinite(m[name]):
                pub.publish(Float64(data=float(m[name])))

    def publish_diagnostics(self) -> None:
        self._deploy_if_needed()
        status = DiagnosticStatus(
            name=f'{self.get_fully_qualified_name()}: trainer', hardware_id='nn_one_node')
        problems = []
        if self.file_error:
            problems.append(self.file_error)
        # only what a user must act on: a deployment in flight within deploy_timeout is not
        problem = self.deployment.problem()
        if problem:
            problems.append(problem)
        status.level = DiagnosticStatus.WARN if problems else DiagnosticStatus.OK
        status.message = '; '.join(problems) or (
            'training' if self.training_enabled else 'paused')
        deploying = (self.deployment.linked and self.deployment.version
                     and not self.predictor_in_sync)
        if deploying and not problems:
            status.message += f'; {self.deployment.state()}'  # deploying version k to ...
        if not self.active:
            status.message = (f'inactive: {self.ignored.get("labeled_samples", 0)} '
                              'labeled_samples messages ignored, nothing trained or deployed; '
                              + status.message)
        status.values = [KeyValue(key=k, value=str(v)) for k, v in self.counters().items()]
        status.values += [KeyValue(key=f'refused: {k}', value=str(c))
                          for k, c in sorted(self.rows_refused.by_kind.items())]
        status.values += [KeyValue(key=f'messages refused: {k}', value=str(c))
                          for k, c in sorted(self.messages_refused.by_kind.items())]
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(msg)


def main(args: Optional[List[str]] = None) -> None:
    sys.exit(run(TrainerNode, args))


if __name__ == '__main__':
    main()
