"""A stop asked for is not a failure: callbacks that Ctrl-C or SIGTERM interrupts end quietly.

rclpy's signal handling shuts the context down from its own thread, between or during callbacks.
A callback that then touches rcl (a publish, a log line to /rosout, ``service_is_ready``) raises
``RuntimeError`` (``RCLError``, ``InvalidHandle``: "publisher's context is invalid"), and SIGINT
may raise ``KeyboardInterrupt`` wherever a callback is. rclpy's EventsExecutor logs an exception
that leaves a callback as FATAL with a traceback, so a clean ``ros2 launch`` Ctrl-C would look like
a crash. ``QuietStopNode`` registers every timer, subscription and service callback through
``quiet_on_stop``: those two, once the context is shut down (or for ``KeyboardInterrupt`` at any
time), end the callback; the spin loop then sees the context end and the process exits 0. Any
other exception, and a ``RuntimeError`` while the context is still up, propagates as before.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

from rclpy.node import Node


def quiet_on_stop(callback: Callable[..., Any], context,
                  service: bool = False) -> Callable[..., Any]:
    """``callback``, ended quietly by a stop (see the module). The stop's result is None, or for a
    service callback (request, response) the response as it stands, so that rclpy sends a
    response of the right type."""
    @functools.wraps(callback)
    def guarded(*args: Any) -> Any:
        try:
            return callback(*args)
        except KeyboardInterrupt:
            pass
        except RuntimeError:
            if context.ok():
                raise
        return args[-1] if service else None
    return guarded


class QuietStopNode(Node):
    """A Node whose timer, subscription and service callbacks end quietly on a stop."""

    def create_timer(self, timer_period_sec, callback, *args: Any, **kwargs: Any):
        return super().create_timer(
            timer_period_sec, quiet_on_stop(callback, self.context), *args, **kwargs)

    def create_subscription(self, msg_type, topic, callback, *args: Any, **kwargs: Any):
        return super().create_subscription(
            msg_type, topic, quiet_on_stop(callback, self.context), *args, **kwargs)

    def create_service(self, srv_type, srv_name, callback, *args: Any, **kwargs: Any):
        guarded = quiet_on_stop(callback, self.context, service=True)
        return super().create_service(srv_type, srv_name, guarded, *args, **kwargs)
