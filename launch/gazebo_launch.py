"""Learn from a Gazebo (gz sim) robot: ros_gz_bridge, the assembler, the predictor and the trainer,
all on simulation time.

    gz sim my_world.sdf                                        # your world, its robot, playing
    ros2 launch nn_one_node gazebo_launch.py                   # bridge + assembler + predictor
                                                               # + trainer, use_sim_time on
    ros2 launch nn_one_node gazebo_launch.py bridge_config:=/path/my_bridge.yaml \\
        params_file:=/path/my_gazebo.yaml namespace:=robot1
    ros2 launch nn_one_node gazebo_launch.py --show-args

The bridge is ros_gz_bridge's ``parameter_bridge`` with a ``config_file`` (default: the installed
``config/gazebo_bridge.yaml``): it bridges ``/clock`` (rosgraph_msgs/msg/Clock from
gz.msgs.Clock) and the robot's sensors (LaserScan, Odometry, JointState, Imu) and a slip label
(std_msgs/msg/Bool) to the ROS topics that the assembler section of ``params_file`` (default:
``config/gazebo.yaml``) reads. Every node runs with ``use_sim_time`` on: their timers follow
``/clock``, so nothing timer-driven happens while the simulation is paused, and a world reset
(``/clock`` jumping back) makes the assembler drop every held value and row.

ros_gz is not a dependency of nn_one_node (a robot without Gazebo does not need it): install
``ros-<distro>-ros-gz`` to use this file, or pass ``start_bridge:=false`` and run a bridge of
your own.
"""

import os

from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

PACKAGE = 'nn_one_node'
BRIDGE_PACKAGE = 'ros_gz_bridge'

ARGUMENTS = [
    # (name, default, description); for CONFIG_DEFAULTS the default names a file in the
    # installed config/.
    ('params_file', 'gazebo.yaml',
     'Params YAML for the assembler, predictor and trainer (node keys /**/assembler, ...).'),
    ('bridge_config', 'gazebo_bridge.yaml',
     "ros_gz_bridge's config_file: the Gazebo topics bridged to the ROS topics the assembler "
     'reads, and /clock.'),
    ('start_bridge', 'true',
     "Start ros_gz_bridge's parameter_bridge with bridge_config; false: a bridge of your own "
     '(or a bag played with --clock) publishes the topics.'),
    ('namespace', '', 'Namespace of all nodes (the bridged topics but /clock move with it).'),
    ('start_trainer', 'true', 'Start the trainer; false: the predictor serves its model only.'),
    ('log_level', 'info', 'Log level of every node: debug, info, warn, error or fatal.'),
]
CONFIG_DEFAULTS = ('params_file', 'bridge_config')
BOOLEANS = ['true', 'false', 'True', 'False', '1', '0']
LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'fatal', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL']


def _flag(context: LaunchContext, name: str) -> bool:
    return LaunchConfiguration(name).perform(context).strip() in ('true', 'True', '1')


def _nodes(context: LaunchContext):
    arg = {name: LaunchConfiguration(name).perform(context) for name, _, _ in ARGUMENTS}
    for name in CONFIG_DEFAULTS:
        if not os.path.isfile(arg[name]):
            raise FileNotFoundError(f'{name} {arg[name]!r} does not exist')
    namespace = arg['namespace'].strip() or None
    sim_time = {'use_sim_time': True}
    common = {'namespace': namespace, 'output': 'screen',
              'arguments': ['--ros-args', '--log-level', arg['log_level']]}
    nodes = []
    if _flag(context, 'start_bridge'):
        nodes.append(Node(
            package=BRIDGE_PACKAGE, executable='parameter_bridge', name='gz_bridge',
            parameters=[{'config_file': arg['bridge_config'], **sim_time}], **common))
    names = ['assembler', 'predictor'] + (['trainer'] if _flag(context, 'start_trainer') else [])
    for name in names:
        nodes.append(Node(package=PACKAGE, executable=name, name=name,
                          parameters=[arg['params_file'], sim_time], **common))
    return nodes


def generate_launch_description() -> LaunchDescription:
    declared = []
    for name, default, description in ARGUMENTS:
        kwargs = {}
        if name in ('start_bridge', 'start_trainer'):
            kwargs['choices'] = BOOLEANS
        elif name == 'log_level':
            kwargs['choices'] = LOG_LEVELS
        if name in CONFIG_DEFAULTS:
            default = PathJoinSubstitution([FindPackageShare(PACKAGE), 'config', default])
        declared.append(DeclareLaunchArgument(name, default_value=default,
                                              description=description, **kwargs))
    return LaunchDescription(declared + [OpaqueFunction(function=_nodes)])
