"""launch/robot_launch.py and launch/fleet_launch.py: their own logic evaluated (the nodes, names,
parameters and arguments they give launch_ros), and the processes they describe started as
launch_ros would start them: two simulated robots under /r1 and /r2, each serving its own
predictions and taking a deployment to its own predictor only, and (once the trainer has fleet
mode) the fleet trainer learning from both and every predictor serving its model.
test/launch/test_fleet_launch.py runs the same under launch_testing where it is installed."""

import re
import signal
from pathlib import Path

import numpy as np
import pytest
from fleet_kit import (N, launch_file, start_fleet_trainer, start_robot,
                       wait_fleet_served, wait_learned, wait_robot_serving)
from launch_scenario import evaluate_launch_file, installed_config

ROBOT_YAML = installed_config('robot.yaml')
DOC = Path(__file__).resolve().parents[2] / 'doc' / 'fleet_operations.md'


# ------------------------------------------------------------------- the launch files' logic
def test_robot_launch_puts_the_robot_path_under_the_namespace_without_a_trainer():
    ev = evaluate_launch_file(launch_file('robot_launch.py'), namespace='r1',
                              start_sim_robot='true')
    assert [n.name for n in ev.nodes] == ['predictor', 'assembler', 'sim_robot']
    for spec in ev.nodes:
        assert spec.namespace == '/r1' and spec.param_files() == [ROBOT_YAML], spec
        assert not spec.lifecycle
    assert ev.node('predictor').param_dict()['num_features'] == N  # from the entries
    assert ev.node('assembler').remappings == [('features', 'features'),
                                               ('labeled_samples', 'labeled_samples')]
    ev = evaluate_launch_file(launch_file('robot_launch.py'), namespace='/warehouse/amr_7')
    assert [(n.name, n.namespace) for n in ev.nodes] == [
        ('predictor', '/warehouse/amr_7'), ('assembler', '/warehouse/amr_7')]


def test_robot_launch_managed_brings_the_assembler_then_the_predictor_up():
    ev = evaluate_launch_file(launch_file('robot_launch.py'), namespace='r2', managed='true')
    assert all(n.lifecycle and n.arguments[0] == '--managed' for n in ev.nodes)
    assert len(ev.events) == 4  # configure assembler; then activate, configure predictor, ...
    first = ev.events[-1].event
    assert first.lifecycle_node_matcher(ev.node('assembler').action)


def test_robot_launch_refuses_a_robot_without_a_namespace_and_keeps_its_settings_to_itself():
    with pytest.raises(KeyError, match='namespace is required'):
        evaluate_launch_file(launch_file('robot_launch.py'))
    for bad in ('', '/'):
        with pytest.raises(ValueError, match='needs the robot.s namespace'):
            evaluate_launch_file(launch_file('robot_launch.py'), namespace=bad)
    with pytest.raises(ValueError, match='namespace:=2r: .*must not start with a number'):
        evaluate_launch_file(launch_file('robot_launch.py'), namespace='2r')
    with pytest.raises(FileNotFoundError, match='which does not exist'):
        evaluate_launch_file(launch_file('robot_launch.py'), namespace='r1',
                             weights_file='/nonexistent/model.yaml')


def test_fleet_launch_starts_one_trainer_with_the_fleet_patterns():
    ev = evaluate_launch_file(launch_file('fleet_launch.py'))
    (trainer,) = ev.nodes
    assert (trainer.executable, trainer.name, trainer.namespace) == ('trainer', 'trainer', None)
    assert trainer.param_files() == [ROBOT_YAML]
    assert trainer.param_dict() == {'fleet': ['/*'], 'use_sim_time': False, 'num_features': N}
    for text, patterns in (('/r*', ['/r*']), ('/r1, /r2', ['/r1', '/r2']),
                           ("['/warehouse/amr_*', 'lab/*']", ['/warehouse/amr_*', 'lab/*'])):
        ev = evaluate_launch_file(launch_file('fleet_launch.py'), fleet=text)
        assert ev.nodes[0].param_dict()['fleet'] == patterns
    ev = evaluate_launch_file(launch_file('fleet_launch.py'), weights_file='~/m.yaml',
                              managed='true', namespace='fleet')
    (trainer,) = ev.nodes
    assert trainer.lifecycle and trainer.namespace == 'fleet'
    assert trainer.param_dict()['weights_file'] == str(Path('~/m.yaml').expanduser())
    assert len(ev.events) == 2  # configure, then activate once configured


def test_fleet_launch_refuses_an_empty_fleet():
    for bad in ('', ' , ', '[]'):
        with pytest.raises(ValueError, match='lists no robot'):
            evaluate_launch_file(launch_file('fleet_launch.py'), fleet=bad)
    with pytest.raises(ValueError, match='must be a list of namespace patterns'):
        evaluate_launch_file(launch_file('fleet_launch.py'), fleet='[1, 2]')


@pytest.mark.parametrize('name', ['robot_launch.py', 'fleet_launch.py'])
def test_the_operations_page_lists_every_argument_with_its_default(name):
    page = DOC.read_text()
    tag = name[:-3]
    block = page[page.index(f'<!-- {tag}:begin -->'):page.index(f'<!-- {tag}:end -->')]
    rows = dict(re.findall(r'^\| `(\w+)` \| ([^|]+?) \|', block, re.M))
    ev = evaluate_launch_file(launch_file(name), namespace='r1')
    assert set(rows) == set(ev.arguments)
    for arg_name, arg in ev.arguments.items():
        if arg.default_value is None:
            assert rows[arg_name] == '(required)', arg_name
        elif isinstance(arg.default_value, str):
            default = arg.default_value or "''"
            assert rows[arg_name] == f'`{default}`', arg_name


# -------------------------------------------------------------------------------- processes
@pytest.mark.slow
def test_two_launched_robots_each_serve_under_their_namespace(ros):
    robots = {ns: start_robot(ros, ns) for ns in ('/r1', '/r2')}
    for ns in robots:
        wait_robot_serving(ros, ns)
    want = {f'{ns}/{n}' for ns in robots for n in ('assembler', 'predictor', 'sim_robot')}

    def nodes():
        found = {f'{ns.rstrip("/")}/{n}' for n, ns in ros.node.get_node_names_and_namespaces()}
        return found if want <= found else None
    names = ros.spin_until(nodes, 20.0, 'the six nodes under /r1 and /r2')
    assert '/predictor' not in names and '/trainer' not in names
    # a deployment to one robot's predictor (what the fleet trainer sends each) is that robot's
    ros.set_parameters('/r1/predictor', {'weights': [0.5] * N, 'bias': 0.25}, atomic=True)
    assert ros.get_parameters('/r1/predictor', ['bias'])['bias'] == 0.25
    assert not np.any(ros.get_parameters('/r2/predictor', ['weights'])['weights'])
    for ns, procs in robots.items():
        for name, proc in procs.items():
            assert proc.stop(signal.SIGINT) == 0, (ns, name, proc.tail())


@pytest.mark.slow
def test_the_fleet_trainer_learns_from_two_launched_robots_and_both_serve_its_model(ros):
    robots = {ns: start_robot(ros, ns) for ns in ('/r1', '/r2')}
    trainer = start_fleet_trainer(ros, fleet='/r*')
    wait_fleet_served(ros, list(robots))
    for ns in robots:
        wait_learned(ros, f'{ns}/predictor')
    assert trainer.stop(signal.SIGINT) == 0, trainer.tail()
    for procs in robots.values():
        for proc in procs.values():
            assert proc.stop(signal.SIGINT) == 0, proc.tail()
