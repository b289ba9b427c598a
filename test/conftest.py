"""Shared fixtures. Every process this test session starts keeps DDS on loopback, on a
ROS_DOMAIN_ID that this test holds alone (see nn_one_node.ros.isolation)."""

import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / 'support'))

from nn_one_node.ros.isolation import claim_domain_id, keep_this_process_on_loopback  # noqa: E402

# This process's own rclpy contexts read these at init.
keep_this_process_on_loopback()

# A test run started as a background job of a non-interactive shell (`make test &`) ignores
# SIGINT, and every process it starts inherits that: the demo would then ignore the Ctrl-C its
# test sends (found that way). exec keeps an ignored signal ignored but resets a handled one to
# its default, so handling it here gives the processes started from here the default.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def domain_id():
    with claim_domain_id() as lock:
        yield lock.domain_id


@pytest.fixture
def ros(domain_id, tmp_path):
    """A RosBench: installed executables as processes and a test node, on a private domain."""
    from rosbench import RosBench
    bench = RosBench(domain_id, tmp_path)
    try:
        yield bench
    finally:
        bench.close()
