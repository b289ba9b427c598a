"""The fleet's ROS side: the graph looked at on a timer, a subscription and a predictor link per
robot, and one ``/diagnostics`` status per robot. The bookkeeping (which namespaces are robots,
up or gone, their deployments and metrics) is ``learning.fleet.Fleet``'s.

rclpy has no graph callback: every ``POLL_PERIOD`` seconds of steady time (so that robots are
found with ``use_sim_time`` before ``/clock`` ticks too) the topics and the nodes are listed
(and every ``SYNC_PERIOD`` while a robot up lacks the model in force, its deployment polled):
a robot is a matching namespace with a publisher of ``<ns>/labeled_samples``
(std_msgs/Float64MultiArray) or the node ``<ns>/<predictor_node>`` or that predictor's
parameter service. Our own subscription keeps a robot's topic in the graph, so it is its
publishers that are counted; our own clients keep its service there, so it is its servers.

A node's name reaches the graph later than its topics and services (each participant's
``ros_discovery_info`` after endpoint discovery: seconds later on a loaded machine), so a
predictor is also found by its ``set_parameters_atomically`` server, asked for in each matching
namespace of the graph's topics (``Node.count_services``: rclpy from Jazzy on; by the name only
on Humble).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Tuple

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.qos import QoSProfile
from std_msgs.msg import Float64MultiArray

from nn_one_node.learning.fleet import POLL_PERIOD, SAMPLES_TOPIC, SYNC_PERIOD, Fleet
from nn_one_node.ros.diagnostics import HARDWARE_ID
from nn_one_node.ros.predictor_link import DEPLOY_SERVICE, RosPredictorLink

SAMPLES_TYPE = 'std_msgs/msg/Float64MultiArray'
LEVELS = {'ok': DiagnosticStatus.OK, 'warn': DiagnosticStatus.WARN,
          'stale': DiagnosticStatus.STALE}


def namespaces(topic: str) -> List[str]:
    """The namespaces a topic name lies in, the root's left out: ``/a/b/c`` -> ``/a``,
    ``/a/b``."""
    parts = topic.strip('/').split('/')[:-1]
    return ['/' + '/'.join(parts[:k]) for k in range(1, len(parts) + 1)]


class RosFleet:
    """Finds ``fleet``'s robots on ``node``'s graph and wires each: its ``labeled_samples``
    (reliable, depth 1000, as the trainer's own) to the callback ``callback_for(namespace)``
    gives, its
    predictor to a ``RosPredictorLink``. ``sync()`` is called after each look (the trainer
    core's: deploys while active)."""

    def __init__(self, node: Node, fleet: Fleet,
                 callback_for: Callable[[str], Callable[[Any], None]],
                 sync: Callable[[], None]) -> None:
        self.node = node
        self.fleet = fleet
        self._callback_for = callback_for
        self._sync = sync
        self._subs: Dict[str, Any] = {}
        self._links: Dict[str, RosPredictorLink] = {}
        self._statuses: Dict[str, DiagnosticStatus] = {}  # each robot's, refilled (statuses)
        self._sent: Dict[str, Tuple[float, str, str]] = {}  # each robot's last: when, headline
        # the graph's topic and node lists at the last look, and what of them matched `fleet`
        self._topics: Any = None
        self._sample_topics: List[Tuple[str, str]] = []  # (namespace, its labeled_samples)
        self._nodes: Any = None
        self._predictors: List[str] = []  # namespaces with the predictor node
        self._spaces: List[str] = []  # matching namespaces of the topics (predictors to ask for)
        self._count_services = getattr(node, 'count_services', None)  # (not on Humble)
        self._clock = Clock(clock_type=ClockType.STEADY_TIME)
        self.timer = node.create_timer(POLL_PERIOD, self.look, clock=self._clock)
        # while a robot up lacks the model in force (it joined, came back, or did not answer):
        # its deployment polled every SYNC_PERIOD; cancelled once every robot up serves it
        self.sync_timer = node.create_timer(SYNC_PERIOD, self._sync_tick, clock=self._clock)
        self.sync_timer.cancel()

    def destroy(self) -> None:
        self.node.destroy_timer(self.timer)
        self.node.destroy_timer(self.sync_timer)
        for ns in list(self._subs):
            self._forget(ns)

    # ------------------------------------------------------------------------------- looking
    def seen(self) -> Dict[str, Tuple[bool, bool]]:
        """Matching namespaces in the graph now: (a labeled_samples publisher, the predictor)."""
        fleet, node = self.fleet, self.node
        found: Dict[str, List[bool]] = {}
        topics = node.get_topic_names_and_types()
        if topics != self._topics:  # matched anew only when the graph's lists change
            suffix = '/' + SAMPLES_TOPIC
            self._topics = topics
            self._sample_topics = [
                (topic[:-len(suffix)] or '/', topic) for topic, types in topics
                if topic.endswith(suffix) and SAMPLES_TYPE in types
                and fleet.wants(topic[:-len(suffix)] or '/')]
            self._spaces = sorted({ns for topic, _ in topics for ns in namespaces(topic)
                                   if fleet.wants(ns)})
        for ns, topic in self._sample_topics:
            if self._publishers(ns, topic):
                found.setdefault(ns, [False, False])[0] = True
        target = fleet.predictor_node.strip('/')
        nodes = node.get_node_names_and_namespaces() if target else []
        if nodes != self._nodes:
            self._nodes = nodes
            fulls = [f'{namespace.rstrip("/")}/{name}' for name, namespace in nodes]
            self._predictors = [ns for ns in (full[:-len(target) - 1] or '/' for full in fulls
                                              if full.endswith('/' + target))
                                if fleet.wants(ns)]
        for ns in self._predictors:
            found.setdefault(ns, [False, False])[1] = True
        # a predictor whose parameter service has a server is up, before its name is in the
        # graph: by the servers counted (a server's halves are discovered one by one: its
        # link's client may not be ready yet), or by its link's client being ready (Humble)
        count = self._count_services if target else None
        for ns in self._spaces if count is not None else ():
            if (not found.get(ns, (False, False))[1]
                    and count(f'{ns.rstrip("/")}/{target}/{DEPLOY_SERVICE}')):
                found.setdefault(ns, [False, False])[1] = True
        for ns, link in self._links.items():
            if not found.get(ns, (False, False))[1] and link.deploy_ready():
                found.setdefault(ns, [False, False])[1] = True
        return {ns: (a, b) for ns, (a, b) in found.items()}

    def _publishers(self, ns: str, topic: str) -> int:
        """Publishers of a robot's labeled_samples: those our subscription is matched with once
        there is one (its reader's count: no walk through the graph, which costs more at 40
        nodes), else the graph's."""
        count = getattr(self._subs.get(ns), 'get_publisher_count', None)  # (not on Humble)
        return count() if count is not None else self.node.count_publishers(topic)

    def look(self) -> None:
        """Robots that joined, came back or left; then the deployments polled, unless every
        robot up serves the model in force (the trainer's tick polls them, for read-backs)."""
        self.fleet.observe(self.seen(), self._connect, self._forget)
        if not self.fleet.in_sync:
            self._sync()
        if self.fleet.in_sync or not self.fleet.version:
            self.sync_timer.cancel()
        elif self.sync_timer.is_canceled():
            self.sync_timer.reset()

    def _sync_tick(self) -> None:
        if self.fleet.in_sync:
            self.sync_timer.cancel()
        else:
            self._sync()

    def _connect(self, ns: str):
        self._subs[ns] = self.node.create_subscription(
            Float64MultiArray, f'{ns}/{SAMPLES_TOPIC}',
            self._callback_for(ns), QoSProfile(depth=1000))
        if not self.fleet.predictor_node:
            return None
        link = RosPredictorLink(self.node, f'{ns}/{self.fleet.predictor_node}')
        self._links[ns] = link
        return link

    def _forget(self, ns: str) -> None:
        sub = self._subs.pop(ns, None)
        if sub is not None:
            self.node.destroy_subscription(sub)
        link = self._links.pop(ns, None)
        if link is not None:
            link.destroy()
        self._statuses.pop(ns, None)
        self._sent.pop(ns, None)

    # --------------------------------------------------------------------------- diagnostics
    def statuses(self, fleet_accuracy: float = math.nan, period: float = 1.0
                 ) -> List[DiagnosticStatus]:
        """The robots' statuses due, ``<trainer>: robot <ns>``: OK, WARN (its problems), STALE
        (gone). ``period``: the trainer's diagnostics_period, at which this is called. A
        robot's status is due when its level or message changed, else every
        ``Fleet.status_every`` (the fleet's statuses kept to ``STATUSES_PER_SEC``)."""
        out = []
        now = self._clock.now().nanoseconds * 1e-9
        every = self.fleet.status_every(period) - period / 2  # (calls come about period apart)
        for ns, robot in sorted(self.fleet.robots.items()):
            level, message = self.fleet.headline(robot, fleet_accuracy)
            last = self._sent.get(ns)
            if last is not None and last[1:] == (level, message) and now - last[0] < every:
                continue
            self._sent[ns] = (now, level, message)
            values = self.fleet.robot_values(robot, fleet_accuracy)
            status = self._statuses.get(ns)
            if status is None or len(status.values) != len(values):  # (the same keys)
                # made once a robot and refilled: a message of 20 values costs more to make
                # than to send, and 20 robots' of them come every second
                status = self._statuses[ns] = DiagnosticStatus(
                    name=f'{self.node.get_fully_qualified_name()}: robot {ns}',
                    hardware_id=HARDWARE_ID, values=[KeyValue(key=k) for k in values])
            status.level, status.message = LEVELS[level], message
            for kv, value in zip(status.values, values.values()):
                kv.value = str(value)
            out.append(status)
        return out
