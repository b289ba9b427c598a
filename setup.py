"""ament_python setup for nn_one_node; the version must equal package.xml's (checked by a test)."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = 'nn_one_node'

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*', 'bench', 'bench.*']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE]),
        ('share/' + PACKAGE, ['package.xml']),
        ('share/' + PACKAGE + '/launch', glob('launch/*_launch.py')),
        ('share/' + PACKAGE + '/config', glob('config/*.yaml') + glob('config/*.xml')),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='nn_one_node maintainers',
    maintainer_email='maintainers@nn-one-node.dev',
    description='A multi-input, one-output neural model on ROS 2: online predictor and trainer.',
    license='Apache-2.0',
    tests_require=['pytest'],
    entry_points={
        'console_scripts': [
            'assembler = nn_one_node.nodes.assembler:main',
            'nn_one_bag = nn_one_node.offline.cli:console_main',
            'predictor = nn_one_node.nodes.predictor:main',
            'sim_robot = nn_one_node.nodes.sim_robot:main',
            'sim_sensor = nn_one_node.nodes.sim_sensor:main',
            'status = nn_one_node.tools.status:main',
            # the same, under a name no shell has taken (fish has a `status` builtin)
            'nn_one_status = nn_one_node.tools.status:main',
            'trainer = nn_one_node.nodes.trainer:main',
        ],
    },
)
