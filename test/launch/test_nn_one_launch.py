"""launch_testing test of launch/nn_one_launch.py: the installed launch file starts the predictor
and the trainer; a test node publishes features and labeled samples and waits for predictions and
for a deployment to the predictor; after shutdown every process must have exited 0.

Runs where launch_testing and launch_ros are installed (every ROS machine and CI image:
`colcon test`, or `pytest test/launch/test_nn_one_launch.py`); skipped, saying so, where they are
not.
The same scenario runs everywhere in test_launch_scenario_process.py.
"""

import os
import tempfile
import unittest
from pathlib import Path

import launch
import pytest
import launch_testing.actions
import launch_testing.asserts
from launch.actions import IncludeLaunchDescription, SetEnvironmentVariable
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch_scenario import check_online_learning, installed_launch_file
from rosbench import RosBench

from nn_one_node.ros.isolation import claim_domain_id, loopback_env

# The ROS_DOMAIN_ID this test holds alone, from generate_test_description to the last test.
_DOMAIN = []
_ISOLATION_KEYS = ('ROS_DOMAIN_ID', 'ROS_AUTOMATIC_DISCOVERY_RANGE', 'ROS_LOCALHOST_ONLY')


@pytest.mark.launch_test
def generate_test_description():
    lock = claim_domain_id()
    _DOMAIN.append(lock)
    env = loopback_env(lock.domain_id)
    isolation = {k: env[k] for k in _ISOLATION_KEYS if k in env}
    # The test node reads the environment of this process; the launched nodes that of the launch
    # context, which SetEnvironmentVariable changes. DDS stays on loopback, on our own domain.
    os.environ.update(isolation)
    for key in ('ROS_LOCALHOST_ONLY', 'ROS_STATIC_PEERS'):
        if key not in env:
            os.environ.pop(key, None)
    actions = [SetEnvironmentVariable(k, v) for k, v in isolation.items()]
    actions.append(SetEnvironmentVariable('PYTHONUNBUFFERED', '1'))
    nn_one = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(installed_launch_file()),
        launch_arguments={'use_sim_time': 'false', 'start_trainer': 'true'}.items())
    return launch.LaunchDescription(actions + [nn_one, launch_testing.actions.ReadyToTest()])


class TestOnlineLearning(unittest.TestCase):

    def test_predictions_and_a_deployment(self, proc_output):
        proc_output.assertWaitFor('predicting from /features to /prediction', timeout=30.0)
        proc_output.assertWaitFor('training on /labeled_samples', timeout=30.0)
        ros = RosBench(int(os.environ['ROS_DOMAIN_ID']), Path(tempfile.mkdtemp()))
        try:
            result = check_online_learning(ros, timeout=60.0)
        finally:
            ros.close()
        self.assertGreater(result['accuracy'], 0.9)


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):

    def test_every_node_exited_cleanly(self, proc_info):
        try:
            launch_testing.asserts.assertExitCodes(proc_info)
        finally:
            for lock in _DOMAIN:
                lock.release()
