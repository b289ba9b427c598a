"""config/robot.yaml, config/gazebo.yaml and config/gazebo_bridge.yaml agree with the nodes'
parameter tables and with each other: every parameter is real and typed as declared, the
assembler's entries compile, its features are the predictor's and trainer's num_features, and its
inputs are what sim_robot publishes (robot.yaml) or what the bridge publishes (gazebo.yaml)."""

from pathlib import Path

import pytest
import yaml

from nn_one_node.nodes import assembler as assembler_node

from nn_one_node.nodes import predictor as predictor_node

from nn_one_node.nodes import sim_robot as sim_robot_node

from nn_one_node.nodes import trainer as trainer_node
from nn_one_node.assembly.assembler import Assembler
from nn_one_node.assembly.config import AssemblerConfig
from nn_one_node.parameters import NUM_FEATURES
from nn_one_node.assembly.config import derive_num_features
from nn_one_node.names import expand_topic_name
from nn_one_node.sim.profiles import PROFILES
from nn_one_node.sim.robot_scenario import too_slow
from nn_one_node.sim.scenario import Scenario

CONFIG = Path(__file__).resolve().parents[2] / 'config'
TABLES = {
    'assembler': assembler_node.assembler_params,
    'predictor': lambda: [NUM_FEATURES] + predictor_node.predictor_params(1),
    'trainer': lambda: [NUM_FEATURES] + trainer_node.trainer_params(1),
    'sim_robot': sim_robot_node.sim_robot_params,
}
# what sim_robot publishes, relative names (the node's own namespace)
SIM_ROBOT_TOPICS = {'scan': 'sensor_msgs/msg/LaserScan', 'odom': 'nav_msgs/msg/Odometry',
                    'joint_states': 'sensor_msgs/msg/JointState', 'imu': 'sensor_msgs/msg/Imu',
                    'temperature': 'sensor_msgs/msg/Temperature', 'slip': 'std_msgs/msg/Bool',
                    'slip_probability': 'std_msgs/msg/Float64'}


def load(name):
    with open(CONFIG / name) as f:
        return yaml.safe_load(f)


def check_sections(config, nodes):
    """Only real parameters, typed as the nodes declare them, passing their checks; returns the
    parameters by node."""
    assert set(config) == {f'/**/{n}' for n in nodes}
    out = {}
    for name in nodes:
        values = config[f'/**/{name}']['ros__parameters']
        by_name = {s.name: s for s in TABLES[name]()}
        by_name.pop('feature_names', None)  # filled by the node, never set
        unknown = set(values) - set(by_name) - {'use_sim_time'}
        assert not unknown, f'{name}: unknown parameters {unknown}'
        merged = {**{s.name: s.default for s in by_name.values()}, **values}
        for key, value in values.items():
            if key == 'use_sim_time':
                assert value is True
                continue
            assert type(value) is type(by_name[key].default), f'{name}.{key} = {value!r}'
            if by_name[key].check is not None:
                assert by_name[key].check(value, merged) is None, f'{name}.{key}'
        out[name] = values
    return out


def assembler_of(values):
    asm = Assembler(AssemblerConfig.from_params(values))  # ConfigError names a bad entry
    return asm


def test_robot_yaml_is_the_scenario_on_sim_robots_topics():
    p = check_sections(load('robot.yaml'), ['assembler', 'predictor', 'trainer', 'sim_robot'])
    asm = assembler_of(p['assembler'])
    n = Scenario().num_features
    assert asm.num_features == n == p['predictor']['num_features'] == p['trainer']['num_features']
    # every input is a topic sim_robot publishes, with its type (one subscription per topic)
    assert asm.inputs == {t: SIM_ROBOT_TOPICS[t] for t in asm.inputs}
    assert set(asm.inputs) == set(SIM_ROBOT_TOPICS) - {'slip'}
    # the features in the scenario's order, so the learned model is its ground truth
    topics = [entry.split()[0] for entry in p['assembler']['features']]
    assert topics == ['scan', 'odom', 'joint_states', 'imu', 'temperature']
    assert 'effort[left_wheel_joint]' in p['assembler']['features'][2]  # by name, not position
    # the join: the same delay as sim_robot's, a gap well inside half a moment, enough history
    robot, a = p['sim_robot'], p['assembler']
    assert a['label_delay'] == robot['label_delay']
    assert a['max_join_gap'] < robot['moment_period'] / 2.0
    assert a['history'] > a['label_delay'] + 1.0
    rates = {k: v for k, v in robot.items() if k.endswith('_rate')}
    assert len(rates) == 5 and too_slow(rates, robot['moment_period'], a['rate']) == []
    assert a['max_age'] > 2.0 / min(rates.values())


def test_gazebo_yaml_reads_what_the_bridge_publishes():
    p = check_sections(load('gazebo.yaml'), ['assembler', 'predictor', 'trainer'])
    for values in p.values():
        assert values['use_sim_time'] is True
    asm = assembler_of(p['assembler'])
    assert asm.num_features == p['predictor']['num_features'] == p['trainer']['num_features']
    bridge = load('gazebo_bridge.yaml')
    assert isinstance(bridge, list)
    keys = {'ros_topic_name', 'gz_topic_name', 'ros_type_name', 'gz_type_name', 'direction'}
    for entry in bridge:
        assert set(entry) == keys, entry
        assert entry['direction'] == 'GZ_TO_ROS'  # nothing is sent into the simulation
    by_topic = {e['ros_topic_name']: e for e in bridge}
    clock = by_topic['/clock']
    assert (clock['gz_topic_name'], clock['ros_type_name'], clock['gz_type_name']) == (
        '/clock', 'rosgraph_msgs/msg/Clock', 'gz.msgs.Clock')
    # every input of the assembler (the label too) is bridged, with the type it expects
    for topic, type_name in asm.inputs.items():
        assert by_topic[topic]['ros_type_name'] == type_name, topic
    assert set(by_topic) == set(asm.inputs) | {'/clock'}
    # the pairs ros_gz_bridge converts (its README's table)
    pairs = {'sensor_msgs/msg/LaserScan': 'gz.msgs.LaserScan',
             'nav_msgs/msg/Odometry': 'gz.msgs.Odometry',
             'sensor_msgs/msg/JointState': 'gz.msgs.Model', 'sensor_msgs/msg/Imu': 'gz.msgs.IMU',
             'std_msgs/msg/Bool': 'gz.msgs.Boolean', 'rosgraph_msgs/msg/Clock': 'gz.msgs.Clock'}
    for entry in bridge:
        assert pairs[entry['ros_type_name']] == entry['gz_type_name'], entry


@pytest.mark.parametrize('name', ['turtlebot3.yaml', 'jackal.yaml'])
def test_example_robot_configs_compile_and_read_what_their_profile_publishes(name):
    """The example robots: every parameter real and typed, the entries compile to 5 features that
    no section has to count (derived), each input is a topic of the profile with its type, and
    the join fits the profile's timing (the moment inputs report each moment before its centre,
    the slow battery has its own max_age)."""
    config = load(name)
    p = check_sections(config, ['assembler', 'predictor', 'trainer', 'sim_robot'])
    a = p['assembler']
    profile = PROFILES[p['sim_robot']['profile']]
    asm = assembler_of(a)
    assert asm.num_features == 5 == len(asm.feature_names)
    assert 'num_features' not in p['predictor'] and 'num_features' not in p['trainer']
    assert derive_num_features({k: p[k] for k in ('assembler', 'predictor', 'trainer')}) == 5
    # the config is the profile's side: its entries and label, as the profile names them
    assert a['features'] == profile.entries()
    assert a['label'] == profile.label_entry()
    published = {s.topic: s.msg_type for s in profile.streams}
    assert asm.inputs == {t: published[t] for t in asm.inputs}
    assert set(asm.inputs) == set(published)
    for topic in asm.inputs:
        assert not topic.startswith(('/', '~')), f'{topic}: relative, so namespaces work'
        assert expand_topic_name(topic, 'assembler', '/robot1').startswith('/robot1/')
    # the front sector, picked by angle (the TurtleBot3's wraps around the array's ends)
    assert a['features'][0].endswith('min(ranges@-30:30)')
    # the join: the profile's delay; a gap inside half a moment; enough history
    assert a['label_delay'] == profile.label_delay
    assert a['max_join_gap'] < profile.moment_period / 2.0
    assert a['history'] > a['label_delay'] + a['max_join_gap']
    rates = profile.sensor_rates()
    assert too_slow(rates, profile.moment_period, a['rate']) == []
    assert a['max_age'] > 2.0 / min(rates.values())
    battery = profile.stream('battery')
    assert battery.topic not in rates
    assert a['max_age'] < 1.0 / battery.rate < asm.max_age_of(battery.topic) / 1.5


@pytest.mark.parametrize('name', ['robot.yaml', 'gazebo.yaml', 'gazebo_bridge.yaml',
                                  'turtlebot3.yaml', 'jackal.yaml'])
def test_floats_are_written_as_floats(name):
    """ROS refuses an integer for a double parameter: '1' where '1.0' is meant fails at start."""
    text = (CONFIG / name).read_text()
    for line in text.splitlines():
        key, _, value = line.split('#')[0].partition(':')
        if key.strip() in ('rate', 'max_age', 'label_delay', 'history', 'max_join_gap',
                           'moment_period', 'learning_rate', 'train_period'):
            assert '.' in value, line
