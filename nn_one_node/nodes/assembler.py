"""The assembler node: a robot's typed topics in, feature rows and late-labeled samples out.

Topics (relative names, so namespaces and remapping apply):

* subscribes one topic per distinct input topic of ``features`` and ``label``, with the message
  class named in the entries (resolved at start). Sensor-data QoS (best effort), overridable.
* publishes ``features`` (std_msgs/Float64MultiArray): one row of N values, no layout, at
  ``rate`` Hz of ROS time, when every input is younger than its max_age. Reliable, depth 10.
* publishes ``labeled_samples`` (std_msgs/Float64MultiArray): the row of a label's moment and the
  label, N + 1 values (several at once as the 2-D batch layout the trainer reads). Reliable,
  depth 100.
* publishes ``/diagnostics`` (diagnostic_msgs/DiagnosticArray) every ``diagnostics_period``.

The logic is nn_one_node.assembly (no ROS import); this node is its wiring: the parameter table
of ``assembly.config`` declared, one subscription per topic, the rate timer on the node's clock
(``use_sim_time`` works) calling ``Assembler.step`` as ``nn_one_bag`` does, and a clock jump
callback that drops everything held when ROS time jumps back (as tf2's buffer does).
"""

from __future__ import annotations

import gc
import sys
from typing import Any, Dict, List, Optional

import numpy as np
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import JumpThreshold
from rclpy.duration import Duration
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from rclpy.qos_overriding_options import QoSOverridingOptions
from std_msgs.msg import Float64MultiArray

from nn_one_node.assembly.assembler import Assembler
from nn_one_node.assembly.config import LIVE, SPECS, AssemblerConfig, param_specs
from nn_one_node.assembly.errors import ConfigError
from nn_one_node.names import expand_topic_name
from nn_one_node.parameters import ParamSpec
from nn_one_node.ros import diagnostics
from nn_one_node.ros.codecs import FEATURES_LABEL_LABELED, matrix_to_msg, to_float64_array
from nn_one_node.ros.lifecycle import SteppedNode
from nn_one_node.ros.params import checked_values, declare, descriptor, validate
from nn_one_node.ros.runtime import RefusalLog, executor_param, run

WARN_THROTTLE_SEC = 5.0
ON_TIME_NS = 2_000_000  # a row published later than this after its slot is counted late
LABELED_DEPTH = 100


def assembler_params() -> List[ParamSpec]:
    """The assembler's parameter table: nn_one_node.assembly.config's, and the executor."""
    return param_specs() + [executor_param()]


class AssemblerNode(SteppedNode):
    """Builds feature rows and labeled samples from typed topics (nn_one_node.assembly.assembler).

    Plain, or managed with ``--managed`` (nn_one_node.ros.lifecycle): declare_step declares the
    parameters; configure_step checks them, builds the assembler (message classes, the row
    history) and creates the topics; activate_step starts the row timer. While inactive, input
    messages are ignored and counted by topic and no row or sample is published (only
    /diagnostics): the values held are kept but age, so after activation a row is published
    once every input is younger than ``max_age`` again. cleanup_step releases the assembler
    (held values, the row history, waiting labels) and the topics.
    """

    default_node_name = 'assembler'

    def declare_step(self) -> None:
        self._specs = assembler_params()
        self._declared = [s for s in self._specs if s.name != 'feature_names']  # filled later
        declare(self, self._declared, check=False)
        self._values: Optional[Dict[str, Any]] = None  # set by configure_step
        self._asm = None
        self._features_pub = self._samples_pub = self._diag_pub = None
        self._subs: List[Any] = []
        self._jump_handle = self._timer = self._diag_timer = None
        self.add_on_set_parameters_callback(self._on_set_parameters)

    def configure_step(self) -> None:
        values = checked_values(self, self._declared)
        self._refusals = RefusalLog(self.get_logger(), 'input message', WARN_THROTTLE_SEC)
        try:
            cfg = AssemblerConfig.from_params(values)
            self._asm = Assembler(cfg, on_refusal=self._refusals.refuse,
                                  on_clear=self._on_clear)
        except ConfigError as err:
            raise ValueError(str(err)) from None
        asm = self._asm
        names = asm.feature_names
        if not self.has_parameter('feature_names'):  # read-only: the entries are too
            self.declare_parameter('feature_names', names,
                                   descriptor(SPECS['feature_names']), ignore_override=True)
        values['feature_names'] = names
        self._values = values

        reliable = QoSOverridingOptions.with_default_policies()
        self._features_pub = self.create_publisher(Float64MultiArray, 'features',
                                                   QoSProfile(depth=10),
                                                   qos_overriding_options=reliable)
        self._samples_pub = None
        if asm.label_entry is not None:
            self._samples_pub = self.create_publisher(
                Float64MultiArray, 'labeled_samples', QoSProfile(depth=LABELED_DEPTH),
                qos_overriding_options=QoSOverridingOptions.with_default_policies())
        self._diag_pub = diagnostics.create_publisher(self)
        self._clock = self.get_clock()
        # each input under the name nn_one_bag reads it by (names.expand_topic_name: one rule,
        # rcl's); remap rules still apply to it. The entries' own names stay the keys.
        self._subs = [self.create_subscription(
            asm.classes[topic], expand_topic_name(topic, self.get_name(), self.get_namespace()),
            self.serving(self._callback_for(topic), topic), qos_profile_sensor_data,
            qos_overriding_options=QoSOverridingOptions.with_default_policies())
            for topic in asm.inputs]
        # tf2's rule: a jump back in ROS time (a world reset, a looping bag) drops what is held.
        self._jump_handle = self._clock.create_jump_callback(
            JumpThreshold(min_forward=None, min_backward=Duration(nanoseconds=-1),
                          on_clock_change=True), post_callback=self._on_jump)
        self._period_ns = int(round(1e9 / self._values['rate']))
        self.ticks_late = 0
        self.tick_late_max_ns = 0
        self._counted = None  # (time, messages by topic) at the last status: the input rates
        period = self._values['diagnostics_period']
        self._diag_timer = self.create_timer(period, self.publish_diagnostics) if period else None
        self._other_types: Dict[str, List[str]] = {}
        log = self.get_logger()
        inputs = ', '.join(f'{self.resolve_topic_name(t)} ({ty})' for t, ty in asm.inputs.items())
        log.info(f'assembling {asm.num_features} features at {self._values["rate"]:g} Hz from '
                 f'{inputs} onto {self.resolve_topic_name("features")}')
        log.info('feature_names: ' + ', '.join(names))
        if asm.label_entry is not None:
            threshold = cfg.threshold
            log.info(f'labels from {cfg.label!r}'
                     + (f' (> {threshold:g})' if threshold is not None else '')
                     + f', {cfg.label_delay:g} s late, onto '
                     + self.resolve_topic_name('labeled_samples'))
        else:
            log.info('no label: features only (no labeled samples)')
        # What exists now (modules, message classes, the node) lives as long as the process:
        # moved out of the collector's sight, a full collection no longer walks it, which would
        # otherwise stall a tick by milliseconds now and then.
        gc.collect()
        gc.freeze()

    def activate_step(self) -> None:
        self._asm.expect_rows()  # a gap while inactive is no fault
        self._timer = self.create_timer(1.0 / self._values['rate'], self._on_tick)

    def deactivate_step(self) -> None:
        if self._timer is not None:
            self.destroy_timer(self._timer)
        self._timer = None

    def cleanup_step(self) -> None:
        # Also after a configure that stopped half-way: only what exists is destroyed.
        self.deactivate_step()
        if self._diag_timer is not None:
            self.destroy_timer(self._diag_timer)
        if self._jump_handle is not None:
            self._jump_handle.unregister()
        for sub in self._subs:
            self.destroy_subscription(sub)
        for pub in (self._features_pub, self._samples_pub, self._diag_pub):
            if pub is not None:
                self.destroy_publisher(pub)
        self._features_pub = self._samples_pub = self._diag_pub = None
        self._subs, self._jump_handle, self._diag_timer = [], None, None
        self._asm = None  # held values, the row history, waiting labels released
        self._values = None

    # ------------------------------------------------------------------------------ parameters
    def _on_set_parameters(self, params) -> SetParametersResult:
        if self._values is None:
            # Unconfigured (managed): rclpy has checked types, ranges and read-only; configure
            # judges the whole set.
            return SetParametersResult(successful=True)
        result, merged = validate(self._specs, self._values, params)
        if not result.successful:
            self.get_logger().warning(f'parameter change refused: {result.reason}')
            return result
        for p in params:
            if p.name in LIVE:
                self._asm.cfg.set_live(p.name, p.value)
        self._values = merged
        return result

    # ------------------------------------------------------------------------------- messages
    def _callback_for(self, topic: str):
        on_message = self._asm.on_message
        clock = self._clock
        publish = self._publish_samples

        def callback(msg) -> None:
            samples = on_message(topic, msg, clock.now().nanoseconds * 1e-9)
            if samples:
                publish(samples)
        return callback

    def _publish_samples(self, samples) -> None:
        if self._samples_pub is None:
            return
        if len(samples) == 1:
            msg = Float64MultiArray(data=to_float64_array(samples[0]))
        else:
            msg = matrix_to_msg(np.vstack(samples), cols_label=FEATURES_LABEL_LABELED)
        self._samples_pub.publish(msg)

    def _on_tick(self) -> None:
        # How late this tick runs after its slot: the timer's next call is one period after the
        # slot it was called for (rcl_timer_call sets it before the callback).
        until = self._timer.time_until_next_call()
        if until is not None:
            late = self._period_ns - until
            if late > ON_TIME_NS:
                self.ticks_late += 1
            if late > self.tick_late_max_ns:
                self.tick_late_max_ns = late
        now = self._clock.now().nanoseconds * 1e-9
        row, samples = self._asm.step(now)
        if row is not None:
            self._features_pub.publish(Float64MultiArray(data=to_float64_array(row)))
        if samples:
            self._publish_samples(samples)

    # ------------------------------------------------------------------------------------ time
    def _on_jump(self, jump) -> None:
        delta = jump.delta.nanoseconds * 1e-9
        if delta < 0.0:
            self._asm.clear(f'ROS time jumped back by {-delta:.3f} s')
        elif str(jump.clock_change).endswith(('ROS_TIME_ACTIVATED', 'ROS_TIME_DEACTIVATED')):
            self._asm.clear(f'the clock changed ({jump.clock_change})')

    def _on_clear(self, reason: str) -> None:
        self.get_logger().warning(f'Detected jump back in time ({reason}): dropped every held '
                                  'value, row and waiting label')

    # ----------------------------------------------------------------------------- diagnostics
    def _check_publisher_types(self, topics) -> None:
        """Publishers of another type on an input topic never reach this node (DDS does not
        match them): say so, rather than leave the input silently stale. Asked only for silent
        inputs: a graph query costs milliseconds, which a tick must not wait for."""
        for topic in topics:
            type_name = self._asm.inputs[topic]
            name = self.resolve_topic_name(topic)
            others = sorted({i.topic_type for i in self.get_publishers_info_by_topic(name)
                             if i.topic_type != type_name})
            if others and others != self._other_types.get(topic):
                self.get_logger().warning(
                    f'{name} has publishers of type {", ".join(others)}; this assembler '
                    f'takes {type_name} there (see its features entries)')
            self._other_types[topic] = others

    def publish_diagnostics(self) -> None:
        asm = self._asm
        now = self._clock.now().nanoseconds * 1e-9
        c = asm.counters()
        kv = [('features', c['features']), ('rows published', c['rows published']),
              ('ticks', c['ticks']), ('rows stale', c['rows stale']),
              (f'ticks late (> {ON_TIME_NS / 1e6:g} ms)', self.ticks_late),
              ('tick lateness max (ms)', f'{self.tick_late_max_ns / 1e6:.3f}')]
        kv += [(f'stale: {k}', v) for k, v in sorted(c['stale'].items())]
        kv += [('labels received', c['labels received']),
               ('labels joined', c['labels joined']),
               ('labels unmatched', c['labels unmatched']),
               ('labels waiting', c['labels waiting'])]
        kv += [(f'unmatched: {k}', v) for k, v in sorted(c['unmatched'].items())]
        kv += [('readings refused', c['refused total']), ('last refusal', c['last refusal'])]
        kv += [(f'refused: {k}', v) for k, v in sorted(c['refused'].items())]
        kv += [('time jumps', c['time jumps']), ('rows held', c['rows held'])]
        gap = asm.seconds_without_rows(now)
        kv.append(('seconds since last row', 'never' if gap is None else f'{gap:.3f}'))
        silent = []
        (then, before), self._counted = self._counted or (now, {}), (now, c['messages'])
        held = {e.spec.topic for e in asm.entries}  # held to max_age (a label topic is not)
        for topic in asm.inputs:
            last = c['last arrival'][topic]
            n = c['messages'][topic]
            rate = (n - before[topic]) / (now - then) if now > then and topic in before else None
            kv.append((f'messages: {topic}', n))
            kv.append((f'rate (Hz): {topic}', '-' if rate is None else f'{rate:.2f}'))
            kv.append((f'since last message: {topic}',
                       'never' if last is None else f'{max(0.0, now - last):.3f}'))
            if topic in held:
                kv.append((f'max_age: {topic}', f'{asm.max_age_of(topic):g}'))
            if last is None or now - last > asm.max_age_of(topic):
                silent.append(topic)
        self._check_publisher_types(silent)
        for topic in asm.inputs:
            if topic not in silent:
                self._other_types.pop(topic, None)
        kv += [(f'publishers of another type: {t}', ', '.join(o))
               for t, o in sorted(self._other_types.items()) if o]
        notes = {t: f'its publishers are of type {", ".join(o)}, not {asm.inputs[t]}'
                 for t, o in self._other_types.items() if o}
        problems = asm.problems(now, notes)
        if problems and self.active:  # in the log too, where a user looks first
            self.get_logger().warning('; '.join(problems), throttle_duration_sec=WARN_THROTTLE_SEC)
        message = ok = None
        if self.managed:
            ignored = sum(self.ignored.values())
            kv += [('lifecycle state', self.lifecycle_state()),
                   ('messages ignored (inactive)', ignored)]
            kv += [(f'ignored: {t}', n) for t, n in sorted(self.ignored.items())]
            if not self.active:
                ok = True
                message = (f'inactive: {ignored} input messages ignored, nothing published '
                           '(values held go stale)')
        msg = diagnostics.status_message(self, 'assembler', problems, 'assembling', extra=kv,
                                         message=message, ok=ok, clock=self._clock)
        self._diag_pub.publish(msg)


def main(args: Optional[List[str]] = None) -> None:
    sys.exit(run(AssemblerNode, args))


if __name__ == '__main__':
    main()
