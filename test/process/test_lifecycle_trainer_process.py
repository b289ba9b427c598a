"""The installed `trainer --managed` as a process, driven through every lifecycle transition over
real DDS with the lifecycle_msgs services: what it serves and publishes in each state, a
configure that fails with its reason, the buffer and the model kept across deactivate /
activate, exit code 0 with the weights file saved on shutdown from each state, and a deployment
that waits for a managed predictor to be active."""

import signal

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_client import Lifecycle, topics_of
from rclpy.qos import QoSProfile
from std_msgs.msg import Float64, Float64MultiArray
from std_srvs.srv import Trigger

from nn_one_node.ros.codecs import matrix_to_msg
from nn_one_node.model import NeuronModel
from nn_one_node.learning.weights_file import load_weights_file, save_weights_file

TIMEOUT = 30.0
N = 3
W_TRUE = np.array([1.5, -2.0, 0.5])


def data(rng, m):
    X = rng.normal(size=(m, N))
    y = (NeuronModel(N, weights=W_TRUE, bias=0.2).predict(X) > rng.uniform(size=m)) * 1.0
    return matrix_to_msg(np.column_stack([X, y]))


def trainer_status(diags):
    for msg in reversed(diags):
        for status in msg.status:
            if status.name.endswith(': trainer'):
                return status.message, {kv.key: kv.value for kv in status.values}
    return None


def fresh(ros, diags, check, what):
    diags.clear()
    return ros.spin_until(lambda: (s := trainer_status(diags)) and check(*s) and s, TIMEOUT,
                          f'trainer diagnostics: {what}')


def start_trainer(ros, **params):
    values = {'num_features': N, 'train_period': 0.2, 'diagnostics_period': 0.2,
              'metrics_period': 0.2, 'min_samples': 10, 'predictor_node': ''}
    values.update(params)
    proc = ros.start('trainer', values, args=['--managed'])
    node = Lifecycle(ros, '/trainer')
    node.wait_for_state('unconfigured', TIMEOUT)
    return proc, node


def model_of(ros, node):
    got = ros.get_parameters(node, ['weights', 'bias'], TIMEOUT)
    return [float(v) for v in got['weights']], float(got['bias'])


def test_every_transition_of_the_trainer_and_what_each_state_does(ros, tmp_path):
    path = tmp_path / 'model.yaml'
    proc, node = start_trainer(ros, weights_file=str(path))
    samples = ros.publisher(Float64MultiArray, 'labeled_samples', QoSProfile(depth=1000))
    losses = ros.collect(Float64, '/trainer/loss')
    accuracy = ros.collect(Float64, '/trainer/metrics/accuracy')
    diags = ros.collect(DiagnosticArray, '/diagnostics')
    rng = np.random.default_rng(3)

    # unconfigured: parameters only; no subscription, no service of ours, nothing published
    assert topics_of(ros, 'trainer', kind='subscribers') == []
    (r,) = ros.set_parameters('/trainer', {'learning_rate': 1.5})
    assert r.successful
    ros.spin_for(0.6)
    assert trainer_status(diags) is None and not path.exists()

    # configure: inactive; samples ignored and counted, nothing trained or published but
    # /diagnostics, ~/train_now refused with the reason
    assert node.configure() and node.state() == 'inactive'
    ros.wait_for_subscribers(samples, 1, TIMEOUT)
    for _ in range(3):
        samples.publish(data(rng, 50))
    message, values = fresh(ros, diags, lambda m, v: v['messages ignored (inactive)'] == '3',
                            'the ignored messages counted')
    assert message.startswith('inactive') and values['lifecycle state'] == 'inactive'
    assert values['samples held'] == '0' and values['updates'] == '0'
    reply = ros.call(Trigger, '/trainer/train_now', Trigger.Request(), TIMEOUT)
    assert not reply.success and 'inactive' in reply.message
    assert losses == [] and accuracy == []

    # activate: samples kept and trained on, ~/loss and the metrics published
    assert node.activate() and node.state() == 'active'
    samples.publish(data(rng, 200))
    ros.spin_until(lambda: losses and accuracy, TIMEOUT, 'a loss and a metric')
    message, values = fresh(ros, diags, lambda m, v: v['samples held'] == '200', 'held')
    assert values['lifecycle state'] == 'active' and not message.startswith('inactive')
    ros.spin_until(lambda: path.exists(), TIMEOUT, 'the weights file written')

    # deactivate: buffer and model kept, input ignored, nothing published but /diagnostics
    assert node.deactivate() and node.state() == 'inactive'
    model = model_of(ros, '/trainer')
    ros.spin_for(0.5)  # a tick in flight at the transition
    losses.clear()
    accuracy.clear()
    samples.publish(data(rng, 100))
    message, values = fresh(ros, diags, lambda m, v: v['messages ignored (inactive)'] == '4',
                            'ignored while inactive (counted since configure)')
    assert message.startswith('inactive') and values['samples held'] == '200'
    ros.spin_for(0.6)
    assert losses == [] and accuracy == []
    assert model_of(ros, '/trainer') == model

    # activate again: the same buffer and model, training resumes
    assert node.activate()
    _, values = fresh(ros, diags, lambda m, v: v['lifecycle state'] == 'active', 'active')
    assert values['samples held'] == '200'
    samples.publish(data(rng, 100))
    ros.spin_until(lambda: losses, TIMEOUT, 'a loss after activation')
    fresh(ros, diags, lambda m, v: v['samples held'] == '300', 'the buffer kept and added to')

    # cleanup: unconfigured, buffer released, topics gone; configure again resumes the file
    assert node.deactivate()
    model = model_of(ros, '/trainer')
    assert node.cleanup() and node.state() == 'unconfigured'
    ros.spin_until(lambda: topics_of(ros, 'trainer', kind='subscribers') == [], TIMEOUT,
                   'the subscription gone')
    assert node.configure()
    _, values = fresh(ros, diags, lambda m, v: True, 'configured again')
    assert values['samples held'] == '0'
    saved = load_weights_file(str(path), num_features=N)
    np.testing.assert_allclose(model_of(ros, '/trainer')[0], saved.weights, rtol=0, atol=1e-12)
    np.testing.assert_allclose(saved.weights, model[0], rtol=0, atol=1e-12)
    assert node.shutdown()
    assert proc.proc.wait(timeout=TIMEOUT) == 0, proc.tail()
    assert 'Traceback' not in proc.output()


def test_an_unusable_weights_file_fails_configure_and_a_corrupt_one_is_moved_aside(ros,
                                                                                  tmp_path):
    proc, node = start_trainer(ros, weights_file=str(tmp_path))  # a directory
    assert not node.configure()
    proc.wait_for_output('configure failed: ValueError: .*' + str(tmp_path))
    assert node.state() == 'unconfigured' and proc.alive() and tmp_path.is_dir()
    assert proc.stop(signal.SIGINT) == 0

    path = tmp_path / 'model.yaml'
    path.write_text('weights: [1.0, oops\n')
    proc, node = start_trainer(ros, weights_file=str(path))
    assert node.configure() and node.state() == 'inactive'
    proc.wait_for_output('is unusable .* moved aside .* starting fresh')
    assert any(p.name.startswith('model.yaml.corrupt-') for p in tmp_path.iterdir())
    assert node.shutdown()
    assert proc.proc.wait(timeout=TIMEOUT) == 0, proc.tail()


@pytest.mark.parametrize('state', ['unconfigured', 'inactive', 'active'])
def test_shutdown_from_each_state_exits_0_with_the_weights_file_saved(ros, tmp_path, state):
    path = tmp_path / 'model.yaml'
    save_weights_file(str(path), np.array([0.25, -0.5, 1.0]), 0.125, 'sigmoid')
    proc, node = start_trainer(ros, weights_file=str(path))
    if state != 'unconfigured':
        assert node.configure()
    if state == 'active':
        assert node.activate()
        (r,) = ros.set_parameters('/trainer', {'weights': [2.0, 1.0, -1.0]})  # by hand
        assert r.successful
    assert node.state() == state
    assert node.shutdown()
    assert proc.proc.wait(timeout=TIMEOUT) == 0, proc.tail()
    assert f'shutting down from {state}' in proc.output()
    saved = load_weights_file(str(path), num_features=N)
    assert list(saved.weights) == ([2.0, 1.0, -1.0] if state == 'active'
                                   else [0.25, -0.5, 1.0])


def test_the_trainer_deploys_only_to_an_active_predictor(ros, tmp_path):
    """Trainer active, managed predictor inactive: no deployment, and the trainer's diagnostics
    say why; the predictor activated, the model arrives."""
    path = tmp_path / 'model.yaml'
    resumed = [0.75, -1.5, 2.25]
    save_weights_file(str(path), np.array(resumed), -0.5, 'sigmoid')
    pred = ros.start('predictor', {'num_features': N, 'diagnostics_period': 0.2},
                     args=['--managed'])
    predictor = Lifecycle(ros, '/predictor')
    predictor.wait_for_state('unconfigured', TIMEOUT)
    assert predictor.configure()
    proc, trainer = start_trainer(ros, weights_file=str(path), predictor_node='predictor')
    diags = ros.collect(DiagnosticArray, '/diagnostics')
    assert trainer.configure() and trainer.activate()
    message, values = fresh(
        ros, diags, lambda m, v: v.get('predictor lifecycle state') == 'inactive',
        'the predictor seen inactive')
    assert 'waiting for /predictor to be active (it is inactive)' in message
    assert values['predictor in sync'] == 'False'
    ros.spin_for(1.0)  # several trainer ticks
    assert model_of(ros, '/predictor') == ([0.0] * N, 0.0)

    assert predictor.activate()
    ros.spin_until(lambda: model_of(ros, '/predictor') == (resumed, -0.5), TIMEOUT,
                   'the model deployed to the active predictor')
    fresh(ros, diags, lambda m, v: v['predictor in sync'] == 'True', 'in sync')
    pub = ros.publisher(Float64MultiArray, 'features')
    out = ros.collect(Float64MultiArray, 'prediction')
    x = [0.3, -0.2, 0.9]
    ros.handshake(pub, Float64MultiArray(data=x), out)
    got = ros.ask(pub, Float64MultiArray(data=x), out).data
    expected = NeuronModel(N, weights=resumed, bias=-0.5).predict(x)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-15)

    # the trainer deactivated and activated: the predictor's predictions unchanged
    assert trainer.deactivate() and trainer.activate()
    fresh(ros, diags, lambda m, v: v['lifecycle state'] == 'active', 'active again')
    np.testing.assert_allclose(ros.ask(pub, Float64MultiArray(data=x), out).data, got,
                               rtol=0, atol=0)
    assert trainer.shutdown() and predictor.shutdown()
    assert proc.proc.wait(timeout=TIMEOUT) == 0 and pred.proc.wait(timeout=TIMEOUT) == 0
