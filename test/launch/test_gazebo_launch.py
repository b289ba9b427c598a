"""launch_testing test of launch/gazebo_launch.py: the installed launch file starts ros_gz_bridge
with config/gazebo_bridge.yaml and the assembler, predictor and trainer on simulated time; a test
node replays a Gazebo robot on the bridged topics with /clock and a world reset: the nodes learn,
no labeled sample crosses the reset, and every process exits cleanly.

Runs where launch_testing, launch_ros and ros_gz_bridge are installed (a ROS machine with
ros-<distro>-ros-gz: `colcon test`); skipped, saying so, where one is not. The same scenario runs
everywhere, without the bridge, in test_gazebo_process.py.
"""

import os
import unittest

import pytest
import launch_testing.actions
import launch_testing.asserts
from ament_index_python.packages import get_package_share_directory
from gazebo_replay import assert_learnt_without_crossing, check_gazebo_learning
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch_support import isolated, release_domains, launch_domain_bench


def installed_gazebo_launch() -> str:
    return os.path.join(get_package_share_directory('nn_one_node'), 'launch', 'gazebo_launch.py')


@pytest.mark.launch_test
def generate_test_description():
    gazebo = IncludeLaunchDescription(PythonLaunchDescriptionSource(installed_gazebo_launch()))
    return isolated(gazebo)


class TestGazeboLearning(unittest.TestCase):

    def test_learns_and_no_sample_crosses_a_world_reset(self, proc_output):
        proc_output.assertWaitFor('assembling 4 features', timeout=30.0)
        proc_output.assertWaitFor('predicting from /features', timeout=30.0)
        proc_output.assertWaitFor('training on /labeled_samples', timeout=30.0)
        with launch_domain_bench() as ros:
            result = check_gazebo_learning(ros)
        assert_learnt_without_crossing(result)


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):

    def test_every_node_exited_cleanly(self, proc_info):
        try:
            launch_testing.asserts.assertExitCodes(proc_info)
        finally:
            release_domains()
