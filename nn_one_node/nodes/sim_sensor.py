"""The simulated sensor node: the wheel-slip scenario on ROS topics, for demos and Gazebo-less
tests.

Topics (relative names, so namespaces and remapping apply):

* publishes ``features`` (std_msgs/Float64MultiArray): one row of N noisy sensor readings per
  message, no layout, at ``feature_rate`` Hz. Sensor-data QoS (best effort), as a real driver.
* publishes ``labeled_samples`` (std_msgs/Float64MultiArray): ``label_batch`` rows of N readings
  followed by the ground-truth label, at ``label_rate`` Hz; a batch has the 2-D layout
  [{'samples', M, M*(N+1)}, {'features+label', N+1, N+1}], a single row (``label_batch`` 1) none.
  Reliable, depth 100: training data is not to be dropped.

Both QoS profiles can be overridden with ``qos_overrides`` parameters.

The timers run on ROS time: with ``use_sim_time`` on, nothing is published until ``/clock`` ticks,
and the rates are per simulated second. The features and the labeled samples are drawn from two
independent streams of the same seed, so the labeled data of a seed do not depend on
``feature_rate``.
"""

from __future__ import annotations

import sys
from typing import Any, Dict, List, Optional

import numpy as np
from rcl_interfaces.msg import SetParametersResult
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from rclpy.qos_overriding_options import QoSOverridingOptions
from std_msgs.msg import Float64MultiArray

from nn_one_node.ros.codecs import FEATURES_LABEL_LABELED, matrix_to_msg, to_float64_array
from nn_one_node.parameters import ParamSpec, off_or_at_least
from nn_one_node.ros.params import declare, validate
from nn_one_node.ros.runtime import executor_param, run
from nn_one_node.sim.scenario import Scenario
from nn_one_node.ros.stopping import QuietStopNode

MAX_RATE_HZ = 1000.0
MIN_RATE_HZ = 1e-3  # below, 1 / rate overflows a timer's int64 nanoseconds (1e-10 Hz)
MAX_LABEL_BATCH = 100_000
LABELED_DEPTH = 100


def sim_sensor_params() -> List[ParamSpec]:
    """The simulated sensor's parameter table."""
    return [
        ParamSpec('seed', 0, "Seed of the scenario's random draws: the same seed, the same data. "
                  'Read at start.', read_only=True, int_range=(0, 2**31 - 1)),
        ParamSpec('feature_rate', 10.0,
                  'Messages per second (ROS time) on features, one sample each; 0 publishes none. '
                  'Read at start.', read_only=True, float_range=(0.0, MAX_RATE_HZ),
                  constraints=f'0 or >= {MIN_RATE_HZ:g}', check=off_or_at_least(MIN_RATE_HZ)),
        ParamSpec('label_rate', 2.0,
                  'Messages per second (ROS time) on labeled_samples; 0 publishes none. '
                  'Read at start.', read_only=True, float_range=(0.0, MAX_RATE_HZ),
                  constraints=f'0 or >= {MIN_RATE_HZ:g}', check=off_or_at_least(MIN_RATE_HZ)),
        ParamSpec('label_batch', 50,
                  'Labeled rows per labeled_samples message; 1 sends single rows (N + 1 values, '
                  'no layout), more send a 2-D batch.', int_range=(1, MAX_LABEL_BATCH)),
        ParamSpec('bernoulli_labels', False,
                  'Label each sample 0 or 1, drawn with the true slip probability (what a robot '
                  'that records actual slips sees), instead of the probability itself.'),
        executor_param(),
    ]


class SimSensorNode(QuietStopNode):
    """Publishes the scenario's noisy readings and ground-truth labeled samples."""

    def __init__(self, node_name: str = 'sim_sensor', **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self._specs = sim_sensor_params()
        self._values: Dict[str, Any] = declare(self, self._specs)
        labels_seed, features_seed = np.random.SeedSequence(self._values['seed']).spawn(2)
        self._labels = Scenario(labels_seed)
        self._features = Scenario(features_seed)
        self.num_features = self._labels.num_features

        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._features_pub = self.create_publisher(
            Float64MultiArray, 'features', qos_profile_sensor_data,
            qos_overriding_options=QoSOverridingOptions.with_default_policies())
        self._labeled_pub = self.create_publisher(
            Float64MultiArray, 'labeled_samples', QoSProfile(depth=LABELED_DEPTH),
            qos_overriding_options=QoSOverridingOptions.with_default_policies())
        # create_timer uses the node's clock: ROS time, which follows /clock with use_sim_time.
        self._timers = []
        if self._values['feature_rate'] > 0.0:
            self._timers.append(
                self.create_timer(1.0 / self._values['feature_rate'], self.publish_features))
        if self._values['label_rate'] > 0.0:
            self._timers.append(
                self.create_timer(1.0 / self._values['label_rate'], self.publish_labeled))
        names = ', '.join(self._labels.feature_names)
        self.get_logger().info(
            f'simulating {self.num_features} sensors ({names}): '
            f'{self._values["feature_rate"]:g} Hz on {self.resolve_topic_name("features")}, '
            f'{self._values["label_rate"]:g} Hz x {self._values["label_batch"]} rows on '
            f'{self.resolve_topic_name("labeled_samples")}')

    def _on_set_parameters(self, params) -> SetParametersResult:
        # Validation only; the timers read the stored values at their next tick.
        result, merged = validate(self._specs, self._values, params)
        if result.successful:
            self._values = merged
        else:
            self.get_logger().warning(f'parameter change refused: {result.reason}')
        return result

    def publish_features(self) -> None:
        X, _ = self._features.sample(1)
        self._features_pub.publish(Float64MultiArray(data=to_float64_array(X[0])))

    def publish_labeled(self) -> None:
        batch = self._values['label_batch']
        rows = self._labels.labeled_rows(batch, bernoulli=self._values['bernoulli_labels'])
        if batch == 1:
            msg = Float64MultiArray(data=to_float64_array(rows[0]))
        else:
            msg = matrix_to_msg(rows, cols_label=FEATURES_LABEL_LABELED)
        self._labeled_pub.publish(msg)


def main(args: Optional[List[str]] = None) -> None:
    sys.exit(run(SimSensorNode, args))


if __name__ == '__main__':
    main()
