"""One robot of a fleet: its assembler and predictor (and, for a simulated robot, sim_robot)
under the robot's namespace, where the fleet trainer (fleet_launch.py) finds it and deploys to
its predictor. No trainer runs on the robot.

    ros2 launch nn_one_node robot_launch.py namespace:=r1                        # a real robot
    ros2 launch nn_one_node robot_launch.py namespace:=r2 start_sim_robot:=true  # a simulated one
    ros2 launch nn_one_node robot_launch.py namespace:=r1 params_file:=my_robot.yaml
    ros2 launch nn_one_node robot_launch.py namespace:=r1 weights_file:=$HOME/fleet_model.yaml
    ros2 launch nn_one_node robot_launch.py namespace:=r1 managed:=true          # lifecycle nodes
    ros2 launch nn_one_node robot_launch.py --show-args

Every name is under the namespace: ``/r1/assembler``, ``/r1/predictor``, the robot's typed
inputs as ``params_file`` writes them (relative names, e.g. ``scan``, become ``/r1/scan``),
``/r1/features``, ``/r1/prediction``, ``/r1/labeled_samples``. The nodes and their checks are
nn_one_launch.py's own (``_nodes`` with ``start_assembler`` on and ``start_trainer`` off, read
from it, not copied): ``num_features`` derived from the assembler's entries, a ``weights_file``
read before the predictor is given it (the model the fleet saved: the robot serves it from its
first message), ``managed:=true`` starting the assembler and the predictor as lifecycle nodes
and bringing them up in that order.
"""

import importlib.util
import os

from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import PathJoinSubstitution
from launch_ros.substitutions import FindPackageShare
from nn_one_node.names import InvalidName, node_namespace


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
    # (name, default, description); None: required; params_file's: a file of config/.
    ('namespace', None,
     "The robot's namespace (e.g. r1): every node and topic of the robot is under it, and the "
     "fleet trainer's patterns (fleet_launch.py fleet:=...) find the robot by it. Required."),
    ('params_file', 'robot.yaml',
     "Params YAML with the assembler's section (its features and label) and the predictor's "
     "(default: the installed config/robot.yaml, the simulated robot's)."),
    ('start_sim_robot', 'false',
     'Start the simulated robot (typed sensor topics and late labels for the assembler) in the '
     'namespace.'),
    ('weights_file', '',
     "A saved model (the fleet trainer's weights file) the predictor serves from the start; "
     'empty: the predictor starts from params_file until the fleet trainer deploys.'),
    ('use_sim_time', 'false', 'Use /clock (simulation) time in every node.'),
    ('log_level', 'info', 'Log level of every node: debug, info, warn, error or fatal.'),
]
# nn_one_launch.py's arguments that a robot launch fixes: a robot runs no trainer.
FIXED = {'start_trainer': 'false', 'start_assembler': 'true', 'start_sim_sensor': 'false',
         'num_features': '', 'features_topic': 'features', 'prediction_topic': 'prediction',
         'labeled_samples_topic': 'labeled_samples'}


def robot_namespace(text: str) -> str:
    """The robot's namespace, absolute, or ValueError with the reason: a robot of a fleet
    needs one of its own (the root namespace is no robot's).

    >>> robot_namespace('r1'), robot_namespace('/warehouse/amr_7')
    ('/r1', '/warehouse/amr_7')
    """
    text = text.strip()
    if text in ('', '/'):
        raise ValueError("robot_launch.py needs the robot's namespace (e.g. namespace:=r1): "
                         'the fleet trainer finds each robot by it')
    try:
        return node_namespace(text)
    except InvalidName as err:
        raise ValueError(f'namespace:={text}: {err}') from None


def _robot(context: LaunchContext):
    """nn_one_launch.py's nodes for this robot: its launch configurations set for the call
    (FIXED, and the robot's namespace made absolute), then put back as they were, so that
    nothing leaks into an enclosing launch."""
    config = context.launch_configurations
    values = dict(FIXED, namespace=robot_namespace(config['namespace']))
    saved = {name: config.get(name) for name in values}
    config.update(values)
    try:
        return base._nodes(context)
    finally:
        for name, value in saved.items():
            if value is None:
                config.pop(name, None)
            else:
                config[name] = value


def generate_launch_description() -> LaunchDescription:
    declared = []
    for name, default, description in ARGUMENTS:
        kwargs = {'description': description}
        if name == 'params_file':
            kwargs['default_value'] = PathJoinSubstitution([FindPackageShare(PACKAGE),
                                                            'config', default])
        elif default is not None:
            kwargs['default_value'] = default
        if name in ('start_sim_robot', 'use_sim_time'):
            kwargs['choices'] = base.BOOLEANS
        elif name == 'log_level':
            kwargs['choices'] = base.LOG_LEVELS
        declared.append(DeclareLaunchArgument(name, **kwargs))
    declared += [DeclareLaunchArgument(name, default_value=default, description=description,
                                       choices=base.BOOLEANS)
                 for name, default, description in base.LIFECYCLE_ARGUMENTS]
    return LaunchDescription(declared + [OpaqueFunction(function=_robot)])
