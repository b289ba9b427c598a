"""nn_one_node.ros.lifecycle in this process: the steps a SteppedNode runs in each mode and
transition,
with a small node that records them (its own Context, on the test's private domain).

The installed predictor's transitions over DDS are in test_lifecycle_process.py.
"""

import pytest
import rclpy
from rclpy.context import Context
from rclpy.lifecycle import LifecycleNodeMixin, TransitionCallbackReturn

from nn_one_node.ros import runtime
from nn_one_node.ros.lifecycle import SteppedNode, managed_class, split_managed_flag

SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE


class Recorder(SteppedNode):
    """Records its steps; ``fail`` names a step to raise ValueError in, ``crash`` one to raise
    KeyError in (a bug, not a configuration)."""

    default_node_name = 'recorder'
    fail = crash = None

    def _step(self, name):
        self.steps.append(name)
        if name == self.fail:
            raise ValueError(f'{name}: a bad value')
        if name == self.crash:
            raise KeyError(name)

    def declare_step(self):
        self.steps = []
        self._step('declare')
        self.served = []
        self.callback = self.serving(self.served.append, 'input')

    def configure_step(self):
        self._step('configure')

    def activate_step(self):
        self._step('activate')

    def deactivate_step(self):
        self._step('deactivate')

    def cleanup_step(self):
        self._step('cleanup')


@pytest.fixture
def context(domain_id):
    ctx = Context()
    rclpy.init(context=ctx, domain_id=domain_id)
    yield ctx
    rclpy.try_shutdown(context=ctx)


def state(node):
    return node._state_machine.current_state[1]


def test_split_managed_flag():
    assert split_managed_flag(['p']) == (False, ['p'])
    assert split_managed_flag(['p', '--managed']) == (True, ['p'])
    assert split_managed_flag(['p', '--managed', '--ros-args', '-p', 'a:=1']) == (
        True, ['p', '--ros-args', '-p', 'a:=1'])
    # after --ros-args it is not ours: rcl would see it (and refuse it)
    assert split_managed_flag(['p', '--ros-args', '--managed']) == (
        False, ['p', '--ros-args', '--managed'])


def test_plain_mode_runs_declare_configure_activate_and_serves_directly(context):
    node = Recorder(context=context)
    try:
        assert node.steps == ['declare', 'configure', 'activate']
        assert node.active and node.configured and node.lifecycle_state() == 'active'
        assert node.callback == node.served.append  # no wrapper: the message path is unchanged
        assert not isinstance(node, LifecycleNodeMixin)
    finally:
        node.destroy_node()

    class Bad(Recorder):
        fail = 'configure'
    with pytest.raises(ValueError, match='a bad value'):  # runtime.run: exit 2
        Bad(context=context)


def test_managed_mode_transitions_call_the_steps(context):
    cls = managed_class(Recorder)
    assert managed_class(Recorder) is cls and cls.__name__ == 'ManagedRecorder'
    node = cls(context=context)
    try:
        assert isinstance(node, LifecycleNodeMixin) and isinstance(node, Recorder)
        assert node.get_name() == 'recorder'
        assert node.steps == ['declare'] and state(node) == 'unconfigured'
        node.callback('a')
        assert node.served == [] and node.ignored == {'input': 1}
        assert node.trigger_configure() == SUCCESS and state(node) == 'inactive'
        node.callback('b')
        assert node.served == [] and node.ignored == {'input': 2}
        assert node.trigger_activate() == SUCCESS and node.lifecycle_state() == 'active'
        node.callback('c')
        assert node.served == ['c']
        assert node.trigger_deactivate() == SUCCESS and node.lifecycle_state() == 'inactive'
        node.callback('d')
        assert node.served == ['c'] and node.ignored == {'input': 3}
        assert node.trigger_cleanup() == SUCCESS and node.lifecycle_state() == 'unconfigured'
        assert node.ignored == {'input': 0}
        assert node.steps == ['declare', 'configure', 'activate', 'deactivate', 'cleanup']
        assert not node.finished
        assert node.trigger_configure() == SUCCESS and node.trigger_activate() == SUCCESS
        assert node.trigger_shutdown() == SUCCESS and state(node) == 'finalized'
        assert node.finished and not node.active
        assert node.steps[-1] == 'deactivate'  # shut down from active: deactivated first
    finally:
        node.destroy_node()


def test_a_failed_configure_cleans_up_and_stays_unconfigured(context):
    class Bad(Recorder):
        fail = 'configure'
    node = managed_class(Bad)(context=context)
    try:
        assert node.trigger_configure() == FAILURE
        assert state(node) == 'unconfigured' and not node.configured
        assert node.steps == ['declare', 'configure', 'cleanup']
        Bad.fail = None
        assert node.trigger_configure() == SUCCESS and state(node) == 'inactive'
    finally:
        node.destroy_node()


def test_a_bug_in_a_step_is_the_error_transition_back_to_unconfigured(context):
    class Buggy(Recorder):
        crash = 'activate'
    node = managed_class(Buggy)(context=context)
    try:
        assert node.trigger_configure() == SUCCESS
        assert node.trigger_activate() == TransitionCallbackReturn.ERROR
        # on_error cleaned up: unconfigured, able to start again
        assert state(node) == 'unconfigured' and not node.active and not node.configured
        assert node.steps[-2:] == ['activate', 'cleanup']
        assert not node.finished
    finally:
        node.destroy_node()


def test_run_refuses_managed_for_a_class_without_steps(capfd):
    class Plain(rclpy.node.Node):
        pass
    assert runtime.run(Plain, ['plain', '--managed']) == 2
    assert 'Plain has no managed (lifecycle) mode' in capfd.readouterr().err
