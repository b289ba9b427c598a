"""One node class, run plain or managed (a ROS 2 lifecycle node), with little said twice.

A node class derives from ``SteppedNode`` and splits its setup into steps:

=====================  ==========================================================================
``declare_step``       declare the parameters (and the set-parameters callback); nothing else
``configure_step``     check the parameters and load what they name; create the publishers,
                       subscriptions and timers. Raise ``ValueError(reason)`` for a bad
                       configuration. Subscription callbacks are wrapped in ``self.serving``.
``activate_step``      start what runs by itself (timers that publish, deployment); may be empty
``deactivate_step``    stop it again; what configure loaded (the model, buffers) is kept
``cleanup_step``       release what configure made, also when configure stopped half-way
``on_exit``            (optional) called on every exit: Ctrl-C, SIGTERM, the shutdown transition;
                       in managed mode in any state, so it checks ``self.configured`` before it
                       saves what configure loaded (the trainer's weights file)
=====================  ==========================================================================

**Plain** (``PredictorNode()``, the executable as it always was): the constructor runs declare,
configure and activate in a row; a ``ValueError`` from configure is a bad start-up configuration,
which ``runtime.run`` turns into exit code 2. ``self.serving(cb)`` is ``cb`` itself, so the
message path costs what it did.

**Managed** (``managed_class(PredictorNode)()``; the executable with ``--managed``): the same class
on ``rclpy.lifecycle.LifecycleNodeMixin``, with the standard services (``~/change_state``,
``~/get_state``, ``~/get_available_states``, ``~/get_available_transitions``,
``~/get_transition_graph``) and ``~/transition_event``, so ``ros2 lifecycle``, launch_ros
``LifecycleNode`` events and ``nav2_lifecycle_manager`` drive it:

* unconfigured: the constructor ran ``declare_step`` only. ``self.configured`` is False, and the
  node's set-parameters callback should accept what rclpy accepts (type, range, read-only),
  since configure judges the whole set.
* configure -> ``configure_step``; a ``ValueError`` (or the ``RuntimeError`` with which rcl refuses
  e.g. a QoS override) fails the transition: the reason logged, ``cleanup_step`` run, the node
  unconfigured again, the process going on.
* activate -> ``activate_step``, then input is served. deactivate -> input ignored and counted
  (``self.ignored``), then ``deactivate_step``. cleanup -> ``cleanup_step``.
* shutdown, from any state: deactivated if active, then the process ends as on Ctrl-C
  (``on_exit``, exit code 0) once the reply is sent.
* an unexpected exception in a step is logged with its traceback; rclpy then runs the error
  transition, where ``cleanup_step`` takes the node back to unconfigured.

The lifecycle classes come from ``rclpy.lifecycle``, as in Humble and Jazzy alike.
"""

from __future__ import annotations

import traceback
from typing import Any, Callable, Dict, List, Optional, Tuple

from rclpy.exceptions import ParameterException
from rclpy.node import Node

from nn_one_node.ros.stopping import QuietStopNode

MANAGED_FLAG = '--managed'


def split_managed_flag(argv: List[str]) -> Tuple[bool, List[str]]:
    """(whether ``--managed`` came before ``--ros-args``, argv without it).

    >>> split_managed_flag(['predictor', '--managed', '--ros-args', '-p', 'x:=1'])
    (True, ['predictor', '--ros-args', '-p', 'x:=1'])
    >>> split_managed_flag(['predictor', '--ros-args', '-r', '__node:=--managed'])
    (False, ['predictor', '--ros-args', '-r', '__node:=--managed'])
    """
    end = argv.index('--ros-args') if '--ros-args' in argv else len(argv)
    head = argv[:end]
    if MANAGED_FLAG not in head:
        return False, list(argv)
    return True, [a for a in head if a != MANAGED_FLAG] + argv[end:]


class SteppedNode(QuietStopNode):
    """A node whose setup is split into steps (see the module docstring); plain by default."""

    managed = False
    default_node_name = 'node'

    def __init__(self, node_name: Optional[str] = None, **kwargs: Any) -> None:
        super().__init__(node_name or self.default_node_name, **kwargs)
        self._init_steps()
        self.declare_step()
        self.configure_step()
        self.configured = True
        self.activate_step()
        self.active = True

    def _init_steps(self) -> None:
        self.configured = False
        self.active = False
        self.finished = False  # the shutdown transition ran: the process is to end
        self.ignored: Dict[str, int] = {}  # messages ignored while inactive, by topic

    # The steps; a node overrides those it needs.
    def declare_step(self) -> None:
        pass

    def configure_step(self) -> None:
        pass

    def activate_step(self) -> None:
        pass

    def deactivate_step(self) -> None:
        pass

    def cleanup_step(self) -> None:
        pass

    def serving(self, callback: Callable[[Any], None], what: str) -> Callable[[Any], None]:
        """The subscription callback to register for topic ``what``.

        Plain: ``callback`` itself. Managed: a wrapper that calls it while active and otherwise
        counts the message in ``self.ignored[what]`` (one attribute test per message).
        """
        if not self.managed:
            return callback
        ignored = self.ignored
        ignored.setdefault(what, 0)

        def gated(msg: Any) -> None:
            if self.active:
                callback(msg)
            else:
                ignored[what] += 1
        return gated

    def lifecycle_state(self) -> str:
        """'active' | 'inactive' | 'unconfigured' (a plain node is always active)."""
        if self.active:
            return 'active'
        return 'inactive' if self.configured else 'unconfigured'


def _success():
    from rclpy.lifecycle import TransitionCallbackReturn
    return TransitionCallbackReturn.SUCCESS


class _Lifecycle:
    """First in the bases of a managed class, before rclpy's LifecycleNodeMixin and the
    SteppedNode subclass (see managed_class): its transitions call the steps.

    rclpy.lifecycle is imported only for a managed node: the plain one starts as before.
    """

    managed = True

    def __init__(self, node_name: Optional[str] = None, **kwargs: Any) -> None:
        from rclpy.lifecycle import LifecycleNodeMixin
        # Not SteppedNode.__init__, which would configure and activate at once.
        Node.__init__(self, node_name or self.default_node_name, **kwargs)
        LifecycleNodeMixin.__init__(self)  # the state machine, its services and events
        # rclpy (Humble, Jazzy) lets the RCLError of a transition the current state does not
        # offer escape from the ~/change_state callback, which ends the process: such a request
        # is answered success=False here, as rclcpp answers it.
        service = self._service_change_state
        service.callback = self._guarded_change_state(service.callback)
        self._init_steps()
        self.declare_step()
        self.get_logger().info('unconfigured: parameters declared; waiting for configure')

    def _guarded_change_state(self, change_state: Callable[[Any, Any], Any]
                              ) -> Callable[[Any, Any], Any]:
        def guarded(request, response):
            wanted = request.transition
            state = self._state_machine.current_state[1]
            # (id, label, start id, start label, goal id, goal label) from the current state
            offered = self._state_machine.available_transitions
            if not any((t[1] == wanted.label) if wanted.label else (t[0] == wanted.id)
                       for t in offered):
                self.get_logger().warning(
                    f'transition {wanted.label or wanted.id} refused: not available from '
                    f'{state} (available: {", ".join(t[1] for t in offered) or "none"})')
                response.success = False
                return response
            return change_state(request, response)
        return guarded

    def _run_step(self, name: str, step: Callable[[], None],
                  undo: Optional[Callable[[], None]] = None):
        from rclpy.lifecycle import TransitionCallbackReturn
        try:
            step()
        except (ValueError, ParameterException, RuntimeError) as err:
            # a bad configuration, or rcl refusing what it asks for (e.g. a QoS override)
            self.get_logger().error(f'{name} failed: {type(err).__name__}: {err}')
            if undo is not None:
                undo()
            return TransitionCallbackReturn.FAILURE
        except Exception:
            # rclpy turns it into the error transition without a word: say what it was
            self.get_logger().error(f'{name} failed:\n{traceback.format_exc()}')
            raise
        return TransitionCallbackReturn.SUCCESS

    def on_configure(self, state):
        result = self._run_step('configure', self.configure_step, undo=self.cleanup_step)
        if result == _success():
            self.configured = True
            self.get_logger().info('configured (inactive): activate to serve')
        return result

    def on_activate(self, state):
        result = self._run_step('activate', self.activate_step, undo=self.deactivate_step)
        if result == _success():
            self.active = True
            self.get_logger().info('activated: serving')
        return result

    def on_deactivate(self, state):
        self.active = False
        result = self._run_step('deactivate', self.deactivate_step)
        self.get_logger().info('deactivated (inactive): input ignored, state kept')
        return result

    def on_cleanup(self, state):
        result = self._run_step('cleanup', self.cleanup_step)
        self.configured = False
        for what in self.ignored:  # in place: the gated callbacks hold the dict
            self.ignored[what] = 0
        self.get_logger().info('cleaned up (unconfigured)')
        return result

    def on_shutdown(self, state):
        if self.active:
            self.active = False
            self._run_step('deactivate', self.deactivate_step)
        self.finished = True
        self.get_logger().info(f'shutting down from {state.label}')
        return _success()

    def on_error(self, state):
        self.active = False
        self.get_logger().error(f'error in a transition from {state.label}: cleaning up')
        self.configured = False
        self.finished = True  # unless cleaned up: finalized, with nothing left but to exit
        result = self._run_step('cleanup', self.cleanup_step)
        if result == _success():
            self.finished = False  # unconfigured again
        return result


_MANAGED_CLASSES: Dict[type, type] = {}


def managed_class(cls: type) -> type:
    """The lifecycle version of the SteppedNode subclass ``cls`` (made once, then kept)."""
    from rclpy.lifecycle import LifecycleNodeMixin
    if not issubclass(cls, SteppedNode):
        raise TypeError(f'{cls.__name__} is not a SteppedNode')
    if cls not in _MANAGED_CLASSES:
        bases = (_Lifecycle, LifecycleNodeMixin, cls)
        _MANAGED_CLASSES[cls] = type(f'Managed{cls.__name__}', bases, {
            '__doc__': f'{cls.__name__} as a lifecycle node (nn_one_node.ros.lifecycle).',
            '__module__': cls.__module__})
    return _MANAGED_CLASSES[cls]
