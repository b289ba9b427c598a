"""The status view's gathering and rendering (nn_one_node.status), without ROS: /diagnostics
arrays written as the nodes write them (ros.diagnostics: '<node>: <role>', hardware_id
nn_one_node, the counters as strings, each problem as 'problem k'), parameters as the parameter
services answer them."""

import json
from types import SimpleNamespace as NS

import pytest

from nn_one_node.status.advice import ADVICE, advice
from nn_one_node.status.render import table, to_json
from nn_one_node.status.view import STALE_MIN_SEC, UNMANAGED, StackView, level_name, worst

OK, WARN, ERROR = b'\x00', b'\x01', b'\x02'

WRONG_JOINT = ('no row published for 4.2 s (a row needs every input younger than max_age '
               '0.2 s): joint_states: no value yet from joint_states/effort[wheel_left_joint] '
               "(210 message(s), none usable; last refusal: joint_states/effort[wheel_left_"
               "joint]: no joint named 'wheel_left_joint' in name [...])")
SILENT = ('no labeled sample on /labeled_samples since the trainer started 61 s ago (WARN '
          'after 60 s): nothing to learn from; `ros2 topic info -v /labeled_samples` lists its '
          'publishers (and their QoS), `ros2 topic hz /labeled_samples` its rate; an assembler '
          'publishes one only when a label joins a row (its /diagnostics say why not)')


def status(name, level, message, pairs, hardware_id='nn_one_node'):
    return NS(name=name, level=level, message=message, hardware_id=hardware_id,
              values=[NS(key=k, value=str(v)) for k, v in pairs])


def array(*statuses):
    return NS(status=list(statuses))


def assembler(level=OK, message='assembling', problems=(), rows=480, scan_age='0.012',
              name='/assembler'):
    pairs = [('features', 5), ('rows published', rows), ('ticks', 500), ('rows stale', 20),
             ('ticks late (> 2 ms)', 0), ('tick lateness max (ms)', '0.900'),
             ('stale: joint_states/effort[wheel_left_joint]', 20),
             ('labels received', 90), ('labels joined', 80), ('labels unmatched', 4),
             ('labels waiting', 6), ('unmatched: no row within max_join_gap', 4),
             ('readings refused', 210), ('last refusal', 'no joint named wheel_left_joint'),
             ('time jumps', 0), ('rows held', 150), ('seconds since last row', '0.020'),
             ('messages: scan', 250), ('rate (Hz): scan', '25.00'),
             ('since last message: scan', scan_age), ('max_age: scan', '0.2'),
             ('messages: joint_states', 500), ('rate (Hz): joint_states', '50.00'),
             ('since last message: joint_states', '0.500'), ('max_age: joint_states', '0.2'),
             ('messages: bump', 0), ('rate (Hz): bump', '0.00'),
             ('since last message: bump', 'never')]
    pairs += [(f'problem {i}', p) for i, p in enumerate(problems, 1)]
    return status(f'{name}: assembler', level, message, pairs)


def trainer(level=OK, message='training', problems=(), version=4, served=4, accuracy='0.91',
            name='/trainer', extra=()):
    pairs = [('samples held', 300), ('samples received', 310), ('samples refused', 10),
             ('updates', 9), ('updates deployed', version), ('updates refused', 5),
             ('last loss', '0.0123'), ('seconds since last deployment', '2.0'),
             ('training enabled', 'True'), ('predictor in sync', str(served == version)),
             ('weights file writes', 0), ('last update', 'deployed: loss 0.02 -> 0.0123'),
             ('deployment', f'in sync (version {version})'), ('model version', version),
             ('predictor version', served), ('predictor refusals', 0),
             ('prequential accuracy', accuracy), ('prequential mse', '0.07'),
             ('prequential log loss', 'nan'), ('prequential window', 200),
             ('changes detected', 0), ('last change at sample', 'never'),
             ('training samples', 300), ('seconds since last labeled sample', '0.4'),
             ('samples refused in a row', 0), ('majority class rate', '0.6400'),
             ('updates not deployed in a row', 0), *extra]
    pairs += [(f'problem {i}', p) for i, p in enumerate(problems, 1)]
    return status(f'{name}: trainer', level, message, pairs)


def predictor(predicted, name='/predictor', extra=()):
    return status(f'{name}: predictor', OK, 'serving', [
        ('messages received', predicted), ('messages predicted', predicted),
        ('samples predicted', predicted), ('messages refused', 0), ('last refusal', ''),
        *extra])


def by_name(doc):
    return {n['name']: n for n in doc['nodes']}


def test_an_assembler_input_table_from_its_diagnostics():
    view = StackView()
    view.on_array(array(assembler()), received=1.0)
    node = by_name(view.document(1.2))['/assembler']
    d = node['details']
    assert (d['rows_published'], d['rows_stale'], d['ticks']) == (480, 20, 500)
    assert d['labels'] == {'received': 90, 'joined': 80, 'unmatched': 4, 'waiting': 6}
    inputs = {i['topic']: i for i in d['inputs']}
    assert list(inputs) == ['scan', 'joint_states', 'bump']
    assert inputs['scan'] == {'topic': 'scan', 'messages': 250, 'rate_hz': 25.0, 'age_s': 0.012,
                              'max_age_s': 0.2, 'stale': False}
    assert inputs['joint_states']['stale'] is True  # 0.5 s old, max_age 0.2 s
    # the label's topic: not held to max_age, never heard
    assert inputs['bump'] == {'topic': 'bump', 'messages': 0, 'rate_hz': 0.0, 'age_s': None,
                              'max_age_s': None, 'stale': None}
    assert node['lifecycle'] == UNMANAGED and node['level'] == 'OK'


def test_each_problem_of_a_warn_comes_alone_with_its_advice():
    view = StackView()
    view.on_array(array(assembler(WARN, WRONG_JOINT, [WRONG_JOINT], rows=0),
                        trainer(WARN, f'{SILENT}; another', [SILENT, 'cannot write /x: EACCES'])),
                  received=5.0)
    doc = view.document(5.1)
    problems = {(p['node'], p['problem']): p for p in doc['problems']}
    assert set(problems) == {('/assembler', WRONG_JOINT), ('/trainer', SILENT),
                             ('/trainer', 'cannot write /x: EACCES')}
    assert problems[('/assembler', WRONG_JOINT)]['advice'].startswith(
        'an entry reads nothing from its messages')
    assert 'label' in problems[('/trainer', SILENT)]['advice']
    assert problems[('/trainer', 'cannot write /x: EACCES')]['advice'].startswith(
        'the weights file')
    assert doc['summary'] == {'nodes': 2, 'OK': 0, 'WARN': 2, 'ERROR': 0, 'STALE': 0}


def test_a_warn_without_problem_keys_is_its_message_and_ok_statuses_are_no_problem():
    view = StackView()
    older = status('/predictor: predictor', WARN, '3 messages refused; last: 6 values', [])
    view.on_array(array(older, assembler(OK, 'inactive: ...', problems=['held back'])),
                  received=1.0)
    doc = view.document(1.0)
    assert [(p['node'], p['problem']) for p in doc['problems']] == [
        ('/predictor', '3 messages refused; last: 6 values')]
    assert doc['problems'][0]['advice'].startswith('features messages the predictor')


def test_a_silent_node_goes_stale_after_three_of_its_periods():
    view = StackView()
    view.on_array(array(trainer()), received=0.0)
    assert by_name(view.document(STALE_MIN_SEC - 0.1))['/trainer']['level'] == 'OK'
    doc = view.document(STALE_MIN_SEC + 0.1)
    assert by_name(doc)['/trainer']['level'] == 'STALE'
    assert doc['problems'][0]['level'] == 'STALE'
    assert doc['problems'][0]['problem'].startswith('no /diagnostics from /trainer for 5.1 s')
    assert doc['problems'][0]['advice']
    view.set_parameters('/trainer', {'diagnostics_period': 10.0})  # a slow reporter
    assert by_name(view.document(29.0))['/trainer']['level'] == 'OK'
    assert by_name(view.document(31.0))['/trainer']['level'] == 'STALE'


@pytest.mark.parametrize('predictor_model, matches, served', [
    (([0.5, -1.0], 0.25, 'sigmoid'), True, 4),
    (([0.5, -1.5], 0.25, 'sigmoid'), False, None),
    (([0.5, -1.0], 0.25, 'linear'), False, None),
    (None, None, None),  # the predictor's parameters not read
])
def test_the_served_version_is_the_trainers_when_the_predictor_serves_its_model(
        predictor_model, matches, served):
    view = StackView()
    view.on_array(array(trainer(name='/robot1/trainer')), received=0.0)
    view.set_parameters('/robot1/trainer', {
        'weights': [0.5, -1.0], 'bias': 0.25, 'activation': 'sigmoid',
        'predictor_node': 'predictor', 'diagnostics_period': 1.0})
    if predictor_model is not None:
        w, b, a = predictor_model
        view.set_parameters('/robot1/predictor', {'weights': w, 'bias': b, 'activation': a})
    d = by_name(view.document(0.5))['/robot1/trainer']['details']
    assert d['predictor'] == '/robot1/predictor'  # relative: in the trainer's namespace
    assert (d['served_matches'], d['version_served']) == (matches, served)
    assert (d['version_trained'], d['version_deployed']) == (4, 4)
    assert (d['accuracy'], d['majority_rate'], d['window']) == (0.91, 0.64, 200)
    assert d['samples_held'] == 300 and d['last_update'].startswith('deployed')


def test_the_lifecycle_state_by_get_state_then_diagnostics_else_unmanaged():
    view = StackView()
    view.on_array(array(trainer(extra=[('lifecycle state', 'inactive')]), predictor(3),
                        assembler()), received=0.0)
    view.set_lifecycle('/predictor', 'active')
    view.set_lifecycle('/assembler', None)  # no ~/get_state: a plain node
    states = {n['name']: n['lifecycle'] for n in view.document(0.1)['nodes']}
    assert states == {'/trainer': 'inactive', '/predictor': 'active', '/assembler': UNMANAGED}


def test_a_managed_node_that_does_not_report_yet_is_shown_by_its_parameters_and_state():
    view = StackView()
    view.on_array(array(assembler()), received=0.0)
    view.set_parameter_names('/predictor', ['num_features', 'weights', 'bias', 'activation'])
    view.set_lifecycle('/predictor', 'unconfigured')
    view.set_parameter_names('/nav2/planner', ['use_sim_time', 'expected_planner_frequency'])
    view.set_lifecycle('/nav2/planner', 'active')  # a lifecycle node, not one of ours
    doc = view.document(0.1)
    node = by_name(doc)['/predictor']
    assert (node['role'], node['lifecycle'], node['level']) == ('predictor', 'unconfigured', 'OK')
    assert set(by_name(doc)) == {'/assembler', '/predictor'} and not doc['problems']
    assert '/predictor  predictor  unconfigured' in table(doc)


def test_predictions_per_second_from_two_statuses():
    view = StackView()
    view.on_array(array(predictor(100)), received=10.0)
    assert by_name(view.document(10.0))['/predictor']['details']['predictions_per_s'] is None
    view.on_array(array(predictor(150)), received=11.0)
    assert by_name(view.document(11.0))['/predictor']['details']['predictions_per_s'] == 50.0
    view.on_array(array(predictor(20)), received=12.0)  # restarted: counters from zero
    assert by_name(view.document(12.0))['/predictor']['details']['predictions_per_s'] is None


def test_a_namespace_keeps_its_nodes_and_other_warnings_are_problems_too():
    view = StackView(namespace='robot1')
    lidar = status('lidar: driver', ERROR, 'no data from the device', [], hardware_id='rplidar')
    view.on_array(array(trainer(name='/robot1/trainer'), trainer(name='/robot10/trainer'),
                        assembler(name='/robot2/assembler'), lidar), received=0.0)
    doc = view.document(0.0)
    assert [n['name'] for n in doc['nodes']] == ['/robot1/trainer']
    assert doc['namespace'] == '/robot1'
    assert [(p['node'], p['level'], p['role']) for p in doc['problems']] == [
        ('lidar: driver', 'ERROR', '')]
    view.on_array(array(status('lidar: driver', OK, 'ok', [], hardware_id='rplidar')), 1.0)
    assert view.document(1.0)['problems'] == []


def test_levels_as_rclpy_and_recordings_give_them():
    assert [level_name(x) for x in (b'\x00', b'\x01', 2, 3)] == ['OK', 'WARN', 'ERROR', 'STALE']
    assert worst(['OK', 'STALE', 'WARN']) == 'STALE' and worst([]) == 'OK'


def test_every_advice_pattern_is_reached_by_a_problem_of_its_own():
    texts = [WRONG_JOINT,
             'no row published for 3 s (...): no message yet on scan',
             'no row published for 3 s (...): odom older than max_age (1 s > 0.2 s): messages '
             'arrive, stamped 1 s behind the clock (latency, ...)',
             'no row published for 3 s (...): odom older than max_age (3 s > 0.2 s): no message',
             'rows skipped on 30 of 50 ticks since the last status (...)',
             SILENT,
             'no labeled sample on /labeled_samples for 70 s (WARN after 60 s): stopped?',
             'every labeled sample refused lately (the last 10, none kept): rows have 6 values',
             'prequential accuracy 0.400 over the last 200 samples is below the constant guess',
             'no update deployed in the last 20 (the model in force stays): last: refused',
             'predictor /predictor is not up (for 9 s): version 3 waits for it',
             'predictor /predictor refused version 2: weights must have num_features = 3',
             'predictor /predictor did not confirm version 2 within 2 s',
             'predictor /predictor served a model other than the one it confirmed (...)',
             "robot /r2: accuracy 0.52 over 300 samples against the fleet's 0.88 (...)",
             '4 messages refused; last: expected 5 values',
             'cannot write /w.yaml: [Errno 13] Permission denied',
             'no /diagnostics from /trainer for 6.0 s (its last said: OK training)']
    found = [advice(t) for t in texts]
    assert all(found)
    assert len(set(found)) == len(ADVICE) == len(texts)


def test_the_table_shows_every_part_and_the_json_is_strict():
    view = StackView()
    view.on_array(array(assembler(WARN, WRONG_JOINT, [WRONG_JOINT], rows=0), trainer(),
                        predictor(40)), received=0.0)
    view.set_parameters('/trainer', {'weights': [1.0], 'bias': 0.0, 'activation': 'sigmoid',
                                     'predictor_node': 'predictor'})
    view.set_parameters('/predictor', {'weights': [1.0], 'bias': 0.0, 'activation': 'sigmoid'})
    doc = view.document(0.5)
    text = table(doc, width=60)
    assert text.splitlines()[0].endswith('3 nodes: 2 OK, 1 WARN')
    for part in ('/assembler  assembler  unmanaged/active  WARN   no row published for 4.2 s',
                 'scan', '25.0', '(label)', 'STALE',
                 'accuracy 0.910 over 200 samples (constant guess 0.640)',
                 'model trained v4, deployed v4, served v4 by /predictor',
                 '40 messages predicted of 40', 'PROBLEMS', '-> an entry reads nothing'):
        assert part in text, part
    assert 'wheel_left_joint' in text.split('PROBLEMS')[1]  # the problem printed whole
    assert json.loads(to_json(doc)) == doc  # no NaN (prequential log loss was 'nan')
    empty = StackView(namespace='/robot1').document(0.0)
    assert not empty['found'] and 'under /robot1' in table(empty)


def test_a_node_with_one_status_is_waited_for_until_its_second_or_until_it_is_stale():
    # `status --once` settles only when every node's rates can be told (or the node is gone)
    view = StackView()
    view.on_array(array(predictor(100), predictor(7, name='/r2/predictor')), received=10.0)
    assert view.reported_once(10.5) == ['/predictor', '/r2/predictor']
    view.on_array(array(predictor(150)), received=11.0)
    assert view.reported_once(11.0) == ['/r2/predictor']
    assert view.reported_once(10.0 + STALE_MIN_SEC) == []  # /r2/predictor went silent


def robot(ns, level=OK, message='version 4: in sync', state='up', accuracy='0.9100',
          trainer_name='/trainer'):
    """A fleet trainer's status of one robot (ros.fleet.RosFleet.statuses)."""
    pairs = [('robot', ns), ('state', state), ('labeled_samples', 'publishing'),
             ('predictor', f'{ns}/predictor: up'), ('samples received', 200),
             ('prequential accuracy', accuracy), ('fleet prequential accuracy', '0.8800'),
             ('model version served', 4), ('model version in force', 4)]
    return status(f'{trainer_name}: robot {ns}', level, message, pairs)


def test_a_fleet_trainers_robots_are_its_rows_and_a_robots_warn_is_a_problem():
    """The trainer's own status stays the trainer's (before, each robot's status, named
    '/trainer: robot <ns>', took its place); each robot is a row under it; a robot's WARN is
    one of the trainer's problems, a robot gone is not."""
    view = StackView()
    broken = ("robot /r2: accuracy 0.52 over 300 samples against the fleet's 0.88 (the other "
              'robots: 0.91 over 600): a misconfigured or failing sensor?')
    view.on_array(array(trainer(), robot('/r1'), robot('/r2', WARN, broken, accuracy='0.5200'),
                        robot('/r3', b'\x03', 'gone for 12 s', state='gone')), received=10.0)
    doc = view.document(now=10.5)
    (node,) = doc['nodes']
    assert node['role'] == 'trainer' and node['message'] == 'training'
    d = node['details']
    assert d['samples_held'] == 300
    assert [(r['robot'], r['state'], r['level'], r['accuracy']) for r in d['robots']] == [
        ('/r1', 'up', 'OK', 0.91), ('/r2', 'up', 'WARN', 0.52), ('/r3', 'gone', 'STALE', 0.91)]
    assert [(p['node'], p['level'], p['problem']) for p in doc['problems']] == [
        ('/trainer', 'WARN', broken)]
    assert 'calibration' in doc['problems'][0]['advice']
    text = table(doc)
    assert 'ROBOT' in text and '/r2' in text and 'gone' in text
    json.loads(to_json(doc))
