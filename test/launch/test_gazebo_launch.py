"""launch_testing test of launch/gazebo_launch.py: the installed launch file starts ros_gz_bridge
with config/gazebo_bridge.yaml and the assembler, predictor and trainer on simulated time; a test
node replays a Gazebo robot on the bridged topics with /clock and a world reset: the nodes learn,
no labeled sample crosses the reset, and every process exits cleanly.

Runs where launch_testing, launch_ros and ros_gz_bridge are installed (a ROS machine with
ros-<distro>-ros-gz: `colcon test`); skipped, saying so, where one is not. The same scenario runs
everywhere, without the bridge, in test_gazebo_process.py.
"""

import os
import tempfile
import unittest
from pathlib import Path

import launch
import pytest
import launch_testing.actions
import launch_testing.asserts
from ament_index_python.packages import get_package_share_directory
from gazebo_replay import assert_learnt_without_crossing, check_gazebo_learning
from launch.actions import IncludeLaunchDescription, SetEnvironmentVariable
from launch.launch_description_sources import PythonLaunchDescriptionSource
from rosbench import RosBench

from nn_one_node.ros.isolation import claim_domain_id, loopback_env

_DOMAIN = []
_ISOLATION_KEYS = ('ROS_DOMAIN_ID', 'ROS_AUTOMATIC_DISCOVERY_RANGE', 'ROS_LOCALHOST_ONLY')


def installed_gazebo_launch() -> str:
    return os.path.join(get_package_share_directory('nn_one_node'), 'launch', 'gazebo_launch.py')


@pytest.mark.launch_test
def generate_test_description():
    lock = claim_domain_id()
    _DOMAIN.append(lock)
    env = loopback_env(lock.domain_id)
    isolation = {k: env[k] for k in _ISOLATION_KEYS if k in env}
    os.environ.update(isolation)
    for key in ('ROS_LOCALHOST_ONLY', 'ROS_STATIC_PEERS'):
        if key not in env:
            os.environ.pop(key, None)
    actions = [SetEnvironmentVariable(k, v) for k, v in isolation.items()]
    actions.append(SetEnvironmentVariable('PYTHONUNBUFFERED', '1'))
    # the bridge runs (no gz sim here: it bridges nothing); the test node publishes what it would
    gazebo = IncludeLaunchDescription(PythonLaunchDescriptionSource(installed_gazebo_launch()))
    return launch.LaunchDescription(actions + [gazebo, launch_testing.actions.ReadyToTest()])


class TestGazeboLearning(unittest.TestCase):

    def test_learns_and_no_sample_crosses_a_world_reset(self, proc_output):
        proc_output.assertWaitFor('assembling 4 features', timeout=30.0)
        proc_output.assertWaitFor('predicting from /features', timeout=30.0)
        proc_output.assertWaitFor('training on /labeled_samples', timeout=30.0)
        ros = RosBench(int(os.environ['ROS_DOMAIN_ID']), Path(tempfile.mkdtemp()))
        try:
            result = check_gazebo_learning(ros)
        finally:
            ros.close()
        assert_learnt_without_crossing(result)


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):

    def test_every_node_exited_cleanly(self, proc_info):
        try:
            launch_testing.asserts.assertExitCodes(proc_info)
        finally:
            for lock in _DOMAIN:
                lock.release()
