"""The fleet's ROS side: the graph looked at on a timer, a subscription and a predictor link per
robot, and one ``/diagnostics`` status per robot. The bookkeeping (which namespaces are robots,
up or gone, their deployments and metrics) is ``learning.fleet.Fleet``'s.

rclpy has no graph callback: every ``POLL_PERIOD`` seconds of steady time (so that robots are
found with ``use_sim_time`` before ``/clock`` ticks too) the topics and the nodes are listed
(and every ``SYNC_PERIOD`` while a robot up lacks the model in force, its deployment polled):
a robot is a matching namespace with a publisher of ``<ns>/labeled_samples``
(std_msgs/Float64MultiArray) or the node ``<ns>/<predictor_node>`` (or, once linked, that
predictor's parameter service). Our own subscription keeps a robot's topic in the graph, so it
is its publishers that are counted.
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
from nn_one_node.ros.predictor_link import RosPredictorLink

SAMPLES_TYPE = 'std_msgs/msg/Float64MultiArray'
LEVELS = {'ok': DiagnosticStatus.OK, 'warn': DiagnosticStatus.WARN,
          'stale': DiagnosticStatus.STALE}


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
        suffix = '/' + SAMPLES_TOPIC
        for topic, types in node.get_topic_names_and_types():
            if topic.endswith(suffix) and SAMPLES_TYPE in types:
                ns = topic[:-len(suffix)] or '/'
                if fleet.wants(ns) and node.count_publishers(topic):
                    found.setdefault(ns, [False, False])[0] = True
        target = fleet.predictor_node.strip('/')
        if target:
            for name, namespace in node.get_node_names_and_namespaces():
                full = f'{namespace.rstrip("/")}/{name}'
                if full.endswith('/' + target):
                    ns = full[:-len(target) - 1] or '/'
                    if fleet.wants(ns):
                        found.setdefault(ns, [False, False])[1] = True
        # a linked predictor whose service answers is up, even before its node's name reaches
        # this graph (names come later than endpoints, seconds later on a loaded machine)
        for ns, link in self._links.items():
            if link.deploy_ready():
                found.setdefault(ns, [False, False])[1] = True
        return {ns: (a, b) for ns, (a, b) in found.items()}

    def look(self) -> None:
        """Robots that joined, came back or left; then the deployments polled."""
        self.fleet.observe(self.seen(), self._connect, self._forget)
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

    # --------------------------------------------------------------------------- diagnostics
    def statuses(self, fleet_accuracy: float = math.nan) -> List[DiagnosticStatus]:
        """One status a robot, ``<trainer>: robot <ns>``: OK, WARN (its problems), STALE
        (gone)."""
        prefix = self.node.get_fully_qualified_name()
        out = []
        for ns, robot in sorted(self.fleet.robots.items()):
            level, message, values = self.fleet.report(robot, fleet_accuracy)
            status = DiagnosticStatus(name=f'{prefix}: robot {ns}', hardware_id=HARDWARE_ID,
                                      level=LEVELS[level], message=message)
            status.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
            out.append(status)
        return out
