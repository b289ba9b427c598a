"""The features configured once: ``count_features`` (the number a list of entries makes, from
their syntax, without ROS) agrees with the Assembler's own count, and ``derive_num_features``
(what launch/nn_one_launch.py and nn_one_bag derive num_features with) refuses a number set by
hand that disagrees, with both numbers. The launch file's use of it is checked in
test/process/test_launch_scenario_process.py (the launch file, evaluated where `launch` is
absent)."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nn_one_node.assembly.assembler import Assembler
from nn_one_node.assembly.config import AssemblerConfig, count_features, derive_num_features
from nn_one_node.assembly.errors import ConfigError
from nn_one_node.assembly.msgtypes import default_resolver

CONFIG = Path(__file__).resolve().parents[2] / 'config'
ENTRIES = {
    '/odom nav_msgs/msg/Odometry twist.twist.linear.x': 1,
    '/scan sensor_msgs/msg/LaserScan ranges[0]': 1,
    '/scan sensor_msgs/msg/LaserScan ranges[0:360:90]': 4,
    '/scan sensor_msgs/msg/LaserScan ranges[-3:]': 3,
    '/scan sensor_msgs/msg/LaserScan min(ranges@-30:30)': 1,
    '/scan sensor_msgs/msg/LaserScan mean(ranges[0:90])': 1,
    '/joint_states sensor_msgs/msg/JointState effort[left_wheel_joint]': 1,
    '/battery sensor_msgs/msg/BatteryState voltage max_age=2.0': 1,
    '/imu sensor_msgs/msg/Imu orientation_covariance[0:9:4]': 3,
}


@pytest.mark.parametrize('entry', sorted(ENTRIES))
def test_each_entry_counts_as_the_assembler_makes_it(entry):
    assert count_features([entry]) == ENTRIES[entry]
    assert Assembler(AssemblerConfig.from_params({'features': [entry]})).num_features == \
        ENTRIES[entry]


def test_a_list_counts_the_sum_and_the_shipped_configs_agree_with_their_assemblers():
    assert count_features(list(ENTRIES)) == sum(ENTRIES.values()) == 16
    for name in ('robot.yaml', 'gazebo.yaml'):
        section = yaml.safe_load((CONFIG / name).read_text())['/**/assembler']['ros__parameters']
        asm = Assembler(AssemblerConfig.from_params(section))
        assert count_features(section['features']) == asm.num_features, name


def test_a_slice_whose_width_needs_the_type_is_counted_with_a_resolver_only():
    entry = '/imu sensor_msgs/msg/Imu orientation_covariance[::2]'   # double[9]: 5
    with pytest.raises(ConfigError, match=r'give the slice its start and end, e.g. '
                                          r'orientation_covariance\[0:9:3\]'):
        count_features([entry])
    assert count_features([entry], resolve=default_resolver) == 5


@pytest.mark.parametrize('entry,why', [
    ('/scan sensor_msgs/msg/LaserScan ranges[5:1]', 'selects no element'),
    ('/scan sensor_msgs/msg/LaserScan', "expected '<topic> <pkg/msg/Type> <path>'"),
    ('/scan sensor_msgs/msg/LaserScan min(ranges@30:-30)', 'must be below'),
])
def test_a_malformed_entry_is_a_config_error_naming_it(entry, why):
    with pytest.raises(ConfigError) as err:
        count_features([entry])
    assert repr(entry) in str(err.value) and why in str(err.value), str(err.value)


FEATURES = ['scan sensor_msgs/msg/LaserScan min(ranges@-30:30)',
            'scan sensor_msgs/msg/LaserScan ranges[0:360:90]',
            'battery_state sensor_msgs/msg/BatteryState voltage max_age=2.0']


def test_num_features_is_derived_from_the_assembler_s_entries():
    assert derive_num_features({'assembler': {'features': FEATURES}}) == 6
    # a value by hand that agrees is fine; no assembler section, or no entries: nothing derived
    assert derive_num_features({'assembler': {'features': FEATURES},
                                'predictor': {'num_features': 6},
                                'trainer': {'num_features': 6, 'learning_rate': 2.0}}) == 6
    assert derive_num_features({'predictor': {'num_features': 4}}) is None
    assert derive_num_features({'assembler': {'features': []},
                                'predictor': {'num_features': 4}}) is None


@pytest.mark.parametrize('node', ['predictor', 'trainer'])
def test_a_num_features_by_hand_that_disagrees_is_refused_with_both_numbers(node):
    with pytest.raises(ConfigError) as err:
        derive_num_features({'assembler': {'features': FEATURES}, 'predictor': {},
                             node: {'num_features': 4}})
    assert str(err.value).startswith(f"num_features 4 in the {node}'s section, but the "
                                     "assembler's 3 entries make 6 features: ")
    assert '\n' not in str(err.value)


def test_a_features_value_that_is_not_a_list_of_strings_is_refused():
    with pytest.raises(ConfigError, match='must be a list of strings'):
        derive_num_features({'assembler': {'features': 'scan sensor_msgs/msg/LaserScan x'}})
    with pytest.raises(ConfigError, match='num_features True'):
        derive_num_features({'assembler': {'features': FEATURES[:1]},
                             'trainer': {'num_features': True}})


def test_counting_imports_no_ros():
    code = ('import sys\n'
            'from nn_one_node.assembly.config import count_features\n'
            'n = count_features(["/s sensor_msgs/msg/LaserScan ranges[0:360:90]",\n'
            '                    "/s sensor_msgs/msg/LaserScan min(ranges@-30:30) max_age=1.0"])\n'
            'bad = [m for m in sys.modules if m.split(".")[0] in ("rclpy", "sensor_msgs")]\n'
            'print(n, bad)\n')
    done = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.strip() == '5 []', done.stderr


def test_the_example_config_compiles_and_makes_the_features_its_comment_says():
    document = yaml.safe_load((CONFIG / 'assembler_example.yaml').read_text())
    section = document['assembler']['ros__parameters']
    asm = Assembler(AssemblerConfig.from_params(section))
    assert count_features(section['features']) == asm.num_features == 8
    assert asm.max_age_of('/battery') == 2.0 and asm.max_age_of('/scan') == 0.5
