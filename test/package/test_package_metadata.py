"""package.xml and setup.py agree, and package.xml names every dependency the code imports, so a
robot's `rosdep install --from-paths .` gets everything."""

import ast
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_XML = ET.parse(ROOT / 'package.xml').getroot()

# import name -> the rosdep key package.xml must list
ROSDEP_KEYS = {
    'rclpy': 'rclpy', 'std_msgs': 'std_msgs', 'std_srvs': 'std_srvs',
    'rcl_interfaces': 'rcl_interfaces', 'diagnostic_msgs': 'diagnostic_msgs',
    'rosgraph_msgs': 'rosgraph_msgs', 'builtin_interfaces': 'builtin_interfaces',
    'ament_index_python': 'ament_index_python', 'numpy': 'python3-numpy',
    'yaml': 'python3-yaml', 'matplotlib': 'python3-matplotlib', 'launch': 'launch',
    'launch_ros': 'launch_ros', 'launch_testing': 'launch_testing',
    'launch_testing_ros': 'launch_testing_ros', 'pytest': 'python3-pytest',
    'hypothesis': 'python3-hypothesis', 'lifecycle_msgs': 'lifecycle_msgs',
    'sensor_msgs': 'sensor_msgs', 'nav_msgs': 'nav_msgs', 'geometry_msgs': 'geometry_msgs',
    # rosdistro's rosdep/python.yaml has rosbags as a pip key only (no python3-rosbags)
    'rosbags': 'python3-rosbags-pip', 'PIL': 'python3-pil',
}
# import name -> pip name: the learning benchmark's comparisons (River, scikit-learn), pinned in
# requirements.txt for the development environment, never needed on a robot (issue 16)
BENCH_ONLY = {'river': 'river', 'sklearn': 'scikit-learn'}


def setup_kwargs():
    tree = ast.parse((ROOT / 'setup.py').read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, 'id', '') == 'setup':
            return {kw.arg: kw.value for kw in node.keywords}
    raise AssertionError('no setup() call in setup.py')


def literal(node, names):
    if isinstance(node, ast.Name):
        return names[node.id]
    return ast.literal_eval(node)


def depends(*tags):
    return {e.text.strip() for tag in tags for e in PACKAGE_XML.iter(tag)}


def imported_modules(paths):
    found = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name.split('.')[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split('.')[0])
    # this repository's own modules: test helpers (e.g. rosbench) and the bench scripts
    local = {p.stem for d in ('test', 'bench') for p in (ROOT / d).rglob('*.py')}
    return found - set(sys.stdlib_module_names) - local - {'nn_one_node', 'setuptools'}


def test_name_and_version_agree():
    kwargs = setup_kwargs()
    names = {'PACKAGE': PACKAGE_XML.findtext('name')}
    assert literal(kwargs['name'], names) == PACKAGE_XML.findtext('name') == 'nn_one_node'
    assert ast.literal_eval(kwargs['version']) == PACKAGE_XML.findtext('version')
    assert re.fullmatch(r'\d+\.\d+\.\d+', PACKAGE_XML.findtext('version'))
    assert PACKAGE_XML.get('format') == '3'
    assert PACKAGE_XML.find('export/build_type').text == 'ament_python'
    assert (ROOT / 'resource' / 'nn_one_node').exists()


def test_every_imported_dependency_is_in_package_xml():
    run_deps = depends('exec_depend', 'depend')
    code = imported_modules((ROOT / 'nn_one_node').rglob('*.py'))
    code |= imported_modules((ROOT / 'launch').glob('*.py'))
    missing = {m: ROSDEP_KEYS.get(m, '?') for m in code
               if ROSDEP_KEYS.get(m) not in run_deps}
    assert not missing, f'run dependencies imported but not in package.xml: {missing}'
    test_deps = run_deps | depends('test_depend')
    # the tests import bench scripts (test_bench_endpoints), so what those import counts too
    tests = imported_modules([*(ROOT / 'test').rglob('*.py'), *(ROOT / 'bench').glob('*.py')])
    missing = {m: ROSDEP_KEYS.get(m, '?') for m in tests - set(BENCH_ONLY)
               if ROSDEP_KEYS.get(m) not in test_deps}
    assert not missing, f'test dependencies imported but not in package.xml: {missing}'


def test_bench_only_dependencies_stay_in_the_bench_and_are_pinned():
    # nothing a robot runs nor any test imports them; bench/learning_bench.py imports them
    # inside its learners, so even importing that script needs neither
    used = imported_modules([*(ROOT / 'nn_one_node').rglob('*.py'),
                             *(ROOT / 'launch').glob('*.py'), *(ROOT / 'test').rglob('*.py')])
    assert not used & set(BENCH_ONLY)
    pinned = (ROOT / 'requirements.txt').read_text()
    for name, pip in BENCH_ONLY.items():
        assert re.search(rf'^{pip}==', pinned, re.M), pip
    for path in (ROOT / 'bench').glob('*.py'):
        tree = ast.parse(path.read_text())
        top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        assert not imported_names(top) & set(BENCH_ONLY), path


def imported_names(nodes):
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name.split('.')[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module.split('.')[0])
    return found


def test_console_scripts_and_data_files_are_installed_where_ros_looks():
    kwargs = setup_kwargs()
    scripts = ast.literal_eval(kwargs['entry_points'])['console_scripts']
    for entry in scripts:
        name, target = (s.strip() for s in entry.split('='))
        module = target.split(':')[0]
        assert (ROOT / (module.replace('.', '/') + '.py')).exists(), entry
    assert {'predictor', 'trainer'} <= {e.split('=')[0].strip() for e in scripts}
    cfg = (ROOT / 'setup.cfg').read_text()
    assert 'script_dir=$base/lib/nn_one_node' in cfg
    assert 'install_scripts=$base/lib/nn_one_node' in cfg
    source = (ROOT / 'setup.py').read_text()
    for needle in ("'share/ament_index/resource_index/packages'", "['package.xml']",
                   "glob('launch/*_launch.py')", "glob('config/*.yaml')"):
        assert needle in source


def test_the_plugins_pytest_ini_needs_are_in_package_xml():
    """pytest.ini's options also apply to a robot's `colcon test`: without the plugin behind an
    option, pytest stops at 'unrecognized arguments' before running a single test."""
    addopts = next(line for line in (ROOT / 'pytest.ini').read_text().splitlines()
                   if line.startswith('addopts'))
    plugins = {'--timeout': 'python3-pytest-timeout', '--cov': 'python3-pytest-cov',
               '--reruns': 'python3-pytest-rerunfailures'}
    needed = {key for option, key in plugins.items() if option in addopts}
    assert needed <= depends('test_depend'), needed - depends('test_depend')
    assert '--timeout' in addopts  # CI relies on it: a hung test must not hang the run
