"""nn_one_bag reads a bag under the topic names the nodes would use: relative names under
``--namespace`` (default /), ``~/name`` under the assembler node, absolute names as written;
``info`` makes train's own checks (it never calls a bag satisfied that train refuses); ``record``
takes the params file's topics; every start-up mistake is one line and exit code 2."""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from bagkit import ROBOT_FEATURES, robot_params, write_params, write_robot_bag
from nn_one_node.offline import cli as bag_tool
from nn_one_node.offline.bagio import BagWriter, Recording
from nn_one_node.offline.commands import Failure
from nn_one_node.offline.params_file import params_for
from nn_one_node.offline.recording import BagSink, check_out, topics_to_record
from nn_one_node.offline.replay import Replay
from nn_one_node.offline.sources import AssembledSource

ROOT = Path(__file__).resolve().parents[2]
TRAINER = {'prior': 0.0}


def run(args, capsys):
    code = bag_tool.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def error_of(err: str, command: str) -> str:
    """The reason of the one error line ``nn_one_bag <command>: error: <reason>``."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    prefix = f'nn_one_bag {command}: error: '
    assert lines[0].startswith(prefix), err
    return lines[0][len(prefix):]


@pytest.fixture(scope='module')
def bags(tmp_path_factory):
    """The same robot run recorded at the root (/scan ...) and under /robot1 (/robot1/scan ...,
    its label at /robot1/assembler/slip too, for a private name), and params files with
    relative and absolute names."""
    root = tmp_path_factory.mktemp('names')
    made = {'root': root / 'root', 'robot1': root / 'robot1'}
    write_robot_bag(made['root'], 'mcap', seconds=12.0, seed=4)
    write_robot_bag(made['robot1'], 'mcap', seconds=12.0, seed=4, namespace='/robot1')
    write_robot_bag(root / 'private', 'mcap', seconds=12.0, seed=4, namespace='/robot1',
                    label_topic='/assembler/slip')
    made['private'] = root / 'private'
    made['relative'] = Path(write_params(root / 'relative.yaml', robot_params(
        relative=True, extra_trainer=TRAINER)))
    made['absolute'] = Path(write_params(root / 'absolute.yaml', robot_params(
        extra_trainer=TRAINER)))
    return made


def train(bags, tmp_path, capsys, bag, params, *extra, name='m'):
    out = tmp_path / f'{name}.yaml'
    code, stdout, err = run(['train', bags[bag], '--params-file', params, '--out', out,
                             '--json', tmp_path / f'{name}.json', '-q', *extra], capsys)
    return code, stdout, err, out


def test_relative_names_read_a_bag_recorded_at_the_root(bags, tmp_path, capsys):
    code, out, err = run(['info', bags['root'], '--params-file', bags['relative']], capsys)
    assert code == 0, err
    assert 'scan sensor_msgs/msg/LaserScan min(ranges) -> /scan: ok' in out
    assert 'all 6 entries are satisfied' in out
    code, _, err, rel = train(bags, tmp_path, capsys, 'root', bags['relative'], name='rel')
    assert code == 0, err
    code, _, err, absolute = train(bags, tmp_path, capsys, 'root', bags['absolute'], name='abs')
    assert code == 0, err
    # the same messages make the same samples and the same model, whatever the names' form
    assert rel.read_text() == absolute.read_text()
    a, b = (json.loads((tmp_path / f'{n}.json').read_text()) for n in ('rel', 'abs'))
    assert a['prequential'] == b['prequential'] and a['prequential']['samples'] > 30


def test_a_namespaced_robot_trains_under_its_namespace_and_is_refused_without(
        bags, tmp_path, capsys):
    code, _, err, _ = train(bags, tmp_path, capsys, 'robot1', bags['relative'])
    reason = error_of(err, 'train')
    assert code == 2
    assert reason.startswith(f'bag {bags["robot1"]}: topics /scan (sensor_msgs/msg/LaserScan), ')
    assert 'it has them under /robot1: give --namespace /robot1' in reason
    code, out, err = run(['info', bags['robot1'], '--params-file', bags['relative']], capsys)
    assert code == 2 and error_of(err, 'info') == reason  # train's very line
    assert '-> /scan: MISSING' in out and 'satisfied' not in out

    models = {}
    for ns in ('/robot1', 'robot1'):
        code, _, err, models[ns] = train(bags, tmp_path, capsys, 'robot1', bags['relative'],
                                         '--namespace', ns, name=ns.strip('/') + ns[0])
        assert code == 0, err
    code, _, err, root_model = train(bags, tmp_path, capsys, 'root', bags['relative'],
                                     name='root')
    assert code == 0, err
    # the same run under /robot1 gives the model the root run gives
    assert models['/robot1'].read_text() == models['robot1'].read_text() \
        == root_model.read_text()
    code, out, err = run(['info', bags['robot1'], '--params-file', bags['relative'],
                          '--namespace', '/robot1'], capsys)
    assert code == 0 and '-> /robot1/scan: ok' in out, err
    code, _, err = run(['evaluate', bags['robot1'], '--params-file', bags['relative'],
                        '--namespace', '/robot1', '--weights', root_model], capsys)
    assert code == 0, err

    # absolute names stay absolute under any namespace: no hint to give
    code, _, err, _ = train(bags, tmp_path, capsys, 'robot1', bags['absolute'],
                            '--namespace', '/robot1')
    assert code == 2 and 'topics /scan' in err and 'give --namespace' not in err


def test_a_private_name_resolves_under_the_assembler_node(bags, tmp_path, capsys):
    doc = robot_params(relative=True, extra_trainer=TRAINER)
    doc['/**/assembler']['ros__parameters']['label'] = '~/slip std_msgs/msg/Float64 data'
    params = write_params(tmp_path / 'private.yaml', doc)
    code, out, err = run(['info', bags['private'], '--params-file', params,
                          '--namespace', '/robot1'], capsys)
    assert code == 0, err
    assert '~/slip std_msgs/msg/Float64 data -> /robot1/assembler/slip: ok' in out
    code, _, err, _ = train(bags, tmp_path, capsys, 'private', params, '--namespace', '/robot1')
    assert code == 0, err


def _doc(change=None):
    doc = robot_params(relative=True, extra_trainer=TRAINER)
    if change:
        change(doc['/**/assembler']['ros__parameters'], doc['/**/trainer']['ros__parameters'])
    return doc


def _set(key, value, where=0):
    def change(asm, trainer):
        (asm, trainer)[where][key] = value
    return change


def _drop_num_features(asm, trainer):
    del trainer['num_features']


def _entry(index, text):
    def change(asm, trainer):
        asm['features'][index] = text
    return change


AGREE = {
    'satisfied': (None, []),
    'another namespace': (None, ['--namespace', '/robot2']),
    'a bad namespace': (None, ['--namespace', '/2robot']),
    'a label of another type': (_set('label', 'slip std_msgs/msg/Bool data'), []),
    'a field the type lacks': (_entry(0, 'scan sensor_msgs/msg/LaserScan nosuchfield'), []),
    'an invalid topic name': (_entry(1, 'odom/ nav_msgs/msg/Odometry twist.twist.linear.x'),
                              []),
    'an unknown substitution': (
        _entry(1, 'r_{robot}/odom nav_msgs/msg/Odometry twist.twist.linear.x'), []),
    'a bad trainer value': (_set('train_period', 1, where=1), []),
    'labeled rows without num_features': (_drop_num_features, ['--source', 'labeled']),
    'a labeled topic the bag lacks': (None, ['--source', 'labeled']),
    'a clock the bag lacks': (None, ['--clock', 'clock']),
}


@pytest.mark.parametrize('case', sorted(AGREE))
def test_info_says_what_train_says(bags, tmp_path, capsys, case):
    change, extra = AGREE[case]
    params = write_params(tmp_path / 'p.yaml', _doc(change))
    code_train, _, err_train, model = train(bags, tmp_path, capsys, 'root', params, *extra)
    code_info, out, err_info = run(['info', bags['root'], '--params-file', params, *extra],
                                   capsys)
    assert code_info == code_train, (err_info, err_train)
    if case == 'satisfied':
        assert code_train == 0 and 'all 6 entries are satisfied' in out
    else:
        assert code_train == 2 and not model.exists()
        assert error_of(err_info, 'info') == error_of(err_train, 'train')
        assert 'satisfied' not in out


def test_two_names_of_one_topic_each_take_every_message(bags):
    """'scan' and '/scan' are two subscriptions of the node to one topic: each gets every
    message, so the rows equal those of two entries both written '/scan'."""
    def rows(features):
        section = dict(params_for(robot_params(), 'assembler'), features=features)
        source = AssembledSource(section)
        got = []
        source.feature_rows = lambda row, now: got.append(row)
        with Recording([bags['root']]) as rec:
            Replay(source, lambda r, t: None).run(rec.messages(list(source.inputs)))
        return np.vstack(got)

    mixed = [ROBOT_FEATURES[0], 'scan sensor_msgs/msg/LaserScan max(ranges)',
             *ROBOT_FEATURES[1:]]
    absolute = [ROBOT_FEATURES[0], '/scan sensor_msgs/msg/LaserScan max(ranges)',
                *ROBOT_FEATURES[1:]]
    a, b = rows(mixed), rows(absolute)
    assert a.shape[0] > 100 and a.shape[1] == 6
    np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------------- record
def test_the_topics_to_record_are_the_ones_train_reads(tmp_path, capsys):
    config = ROOT / 'config' / 'robot.yaml'
    document = yaml.safe_load(config.read_text())
    topics = topics_to_record(document, 'robot1', str(config))
    assert topics == {'/robot1/scan': 'sensor_msgs/msg/LaserScan',
                      '/robot1/odom': 'nav_msgs/msg/Odometry',
                      '/robot1/joint_states': 'sensor_msgs/msg/JointState',
                      '/robot1/imu': 'sensor_msgs/msg/Imu',
                      '/robot1/temperature': 'sensor_msgs/msg/Temperature',
                      '/robot1/slip_probability': 'std_msgs/msg/Float64'}
    code, out, err = run(['record', '--params-file', config, '--namespace', '/robot1',
                          '--print-topics'], capsys)
    assert code == 0 and out.split() == sorted(topics), err


def test_the_bag_sink_writes_what_train_reads(tmp_path):
    path = tmp_path / 'rec'
    store = BagWriter(tmp_path / 'unused').store
    sink = BagSink(str(path), 'sqlite3')
    sink.add('/slip', 'std_msgs/msg/Float64')
    for k in range(3):
        msg = store.types['std_msgs/msg/Float64'](data=float(k))
        sink.write('/slip', 1_000 + k, bytes(store.serialize_cdr(msg, 'std_msgs/msg/Float64')))
    sink.close()
    sink.close()  # twice is harmless: the recorder closes it whatever happened
    with Recording([path]) as rec:
        assert rec.topics() == {'/slip': ('std_msgs/msg/Float64', 3)}
        assert [(t, ts, m.data) for t, ts, m in rec.messages()] == [
            ('/slip', 1_000, 0.0), ('/slip', 1_001, 1.0), ('/slip', 1_002, 2.0)]
    with pytest.raises(Failure, match='already exists'):
        check_out(str(path))
    (tmp_path / 'file').write_text('x')
    with pytest.raises(Failure, match='is not a directory'):
        check_out(str(tmp_path / 'file' / 'rec'))


# ------------------------------------------------------------------------- start-up mistakes
MISTAKES = {
    'no command': ([], 'nn_one_bag'),
    'an unknown command': (['play'], 'nn_one_bag'),
    'train without --out': (['train', '{bag}', '--params-file', '{params}'], 'nn_one_bag train'),
    'a missing params file': (['train', '{bag}', '--params-file', '{tmp}/nope.yaml', '--out',
                               '{tmp}/m.yaml'], 'nn_one_bag train'),
    'info, a missing params file': (['info', '{bag}', '--params-file', '{tmp}/nope.yaml'],
                                    'nn_one_bag info'),
    'a bad namespace': (['evaluate', '{bag}', '--params-file', '{params}', '--weights',
                         '{tmp}/w.yaml', '--namespace', 'a//b'], 'nn_one_bag evaluate'),
    'record, a missing params file': (['record', '--params-file', '{tmp}/nope.yaml',
                                       '{tmp}/out'], 'nn_one_bag record'),
    'record, no assembler section': (['record', '--params-file', '{trainer_only}',
                                      '{tmp}/out'], 'nn_one_bag record'),
    'record, OUT exists': (['record', '--params-file', '{params}', '{bag}'],
                           'nn_one_bag record'),
    'record, no OUT': (['record', '--params-file', '{params}'], 'nn_one_bag record'),
    'record, a bad duration': (['record', '--params-file', '{params}', '--duration', '0',
                                '{tmp}/out'], 'nn_one_bag record'),
    'record, a duration not a number': (['record', '--params-file', '{params}', '--duration',
                                         'ten', '{tmp}/out'], 'nn_one_bag record'),
    'record, a bad namespace': (['record', '--params-file', '{params}', '--namespace', '/r-1',
                                 '{tmp}/out'], 'nn_one_bag record'),
}


@pytest.mark.parametrize('case', sorted(MISTAKES))
def test_every_start_up_mistake_is_one_line_and_exit_2(bags, tmp_path, capsys, case):
    argv, prog = MISTAKES[case]
    trainer_only = write_params(tmp_path / 't.yaml', {'/**/trainer': {'ros__parameters': {
        'num_features': 5}}})
    argv = [a.format(bag=bags['root'], params=bags['relative'], tmp=tmp_path,
                     trainer_only=trainer_only) for a in argv]
    try:
        code = bag_tool.main(argv)
    except SystemExit as exc:  # argparse's own mistakes (through the one-line error())
        code = exc.code
    out, err = capsys.readouterr()
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f'{prog}: error: '), err
    assert 'Traceback' not in err and out == ''
    assert not (tmp_path / 'out').exists() and not (tmp_path / 'm.yaml').exists()


def test_record_refuses_a_domain_dds_cannot_use(bags, tmp_path, capsys, monkeypatch):
    # Fast DDS would end the process at the node's creation, exit 1 and no reason of ours
    monkeypatch.setenv('ROS_DOMAIN_ID', '999')
    code, out, err = run(['record', '--params-file', bags['relative'], tmp_path / 'out'],
                         capsys)
    assert code == 2 and 'ROS_DOMAIN_ID=999' in error_of(err, 'record')
    assert not (tmp_path / 'out').exists()


def test_num_features_is_derived_from_the_entries_and_a_different_one_refused(bags, tmp_path,
                                                                               capsys):
    """As the launch file does: a params file needs no num_features where the assembler lists
    its entries; one set by hand to another number stops every command, naming both."""
    derived = robot_params(relative=True, extra_trainer=TRAINER)
    for section in ('/**/trainer', '/**/predictor'):
        del derived[section]['ros__parameters']['num_features']
    code, _, err, out = train(bags, tmp_path, capsys, 'root',
                              write_params(tmp_path / 'derived.yaml', derived), name='derived')
    assert code == 0, err
    assert len(yaml.safe_load(out.read_text())['/**']['ros__parameters']['weights']) == 5
    wrong = robot_params(relative=True, extra_trainer={**TRAINER, 'num_features': 4})
    params = write_params(tmp_path / 'wrong.yaml', wrong)
    for command in ('info', 'train'):
        args = [command, bags['root'], '--params-file', params]
        if command == 'train':
            args += ['--out', tmp_path / 'never.yaml']
        code, _, err = run(args, capsys)
        assert code == 2, err
        assert "num_features 4 in the trainer's section, but the assembler's 5 entries make 5 " \
               'features' in error_of(err, command), err
