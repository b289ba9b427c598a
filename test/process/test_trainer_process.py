"""The installed `trainer` (and `predictor`) executables as processes, driven over real DDS.

The test node streams labeled samples drawn from a known model whose features differ in scale by
five orders of magnitude, and checks what the trainer deploys against the model core fitted
offline on the same data; then restarts, the weights file, the predictor coming and going, bad
input, bad parameter values, the services and the signals.
"""

import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rcl_interfaces.srv import GetParameters, SetParameters, SetParametersAtomically
from rclpy.qos import QoSProfile
from rosbench import diagnostic_values
from rosgraph_msgs.msg import Clock
from std_msgs.msg import Float64, Float64MultiArray, MultiArrayDimension
from std_srvs.srv import SetBool, Trigger

from nn_one_node.learning.config import DEFAULTS
from nn_one_node.ros.codecs import matrix_to_msg
from nn_one_node.model import NeuronModel, sigmoid
from nn_one_node.learning.descent import train_update
from nn_one_node.learning.weights_file import load_weights_file, save_weights_file

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / 'bench'))
from procstat import CLK_TCK, cpu_ticks  # noqa: E402 - bench/, not a package

TIMEOUT = 30.0
N = 4
# Feature i is MEAN[i] + SCALE[i] * standard normal: scales from 1e-2 to 1e3, offset means.
SCALE = np.array([1e-2, 1.0, 1e2, 1e3])
MEAN = np.array([0.05, -2.0, 300.0, 5000.0])
# The true model, given on standardized features and converted to raw features.
W_STD = np.array([2.0, -1.5, 1.0, 2.5])
B_STD = 0.3
W_TRUE = W_STD / SCALE
B_TRUE = float(B_STD - W_TRUE @ MEAN)
SIGMOID_LR = 2.0  # standardized sigmoid + MSE: the gradient is small, a large step is stable
LINEAR_LR = 0.5  # standardized linear: the Hessian is about I, so any step below 2 converges

Model = Tuple[List[float], float]


# ------------------------------------------------------------------------------------- data
def features(rng: np.random.Generator, m: int) -> np.ndarray:
    return MEAN + SCALE * rng.normal(size=(m, N))


def sigmoid_data(rng: np.random.Generator, m: int):
    """X, binary labels drawn with P(y = 1) = sigmoid(x . w + b), and those probabilities."""
    X = features(rng, m)
    p = sigmoid(X @ W_TRUE + B_TRUE)
    return X, (rng.random(m) < p).astype(np.float64), p


def linear_data(rng: np.random.Generator, m: int, noise: float = 0.01):
    X = features(rng, m)
    return X, X @ W_TRUE + B_TRUE + noise * rng.normal(size=m)


def batch(X: np.ndarray, y: np.ndarray) -> Float64MultiArray:
    return matrix_to_msg(np.column_stack([X, y]), cols_label='features+label')


def row(values) -> Float64MultiArray:
    return Float64MultiArray(data=[float(v) for v in values])


# ------------------------------------------------------------------------------ the bench
class Ends:
    """The test node's ends of the trainer's topics, made once per test (trainers may restart)."""

    PARAM_SERVICES = {'get_parameters': GetParameters, 'set_parameters': SetParameters,
                      'set_parameters_atomically': SetParametersAtomically}

    def __init__(self, ros) -> None:
        self.ros = ros
        self.samples = ros.publisher(Float64MultiArray, 'labeled_samples', QoSProfile(depth=1000))
        self.losses = ros.collect(Float64, '/trainer/loss')
        self.diags = ros.collect(DiagnosticArray, '/diagnostics')
        # the clients exist before the nodes start, so those discover them with everything else
        for name in ('get_parameters', 'set_parameters', 'set_parameters_atomically'):
            for node in ('/trainer', '/predictor'):
                ros.client(type(self).PARAM_SERVICES[name], f'{node}/{name}')
        for name in ('train_now', 'reset', 'save', 'enable_training'):
            ros.client(SetBool if name == 'enable_training' else Trigger, f'/trainer/{name}')

    def start_trainer(self, **params):
        values = {'num_features': N, 'learning_rate': SIGMOID_LR, 'train_period': 0.25,
                  'diagnostics_period': 0.2, 'min_samples': 10}
        values.update(params)
        proc = self.ros.start('trainer', values)
        self.ros.wait_for_subscribers(self.samples, 1, TIMEOUT)
        self.ros.get_parameters('/trainer', ['num_features'])  # answering
        return proc

    def stop_trainer(self, proc, sig: int = signal.SIGINT) -> int:
        code = proc.stop(sig)
        # gone from the graph, so that a restarted trainer is not mistaken for this one
        self.ros.spin_until(lambda: self.samples.get_subscription_count() == 0, TIMEOUT,
                            'the stopped trainer to leave the graph')
        return code

    def feed(self, X: np.ndarray, y: np.ndarray, batches: int = 1) -> None:
        for idx in np.array_split(np.arange(X.shape[0]), batches):
            self.samples.publish(batch(X[idx], y[idx]))

    def diag(self, check: Callable[[Dict[str, str]], bool], what: str,
             fresh: int = 1) -> Dict[str, str]:
        """The trainer's diagnostics once ``check`` holds, looking only at messages received
        from now on; ``fresh=2`` skips the first one (it may have been published before a
        change that the test has just made)."""
        start = len(self.diags)

        def ok():
            if len(self.diags) < start + fresh:
                return None
            d = diagnostic_values(self.diags[start + fresh - 1:], ': trainer')
            return d if d is not None and check(d) else None
        return self.ros.spin_until(ok, TIMEOUT, f'trainer diagnostics: {what}')

    def call(self, service: str, request=None):
        srv = SetBool if service == 'enable_training' else Trigger
        return self.ros.call(srv, f'/trainer/{service}',
                             request if request is not None else srv.Request(), TIMEOUT)

    def pause(self) -> None:
        reply = self.call('enable_training', SetBool.Request(data=False))
        assert reply.success, reply.message


def count(d: Dict[str, str], key: str) -> int:
    return int(d[key])


def model_of(ros, node: str) -> Model:
    got = ros.get_parameters(node, ['weights', 'bias'], TIMEOUT)
    return [float(v) for v in got['weights']], float(got['bias'])


def wait_model(ros, node: str, model: Model, what: str) -> None:
    ros.spin_until(lambda: model_of(ros, node) == model, TIMEOUT, what)


def wait_in_sync(ros, trainer: str = '/trainer', predictor: str = '/predictor') -> Model:
    """With training paused: the predictor holds exactly the trainer's model; returns it."""
    model = model_of(ros, trainer)
    wait_model(ros, predictor, model, f'{predictor} to hold the model of {trainer}')
    return model


def start_predictor(ros, **params):
    values = {'num_features': N, 'diagnostics_period': 0.2}
    values.update(params)
    return ros.start('predictor', values)


class PredictorEnds:
    def __init__(self, ros) -> None:
        self.ros = ros
        self.pub = ros.publisher(Float64MultiArray, 'features')
        self.out = ros.collect(Float64MultiArray, 'prediction')
        ros.handshake(self.pub, row([0.0] * N), self.out, TIMEOUT)

    def predict(self, X: np.ndarray) -> np.ndarray:
        reply = self.ros.ask(self.pub, matrix_to_msg(X), self.out, TIMEOUT, 'predictions')
        return np.asarray(reply.data)


# ----------------------------------------------------------------------- online learning
def test_online_learning_reaches_the_offline_fit_and_deploys_it_to_the_predictor(ros):
    rng = np.random.default_rng(7)
    X, y, _ = sigmoid_data(rng, 2000)
    X_test, y_test, p_test = sigmoid_data(rng, 1000)
    offline = train_update(X, y, np.zeros(N), 0.0, learning_rate=SIGMOID_LR, iterations=5000,
                           tolerance=0.0, normalize=True)
    p_offline = NeuronModel(N, weights=offline.weights, bias=offline.bias).predict(X_test)
    mae_offline = float(np.mean(np.abs(p_offline - p_test)))
    acc_offline = float(np.mean((p_offline > 0.5) == y_test))
    assert mae_offline < 0.03 and acc_offline > 0.8  # the data set is learnable at all

    start_predictor(ros)
    predictor = PredictorEnds(ros)
    ends = Ends(ros)
    # all of them (the automatic window is 1000); prior 0: the offline fit is the course's
    # unregularized optimum, which the prior (on by default) moves a little
    ends.start_trainer(train_window=2000, prior=0.0)
    ends.feed(X, y, batches=20)
    ends.diag(lambda d: count(d, 'samples held') == 2000, 'all 2000 samples held')
    scores = []

    def as_good_as_offline():
        p = predictor.predict(X_test)
        scores.append((float(np.mean(np.abs(p - p_test))), float(np.mean((p > 0.5) == y_test))))
        mae, acc = scores[-1]
        return mae <= mae_offline + 0.005 and acc >= acc_offline - 0.01
    try:
        ros.spin_until(as_good_as_offline, TIMEOUT,
                       f'the predictor to reach the offline fit (MAE {mae_offline:.4f}, '
                       f'accuracy {acc_offline:.3f})')
    except AssertionError as err:
        raise AssertionError(f'{err}\nlast (MAE, accuracy): {scores[-5:]}') from None

    # trained on, the deployed raw-feature weights converge to the offline fit's (compared on
    # the standardized scale, where every weight is of order 1)
    offline_std = offline.weights * SCALE

    def converged():
        weights, _ = model_of(ros, '/trainer')
        return np.max(np.abs(np.asarray(weights) * SCALE - offline_std)) < 0.02
    ros.spin_until(converged, TIMEOUT, f'the weights to converge to {offline_std}')
    ends.pause()
    weights, bias = wait_in_sync(ros)
    got = ros.get_parameters('/predictor', ['activation'])
    assert got['activation'] == 'sigmoid'
    # the predictor serves exactly the deployed raw-feature model
    np.testing.assert_allclose(predictor.predict(X_test),
                               NeuronModel(N, weights=weights, bias=bias).predict(X_test),
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.asarray(weights) * SCALE, offline_std, atol=0.02)
    assert bias == pytest.approx(offline.bias, abs=0.02 * (1 + abs(offline.bias)))
    # deployed with it: the range of the rows it was trained on (most of the 2000: a few may
    # have been held out to judge it), which the predictor counts rows against
    got = ros.get_parameters('/predictor', ['trained_min', 'trained_max'])
    low, high = np.asarray(got['trained_min']), np.asarray(got['trained_max'])
    assert np.all(X.min(axis=0) <= low) and np.all(low <= np.quantile(X, 0.01, axis=0))
    assert np.all(np.quantile(X, 0.99, axis=0) <= high) and np.all(high <= X.max(axis=0))
    d = ends.diag(lambda d: d['predictor in sync'] == 'True', 'predictor in sync')
    assert count(d, 'samples refused') == 0 and count(d, 'updates deployed') >= 1
    assert d['training enabled'] == 'False'
    assert ends.losses and all(math.isfinite(msg.data) for msg in ends.losses)


def test_a_linear_run_recovers_a_known_linear_relation_and_deploys_the_activation(ros):
    rng = np.random.default_rng(11)
    X, y = linear_data(rng, 1000)
    X_test, _ = linear_data(rng, 200)
    start_predictor(ros)  # activation sigmoid: the trainer deploys 'linear' with the weights
    predictor = PredictorEnds(ros)
    ends = Ends(ros)
    # prior 0: the least-squares fit is the unregularized optimum (the prior moves it a little)
    ends.start_trainer(activation='linear', learning_rate=LINEAR_LR, prior=0.0)
    ends.feed(X, y, batches=5)
    # fast start deploys updates while the batches arrive; then the updates on all 1000 go on
    # (without new samples, to tolerance) until the least-squares fit of them is reached
    ends.diag(lambda d: count(d, 'samples held') == 1000, 'the samples held')
    lstsq = np.linalg.lstsq(np.column_stack([X, np.ones(len(y))]), y, rcond=None)[0]
    ros.spin_until(lambda: np.allclose(np.asarray(model_of(ros, '/trainer')[0]) * SCALE,
                                       lstsq[:N] * SCALE, rtol=0, atol=1e-5),
                   TIMEOUT, 'the least-squares fit of the samples held')
    ends.pause()
    weights, bias = wait_in_sync(ros)
    assert ros.get_parameters('/predictor', ['activation'])['activation'] == 'linear'
    # the relation the data came from (noise 0.01 on 1000 samples: standard error ~3e-4)
    np.testing.assert_allclose(np.asarray(weights) * SCALE, W_STD, rtol=0, atol=3e-3)
    assert bias == pytest.approx(B_TRUE, abs=0.05)
    # ... and the least-squares fit of those samples, up to where the tolerance stopped it
    np.testing.assert_allclose(np.asarray(weights) * SCALE, lstsq[:N] * SCALE, atol=1e-5)
    np.testing.assert_allclose(predictor.predict(X_test), X_test @ W_TRUE + B_TRUE, atol=0.01)
    d = ends.diag(lambda d: True, 'a status')
    assert count(d, 'samples refused') == 0  # labels outside [0, 1] are fine for 'linear'


# -------------------------------------------------------------------------- learning rate
def test_a_runtime_learning_rate_change_is_used_from_the_next_update(ros):
    rng = np.random.default_rng(5)
    X, y, _ = sigmoid_data(rng, 500)
    ends = Ends(ros)
    # no update before all 500 samples are held: then the loss moves only with the weights
    ends.start_trainer(learning_rate=1e-9, min_samples=500, predictor_node='')
    ends.feed(X, y, batches=5)
    # the first update (its newest quarter held out), then one on all 500: its steps change
    # the loss by less than tolerance, so the descent has converged and the next ticks are idle
    ros.wait_for_messages(ends.losses, 2, TIMEOUT, 'losses with learning_rate 1e-9')
    # zero weights predict 0.5 everywhere: the MSE on 0/1 labels is 0.25 whatever the data
    tiny = [msg.data for msg in ends.losses]
    assert tiny == pytest.approx([0.25] * len(tiny), abs=1e-7), tiny
    weights, _ = model_of(ros, '/trainer')
    assert np.max(np.abs(np.asarray(weights) * SCALE)) < 1e-6  # standardized: of order 1 later

    (result,) = ros.set_parameters('/trainer', {'learning_rate': SIGMOID_LR})
    assert result.successful, result.reason
    start = len(ends.losses)
    ros.spin_until(lambda: any(m.data < 0.15 for m in ends.losses[start:]), TIMEOUT,
                   f'the loss to drop below 0.15 with learning_rate {SIGMOID_LR}')
    after = [msg.data for msg in ends.losses[start:]]
    # the deployment gate keeps the loss on a fixed buffer from rising
    assert all(b <= a for a, b in zip(after, after[1:])), after
    assert ros.get_parameters('/trainer', ['learning_rate'])['learning_rate'] == SIGMOID_LR


def test_a_diverging_learning_rate_is_refused_and_the_model_in_force_stays(ros):
    rng = np.random.default_rng(13)
    X, y = linear_data(rng, 500)
    start_predictor(ros)
    ends = Ends(ros)
    proc = ends.start_trainer(activation='linear', learning_rate=LINEAR_LR)
    ends.feed(X, y)
    ends.diag(lambda d: count(d, 'updates deployed') >= 2, 'two updates deployed')
    ends.pause()
    model = wait_in_sync(ros)
    refused_before = count(ends.diag(lambda d: True, 'a status', fresh=2), 'updates refused')

    (result,) = ros.set_parameters('/trainer', {'learning_rate': 1e6})
    assert result.successful, result.reason
    reply = ends.call('train_now')
    assert not reply.success
    assert reply.message.startswith('refused') and 'learning_rate 1e+06' in reply.message
    reply = ends.call('enable_training', SetBool.Request(data=True))
    assert reply.success
    # the timer's updates are refused too, and once refused on the same rows they are idle:
    # new rows make the next ones train (and be refused) again
    ends.feed(*linear_data(rng, 40))
    d = ends.diag(lambda d: count(d, 'updates refused') >= refused_before + 2,
                  'timer updates refused too')
    assert d['last update'].startswith('refused'), d['last update']
    assert count(d, 'updates') >= count(d, 'updates refused')
    assert 'update not deployed, the previous model stays' in proc.output()
    # the model in force is the old one, in the trainer and in the predictor
    assert model_of(ros, '/trainer') == model
    assert model_of(ros, '/predictor') == model
    assert math.isfinite(float(d['last loss']))


# ---------------------------------------------------------------------------- persistence
def test_restart_resumes_the_saved_model_and_deploys_it_to_a_fresh_predictor(ros, tmp_path):
    path = tmp_path / 'model' / 'weights.yaml'  # the directory is created on the first save
    rng = np.random.default_rng(17)
    X, y = linear_data(rng, 300)
    predictor = start_predictor(ros)
    ends = Ends(ros)
    trainer = ends.start_trainer(activation='linear', learning_rate=LINEAR_LR,
                                 weights_file=str(path))
    trainer.wait_for_output('no weights file at .* yet: starting fresh', TIMEOUT)
    ends.feed(X, y)
    ends.diag(lambda d: count(d, 'updates deployed') >= 1 and count(d, 'weights file writes')
              >= 1, 'a deployment written to the weights file')
    ends.pause()
    saved = wait_in_sync(ros)
    reply = ends.call('save')
    assert reply.success and str(path) in reply.message, reply.message
    assert ends.stop_trainer(trainer, signal.SIGINT) == 0
    assert 'Traceback' not in trainer.output()

    content = load_weights_file(path, num_features=N)
    assert content.weights.tolist() == saved[0] and content.bias == saved[1]
    assert content.activation == 'linear'
    assert sorted(p.name for p in path.parent.iterdir()) == ['weights.yaml']  # no temporaries

    # a fresh predictor (zero weights, sigmoid) and the trainer again, without any sample and
    # without the activation parameter: both take the model and its activation from the file
    assert predictor.stop() == 0
    start_predictor(ros)
    ros.spin_until(lambda: model_of(ros, '/predictor') == ([0.0] * N, 0.0), TIMEOUT,
                   'the fresh predictor with zero weights')
    trainer = ends.start_trainer(weights_file=str(path))
    trainer.wait_for_output('resumed the model from', TIMEOUT)
    assert model_of(ros, '/trainer') == saved
    assert ros.get_parameters('/trainer', ['activation'])['activation'] == 'linear'
    wait_model(ros, '/predictor', saved, 'the resumed model deployed to the fresh predictor')
    got = ros.get_parameters('/predictor', ['activation', 'trained_min', 'trained_max'])
    assert got['activation'] == 'linear'
    # the file does not say what the model was trained on: not known, nothing is counted
    assert list(got['trained_min']) == [-math.inf] * N and list(got['trained_max']) == [
        math.inf] * N
    d = ends.diag(lambda d: d['predictor in sync'] == 'True', 'predictor in sync')
    assert count(d, 'samples held') == 0 and count(d, 'updates') == 0

    # the file is a params file the predictor loads directly
    ros.start('predictor', params_files=[path], name='loaded')
    got = ros.get_parameters('/loaded', ['weights', 'bias', 'activation', 'num_features'],
                             TIMEOUT)
    assert [float(v) for v in got['weights']] == saved[0] and got['bias'] == saved[1]
    assert got['activation'] == 'linear' and got['num_features'] == N


def test_weights_set_by_hand_are_the_model_in_force_deployed_and_saved(ros, tmp_path):
    path = tmp_path / 'weights.yaml'
    start_predictor(ros)
    ends = Ends(ros)
    ends.start_trainer(weights_file=str(path))
    hand = ([0.5, -0.25, 0.125, 2.0e-3], -1.5)
    result = ros.set_parameters('/trainer', {'weights': hand[0], 'bias': hand[1]}, atomic=True)
    assert result.successful, result.reason
    wait_model(ros, '/predictor', hand, 'the hand-set model deployed to the predictor')
    # a deployed model is written to the weights file, so that a restart does not lose it

    def saved():
        return path.exists() and load_weights_file(path, num_features=N)
    content = ros.spin_until(saved, TIMEOUT, 'the hand-set model in the weights file')
    assert (content.weights.tolist(), content.bias) == hand
    assert model_of(ros, '/trainer') == hand

    # another activation changes what the model in force computes: deployed and saved as well
    ends.pause()  # no update may replace the model meanwhile
    (result,) = ros.set_parameters('/trainer', {'activation': 'linear'})
    assert result.successful, result.reason
    ros.spin_until(lambda: ros.get_parameters('/predictor', ['activation'])['activation']
                   == 'linear', TIMEOUT, 'the predictor to serve the linear activation')
    assert model_of(ros, '/predictor') == hand
    content = ros.spin_until(lambda: (c := saved()) and c.activation == 'linear' and c,
                             TIMEOUT, 'the linear activation in the weights file')
    assert (content.weights.tolist(), content.bias) == hand
    ends.diag(lambda d: d['predictor in sync'] == 'True', 'predictor in sync')


def test_a_new_train_period_applies_at_once_and_hand_set_weights_do_not_wait_for_it(
        ros, tmp_path):
    path = tmp_path / 'weights.yaml'
    rng = np.random.default_rng(53)
    X, y, _ = sigmoid_data(rng, 100)
    ends = Ends(ros)
    ends.start_trainer(weights_file=str(path), predictor_node='')
    ends.feed(X, y)
    ends.diag(lambda d: count(d, 'updates') >= 1, 'a first update')
    (result,) = ros.set_parameters('/trainer', {'train_period': 86400.0})
    assert result.successful, result.reason
    updates = count(ends.diag(lambda d: True, 'a status', fresh=2), 'updates')
    ros.spin_for(1.0)  # four of the old periods
    assert count(ends.diag(lambda d: True, 'a status'), 'updates') == updates

    # a model set by hand is saved now, not at the next tick a day away
    hand = ([0.5, -0.25, 0.125, 2.0e-3], -1.5)
    result = ros.set_parameters('/trainer', {'weights': hand[0], 'bias': hand[1]}, atomic=True)
    assert result.successful, result.reason
    content = ros.spin_until(
        lambda: path.exists() and (c := load_weights_file(path, num_features=N)) and
        (c.weights.tolist(), c.bias) == hand and c, TIMEOUT, 'the hand-set model saved')
    assert content.activation == 'sigmoid'

    # and a short period again is in force from now, not after the day-long one: the hand-set
    # model stands until 30 new rows judge a candidate, and only the timer updates then (no fast
    # start for a model with standing), so an update within the timeout is the new period's
    (result,) = ros.set_parameters('/trainer', {'train_period': 0.25})
    assert result.successful, result.reason
    ends.feed(*sigmoid_data(rng, 40)[:2])
    ends.diag(lambda d: count(d, 'updates') >= updates + 1, 'updates again', fresh=2)


def test_a_weights_file_that_cannot_be_written_is_an_error_not_a_crash(ros, tmp_path):
    (tmp_path / 'a_file').write_text('not a directory')
    path = tmp_path / 'a_file' / 'weights.yaml'
    rng = np.random.default_rng(43)
    X, y, _ = sigmoid_data(rng, 100)
    ends = Ends(ros)
    trainer = ends.start_trainer(weights_file=str(path), predictor_node='')
    ends.feed(X, y)
    d = ends.diag(lambda d: count(d, 'updates deployed') >= 2, 'updates deployed')
    assert count(d, 'weights file writes') == 0
    trainer.wait_for_output(rf'\[ERROR\].*cannot write {path}', TIMEOUT)
    status = [s for msg in ends.diags for s in msg.status if s.name.endswith(': trainer')][-1]
    assert status.level == DiagnosticStatus.WARN and 'cannot write' in status.message
    reply = ends.call('save')
    assert not reply.success and reply.message.startswith(f'cannot write {path}'), reply.message
    assert trainer.alive() and 'Traceback' not in trainer.output()


def corrupt_files(path: Path) -> Dict[str, bytes]:
    save_weights_file(path, [0.5, -1.0, 2.0, 0.25], 0.125, 'sigmoid')
    good = path.read_bytes()
    save_weights_file(path, [0.5, -1.0, 2.0], 0.125, 'sigmoid')
    return {
        'truncated': good[:len(good) * 2 // 3],
        'garbage': bytes(range(256)) * 4,
        'another model': path.read_bytes(),  # valid, but for 3 features
    }


@pytest.mark.parametrize('kind', ['truncated', 'garbage', 'another model'])
def test_a_corrupted_weights_file_gives_an_error_and_a_fresh_start(ros, tmp_path, kind):
    path = tmp_path / 'weights.yaml'
    bad = corrupt_files(path)[kind]
    path.write_bytes(bad)
    ends = Ends(ros)
    trainer = ends.start_trainer(weights_file=str(path), predictor_node='')
    line = trainer.wait_for_output(r'\[ERROR\].*weights file .* is unusable \((.*)\); it was '
                                   r'moved aside to (\S+); starting fresh', TIMEOUT)
    assert line.group(1), 'no reason given'
    assert model_of(ros, '/trainer') == ([0.0] * N, 0.0)
    kept = Path(line.group(2))
    assert kept.parent == tmp_path and kept.name.startswith('weights.yaml.corrupt-')
    assert kept.read_bytes() == bad and not path.exists()
    d = ends.diag(lambda d: True, 'a status')
    assert count(d, 'updates') == 0
    # a fresh start that works: the next save writes a valid file in its place
    reply = ends.call('save')
    assert reply.success, reply.message
    content = load_weights_file(path, num_features=N)
    assert content.weights.tolist() == [0.0] * N and content.bias == 0.0
    assert trainer.alive() and 'Traceback' not in trainer.output()


# -------------------------------------------------------------------- predictor down / up
def test_the_trainer_deploys_once_the_predictor_is_up(ros):
    rng = np.random.default_rng(19)
    X, y, _ = sigmoid_data(rng, 300)
    ends = Ends(ros)
    trainer = ends.start_trainer()
    ends.feed(X, y)
    ros.wait_for_messages(ends.losses, 2, TIMEOUT, 'losses without a predictor')
    d = ends.diag(lambda d: count(d, 'updates deployed') >= 2, 'updates deployed')
    assert d['predictor in sync'] == 'False'
    trainer.wait_for_output('predictor /predictor is not up: will deploy when it is', TIMEOUT)

    # a predictor that refuses the model (it has 3 features, not 4): refused, logged, retried
    wrong = start_predictor(ros, num_features=3)
    trainer.wait_for_output('/predictor refused the deployment: weights must have '
                            'num_features = 3', TIMEOUT)
    assert ends.diag(lambda d: True, 'a status', fresh=2)['predictor in sync'] == 'False'
    assert wrong.stop() == 0

    ends.pause()
    model = model_of(ros, '/trainer')
    assert model != ([0.0] * N, 0.0)
    start_predictor(ros)  # no new samples from here on
    wait_model(ros, '/predictor', model, 'the deployment to the predictor started late')
    d = ends.diag(lambda d: d['predictor in sync'] == 'True', 'predictor in sync')
    assert count(d, 'samples held') == 300

    # the predictor restarts (with zero weights): the model is deployed to it again
    assert ros.processes[-1].stop() == 0
    ends.diag(lambda d: d['predictor in sync'] == 'False', 'the predictor gone')
    start_predictor(ros)
    wait_model(ros, '/predictor', model, 'the deployment to the restarted predictor')
    assert trainer.alive() and 'Traceback' not in trainer.output()


def test_a_crashed_and_respawned_predictor_gets_the_model_again(ros):
    rng = np.random.default_rng(53)
    X, y, _ = sigmoid_data(rng, 200)
    predictor = start_predictor(ros)
    ends = Ends(ros)
    trainer = ends.start_trainer()
    ends.feed(X, y)
    ends.diag(lambda d: count(d, 'updates deployed') >= 1, 'an update deployed')
    ends.pause()  # no new model from here on: only the trainer's watch can redeploy
    model = wait_in_sync(ros)
    updates = count(ends.diag(lambda d: True, 'a status', fresh=2), 'updates')
    # a crash may leave the old server in the DDS graph until its lease expires, and the
    # respawned one may be up before that: then the trainer never sees the predictor "not up"
    predictor.kill()
    start_predictor(ros)
    wait_model(ros, '/predictor', model, 'the model deployed to the respawned predictor')
    # the trainer owns the predictor's model: one set there by hand is replaced too
    result = ros.set_parameters('/predictor', {'weights': [9.0] * N, 'bias': 9.0}, atomic=True)
    assert result.successful, result.reason
    wait_model(ros, '/predictor', model, 'the deployed model back on the predictor')
    trainer.wait_for_output('/predictor does not serve the model it confirmed', TIMEOUT)
    d = ends.diag(lambda d: d['predictor in sync'] == 'True', 'predictor in sync')
    assert count(d, 'updates') == updates  # no update did it
    assert model_of(ros, '/trainer') == model


def test_a_hung_predictor_does_not_block_the_trainer(ros):
    rng = np.random.default_rng(41)
    X, y, _ = sigmoid_data(rng, 300)
    predictor = start_predictor(ros)
    ends = Ends(ros)
    trainer = ends.start_trainer(deploy_timeout=0.5)
    ends.feed(X[:100], y[:100])
    ends.diag(lambda d: d['predictor in sync'] == 'True' and count(d, 'updates deployed') >= 1,
              'a deployment confirmed')
    predictor.proc.send_signal(signal.SIGSTOP)  # up in the graph, answering nothing
    try:
        ends.feed(X[100:], y[100:])
        start = len(ends.losses)
        ros.wait_for_messages(ends.losses, start + 6, TIMEOUT, 'updates go on')
        d = ends.diag(lambda d: count(d, 'samples held') == 300, 'the samples held')
        assert d['predictor in sync'] == 'False'
        trainer.wait_for_output('/predictor did not confirm the deployment within 0.5 s: will '
                                'retry', TIMEOUT)
        ends.pause()
        model = model_of(ros, '/trainer')
    finally:
        predictor.proc.send_signal(signal.SIGCONT)
    wait_model(ros, '/predictor', model, 'the deployment once the predictor answers again')
    # The predictor may have applied a request queued while it was stopped before it answers
    # the trainer's current one (on a busy machine, after one more 0.5 s timeout and retry):
    # wait for the trainer to see the confirmation, not for its next status.
    ends.diag(lambda d: d['predictor in sync'] == 'True', 'the trainer in sync again', fresh=2)


# --------------------------------------------------------------------------- bad input
def bad_messages() -> Dict[str, Float64MultiArray]:
    cols = N + 1
    bad_stride = batch(np.ones((2, N)), np.ones(2))
    bad_stride.layout.dim[0].stride = 7
    short_batch = batch(np.ones((2, N)), np.ones(2))
    short_batch.layout.dim[0].size = 3  # says 3 rows, carries 2
    short_batch.layout.dim[0].stride = 3 * cols
    three_d = batch(np.ones((2, N)), np.ones(2))
    three_d.layout.dim.append(MultiArrayDimension(label='x', size=1, stride=1))
    offset = row(range(cols))
    offset.layout.data_offset = 100
    return {
        'features without a label': row(range(N)),
        'features only (batch)': matrix_to_msg(np.ones((2, N))),
        'bad stride': bad_stride,
        'short batch': short_batch,
        'empty batch': batch(np.ones((0, N)), np.ones(0)),
        '3-d layout': three_d,
        'offset past end': offset,
    }


def test_bad_rows_are_refused_and_the_good_rows_of_a_batch_kept(ros):
    ends = Ends(ros)
    trainer = ends.start_trainer(min_samples=1000, predictor_node='')
    rng = np.random.default_rng(23)
    X = features(rng, 11)
    y = np.array([0.0, 1.0, 0.25, 1.0, 0.0, 0.75, 0.5, 0.5, 0.5, 1.5, -0.25])
    X[6, 1] = math.nan
    y[7] = math.nan
    X[8, 3] = -math.inf
    ends.samples.publish(batch(X, y))  # rows 0-5 good, 6-8 non-finite, 9-10 label out of range
    ends.samples.publish(row([*X[0], 2.0]))  # one row, label out of range
    ends.samples.publish(row([*X[0], math.inf]))  # one row, non-finite label
    ends.samples.publish(row([*X[1], 1.0]))  # one good row
    bad = bad_messages()
    for msg in bad.values():
        ends.samples.publish(msg)
    d = ends.diag(lambda d: count(d, 'messages refused') >= len(bad), 'all messages handled')
    assert count(d, 'samples held') == 7
    assert count(d, 'samples refused') == 7
    assert count(d, 'refused: non-finite') == 4 and count(d, 'refused: label range') == 3
    assert count(d, 'samples received') == 14
    assert count(d, 'messages refused') == len(bad)
    by_kind = {k[len('messages refused: '):]: count(d, k) for k in d
               if k.startswith('messages refused: ')}
    assert set(by_kind) == {'length', 'layout', 'empty'} and sum(by_kind.values()) == len(bad)
    ros.spin_for(0.5)  # nothing counted twice
    d = ends.diag(lambda d: True, 'a status')
    assert (count(d, 'samples held'), count(d, 'samples refused'),
            count(d, 'messages refused')) == (7, 7, len(bad))
    log = trainer.output()
    assert 'labeled sample row(s) refused (non-finite' in log
    assert 'labeled sample row(s) refused (label range' in log and 'outside [0, 1]' in log
    for kind in ('length', 'layout', 'empty'):
        assert f'labeled_samples message refused ({kind}' in log, f'no warning for {kind}'
    # the buffer shrinks to a smaller buffer_size, newest samples kept; the node goes on. Not
    # below min_samples: such a buffer would never train, so both change together.
    (result,) = ros.set_parameters('/trainer', {'buffer_size': 3})
    assert not result.successful and 'at least min_samples (1000)' in result.reason
    result = ros.set_parameters('/trainer', {'buffer_size': 3, 'min_samples': 3}, atomic=True)
    assert result.successful, result.reason
    assert count(ends.diag(lambda d: True, 'a status', fresh=2), 'samples held') == 3
    # the timer may have trained on the 3 already: then the same rows have nothing new to teach
    reply = ends.call('train_now')
    assert (reply.success and 'on 3 samples' in reply.message
            or reply.message.startswith('nothing new to learn')), reply.message
    assert trainer.alive()


def test_bad_parameter_values_are_refused_with_a_reason_and_change_nothing(ros, tmp_path):
    n = 8  # buffer_size 10**8 would need 10**8 * 9 * 8 bytes
    ends = Ends(ros)
    trainer = ends.start_trainer(num_features=n, predictor_node='')
    names = ['learning_rate', 'buffer_size', 'min_samples', 'train_period',
             'iterations_per_update', 'tolerance', 'weights', 'bias', 'activation', 'loss',
             'normalize', 'predictor_node', 'weights_file', 'seed', 'deploy_timeout',
             'num_features', 'diagnostics_period', 'executor']
    before = ros.get_parameters('/trainer', names, TIMEOUT)
    cases = {
        'learning_rate': [0.0, -1.0, math.nan, math.inf, 'fast'],
        'buffer_size': [0, -5, 10**8],
        'min_samples': [0],
        'train_period': [0.0, -1.0, math.nan],
        'iterations_per_update': [0],
        'tolerance': [-1.0, math.nan],
        'weights': [[1.0] * (n - 1), [1.0] * (n + 1), [math.nan] + [0.0] * (n - 1), 'w'],
        'bias': [math.nan, math.inf],
        'activation': ['relu', 1.0],
        'loss': ['hinge'],
        'normalize': ['yes'],
        'seed': [-2],
        'deploy_timeout': [0.0],
        # read-only: nobody on the domain may point the trainer elsewhere at runtime
        'predictor_node': ['other'],
        'weights_file': [str(tmp_path / 'elsewhere.yaml')],
        'num_features': [3],
        'diagnostics_period': [0.5],
        'executor': ['single_threaded'],
    }
    for name, values in cases.items():
        for value in values:
            (result,) = ros.set_parameters('/trainer', {name: value})
            assert not result.successful, f'{name}={value!r} was accepted'
            assert result.reason, f'{name}={value!r} was refused without a reason'
    (result,) = ros.set_parameters('/trainer', {'buffer_size': 10**8})
    assert 'GiB' in result.reason, result.reason
    # cross-parameter rule, from either side: 'bce' needs 'sigmoid'
    r = ros.set_parameters('/trainer', {'loss': 'bce', 'activation': 'linear'}, atomic=True)
    assert not r.successful and 'bce' in r.reason, r.reason
    assert ros.get_parameters('/trainer', names, TIMEOUT) == before
    (result,) = ros.set_parameters('/trainer', {'loss': 'bce'})
    assert result.successful, result.reason
    (result,) = ros.set_parameters('/trainer', {'activation': 'linear'})
    assert not result.successful and 'bce' in result.reason, result.reason
    (result,) = ros.set_parameters('/trainer', {'loss': 'mse'})
    assert result.successful, result.reason
    assert ros.get_parameters('/trainer', names, TIMEOUT) == before
    # and min_samples <= buffer_size, from either side (a smaller buffer would never train)
    (result,) = ros.set_parameters('/trainer', {'min_samples': 10001})
    assert not result.successful and 'at most buffer_size (10000)' in result.reason
    (result,) = ros.set_parameters('/trainer', {'buffer_size': 9})
    assert not result.successful and 'at least min_samples (10)' in result.reason
    assert ros.get_parameters('/trainer', names, TIMEOUT) == before
    assert 'parameter change refused' in trainer.output()

    # alive and answering: a good change is taken, and the trainer still trains
    result = ros.set_parameters('/trainer', {'weights': [0.5] * n, 'bias': -1.0}, atomic=True)
    assert result.successful, result.reason
    assert model_of(ros, '/trainer') == ([0.5] * n, -1.0)
    rng = np.random.default_rng(29)
    ends.samples.publish(batch(rng.normal(size=(20, n)), rng.integers(0, 2, 20).astype(float)))
    ends.diag(lambda d: count(d, 'samples held') == 20, '20 samples held')
    # the hand-set model has standing: it waits for 30 new rows to judge a candidate
    reply = ends.call('train_now')
    assert reply.message.startswith('the model in force stands'), reply.message
    assert trainer.alive() and 'Traceback' not in trainer.output()


# ------------------------------------------------------------------------------- services
def test_the_services_do_what_they_say(ros):
    rng = np.random.default_rng(31)
    X, y, _ = sigmoid_data(rng, 60)
    ends = Ends(ros)
    ends.start_trainer(predictor_node='')

    reply = ends.call('train_now')
    assert not reply.success and 'no samples' in reply.message, reply.message
    reply = ends.call('save')
    assert not reply.success and 'persistence is off' in reply.message, reply.message

    # paused: samples are still collected, the timer trains no more
    reply = ends.call('enable_training', SetBool.Request(data=False))
    assert reply.success and 'paused' in reply.message
    ends.feed(X[:40], y[:40])
    d = ends.diag(lambda d: count(d, 'samples held') == 40, '40 samples held', fresh=2)
    assert d['training enabled'] == 'False' and count(d, 'updates') == 0
    ends.feed(X[40:], y[40:])
    ros.spin_for(1.0)  # four train periods
    d = ends.diag(lambda d: True, 'a status')
    assert count(d, 'samples held') == 60 and count(d, 'updates') == 0
    assert not ends.losses

    reply = ends.call('train_now')  # one update now, paused or not
    assert reply.success and reply.message.startswith('deployed'), reply.message
    # fitted to the 45 oldest, judged on the newest 15 (a quarter, held out of its training)
    assert 'on 45 samples' in reply.message and 'on 15 rows' in reply.message, reply.message
    assert model_of(ros, '/trainer') != ([0.0] * N, 0.0)
    ends.diag(lambda d: count(d, 'updates') == 1, 'the update counted')

    reply = ends.call('enable_training', SetBool.Request(data=True))
    assert reply.success and 'enabled' in reply.message
    ends.diag(lambda d: count(d, 'updates') >= 3, 'timer updates again')

    # reset: the next update from zeros (seed -1); no samples held, so the timer has nothing
    # to train on; the model in force stays until an update deploys one
    trained = model_of(ros, '/trainer')
    reply = ends.call('reset')
    assert reply.success and 'zeros' in reply.message, reply.message
    assert model_of(ros, '/trainer') == trained
    d = ends.diag(lambda d: count(d, 'samples held') == 0, 'the buffer cleared', fresh=2)
    updates = count(d, 'updates')
    # reset with a seed: the model core's seeded random weights
    (result,) = ros.set_parameters('/trainer', {'seed': 7})
    assert result.successful, result.reason
    reply = ends.call('reset')
    assert reply.success and 'seed 7' in reply.message, reply.message
    assert model_of(ros, '/trainer') == trained
    ros.spin_for(0.6)
    d = ends.diag(lambda d: True, 'a status')
    assert count(d, 'updates') == updates and count(d, 'samples held') == 0


def test_save_writes_the_model_in_force(ros, tmp_path):
    path = tmp_path / 'w.yaml'
    ends = Ends(ros)
    ends.start_trainer(weights_file=str(path), predictor_node='', seed=3)
    model = model_of(ros, '/trainer')
    assert model == (NeuronModel.random_weights(N, 3).tolist(), 0.0)
    assert not path.exists()  # nothing deployed yet
    reply = ends.call('save')
    assert reply.success and reply.message == f'saved to {path}', reply.message
    content = load_weights_file(path, num_features=N)
    assert (content.weights.tolist(), content.bias) == model
    assert content.activation == 'sigmoid'
    d = ends.diag(lambda d: count(d, 'weights file writes') == 1, 'the write counted')
    assert d['last update'] == ''


def test_reset_keeps_the_model_in_force_until_an_update_deploys_one(ros, tmp_path):
    path = tmp_path / 'weights.yaml'
    rng = np.random.default_rng(59)
    X, y, _ = sigmoid_data(rng, 200)
    start_predictor(ros)
    ends = Ends(ros)
    ends.start_trainer(weights_file=str(path), seed=7, tolerance=0.0, iterations_per_update=50)
    ends.feed(X, y)
    ends.diag(lambda d: count(d, 'updates deployed') >= 1, 'an update deployed')
    ends.pause()
    deployed = wait_in_sync(ros)

    reply = ends.call('reset')
    assert reply.success and 'seed 7' in reply.message, reply.message
    # the predictor still serves the deployed model, so the trainer shows and saves that one:
    # a restart resumes the file and deploys it, which must not replace what the robot runs
    assert model_of(ros, '/trainer') == deployed
    reply = ends.call('save')
    assert reply.success, reply.message
    content = load_weights_file(path, num_features=N)
    assert (content.weights.tolist(), content.bias) == deployed
    d = ends.diag(lambda d: count(d, 'samples held') == 0, 'the buffer cleared', fresh=2)
    assert d['predictor in sync'] == 'True'
    assert model_of(ros, '/predictor') == deployed

    # the next update starts from the reset weights (seed 7), not from the deployed model;
    # fitted to the oldest 38 of the 50 new samples (the newest quarter is held out to judge it)
    X2, y2, _ = sigmoid_data(rng, 50)
    ends.feed(X2, y2)
    ends.diag(lambda d: count(d, 'samples held') == 50, '50 new samples held')
    reply = ends.call('train_now')
    assert reply.success and reply.message.startswith('deployed'), reply.message
    assert 'on 38 samples' in reply.message and 'on 12 rows' in reply.message, reply.message
    expected = train_update(X2[:38], y2[:38], NeuronModel.random_weights(N, 7), 0.0,
                            learning_rate=SIGMOID_LR, iterations=50, tolerance=0.0,
                            l2=DEFAULTS['prior'] / 38)  # the prior over the 38 rows fitted
    weights, bias = model_of(ros, '/trainer')
    np.testing.assert_allclose(weights, expected.weights, rtol=1e-9, atol=0)
    assert bias == pytest.approx(expected.bias, rel=1e-9)
    wait_model(ros, '/predictor', (weights, bias), 'the new model deployed')
    ros.spin_until(lambda: load_weights_file(path, num_features=N).weights.tolist() == weights,
                   TIMEOUT, 'the new model saved')


def test_a_switch_to_sigmoid_is_refused_while_it_would_train_on_labels_outside_0_1(ros):
    rng = np.random.default_rng(61)
    X, y = linear_data(rng, 100)
    outside = int(np.count_nonzero((y < 0.0) | (y > 1.0)))
    assert 0 < outside < 100
    ends = Ends(ros)
    ends.start_trainer(activation='linear', learning_rate=LINEAR_LR, predictor_node='')
    ends.pause()
    ends.feed(X, y)
    ends.diag(lambda d: count(d, 'samples held') == 100, '100 samples held')
    (result,) = ros.set_parameters('/trainer', {'activation': 'sigmoid'})
    assert not result.successful
    assert f'{outside} of the 100 samples held' in result.reason, result.reason
    assert ros.get_parameters('/trainer', ['activation'])['activation'] == 'linear'
    reply = ends.call('reset')  # drops them
    assert reply.success, reply.message
    (result,) = ros.set_parameters('/trainer', {'activation': 'sigmoid'})
    assert result.successful, result.reason


# ------------------------------------------------------------------------- start-up errors
@pytest.mark.parametrize('params, reason', [
    ({'num_features': 0}, 'out of range'),
    ({'weights': [1.0]}, f'weights must have num_features = {N}'),
    ({'loss': 'bce', 'activation': 'linear'}, "loss must fit activation 'linear'"),
    ({'predictor_node': 'prédicteur'}, 'predictor_node must be a node name'),
    ({'min_samples': 20, 'buffer_size': 10}, 'min_samples must be at most buffer_size (10)'),
    ({'diagnostics_period': 1e-300}, 'diagnostics_period must be 0 (off) or at least 0.01'),
    ({'qos_overrides': {'/labeled_samples': {'subscription': {'depth': -1}}}}, ''),
])
def test_bad_start_up_configuration_exits_2_with_the_reason(ros, params, reason):
    proc = ros.start('trainer', {'num_features': N, **params})
    proc.wait_for_output(r'cannot start: .*' + re.escape(reason))
    assert proc.proc.wait(timeout=20) == 2
    assert 'Traceback' not in proc.output()


def test_a_weights_file_path_that_is_not_a_file_stops_the_start_and_is_left_alone(ros,
                                                                                  tmp_path):
    path = tmp_path / 'models'
    path.mkdir()
    (path / 'mine.txt').write_text("not the trainer's")
    proc = ros.start('trainer', {'num_features': N, 'weights_file': str(path)})
    proc.wait_for_output(re.escape(f'weights file {path} is not a regular file'))
    assert proc.proc.wait(timeout=20) == 2
    assert (path / 'mine.txt').read_text() == "not the trainer's"
    assert not list(tmp_path.glob('models.corrupt-*'))
    assert 'Traceback' not in proc.output()


def test_a_weights_file_the_loss_cannot_train_stops_the_start(ros, tmp_path):
    path = tmp_path / 'weights.yaml'
    save_weights_file(path, [0.5, -1.0, 2.0, 0.25], 0.125, 'linear')
    before = path.read_bytes()
    proc = ros.start('trainer', {'num_features': N, 'loss': 'bce', 'weights_file': str(path)})
    proc.wait_for_output(re.escape("holds a model with activation 'linear', which loss 'bce' "
                                   'cannot train'))
    assert proc.proc.wait(timeout=20) == 2
    assert path.read_bytes() == before and 'Traceback' not in proc.output()


# ------------------------------------------------------------------------------- sim time
def test_updates_follow_ros_time_with_use_sim_time(ros):
    rng = np.random.default_rng(47)
    X, y, _ = sigmoid_data(rng, 100)
    ends = Ends(ros)
    clock = ros.publisher(Clock, '/clock')
    ends.start_trainer(use_sim_time=True, predictor_node='')
    ends.feed(X, y)
    ends.call('train_now')  # the samples are held (the services do not wait for the clock)
    ros.spin_for(0.75)  # three train periods of wall time, no /clock: no update, no status
    assert len(ends.losses) == 1 and not ends.diags
    ros.wait_for_subscribers(clock, 1, TIMEOUT)
    sim = {'ns': 100 * 10**9}

    def ticked_until(losses: int):
        def tick() -> bool:
            sim['ns'] += 20_000_000  # 0.02 s of simulated time per tick: slower than the wall
            clock.publish(Clock(clock=Time(sec=sim['ns'] // 10**9, nanosec=sim['ns'] % 10**9)))
            return len(ends.losses) >= losses
        ros.spin_until(tick, TIMEOUT, f'{losses - 1} update(s) driven by /clock')
        return sim['ns'] / 1e9
    ticked_until(2)  # the clock jumped from 0 to 100 s: the overdue timer fires at once
    first = ticked_until(3)
    last = ticked_until(5)
    # timer updates are 0.25 s of simulated time apart (less the lag of seeing the first one)
    assert last - first >= 2 * 0.25 - 0.1, (first, last)
    # the clock stops: so do the updates, however long the wall clock runs
    count_then = len(ends.losses)
    ros.spin_for(0.75)
    assert len(ends.losses) == count_then


# -------------------------------------------------------------------------------- signals
@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM])
def test_signals_exit_zero_while_training(ros, sig):
    rng = np.random.default_rng(37)
    X, y, _ = sigmoid_data(rng, 200)
    ends = Ends(ros)
    # Updates of 1.5 s back to back: the signal lands inside one, which runs to its end and
    # then finds the context shut down; that is the stop asked for, not a fatal error.
    trainer = ends.start_trainer(train_period=0.001, iterations_per_update=10**6, tolerance=0.0,
                                 max_update_seconds=1.5)
    ends.feed(X, y)
    ros.wait_for_messages(ends.losses, 1, TIMEOUT, 'a loss')
    assert trainer.stop(sig, timeout=10.0) == 0
    out = trainer.output()
    assert 'Traceback' not in out and 'FATAL' not in out and 'Exception' not in out, out


@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM])
def test_signals_exit_zero_during_a_train_now_update(ros, sig):
    rng = np.random.default_rng(41)
    X, y, _ = sigmoid_data(rng, 200)
    ends = Ends(ros)
    # No timer updates (a day apart): the only update is the one ~/train_now runs, of 3 s; the
    # signal lands inside it, in a service callback, which has no timer around it.
    trainer = ends.start_trainer(train_period=86400.0, iterations_per_update=10**6,
                                 tolerance=0.0, max_update_seconds=3.0)
    ends.feed(X, y)
    ends.diag(lambda d: count(d, 'samples held') == 200, 'all 200 samples held')
    client = ros.client(Trigger, '/trainer/train_now')
    ros.spin_until(lambda: client.wait_for_service(timeout_sec=0.0), TIMEOUT, 'train_now')
    idle_cpu = cpu_ticks(trainer.proc.pid)
    client.call_async(Trigger.Request())
    # the update is under way once the trainer has burnt a quarter second of CPU since the call
    ros.spin_until(lambda: cpu_ticks(trainer.proc.pid) - idle_cpu > 0.25 * CLK_TCK, TIMEOUT,
                   'the train_now update to start')
    assert trainer.stop(sig, timeout=10.0) == 0
    out = trainer.output()
    assert 'Traceback' not in out and 'FATAL' not in out and 'Exception' not in out, out


def test_an_update_keeps_to_its_time_budget_whatever_iterations_per_update_says(ros):
    rng = np.random.default_rng(13)
    X, y, _ = sigmoid_data(rng, 5000)
    ends = Ends(ros)
    ends.start_trainer(iterations_per_update=1_000_000, tolerance=0.0, max_update_seconds=0.2,
                       train_period=0.5)
    ends.feed(X, y, batches=5)
    ends.diag(lambda d: count(d, 'samples held') == 5000, 'all 5000 samples held')
    ends.diag(lambda d: count(d, 'updates deployed') >= 1, 'a deployed update')
    started = time.monotonic()
    reply = ends.call('train_now')  # a million steps would take minutes
    took = time.monotonic() - started
    assert reply.success and reply.message.startswith('deployed'), reply.message
    assert took < 5.0, f'train_now took {took:.1f} s with max_update_seconds 0.2'
    assert ends.call('enable_training', SetBool.Request(data=True)).success


def thread_niceness(pid: int) -> List[int]:
    """The niceness of every thread of ``pid`` (field 19 of /proc/<pid>/task/<tid>/stat)."""
    values = []
    for tid in os.listdir(f'/proc/{pid}/task'):
        try:
            stat = Path(f'/proc/{pid}/task/{tid}/stat').read_text()
        except FileNotFoundError:
            continue  # the thread ended
        values.append(int(stat[stat.rindex(')') + 2:].split()[16]))
    return values


@pytest.mark.parametrize('asked', [None, 0, 7])
def test_the_trainer_runs_every_thread_at_the_niceness_asked_for(ros, asked):
    inherited = os.getpriority(os.PRIO_PROCESS, 0)  # what the trainer starts at
    expected = max(inherited, 19 if asked is None else asked)
    ends = Ends(ros)
    trainer = ends.start_trainer(**({} if asked is None else {'niceness': asked}))
    rng = np.random.default_rng(3)
    X, y, _ = sigmoid_data(rng, 200)
    ends.feed(X, y)
    ros.wait_for_messages(ends.losses, 1, TIMEOUT, 'a loss')  # trained, middleware threads up
    values = thread_niceness(trainer.proc.pid)
    assert len(values) > 5 and set(values) == {expected}, values
    assert f'at niceness {expected}' in trainer.output()


def test_lower_priority_raises_every_thread_and_never_lowers():
    """In a process of its own: niceness, once raised, cannot be lowered again."""
    script = """if True:
        import os, threading
        from nn_one_node.ros.runtime import lower_priority
        ready, done = threading.Event(), threading.Event()
        def helper():
            ready.set()
            done.wait(10)
        t = threading.Thread(target=helper)
        t.start()
        ready.wait(10)
        print(lower_priority(5), lower_priority(3))
        later = []
        t2 = threading.Thread(target=lambda: later.append(os.getpriority(os.PRIO_PROCESS, 0)))
        t2.start(); t2.join()
        nices = set()
        for tid in os.listdir('/proc/self/task'):
            try:
                stat = open(f'/proc/self/task/{tid}/stat').read()
            except FileNotFoundError:
                continue  # t2, just ended
            nices.add(int(stat[stat.rindex(')') + 2:].split()[16]))
        done.set(); t.join()
        print(sorted(nices), later[0])
    """
    base = os.getpriority(os.PRIO_PROCESS, 0)
    done = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    out = done.stdout.split('\n')
    first = max(base, 5)
    assert out[0] == f'{first} {first}'  # 3 does not lower it
    assert out[1] == f'[{first}] {first}'  # the helper thread too, and a thread started after
