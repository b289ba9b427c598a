"""The installed ``nn_one_bag record`` against a running robot, and the demo's own recording,
both trained on with the shipped params files as they are (relative topic names):

* record sim_robot (config/robot.yaml) under namespace /robot1, stop with SIGINT, train on the
  bag with --namespace /robot1; without it, info and train refuse it with the same line;
* SIGTERM closes the bag as well; --duration ends a recording by itself, even one that heard
  nothing;
* the demo's --record bag is taken by info, train and evaluate with config/robot.yaml and
  config/nn_one.yaml;
* start-up mistakes of record are one line and exit code 2.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nn_one_node.offline.bagio import Recording
from rosbench import NodeProcess, executable_path

TIMEOUT = 40.0
LABELS = 15   # labels to record before stopping: enough for train's min_samples of 10


def config(name: str) -> str:
    from ament_index_python.packages import get_package_share_directory
    return os.path.join(get_package_share_directory('nn_one_node'), 'config', name)


def nn_one_bag(env, *args):
    return subprocess.run([executable_path('nn_one_bag'), *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=300)


def start_record(ros, tmp_path, out, *args) -> NodeProcess:
    argv = [executable_path('nn_one_bag'), 'record', '--params-file', config('robot.yaml'),
            *args, str(out)]
    proc = NodeProcess('nn_one_bag record', argv, ros.env,
                       tmp_path / f'record-{len(ros.processes)}.log')
    ros.processes.append(proc)
    return proc


def wait_for_count(proc: NodeProcess, topic: str, count: int) -> None:
    """Until a progress line shows at least ``count`` messages on ``topic``."""
    rx = re.compile(rf'{re.escape(topic)} ([0-9,]+)')
    deadline = time.monotonic() + TIMEOUT
    while True:
        seen = [int(n.replace(',', '')) for n in rx.findall(proc.output())]
        if seen and max(seen) >= count:
            return
        assert proc.alive() and time.monotonic() < deadline, \
            f'no {count} messages on {topic} recorded:\n{proc.tail()}'
        time.sleep(0.05)  # polling a log file: no event to wait on


def recorded_counts(proc: NodeProcess, out: Path):
    """The counts of the summary line, and the bag's own."""
    line = proc.wait_for_output(rf'wrote {re.escape(str(out))} \(rosbag2, \w+\): [0-9.]+ s, '
                                r'(.*)', 5.0).group(1)
    said = {} if line.startswith('no message') else {
        t: int(n.replace(',', '')) for t, n in (p.split(' ')[:2] for p in line.split('; ')[0]
                                                 .split(', '))}
    with Recording([out]) as rec:  # (a topic subscribed but silent may be listed, with 0)
        have = {t: n for t, (_ty, n) in rec.topics().items() if n}
    return said, have


def test_record_a_namespaced_robot_stop_with_ctrl_c_and_train_on_the_bag(ros, tmp_path):
    ros.start('sim_robot', params_files=[config('robot.yaml')], namespace='/robot1')
    out = tmp_path / 'bags' / 'run1'
    rec = start_record(ros, tmp_path, out, '--namespace', '/robot1')
    wait_for_count(rec, '/robot1/slip_probability', LABELS)
    assert rec.stop(signal.SIGINT) == 0, rec.tail()
    said, have = recorded_counts(rec, out)
    assert said == have and set(have) == {f'/robot1/{t}' for t in (
        'scan', 'odom', 'joint_states', 'imu', 'temperature', 'slip_probability')}, rec.tail()
    assert 'Traceback' not in rec.output()

    model = tmp_path / 'model.yaml'
    done = nn_one_bag(ros.env, 'train', out, '--params-file', config('robot.yaml'),
                      '--namespace', '/robot1', '--out', model, '--json', tmp_path / 'm.json')
    assert done.returncode == 0, done.stderr
    metrics = json.loads((tmp_path / 'm.json').read_text())
    assert metrics['prequential']['samples'] >= 10 and metrics['training']['updates_deployed'] >= 1
    info = nn_one_bag(ros.env, 'info', out, '--params-file', config('robot.yaml'),
                      '--namespace', '/robot1')
    assert info.returncode == 0 and 'all 6 entries are satisfied' in info.stdout, info.stderr

    # without the namespace: the one line of train, from info too
    refused = nn_one_bag(ros.env, 'train', out, '--params-file', config('robot.yaml'),
                         '--out', tmp_path / 'no.yaml')
    info = nn_one_bag(ros.env, 'info', out, '--params-file', config('robot.yaml'))
    assert refused.returncode == 2 == info.returncode
    assert 'give --namespace /robot1' in refused.stderr
    assert refused.stderr.replace('nn_one_bag train:', '') == \
        info.stderr.replace('nn_one_bag info:', '')
    assert not (tmp_path / 'no.yaml').exists()


def progress_counts(proc: NodeProcess):
    """{topic: messages} of the last progress line so far."""
    lines = [line for line in proc.output().splitlines()
             if re.match(r'nn_one_bag record: \d', line)]
    if not lines:
        return {}
    return {t: int(n.replace(',', '')) for t, n in re.findall(r'(/[\w/]+) ([0-9,]+)', lines[-1])}


def test_sigterm_closes_the_bag_and_a_duration_ends_a_recording_by_itself(ros, tmp_path):
    """...and /clock is recorded too where something publishes it (a simulator)."""
    from builtin_interfaces.msg import Time
    from rclpy.qos import QoSProfile
    from rosgraph_msgs.msg import Clock
    ros.start('sim_robot', params_files=[config('robot.yaml')])
    clock = ros.publisher(Clock, '/clock', QoSProfile(depth=10))
    out = tmp_path / 'run2'
    rec = start_record(ros, tmp_path, out, '--storage', 'sqlite3')
    topics = ['/clock', '/imu', '/joint_states', '/odom', '/scan', '/slip_probability',
              '/temperature']
    ticks = []

    def heard_all():
        ticks.append(len(ticks))
        clock.publish(Clock(clock=Time(sec=1000 + len(ticks))))
        counts = progress_counts(rec)
        return all(counts.get(t, 0) > 0 for t in topics)
    ros.spin_until(heard_all, TIMEOUT, f'messages on every topic\n{rec.tail()}')
    assert rec.stop(signal.SIGTERM) == 0, rec.tail()
    said, have = recorded_counts(rec, out)
    assert said == have and sorted(have) == topics and all(have.values())
    with Recording([out]) as bag:
        assert bag.storages() == ['sqlite3']
        stamps = [m.clock.sec for _t, _ns, m in bag.messages(['/clock'])]
    assert stamps == sorted(stamps) and 1000 < stamps[0] <= stamps[-1] <= 1000 + len(ticks)

    quiet = tmp_path / 'quiet'
    rec = start_record(ros, tmp_path, quiet, '--namespace', '/nobody', '--duration', '1.5')
    rec.proc.wait(timeout=TIMEOUT)
    assert rec.proc.returncode == 0, rec.tail()
    assert 'nothing heard on /nobody/imu, /nobody/joint_states' in rec.output()
    assert 'train on it' not in rec.output() and '(its namespace?)' in rec.output()
    said, have = recorded_counts(rec, quiet)
    assert said == have == {}
    done = nn_one_bag(ros.env, 'train', quiet, '--params-file', config('robot.yaml'),
                      '--namespace', '/nobody', '--out', tmp_path / 'm.yaml')
    assert done.returncode == 2 and 'are not in the bag' in done.stderr


def test_record_start_up_mistakes_are_one_line_and_exit_2(ros, tmp_path):
    taken = tmp_path / 'taken'
    taken.mkdir()
    for args, needle in [
            (['--params-file', tmp_path / 'nope.yaml', tmp_path / 'o'], 'no such file'),
            (['--params-file', config('robot.yaml'), taken], 'already exists'),
            (['--params-file', config('nn_one.yaml'), tmp_path / 'o'], 'no assembler section'),
            (['--params-file'], 'expected one argument')]:
        done = nn_one_bag(ros.env, 'record', *args)
        assert done.returncode == 2 and done.stdout == '', done
        assert len(done.stderr.splitlines()) == 1 and needle in done.stderr, done.stderr
    assert not (tmp_path / 'o').exists()


@pytest.mark.slow
def test_the_demo_bag_trains_and_evaluates_with_the_shipped_configs(tmp_path):
    """`make demo ARGS="--record DIR"`'s bag, with config/robot.yaml (relative names: the
    assembler's typed topics) and config/nn_one.yaml (the recorded labeled_samples)."""
    bag = tmp_path / 'demo_bag'
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    done = subprocess.run([sys.executable, '-m', 'nn_one_node.tools.demo', '--duration', '12',
                           '--record', str(bag), '--out', str(tmp_path / 'demo.png')],
                          env=env, capture_output=True, text=True, timeout=180,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for name in ('robot.yaml', 'nn_one.yaml'):
        params = config(name)
        info = nn_one_bag(env, 'info', bag, '--params-file', params)
        model = tmp_path / f'model-{name}'
        train = nn_one_bag(env, 'train', bag, '--params-file', params, '--out', model)
        assert info.returncode == 0 == train.returncode, (name, info.stderr, train.stderr)
        assert 'entries are satisfied' in info.stdout
        evaluate = nn_one_bag(env, 'evaluate', bag, '--params-file', params, '--weights', model)
        assert evaluate.returncode == 0, evaluate.stderr
        assert re.search(r'evaluate: \d+ samples', evaluate.stdout)
