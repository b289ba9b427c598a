"""A bare relay node: the baseline the predictor is measured against.

It subscribes ``in`` and republishes each message unchanged on ``out``, with exactly the
predictor's QoS (sensor-data subscription, reliable depth-10 publisher, both overridable the same
way) and the predictor's start-up and executor code (``nn_one_node.ros.runtime.run`` with its
``executor`` parameter), so that the only difference measured is the predictor's own work per
message.

    python bench/relay.py --ros-args -p executor:=single_threaded -r __ns:=/bench
"""

from __future__ import annotations

import sys
from typing import Any, List, Optional

from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from rclpy.qos_overriding_options import QoSOverridingOptions
from std_msgs.msg import Float64MultiArray

from nn_one_node.ros.params import declare
from nn_one_node.ros.runtime import executor_param, run


class RelayNode(Node):
    """Republishes every ``in`` message on ``out``."""

    def __init__(self, node_name: str = 'relay', **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        declare(self, [executor_param()])
        self._pub = self.create_publisher(
            Float64MultiArray, 'out', QoSProfile(depth=10),
            qos_overriding_options=QoSOverridingOptions.with_default_policies())
        self._sub = self.create_subscription(
            Float64MultiArray, 'in', self._on_message, qos_profile_sensor_data,
            qos_overriding_options=QoSOverridingOptions.with_default_policies())
        self.get_logger().info(
            f'relaying {self.resolve_topic_name("in")} to {self.resolve_topic_name("out")}')

    def _on_message(self, msg: Float64MultiArray) -> None:
        self._pub.publish(msg)


def main(args: Optional[List[str]] = None) -> None:
    sys.exit(run(RelayNode, args))


if __name__ == '__main__':
    main()
