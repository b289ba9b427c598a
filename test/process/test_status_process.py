"""`status --once --json` against the real stack (sim_robot, assembler, predictor, trainer with
config/robot.yaml, the installed executables as processes over DDS): what it says must be what
the nodes' own diagnostics, parameters and lifecycle services say. A healthy learning stack
(a managed predictor among plain nodes); a silent label topic, which the trainer WARNs of; a
joint name the robot does not publish, which the assembler WARNs of; an input slower than its
max_age, the same; nothing running (exit 1) and a usage mistake (exit 2)."""

import json
import subprocess
import time

import numpy as np
import yaml
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from launch_scenario import installed_config
from lifecycle_client import Lifecycle
from rosbench import diagnostic_values, executable_path
from rosgraph_msgs.msg import Clock
from std_srvs.srv import SetBool

TIMEOUT = 60.0
ROBOT = installed_config('robot.yaml')
FEATURE_TOPICS = {'scan': 25.0, 'odom': 50.0, 'joint_states': 50.0, 'imu': 100.0,
                  'temperature': 25.0}  # robot.yaml's inputs and sim_robot's rates
STACK = {'/assembler', '/predictor', '/trainer'}
WRONG_JOINT = 'joint_states sensor_msgs/msg/JointState effort[wheel_left_joint]'


def start_stack(ros, assembler=None, trainer=None, managed_predictor=False, sim=None):
    """The four nodes with robot.yaml (and overrides); a test node collecting /diagnostics."""
    diags = ros.collect(DiagnosticArray, '/diagnostics')
    ros.start('sim_robot', sim, params_files=[ROBOT])
    ros.start('assembler', assembler, params_files=[ROBOT])
    ros.start('trainer', trainer, params_files=[ROBOT])
    ros.start('predictor', params_files=[ROBOT], args=['--managed'] if managed_predictor else [])
    return diags


def wait_status(ros, diags, role, check, what):
    start = len(diags)
    return ros.spin_until(lambda: (lambda v: v if v is not None and check(v) else None)(
        diagnostic_values(diags[start:], f': {role}')), TIMEOUT, what)


def seen(diags, start, role, key):
    """Every value of ``key`` in the statuses of ``role`` received from index ``start``."""
    return {kv.value for msg in diags[start:] for st in msg.status
            if st.name.endswith(f': {role}') for kv in st.values if kv.key == key}


def run_status(ros, *args, timeout=30.0):
    """The installed `status` with ``args`` (the test node spinning meanwhile, e.g. its /clock);
    returns (exit code, stdout, stderr)."""
    proc = subprocess.Popen([executable_path('status'), *args], env=ros.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ros.spin_until(lambda: proc.poll() is not None, timeout, 'status to exit')
    finally:
        if proc.poll() is None:
            proc.kill()
    out, err = proc.communicate(timeout=10)
    return proc.returncode, out, err


def status_json(ros, *args):
    code, out, err = run_status(ros, '--once', '--json', *args)
    assert code in (0, 3), (code, out, err)
    doc = json.loads(out)
    assert code == (3 if doc['problems'] else 0), (code, doc['problems'])
    nodes = {n['name']: n for n in doc['nodes']}
    assert set(nodes) == STACK, (sorted(nodes), err)  # sim_robot has no /diagnostics
    return code, doc, nodes


def test_status_tells_a_learning_stack_as_its_nodes_do(ros):
    diags = start_stack(ros, managed_predictor=True)
    predictor = Lifecycle(ros, '/predictor')
    predictor.wait_for_state('unconfigured', TIMEOUT)
    # unconfigured, it publishes no /diagnostics: found by its parameters and ~/get_state
    _, _, nodes = status_json(ros)
    assert (nodes['/predictor']['role'], nodes['/predictor']['lifecycle']) == (
        'predictor', 'unconfigured')
    assert predictor.configure() and predictor.activate()
    wait_status(ros, diags, 'trainer', lambda v: int(v['model version']) >= 2
                and v['predictor in sync'] == 'True', 'a model deployed and confirmed')
    # freeze the model, so that what status reads is what the nodes hold after it
    reply = ros.call(SetBool, '/trainer/enable_training', SetBool.Request(data=False))
    assert reply.success
    trainer = wait_status(ros, diags, 'trainer', lambda v: v['predictor in sync'] == 'True',
                          'the last model confirmed')
    start = len(diags)

    code, doc, nodes = status_json(ros)

    assert doc['found'] and doc['summary']['nodes'] == 3
    assert {n: nodes[n]['lifecycle'] for n in nodes} == {
        '/assembler': 'unmanaged/active', '/trainer': 'unmanaged/active',
        '/predictor': predictor.state()} == {**{n: 'unmanaged/active' for n in nodes},
                                              '/predictor': 'active'}
    # the assembler: its inputs at sim_robot's rates, held to its max_age; its counters
    a = nodes['/assembler']['details']
    max_age = ros.get_parameters('/assembler', ['max_age'])['max_age']
    inputs = {i['topic']: i for i in a['inputs']}
    assert set(inputs) == set(FEATURE_TOPICS) | {'slip_probability'}
    for topic, rate in FEATURE_TOPICS.items():
        i = inputs[topic]
        assert i['max_age_s'] == max_age and i['messages'] > 0, i
        assert 0.5 * rate < i['rate_hz'] < 1.5 * rate, i  # a loaded machine delays, not halves
        assert i['age_s'] is not None and i['age_s'] < 1.0, i
    label = inputs['slip_probability']
    assert label['max_age_s'] is None and label['messages'] > 0 and 2.5 < label['rate_hz'] < 7.5
    # what the assembler said while status listened
    assert str(a['rows_published']) in seen(diags, start, 'assembler', 'rows published')
    assert str(a['labels']['joined']) in seen(diags, start, 'assembler', 'labels joined')
    assert a['labels']['joined'] > 0
    # the trainer: its figures as its own status says them, the versions as its parameters
    t = nodes['/trainer']['details']
    version = int(trainer['model version'])
    assert (t['version_trained'], t['version_deployed'], t['version_served']) == (version,) * 3
    assert t['served_matches'] is True and t['predictor'] == '/predictor'
    assert not t['training_enabled'] and t['last_update'] == trainer['last update']
    # samples still come in (training paused): what the trainer said while status listened
    assert str(t['samples_held']) in seen(diags, start, 'trainer', 'samples held')
    assert t['accuracy'] in {float(x) for x in seen(diags, start, 'trainer',
                                                   'prequential accuracy')}
    assert t['majority_rate'] in {float(x) for x in seen(diags, start, 'trainer',
                                                        'majority class rate')}
    served = ros.get_parameters('/predictor', ['weights', 'bias'])
    mine = ros.get_parameters('/trainer', ['weights', 'bias'])
    assert np.array_equal(served['weights'], mine['weights']) and served['bias'] == mine['bias']
    p = nodes['/predictor']['details']
    assert p['messages_predicted'] > 0 and 25.0 < p['predictions_per_s'] < 75.0  # rate 50


def test_a_silent_label_topic_is_a_trainer_warn_with_advice(ros):
    # The trainer WARNs after a minute of silence (learning.health.SILENCE_MIN_SEC): on
    # simulated time, which this test runs 20 times faster, that minute takes three seconds.
    clock = ros.publisher(Clock, '/clock')
    sim = [1.0]

    def tick():
        sim[0] += 2.0
        clock.publish(Clock(clock=Time(sec=int(sim[0]))))
    ros.node.create_timer(0.1, tick)
    diags = start_stack(ros, assembler={'label': 'bump std_msgs/msg/Bool data'},
                        trainer={'use_sim_time': True})
    wait_status(ros, diags, 'trainer', lambda v: any(
        k.startswith('problem') and 'no labeled sample' in p for k, p in v.items()),
        "the trainer's WARN of silence")

    code, doc, nodes = status_json(ros)

    assert code == 3 and nodes['/trainer']['level'] == 'WARN'
    [silent] = [p for p in doc['problems'] if p['node'] == '/trainer']
    assert silent['problem'].startswith('no labeled sample on /labeled_samples since the '
                                        'trainer started'), silent
    assert 'label' in silent['advice']
    a = nodes['/assembler']['details']
    bump = {i['topic']: i for i in a['inputs']}['bump']
    assert bump == {'topic': 'bump', 'messages': 0, 'rate_hz': 0.0, 'age_s': None,
                    'max_age_s': None, 'stale': None}
    assert a['rows_published'] > 0 and a['labels']['received'] == 0
    assert nodes['/assembler']['level'] == 'OK'  # rows flow: the label does not hold them
    t = nodes['/trainer']['details']
    assert t['samples_held'] == 0 and t['seconds_since_labeled_sample'] is None


def test_a_joint_name_the_robot_does_not_publish_is_an_assembler_warn(ros):
    with open(ROBOT) as f:
        features = yaml.safe_load(f)['/**/assembler']['ros__parameters']['features']
    features = [WRONG_JOINT if 'joint_states' in f else f for f in features]
    diags = start_stack(ros, assembler={'features': features})
    wait_status(ros, diags, 'assembler', lambda v: 'problem 1' in v, "the assembler's WARN")

    code, doc, nodes = status_json(ros)

    assert code == 3 and nodes['/assembler']['level'] == 'WARN'
    [problem] = [p for p in doc['problems'] if p['node'] == '/assembler']
    assert 'no value yet from joint_states/effort[wheel_left_joint]' in problem['problem']
    assert problem['advice'].startswith('an entry reads nothing from its messages')
    a = nodes['/assembler']['details']
    assert a['rows_published'] == 0 and a['readings_refused'] > 0
    assert 'wheel_left_joint' in a['last_refusal']
    joints = {i['topic']: i for i in a['inputs']}['joint_states']
    assert joints['messages'] > 0 and joints['rate_hz'] > 25.0  # heard: the name is wrong

    code, text, _ = run_status(ros, '--once')  # the table says it too, with the advice
    assert code == 3 and 'PROBLEMS' in text and '-> an entry reads nothing' in text, text


def test_an_input_slower_than_its_max_age_is_an_assembler_warn_in_status_and_log(ros):
    # temperature at 3 Hz against robot.yaml's max_age 0.2 s: fresh for 0.2 s of every 0.33,
    # so about 40 % of the rows are stale (as a new user's 1 Hz battery under 0.5 s: half):
    # rows still come, and it must not read OK
    diags = start_stack(ros, sim={'temperature_rate': 3.0})
    [asm] = [p for p in ros.processes if p.name == '/assembler']
    wait_status(ros, diags, 'assembler', lambda v: any(
        k.startswith('problem') and 'rows skipped on' in p for k, p in v.items()),
        "the assembler's WARN of skipped rows")
    line = asm.wait_for_output(r'WARN.*rows skipped on \d+ of \d+ ticks.*temperature.*', TIMEOUT)
    assert 'older than max_age' in line.group(0), line.group(0)

    code, doc, nodes = status_json(ros)

    assert code == 3 and nodes['/assembler']['level'] == 'WARN', doc
    [problem] = [p for p in doc['problems'] if p['node'] == '/assembler']
    assert problem['problem'].startswith('rows skipped on'), problem
    assert 'temperature' in problem['problem'] and problem['advice'], problem
    a = nodes['/assembler']['details']
    assert a['rows_published'] > 0 and a['rows_stale'] > 0.25 * a['rows_published'], a


def test_nothing_running_exits_1_and_a_usage_mistake_2(ros):
    start = time.monotonic()
    code, out, err = run_status(ros, '--once', '--json', '--timeout', '1')
    assert code == 1 and json.loads(out)['found'] is False, (code, out, err)
    assert time.monotonic() - start < 15.0
    code, out, err = run_status(ros, '--once', '--bogus')
    assert code == 2 and err.count('\n') == 1 and '--bogus' in err, err
