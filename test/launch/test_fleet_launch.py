"""launch_testing test of launch/robot_launch.py and launch/fleet_launch.py: two simulated robots
(robot_launch.py namespace:=r1 / r2 start_sim_robot:=true, each in a scoped GroupAction so that
one robot's arguments do not reach the other's) and the fleet trainer (fleet_launch.py
fleet:=/r*); every robot's predictor must serve a model the trainer made, learned from the
robots' samples; after shutdown every process must have exited 0.

Runs where launch_testing and launch_ros are installed, and needs the trainer's fleet mode
(issue 25). The same checks run everywhere in test/process/test_fleet_launch_process.py.
"""

import unittest

import pytest
import launch_testing.actions
import launch_testing.asserts
from launch.actions import GroupAction, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from fleet_kit import launch_file, wait_fleet_served, wait_learned
from launch_support import isolated, release_domains, launch_domain_bench

ROBOTS = ('/r1', '/r2')


def _include(name, **arguments):
    return GroupAction([IncludeLaunchDescription(
        PythonLaunchDescriptionSource(launch_file(name)),
        launch_arguments=arguments.items())])


@pytest.mark.launch_test
def generate_test_description():
    robots = [_include('robot_launch.py', namespace=ns, start_sim_robot='true')
              for ns in ROBOTS]
    return isolated(*robots, _include('fleet_launch.py', fleet='/r*'))


class TestFleet(unittest.TestCase):

    def test_every_robot_serves_the_fleet_model(self, proc_output):
        proc_output.assertWaitFor('training on', timeout=30.0)
        with launch_domain_bench() as ros:
            wait_fleet_served(ros, list(ROBOTS))
            for ns in ROBOTS:
                wait_learned(ros, f'{ns}/predictor')


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):

    def test_every_node_exited_cleanly(self, proc_info):
        try:
            launch_testing.asserts.assertExitCodes(proc_info)
        finally:
            release_domains()
