"""The trainer side of a fleet: one trainer in fleet mode, learning from the labeled samples of
every robot whose namespace matches ``fleet`` and deploying each model to every robot's
predictor. Start each robot with robot_launch.py (``namespace:=r1``, ...), on this machine or
another on the same DDS domain (doc/fleet_operations.md: across machines, Discovery Server).

    ros2 launch nn_one_node fleet_launch.py                          # robots in /<anything>
    ros2 launch nn_one_node fleet_launch.py fleet:='/r*'             # robots /r1, /r2, ...
    ros2 launch nn_one_node fleet_launch.py fleet:='/r1,/r2' weights_file:=$HOME/fleet_model.yaml
    ros2 launch nn_one_node fleet_launch.py fleet:="['/warehouse/amr_*']" params_file:=my.yaml
    ros2 launch nn_one_node fleet_launch.py managed:=true            # a lifecycle trainer
    ros2 launch nn_one_node fleet_launch.py --show-args

``fleet`` is the trainer's ``fleet`` parameter (string[]) written as one launch argument: a
YAML list, or patterns separated by commas or spaces. Patterns are matched name by name (``*``
does not cross a ``/``); a relative one is under the trainer's ``namespace``. The trainer's
other parameters come from ``params_file`` (its ``/**/trainer`` section), then the overrides
given here; ``num_features`` is derived from the assembler's entries where ``params_file``
lists them, as nn_one_launch.py derives it (its helpers are read from it, not copied), so that
the trainer expects the rows the robots' assemblers build from the same file.
"""

import importlib.util
import os
from typing import List

import yaml
from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.substitutions import FindPackageShare


def _sibling(name: str):
    """A launch file installed beside this one, as a module (its helpers, not its launch)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), name)
    spec = importlib.util.spec_from_file_location(f'nn_one_node_{name[:-3]}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


base = _sibling('nn_one_launch.py')
PACKAGE = base.PACKAGE

ARGUMENTS = [
    # (name, default, description); params_file's default: a file of config/.
    ('fleet', '/*',
     "The robots: namespaces or patterns (the trainer's fleet parameter), as a YAML list or "
     "separated by commas: '/r*', '/r1,/r2', \"['/warehouse/amr_*']\". Default: every "
     'top-level namespace with a robot in it.'),
    ('params_file', 'robot.yaml',
     "Params YAML with the trainer's section (and the assembler's, from which num_features is "
     "derived; default: the installed config/robot.yaml, the simulated robot's)."),
    ('namespace', '',
     "The trainer's own namespace (relative fleet patterns are under it)."),
    ('weights_file', '',
     "The fleet's model (params YAML): the trainer saves to and resumes from it. Empty: no "
     'persistence.'),
    ('num_features', '',
     "Features per sample; empty: derived from the assembler's entries where params_file lists "
     'them, else the value in params_file.'),
    ('use_sim_time', 'false', 'Use /clock (simulation) time in the trainer.'),
    ('log_level', 'info', 'Log level of the trainer: debug, info, warn, error or fatal.'),
]
FLAGS = ('use_sim_time',)


def fleet_patterns(text: str) -> List[str]:
    """The ``fleet`` launch argument as the trainer's string[] parameter; ValueError for one
    that lists no robot.

    >>> fleet_patterns('/r*'), fleet_patterns('/r1, /r2'), fleet_patterns("['/a/*', 'b']")
    (['/r*'], ['/r1', '/r2'], ['/a/*', 'b'])
    """
    text = text.strip()
    if text.startswith('['):
        try:
            items = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ValueError(f'fleet:={text} is not a YAML list: '
                             f'{str(err).splitlines()[0]}') from None
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise ValueError(f'fleet:={text} must be a list of namespace patterns (strings)')
    else:
        items = text.replace(',', ' ').split()
    patterns = [i.strip() for i in items if i.strip()]
    if not patterns:
        raise ValueError('fleet:= lists no robot: give namespaces or patterns (e.g. '
                         "fleet:='/r*'); for one robot, use nn_one_launch.py")
    return patterns


def _trainer(context: LaunchContext):
    arg = {name: LaunchConfiguration(name).perform(context) for name, _, _ in ARGUMENTS}
    patterns = fleet_patterns(arg['fleet'])
    params_file = arg['params_file']
    if not os.path.isfile(params_file):
        raise FileNotFoundError(f'params_file {params_file!r} does not exist')
    overrides = {'fleet': patterns, 'use_sim_time': base._flag(context, 'use_sim_time')}
    if arg['num_features'].strip():
        overrides['num_features'] = int(arg['num_features'])
    derived = base.derived_num_features(params_file, arg['num_features'])
    if derived is not None:
        overrides['num_features'] = derived
    weights_file = arg['weights_file'].strip()
    if weights_file:
        overrides['weights_file'] = os.path.abspath(os.path.expanduser(weights_file))
    node = base._NodeActions(context)  # Node, or a LifecycleNode under managed:=true
    trainer = node(package=PACKAGE, executable='trainer', name='trainer',
                   namespace=arg['namespace'].strip() or None, output='screen',
                   parameters=[params_file, overrides],
                   arguments=['--ros-args', '--log-level', arg['log_level']])
    return [trainer] + node.autostart()


def generate_launch_description() -> LaunchDescription:
    declared = []
    for name, default, description in ARGUMENTS:
        kwargs = {'description': description}
        kwargs['default_value'] = (PathJoinSubstitution([FindPackageShare(PACKAGE), 'config',
                                                         default])
                                   if name == 'params_file' else default)
        if name in FLAGS:
            kwargs['choices'] = base.BOOLEANS
        elif name == 'log_level':
            kwargs['choices'] = base.LOG_LEVELS
        declared.append(DeclareLaunchArgument(name, **kwargs))
    declared += [DeclareLaunchArgument(name, default_value=default, description=description,
                                       choices=base.BOOLEANS)
                 for name, default, description in base.LIFECYCLE_ARGUMENTS]
    return LaunchDescription(declared + [OpaqueFunction(function=_trainer)])
