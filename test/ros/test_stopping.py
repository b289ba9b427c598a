"""A stop (Ctrl-C, SIGTERM) that lands inside a callback ends it quietly; nothing else is hidden.

Found in CI: SIGTERM arrived while the trainer's metrics timer published, the context was shut
down under it, and the EventsExecutor logged the RuntimeError as FATAL with a traceback. Here the
shut-down context is made on purpose, with rclpy's own publisher, so the check is deterministic.
"""

import pytest
import rclpy
from std_msgs.msg import Float64
from std_srvs.srv import Trigger

from nn_one_node.ros.isolation import claim_domain_id
from nn_one_node.ros.stopping import QuietStopNode, quiet_on_stop


class FakeContext:
    def __init__(self, ok):
        self._ok = ok

    def ok(self):
        return self._ok


def raising(exc):
    def callback(*_args):
        raise exc
    return callback


def test_after_the_stop_its_errors_end_the_callback_quietly():
    down = FakeContext(ok=False)
    assert quiet_on_stop(raising(RuntimeError("publisher's context is invalid")), down)() is None
    assert quiet_on_stop(raising(KeyboardInterrupt()), FakeContext(ok=True))() is None


def test_a_service_stopped_midway_still_answers_with_its_response_object():
    response = Trigger.Response(message='stopped')
    guarded = quiet_on_stop(raising(KeyboardInterrupt()), FakeContext(ok=True), service=True)
    assert guarded(Trigger.Request(), response) is response


def test_a_real_error_is_never_hidden():
    up = FakeContext(ok=True)
    with pytest.raises(RuntimeError, match='genuine'):
        quiet_on_stop(raising(RuntimeError('genuine')), up)()
    with pytest.raises(ValueError):  # not a stop's error, whatever the context
        quiet_on_stop(raising(ValueError('bad')), FakeContext(ok=False))()
    assert quiet_on_stop(lambda x: x + 1, up)(1) == 2  # results pass through


def test_callbacks_registered_on_a_node_publish_into_a_shut_down_context_quietly():
    with claim_domain_id() as lock:
        context = rclpy.Context()
        rclpy.init(context=context, domain_id=lock.domain_id)
        node = QuietStopNode('quiet_stop_test', context=context)
        try:
            pub = node.create_publisher(Float64, 'x', 1)
            published = []

            def publish(*_args):
                pub.publish(Float64(data=1.0))
                published.append(True)
            timer = node.create_timer(3600.0, publish)
            sub = node.create_subscription(Float64, 'y', publish, 1)
            srv = node.create_service(Trigger, 'z', lambda req, resp: (publish(), resp)[1])
            timer.callback()  # context up: the publish goes through
            assert published == [True]
            context.shutdown()
            # what a signal does between the timer firing and the publish: rclpy raises
            with pytest.raises(RuntimeError):
                publish()
            assert timer.callback() is None
            assert sub.callback(Float64(data=2.0)) is None
            response = Trigger.Response()
            assert srv.callback(Trigger.Request(), response) is response
            assert published == [True]
        finally:
            node.destroy_node()
            context.try_shutdown()
