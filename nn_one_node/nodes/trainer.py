"""The trainer node: collects labeled samples, retrains the model online, deploys it.

Wiring only: the learning is ``learning.trainer_core.TrainerCore`` (no ROS in it), the parameter
table ``learning.config.trainer_params``. This module declares, converts and delegates:

* subscribes ``labeled_samples`` (std_msgs/Float64MultiArray): rows of N features then the label;
  one row, or a batch with the layout [{'samples', M, M*(N+1)}, {'features+label', N+1, N+1}].
  Reliable, depth 1000. Bad rows are refused and counted; the rest of the message is kept.
* every ``train_period`` seconds of ROS time (and between ticks when the rows make it due) an
  update; a candidate that passes the gate becomes the model in force: its own ``weights``/
  ``bias`` parameters, the weights file, and the predictor's parameters (set atomically,
  asynchronously, retried until the predictor confirms).
* publishes ``~/loss`` (std_msgs/Float64) after each update; ``~/metrics/accuracy``,
  ``~/metrics/mse``, ``~/metrics/log_loss`` (std_msgs/Float64, every ``metrics_period``);
  ``~/changes`` (std_msgs/UInt32, transient local: changes detected); ``/diagnostics``.
* services ``~/train_now``, ``~/reset``, ``~/save`` (std_srvs/Trigger), ``~/enable_training``
  (std_srvs/SetBool).
* fleet mode (``fleet``: robot namespaces or patterns): each robot's ``<ns>/labeled_samples``
  instead of its own, every model to each robot's predictor, one ``/diagnostics`` status a robot
  (``ros.fleet.RosFleet`` finds and wires the robots; ``learning.fleet.Fleet`` keeps them).

Parameters are validated in the set-parameters callback (no side effect) and applied after it:
in a post-set callback where rclpy has one (Jazzy), else from the executor (Humble).
"""

from __future__ import annotations

from nn_one_node import blas_threads  # noqa: F401 - first: one BLAS thread, before numpy loads

import math
import sys
from functools import partial
from typing import Any, Dict, List, Optional

from rcl_interfaces.msg import SetParametersResult
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile
from rclpy.qos_overriding_options import QoSOverridingOptions
from std_msgs.msg import Float64, Float64MultiArray, UInt32
from std_srvs.srv import SetBool, Trigger

from nn_one_node.learning import config
from nn_one_node.learning.fleet import Fleet
from nn_one_node.learning.health import claimed_width
from nn_one_node.learning.trainer_core import STOPPED_DURING_UPDATE, THROTTLE_SEC, TrainerCore
from nn_one_node.parameters import ParamSpec
from nn_one_node.ros import diagnostics
from nn_one_node.ros.codecs import MessageError, matrix_from_msg
from nn_one_node.ros.fleet import RosFleet
from nn_one_node.ros.lifecycle import SteppedNode
from nn_one_node.ros.params import checked_values, current_values, declare_sized, validate
from nn_one_node.ros.predictor_link import RosPredictorLink
from nn_one_node.ros.runtime import RefusalLog, executor_param, lower_priority, run

METRICS = ('accuracy', 'mse', 'log_loss')


def trainer_params(num_features: int) -> List[ParamSpec]:
    """The node's table: the trainer's (learning.config) and the process's executor."""
    return config.trainer_params(num_features) + [executor_param()]


class TrainerNode(SteppedNode):
    """Online trainer. Plain, or managed with ``--managed`` (ros.lifecycle): configure checks
    the parameters, resumes the weights file and creates the topics and services; activate
    starts the training and metrics timers and the deployment; while inactive, samples are
    ignored and counted; cleanup releases the buffer and the topics."""

    default_node_name = 'trainer'

    def declare_step(self) -> None:
        self._specs, _ = declare_sized(self, trainer_params, check=False)
        self._values: Optional[Dict[str, Any]] = None  # set by configure_step
        self.core: Optional[TrainerCore] = None
        self._timer = self._metrics_timer = self._diag_timer = self._sub = self._fleet = None
        self._pubs: Dict[str, Any] = {}
        self._trainer_services: List[Any] = []
        self.add_on_set_parameters_callback(self._validate)
        if hasattr(self, 'add_post_set_parameters_callback'):  # rclpy >= Jazzy
            self.add_post_set_parameters_callback(self._apply)
            self._apply_later = None
        else:  # Humble: apply from the executor, after the callback has returned
            self._apply_later = self.create_guard_condition(self._apply)

    def configure_step(self) -> None:
        self._values = v = checked_values(self, self._specs)
        self.niceness = lower_priority(v['niceness'])
        self.num_features = n = v['num_features']
        log = self.get_logger()
        self.messages_refused = RefusalLog(log, 'labeled_samples message', THROTTLE_SEC)
        target = v['predictor_node']
        if target and not target.startswith('/'):
            target = f'{self.get_namespace().rstrip("/")}/{target}'
        fleet = Fleet.from_values(v, self.get_namespace(), log) if v['fleet'] else None
        self.core = core = TrainerCore(
            v, RosPredictorLink(self, target) if target and not fleet else None, log,
            active=lambda: self.active, running=self.context.ok,
            rows_refused=RefusalLog(log, 'labeled sample row(s)', THROTTLE_SEC),
            messages_refused=self.messages_refused, fleet=fleet)
        core.health.topic = (', '.join(f'{p}/labeled_samples' for p in fleet.patterns) if fleet
                             else self.resolve_topic_name('labeled_samples'))
        core.on_update, core.on_change = self._on_update, self._on_change
        activation = core.resume()  # the file's model, and its activation if another
        result = self._publish_model()
        if activation is not None and not result.successful:
            raise ValueError(f'weights file {core.weights_file}: activation {activation!r} '
                             f'refused: {result.reason}')
        self._pubs = {name: self.create_publisher(Float64, f'~/metrics/{name}', 10)
                      for name in METRICS}
        self._pubs['loss'] = self.create_publisher(Float64, '~/loss', 10)
        self._pubs['changes'] = self.create_publisher(
            UInt32, '~/changes', QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL))
        self._pubs['diagnostics'] = diagnostics.create_publisher(self)
        if fleet:  # the robots' labeled_samples, subscribed as they are found
            self._fleet = RosFleet(self, fleet, lambda ns: self.serving(
                partial(self._on_samples, robot=ns), 'labeled_samples'), core.sync)
        else:
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
        log.info(f'training on {core.health.topic} ({n} features + label), every '
                 f'{v["train_period"]} s, deploying to '
                 + (f'{fleet.predictor_node or "(nowhere)"} of each robot' if fleet
                    else target or '(nowhere)')
                 + (f', saving to {core.weights_file}' if core.weights_file else '')
                 + f', at niceness {self.niceness}')

    def activate_step(self) -> None:
        self._publish_changes()
        self._timer = self.create_timer(self._values['train_period'], self._on_timer)
        period = self._values['metrics_period']
        self._metrics_timer = self.create_timer(period, self.publish_metrics) if period else None
        if self.managed:
            self.core.sync()  # at once: the model may have waited for activation

    def deactivate_step(self) -> None:
        if self.core is not None:
            self.core.deployment.hold()  # an answer in flight must not deploy while inactive
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
        if self._fleet is not None:
            self._fleet.destroy()
        for pub in self._pubs.values():
            self.destroy_publisher(pub)
        for service in self._trainer_services:
            self.destroy_service(service)
        if self.core is not None and self.core.deployment.link is not None:
            self.core.deployment.link.destroy()
        self._diag_timer = self._sub = self._fleet = None
        self._pubs, self._trainer_services = {}, []
        self.core = self._values = None  # the sample buffer released

    def on_exit(self) -> None:
        """Every exit. The weights file holds the model in force: it is written at each
        deployment, so Ctrl-C and SIGTERM leave it as it is (a signal may be inside a write,
        which then removes its temporary). After the shutdown transition (no signal in play), a
        write that had failed or was cut short is made now."""
        core = self.core
        if (self.finished and self.configured and core is not None and core.weights_file
                and core.saved_version < core.deployment.version):
            core.save()

    # -------------------------------------------------------------------- what tests look at
    @property
    def buffer(self):
        return self.core.policy.buffer

    @property
    def rows_refused(self):
        return self.core.rows_refused

    # ---------------------------------------------------------------------------- parameters
    def _validate(self, params) -> SetParametersResult:
        """Judge a change; no side effect (rclpy has checked types, ranges and read-only)."""
        if self.core is None:  # unconfigured (managed): configure judges the whole set
            return SetParametersResult(successful=True)
        result, merged = validate(self._specs, self._values, params)
        reason = result.reason if not result.successful else self.core.check(merged)
        if reason:
            self.get_logger().warning(f'parameter change refused: {reason}')
            return SetParametersResult(successful=False, reason=reason)
        if self._apply_later is not None:
            self._apply_later.trigger()
        return result

    def _apply(self, _params=None) -> None:
        """React to what was set: the node's current values, by hand or its own writes."""
        if self.core is None:
            return
        old, self._values = self._values, current_values(self, self._specs)
        self.core.apply(self._values)
        period = self._values['train_period']
        if period != old['train_period'] and self._timer is not None:
            self._timer.timer_period_ns = int(period * 1e9)  # from now, not after the old one
            self._timer.reset()

    def _publish_model(self) -> SetParametersResult:
        """The trainer's own weights/bias (and activation) parameters show the model in force,
        set at once, so that ``_apply`` finds nothing to do."""
        core = self.core
        params = [Parameter('weights', value=core.weights.tolist()),
                  Parameter('bias', value=float(core.bias))]
        if self._values['activation'] != core.activation:
            params.append(Parameter('activation', value=core.activation))
        return self.set_parameters_atomically(params)

    # ------------------------------------------------------------------------------- samples
    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_samples(self, msg: Float64MultiArray, robot: Optional[str] = None) -> None:
        try:
            rows = matrix_from_msg(msg, self.num_features + 1)
        except MessageError as err:
            self.core.refuse_message(err.kind, str(err), self._now(), claimed_width(
                len(msg.data), [(d.label, d.size) for d in msg.layout.dim]), robot)
            return
        self.core.receive(rows, self._now(), robot)

    def _on_timer(self) -> None:
        # A signal during the update (up to max_update_seconds) ends this callback quietly:
        # every callback is registered through stopping.quiet_on_stop.
        self.core.tick(self._now())

    def _on_update(self, result) -> None:
        if result.deployed:
            self._publish_model()
        self._pubs['loss'].publish(Float64(data=float(self.core.last_loss)))

    def _on_change(self) -> None:
        m = self.core.policy.metrics()
        self.get_logger().info(
            f'change detected at sample {m["last_change_at"]}: the prequential error rose '
            f'(began about sample {m["last_change_onset"]}); training on the '
            f'{m["training_rows"]} sample(s) since ({m["changes"]} change(s) so far)',
            throttle_duration_sec=THROTTLE_SEC)
        self._publish_changes()

    def _publish_changes(self) -> None:
        self._pubs['changes'].publish(UInt32(data=min(self.core.policy.changes, 2**32 - 1)))

    # ------------------------------------------------------------------------------ services
    def _srv_train_now(self, _request, response):
        if not self.active:
            response.success = False
            response.message = f'{self.lifecycle_state()}: activate the trainer to train'
            return response
        # what a signal during the update answers (quiet_on_stop sends the response as it stands)
        response.message = STOPPED_DURING_UPDATE
        response.message = self.core.update(self._now())
        response.success = response.message.startswith('deployed')
        self.core.sync()
        return response

    def _srv_reset(self, _request, response):
        response.success, response.message = True, self.core.reset()
        self.get_logger().info(response.message)
        return response

    def _srv_save(self, _request, response):
        response.success, response.message = self.core.save_now()
        return response

    def _srv_enable(self, request, response):
        response.success, response.message = True, self.core.enable(bool(request.data))
        self.get_logger().info(response.message)
        return response

    # --------------------------------------------------------------------------- diagnostics
    def publish_metrics(self) -> None:
        """The windowed prequential metrics, one std_msgs/Float64 topic each (rqt_plot:
        /trainer/metrics/accuracy/data); nothing before a row has been scored."""
        m = self.core.policy.metrics()
        if m['window']:
            for name in METRICS:
                if math.isfinite(m[name]):
                    self._pubs[name].publish(Float64(data=float(m[name])))

    def publish_diagnostics(self) -> None:
        core = self.core
        if self.active:
            core.deployment.poll()  # retries and read-backs also when train_period is long
        now = self._now()
        problems = core.problems(now)
        message = '; '.join(problems) or ('training' if core.training_enabled else 'paused')
        dep = core.deployment
        if dep.linked and dep.version and not dep.in_sync and not problems:
            message += f'; {dep.state()}'  # deploying version k to ...
        if not self.active:
            message = (f'inactive: {self.ignored.get("labeled_samples", 0)} labeled_samples '
                       'messages ignored, nothing trained or deployed; ' + message)
        values = {**core.counters(now), 'messages refused': core.messages_refused.total}
        if self.managed:
            values['lifecycle state'] = self.lifecycle_state()
            values['messages ignored (inactive)'] = self.ignored.get('labeled_samples', 0)
        extra = [(f'refused: {k}', c) for k, c in sorted(core.rows_refused.by_kind.items())]
        extra += [(f'messages refused: {k}', c)
                  for k, c in sorted(core.messages_refused.by_kind.items())]
        msg = diagnostics.status_message(self, 'trainer', problems, '', values, extra,
                                         message=message)
        if self._fleet is not None:  # and one status a robot
            msg.status += self._fleet.statuses(core.policy.metrics()['accuracy'],
                                               self._values['diagnostics_period'])
        self._pubs['diagnostics'].publish(msg)


def main(args: Optional[List[str]] = None) -> None:
    sys.exit(run(TrainerNode, args))


if __name__ == '__main__':
    main()
