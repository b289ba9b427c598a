"""The predictor node: sensor features in, the model's sigmoid prediction out.

Topics (relative names, so namespaces and remapping apply):

* subscribes ``features`` (std_msgs/Float64MultiArray): one sample of N values, or a batch with the
  2-D layout [{'samples', M, M*N}, {'features', N, N}]. Sensor-data QoS (best effort) by default.
* publishes ``prediction`` (std_msgs/Float64MultiArray): one value per input row, in order,
  layout [{'samples', M, M}]. Reliable, depth 10.
* publishes ``/diagnostics`` (diagnostic_msgs/DiagnosticArray): message counters, once per
  ``diagnostics_period``.

The model is held as one ``NeuronModel`` reference that a parameter change replaces whole, so a
message is never predicted with half-updated weights and bias.

``predictor --managed`` runs it as a lifecycle node (nn_one_node.ros.lifecycle): the topics exist
from configure on, predictions are published only while active.
"""

from __future__ import annotations

from nn_one_node import blas_threads  # noqa: F401 - first: one BLAS thread, set before numpy loads

import ctypes
import math
import sys
from typing import Any, Dict, List, Optional

import numpy as np
from rcl_interfaces.msg import SetParametersResult
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from rclpy.qos_overriding_options import QoSOverridingOptions
from std_msgs.msg import Float64MultiArray

from nn_one_node.model import ACTIVATIONS, ROW_PYTHON_MAX_FEATURES, NeuronModel, RowPredictor
from nn_one_node.parameters import (ParamSpec, finite_number, off_or_at_least, one_of,
                                    weights_vector)
from nn_one_node.ranges import RangeWatch, trained_range_check
from nn_one_node.ros import diagnostics
from nn_one_node.ros.codecs import MatrixDecoder, MessageError, VectorEncoder
from nn_one_node.ros.lifecycle import SteppedNode
from nn_one_node.ros.params import checked_values, declare_sized, validate
from nn_one_node.ros.runtime import RefusalLog, executor_param, run

WARN_THROTTLE_SEC = 5.0
# What a deployment sets (atomically): a change of any of them is a new model.
MODEL_PARAMS = ('weights', 'bias', 'activation', 'trained_min', 'trained_max')


def predictor_params(num_features: int) -> List[ParamSpec]:
    """The predictor's parameter table (the weights default depends on num_features)."""
    return [
        ParamSpec('weights', [0.0] * num_features,
                  'Model weights w, one per feature: y_hat = activation(x . w + bias).',
                  constraints='length num_features, finite', check=weights_vector),
        ParamSpec('bias', 0.0, 'Model bias b.', constraints='finite', check=finite_number),
        ParamSpec('activation', 'sigmoid',
                  "Output activation: 'sigmoid' (the course's model) or 'linear' (identity).",
                  constraints="'sigmoid' | 'linear'", check=one_of(*ACTIVATIONS)),
        ParamSpec('diagnostics_period', 1.0,
                  'Seconds between /diagnostics messages (ROS time); 0 disables them. '
                  'Read at start.',
                  read_only=True, float_range=(0.0, 3600.0), constraints='0 or >= 0.01',
                  check=off_or_at_least(0.01)),
        ParamSpec('trained_min', [-math.inf] * num_features,
                  'Per feature, the smallest value in the rows the model in force was trained '
                  'on: the trainer sets it with each model (-inf: not known). Rows served '
                  'outside [trained_min, trained_max] are counted by feature in /diagnostics.',
                  constraints='length num_features, no NaN, <= trained_max',
                  check=trained_range_check),
        ParamSpec('trained_max', [math.inf] * num_features,
                  'Per feature, the largest value in the rows the model in force was trained '
                  'on (inf: not known); see trained_min.',
                  constraints='length num_features, no NaN, >= trained_min',
                  check=trained_range_check),
        executor_param(),
    ]


class PredictorNode(SteppedNode):
    """Serves y_hat = sigmoid(X . w^T + b) for every features message.

    Plain, or managed with ``--managed`` (nn_one_node.ros.lifecycle): declare_step declares the
    parameters; configure_step checks them, builds the model and creates the topics; while
    inactive, features are ignored and counted and /diagnostics says so; cleanup_step releases
    the model, the codecs and the topics (the parameters keep their values).
    """

    default_node_name = 'predictor'

    def declare_step(self) -> None:
        self._specs, _ = declare_sized(self, predictor_params, check=False)
        self._values: Optional[Dict[str, Any]] = None  # set by configure_step
        self._pub = self._sub = self._diag_pub = self._diag_timer = None
        self.add_on_set_parameters_callback(self._on_set_parameters)

    def configure_step(self) -> None:
        self._values = values = checked_values(self, self._specs)
        self._model = self._build_model(values)
        self._row_predictor = RowPredictor(self._model)
        self._watch = RangeWatch(values['trained_min'], values['trained_max'])
        # Features read and predictions written in their serialized form where the middleware's
        # encoding is the one the codecs expect (else as messages): see ros/codecs.py. A sample
        # of up to ROW_PYTHON_MAX_FEATURES values comes as Python floats, which RowPredictor
        # sums at the least cost; a longer one as an ndarray, which it hands to np.vdot.
        self._decoder = MatrixDecoder(self._model.num_features,
                                      tuple_max=ROW_PYTHON_MAX_FEATURES)
        self._encoder = VectorEncoder()
        self.received = 0
        self.predicted_messages = 0
        self.predicted_samples = 0
        self.refusals = RefusalLog(self.get_logger(), 'features message', WARN_THROTTLE_SEC)

        self._pub = self.create_publisher(
            Float64MultiArray, 'prediction', QoSProfile(depth=10),
            qos_overriding_options=QoSOverridingOptions.with_default_policies())
        self._sub = self.create_subscription(
            Float64MultiArray, 'features', self.serving(self._on_features, 'features'),
            qos_profile_sensor_data, raw=self._decoder.raw,
            qos_overriding_options=QoSOverridingOptions.with_default_policies())
        self._diag_pub = diagnostics.create_publisher(self)
        period = values['diagnostics_period']
        self._diag_timer = self.create_timer(period, self.publish_diagnostics) if period else None
        self.get_logger().info(
            f'predicting from {self.resolve_topic_name("features")} to '
            f'{self.resolve_topic_name("prediction")}: {self._model.num_features} features, '
            f'activation {self._model.activation}')

    def cleanup_step(self) -> None:
        # Also after a configure that stopped half-way: only what exists is destroyed.
        if self._diag_timer is not None:
            self.destroy_timer(self._diag_timer)
        if self._sub is not None:
            self.destroy_subscription(self._sub)
        for pub in (self._pub, self._diag_pub):
            if pub is not None:
                self.destroy_publisher(pub)
        self._pub = self._sub = self._diag_pub = self._diag_timer = None
        self._values = None
        self._model = self._row_predictor = self._decoder = self._encoder = self._watch = None

    # ------------------------------------------------------------------------------ parameters
    @staticmethod
    def _build_model(values: Dict[str, Any]) -> NeuronModel:
        return NeuronModel(values['num_features'], activation=values['activation'],
                           weights=np.asarray(values['weights'], dtype=np.float64),
                           bias=values['bias'])

    def _on_set_parameters(self, params) -> SetParametersResult:
        if self._values is None:
            # Unconfigured (managed): rclpy has checked types, ranges and read-only; configure
            # judges the whole set, so that a set that only works together can be made.
            return SetParametersResult(successful=True)
        # Validation of the whole change first; only when every value passes is the new model
        # built and swapped in as one reference (rclpy has already checked types, ranges and
        # read-only from the descriptors, and this is the node's only callback, so success here
        # means rclpy stores exactly these values). A refusal changes nothing.
        result, merged = validate(self._specs, self._values, params)
        if not result.successful:
            self.get_logger().warning(f'parameter change refused: {result.reason}')
            return result
        if any(p.name in MODEL_PARAMS for p in params):
            try:
                model = self._build_model(merged)
            except ValueError as err:
                return SetParametersResult(successful=False, reason=str(err))
            self._model, self._row_predictor = model, RowPredictor(model)
            # rows outside the trained ranges are counted from the model that came with them
            self._watch = RangeWatch(merged['trained_min'], merged['trained_max'])
        self._values = merged
        return result

    # ------------------------------------------------------------------------------- messages
    def _on_features(self, data) -> None:
        """One features message: its bytes where the decoder reads them (``raw``), else it."""
        self.received += 1
        # The fast path, for the common message: one sample, no layout. A few numpy calls cost
        # more than the arithmetic of a sample (see model.RowPredictor); whatever it does not
        # handle (batches, layouts, wrong lengths, NaN, overflow) takes the vectorized path.
        row = self._decoder.row(data)
        if row is not None:
            y = self._row_predictor(row)  # a snapshot: weights and bias of the same update
            if y is not None:
                self._watch.row(row)
                self._pub.publish(self._encoder.value(y))
                self.predicted_messages += 1
                self.predicted_samples += 1
                return
        model = self._model  # one reference: weights and bias from the same update
        try:
            x = self._decoder.matrix(data)
        except MessageError as err:
            self.refusals.refuse(err.kind, str(err))
            return
        with np.errstate(over='ignore', invalid='ignore'):  # judged just below
            try:
                z = model.logits(x)
            except ValueError:
                # logits checks that every value is finite (one pass, model.all_finite), and a
                # NaN or an infinity is the only thing it can refuse in a matrix of N columns:
                # counted here, on this rare path, rather than checked twice on every batch.
                bad = int(np.count_nonzero(~np.isfinite(x)))
                if not bad:
                    raise
                self.refusals.refuse('non-finite', f'{bad} value(s) are NaN or infinite')
                return
        if not np.isfinite(z).all():
            # Finite features and weights, but x . w overflowed (inf, or inf - inf = NaN): a
            # non-finite prediction must never reach a controller, and neither may the sigmoid
            # of an infinity (1 or 0), whose sign the overflow may have got wrong.
            bad = int(np.count_nonzero(~np.isfinite(z)))
            self.refusals.refuse(
                'overflow', f'x . w + b overflowed to NaN or infinity for {bad} of '
                f'{z.shape[0]} sample(s): features too large for these weights')
            return
        y_hat = model.activate(z)
        self._watch.matrix(x)
        self._pub.publish(self._encoder.vector(y_hat))
        self.predicted_messages += 1
        self.predicted_samples += y_hat.shape[0]

    # ----------------------------------------------------------------------------- diagnostics
    def counters(self) -> Dict[str, Any]:
        counters = {
            'messages received': self.received,
            'messages predicted': self.predicted_messages,
            'samples predicted': self.predicted_samples,
            'messages refused': self.refusals.total,
            'last refusal': self.refusals.last_reason,
            'rows since the model came': self._watch.rows,
            'rows outside the trained range, by feature': self._watch.counts(),
        }
        if self.managed:
            counters['lifecycle state'] = self.lifecycle_state()
            counters['messages ignored (inactive)'] = self.ignored.get('features', 0)
        return counters

    def publish_diagnostics(self) -> None:
        refused = self.refusals.total
        problems = [f'{refused} messages refused; last: {self.refusals.last_reason}'
                    ] if refused else []
        problems += self._watch.problems()
        message = None
        if not self.active:
            message = (f'inactive: {self.ignored.get("features", 0)} features messages ignored; '
                       + (problems[0] if problems else 'nothing refused'))
        by_kind = [(f'refused: {k}', v) for k, v in sorted(self.refusals.by_kind.items())]
        self._diag_pub.publish(diagnostics.status_message(
            self, 'predictor', problems, 'serving', self.counters(), extra=by_kind,
            message=message))


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def keep_freed_heap(mmap_threshold: int = 32 << 20, trim_threshold: int = 64 << 20) -> bool:
    """Have glibc's malloc reuse the memory of one message for the next (process-wide).

    rclpy takes every message into fresh buffers, freed when the callback returns. With glibc's
    defaults the buffers of a batch message (512 KB for 1000 x 64) go back to the kernel on free
    (mmap'd, or trimmed off the top of the heap), and the next message faults every page in
    again: that was half the CPU a batch cost the predictor (0.7 of 1.5 ms for 1000 x 64). Here
    allocations below ``mmap_threshold`` come from the heap, and freed memory up to
    ``trim_threshold`` stays in it: RSS stays at its peak instead of dropping between messages.
    Returns False, changing nothing, where the C library is not glibc.
    """
    try:
        libc = ctypes.CDLL(None)  # the C library this process already runs on
        libc.gnu_get_libc_version  # glibc's alone
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and bool(
        mallopt(_M_TRIM_THRESHOLD, trim_threshold))


def main(args: Optional[List[str]] = None) -> None:
    keep_freed_heap()
    sys.exit(run(PredictorNode, args))


if __name__ == '__main__':
    main()
