"""A stop (SIGINT, SIGTERM) at any moment of a node's life ends ``runtime.run`` with 0, in order.

Found in CI: sim_sensor, sent SIGTERM just after it logged its start line, aborted (exit -6,
"Destroying callback manager with callbacks remaining"). rclpy's own signal handler shuts the
context down from a thread of its own; landing while the EventsExecutor registered the node's
entities, that left rclpy 7.1 holding callbacks it no longer tracked, and it aborted at exit.
``runtime.StopSignals`` now takes the signals: a signal only asks for the stop, and the context
goes down on the main thread, between callbacks. These tests run ``runtime.run`` in this process.
"""

import os
import signal
import time

import pytest
import rclpy
from rclpy.node import Node
from std_msgs.msg import Float64

from nn_one_node.ros import runtime
from nn_one_node.ros.runtime import StopSignals, events_executor_class, executor_param

# Long enough for rclpy's signal thread to have shut the context down (it takes milliseconds).
NO_SHUTDOWN_WITHIN_SEC = 0.5


def goes_down_within(context, seconds):
    """True as soon as ``context`` is shut down, False if it is still up after ``seconds``.
    Polled: rclpy's signal thread shuts rcl down without calling the on_shutdown callbacks."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not context.ok():
            return True
        time.sleep(0.005)
    return not context.ok()


@pytest.fixture
def on_domain(domain_id, monkeypatch):
    """``runtime.run`` inits the default context from the environment: give it this domain."""
    monkeypatch.setenv('ROS_DOMAIN_ID', str(domain_id))
    return domain_id


class Probe(Node):
    """A node with the entities the EventsExecutor registers: a subscription, a publisher (each
    with its QoS event handlers), a timer; records what happened to it."""

    def __init__(self, executor='auto', on_first_tick=None):
        super().__init__('stop_probe', parameter_overrides=[
            rclpy.parameter.Parameter('executor', value=executor)])
        self.declare_parameter(executor_param().name, executor_param().default)
        self.create_subscription(Float64, 'probe_in', lambda _msg: None, 1)
        self.pub = self.create_publisher(Float64, 'probe_out', 1)
        self.ticks = 0
        self.exited = False
        self._on_first_tick = on_first_tick
        self.create_timer(0.01, self._tick)

    def _tick(self):
        self.ticks += 1
        if self.ticks == 1 and self._on_first_tick is not None:
            self._on_first_tick()

    def on_exit(self):
        self.exited = True


def handlers():
    return {sig: signal.getsignal(sig) for sig in runtime.STOP_SIGNALS}


def test_stop_signals_only_record_the_first_signal_and_restore_what_was_there():
    before = handlers()
    with StopSignals() as stop:
        assert stop.requested is None
        os.kill(os.getpid(), signal.SIGTERM)  # handled at once, on this (the main) thread
        os.kill(os.getpid(), signal.SIGINT)   # a second one neither raises nor overrides
        assert stop.requested == signal.SIGTERM
    assert handlers() == before


@pytest.mark.parametrize('sig', [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_the_node_is_built_never_takes_the_context_down_under_it(on_domain, sig):
    seen = {}

    def build():
        node = Probe()
        os.kill(os.getpid(), sig)
        # rclpy's own handler would now shut the context down from its thread, while the
        # executor is about to register the entities: it must stay up until the main thread
        # takes it down.
        seen['shut_down_under_it'] = goes_down_within(node.context, NO_SHUTDOWN_WITHIN_SEC)
        seen['node'] = node
        return node

    before = handlers()
    assert runtime.run(build, ['probe']) == 0
    assert seen['shut_down_under_it'] is False
    node = seen['node']
    assert node.ticks == 0, 'a node stopped while it was built was spun'
    assert node.exited, 'on_exit did not run'
    assert not node.context.ok()
    assert handlers() == before


@pytest.mark.parametrize('executor', ['events', 'single_threaded'])
@pytest.mark.parametrize('sig', [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_spinning_ends_run_with_0_in_order(on_domain, executor, sig):
    if executor == 'events' and events_executor_class() is None:
        pytest.skip('this rclpy has no EventsExecutor')
    nodes = []

    def build():
        node = Probe(executor, on_first_tick=lambda: os.kill(os.getpid(), sig))
        nodes.append(node)
        return node

    before = handlers()
    assert runtime.run(build, ['probe']) == 0
    (node,) = nodes
    assert node.ticks >= 1 and node.exited
    assert not node.context.ok()
    assert list(node.timers) == [] and list(node.subscriptions) == [], 'the node was not destroyed'
    assert handlers() == before, 'the executor left its signal handlers behind'
