"""``nn_one_bag train --fleet``: the bags of several robots, each under its namespace, learned
into one model as the fleet trainer learns live: the robots found by their namespaces, their
samples interleaved in bag time into one TrainerCore (two bags train exactly as one bag that
holds both robots), per-robot samples (each robot's what ``train --namespace`` finds alone) and
prequential accuracy; a bag that lacks a robot's topics, or holds no robot, is refused in one
line with exit code 2."""

import json
from pathlib import Path

import numpy as np
import pytest

from bagkit import robot_params, write_params, write_robot_bag
from nn_one_node.offline import cli as bag_tool
from nn_one_node.offline.bagio import BagWriter, Recording

SECONDS = 12.0


def run(args, capsys):
    code = bag_tool.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def one_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith('nn_one_bag train: error: '), err
    return lines[0][len('nn_one_bag train: error: '):]


@pytest.fixture(scope='module')
def bags(tmp_path_factory):
    """Robots /r1 and /r2 (other seeds, their clocks 0.3 ms apart so that no two messages tie),
    the two in one bag, a robot /r3 whose label topic is another, one /x1 no pattern names."""
    root = tmp_path_factory.mktemp('fleet')
    made = {name: root / name for name in ('r1', 'r2', 'r3', 'x1', 'both')}
    write_robot_bag(made['r1'], seconds=SECONDS, seed=4, namespace='/r1')
    write_robot_bag(made['r2'], seconds=SECONDS, seed=9, start_s=100.0003, namespace='/r2')
    write_robot_bag(made['r3'], seconds=SECONDS, seed=5, namespace='/r3', label_topic='/bump')
    write_robot_bag(made['x1'], seconds=SECONDS, seed=6, namespace='/x1')
    with Recording([made['r1'], made['r2']]) as rec, BagWriter(made['both']) as out:
        for topic, msgtype, t, raw in rec.raw_messages():
            out.write_raw(topic, msgtype, t, raw)
    made['params'] = Path(write_params(root / 'relative.yaml', robot_params(relative=True)))
    made['absolute'] = Path(write_params(root / 'absolute.yaml', robot_params()))
    return made


def train(bags, tmp_path, capsys, *args, name='m', params='params'):
    out, js = tmp_path / f'{name}.yaml', tmp_path / f'{name}.json'
    code, stdout, err = run(['train', *args, '--params-file', bags[params], '--out', out,
                             '--json', js, '-q'], capsys)
    return code, stdout, err, (json.loads(js.read_text()) if code == 0 else None)


def test_two_robots_bags_train_one_model_from_both(bags, tmp_path, capsys):
    code, out, err, fleet = train(bags, tmp_path, capsys, bags['r1'], bags['r2'],
                                  '--fleet', '/r*', name='fleet')
    assert code == 0, err
    robots = fleet['fleet']['robots']
    assert fleet['fleet']['patterns'] == ['/r*'] and sorted(robots) == ['/r1', '/r2']
    alone = {}
    for ns in ('/r1', '/r2'):
        code, _, err, alone[ns] = train(bags, tmp_path, capsys, bags[ns[1:]],
                                        '--namespace', ns, name=ns[1:])
        assert code == 0, err
        # each robot's rows are the ones it gives alone: the same assembler code under its name
        assert robots[ns]['samples'] == alone[ns]['prequential']['samples'] > 20
        assert robots[ns]['accuracy'] is not None and robots[ns]['accuracy'] > 0.6
    assert fleet['prequential']['samples'] == sum(r['samples'] for r in robots.values())
    assert set(fleet['inputs']) == {'/r1', '/r2'}
    w = fleet['model']['weights']
    assert all(w != alone[ns]['model']['weights'] for ns in alone)  # learned from both
    assert np.all(np.isfinite(w))
    line = out.strip().splitlines()[-1]
    assert line.startswith('nn_one_bag train: 2 robots (/r1 ')
    for ns in robots:
        assert f'{ns} {robots[ns]["samples"]:,} samples, accuracy ' in line


def test_two_bags_train_exactly_as_one_bag_holding_both_robots(bags, tmp_path, capsys):
    code, _, err, apart = train(bags, tmp_path, capsys, bags['r1'], bags['r2'],
                                '--fleet', '/r1,/r2', name='apart')
    assert code == 0, err
    code, _, err, together = train(bags, tmp_path, capsys, bags['both'], '--fleet', 'r*',
                                   name='together')
    assert code == 0, err
    assert apart['model'] == {**together['model'], 'file': apart['model']['file']}
    assert apart['fleet']['robots'] == together['fleet']['robots']
    assert apart['training']['updates'] == together['training']['updates']


@pytest.mark.parametrize('case', ['a robot lacks its label', 'a bag of no robot',
                                  'no robot matches', 'with --namespace', 'a bad pattern',
                                  'absolute names'])
def test_a_fleet_the_bags_do_not_hold_is_refused_in_one_line(bags, tmp_path, capsys, case):
    args, expected, params = {
        'a robot lacks its label': (
            [bags['r1'], bags['r3'], '--fleet', '/r*'],
            f'robot /r3: bag {bags["r1"]}, {bags["r3"]}: topic /r3/slip (std_msgs/msg/Float64) '
            'that the assembler section needs is not in the bag', 'params'),
        'a bag of no robot': (
            [bags['r1'], bags['x1'], '--fleet', '/r*'],
            f'bag {bags["x1"]} holds no topic of the robots /r1 that --fleet found', 'params'),
        'no robot matches': (
            [bags['r1'], '--fleet', '/q*'],
            f'no robot in {bags["r1"]} matches --fleet /q*: none of imu, joint_states, odom, '
            'scan, slip is under a matching namespace', 'params'),
        'with --namespace': (
            [bags['r1'], '--fleet', '/r*', '--namespace', '/r1'],
            '--fleet and --namespace: each robot is read under its own namespace', 'params'),
        'a bad pattern': (
            [bags['r1'], '--fleet', '/r*/'], "--fleet '/r*/' is no namespace pattern", 'params'),
        'absolute names': (
            [bags['r1'], '--fleet', '/r*'],
            '--fleet finds robots by the topics the params file names relatively', 'absolute'),
    }[case]
    out = tmp_path / 'm.yaml'
    out.write_text('kept\n')
    code, _, err, _ = train(bags, tmp_path, capsys, *args, params=params)
    assert code == 2
    assert one_error(err).startswith(expected), err
    assert out.read_text() == 'kept\n'  # not written, not changed


def test_several_robots_bags_without_fleet_are_refused_naming_the_option(bags, tmp_path,
                                                                         capsys):
    code, _, err, _ = train(bags, tmp_path, capsys, bags['r1'], bags['r2'])
    assert code == 2
    assert ('(it has them under /r1,/r2: give --namespace for one robot, or train --fleet '
            '/r1,/r2 to learn from all of them)') in one_error(err)
