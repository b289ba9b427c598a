"""launch_testing test of launch/nn_one_launch.py managed:=true: launch_ros starts the predictor
and the trainer as LifecycleNodes and the launch file's own events (autostart) configure and
activate them in order; a test node checks their states over lifecycle_msgs GetState, then the
online-learning scenario runs through them; after shutdown every process must have exited 0.

Runs where launch_testing and launch_ros are installed; skipped, saying so, where they are not.
The same checks run everywhere in test_launch_scenario_process.py (the launch file's events run
against the processes) and test_lifecycle_process.py (every transition).
"""

import unittest

import pytest
import launch_testing.actions
import launch_testing.asserts
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch_scenario import check_online_learning, installed_launch_file
from lifecycle_client import Lifecycle
from launch_support import isolated, release_domains, launch_domain_bench


@pytest.mark.launch_test
def generate_test_description():
    nn_one = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(installed_launch_file()),
        launch_arguments={'managed': 'true', 'autostart': 'true'}.items())
    return isolated(nn_one)


class TestManagedBringUp(unittest.TestCase):

    def test_autostart_activates_the_nodes_and_the_stack_learns(self, proc_output):
        proc_output.assertWaitFor('unconfigured: parameters declared', timeout=30.0)
        proc_output.assertWaitFor('activated: serving', timeout=60.0)
        with launch_domain_bench() as ros:
            for name in ('/predictor', '/trainer'):
                Lifecycle(ros, name).wait_for_state('active', timeout=60.0)
            result = check_online_learning(ros, timeout=60.0)
        self.assertGreater(result['accuracy'], 0.9)


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):

    def test_every_node_exited_cleanly(self, proc_info):
        try:
            launch_testing.asserts.assertExitCodes(proc_info)
        finally:
            release_domains()
