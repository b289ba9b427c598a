"""Faults against the installed trainer and predictor (issue 6): kills, restarts, a predictor
that never answers, signals.

* SIGKILL the trainer at seeded random moments while it writes its weights file, round after
  round, each round resuming from the file the last one left: the file is always a complete,
  loadable model, never truncated; the temporaries a kill leaves behind break nothing.
* Restart the trainer alone, the predictor alone, both together (SIGKILL each time): the
  predictor serves the last deployed weights from the weights file (``--params-file``), the
  trainer resumes from it, and the next deployment lands with no hand on the keyboard.
* A predictor whose ``set_parameters_atomically`` never answers (a fake in the test process):
  the trainer's services answer within a bound, samples are collected, updates go on, requests
  are not piled up, and the real predictor gets the model once it is back.
* SIGINT and SIGTERM, to a trainer in the middle of a write and to a predictor under load: exit
  code 0 within one second, and the weights file complete with no temporary left.
"""

import os
import random
import signal
import time

import numpy as np
import rclpy
from reliability_kit import (Diagnostics, TimedClient, batch_msg, get_parameters, msg_of, record,
                             tmp_files)
from rcl_interfaces.srv import SetParametersAtomically
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.qos import QoSProfile
from rclpy.task import Future
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import SetBool

from nn_one_node.model import NeuronModel, sigmoid
from nn_one_node.learning.weights_file import load_weights_file

TIMEOUT = 30.0
N = 4
# A model big enough that writing it takes a while (~45 kB of text per write), trained on a tiny
# buffer every millisecond, one small step per update (each lowers the loss, for thousands of
# updates): the trainer deploys and writes its file all the time. At niceness 0: the default 19
# lets any busy process starve it (with this test's busy-polling on one core and a loaded CI
# host on the other, writes came 0.3-0.4 s apart instead of 4 ms, and a round ran out of time).
WRITER_N = 2000
WRITER = {'num_features': WRITER_N, 'buffer_size': 64, 'min_samples': 1, 'train_period': 0.001,
          'iterations_per_update': 1, 'tolerance': 0.0, 'learning_rate': 0.05,
          'predictor_node': '', 'diagnostics_period': 0.0, 'niceness': 0}
# Rounds of the SIGKILL campaign: a few seconds each (a killed trainer's DDS participant lingers
# until its lease expires, and slows the discovery of the next one). More on demand:
# NN1_KILL_ROUNDS=200 make test ARGS="test/process/test_faults_process.py -k sigkill"
KILL_ROUNDS = int(os.environ.get('NN1_KILL_ROUNDS', '10'))


def writer_samples(rng, sign: float = 1.0):
    """64 fresh rows. A resumed model has standing: a candidate replaces it (and the file is
    written) only when better on rows it was not fitted to, so each round's rows follow the
    other ``sign`` of the concept than the round before, which its resumed model learned."""
    X = rng.normal(size=(64, WRITER_N))
    return batch_msg(np.column_stack([X, sigmoid(sign * (X[:, 0] - X[:, 1]))]))


def wait_for_writes(path, count, deadline, resend=None):
    """Busy-poll the file's identity (a replace gives a new inode) until it changed ``count``
    times. Bounded by ``deadline``. Until the first change, ``resend()`` every 0.25 s: a killed
    trainer's subscription stays in the graph until its lease expires, so the samples for its
    successor may have gone to the dead one only."""
    last = None
    changes = -1
    next_send = time.monotonic() + 0.25
    while changes < count:
        now = time.monotonic()
        assert now < deadline, (f'{path} was rewritten {max(changes, 0)} of {count} times '
                                f'in time' + (' (no sample reached the trainer?)'
                                              if changes <= 0 else ''))
        if resend is not None and changes <= 0 and now > next_send:
            resend()
            next_send = now + 0.25
        try:
            st = os.stat(path)
            ident = (st.st_ino, st.st_mtime_ns)
        except FileNotFoundError:
            ident = None
        if ident != last:
            changes += 1
            last = ident


def wait_inside_a_write(path, stale, deadline):
    """Busy-poll until a new temporary of ``path`` exists: the writer is inside
    save_weights_file, between its mkstemp and its os.replace."""
    while not set(tmp_files(path.parent, path.name)) - stale:
        assert time.monotonic() < deadline, 'no write seen'


def test_sigkill_while_the_trainer_writes_never_leaves_a_broken_weights_file(ros, tmp_path):
    path = tmp_path / 'model' / 'weights.yaml'
    rng = np.random.default_rng(2)
    pick = random.Random(6)  # seeded: the same kill moments on every run
    samples = ros.publisher(Float64MultiArray, 'labeled_samples', QoSProfile(depth=10))
    mid_write = 0
    left_behind = 0
    stale = set()  # temporaries left by earlier kills (the next start removes them)
    for rnd in range(KILL_ROUNDS):
        trainer = ros.start('trainer', {**WRITER, 'weights_file': str(path)})
        if rnd:
            trainer.wait_for_output(f'resumed the model from {path}', TIMEOUT)
        ros.wait_for_subscribers(samples, 1, TIMEOUT)
        sign = (-1.0) ** rnd

        def send():
            samples.publish(writer_samples(rng, sign))
        send()
        deadline = time.monotonic() + TIMEOUT
        if pick.random() < 0.5:
            # at a random write: after 1 to 30 completed ones, at once
            wait_for_writes(path, pick.randint(1, 30), deadline, send)
            trainer.proc.send_signal(signal.SIGKILL)
            trainer.proc.wait(timeout=10)
        else:
            wait_for_writes(path, pick.randint(1, 10), deadline, send)
            wait_inside_a_write(path, stale, deadline)
            trainer.proc.send_signal(signal.SIGKILL)
            trainer.proc.wait(timeout=10)
        trainer.kill()  # closes the log; the process is gone already
        assert trainer.proc.returncode == -signal.SIGKILL
        left = set(tmp_files(path.parent, path.name)) - stale
        mid_write += bool(left)  # the kill cut a write short: a temporary is left
        left_behind += len(left)
        stale |= left
        # the file: complete (checksum), a valid model for these features, finite
        content = load_weights_file(path, num_features=WRITER_N)
        assert np.all(np.isfinite(content.weights)) and np.isfinite(content.bias)
    # the temporaries left by kills inside a write are never read: a fresh trainer removes
    # them and resumes
    trainer = ros.start('trainer', {**WRITER, 'weights_file': str(path)})
    trainer.wait_for_output(f'resumed the model from {path}', TIMEOUT)
    assert tmp_files(path.parent, path.name) == [], 'a temporary survived a start'
    assert 'left by a writer killed mid-write' in '\n'.join(p.output() for p in ros.processes)
    resumed = load_weights_file(path, num_features=WRITER_N)
    got = get_parameters(ros, '/trainer', ['weights', 'bias'], TIMEOUT)
    assert list(got['weights']) == resumed.weights.tolist() and got['bias'] == resumed.bias
    logs = '\n'.join(p.output() for p in ros.processes)
    assert 'unusable' not in logs and 'Traceback' not in logs
    assert not [p for p in os.listdir(path.parent) if '.corrupt-' in p]
    temporaries = tmp_files(path.parent, path.name)
    assert mid_write >= 1, 'no kill landed inside a write: the test did not test it'
    record('sigkill_while_writing', {
        'rounds': KILL_ROUNDS, 'kills_inside_a_write': mid_write,
        'files_loadable_after_kill': KILL_ROUNDS, 'temporaries_left_by_kills': left_behind,
        'temporaries_left': len(temporaries),
        'model_features': WRITER_N, 'file_bytes': path.stat().st_size,
    })


# --------------------------------------------------------------------------------- restarts
class Robot:
    """A predictor and a trainer sharing a weights file, started as a launch file does: the
    predictor gets the weights file as a params file when it exists."""

    def __init__(self, ros, path) -> None:
        self.ros = ros
        self.path = path
        self.rng = np.random.default_rng(9)
        self.samples = ros.publisher(Float64MultiArray, 'labeled_samples', QoSProfile(depth=100))
        self.features = ros.publisher(Float64MultiArray, 'features')
        self.out = ros.collect(Float64MultiArray, 'prediction')
        self.diags = Diagnostics(ros)
        self.trainer = self.predictor = None

    def start_predictor(self):
        files = [self.path] if self.path.exists() else []
        self.predictor = self.ros.start('predictor', {'num_features': N},
                                        params_files=files)
        self.ros.handshake(self.features, msg_of([0.0] * N), self.out, TIMEOUT)

    def start_trainer(self):
        self.trainer = self.ros.start('trainer', {
            'num_features': N, 'weights_file': str(self.path), 'train_period': 0.1,
            'diagnostics_period': 0.1, 'deploy_timeout': 1.0})
        self.ros.wait_for_subscribers(self.samples, 1, TIMEOUT)

    def kill(self, proc, what):
        proc.kill()
        self.ros.spin_until(lambda: not any(
            p.alive() for p in self.ros.processes if p is proc), TIMEOUT, what)

    def model(self, node):
        got = get_parameters(self.ros, node, ['weights', 'bias'], TIMEOUT)
        return [float(v) for v in got['weights']], float(got['bias'])

    def file_model(self):
        c = load_weights_file(self.path, num_features=N)
        return c.weights.tolist(), c.bias

    def teach(self, w_true):
        """Samples from a new truth: the trainer's next deployments change the model. Sent
        again until the trainer counts them (a killed trainer's subscription stays in the graph
        for a while, and may have been the only one to get them)."""
        X = self.rng.normal(size=(300, N))
        msg = batch_msg(np.column_stack([X, sigmoid(X @ w_true)]))
        self.enable(True)
        deadline = time.monotonic() + TIMEOUT
        while True:
            before = self.diags.wait('trainer', lambda d: True, TIMEOUT, 'a trainer status')
            self.samples.publish(msg)
            try:
                self.diags.wait('trainer', lambda d: int(d['samples received']) > int(
                    before['samples received']), 2.0, 'the samples counted')
                return
            except AssertionError:
                assert time.monotonic() < deadline, 'the trainer never got the samples'

    def enable(self, on):
        reply = self.ros.call(SetBool, '/trainer/enable_training', SetBool.Request(data=on),
                              TIMEOUT)
        assert reply.success, reply.message

    def wait_deployed(self, old, what):
        """A model other than ``old`` deployed; then training paused, and the model in force
        the same in the trainer, the file and the predictor: the last deployed model."""
        self.ros.spin_until(lambda: self.model('/predictor') != old, TIMEOUT, what)
        self.enable(False)

        def in_sync():
            t = self.model('/trainer')
            return self.model('/predictor') == t and self.file_model() == t and t
        return self.ros.spin_until(in_sync, TIMEOUT, f'{what}: all in sync')

    def predicts(self, model):
        x = self.rng.normal(size=(5, N))
        reply = self.ros.ask(self.features, batch_msg(x), self.out, TIMEOUT)
        np.testing.assert_allclose(
            reply.data, NeuronModel(N, weights=model[0], bias=model[1]).predict(x),
            rtol=1e-12, atol=1e-15)


def test_restart_each_node_alone_and_both_together_and_deployment_resumes(ros, tmp_path):
    robot = Robot(ros, tmp_path / 'weights.yaml')
    robot.start_predictor()
    robot.start_trainer()
    robot.teach(np.array([1.0, -1.0, 0.5, 0.0]))
    model = robot.wait_deployed(([0.0] * N, 0.0), 'the first deployment')
    rounds = []

    # the trainer alone: it resumes from the file, the predictor keeps serving meanwhile
    robot.kill(robot.trainer, 'the trainer to die')
    robot.predicts(model)
    robot.start_trainer()
    robot.trainer.wait_for_output('resumed the model from', TIMEOUT)
    assert robot.model('/trainer') == model
    robot.teach(np.array([-1.0, 1.0, 0.0, 0.5]))
    model = robot.wait_deployed(model, 'a deployment by the restarted trainer')
    robot.predicts(model)
    rounds.append('trainer')

    # the predictor alone: back with the last deployed model from the file at once
    robot.kill(robot.predictor, 'the predictor to die')
    robot.start_predictor()
    assert robot.model('/predictor') == model == robot.file_model()
    robot.predicts(model)
    robot.teach(np.array([0.5, 0.5, -1.0, 1.0]))
    model = robot.wait_deployed(model, 'a deployment to the restarted predictor')
    robot.predicts(model)
    rounds.append('predictor')

    # both together
    robot.kill(robot.predictor, 'the predictor to die')
    robot.kill(robot.trainer, 'the trainer to die')
    assert robot.file_model() == model
    robot.start_predictor()
    robot.start_trainer()
    assert robot.model('/predictor') == model
    robot.trainer.wait_for_output('resumed the model from', TIMEOUT)
    assert robot.model('/trainer') == model
    robot.predicts(model)
    robot.teach(np.array([0.0, -0.5, 1.0, -1.0]))
    model = robot.wait_deployed(model, 'a deployment after both restarted')
    robot.predicts(model)
    rounds.append('both')
    logs = '\n'.join(p.output() for p in ros.processes)
    assert 'Traceback' not in logs and 'unusable' not in logs
    record('restarts', {'restarted': rounds, 'kills': 4, 'deployments_resumed': len(rounds),
                        'predictor_served_file_model_at_start': 2})


# ------------------------------------------------------------------ a predictor that hangs
def test_a_predictor_that_never_answers_stalls_nothing_and_gets_the_model_when_back(ros):
    # A node named 'predictor' whose set_parameters_atomically takes requests and never
    # answers (an await on a future nobody completes), in this process: what a wedged or
    # overloaded predictor looks like to the trainer.
    fake = rclpy.create_node('predictor', context=ros.context, start_parameter_services=False)
    never = Future()
    requests = []

    async def swallow(request, response):
        requests.append(time.monotonic())
        await never
        return response
    fake.create_service(SetParametersAtomically, '/predictor/set_parameters_atomically', swallow,
                        callback_group=ReentrantCallbackGroup())  # take every request
    ros.executor.add_node(fake)
    deploy_timeout = 0.5
    trainer = ros.start('trainer', {'num_features': N, 'train_period': 0.05,
                                    'deploy_timeout': deploy_timeout,
                                    'diagnostics_period': 0.1, 'buffer_size': 20_000})
    diags = Diagnostics(ros)
    samples = ros.publisher(Float64MultiArray, 'labeled_samples', QoSProfile(depth=1000))
    ros.wait_for_subscribers(samples, 1, TIMEOUT)
    rng = np.random.default_rng(4)
    X = rng.normal(size=(50, N))
    samples.publish(batch_msg(np.column_stack([X, sigmoid(X[:, 0])])))
    ros.spin_until(lambda: requests, TIMEOUT, 'a deployment request to the fake predictor')

    # for a while: samples stream in, updates go on, every service answers at once
    latencies = []
    sent = 0
    enable = TimedClient(ros, SetBool, '/trainer/enable_training', TIMEOUT)
    d0 = diags.wait('trainer', lambda d: True, TIMEOUT, 'a status')
    start = time.monotonic()
    while time.monotonic() - start < 4.0:
        X = rng.normal(size=(50, N))
        samples.publish(batch_msg(np.column_stack([X, sigmoid(X[:, 0])])))
        sent += 50
        reply, seconds = enable.call(SetBool.Request(data=True))
        latencies.append(seconds)
        assert reply.success
    received = int(d0['samples received'])
    d = diags.wait('trainer', lambda d: int(d['samples received']) == received + sent,
                   TIMEOUT, f'every sample collected ({received} + {sent})')
    assert int(d['updates']) >= int(d0['updates']) + 20, (d0, d)
    assert d['predictor in sync'] == 'False'
    # an update on the full ring takes some 10 ms here; 1 s allows for a shared CI machine
    assert max(latencies) < 1.0, f'a service answered after {max(latencies):.3f} s'
    # one request in flight at a time, a new one only after deploy_timeout: retried, and no
    # pile-up
    elapsed = time.monotonic() - requests[0]
    assert 2 <= len(requests) <= elapsed / deploy_timeout + 2, (len(requests), elapsed)
    assert min(np.diff(requests)) >= deploy_timeout * 0.9, np.diff(requests)
    trainer.wait_for_output(f'did not confirm the deployment within {deploy_timeout} s', TIMEOUT)

    # the fake goes, the real predictor comes: it gets the model in force
    ros.executor.remove_node(fake)
    fake.destroy_node()
    assert ros.call(SetBool, '/trainer/enable_training', SetBool.Request(data=False),
                    TIMEOUT).success
    model = ros.get_parameters('/trainer', ['weights', 'bias'], TIMEOUT)
    ros.start('predictor', {'num_features': N})
    ros.spin_until(lambda: ros.get_parameters('/predictor', ['weights', 'bias'], TIMEOUT)
                   == model, TIMEOUT, 'the model deployed to the real predictor')
    assert trainer.alive() and 'Traceback' not in trainer.output()
    record('hung_predictor', {
        'seconds_hung': round(elapsed, 1), 'requests_sent_to_hung_predictor': len(requests),
        'service_calls': len(latencies), 'service_latency_max_ms': round(max(latencies) * 1e3, 1),
        'service_latency_median_ms': round(float(np.median(latencies)) * 1e3, 1),
        'samples_collected_meanwhile': sent,
        'updates_meanwhile': int(d['updates']) - int(d0['updates']),
    })


# ---------------------------------------------------------------------------------- signals
def test_sigint_and_sigterm_exit_zero_within_a_second_with_the_file_complete(ros, tmp_path):
    path = tmp_path / 'weights.yaml'
    rng = np.random.default_rng(12)
    samples = ros.publisher(Float64MultiArray, 'labeled_samples', QoSProfile(depth=10))
    features = ros.publisher(Float64MultiArray, 'features')
    exits = []
    for rnd, sig in enumerate([signal.SIGINT, signal.SIGTERM] * 3):
        # the trainer, stopped in the middle of a write to its weights file
        trainer = ros.start('trainer', {**WRITER, 'weights_file': str(path)})
        ros.wait_for_subscribers(samples, 1, TIMEOUT)
        sign = (-1.0) ** rnd
        samples.publish(writer_samples(rng, sign))
        deadline = time.monotonic() + TIMEOUT
        wait_for_writes(path, 2 + rnd, deadline,
                        lambda: samples.publish(writer_samples(rng, sign)))
        wait_inside_a_write(path, set(), deadline)
        t0 = time.monotonic()
        code = trainer.stop(sig, timeout=1.0)  # fails the test if it takes longer
        exits.append(('trainer', sig.name, time.monotonic() - t0))
        assert code == 0, trainer.tail()
        assert tmp_files(path.parent, path.name) == [], 'a clean exit left a temporary'
        load_weights_file(path, num_features=WRITER_N)
        ros.spin_until(lambda: samples.get_subscription_count() == 0, TIMEOUT,
                       'the trainer to leave the graph')

        # the predictor, stopped while features stream in (about 1 kHz from this process)
        predictor = ros.start('predictor', {'num_features': N})
        ros.wait_for_subscribers(features, 1, TIMEOUT)
        end = time.monotonic() + 0.3
        while time.monotonic() < end:
            features.publish(msg_of(rng.normal(size=N)))
            ros.executor.spin_once(timeout_sec=0.001)
        t0 = time.monotonic()
        code = predictor.stop(sig, timeout=1.0)
        exits.append(('predictor', sig.name, time.monotonic() - t0))
        assert code == 0, predictor.tail()
        assert 'Traceback' not in predictor.output() + trainer.output()
        ros.spin_until(lambda: features.get_subscription_count() == 0, TIMEOUT,
                       'the predictor to leave the graph')
    record('signals', {
        'stops': len(exits), 'exit_codes_nonzero': 0,
        'exit_seconds_max': {k: round(max(t for n, s, t in exits if f'{n} {s}' == k), 3)
                             for k in sorted({f'{n} {s}' for n, s, _ in exits})},
    })
