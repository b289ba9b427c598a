"""The spin loop of nn_one_node.ros.runtime holds its memory flat (issue 6, found by the soak).

Found by bench/soak.py: both nodes grew by about 20 KiB a minute, idle or busy, on the events
executor and not on the single-threaded one. rclpy's EventsExecutor keeps about 32 bytes per call
of ``spin_until_future_complete(..., timeout_sec=...)``, which the loop made ten times a second:
some 27 MB a day. Here the loop runs in this process with a 0.1 ms poll, so that a few seconds
make tens of thousands of calls, and VmRSS must not grow with them.
"""

import os
import threading

import pytest
import rclpy
from reliability_kit import rss_kib
from rclpy.context import Context
from rclpy.executors import ExternalShutdownException

from nn_one_node.ros import runtime
from nn_one_node.ros.runtime import events_executor_class, make_executor


@pytest.mark.parametrize('choice', ['events', 'single_threaded'])
def test_the_spin_loop_does_not_grow_with_its_polls(domain_id, monkeypatch, choice):
    if choice == 'events' and events_executor_class() is None:
        pytest.skip('this rclpy has no EventsExecutor')
    context = Context()
    rclpy.init(context=context, domain_id=domain_id)
    node = rclpy.create_node('spin_memory', context=context)
    executor, name = make_executor(choice, context)
    executor.add_node(node)
    polls = []
    node.create_timer(0.001, lambda: polls.append(1))  # something to dispatch meanwhile
    monkeypatch.setattr(runtime, '_SHUTDOWN_POLL_SEC', 1e-4)
    rss = {}

    def measure_then_stop():  # from a thread: RSS is the process's
        stop = threading.Event()
        stop.wait(0.5)  # warm-up: allocator, DDS threads
        rss['before'] = rss_kib(os.getpid())
        stop.wait(3.0)
        rss['after'] = rss_kib(os.getpid())
        rclpy.shutdown(context=context)
    thread = threading.Thread(target=measure_then_stop)
    thread.start()
    try:
        runtime.spin(executor, context)  # returns, or raises, once the context is down
    except ExternalShutdownException:
        pass
    finally:
        thread.join(timeout=10.0)
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
    assert polls, 'the loop dispatched nothing'
    grown = rss['after'] - rss['before']
    # at 32 bytes a poll, the old loop grew by some 500 KiB here
    assert grown < 128, f'{name}: VmRSS grew by {grown} KiB in 3 s of polling'
