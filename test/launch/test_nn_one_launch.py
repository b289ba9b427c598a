"""launch_testing test of launch/nn_one_launch.py: the installed launch file starts the predictor
and the trainer; a test node publishes features and labeled samples and waits for predictions and
for a deployment to the predictor; after shutdown every process must have exited 0.

Runs where launch_testing and launch_ros are installed (every ROS machine and CI image:
`colcon test`, or `pytest test/launch/test_nn_one_launch.py`); skipped, saying so, where they are
not.
The same scenario runs everywhere in test_launch_scenario_process.py.
"""

import unittest

import pytest
import launch_testing.actions
import launch_testing.asserts
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch_scenario import check_online_learning, installed_launch_file
from launch_support import isolated, release_domains, launch_domain_bench


@pytest.mark.launch_test
def generate_test_description():
    nn_one = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(installed_launch_file()),
        launch_arguments={'use_sim_time': 'false', 'start_trainer': 'true'}.items())
    return isolated(nn_one)


class TestOnlineLearning(unittest.TestCase):

    def test_predictions_and_a_deployment(self, proc_output):
        proc_output.assertWaitFor('predicting from /features to /prediction', timeout=30.0)
        proc_output.assertWaitFor('training on /labeled_samples', timeout=30.0)
        with launch_domain_bench() as ros:
            result = check_online_learning(ros, timeout=60.0)
        self.assertGreater(result['accuracy'], 0.9)


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):

    def test_every_node_exited_cleanly(self, proc_info):
        try:
            launch_testing.asserts.assertExitCodes(proc_info)
        finally:
            release_domains()
