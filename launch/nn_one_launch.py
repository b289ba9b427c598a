"""Start the predictor and the trainer wired together (and the assembler that feeds them from a
robot's typed topics, and, for demos and tests, a simulated sensor or robot), configured from one
params file.

    ros2 launch nn_one_node nn_one_launch.py                         # predictor + trainer
    ros2 launch nn_one_node nn_one_launch.py start_sim_sensor:=true  # + simulated sensor
    ros2 launch nn_one_node nn_one_launch.py start_assembler:=true params_file:=my_robot.yaml
    ros2 launch nn_one_node nn_one_launch.py start_assembler:=true start_sim_robot:=true \
        params_file:=$(ros2 pkg prefix --share nn_one_node)/config/robot.yaml
    ros2 launch nn_one_node nn_one_launch.py start_trainer:=false weights_file:=/path/model.yaml
    ros2 launch nn_one_node nn_one_launch.py namespace:=robot1 features_topic:=/robot1/lidar_feats
    ros2 launch nn_one_node nn_one_launch.py --show-args              # every argument, described
    ros2 launch nn_one_node nn_one_launch.py managed:=true            # lifecycle nodes, brought up
    ros2 launch nn_one_node nn_one_launch.py managed:=true autostart:=false  # nav2 brings them up

Where ``params_file`` lists the assembler's ``features``, the predictor's and the trainer's
``num_features`` is derived from them (a slice counts its elements); a different number set by
hand (in the file, or ``num_features:=``) stops the launch with both numbers.

Parameters come from ``params_file`` (default: the installed ``config/nn_one.yaml``), then the
model in the weights file (when it exists, is usable and, if ``num_features`` is given, has that
many features: the predictor's model, and the trainer's ``num_features``), then the overrides
given here (``num_features``, ``use_sim_time``, ``weights_file``): the last definition wins. The
trainer deploys to the predictor in its own namespace, so two launches with two namespaces on
one DDS domain stay apart.

With ``managed:=true`` the nodes that support it (MANAGED_EXECUTABLES) start as lifecycle nodes
(``--managed``, launch_ros ``LifecycleNode``) and the others as before; ``autostart:=true`` then
configures and activates them one after another in LIFECYCLE_ORDER with the standard launch_ros
lifecycle events, each once the one before it is active.
"""

import os

import lifecycle_msgs.msg
import yaml
from launch import LaunchContext, LaunchDescription
from launch.actions import (DeclareLaunchArgument, EmitEvent, LogInfo, OpaqueFunction,
                            RegisterEventHandler)
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from launch_ros.substitutions import FindPackageShare
from nn_one_node.assembly.config import derive_num_features
from nn_one_node.assembly.errors import ConfigError
from nn_one_node.assembly.msgtypes import default_resolver
from nn_one_node.learning.weights_file import WeightsFileError, load_weights_file

PACKAGE = 'nn_one_node'

ARGUMENTS = [
    # (name, default, description); params_file's default is a substitution, set below.
    ('params_file', None,
     'Params YAML for the predictor, trainer, assembler, sim_sensor and sim_robot (node keys '
     '/**/predictor, ...; config/robot.yaml for the robot path).'),
    ('namespace', '',
     'Namespace of all nodes (e.g. robot1); the trainer deploys to the predictor in it.'),
    ('use_sim_time', 'false',
     'Use /clock (simulation) time in every node: the trainer and sim_sensor timers then wait '
     'for /clock to tick.'),
    ('num_features', '',
     "Features per sample N for the predictor and trainer; empty: derived from the assembler's "
     'entries where params_file lists them, else the value in params_file.'),
    ('start_trainer', 'true',
     'Start the trainer; false: inference only (the predictor serving a saved weights_file).'),
    ('start_sim_sensor', 'false',
     'Start the simulated wheel-slip sensor (publishes features and labeled_samples).'),
    ('start_assembler', 'false',
     "Start the assembler: a robot's typed topics in, features and labeled_samples out, as the "
     "params_file's /**/assembler section says (e.g. config/robot.yaml)."),
    ('start_sim_robot', 'false',
     'Start the simulated robot: the wheel-slip scenario as typed sensor topics (scan, odom, '
     'joint_states, imu, temperature) and late slip labels, for the assembler.'),
    ('weights_file', '',
     'Learned model (params YAML): the trainer saves to and resumes from it, and the predictor '
     'starts from it when it exists. Empty: no persistence.'),
    ('features_topic', 'features',
     'Topic the predictor reads feature vectors from (and the sim_sensor or the assembler '
     'publishes them on).'),
    ('prediction_topic', 'prediction', 'Topic the predictor publishes predictions on.'),
    ('labeled_samples_topic', 'labeled_samples',
     'Topic the trainer reads labeled samples from (and the sim_sensor or the assembler '
     'publishes them on).'),
    ('log_level', 'info', 'Log level of every node: debug, info, warn, error or fatal.'),
]

BOOLEANS = ['true', 'false', 'True', 'False', '1', '0']
FLAGS = ('use_sim_time', 'start_trainer', 'start_sim_sensor', 'start_assembler', 'start_sim_robot')
LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'fatal', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL']


def _flag(context: LaunchContext, name: str) -> bool:
    value = LaunchConfiguration(name).perform(context).strip()
    if value not in BOOLEANS:
        raise ValueError(f'launch argument {name} must be true or false, got {value!r}')
    return value in ('true', 'True', '1')


def node_sections(params_file: str, nodes) -> dict:
    """The ros__parameters ``params_file`` gives each node named in ``nodes`` (its '/**/node',
    'node', '/node', '/ns/node' and '/**' sections, merged in file order as rcl applies them)."""
    with open(params_file) as f:
        config = yaml.safe_load(f)
    out = {node: {} for node in nodes}
    for name, section in (config.items() if isinstance(config, dict) else ()):
        values = (section or {}).get('ros__parameters') if isinstance(section, dict) else None
        for node in nodes:
            if isinstance(values, dict) and (
                    str(name) == '/**' or str(name).rstrip('/').split('/')[-1] == node):
                out[node].update(values)
    return out


def has_node_section(params_file: str, node: str, key: str) -> bool:
    """Whether ``params_file`` sets ``key`` for a node named ``node``, as rcl would apply it."""
    return key in node_sections(params_file, [node])[node]


def derived_num_features(params_file: str, given: str):
    """num_features from the assembler's entries in ``params_file`` (None where it lists none),
    refused with both numbers where the predictor's or trainer's section or ``num_features:=``
    (``given``) says otherwise (nn_one_node.assembly.config.derive_num_features)."""
    sections = node_sections(params_file, ['assembler', 'predictor', 'trainer'])
    try:
        n = derive_num_features(sections, resolve=default_resolver)
    except ConfigError as err:
        raise ValueError(f'params_file {params_file}: {err}') from None
    if n is not None and given.strip() and int(given) != n:
        raise ValueError(f"num_features:={given.strip()}, but the assembler's "
                         f'{len(sections["assembler"]["features"])} entries in params_file '
                         f'{params_file} make {n} features: leave num_features:= out (it is '
                         f'derived) or make it {n}')
    return n


def _nodes(context: LaunchContext):
    """The Node actions, built once the launch arguments are known."""
    arg = {name: LaunchConfiguration(name).perform(context) for name, _, _ in ARGUMENTS}
    params_file = arg['params_file']
    if not os.path.isfile(params_file):
        raise FileNotFoundError(f'params_file {params_file!r} does not exist')
    namespace = arg['namespace'].strip() or None  # None: the enclosing PushRosNamespace, if any
    overrides = {'use_sim_time': _flag(context, 'use_sim_time')}
    if arg['num_features'].strip():
        overrides['num_features'] = int(arg['num_features'])
    derived = derived_num_features(params_file, arg['num_features'])
    if derived is not None:  # the assembler's entries: the predictor's and trainer's N
        overrides['num_features'] = derived
    weights_file = arg['weights_file'].strip()
    if weights_file:
        weights_file = os.path.abspath(os.path.expanduser(weights_file))
    start_trainer = _flag(context, 'start_trainer')
    if not start_trainer and weights_file and not os.path.isfile(weights_file):
        raise FileNotFoundError(
            f'inference only (start_trainer:=false) with weights_file {weights_file!r}, '
            'which does not exist')
    common = {'package': PACKAGE, 'namespace': namespace, 'output': 'screen',
              'arguments': ['--ros-args', '--log-level', arg['log_level']]}
    node = _NodeActions(context)  # Node, or LifecycleNode where managed:=true applies

    predictor_params = [params_file]
    notes = []
    saved_n = None
    if weights_file and os.path.isfile(weights_file):
        # Checked as the trainer will check it (a checksum when the trainer writes the file; a
        # hand-written one may lack it for inference only): rcl would stop the predictor on a
        # file cut inside a list, and load one cut before `weights:` as zero weights, silently.
        try:
            model = load_weights_file(weights_file, num_features=overrides.get('num_features'),
                                      require_checksum=start_trainer)
        except WeightsFileError as err:
            if not start_trainer:
                raise ValueError(f'inference only (start_trainer:=false) from an unusable '
                                 f'weights_file: {err}') from None
            notes.append(LogInfo(msg=f'{err}: the predictor starts from params_file; the '
                                     'trainer moves the file aside and starts fresh'))
        else:
            # The learned model, served from the start; as values, not the file: rcl applies a
            # file's section only to the node its key names (a hand-written `predictor:` misses
            # a namespaced predictor), and would apply any other parameter the file holds too.
            predictor_params.append({
                'num_features': model.num_features, 'activation': model.activation,
                'weights': [float(w) for w in model.weights], 'bias': float(model.bias)})
            # Without num_features:=, the saved model's N holds for the trainer too, which
            # otherwise takes params_file's: on a mismatch it would move the file aside while
            # the predictor served the file's model, the two disagreeing on N.
            saved_n = model.num_features
    nodes = notes + [node(
        executable='predictor', name='predictor',
        parameters=predictor_params + [overrides],
        remappings=[('features', arg['features_topic']),
                    ('prediction', arg['prediction_topic'])],
        **common)]
    if start_trainer:
        trainer_overrides = dict(overrides)
        if weights_file:
            trainer_overrides['weights_file'] = weights_file
        if saved_n is not None:
            trainer_overrides.setdefault('num_features', saved_n)
        nodes.append(node(
            executable='trainer', name='trainer',
            parameters=[params_file, trainer_overrides],
            remappings=[('labeled_samples', arg['labeled_samples_topic'])],
            **common))
    start_assembler = _flag(context, 'start_assembler')
    if start_assembler and _flag(context, 'start_sim_sensor'):
        raise ValueError('start_assembler:=true and start_sim_sensor:=true both publish features '
                         'and labeled_samples: start one of them')
    if start_assembler and not has_node_section(params_file, 'assembler', 'features'):
        raise ValueError(
            f'start_assembler:=true, but params_file {params_file!r} gives the assembler no '
            'features: pass a params file with an /**/assembler section, e.g. the installed '
            'config/robot.yaml')
    sim_time = {'use_sim_time': overrides['use_sim_time']}
    if _flag(context, 'start_sim_sensor'):
        nodes.append(node(
            executable='sim_sensor', name='sim_sensor',
            parameters=[params_file, sim_time],
            remappings=[('features', arg['features_topic']),
                        ('labeled_samples', arg['labeled_samples_topic'])],
            **common))
    if start_assembler:
        nodes.append(node(
            executable='assembler', name='assembler',
            parameters=[params_file, sim_time],
            remappings=[('features', arg['features_topic']),
                        ('labeled_samples', arg['labeled_samples_topic'])],
            **common))
    if _flag(context, 'start_sim_robot'):
        nodes.append(node(
            executable='sim_robot', name='sim_robot',
            parameters=[params_file, sim_time], **common))
    return nodes + node.autostart()


# ------------------------------------------------------------------- managed (lifecycle) mode
LIFECYCLE_ARGUMENTS = [
    ('managed', 'false',
     'Start the predictor, trainer and assembler as lifecycle nodes (--managed): '
     'unconfigured until configured and activated.'),
    ('autostart', 'true',
     'With managed:=true, configure and activate the lifecycle nodes in order (assembler, '
     'predictor, trainer); false: they wait for nav2_lifecycle_manager or ros2 lifecycle set.'),
]
# The order in which autostart brings the nodes up, and those of them that take --managed.
LIFECYCLE_ORDER = ['assembler', 'predictor', 'trainer']
MANAGED_EXECUTABLES = {'assembler', 'predictor', 'trainer'}


def _change_state(action, transition_id: int) -> EmitEvent:
    return EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(action),
                                       transition_id=transition_id))


class _NodeActions:
    """Makes the Node actions (``node(**kwargs)`` as ``Node(**kwargs)``): a LifecycleNode with
    --managed for a managed executable under managed:=true; ``autostart()`` gives the events
    that take those to active, one after another in LIFECYCLE_ORDER."""

    def __init__(self, context: LaunchContext) -> None:
        self.managed = _flag(context, 'managed')
        self.start = _flag(context, 'autostart')
        self.lifecycle = {}  # executable -> its LifecycleNode action

    def __call__(self, **kwargs):
        executable = kwargs['executable']
        if not self.managed or executable not in MANAGED_EXECUTABLES:
            return Node(**kwargs)
        kwargs['arguments'] = ['--managed'] + list(kwargs.get('arguments') or [])
        if kwargs.get('namespace') is None:
            # '' follows an enclosing PushRosNamespace as None does; with None, launch_ros
            # names the node '<node_namespace_unspecified>/...' for its transition_event topic
            kwargs['namespace'] = ''
        action = LifecycleNode(**kwargs)
        self.lifecycle[executable] = action
        return action

    def autostart(self):
        if not self.start:
            return []
        # LIFECYCLE_ORDER first, then any other managed node in the order it was made
        ranked = sorted(self.lifecycle, key=lambda e: LIFECYCLE_ORDER.index(e)
                        if e in LIFECYCLE_ORDER else len(LIFECYCLE_ORDER))
        order = [self.lifecycle[e] for e in ranked]
        T = lifecycle_msgs.msg.Transition
        events = []
        for i, action in enumerate(order):
            # once configured (not on a later deactivate), activate; once active, the next one
            events.append(RegisterEventHandler(OnStateTransition(
                target_lifecycle_node=action, start_state='configuring', goal_state='inactive',
                entities=[_change_state(action, T.TRANSITION_ACTIVATE)], handle_once=True)))
            if i + 1 < len(order):
                events.append(RegisterEventHandler(OnStateTransition(
                    target_lifecycle_node=action, start_state='activating', goal_state='active',
                    entities=[_change_state(order[i + 1], T.TRANSITION_CONFIGURE)],
                    handle_once=True)))
        if order:
            events.append(_change_state(order[0], T.TRANSITION_CONFIGURE))  # the first step
        return events


def generate_launch_description() -> LaunchDescription:
    default_params = PathJoinSubstitution([FindPackageShare(PACKAGE), 'config', 'nn_one.yaml'])
    declared = []
    for name, default, description in ARGUMENTS:
        kwargs = {}
        if name in FLAGS:
            kwargs['choices'] = BOOLEANS
        elif name == 'log_level':  # else a bad one starts every node, to die at once
            kwargs['choices'] = LOG_LEVELS
        declared.append(DeclareLaunchArgument(
            name, default_value=default_params if default is None else default,
            description=description, **kwargs))
    declared += [DeclareLaunchArgument(name, default_value=default, description=description,
                                       choices=BOOLEANS)
                 for name, default, description in LIFECYCLE_ARGUMENTS]
    return LaunchDescription(declared + [OpaqueFunction(function=_nodes)])
