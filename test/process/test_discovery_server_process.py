"""The stack discovering through a Fast DDS Discovery Server on loopback, as
doc/fleet_operations.md sets it up: ``fast-discovery-server -i 0 -l 127.0.0.1 -p PORT`` (a port
free for this run), every node with ``ROS_DISCOVERY_SERVER=127.0.0.1:PORT``, the test node (a
tool, as ``ros2 topic list`` would be) a super client. The robot path of nn_one_launch.py
learns and the predictor serves the model the trainer deployed; a participant on default
(multicast) discovery sees none of it, so the test is through the server; the server is gone
when the test ends (its process ended, its port free). The fleet, through the same server,
and the fleet through the same server: robots of robot_launch.py, the trainer of fleet_launch.py.

Each case runs in a Python process of its own (this file as a script, with the case's name):
Fast DDS keeps the discovery-server setting of the first participant a process makes with
``ROS_DISCOVERY_SERVER`` set for every later one, even once the variable is gone, so a test node
made here would leave the whole test session a client of a server that no longer runs (found
that way: every DDS test after this module failed)."""

import os
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

if __name__ == '__main__':  # a case in a process of its own: the support modules, as conftest
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'support'))

import pytest  # noqa: E402
from discovery_server import DiscoveryServer, udp_port_is_free
from fleet_kit import (start_fleet_trainer, start_robot, wait_fleet_served,
                       wait_learned)
from launch_scenario import evaluate_launch_file, installed_config, start_node, wait_for_deployment
from rosbench import RosBench
from std_msgs.msg import Float64

# Lists the nodes its participant discovers within a few seconds (or until it sees
# /predictor): run with and without ROS_DISCOVERY_SERVER.
LOOK = """
import time, rclpy
rclpy.init()
node = rclpy.create_node('looking')
deadline = time.monotonic() + 4.0
names = set()
while time.monotonic() < deadline and '/predictor' not in names:
    rclpy.spin_once(node, timeout_sec=0.1)
    names = {f"{ns.rstrip('/')}/{n}" for n, ns in node.get_node_names_and_namespaces()}
print(sorted(names))
"""


@contextmanager
def through_server(tmp_path, domain_id):
    """A server, and a RosBench whose test node is its super client and whose processes are
    its clients; afterwards, the server's process has ended and its port is free. Only in a
    process of its own (see the module's docstring)."""
    assert __name__ == '__main__', 'a discovery-server case runs in a process of its own'
    server = DiscoveryServer(tmp_path / 'discovery_server.log')
    ros = None
    try:
        server.wait_running()
        os.environ.update(server.client_env(super_client=True))
        ros = RosBench(domain_id, tmp_path)
        ros.env.pop('ROS_SUPER_CLIENT')  # the nodes are plain clients, as on a robot
        yield server, ros
    finally:
        if ros is not None:
            ros.close()
        server.stop()
    assert server.proc.poll() is not None, 'the discovery server is still running'
    assert udp_port_is_free(server.port), f'port {server.port} still held after the test'


def nodes_seen(ros, env) -> str:
    out = subprocess.run([sys.executable, '-c', LOOK], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def robot_path(tmp_path: Path, domain_id: int) -> None:
    with through_server(tmp_path, domain_id) as (server, ros):
        ev = evaluate_launch_file(start_assembler='true', start_sim_robot='true',
                                  params_file=installed_config('robot.yaml'))
        procs = {spec.name: start_node(ros, spec) for spec in ev.nodes}
        assert ros.env['ROS_DISCOVERY_SERVER'] == server.address
        loss = ros.collect(Float64, '/trainer/loss')
        wait_for_deployment(ros, loss, timeout=90.0)  # the predictor serves the trainer's
        wait_learned(ros, '/predictor')  # and learning goes on to the robot's truth

        # through the server only: a participant on default discovery finds none of the nodes
        simple = dict(ros.env)
        simple.pop('ROS_DISCOVERY_SERVER')
        assert '/predictor' in nodes_seen(ros, {**ros.env, 'ROS_SUPER_CLIENT': 'TRUE'})
        assert '/predictor' not in nodes_seen(ros, simple)
        for name, proc in procs.items():
            assert proc.stop(signal.SIGINT) == 0, (name, proc.tail())


def fleet(tmp_path: Path, domain_id: int) -> None:
    with through_server(tmp_path, domain_id) as (server, ros):
        robots = {ns: start_robot(ros, ns) for ns in ('/r1', '/r2')}
        # the trainer finds robots from the graph: a super client sees every robot's topics
        # (a plain client sees only the topics it uses itself: doc/fleet_operations.md)
        trainer = start_fleet_trainer(ros, server.client_env(super_client=True), fleet='/r*')
        wait_fleet_served(ros, list(robots))
        for ns in robots:
            wait_learned(ros, f'{ns}/predictor')
        assert trainer.stop(signal.SIGINT) == 0, trainer.tail()
        for procs in robots.values():
            for proc in procs.values():
                assert proc.stop(signal.SIGINT) == 0, proc.tail()


CASES = {'robot_path': robot_path, 'fleet': fleet}


def run_case(name: str, tmp_path: Path, domain_id: int) -> None:
    """The case, in a Python process of its own; its output in the failure."""
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    out = subprocess.run([sys.executable, __file__, name, str(tmp_path), str(domain_id)],
                         env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, f'{name} through a discovery server:\n{out.stdout[-4000:]}' \
                                f'\n{out.stderr[-4000:]}'


@pytest.mark.slow
def test_the_robot_path_learns_and_serves_through_a_discovery_server(tmp_path, domain_id):
    run_case('robot_path', tmp_path, domain_id)


@pytest.mark.slow
def test_the_fleet_learns_and_serves_through_a_discovery_server(tmp_path, domain_id):
    run_case('fleet', tmp_path, domain_id)


if __name__ == '__main__':
    from nn_one_node.ros.isolation import keep_this_process_on_loopback
    keep_this_process_on_loopback()
    CASES[sys.argv[1]](Path(sys.argv[2]), int(sys.argv[3]))
