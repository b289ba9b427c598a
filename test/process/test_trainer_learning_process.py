"""The installed `trainer` over real DDS: the learning policy of issue 16 as a user sees it.

The prequential metrics on ~/metrics/* (checked against a hand computation on a known model),
the change detected on a stream whose concept flips (~/changes, /diagnostics, the log) and the
recovery after it, the fast start, and the new parameters refused with reasons.
"""

import math

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import DurabilityPolicy, QoSProfile
from rosbench import diagnostic_values
from std_msgs.msg import Float64, Float64MultiArray, UInt32
from std_srvs.srv import SetBool, Trigger

from nn_one_node.ros.codecs import matrix_to_msg

TIMEOUT = 30.0
N = 3
SCALE = np.array([1e-2, 1.0, 1e3])  # raw features of mixed scales
W_STD_A = np.array([2.5, -2.0, 1.5])
W_STD_B = np.array([-2.0, 2.5, -1.5])  # the changed world
WINDOW = 200


def concept(rng: np.random.Generator, m: int, w_std: np.ndarray):
    Z = rng.normal(size=(m, N))
    p = 1.0 / (1.0 + np.exp(-(Z @ w_std)))
    return Z * SCALE, (rng.random(m) < p).astype(np.float64)


def batch(X: np.ndarray, y: np.ndarray) -> Float64MultiArray:
    return matrix_to_msg(np.column_stack([X, y]), cols_label='features+label')


class Trainer:
    def __init__(self, ros, **params) -> None:
        self.ros = ros
        self.samples = ros.publisher(Float64MultiArray, 'labeled_samples', QoSProfile(depth=1000))
        self.metrics = {name: ros.collect(Float64, f'/trainer/metrics/{name}')
                        for name in ('accuracy', 'mse', 'log_loss')}
        self.changes = ros.collect(UInt32, '/trainer/changes', QoSProfile(
            depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL))
        self.losses = ros.collect(Float64, '/trainer/loss')
        self.diags = ros.collect(DiagnosticArray, '/diagnostics')
        ros.client(SetBool, '/trainer/enable_training')
        values = {'num_features': N, 'train_period': 0.25, 'diagnostics_period': 0.2,
                  'metrics_period': 0.1, 'metrics_window': WINDOW, 'predictor_node': ''}
        values.update(params)
        self.proc = ros.start('trainer', values)
        ros.wait_for_subscribers(self.samples, 1, TIMEOUT)
        ros.get_parameters('/trainer', ['num_features'], TIMEOUT)

    def feed(self, X, y, per_message: int) -> None:
        for i in range(0, X.shape[0], per_message):
            self.samples.publish(batch(X[i:i + per_message], y[i:i + per_message]))

    def diag(self, check, what: str):
        start = len(self.diags)

        def ok():
            d = diagnostic_values(self.diags[start:], ': trainer')
            return d if d is not None and check(d) else None
        return self.ros.spin_until(ok, TIMEOUT, f'trainer diagnostics: {what}')

    def enable(self, on: bool) -> None:
        reply = self.ros.call(SetBool, '/trainer/enable_training', SetBool.Request(data=on),
                              TIMEOUT)
        assert reply.success, reply.message

    def latest(self, name: str, after: int = 0):
        got = self.metrics[name][after:]
        return got[-1].data if got else None


def test_metrics_topics_are_the_prequential_metrics_of_the_model_in_force(ros):
    rng = np.random.default_rng(3)
    t = Trainer(ros)
    X, y = concept(rng, 2000, W_STD_A)
    t.feed(X, y, per_message=50)
    t.diag(lambda d: int(d['samples held']) == 2000 and int(d['updates deployed']) >= 3,
           'the samples learned')
    t.enable(False)
    # with training paused the model in force is fixed and known: score a fresh window by hand
    got = ros.get_parameters('/trainer', ['weights', 'bias'], TIMEOUT)
    w, b = np.asarray(got['weights']), float(got['bias'])
    X2, y2 = concept(rng, WINDOW, W_STD_A)
    p = 1.0 / (1.0 + np.exp(-(X2 @ w + b)))
    accuracy = float(np.mean((p >= 0.5) == (y2 >= 0.5)))
    mse = float(np.mean((p - y2) ** 2))
    log_loss = float(-np.mean(y2 * np.log(p) + (1 - y2) * np.log1p(-p)))
    assert accuracy > 0.8  # it has learned
    t.feed(X2, y2, per_message=WINDOW // 4)
    d = t.diag(lambda d: int(d['samples held']) == 2000 + WINDOW, 'the window scored')
    assert float(d['prequential accuracy']) == accuracy
    assert math.isclose(float(d['prequential mse']), mse, rel_tol=1e-9)
    assert math.isclose(float(d['prequential log loss']), log_loss, rel_tol=1e-9)
    assert int(d['prequential window']) == WINDOW
    start = {name: len(msgs) for name, msgs in t.metrics.items()}
    ros.spin_until(lambda: all(len(t.metrics[n]) > start[n] + 1 for n in start), TIMEOUT,
                   'fresh metrics messages')
    assert t.latest('accuracy', start['accuracy']) == accuracy
    assert math.isclose(t.latest('mse', start['mse']), mse, rel_tol=1e-9)
    assert math.isclose(t.latest('log_loss', start['log_loss']), log_loss, rel_tol=1e-9)
    assert t.changes and t.changes[-1].data == 0 and d['changes detected'] == '0'


def test_a_changed_world_is_detected_published_and_learned(ros):
    rng = np.random.default_rng(5)
    t = Trainer(ros)
    X, y = concept(rng, 3000, W_STD_A)
    t.feed(X, y, per_message=20)
    d = t.diag(lambda d: int(d['samples held']) == 3000, 'the first world learned')
    before = float(d['prequential accuracy'])
    assert before > 0.8 and d['changes detected'] == '0' and d['last change at sample'] == 'never'
    # the world changes at sample 3000; messages of 20 samples, as a robot would send them
    X2, y2 = concept(rng, 3000, W_STD_B)
    t.feed(X2, y2, per_message=20)
    ros.spin_until(lambda: t.changes and t.changes[-1].data >= 1, TIMEOUT, 'a change published')
    d = t.diag(lambda d: int(d['changes detected']) >= 1, 'the change counted')
    at = int(d['last change at sample'])
    assert 3000 < at <= 3000 + 400, at  # found within a bound of the true change point
    t.diag(lambda d: int(d['samples held']) == 6000, 'the second world streamed')
    # only the rows after it are trained on (the automatic window would hold 1000)
    assert 'change detected at sample' in t.proc.output()
    # and the model follows the new world: the prequential accuracy is back
    d = t.diag(lambda d: float(d['prequential accuracy']) >= before - 0.05, 'accuracy back')
    got = ros.get_parameters('/trainer', ['weights'], TIMEOUT)
    assert np.all(np.sign(got['weights']) == np.sign(W_STD_B))


def test_fast_start_a_model_within_the_first_messages(ros):
    rng = np.random.default_rng(7)
    # no timer update for a day: only the arriving samples can make an update due
    t = Trainer(ros, train_period=86400.0, min_samples=10)
    X, y = concept(rng, 10, W_STD_A)
    for i in range(10):  # one sample a message
        t.samples.publish(batch(X[i:i + 1], y[i:i + 1]))
    t.ros.wait_for_messages(t.losses, 1, TIMEOUT, 'the first update, at min_samples')
    got = ros.get_parameters('/trainer', ['weights'], TIMEOUT)
    assert np.any(np.asarray(got['weights']) != 0.0)
    d = t.diag(lambda d: int(d['updates deployed']) >= 1, 'the update deployed')
    assert int(d['samples held']) == 10


def test_the_policy_parameters_are_refused_with_reasons_and_used_when_valid(ros):
    t = Trainer(ros)
    names = ['train_window', 'l2', 'relative_tolerance', 'change_threshold', 'change_delta',
             'gate_z', 'metrics_window', 'fast_start', 'update_every', 'metrics_period']
    before = ros.get_parameters('/trainer', names, TIMEOUT)
    bad = {'train_window': -1, 'l2': -0.5, 'relative_tolerance': 2.0,
           'change_threshold': math.nan, 'change_delta': -0.1, 'gate_z': math.inf,
           'metrics_window': 0, 'fast_start': -3, 'update_every': -1, 'metrics_period': 5.0}
    for name, value in bad.items():
        (result,) = ros.set_parameters('/trainer', {name: value})
        assert not result.successful and result.reason, (name, value)
    reason = ros.set_parameters('/trainer', {'l2': -0.5})[0].reason
    assert 'l2' in reason and 'range' in reason, reason
    assert ros.get_parameters('/trainer', names, TIMEOUT) == before
    assert t.proc.alive()
    # valid values are taken: a new metrics window restarts the metrics over it
    result = ros.set_parameters('/trainer', {'l2': 0.01, 'metrics_window': 50,
                                             'change_threshold': 0.0}, atomic=True)
    assert result.successful, result.reason
    rng = np.random.default_rng(9)
    X, y = concept(rng, 120, W_STD_A)
    t.feed(X, y, per_message=40)
    d = t.diag(lambda d: int(d['samples held']) == 120, 'the samples held')
    assert int(d['prequential window']) == 50
    reply = ros.call(Trigger, '/trainer/train_now', Trigger.Request(), TIMEOUT)
    assert reply.success, reply.message
