"""What the launch tests share: the online-learning scenario they check, and, where `launch` and
`launch_ros` are not installed, a way to run launch/nn_one_launch.py's own logic anyway.

``check_online_learning`` is the scenario of test_nn_one_launch.py (launch_testing, where it is
installed) and of test_launch_scenario_process.py (everywhere): a test node publishes feature
vectors and labeled samples of the wheel-slip scenario; the predictor must answer, the trainer must
deploy a model to the predictor, and the deployed model must predict fresh samples well.

``evaluate_launch_file`` runs ``generate_launch_description()`` of the installed launch file
against a minimal stand-in of the few launch / launch_ros classes it uses (keyword names checked
against the real signatures), applies launch arguments as ``ros2 launch`` does (defaults, choices),
runs its OpaqueFunction and returns the Node actions it made, as ``NodeSpec``. ``start_node``
starts one with the RosBench the way launch_ros would (same executable, parameter files in order,
then the dict parameters, node name, namespace, remappings, extra arguments). It exercises the
launch file's decisions, not launch itself: test_nn_one_launch.py does that where launch exists.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
import types
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
from rclpy.qos import QoSProfile
from std_msgs.msg import Float64, Float64MultiArray

from nn_one_node.ros.codecs import FEATURES_LABEL_LABELED, matrix_to_msg
from nn_one_node.sim.scenario import Scenario, accuracy, weight_error

PACKAGE = 'nn_one_node'
LAUNCH_FILE = 'nn_one_launch.py'
N = Scenario().num_features


def installed_launch_file() -> str:
    from ament_index_python.packages import get_package_share_directory
    return os.path.join(get_package_share_directory(PACKAGE), 'launch', LAUNCH_FILE)


def installed_params_file() -> str:
    return installed_config('nn_one.yaml')


def installed_config(name: str) -> str:
    """An installed file of config/ (robot.yaml, gazebo.yaml, ...)."""
    from ament_index_python.packages import get_package_share_directory
    return os.path.join(get_package_share_directory(PACKAGE), 'config', name)


def topic(namespace: str, name: str) -> str:
    """``name`` as a node in ``namespace`` resolves it (absolute names stay as they are)."""
    if name.startswith('/'):
        return name
    return f'/{namespace.strip("/")}/{name}' if namespace.strip('/') else f'/{name}'


# ------------------------------------------------------------------------ the shared scenario
def wait_for_deployment(ros, loss: List[Any], namespace: str = '',
                        timeout: float = 60.0) -> Dict[str, Any]:
    """Wait until the trainer has published a loss and the predictor holds a model the trainer
    made (its ``weights`` and ``bias`` at one of the polls).

    Returns the predictor's ``weights`` and ``bias``. Polls from the first loss message (an
    update) on, about every 0.2 s. A trainer whose every update moves the model a little has its
    newest model in flight at most polls, so the predictor is compared with every model the
    trainer has shown, not only with its newest one.
    """
    predictor, trainer = topic(namespace, 'predictor'), topic(namespace, 'trainer')
    next_poll = [0.0]
    made = []

    def deployed():
        if not loss or time.monotonic() < next_poll[0]:
            return None
        next_poll[0] = time.monotonic() + 0.2
        mine = ros.get_parameters(trainer, ['weights', 'bias'])
        made.append((list(mine['weights']), mine['bias']))
        theirs = ros.get_parameters(predictor, ['weights', 'bias'])
        if not np.any(theirs['weights']):
            return None
        if (list(theirs['weights']), theirs['bias']) not in made:
            return None  # not yet a model the trainer has shown: still in flight
        return theirs
    return ros.spin_until(deployed, timeout, f'a deployment from {trainer} to {predictor}')


def check_online_learning(ros, namespace: str = '', features_topic: str = 'features',
                          prediction_topic: str = 'prediction',
                          labeled_topic: str = 'labeled_samples', seed: int = 11,
                          invert: bool = False, timeout: float = 60.0) -> Dict[str, Any]:
    """The scenario: predictions answer, the trainer deploys, the deployed model is good.

    ``invert`` trains on ``1 - y`` (a different task, to tell two robots apart). Returns the
    deployed weights and bias and the accuracy on fresh samples.
    """
    scenario = Scenario(seed)
    features = ros.publisher(Float64MultiArray, topic(namespace, features_topic))
    labeled = ros.publisher(Float64MultiArray, topic(namespace, labeled_topic),
                            QoSProfile(depth=100))
    predictions = ros.collect(Float64MultiArray, topic(namespace, prediction_topic))
    loss = ros.collect(Float64, topic(namespace, 'trainer/loss'))
    ros.handshake(features, Float64MultiArray(data=[0.0] * N), predictions)

    def labels_for(rows: np.ndarray) -> np.ndarray:
        if invert:
            rows[:, N] = 1.0 - rows[:, N]
        return rows
    ros.wait_for_subscribers(labeled, 1)
    for _ in range(4):
        rows = labels_for(scenario.labeled_rows(100))
        labeled.publish(matrix_to_msg(rows, cols_label=FEATURES_LABEL_LABELED))
    model = wait_for_deployment(ros, loss, namespace, timeout)
    assert loss and all(np.isfinite(m.data) for m in loss)

    X, y = scenario.sample(200)
    if invert:
        y = 1.0 - y
    reply = ros.ask(features, matrix_to_msg(X), predictions, timeout,
                    'the prediction of an evaluation batch')
    y_hat = np.asarray(reply.data)
    assert y_hat.shape == (200,)
    acc = accuracy(y_hat, y)
    assert acc > 0.9, f'accuracy {acc:.3f} on fresh samples after a deployment'
    if not invert:
        assert weight_error(np.asarray(model['weights']), model['bias'], scenario) < 0.6
    return {**model, 'accuracy': acc}


# ------------------------------------------------------------- the launch file, evaluated here
class _Substitution:
    def perform(self, context: 'LaunchContext') -> str:
        raise NotImplementedError


def perform(value: Any, context: 'LaunchContext') -> str:
    """A launch SomeSubstitutionsType (text, substitution, or a list of them) as text."""
    if isinstance(value, _Substitution):
        return value.perform(context)
    if isinstance(value, (list, tuple)):
        return ''.join(perform(v, context) for v in value)
    if not isinstance(value, str):
        raise TypeError(f'not a substitution or text: {value!r}')
    return value


class LaunchContext:
    def __init__(self) -> None:
        self.launch_configurations: Dict[str, str] = {}


class LaunchConfiguration(_Substitution):
    def __init__(self, variable_name: Any, *, default: Any = None) -> None:
        self.variable_name = variable_name
        self.default = default

    def perform(self, context: LaunchContext) -> str:
        name = perform(self.variable_name, context)
        if name in context.launch_configurations:
            return context.launch_configurations[name]
        if self.default is None:
            raise KeyError(f'launch configuration {name!r} does not exist')
        return perform(self.default, context)


class PathJoinSubstitution(_Substitution):
    def __init__(self, substitutions: List[Any]) -> None:
        self.substitutions = substitutions

    def perform(self, context: LaunchContext) -> str:
        return os.path.join(*(perform(s, context) for s in self.substitutions))


class FindPackageShare(_Substitution):
    def __init__(self, package: Any) -> None:
        self.package = package

    def perform(self, context: LaunchContext) -> str:
        from ament_index_python.packages import get_package_share_directory
        return get_package_share_directory(perform(self.package, context))


class LaunchDescription:
    def __init__(self, initial_entities: Optional[List[Any]] = None, *,
                 deprecated_reason: Optional[str] = None) -> None:
        self.entities = list(initial_entities or [])


class DeclareLaunchArgument:
    def __init__(self, name: str, *, default_value: Any = None,
                 description: Optional[str] = None, choices: Optional[List[str]] = None,
                 **kwargs: Any) -> None:
        if choices is not None and isinstance(default_value, str) \
                and default_value not in choices:
            raise RuntimeError(f'default {default_value!r} of {name} is not in {choices}')
        self.name, self.default_value = name, default_value
        self.description, self.choices = description, choices


class OpaqueFunction:
    def __init__(self, *, function: Callable, args: Any = None, kwargs: Any = None,
                 **left_over: Any) -> None:
        self.function, self.args, self.kwargs = function, list(args or []), dict(kwargs or {})


class LogInfo:
    def __init__(self, *, msg: Any, **kwargs: Any) -> None:
        self.msg = msg


# launch_ros.actions.Node's keywords, and those of ExecuteProcess / ExecuteLocal it passes on
_NODE_KEYWORDS = {'executable', 'package', 'name', 'namespace', 'exec_name', 'parameters',
                  'remappings', 'ros_arguments', 'arguments', 'prefix', 'cwd', 'env',
                  'additional_env', 'output', 'emulate_tty', 'sigterm_timeout',
                  'sigkill_timeout', 'respawn', 'respawn_delay', 'respawn_max_retries',
                  'shell', 'on_exit', 'cached_output', 'log_cmd', 'output_format', 'condition'}


@dataclass
class NodeSpec:
    """One launch_ros Node action, with its substitutions performed."""

    executable: str
    package: Optional[str] = None
    name: Optional[str] = None
    namespace: Optional[str] = None
    parameters: List[Any] = field(default_factory=list)  # file paths (str) and dicts
    remappings: List[Tuple[str, str]] = field(default_factory=list)
    arguments: List[str] = field(default_factory=list)
    output: Optional[str] = None
    lifecycle: bool = False  # a launch_ros LifecycleNode
    action: Any = field(default=None, repr=False, compare=False)  # the stand-in action

    def param_files(self) -> List[str]:
        return [p for p in self.parameters if isinstance(p, str)]

    def param_dict(self) -> Dict[str, Any]:
        merged: Dict[str, Any] = {}
        for p in self.parameters:
            if isinstance(p, dict):
                merged.update(p)
        return merged


class Node:
    """Records the keywords a launch_ros Node action was made with."""

    def __init__(self, **kwargs: Any) -> None:
        unknown = set(kwargs) - _NODE_KEYWORDS
        if unknown:
            raise TypeError(f'launch_ros.actions.Node() got unexpected keywords {unknown}')
        if 'executable' not in kwargs:
            raise TypeError("launch_ros.actions.Node() needs 'executable'")
        self.kwargs = kwargs

    def spec(self, context: LaunchContext) -> NodeSpec:
        k = self.kwargs
        params: List[Any] = []
        for p in k.get('parameters') or []:
            if isinstance(p, dict):
                params.append({perform(key, context): value for key, value in p.items()})
            else:
                params.append(perform(p, context))
        opt = {key: perform(k[key], context) if k.get(key) is not None else None
               for key in ('package', 'name', 'namespace', 'output')}
        return NodeSpec(
            executable=perform(k['executable'], context),
            parameters=params,
            remappings=[(perform(a, context), perform(b, context))
                        for a, b in k.get('remappings') or []],
            arguments=[perform(a, context) for a in k.get('arguments') or []],
            lifecycle=isinstance(self, LifecycleNode), action=self, **opt)


class LifecycleNode(Node):
    """launch_ros.actions.LifecycleNode: a Node whose name and namespace must be given."""

    def __init__(self, *, name: Any, namespace: Any, **kwargs: Any) -> None:
        if namespace is None:  # as run under the real launch_ros (Jazzy)
            raise ValueError("a LifecycleNode with namespace None subscribes to the invalid "
                             "topic '<node_namespace_unspecified>/<name>/transition_event'")
        super().__init__(name=name, namespace=namespace, **kwargs)


class ChangeState:
    """launch_ros.events.lifecycle.ChangeState."""

    def __init__(self, *, lifecycle_node_matcher: Callable[[Any], bool],
                 transition_id: int) -> None:
        self.lifecycle_node_matcher = lifecycle_node_matcher
        self.transition_id = transition_id


def matches_action(target_action: Any) -> Callable[[Any], bool]:
    """launch.events.matches_action."""
    return lambda action: action is target_action


class EmitEvent:
    def __init__(self, *, event: Any, **kwargs: Any) -> None:
        self.event = event


class OnStateTransition:
    """launch_ros.event_handlers.OnStateTransition (and launch's EventHandler's handle_once)."""

    def __init__(self, *, entities: Any, target_lifecycle_node: Any = None,
                 transition: Any = None, start_state: Any = None, goal_state: Any = None,
                 matcher: Any = None, handle_once: bool = False) -> None:
        if not isinstance(target_lifecycle_node, (LifecycleNode, type(None))):
            raise RuntimeError("OnStateTransition requires a 'LifecycleNode' action as the "
                               'target')
        self.entities = list(entities) if isinstance(entities, (list, tuple)) else [entities]
        self.target, self.transition = target_lifecycle_node, transition
        self.start_state, self.goal_state, self.handle_once = start_state, goal_state, handle_once

    def matches(self, action: Any, start_state: str, goal_state: str) -> bool:
        return ((self.target is None or self.target is action)
                and self.start_state in (None, start_state)
                and self.goal_state in (None, goal_state))


class RegisterEventHandler:
    def __init__(self, event_handler: Any, **kwargs: Any) -> None:
        self.event_handler = event_handler


def _stub_modules() -> Dict[str, types.ModuleType]:
    def module(name: str, **members: Any) -> types.ModuleType:
        m = types.ModuleType(name)
        m.__dict__.update(members)
        return m
    return {
        'launch': module('launch', LaunchContext=LaunchContext,
                         LaunchDescription=LaunchDescription),
        'launch.actions': module('launch.actions', DeclareLaunchArgument=DeclareLaunchArgument,
                                 LogInfo=LogInfo, OpaqueFunction=OpaqueFunction,
                                 EmitEvent=EmitEvent, RegisterEventHandler=RegisterEventHandler),
        'launch.events': module('launch.events', matches_action=matches_action),
        'launch.substitutions': module('launch.substitutions',
                                       LaunchConfiguration=LaunchConfiguration,
                                       PathJoinSubstitution=PathJoinSubstitution),
        'launch_ros': module('launch_ros'),
        'launch_ros.actions': module('launch_ros.actions', Node=Node,
                                     LifecycleNode=LifecycleNode),
        'launch_ros.event_handlers': module('launch_ros.event_handlers',
                                            OnStateTransition=OnStateTransition),
        'launch_ros.events': module('launch_ros.events'),
        'launch_ros.events.lifecycle': module('launch_ros.events.lifecycle',
                                              ChangeState=ChangeState),
        'launch_ros.substitutions': module('launch_ros.substitutions',
                                           FindPackageShare=FindPackageShare),
    }


@contextmanager
def _stubbed_launch_api():
    stubs = _stub_modules()
    saved = {name: sys.modules.get(name) for name in stubs}
    sys.modules.update(stubs)
    try:
        yield
    finally:
        for name, mod in saved.items():
            if mod is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = mod


@dataclass
class Evaluated:
    arguments: Dict[str, DeclareLaunchArgument]
    nodes: List[NodeSpec]
    logged: List[str] = field(default_factory=list)  # the LogInfo messages
    events: List[Any] = field(default_factory=list)  # RegisterEventHandler, EmitEvent: in order

    def node(self, name: str) -> NodeSpec:
        (spec,) = [n for n in self.nodes if n.name == name]
        return spec


def evaluate_launch_file(path: Optional[str] = None, module_overrides: Optional[Dict] = None,
                         **launch_arguments: str) -> Evaluated:
    """Run the launch file's own logic for ``launch_arguments`` (as ``name:=value``);
    ``module_overrides`` replace module constants first (e.g. MANAGED_EXECUTABLES)."""
    path = path or installed_launch_file()
    with _stubbed_launch_api():
        spec = importlib.util.spec_from_file_location('nn_one_launch_under_test', path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        for name, value in (module_overrides or {}).items():
            assert hasattr(module, name), name
            setattr(module, name, value)
        description = module.generate_launch_description()
    context = LaunchContext()
    declared: Dict[str, DeclareLaunchArgument] = {}
    nodes: List[NodeSpec] = []
    logged: List[str] = []
    events: List[Any] = []
    unknown = set(launch_arguments) - {
        e.name for e in description.entities if isinstance(e, DeclareLaunchArgument)}
    if unknown:
        raise KeyError(f'not arguments of {path}: {sorted(unknown)}')
    for entity in description.entities:
        if isinstance(entity, DeclareLaunchArgument):
            declared[entity.name] = entity
            if entity.name in launch_arguments:
                value = str(launch_arguments[entity.name])
            elif entity.default_value is not None:
                value = perform(entity.default_value, context)
            else:
                raise KeyError(f'launch argument {entity.name} is required')
            if entity.choices is not None and value not in entity.choices:
                raise ValueError(f'{entity.name}:={value} is not one of {entity.choices}')
            context.launch_configurations[entity.name] = value
        elif isinstance(entity, OpaqueFunction):
            made = entity.function(context, *entity.args, **entity.kwargs) or []
            nodes += [n.spec(context) for n in made if isinstance(n, Node)]
            logged += [perform(n.msg, context) for n in made if isinstance(n, LogInfo)]
            events += [n for n in made if isinstance(n, (RegisterEventHandler, EmitEvent))]
            if not all(isinstance(n, (Node, LogInfo, RegisterEventHandler, EmitEvent))
                       for n in made):
                raise TypeError(f'the stand-in does not know one of {made}')
        elif isinstance(entity, Node):
            nodes.append(entity.spec(context))
        else:
            raise TypeError(f'the stand-in does not know {type(entity).__name__}')
    return Evaluated(declared, nodes, logged, events)


def start_node(ros, spec: NodeSpec, env: Optional[Dict[str, str]] = None):
    """Start ``spec`` as launch_ros would: parameter files in order, then its dict parameters
    (which therefore win), its name, namespace, remappings and arguments (those before
    ``--ros-args``, e.g. --managed, stay before it)."""
    assert spec.package == PACKAGE
    args = list(spec.arguments)
    end = args.index('--ros-args') if '--ros-args' in args else len(args)
    args, ros_args = args[:end], args[end + 1:]
    namespace = spec.namespace
    if namespace and not namespace.startswith('/'):
        namespace = '/' + namespace  # launch_ros makes a relative namespace absolute
    return ros.start(spec.executable, params=spec.param_dict() or None,
                     params_files=spec.param_files(), name=spec.name, namespace=namespace,
                     remaps=dict(spec.remappings), ros_args=ros_args, env=env, args=args)


def lifecycle_node_name(spec: NodeSpec) -> str:
    return topic(spec.namespace or '', spec.name)


def run_lifecycle_events(ros, evaluated: Evaluated, timeout: float = 60.0) -> List[str]:
    """Do with the launch's lifecycle events what launch does, against the running processes.

    The EmitEvent(ChangeState) actions call ``<node>/change_state`` on the LifecycleNode they
    match; every ``<node>/transition_event`` message is a StateTransition that the registered
    OnStateTransition handlers match on target, start and goal state (once, with handle_once),
    emitting their entities in turn. Returns the managed nodes in the order they became active,
    once all are active.
    """
    from lifecycle_client import Lifecycle
    from lifecycle_msgs.msg import TransitionEvent
    specs = [n for n in evaluated.nodes if n.lifecycle]
    clients = {id(s.action): Lifecycle(ros, lifecycle_node_name(s)) for s in specs}
    seen: List[Tuple[Any, str, str]] = []
    for s in specs:
        ros.node.create_subscription(
            TransitionEvent, f'{lifecycle_node_name(s)}/transition_event',
            lambda m, a=s.action: seen.append((a, m.start_state.label, m.goal_state.label)),
            QoSProfile(depth=100))
        name = f'{lifecycle_node_name(s)}/transition_event'
        ros.spin_until(lambda: ros.node.count_publishers(name) >= 1, timeout,
                       f'a publisher of {name}')
    handlers = [e.event_handler for e in evaluated.events if isinstance(e, RegisterEventHandler)]
    pending = [e.event for e in evaluated.events if isinstance(e, EmitEvent)]
    state = {id(s.action): 'unconfigured' for s in specs}
    names = {id(s.action): s.name for s in specs}
    became_active: List[str] = []
    handled = 0
    while True:
        while pending:
            event = pending.pop(0)
            for s in specs:
                if event.lifecycle_node_matcher(s.action):
                    assert clients[id(s.action)].change(event.transition_id, timeout=timeout)
        if all(v == 'active' for v in state.values()):
            return became_active
        ros.spin_until(lambda: len(seen) > handled, timeout,
                       f'transition events (so far {became_active} active)')
        for action, start, goal in seen[handled:]:
            state[id(action)] = goal
            if goal == 'active':
                became_active.append(names[id(action)])
            for h in list(handlers):
                if h.matches(action, start, goal):
                    pending += [e.event for e in h.entities if isinstance(e, EmitEvent)]
                    if h.handle_once:
                        handlers.remove(h)
        handled = len(seen)
