"""The scenario of test_nn_one_launch.py, run here as process-level tests: the installed
executables, configured by the installed config/nn_one.yaml, started as launch/nn_one_launch.py
says (its own logic, evaluated by launch_scenario.evaluate_launch_file), talking over real DDS.

Also: remapping from the command line (`ros2 run ... -r features:=...`) and from launch
arguments, two namespaces on one domain without crosstalk, use_sim_time (nothing timer-driven
before /clock ticks), and inference only from a saved weights file.
"""

import os
import re
import signal
from pathlib import Path

import numpy as np
import pytest
import yaml
from launch_scenario import (N, EmitEvent, RegisterEventHandler, check_online_learning,
                             evaluate_launch_file, installed_config, installed_params_file,
                             run_lifecycle_events, start_node, wait_for_deployment)
from lifecycle_client import Lifecycle
from lifecycle_msgs.msg import Transition
from rosgraph_msgs.msg import Clock
from std_msgs.msg import Float64, Float64MultiArray

from nn_one_node.ros.codecs import FEATURES_LABEL_LABELED, matrix_to_msg
from nn_one_node.model import NeuronModel
from nn_one_node.parameters import NUM_FEATURES
from nn_one_node.learning.weights_file import save_weights_file
from nn_one_node.sim.scenario import Scenario

ZERO_ROW = Float64MultiArray(data=[0.0] * N)
W_BY_HAND = [0.5, -0.25, 1.0, 0.0, 2.0, -1.0][:N]


def launch(ros, **arguments):
    """Start what ``ros2 launch nn_one_node nn_one_launch.py name:=value ...`` starts."""
    evaluated = evaluate_launch_file(**arguments)
    return {spec.name: start_node(ros, spec) for spec in evaluated.nodes}


# --------------------------------------------------------------------- the launch file itself
def test_launch_file_arguments_and_what_each_starts():
    ev = evaluate_launch_file()
    expected = {'params_file', 'namespace', 'use_sim_time', 'num_features', 'start_trainer',
                'start_sim_sensor', 'start_assembler', 'start_sim_robot', 'weights_file',
                'features_topic', 'prediction_topic', 'labeled_samples_topic', 'log_level'}
    assert expected <= set(ev.arguments)
    for arg in ev.arguments.values():
        assert arg.description and len(arg.description) > 20, arg.name
    assert [n.name for n in ev.nodes] == ['predictor', 'trainer']
    params_file = installed_params_file()
    for spec in ev.nodes:
        assert spec.package == 'nn_one_node' and spec.output == 'screen'
        assert spec.param_files() == [params_file]
        assert spec.param_dict() == {'use_sim_time': False}
        assert spec.namespace is None
    assert ev.node('predictor').remappings == [('features', 'features'),
                                               ('prediction', 'prediction')]
    assert ev.node('trainer').remappings == [('labeled_samples', 'labeled_samples')]

    ev = evaluate_launch_file(start_trainer='false', start_sim_sensor='true', namespace='r2',
                              num_features='3', use_sim_time='true')
    assert [n.name for n in ev.nodes] == ['predictor', 'sim_sensor']
    assert ev.node('predictor').param_dict() == {'use_sim_time': True, 'num_features': 3}
    assert ev.node('sim_sensor').param_dict() == {'use_sim_time': True}
    assert {n.namespace for n in ev.nodes} == {'r2'}

    with pytest.raises(ValueError, match='not one of'):
        evaluate_launch_file(use_sim_time='maybe')
    with pytest.raises(ValueError, match='not one of'):
        evaluate_launch_file(log_level='loud')  # else every node would start and die at once
    assert evaluate_launch_file(log_level='DEBUG').node('trainer').arguments[-1] == 'DEBUG'
    with pytest.raises(FileNotFoundError, match='does not exist'):
        evaluate_launch_file(start_trainer='false', weights_file='/nonexistent/model.yaml')
    with pytest.raises(FileNotFoundError, match='params_file'):
        evaluate_launch_file(params_file='/nonexistent/params.yaml')


def test_the_launch_starts_the_assembler_and_sim_robot_with_their_params_file(tmp_path):
    robot = installed_config('robot.yaml')
    ev = evaluate_launch_file(start_assembler='true', start_sim_robot='true', params_file=robot,
                              namespace='r1', use_sim_time='true', features_topic='/x/feats',
                              labeled_samples_topic='/x/labeled')
    assert [n.name for n in ev.nodes] == ['predictor', 'trainer', 'assembler', 'sim_robot']
    for spec in ev.nodes:
        assert spec.param_files() == [robot] and spec.namespace == 'r1'
        assert spec.param_dict()['use_sim_time'] is True
    assembler = ev.node('assembler')
    assert (assembler.executable, assembler.param_dict()) == ('assembler', {'use_sim_time': True})
    # the assembler feeds what the predictor and the trainer read, wherever they are remapped
    assert assembler.remappings == [('features', '/x/feats'), ('labeled_samples', '/x/labeled')]
    assert ev.node('predictor').remappings[0] == ('features', '/x/feats')
    assert ev.node('trainer').remappings == [('labeled_samples', '/x/labeled')]
    assert ev.node('sim_robot').remappings == []
    assert [n.name for n in evaluate_launch_file(start_assembler='true',
                                                 params_file=robot).nodes] == [
        'predictor', 'trainer', 'assembler']
    # the default params file has no assembler section: stop with the reason, not an assembler
    # that exits 2 at once
    with pytest.raises(ValueError, match='gives the assembler no features'):
        evaluate_launch_file(start_assembler='true')
    # a section under another key form rcl applies ('/**' or the bare name) is found too
    mine = tmp_path / 'mine.yaml'
    mine.write_text(yaml.safe_dump({'assembler': {'ros__parameters': {
        'features': ['/odom nav_msgs/msg/Odometry twist.twist.linear.x']}}}))
    assert evaluate_launch_file(start_assembler='true', params_file=str(mine)).node('assembler')
    with pytest.raises(ValueError, match='start one of them'):
        evaluate_launch_file(start_assembler='true', start_sim_sensor='true', params_file=robot)
    with pytest.raises(ValueError, match='not one of'):
        evaluate_launch_file(start_sim_robot='yes')


def test_the_launch_derives_num_features_from_the_assembler_s_entries(tmp_path):
    """The features configured once: the predictor and the trainer get the number the
    assembler's entries make; a different number by hand stops the launch with both."""
    robot = installed_config('robot.yaml')
    ev = evaluate_launch_file(start_assembler='true', start_sim_robot='true', params_file=robot)
    for name in ('predictor', 'trainer'):
        assert ev.node(name).param_dict()['num_features'] == 5
    assert 'num_features' not in ev.node('assembler').param_dict()

    def params(predictor=None, trainer=None, features=('scan sensor_msgs/msg/LaserScan '
                                                       'min(ranges@-30:30)',
                                                       'scan sensor_msgs/msg/LaserScan '
                                                       'ranges[0:360:90]',
                                                       'battery_state sensor_msgs/msg/'
                                                       'BatteryState voltage max_age=2.0')):
        document = {'/**/assembler': {'ros__parameters': {'features': list(features)}}}
        for node, n in (('predictor', predictor), ('trainer', trainer)):
            if n is not None:
                document[f'/**/{node}'] = {'ros__parameters': {'num_features': n}}
        path = tmp_path / f'p{len(list(tmp_path.iterdir()))}.yaml'
        path.write_text(yaml.safe_dump(document))
        return str(path)
    # no num_features anywhere: 1 + 4 + 1, to both, with or without the assembler here
    for start in ('true', 'false'):
        ev = evaluate_launch_file(start_assembler=start, params_file=params())
        assert [ev.node(n).param_dict()['num_features'] for n in ('predictor', 'trainer')] \
            == [6, 6]
    ev = evaluate_launch_file(params_file=params(predictor=6, trainer=6), num_features='6')
    assert ev.node('trainer').param_dict()['num_features'] == 6
    # by hand, and different: one line with both numbers
    for node, kwargs in (('predictor', {'predictor': 4}), ('trainer', {'trainer': 7})):
        with pytest.raises(ValueError) as err:
            evaluate_launch_file(start_assembler='true', params_file=params(**kwargs))
        n = kwargs[node]
        assert f"num_features {n} in the {node}'s section, but the assembler's 3 entries " \
            'make 6 features' in str(err.value) and '\n' not in str(err.value)
    with pytest.raises(ValueError, match="num_features:=5, but the assembler's 3 entries in "
                                         'params_file .* make 6 features'):
        evaluate_launch_file(params_file=params(), num_features='5')
    with pytest.raises(ValueError, match='params_file .*: features entry .*must be below'):
        evaluate_launch_file(params_file=params(features=['scan sensor_msgs/msg/LaserScan '
                                                          'min(ranges@30:-30)']))
    # a saved model of another N than the entries make is not served (the trainer starts anew)
    three = tmp_path / 'three.yaml'
    save_weights_file(three, [0.5] * 3, 0.25, 'sigmoid')
    ev = evaluate_launch_file(params_file=params(), weights_file=str(three))
    assert 'weights' not in ev.node('predictor').param_dict()
    assert ev.node('predictor').param_dict()['num_features'] == 6
    assert len(ev.logged) == 1 and '3 features, 6 expected' in ev.logged[0]


def test_the_launch_gives_the_predictor_only_a_usable_weights_file(tmp_path):
    params_file = installed_params_file()
    good = tmp_path / 'good.yaml'
    save_weights_file(good, [0.5] * N, 0.25, 'sigmoid')
    ev = evaluate_launch_file(weights_file=str(good))
    predictor = ev.node('predictor')
    assert predictor.param_files() == [params_file] and not ev.logged
    # the model as values, after params_file and before the launch's own overrides
    assert predictor.parameters[1] == {'num_features': N, 'activation': 'sigmoid',
                                       'weights': [0.5] * N, 'bias': 0.25}
    assert predictor.parameters[2] == {'use_sim_time': False}
    # hand-written, no checksum line: fine to serve (inference only), not for the trainer
    hand = tmp_path / 'hand.yaml'
    hand.write_text('/**:\n  ros__parameters:\n    num_features: 5\n    activation: sigmoid\n'
                    '    weights: [0.5, 0.5, 0.5, 0.5, 0.5]\n    bias: 0.25\n')
    ev = evaluate_launch_file(weights_file=str(hand), start_trainer='false')
    assert ev.node('predictor').param_dict()['weights'] == [0.5] * N
    ev = evaluate_launch_file(weights_file=str(hand))
    assert ev.node('predictor').param_files() == [params_file]
    assert 'weights' not in ev.node('predictor').param_dict()
    assert len(ev.logged) == 1 and 'the trainer moves the file aside' in ev.logged[0]
    # cut inside the weights list (rcl would stop the predictor) and before it (rcl would load
    # zero weights without a word)
    text = good.read_text()
    for cut in (text[:text.index('weights:') + 16], text[:text.index('weights:')]):
        bad = tmp_path / 'bad.yaml'
        bad.write_text(cut)
        with pytest.raises(ValueError, match='inference only .* unusable weights_file'):
            evaluate_launch_file(weights_file=str(bad), start_trainer='false')
        ev = evaluate_launch_file(weights_file=str(bad))
        assert 'weights' not in ev.node('predictor').param_dict(), cut
        assert [n.name for n in ev.nodes] == ['predictor', 'trainer'] and len(ev.logged) == 1
    # the saved model's N: the trainer's too unless num_features:= is given, so that the two
    # nodes agree on it; a file of another N than the one given is unusable for this launch
    three = tmp_path / 'three.yaml'
    save_weights_file(three, [0.5] * 3, 0.25, 'sigmoid')
    ev = evaluate_launch_file(weights_file=str(three))
    assert ev.node('predictor').param_dict()['num_features'] == 3
    assert ev.node('trainer').param_dict()['num_features'] == 3 and not ev.logged
    ev = evaluate_launch_file(weights_file=str(three), num_features=str(N))
    assert 'weights' not in ev.node('predictor').param_dict()
    assert ev.node('predictor').param_dict()['num_features'] == N
    assert ev.node('trainer').param_dict()['num_features'] == N
    assert len(ev.logged) == 1 and f'3 features, {N} expected' in ev.logged[0]
    with pytest.raises(ValueError, match=f'unusable weights_file.*3 features, {N} expected'):
        evaluate_launch_file(weights_file=str(three), num_features=str(N), start_trainer='false')


def test_the_launch_page_lists_every_launch_argument_with_its_default():
    page = (Path(__file__).resolve().parents[2] / 'doc' / 'launch.md').read_text()
    block = page[page.index('<!-- launch:begin -->'):page.index('<!-- launch:end -->')]
    rows = dict(re.findall(r'^\| `(\w+)` \| `([^`]*)` \|', block, re.M))
    ev = evaluate_launch_file()
    assert set(rows) == set(ev.arguments)
    for name, arg in ev.arguments.items():
        if isinstance(arg.default_value, str):
            assert rows[name] == (arg.default_value or "''"), name


def test_the_params_file_matches_the_nodes_parameter_tables():
    """config/nn_one.yaml sets only real parameters, with the types the nodes declare."""
    from nn_one_node.nodes import predictor as predictor_node
    from nn_one_node.nodes import sim_sensor as sim_sensor_node
    from nn_one_node.nodes import trainer as trainer_node
    tables = {
        'predictor': [NUM_FEATURES] + predictor_node.predictor_params(N),
        'trainer': [NUM_FEATURES] + trainer_node.trainer_params(N),
        'sim_sensor': sim_sensor_node.sim_sensor_params(),
    }
    with open(installed_params_file()) as f:
        text = f.read()
    config = yaml.safe_load(text)
    assert set(config) == {f'/**/{name}' for name in tables}
    for name, specs in tables.items():
        values = config[f'/**/{name}']['ros__parameters']
        by_name = {s.name: s for s in specs}
        assert set(values) <= set(by_name), f'{name}: unknown {set(values) - set(by_name)}'
        for key, value in values.items():
            assert type(value) is type(by_name[key].default), f'{name}.{key} = {value!r}'
            if by_name[key].check is not None:
                assert by_name[key].check(value, {'num_features': N, **values}) is None
        # sized by num_features, or an empty list (which a params file cannot type): not
        # listed, their comments say so
        unlisted = {'weights', 'trained_min', 'trained_max', 'fleet'}
        assert set(by_name) - set(values) <= unlisted, f'{name}: undocumented parameters'
        for key in unlisted & set(by_name):
            assert f'# {key}: ' in text, f'{name}.{key}: no commented example'
    assert config['/**/predictor']['ros__parameters']['num_features'] == N
    assert config['/**/trainer']['ros__parameters']['num_features'] == N


# ---------------------------------------------------------------------------- the scenario
@pytest.mark.slow
def test_launched_predictor_and_trainer_learn_the_scenario(ros):
    procs = launch(ros)
    result = check_online_learning(ros)
    assert result['accuracy'] > 0.9
    for proc in procs.values():
        assert proc.stop(signal.SIGINT) == 0, proc.tail()


@pytest.mark.slow
def test_remapping_from_the_command_line_with_the_sim_sensor_as_the_source(ros):
    """`ros2 run nn_one_node <node> --ros-args -r features:=/robot/lidar_features ...`."""
    params = [installed_params_file()]
    feats, pred, labeled = '/robot/lidar_features', '/robot/slip_risk', '/robot/labeled'
    ros.start('predictor', params_files=params, remaps={'features': feats, 'prediction': pred})
    ros.start('trainer', params_files=params, remaps={'labeled_samples': labeled})
    ros.start('sim_sensor', params_files=params, params={'label_rate': 5.0},
              remaps={'features': feats, 'labeled_samples': labeled})
    predictions = ros.collect(Float64MultiArray, pred)
    ros.wait_for_messages(predictions, 3, what=f"predictions of the sim_sensor's {feats}")
    loss = ros.collect(Float64, '/trainer/loss')
    wait_for_deployment(ros, loss)
    graph = ros.node
    assert graph.count_subscribers('/features') == 0 and graph.count_publishers('/features') == 0
    assert graph.count_publishers('/prediction') == 0
    assert graph.count_subscribers('/labeled_samples') == 0
    assert graph.count_subscribers(feats) >= 1 and graph.count_publishers(pred) >= 1


def test_remapping_from_launch_arguments(ros):
    feats, pred = '/robot/lidar_features', '/robot/slip_risk'
    launch(ros, features_topic=feats, prediction_topic=pred, start_trainer='false')
    pub = ros.publisher(Float64MultiArray, feats)
    out = ros.collect(Float64MultiArray, pred)
    ros.handshake(pub, ZERO_ROW, out)
    reply = ros.ask(pub, ZERO_ROW, out)
    assert list(reply.data) == [0.5]  # zero weights: sigmoid(0)
    assert ros.node.count_subscribers('/features') == 0


# ------------------------------------------------------------------------------ namespaces
@pytest.mark.slow
def test_two_namespaces_on_one_domain_learn_apart(ros):
    """Two robots on one domain: each trainer deploys to its own predictor, on its own data
    (robot2 learns the inverted task), and no message crosses over."""
    launch(ros, namespace='robot1')
    launch(ros, namespace='robot2')
    robot2_out = ros.collect(Float64MultiArray, '/robot2/prediction')
    robot2_loss = ros.collect(Float64, '/robot2/trainer/loss')
    r1 = check_online_learning(ros, namespace='robot1', seed=21)
    # robot1's features, labels and deployment produced nothing in robot2
    assert robot2_out == [] and robot2_loss == []
    assert list(ros.get_parameters('/robot2/predictor', ['weights'])['weights']) == [0.0] * N
    r2 = check_online_learning(ros, namespace='robot2', seed=22, invert=True)
    w1, w2 = np.asarray(r1['weights']), np.asarray(r2['weights'])
    true_sign = np.sign(Scenario().true_weights)
    assert np.all(np.sign(w1) == true_sign) and np.all(np.sign(w2) == -true_sign)
    assert ros.node.count_publishers('/prediction') == 0
    got = ros.get_parameters('/robot1/predictor', ['weights'])
    assert np.all(np.sign(got['weights']) == true_sign)  # robot2's deployments never reached it


# ------------------------------------------------------------------------------ sim time
@pytest.mark.slow
def test_with_use_sim_time_training_follows_clock(ros):
    launch(ros, use_sim_time='true', start_sim_sensor='true')
    features = ros.publisher(Float64MultiArray, 'features')
    predictions = ros.collect(Float64MultiArray, 'prediction')
    ros.handshake(features, ZERO_ROW, predictions)  # the predictor is event-driven: it serves
    labeled = ros.publisher(Float64MultiArray, 'labeled_samples', 100)
    loss = ros.collect(Float64, '/trainer/loss')
    sim_labeled = ros.collect(Float64MultiArray, 'labeled_samples')
    clock = ros.publisher(Clock, '/clock')
    ros.wait_for_subscribers(labeled, 1)
    ros.wait_for_subscribers(clock, 3)  # predictor, trainer, sim_sensor all follow /clock
    labeled.publish(matrix_to_msg(Scenario(3).labeled_rows(200),
                                  cols_label=FEATURES_LABEL_LABELED))
    ros.spin_for(2.5)  # 2.5 train periods of wall time, while ROS time stands at zero
    assert loss == [], 'the trainer updated before /clock ticked'
    assert not any(len(m.data) == (N + 1) * 50 for m in sim_labeled), 'sim_sensor published'
    weights = ros.get_parameters('/predictor', ['weights'])['weights']
    assert not np.any(weights), 'a model was deployed before /clock ticked'

    sim_ns = [5 * 10**9]
    polled = [0]

    def deployed():
        sim_ns[0] += 100_000_000  # 0.1 s of simulated time per loop
        msg = Clock()
        msg.clock.sec, msg.clock.nanosec = divmod(sim_ns[0], 10**9)
        clock.publish(msg)
        if len(loss) == polled[0]:
            return False
        polled[0] = len(loss)  # an update happened: has its model reached the predictor?
        return np.any(ros.get_parameters('/predictor', ['weights'])['weights'])
    ros.spin_until(deployed, 60.0, 'a trainer update and deployment once /clock ticks')
    assert any(len(m.data) == (N + 1) * 50 for m in sim_labeled), 'sim_sensor silent on /clock'


# -------------------------------------------------------------------------- inference only
@pytest.mark.parametrize('written_by', ['trainer', 'hand'])
def test_inference_only_from_a_saved_weights_file(ros, tmp_path, written_by):
    s = Scenario()
    path = tmp_path / 'model.yaml'
    if written_by == 'trainer':
        save_weights_file(str(path), s.true_weights, s.true_bias, 'sigmoid')
    else:
        # keyed by the node's name, which rcl would not apply to /robot1/predictor, and with a
        # parameter that is not the model's, which the launch must not apply either
        path.write_text(yaml.safe_dump({'predictor': {'ros__parameters': {
            'num_features': N, 'activation': 'sigmoid', 'diagnostics_period': 0.0,
            'weights': [float(w) for w in s.true_weights], 'bias': float(s.true_bias)}}}))
    procs = launch(ros, start_trainer='false', weights_file=str(path), namespace='robot1')
    assert set(procs) == {'predictor'}
    pub = ros.publisher(Float64MultiArray, '/robot1/features')
    out = ros.collect(Float64MultiArray, '/robot1/prediction')
    ros.handshake(pub, ZERO_ROW, out)
    X, _ = s.sample(20)
    reply = ros.ask(pub, matrix_to_msg(X), out)
    expected = NeuronModel(N, weights=s.true_weights, bias=s.true_bias).predict(X)
    np.testing.assert_allclose(reply.data, expected, rtol=0, atol=1e-12)
    assert os.path.exists(path)
    assert ros.get_parameters('/robot1/predictor', ['diagnostics_period'])[
        'diagnostics_period'] > 0.0


# ------------------------------------------------------------------- managed (lifecycle) mode
def simulated_bring_up(ev):
    """The ChangeState requests the launch's lifecycle events make, each transition succeeding
    at once: [(node, transition id)], in order."""
    T = Transition
    steps = {T.TRANSITION_CONFIGURE: [('unconfigured', 'configuring'),
                                      ('configuring', 'inactive')],
             T.TRANSITION_ACTIVATE: [('inactive', 'activating'), ('activating', 'active')],
             T.TRANSITION_DEACTIVATE: [('active', 'deactivating'), ('deactivating', 'inactive')]}
    handlers = [e.event_handler for e in ev.events if isinstance(e, RegisterEventHandler)]
    pending = [e.event for e in ev.events if isinstance(e, EmitEvent)]
    managed = [n for n in ev.nodes if n.lifecycle]
    requests = []

    def transition(node, transition_id):
        requests.append((node.name, transition_id))
        for start, goal in steps[transition_id]:
            for h in list(handlers):
                if h.matches(node.action, start, goal):
                    pending.extend(e.event for e in h.entities)
                    if h.handle_once:
                        handlers.remove(h)
    while pending:
        event = pending.pop(0)
        for node in managed:
            if event.lifecycle_node_matcher(node.action):
                transition(node, event.transition_id)
    return requests, transition


def test_managed_launch_makes_lifecycle_nodes_and_brings_them_up_in_order():
    T = Transition
    ev = evaluate_launch_file()
    assert not any(n.lifecycle for n in ev.nodes) and ev.events == []
    assert evaluate_launch_file(managed='false', autostart='true').events == []
    ev = evaluate_launch_file(managed='true')
    assert [(n.name, n.lifecycle) for n in ev.nodes] == [('predictor', True), ('trainer', True)]
    for name in ('predictor', 'trainer'):
        assert ev.node(name).arguments[:2] == ['--managed', '--ros-args']
        assert ev.node(name).namespace == ''  # not None: see the stand-in LifecycleNode
    # the sim_sensor is no lifecycle node: a plain node under managed:=true too
    ev_sim = evaluate_launch_file(managed='true', start_sim_sensor='true')
    assert not ev_sim.node('sim_sensor').lifecycle
    requests, transition = simulated_bring_up(ev)
    # LIFECYCLE_ORDER: the predictor active before the trainer is configured
    assert requests == [('predictor', T.TRANSITION_CONFIGURE),
                        ('predictor', T.TRANSITION_ACTIVATE),
                        ('trainer', T.TRANSITION_CONFIGURE),
                        ('trainer', T.TRANSITION_ACTIVATE)]
    # a later deactivate is the user's (or a lifecycle manager's): autostart stays out of it
    transition(ev.node('predictor'), T.TRANSITION_DEACTIVATE)
    assert requests[4:] == [('predictor', T.TRANSITION_DEACTIVATE)]
    ev = evaluate_launch_file(managed='true', autostart='false')
    assert ev.node('predictor').lifecycle and ev.events == []
    with pytest.raises(ValueError, match='not one of'):
        evaluate_launch_file(managed='yes')

    # the order is generic: each node configured once the one before it is active; those not
    # in LIFECYCLE_ORDER last, in the order the launch makes them
    ev = evaluate_launch_file(
        managed='true', start_sim_sensor='true',
        module_overrides={'MANAGED_EXECUTABLES': {'sim_sensor', 'trainer', 'predictor'}})
    assert all(n.lifecycle for n in ev.nodes)
    requests, _ = simulated_bring_up(ev)
    assert requests == [(name, t) for name in ('predictor', 'trainer', 'sim_sensor')
                        for t in (T.TRANSITION_CONFIGURE, T.TRANSITION_ACTIVATE)]
    ev = evaluate_launch_file(
        managed='true', module_overrides={'LIFECYCLE_ORDER': ['trainer', 'predictor'],
                                          'MANAGED_EXECUTABLES': {'trainer', 'predictor'}})
    requests, _ = simulated_bring_up(ev)
    assert [name for name, _ in requests] == ['trainer', 'trainer', 'predictor', 'predictor']


def test_managed_launch_with_the_assembler_brings_up_all_three_in_order():
    T = Transition
    ev = evaluate_launch_file(managed='true', start_assembler='true',
                              params_file=installed_config('robot.yaml'))
    assert [(n.name, n.lifecycle) for n in ev.nodes] == [
        ('predictor', True), ('trainer', True), ('assembler', True)]
    assert ev.node('assembler').arguments[:2] == ['--managed', '--ros-args']
    requests, _ = simulated_bring_up(ev)
    assert requests == [(name, t) for name in ('assembler', 'predictor', 'trainer')
                        for t in (T.TRANSITION_CONFIGURE, T.TRANSITION_ACTIVATE)]


def launch_managed(ros, **arguments):
    ev = evaluate_launch_file(managed='true', **arguments)
    return ev, {spec.name: start_node(ros, spec) for spec in ev.nodes}


@pytest.mark.slow
def test_managed_launch_autostarts_and_the_stack_learns(ros):
    """managed:=true: the launch's own events take the predictor, then the trainer to active;
    the trainer deploys to it; the predictor answers the trained model; every process exits 0."""
    ev, procs = launch_managed(ros, namespace='robot1')
    assert run_lifecycle_events(ros, ev) == ['predictor', 'trainer']
    assert Lifecycle(ros, '/robot1/predictor').state() == 'active'
    assert Lifecycle(ros, '/robot1/trainer').state() == 'active'
    result = check_online_learning(ros, namespace='robot1')
    assert result['accuracy'] > 0.9
    for proc in procs.values():
        assert proc.stop(signal.SIGINT) == 0, proc.tail()


def test_managed_launch_of_all_three_nodes_as_processes_autostarts_and_shuts_down(ros):
    """managed:=true start_assembler:=true with the robot's params file: the launch's events
    take assembler, predictor and trainer to active in that order; each shuts down with 0."""
    ev, procs = launch_managed(ros, start_assembler='true',
                               params_file=installed_config('robot.yaml'))
    assert run_lifecycle_events(ros, ev) == ['assembler', 'predictor', 'trainer']
    nodes = {name: Lifecycle(ros, f'/{name}') for name in ('assembler', 'predictor', 'trainer')}
    assert all(node.state() == 'active' for node in nodes.values())
    for name in ('trainer', 'predictor', 'assembler'):
        assert nodes[name].shutdown()
        assert procs[name].proc.wait(timeout=20) == 0, procs[name].tail()


def test_managed_launch_without_autostart_waits_for_a_lifecycle_manager(ros):
    ev, procs = launch_managed(ros, autostart='false', start_trainer='false')
    predictor = Lifecycle(ros, '/predictor')
    predictor.wait_for_state('unconfigured')
    assert ros.node.count_subscribers('/features') == 0
    # what nav2_lifecycle_manager does: configure, activate, and at the end shutdown
    assert predictor.configure() and predictor.activate()
    pub = ros.publisher(Float64MultiArray, 'features')
    out = ros.collect(Float64MultiArray, 'prediction')
    ros.handshake(pub, ZERO_ROW, out)
    assert list(ros.ask(pub, ZERO_ROW, out).data) == [0.5]
    assert predictor.shutdown()
    assert procs['predictor'].proc.wait(timeout=20) == 0


def test_managed_launch_nav2_order_by_hand_and_the_trainer_waits_for_the_predictor(ros):
    """autostart:=false, both nodes brought up as a lifecycle manager would, the trainer first:
    it trains but deploys nothing until the predictor is active; shutdown of both exits 0."""
    ev, procs = launch_managed(ros, autostart='false')
    predictor, trainer = Lifecycle(ros, '/predictor'), Lifecycle(ros, '/trainer')
    predictor.wait_for_state('unconfigured')
    trainer.wait_for_state('unconfigured')
    assert predictor.configure() and trainer.configure() and trainer.activate()
    assert ros.set_parameters('/trainer', {'weights': W_BY_HAND})[0].successful
    ros.spin_for(1.5)  # the trainer's ticks: nothing may reach the inactive predictor
    assert ros.get_parameters('/predictor', ['weights'])['weights'] != W_BY_HAND
    assert predictor.activate()
    ros.spin_until(
        lambda: list(ros.get_parameters('/predictor', ['weights'])['weights']) == W_BY_HAND,
        30.0, 'the model deployed once the predictor is active')
    assert trainer.shutdown() and predictor.shutdown()
    for proc in procs.values():
        assert proc.proc.wait(timeout=20) == 0, proc.tail()
