"""``nn_one_bag record``'s ROS side: rclpy subscriptions that write what they receive to a bag.

Each topic is subscribed once it has a publisher of the type the params file needs, with the
QoS rosbag2 would ask for (``offline.recording.adapt_qos``: best effort where any publisher is),
and its messages are written serialized (``raw=True``: nothing is deserialized) with their
receive time on the node's clock, as ``ros2 bag record`` stamps them. Progress goes to stderr
once a second. SIGINT (Ctrl-C) and SIGTERM stop it between callbacks (``runtime.StopSignals``),
as does ``duration``; the bag is then closed, readable as it is.
"""

from __future__ import annotations

import functools
import sys
import time
from typing import Callable, Dict, Optional, Set, TextIO

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions

from nn_one_node.assembly.msgtypes import default_resolver
from nn_one_node.offline.recording import BagSink, adapt_qos, progress_line
from nn_one_node.ros.runtime import StopSignals

NODE_NAME = 'nn_one_bag_record'
DISCOVERY_PERIOD = 0.1   # s between looks for new publishers
PROGRESS_PERIOD = 1.0    # s between progress lines
DEPTH = 100              # messages a subscription may queue while the bag is written


class Recorder:
    """Subscribes ``topics`` ({name: type}) as publishers appear and writes them to ``sink``;
    ``optional`` ones too, where they have a publisher, without waiting for them (/clock)."""

    def __init__(self, node, topics: Dict[str, str], sink: BagSink,
                 say: Callable[[str], None], optional: Optional[Dict[str, str]] = None) -> None:
        self.node = node
        self.sink = sink
        self.say = say
        self.optional = dict(optional or {})
        self._todo: Dict[str, str] = {**topics, **self.optional}
        self.classes = {t: default_resolver(ty) for t, ty in self._todo.items()}
        self._noted: Set[str] = set()
        self._subs = []
        self.discover()

    @property
    def waiting(self):
        """The topics it needs that have no publisher yet."""
        return [t for t in self._todo if t not in self.optional]

    def discover(self) -> None:
        for topic, msgtype in list(self._todo.items()):
            infos = self.node.get_publishers_info_by_topic(topic)
            same = [i for i in infos if i.topic_type == msgtype]
            others = sorted({i.topic_type for i in infos if i.topic_type != msgtype})
            if others and topic not in self._noted:
                self._noted.add(topic)
                self.say(f'{topic}: a publisher of {", ".join(others)}, not {msgtype}: '
                         'its messages are not recorded')
            if not same:
                continue
            reliable, latched = adapt_qos(
                (i.qos_profile.reliability == ReliabilityPolicy.RELIABLE,
                 i.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL) for i in same)
            qos = QoSProfile(
                history=HistoryPolicy.KEEP_LAST, depth=DEPTH,
                reliability=ReliabilityPolicy.RELIABLE if reliable
                else ReliabilityPolicy.BEST_EFFORT,
                durability=DurabilityPolicy.TRANSIENT_LOCAL if latched
                else DurabilityPolicy.VOLATILE)
            self.sink.add(topic, msgtype)
            self._subs.append(self.node.create_subscription(
                self.classes[topic], topic, functools.partial(self._on_message, topic), qos,
                raw=True))
            del self._todo[topic]

    def _on_message(self, topic: str, data: bytes) -> None:
        self.sink.write(topic, self.node.get_clock().now().nanoseconds, data)


def record(topics: Dict[str, str], sink: BagSink, duration: Optional[float] = None,
           stream: TextIO = sys.stderr, optional: Optional[Dict[str, str]] = None) -> float:
    """Record until SIGINT, SIGTERM or ``duration`` seconds; return the seconds recorded. The
    sink is left open (the caller closes it, whatever happened). ``optional`` topics are
    recorded where they have a publisher, and not waited for."""
    def say(text: str) -> None:
        stream.write(text + '\n')
        stream.flush()

    with StopSignals() as stop:
        context = rclpy.Context()
        rclpy.init(context=context, signal_handler_options=SignalHandlerOptions.NO)
        node = executor = None
        started = time.monotonic()
        try:
            node = rclpy.create_node(NODE_NAME, context=context,
                                     start_parameter_services=False)
            recorder = Recorder(node, topics, sink, say, optional)
            node.create_timer(DISCOVERY_PERIOD, recorder.discover)
            executor = SingleThreadedExecutor(context=context)
            executor.add_node(node)
            started = time.monotonic()
            end = None if duration is None else started + duration
            next_line = started + PROGRESS_PERIOD
            while context.ok() and stop.requested is None:
                now = time.monotonic()
                if end is not None and now >= end:
                    break
                if now >= next_line:
                    say(progress_line(now - started, sink.counts, recorder.waiting))
                    next_line += PROGRESS_PERIOD
                executor.spin_once(timeout_sec=min(0.1, max(0.0, next_line - now)))
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        finally:
            seconds = time.monotonic() - started
            if executor is not None:
                executor.remove_node(node)
                executor.shutdown(timeout_sec=5.0)
            if node is not None:
                node.destroy_node()
            rclpy.try_shutdown(context=context)
    return seconds
