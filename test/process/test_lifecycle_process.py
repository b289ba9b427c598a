"""The installed `predictor --managed` as a process, driven through every lifecycle transition
over real DDS with the lifecycle_msgs services, as `ros2 lifecycle` and nav2_lifecycle_manager
drive it: what it publishes and subscribes in each state, a configure that fails with its reason,
the model kept across deactivate / activate, and exit code 0 on shutdown from each state."""

import signal

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_client import Lifecycle, topics_of
from lifecycle_msgs.msg import Transition
from std_msgs.msg import Float64MultiArray

from nn_one_node.model import NeuronModel

W = [0.5, -1.25, 2.0]
B = 0.1
X = [0.3, -0.2, 0.9]
# what the node offers before configure: the lifecycle's own topic and rclpy's, nothing of ours
BARE_PUBLISHERS = ['/parameter_events', '/predictor/transition_event', '/rosout']


def one(values):
    return Float64MultiArray(data=[float(v) for v in values])


def start_managed(ros, **params):
    values = {'num_features': 3, 'weights': W, 'bias': B, 'diagnostics_period': 0.2}
    values.update(params)
    proc = ros.start('predictor', values, args=['--managed'])
    node = Lifecycle(ros, '/predictor')
    node.wait_for_state('unconfigured')
    return proc, node


def predictor_status(diags):
    """The newest DiagnosticStatus of the predictor: (message, key/values), or None."""
    for msg in reversed(diags):
        for status in msg.status:
            if status.name.endswith('predictor: predictor'):
                return status.message, {kv.key: kv.value for kv in status.values}
    return None


def fresh_status(ros, diags, what):
    """The predictor's status from a /diagnostics message published after this call."""
    diags.clear()
    return ros.spin_until(lambda: predictor_status(diags), 10.0, what)


def silent_for(ros, pub, out, x, seconds=1.0):
    """Publish ``x`` a few times over ``seconds``: no prediction may come back."""
    for _ in range(5):
        pub.publish(one(x))
        ros.spin_for(seconds / 5)
    return out == []


def test_every_transition_and_what_each_state_serves(ros):
    proc, node = start_managed(ros)
    pub = ros.publisher(Float64MultiArray, 'features')
    out = ros.collect(Float64MultiArray, 'prediction')
    diags = ros.collect(DiagnosticArray, '/diagnostics')

    # unconfigured: parameters declared and settable; no topic of ours, nothing published
    assert node.available() == {'unconfigured -[configure]-> configuring',
                                'unconfigured -[shutdown]-> shuttingdown'}
    assert len(node.available(graph=True)) > 10  # the whole standard graph
    assert ros.get_parameters('/predictor', ['num_features'])['num_features'] == 3
    (r,) = ros.set_parameters('/predictor', {'bias': B})
    assert r.successful
    ros.spin_until(lambda: topics_of(ros, 'predictor') == BARE_PUBLISHERS, 10.0,
                   "the predictor's publishers in the graph")
    assert topics_of(ros, 'predictor', kind='subscribers') == []
    assert silent_for(ros, pub, out, X) and predictor_status(diags) is None

    # configure: inactive; the topics exist, input is ignored and counted, /diagnostics says so
    assert node.configure() and node.state() == 'inactive'
    assert node.available() == {'inactive -[activate]-> activating',
                                'inactive -[cleanup]-> cleaningup',
                                'inactive -[shutdown]-> shuttingdown'}
    ros.wait_for_subscribers(pub, 1)
    assert '/prediction' in topics_of(ros, 'predictor')
    assert silent_for(ros, pub, out, X)
    message, values = ros.spin_until(
        lambda: (s := predictor_status(diags)) and int(s[1]['messages ignored (inactive)']) >= 5
        and s, 10.0, 'the ignored messages counted in /diagnostics')
    assert message.startswith('inactive') and values['lifecycle state'] == 'inactive'
    assert values['messages received'] == '0' and values['messages predicted'] == '0'

    # activate: served, as the model computes it
    assert node.activate() and node.state() == 'active'
    ros.handshake(pub, one(X), out)
    expected = NeuronModel(3, weights=W, bias=B).predict(X)
    np.testing.assert_allclose(ros.ask(pub, one(X), out).data, expected, rtol=0, atol=1e-15)
    message, values = fresh_status(ros, diags, 'an active /diagnostics')
    assert message == 'serving' and values['lifecycle state'] == 'active'

    # deactivate: silent again but for /diagnostics; activate: served again
    assert node.deactivate() and node.state() == 'inactive'
    out.clear()
    assert silent_for(ros, pub, out, X)
    message, values = fresh_status(ros, diags, 'an inactive /diagnostics')
    assert message.startswith('inactive') and values['lifecycle state'] == 'inactive'
    assert node.activate()
    ros.handshake(pub, one(X), out)
    np.testing.assert_allclose(ros.ask(pub, one(X), out).data, expected, rtol=0, atol=1e-15)

    # cleanup (from inactive): back to unconfigured, our topics gone, /diagnostics silent
    assert node.deactivate() and node.cleanup() and node.state() == 'unconfigured'
    ros.spin_until(lambda: topics_of(ros, 'predictor') == BARE_PUBLISHERS, 10.0,
                   "the predictor's topics gone after cleanup")
    assert topics_of(ros, 'predictor', kind='subscribers') == []
    diags.clear()
    ros.spin_for(0.6)  # three diagnostics periods
    assert predictor_status(diags) is None

    # and configured again from the parameters, which kept their values
    assert node.configure() and node.activate()
    ros.handshake(pub, one(X), out)
    np.testing.assert_allclose(ros.ask(pub, one(X), out).data, expected, rtol=0, atol=1e-15)
    assert node.shutdown()
    assert proc.proc.wait(timeout=20) == 0, proc.tail()
    assert 'shutting down from active' in proc.output()


@pytest.mark.parametrize('executor', ['events', 'single_threaded'])
def test_transitions_by_label_and_ones_not_available_now(ros, executor):
    """`ros2 lifecycle set /predictor configure` sends the label; a transition the state does
    not offer is refused (success False) and changes nothing (rclpy alone would end the
    process); on either executor."""
    proc, node = start_managed(ros, executor=executor)
    assert not node.change(Transition.TRANSITION_ACTIVATE)  # not from unconfigured
    assert not node.change(0, label='no_such_transition')
    assert node.state() == 'unconfigured'
    assert node.change(0, label='configure') and node.state() == 'inactive'
    assert node.change(0, label='activate') and node.state() == 'active'
    assert not node.change(Transition.TRANSITION_CLEANUP)  # not from active
    assert node.state() == 'active' and proc.alive()
    assert 'transition 2 refused: not available from active' in proc.output()
    assert node.shutdown()
    assert proc.proc.wait(timeout=20) == 0, proc.tail()


@pytest.mark.parametrize('setting, reason', [
    ({'weights': [1.0, 2.0]}, 'weights must have num_features = 3 values, got 2'),
    ({'activation': 'relu'}, "activation must be one of 'sigmoid', 'linear'"),
    ({'bias': float('nan')}, 'bias must be a finite number'),
])
def test_a_bad_parameter_fails_configure_with_the_reason(ros, setting, reason):
    """Set while unconfigured (accepted: configure judges the whole set), the bad value fails
    configure: the reason logged, the node unconfigured and serving its services; fixed, it
    configures."""
    proc, node = start_managed(ros)
    (r,) = ros.set_parameters('/predictor', setting)
    assert r.successful, r.reason
    assert not node.configure()
    assert node.state() == 'unconfigured' and proc.alive()
    proc.wait_for_output(f'configure failed: ValueError: invalid parameters: .*{reason}')
    assert 'Traceback' not in proc.output()
    assert topics_of(ros, 'predictor', kind='subscribers') == []
    good = {'weights': W, 'activation': 'sigmoid', 'bias': B}
    (r,) = ros.set_parameters('/predictor', {k: good[k] for k in setting})
    assert r.successful
    assert node.configure() and node.activate()
    pub = ros.publisher(Float64MultiArray, 'features')
    out = ros.collect(Float64MultiArray, 'prediction')
    ros.handshake(pub, one(X), out)
    expected = NeuronModel(3, weights=W, bias=B).predict(X)
    np.testing.assert_allclose(ros.ask(pub, one(X), out).data, expected, rtol=0, atol=1e-15)
    # configured, the parameter callback judges changes again
    (r,) = ros.set_parameters('/predictor', setting)
    assert not r.successful and r.reason


@pytest.mark.parametrize('params, reason', [
    ({'weights': [1.0]}, 'weights must have num_features = 3'),
    ({'qos_overrides': {'/features': {'subscription': {'reliability': 'bogus'}}}}, 'bogus'),
])
def test_a_bad_start_up_configuration_fails_configure_not_the_process(ros, params, reason):
    """What makes the plain predictor exit 2 leaves the managed one unconfigured."""
    proc, node = start_managed(ros, **params)
    assert not node.configure()
    proc.wait_for_output(f'configure failed: .*{reason}')
    assert node.state() == 'unconfigured' and proc.alive()
    assert proc.stop(signal.SIGINT) == 0


def test_deactivate_activate_and_cleanup_keep_a_deployed_model(ros):
    """Weights set through the parameters (as the trainer deploys) survive deactivate /
    activate and cleanup / configure; weights set while inactive apply on activation."""
    proc, node = start_managed(ros)
    assert node.configure() and node.activate()
    pub = ros.publisher(Float64MultiArray, 'features')
    out = ros.collect(Float64MultiArray, 'prediction')
    ros.handshake(pub, one(X), out)
    rng = np.random.default_rng(5)
    deployed_w, deployed_b = [-3.0, 0.25, 1.5], -0.75
    results = ros.set_parameters('/predictor', {'weights': deployed_w, 'bias': deployed_b})
    assert all(r.successful for r in results)
    rows = rng.normal(0, 2, size=(5, 3))
    before = [ros.ask(pub, one(x), out).data[0] for x in rows]
    expected = NeuronModel(3, weights=deployed_w, bias=deployed_b).predict(rows)
    np.testing.assert_allclose(before, expected, rtol=0, atol=1e-15)

    assert node.deactivate() and node.activate()
    ros.handshake(pub, one(X), out)
    assert [ros.ask(pub, one(x), out).data[0] for x in rows] == before

    assert node.deactivate()
    (r,) = ros.set_parameters('/predictor', {'bias': 2.0})  # a deployment while inactive
    assert r.successful
    assert node.activate()
    ros.handshake(pub, one(X), out)
    got = [ros.ask(pub, one(x), out).data[0] for x in rows]
    np.testing.assert_allclose(
        got, NeuronModel(3, weights=deployed_w, bias=2.0).predict(rows), rtol=0, atol=1e-15)

    assert node.deactivate() and node.cleanup() and node.configure() and node.activate()
    ros.handshake(pub, one(X), out)
    assert [ros.ask(pub, one(x), out).data[0] for x in rows] == got
    assert proc.stop(signal.SIGINT) == 0


@pytest.mark.parametrize('state', ['unconfigured', 'inactive', 'active'])
def test_shutdown_from_each_state_exits_0(ros, state):
    proc, node = start_managed(ros)
    if state != 'unconfigured':
        assert node.configure()
    if state == 'active':
        assert node.activate()
    assert node.state() == state
    assert node.shutdown()  # the reply arrives before the process ends
    assert proc.proc.wait(timeout=20) == 0, proc.tail()
    log = proc.output()
    assert f'shutting down from {state}' in log and 'Traceback' not in log


@pytest.mark.parametrize('state', ['unconfigured', 'active'])
@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM])
def test_signals_exit_0_in_any_state(ros, state, sig):
    proc, node = start_managed(ros)
    if state == 'active':
        assert node.configure() and node.activate()
    assert proc.stop(sig) == 0, proc.tail()
    assert 'Traceback' not in proc.output()
