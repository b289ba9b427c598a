"""The lifecycle services of a managed node, called from the RosBench's test node as
`ros2 lifecycle` and nav2_lifecycle_manager call them (lifecycle_msgs ChangeState, GetState,
GetAvailableTransitions)."""

from __future__ import annotations

import time
from typing import List, Set

from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetAvailableTransitions, GetState
from rosbench import DEFAULT_TIMEOUT, RETRY_SEC

# transition -> the state it ends in when it succeeds
GOALS = {
    Transition.TRANSITION_CONFIGURE: 'inactive', Transition.TRANSITION_CLEANUP: 'unconfigured',
    Transition.TRANSITION_ACTIVATE: 'active', Transition.TRANSITION_DEACTIVATE: 'inactive',
    Transition.TRANSITION_UNCONFIGURED_SHUTDOWN: 'finalized',
    Transition.TRANSITION_INACTIVE_SHUTDOWN: 'finalized',
    Transition.TRANSITION_ACTIVE_SHUTDOWN: 'finalized',
}
SHUTDOWN_FROM = {'unconfigured': Transition.TRANSITION_UNCONFIGURED_SHUTDOWN,
                 'inactive': Transition.TRANSITION_INACTIVE_SHUTDOWN,
                 'active': Transition.TRANSITION_ACTIVE_SHUTDOWN}


class Lifecycle:
    """The lifecycle services of node ``name`` (e.g. '/predictor').

    Clients are made at once, so that they have matched the server before the first call (see
    RosBench.call). A ChangeState is not repeatable; if its reply is lost, the state tells
    whether it took effect (goal reached: success) or not (sent again).
    """

    def __init__(self, ros, name: str) -> None:
        self.ros = ros
        self.name = name
        for srv, suffix in ((ChangeState, 'change_state'), (GetState, 'get_state'),
                            (GetAvailableTransitions, 'get_available_transitions'),
                            (GetAvailableTransitions, 'get_transition_graph')):
            ros.client(srv, f'{name}/{suffix}')

    def state(self, timeout: float = DEFAULT_TIMEOUT) -> str:
        reply = self.ros.call(GetState, f'{self.name}/get_state', GetState.Request(), timeout,
                              repeatable=True)
        return reply.current_state.label

    def wait_for_state(self, label: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        """The node is up and in ``label``: the get_state service answered with it."""
        self.ros.spin_until(lambda: self.state(timeout) == label, timeout,
                            f'{self.name} in state {label}')

    def available(self, graph: bool = False) -> Set[str]:
        """'start -[label]-> goal' for each transition available now (or of the whole graph)."""
        service = 'get_transition_graph' if graph else 'get_available_transitions'
        reply = self.ros.call(GetAvailableTransitions, f'{self.name}/{service}',
                              GetAvailableTransitions.Request(), repeatable=True)
        return {f'{t.start_state.label} -[{t.transition.label}]-> {t.goal_state.label}'
                for t in reply.available_transitions}

    def change(self, transition_id: int, timeout: float = DEFAULT_TIMEOUT,
               label: str = '') -> bool:
        """Ask for a transition (by id, or by label as `ros2 lifecycle set` does); its success."""
        ros, service = self.ros, f'{self.name}/change_state'
        client = ros.client(ChangeState, service)
        ros.spin_until(lambda: client.wait_for_service(timeout_sec=0.0), timeout,
                       f'service {service}')
        request = ChangeState.Request(transition=Transition(id=transition_id, label=label))
        before = self.state(timeout)
        deadline = time.monotonic() + timeout
        while True:
            future = client.call_async(request)
            give_up = min(deadline, time.monotonic() + RETRY_SEC)
            ros.spin_until(lambda: future.done() or time.monotonic() >= give_up, timeout + 1.0,
                           f'reply from {service}')
            if future.done():
                return future.result().success
            client.remove_pending_request(future)
            if GOALS.get(transition_id) != 'finalized':
                now = self.state(timeout)
                if now != before:
                    return now == GOALS.get(transition_id)
            if time.monotonic() >= deadline:
                raise AssertionError(f'no reply from {service} within {timeout} s\n{ros.logs()}')

    # the transitions by name
    def configure(self, **kw) -> bool:
        return self.change(Transition.TRANSITION_CONFIGURE, **kw)

    def activate(self, **kw) -> bool:
        return self.change(Transition.TRANSITION_ACTIVATE, **kw)

    def deactivate(self, **kw) -> bool:
        return self.change(Transition.TRANSITION_DEACTIVATE, **kw)

    def cleanup(self, **kw) -> bool:
        return self.change(Transition.TRANSITION_CLEANUP, **kw)

    def shutdown(self, **kw) -> bool:
        return self.change(SHUTDOWN_FROM[self.state()], **kw)


def topics_of(ros, node: str, namespace: str = '/', kind: str = 'publishers') -> List[str]:
    """The topic names node ``node`` publishes (or subscribes to), from the ROS graph."""
    graph = ros.node
    by_node = (graph.get_publisher_names_and_types_by_node if kind == 'publishers'
               else graph.get_subscriber_names_and_types_by_node)
    try:
        return sorted(name for name, _ in by_node(node, namespace))
    except Exception:  # noqa: BLE001 - rclpy raises NodeNameNonExistentError before discovery
        return []

