"""The installed `assembler --managed` as a process, driven through every lifecycle transition
over real DDS with the lifecycle_msgs services: what it subscribes and publishes in each state
(inactive: input ignored and counted, no row, no sample, /diagnostics only), a configure that
fails with its reason, activation again after deactivate, cleanup releasing the row history,
and exit code 0 on shutdown from each state."""

import signal

import pytest
from lifecycle_client import Lifecycle, topics_of
from reliability_kit import Diagnostics
from std_msgs.msg import Float64, Float64MultiArray

TIMEOUT = 30.0
PARAMS = {'features': ['/speed std_msgs/msg/Float64 data'],
          'label': '/current std_msgs/msg/Float64 data', 'label_threshold': 10.0,
          'rate': 50.0, 'max_age': 1.0, 'max_join_gap': 0.05, 'diagnostics_period': 0.2}


def start_managed(ros, **params):
    proc = ros.start('assembler', {**PARAMS, **params}, args=['--managed'])
    node = Lifecycle(ros, '/assembler')
    node.wait_for_state('unconfigured', TIMEOUT)
    return proc, node


def ours(ros, kind):
    return [t for t in topics_of(ros, 'assembler', kind=kind)
            if t in ('/features', '/labeled_samples', '/diagnostics', '/speed', '/current')]


def test_every_transition_of_the_assembler_and_what_each_state_publishes(ros):
    proc, node = start_managed(ros)
    speed = ros.publisher(Float64, '/speed')
    current = ros.publisher(Float64, '/current')
    rows = ros.collect(Float64MultiArray, '/features')
    samples = ros.collect(Float64MultiArray, '/labeled_samples')
    diags = Diagnostics(ros)

    # unconfigured: parameters only
    assert ros.get_parameters('/assembler', ['rate'])['rate'] == 50.0
    assert ours(ros, 'subscribers') == [] and ours(ros, 'publishers') == []

    # configure: inactive; input ignored and counted, nothing published but /diagnostics
    assert node.configure() and node.state() == 'inactive'
    ros.wait_for_subscribers(speed, 1, TIMEOUT)
    ros.wait_for_subscribers(current, 1, TIMEOUT)
    assert ros.get_parameters('/assembler', ['feature_names'])['feature_names'] == [
        '/speed/data']
    for _ in range(5):
        speed.publish(Float64(data=0.5))
        current.publish(Float64(data=12.5))
        ros.spin_for(0.1)
    d = diags.wait(': assembler', lambda d: d['messages ignored (inactive)'] == '10', TIMEOUT,
                   'the ignored messages counted')
    assert d['lifecycle state'] == 'inactive' and d['ignored: /speed'] == '5'
    assert d['rows published'] == '0' and d['labels received'] == '0'
    assert rows == [] and samples == []

    # activate: rows and labeled samples
    assert node.activate() and node.state() == 'active'
    ros.spin_until(lambda: speed.publish(Float64(data=0.5)) or rows, TIMEOUT, 'rows')
    assert rows[-1].data.tolist() == [0.5]

    def labeled():
        speed.publish(Float64(data=0.5))
        current.publish(Float64(data=12.5))
        ros.spin_for(0.05)
        return samples
    ros.spin_until(labeled, TIMEOUT, 'a labeled sample')
    assert samples[0].data.tolist() == [0.5, 1.0]

    # deactivate: silent but for /diagnostics, whatever arrives
    assert node.deactivate() and node.state() == 'inactive'
    ros.spin_for(0.3)  # a row in flight at the transition
    rows.clear()
    samples.clear()
    for _ in range(5):
        speed.publish(Float64(data=2.0))
        current.publish(Float64(data=0.0))
        ros.spin_for(0.1)
    d = diags.wait(': assembler', lambda d: d['messages ignored (inactive)'] == '20', TIMEOUT,
                   'ignored while inactive (counted since configure)')
    assert d['lifecycle state'] == 'inactive' and int(d['rows held']) > 0
    assert rows == [] and samples == []

    # activate again: new input served (the value published while inactive was ignored)
    assert node.activate()
    ros.spin_until(lambda: speed.publish(Float64(data=3.0)) or (rows and rows[-1].data[0] == 3.0),
                   TIMEOUT, 'rows of the new value')
    assert all(r.data.tolist() != [2.0] for r in rows)

    # cleanup: our topics gone, the row history released (configured again: none held)
    assert node.deactivate() and node.cleanup() and node.state() == 'unconfigured'
    ros.spin_until(lambda: ours(ros, 'subscribers') == [] and ours(ros, 'publishers') == [],
                   TIMEOUT, "the assembler's topics gone")
    assert node.configure()
    d = diags.wait(': assembler', lambda d: True, TIMEOUT, 'configured again')
    assert d['rows held'] == '0' and d['messages ignored (inactive)'] == '0'
    assert node.shutdown()
    assert proc.proc.wait(timeout=TIMEOUT) == 0, proc.tail()
    assert 'Traceback' not in proc.output()


@pytest.mark.parametrize('params, reason', [
    ({'features': ['/speed std_msgs/msg/NoSuchType data']}, 'NoSuchType'),
    ({'label_delay': 5.0, 'history': 1.0}, 'history'),
])
def test_a_bad_configuration_fails_configure_not_the_process(ros, params, reason):
    """What makes the plain assembler exit 2 leaves the managed one unconfigured."""
    proc, node = start_managed(ros, **params)
    assert not node.configure()
    proc.wait_for_output(f'configure failed: .*{reason}')
    assert node.state() == 'unconfigured' and proc.alive()
    assert ours(ros, 'subscribers') == []
    assert 'Traceback' not in proc.output()
    assert proc.stop(signal.SIGINT) == 0


@pytest.mark.parametrize('state', ['unconfigured', 'inactive', 'active'])
def test_shutdown_from_each_state_exits_0(ros, state):
    proc, node = start_managed(ros)
    if state != 'unconfigured':
        assert node.configure()
    if state == 'active':
        assert node.activate()
    assert node.state() == state
    assert node.shutdown()
    assert proc.proc.wait(timeout=TIMEOUT) == 0, proc.tail()
    log = proc.output()
    assert f'shutting down from {state}' in log and 'Traceback' not in log
