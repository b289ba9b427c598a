"""A restart never loses a good model (issue 23), as a user met it: the installed trainer learns
for a while from rounds of labeled rows (~/train_now after each), is stopped with SIGINT and
started again on its weights file, and the same stream goes on. The model it serves after the
restart predicts the new rows at least as well as the model it had before the restart, less
0.01, on the very same rows (a paired comparison: no luck of the draw either way)."""

import signal

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import QoSProfile
from rosbench import diagnostic_values
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import Trigger

from nn_one_node.model import forward
from nn_one_node.ros.codecs import matrix_to_msg

TIMEOUT = 30.0
N = 4
ROUND = 50
# raw scales of a robot's readings: a speed, a voltage that drifts little, a distance, an effort
SCALE = np.array([0.5, 0.2, 3.0, 40.0])
OFFSET = np.array([0.0, 12.0, 1.0, -5.0])
W_STD = np.array([2.0, -1.0, 1.5, -2.5])


def rows(rng, m):
    Z = rng.normal(size=(m, N))
    y = (rng.random(m) < 1.0 / (1.0 + np.exp(-(Z @ W_STD)))).astype(np.float64)
    return Z * SCALE + OFFSET, y


class Session:
    """One trainer process, driven round by round."""

    def __init__(self, ros, weights_file) -> None:
        self.ros = ros
        self.proc = ros.start('trainer', {'num_features': N, 'predictor_node': '',
                                          'weights_file': str(weights_file),
                                          'train_period': 3600.0, 'diagnostics_period': 0.1})
        self.pub = ros.publisher(Float64MultiArray, 'labeled_samples', QoSProfile(depth=1000))
        self.diags = ros.collect(DiagnosticArray, '/diagnostics')
        ros.wait_for_subscribers(self.pub, 1, TIMEOUT)
        self.received = 0

    def model(self):
        got = self.ros.get_parameters('/trainer', ['weights', 'bias'], TIMEOUT)
        return np.asarray(got['weights'], dtype=np.float64), float(got['bias'])

    def round(self, X, y) -> None:
        self.pub.publish(matrix_to_msg(np.column_stack([X, y]), cols_label='features+label'))
        self.received += X.shape[0]

        def arrived():
            d = diagnostic_values(self.diags, ': trainer')
            return d is not None and int(d['samples received']) >= self.received
        self.ros.spin_until(arrived, TIMEOUT, f'{self.received} samples at the trainer')
        self.ros.call(Trigger, '/trainer/train_now', Trigger.Request(), TIMEOUT)


def hits(model, X, y) -> np.ndarray:
    return (forward(X, *model) >= 0.5) == (y >= 0.5)


def test_a_restart_never_loses_a_good_model(ros, tmp_path):
    rng = np.random.default_rng(23)
    weights_file = tmp_path / 'model.yaml'
    first = Session(ros, weights_file)
    for _ in range(40):  # learn for a while: 2000 rows
        first.round(*rows(rng, ROUND))
    before = first.model()
    assert first.proc.stop(signal.SIGINT) == 0

    second = Session(ros, weights_file)
    second.proc.wait_for_output('resumed the model', TIMEOUT)
    served = second.model()
    np.testing.assert_array_equal(served[0], before[0])
    assert served[1] == before[1]
    after, kept = [], []
    for _ in range(20):  # the same stream goes on: 1000 rows
        X, y = rows(rng, ROUND)
        after.append(hits(second.model(), X, y))
        kept.append(hits(before, X, y))
        second.round(X, y)
    after, kept = float(np.mean(after)), float(np.mean(kept))
    assert kept > 0.8, kept  # the model before the restart was a good one
    assert after >= kept - 0.01, (after, kept)
