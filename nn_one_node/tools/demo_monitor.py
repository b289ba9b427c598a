"""The demo's monitor: its own rclpy node in the demo's process, beside the nodes it watches.

It publishes a fresh evaluation batch of the scenario on ``features`` about every second (its
prediction is recognised by its size, so a late reply is never scored against another batch),
reads the trainer's loss (``trainer/loss``), its counters (``/diagnostics``) and the labeled rows,
and asks the predictor for its deployed weights (``predictor/get_parameters``). What it learns is
kept in a ``MonitorState``. With a ``Recorder`` it also writes the serialized messages of the
run's topics to a rosbag2 (mcap).
"""

from __future__ import annotations

import functools
import importlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from nn_one_node.sim.scenario import Scenario, accuracy, mean_abs_error, weight_error

EVAL_SAMPLES = 200  # per evaluation batch; the k-th batch has EVAL_SAMPLES + k % 10 rows
EVAL_SEED = 20240


# ------------------------------------------------------------------------------- the recorder
def message_class(msgtype: str):
    """The rclpy message class of 'pkg/msg/Type'."""
    package, _, name = msgtype.split('/')
    return getattr(importlib.import_module(f'{package}.msg'), name)


class Recorder:
    """Writes the serialized messages of some topics to a rosbag2 (mcap storage), as received.

    The messages are taken raw (the CDR bytes rosbag2 stores), so nothing is deserialized on the
    way; the connections carry the message definitions, so any rosbag2 reader can decode them.
    """

    def __init__(self, path: Path) -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer
        from rosbags.typesys import Stores, get_typestore
        self.path = path
        self._typestore = get_typestore(Stores.ROS2_JAZZY)
        self._writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        self.counts: Dict[str, int] = {}

    def connection(self, topic: str, msgtype: str):
        conn = self._writer.add_connection(topic, msgtype, typestore=self._typestore)
        self.counts[topic] = 0
        return conn

    def write(self, conn, timestamp_ns: int, data: bytes) -> None:
        self._writer.write(conn, timestamp_ns, data)
        self.counts[conn.topic] += 1

    def close(self) -> None:
        self._writer.close()


# -------------------------------------------------------------------------------- the monitor
@dataclass
class Sample:
    t: float
    samples: int
    updates: int
    loss: float
    accuracy: float
    mae: float
    weight_error: float


@dataclass
class MonitorState:
    samples: int = 0             # labeled rows the trainer received (or the sensor published)
    trainer_seen: bool = False
    deployments: int = 0         # trainer updates deployed (from /diagnostics)
    loss: float = math.nan
    losses: int = 0              # trainer updates (one loss message each)
    accuracy: float = math.nan
    mae: float = math.nan
    weights: Optional[np.ndarray] = None
    bias: float = 0.0
    weight_error: float = math.nan
    history: List[Sample] = field(default_factory=list)


class Monitor:
    """The demo's own rclpy node: publishes evaluation batches and reads the results."""

    def __init__(self, domain_id: int, record: Optional[Recorder] = None,
                 topics: Sequence[Tuple[str, str, bool]] = ()) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rcl_interfaces.srv import GetParameters
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile
        from std_msgs.msg import Float64, Float64MultiArray

        self._rclpy = rclpy
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node('nn_one_demo_monitor', context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.state = MonitorState()
        self._eval = Scenario(EVAL_SEED)
        # ground truth of the evaluation batches in flight, by their number of rows: a reply is
        # matched to its batch by its size, so a late reply is never scored against another batch
        self._pending: Dict[int, np.ndarray] = {}
        self._batches = 0
        self._param_future = None
        self._labeled_rows = 0

        node = self.node
        self._features = node.create_publisher(Float64MultiArray, 'features', 10)
        node.create_subscription(Float64MultiArray, 'prediction', self._on_prediction,
                                 QoSProfile(depth=50))
        node.create_subscription(Float64, 'trainer/loss', self._on_loss, 10)
        node.create_subscription(Float64MultiArray, 'labeled_samples', self._on_labeled,
                                 QoSProfile(depth=100))
        node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 20)
        self._params = node.create_client(GetParameters, 'predictor/get_parameters')
        self.recorder = record
        if record is not None:
            self._record(topics)

    def _record(self, topics: Sequence[Tuple[str, str, bool]]) -> None:
        from rclpy.qos import QoSProfile, qos_profile_sensor_data
        for name, msgtype, sensor in topics:
            topic = self.node.resolve_topic_name(name)
            conn = self.recorder.connection(topic, msgtype)
            qos = qos_profile_sensor_data if sensor else QoSProfile(depth=100)
            # bound to this connection; raw=True hands over the serialized bytes
            self.node.create_subscription(
                message_class(msgtype), name, functools.partial(self._on_raw, conn), qos,
                raw=True)

    def _on_raw(self, conn, data: bytes) -> None:
        self.recorder.write(conn, self.node.get_clock().now().nanoseconds, data)

    # ---------------------------------------------------------------------------- callbacks
    def _on_prediction(self, msg) -> None:
        y = self._pending.pop(len(msg.data), None)
        if y is None:
            return  # a prediction of the sensor's own single rows
        y_hat = np.asarray(msg.data, dtype=np.float64)
        self.state.accuracy = accuracy(y_hat, y)
        self.state.mae = mean_abs_error(y_hat, y)

    def _on_loss(self, msg) -> None:
        self.state.loss = float(msg.data)
        self.state.losses += 1

    def _on_labeled(self, msg) -> None:
        dims = msg.layout.dim
        self._labeled_rows += int(dims[0].size) if len(dims) == 2 else 1
        if not self.state.trainer_seen:
            self.state.samples = self._labeled_rows

    def _on_diagnostics(self, msg) -> None:
        for status in msg.status:
            if status.name.endswith(': trainer'):
                values = {kv.key: kv.value for kv in status.values}
                try:
                    self.state.samples = int(values.get('samples received', self.state.samples))
                    self.state.deployments = int(
                        values.get('updates deployed', self.state.deployments))
                except ValueError:
                    continue
                self.state.trainer_seen = True

    # ---------------------------------------------------------------------------- requests
    def evaluate(self) -> None:
        """Publish a fresh evaluation batch and ask the predictor for its weights."""
        from rcl_interfaces.srv import GetParameters

        from nn_one_node.ros.codecs import matrix_to_msg
        if self._features.get_subscription_count() > 0:
            X, y = self._eval.sample(EVAL_SAMPLES + self._batches % 10)
            self._batches += 1
            self._pending[len(y)] = y
            self._features.publish(matrix_to_msg(X))
        if self._param_future is not None and not self._param_future.done():
            return  # the previous request is still in flight
        if self._params.service_is_ready():
            self._param_future = self._params.call_async(
                GetParameters.Request(names=['weights', 'bias']))
            self._param_future.add_done_callback(self._on_parameters)

    def _on_parameters(self, future) -> None:
        from rclpy.parameter import parameter_value_to_python
        reply = future.result()
        if reply is None or len(reply.values) != 2:
            return
        w = np.asarray(parameter_value_to_python(reply.values[0]), dtype=np.float64)
        b = float(parameter_value_to_python(reply.values[1]))
        if w.shape == (self._eval.num_features,):
            self.state.weights, self.state.bias = w, b
            self.state.weight_error = weight_error(w, b, self._eval)

    def spin_until(self, deadline: float) -> None:
        while self.context.ok():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self.executor.spin_once(timeout_sec=min(0.1, remaining))

    def ok(self) -> bool:
        return self.context.ok()

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self._rclpy.try_shutdown(context=self.context)
