"""``ros.fleet.RosFleet.seen``: which robots a look at the graph finds, on a stand-in node whose
graph is set by the test (the process tests run it over DDS, where what arrives when is not the
test's to choose). The case here: a predictor whose parameter service is in the graph before its
node's name, as on a loaded machine."""

from types import SimpleNamespace

import pytest
from diagnostic_msgs.msg import DiagnosticStatus

from nn_one_node.learning.fleet import STATUSES_PER_SEC, Fleet
from nn_one_node.ros.fleet import RosFleet, namespaces

FLOAT_ARRAY = ['std_msgs/msg/Float64MultiArray']


class Log:
    def info(self, msg, **_):
        pass

    warning = debug = info


class Graph:
    """What a node's graph calls answer; ``asked`` records the servers counted."""

    def __init__(self, counting=True):
        self.topics, self.nodes, self.servers, self.asked = [], [], set(), []
        if counting:  # rclpy from Jazzy on
            self.count_services = self._count_services

    def get_topic_names_and_types(self):
        return list(self.topics)

    def get_node_names_and_namespaces(self):
        return list(self.nodes)

    def _count_services(self, name):
        self.asked.append(name)
        return int(name in self.servers)

    def count_publishers(self, topic):
        return 1

    def create_subscription(self, msg_type, topic, *args, **kwargs):
        return SimpleNamespace(get_publisher_count=lambda: int(
            any(name == topic for name, _ in self.topics)))

    def create_client(self, *args, **kwargs):  # its service's halves not both matched yet
        return SimpleNamespace(service_is_ready=lambda: False)

    def get_fully_qualified_name(self):
        return '/trainer'

    def create_timer(self, *args, **kwargs):
        return SimpleNamespace(cancel=lambda: None, is_canceled=lambda: True,
                               reset=lambda: None)


def fleet_on(graph, patterns=('/r*',)):
    return RosFleet(graph, Fleet(list(patterns), 'predictor', Log()), lambda ns: None,
                    lambda: None)


def test_a_predictor_is_found_by_its_service_before_its_name():
    graph = Graph()
    graph.topics = [('/r1/features', FLOAT_ARRAY), ('/r1/prediction', FLOAT_ARRAY),
                    ('/parameter_events', ['rcl_interfaces/msg/ParameterEvent'])]
    fleet = fleet_on(graph)
    assert fleet.seen() == {}  # its topics, but no server yet
    graph.servers.add('/r1/predictor/set_parameters_atomically')
    assert fleet.seen() == {'/r1': (False, True)}
    graph.nodes = [('predictor', '/r1')]
    graph.asked.clear()
    assert fleet.seen() == {'/r1': (False, True)}
    assert graph.asked == []  # named in the graph: no server counted


def test_a_robot_joined_by_its_server_stays_up_while_its_link_is_not_ready():
    graph = Graph()
    graph.topics = [('/r1/features', FLOAT_ARRAY)]
    graph.servers.add('/r1/predictor/set_parameters_atomically')
    fleet = fleet_on(graph)
    for _ in range(3):
        fleet.look()
        assert fleet.fleet.robots['/r1'].up and fleet.fleet.robots['/r1'].joins == 1
    graph.servers.clear()  # it leaves: gone
    fleet.look()
    assert not fleet.fleet.robots['/r1'].up


def test_only_matching_namespaces_are_asked():
    graph = Graph()
    graph.topics = [('/r1/features', FLOAT_ARRAY), ('/other/features', FLOAT_ARRAY),
                    ('/r2/arm/joint_states', FLOAT_ARRAY), ('/scan', FLOAT_ARRAY)]
    fleet_on(graph).seen()
    assert graph.asked == ['/r1/predictor/set_parameters_atomically',
                           '/r2/predictor/set_parameters_atomically']


def test_without_count_services_a_predictor_is_found_by_its_name():
    graph = Graph(counting=False)  # Humble's rclpy
    graph.topics = [('/r1/features', FLOAT_ARRAY)]
    fleet = fleet_on(graph)
    assert fleet.seen() == {}
    graph.nodes = [('predictor', '/r1')]
    assert fleet.seen() == {'/r1': (False, True)}


def test_a_robot_publishing_labeled_samples_is_found_without_a_predictor():
    graph = Graph()
    graph.topics = [('/r3/labeled_samples', FLOAT_ARRAY)]
    assert fleet_on(graph).seen() == {'/r3': (True, False)}


@pytest.mark.parametrize('topic, expected', [
    ('/a/b/c', ['/a', '/a/b']), ('/x', []), ('/r1/features', ['/r1']), ('/', [])])
def test_namespaces(topic, expected):
    assert namespaces(topic) == expected


def test_unchanged_robot_statuses_are_spread_and_a_changed_one_goes_out_at_once():
    """Past STATUSES_PER_SEC x diagnostics_period robots, a robot whose level and message did
    not change is published every robots / STATUSES_PER_SEC seconds, not at every call."""
    n = int(3 * STATUSES_PER_SEC)  # every 3 s at a diagnostics_period of 1 s
    graph = Graph()
    graph.topics = [(f'/r{k}/labeled_samples', FLOAT_ARRAY) for k in range(n)]
    fleet = fleet_on(graph)
    t = [0.0]
    fleet._clock = SimpleNamespace(now=lambda: SimpleNamespace(nanoseconds=int(t[0] * 1e9)))
    fleet.look()
    assert len(fleet.fleet.robots) == n
    assert len(fleet.statuses(period=1.0)) == n
    t[0] = 1.0
    assert fleet.statuses(period=1.0) == []
    graph.topics.pop()  # one robot leaves: its status (now STALE) goes out at once
    fleet.look()
    t[0] = 2.0
    (gone,) = fleet.statuses(period=1.0)
    assert gone.name == f'/trainer: robot /r{n - 1}' and gone.level == DiagnosticStatus.STALE
    t[0] = 3.0  # every robot's again, but the gone one's (sent 1 s ago, unchanged)
    again = fleet.statuses(period=1.0)
    assert len(again) == n - 1 and gone.name not in {st.name for st in again}
