"""Which launch tests can run here, decided without importing them.

A launch_testing test module needs launch_testing and launch_ros, and the Gazebo one also needs
ros_gz_bridge. Where one is missing, ``test/launch/conftest.py`` leaves the module out of the
collection and ``test_launch_deps.py`` reports one skip per module, with the reason. A module
never skips at import time: under launch_testing's pytest plugin a module-level skip in one file
ended the whole collection (``colcon test`` ran no test at all).
"""

import importlib.util
from typing import Dict, Optional, Tuple

SAME_CHECKS = {
    'test_nn_one_launch.py': 'test_launch_scenario_process.py',
    'test_nn_one_launch_managed.py': 'test_launch_scenario_process.py',
    'test_gazebo_launch.py': 'test_gazebo_process.py',
    'test_fleet_launch.py': 'test_fleet_launch_process.py',
}
NEEDS: Dict[str, Tuple[str, ...]] = {
    'test_nn_one_launch.py': ('launch_testing', 'launch_ros'),
    'test_nn_one_launch_managed.py': ('launch_testing', 'launch_ros'),
    'test_gazebo_launch.py': ('launch_testing', 'launch_ros', 'ros_gz_bridge'),
    'test_fleet_launch.py': ('launch_testing', 'launch_ros'),
}


def _installed(what: str) -> bool:
    if what == 'ros_gz_bridge':  # a ROS package (C++), found through the ament index
        try:
            from ament_index_python.packages import get_package_share_directory
            get_package_share_directory(what)
        except (ImportError, LookupError, OSError):
            return False
        return True
    return importlib.util.find_spec(what) is not None


def missing(module: str) -> Optional[str]:
    """Why the launch test ``module`` (a file name) cannot run here, or None."""
    absent = [what for what in NEEDS[module] if not _installed(what)]
    if not absent:
        return None
    return (f'{", ".join(absent)} not installed here; the same checks run in '
            f'{SAME_CHECKS[module]}')
