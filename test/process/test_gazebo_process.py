"""launch/gazebo_launch.py where ros_gz and launch are not installed: its own logic evaluated, the
nodes of this package it describes started as processes, and a Gazebo robot replayed from the
test node (the bridged topic names and types, /clock, a world reset): the nodes learn, and no
labeled sample crosses the reset. test_gazebo_launch.py runs the same through launch_testing."""

import signal

import pytest
from gazebo_replay import (assert_learnt_without_crossing, check_gazebo_learning,
                           installed_config)
from launch_scenario import evaluate_launch_file, start_node

PACKAGE = 'nn_one_node'


def installed_gazebo_launch():
    from ament_index_python.packages import get_package_share_directory
    import os
    return os.path.join(get_package_share_directory(PACKAGE), 'launch', 'gazebo_launch.py')


def test_the_gazebo_launch_file_bridges_with_its_config_and_sim_time_everywhere():
    ev = evaluate_launch_file(installed_gazebo_launch())
    assert set(ev.arguments) == {'params_file', 'bridge_config', 'start_bridge', 'namespace',
                                 'start_trainer', 'log_level'}
    for arg in ev.arguments.values():
        assert arg.description and len(arg.description) > 20, arg.name
    assert [n.name for n in ev.nodes] == ['gz_bridge', 'assembler', 'predictor', 'trainer']
    bridge = ev.node('gz_bridge')
    assert (bridge.package, bridge.executable) == ('ros_gz_bridge', 'parameter_bridge')
    assert bridge.param_dict() == {'config_file': installed_config('gazebo_bridge.yaml'),
                                   'use_sim_time': True}
    for name in ('assembler', 'predictor', 'trainer'):
        spec = ev.node(name)
        assert spec.package == PACKAGE and spec.executable == name
        assert spec.param_files() == [installed_config('gazebo.yaml')]
        assert spec.param_dict() == {'use_sim_time': True}
        assert spec.namespace is None
    ev = evaluate_launch_file(installed_gazebo_launch(), start_bridge='false',
                              start_trainer='false', namespace='robot1', log_level='debug')
    assert [n.name for n in ev.nodes] == ['assembler', 'predictor']
    assert {n.namespace for n in ev.nodes} == {'robot1'}
    assert ev.node('assembler').arguments[-1] == 'debug'
    with pytest.raises(FileNotFoundError, match='bridge_config'):
        evaluate_launch_file(installed_gazebo_launch(), bridge_config='/nonexistent.yaml')
    with pytest.raises(FileNotFoundError, match='params_file'):
        evaluate_launch_file(installed_gazebo_launch(), params_file='/nonexistent.yaml')
    with pytest.raises(ValueError, match='not one of'):
        evaluate_launch_file(installed_gazebo_launch(), start_bridge='maybe')


@pytest.mark.slow
def test_replayed_gazebo_robot_learns_and_no_sample_crosses_a_world_reset(ros):
    ev = evaluate_launch_file(installed_gazebo_launch())
    # everything but the bridge (ros_gz is not installed here): the test node plays its part
    procs = {spec.name: start_node(ros, spec) for spec in ev.nodes
             if spec.package == PACKAGE}
    assert set(procs) == {'assembler', 'predictor', 'trainer'}
    result = check_gazebo_learning(ros)
    assert_learnt_without_crossing(result)
    assembler = procs['assembler'].output()
    assert 'jump' in assembler.lower(), assembler[-2000:]  # the reset was seen and logged
    for name, proc in procs.items():
        assert proc.stop(signal.SIGINT) == 0, (name, proc.tail())
