"""What the launch_testing tests share: a launch description on a ROS_DOMAIN_ID of their own,
DDS on loopback, for the launched nodes and for this process's test node alike; and the domain's
release after the last test. Imports launch: only test/launch uses it (where launch is
installed)."""

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import launch
import launch_testing.actions
from launch.actions import SetEnvironmentVariable
from rosbench import RosBench

from nn_one_node.ros.isolation import claim_domain_id, loopback_env

# The ROS_DOMAIN_ID each test module holds alone, from generate_test_description to the last
# test (post-shutdown tests release it).
_DOMAINS = []
_ISOLATION_KEYS = ('ROS_DOMAIN_ID', 'ROS_AUTOMATIC_DISCOVERY_RANGE', 'ROS_LOCALHOST_ONLY')


def isolated(*actions) -> launch.LaunchDescription:
    """``actions`` on a domain of this test's own, then ReadyToTest."""
    lock = claim_domain_id()
    _DOMAINS.append(lock)
    env = loopback_env(lock.domain_id)
    isolation = {k: env[k] for k in _ISOLATION_KEYS if k in env}
    # The test node (and launch_ros's own node, the lifecycle events' client) read this
    # process's environment; the launched nodes that of the launch context, which
    # SetEnvironmentVariable changes. DDS stays on loopback, on our own domain.
    os.environ.update(isolation)
    for key in ('ROS_LOCALHOST_ONLY', 'ROS_STATIC_PEERS'):
        if key not in env:
            os.environ.pop(key, None)
    setup = [SetEnvironmentVariable(k, v) for k, v in isolation.items()]
    setup.append(SetEnvironmentVariable('PYTHONUNBUFFERED', '1'))
    return launch.LaunchDescription(setup + list(actions) +
                                    [launch_testing.actions.ReadyToTest()])


@contextmanager
def launch_domain_bench():
    """A RosBench (test node and helpers) on the launch's domain."""
    ros = RosBench(int(os.environ['ROS_DOMAIN_ID']), Path(tempfile.mkdtemp()))
    try:
        yield ros
    finally:
        ros.close()


def release_domains() -> None:
    while _DOMAINS:
        _DOMAINS.pop().release()
