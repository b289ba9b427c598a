"""`python -m nn_one_node.tools.demo` end to end: it learns, summarises, plots, stops its nodes,
exits 0,
whether it ends by itself or by Ctrl-C, on the robot path (typed topics and the assembler) and on
the array path (--arrays); --record writes a bag of the run."""

import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


def assert_nodes_stopped_cleanly(out: str):
    line = re.search(r'^stopped (.*)$', out, re.M)
    assert line, out
    codes = re.findall(r'\(exit ([^)]*)\)', line.group(1))
    assert codes and set(codes) == {'0'}, line.group(0)


def start_demo(*args, domain_id=None):
    """The demo, on the ROS_DOMAIN_ID given (as a user who exported one), else on one it
    chooses (as a user who did not)."""
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    env.pop('ROS_DOMAIN_ID', None)
    if domain_id is not None:
        env['ROS_DOMAIN_ID'] = str(domain_id)
    return subprocess.Popen([sys.executable, '-m', 'nn_one_node.tools.demo', *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                            stdin=subprocess.DEVNULL)


def read_until(proc, pattern, timeout):
    """Read the demo's output until a line matches ``pattern``; return everything read."""
    rx = re.compile(pattern)
    deadline = time.monotonic() + timeout
    text = b''
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            proc.kill()
            raise AssertionError(f'no line matching {pattern!r} within {timeout} s:\n'
                                 f'{text.decode(errors="replace")}')
        ready, _, _ = select.select([proc.stdout], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(proc.stdout.fileno(), 65536)
        if not chunk:
            raise AssertionError(f'the demo ended before printing {pattern!r}:\n'
                                 f'{text.decode(errors="replace")}')
        text += chunk
        if any(rx.search(line) for line in text.decode(errors='replace').splitlines()):
            return text.decode(errors='replace')


def finish(proc, timeout=60.0):
    out, _ = proc.communicate(timeout=timeout)
    return out.decode(errors='replace')


def check_png(path: Path):
    assert path.exists(), f'no plot at {path}'
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > 10_000


def final_accuracy(out: str) -> float:
    m = re.search(r'final accuracy:\s+([0-9.]+) %', out)
    assert m, out
    return float(m.group(1))


def check_learned(out: str):
    assert 'summary after' in out
    assert final_accuracy(out) >= 90.0, out
    # the weights near the truth: within 0.4 after about 50 labeled samples (14 s of the robot
    # path), where the prior (doc/learning.md) still holds a young training set back
    m = re.search(r'relative error ([0-9.]+)', out)
    assert m and float(m.group(1)) < 0.4, out
    assert re.search(r'trainer updates \(deployed\):\s+[1-9]', out), out


@pytest.mark.slow
def test_demo_learns_plots_records_and_exits_zero_by_itself(tmp_path):
    """The default, robot path: sim_robot's typed topics -> assembler -> predictor, late labels
    -> assembler -> trainer -> predictor; --record writes what ran to a bag AnyReader reads."""
    png = tmp_path / 'plots' / 'demo.png'
    bag = tmp_path / 'bags' / 'demo'
    duration = 14
    proc = start_demo('--duration', duration, '--out', png, '--record', bag)
    out = finish(proc, timeout=150)
    assert proc.returncode == 0, out
    assert 'the robot path' in out
    assert re.search(r'ROS_DOMAIN_ID \d+ \(free, chosen for this run', out), out
    assert_nodes_stopped_cleanly(out)
    assert re.search(r'^stopped .*predictor.*trainer.*assembler.*sim_robot', out, re.M) \
        or 'ros2 launch' in out, out
    check_learned(out)
    assert f'plot of loss and accuracy over time: {png.resolve()}' in out
    check_png(png)
    assert (png.parent / 'demo-logs').is_dir()
    # one progress line about every second
    assert len(re.findall(r'^\s+\d+\.\ds\s', out, re.M)) >= 10

    assert f'recorded to {bag.resolve()} (rosbag2, mcap)' in out
    assert list(bag.glob('*.mcap')) and (bag / 'metadata.yaml').exists()
    from rosbags.highlevel import AnyReader
    # messages per second (the monitor records from its start, a little after the nodes')
    rates = {'/scan': 25, '/odom': 50, '/joint_states': 50, '/imu': 100, '/temperature': 25,
             '/slip': 5, '/slip_probability': 5, '/labeled_samples': 5, '/features': 50,
             '/prediction': 50}
    with AnyReader([bag]) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
        assert set(counts) == set(rates), counts
        for topic, rate in rates.items():
            # labels start a label_delay late; the typed rates hold within DDS losses
            assert 0.3 * rate * duration <= counts[topic] <= 1.5 * rate * (duration + 5), \
                (topic, counts)
        first = {}
        for conn, _, raw in reader.messages():
            if conn.topic not in first:
                first[conn.topic] = reader.deserialize(raw, conn.msgtype)
            if len(first) == len(rates):
                break
    assert len(first['/scan'].ranges) == 360
    assert sorted(first['/joint_states'].name) == ['left_wheel_joint', 'right_wheel_joint']
    assert first['/odom'].child_frame_id == 'base_link'
    assert len(first['/labeled_samples'].data) == 6  # 5 features and the label
    assert 0.0 < first['/slip_probability'].data < 1.0


@pytest.mark.slow
def test_the_array_path_still_learns_on_the_domain_the_user_chose(tmp_path, domain_id):
    png = tmp_path / 'plots' / 'demo.png'
    proc = start_demo('--arrays', '--duration', 12, '--out', png, domain_id=domain_id)
    out = finish(proc, timeout=120)
    assert proc.returncode == 0, out
    assert 'the array path' in out
    # the user's own tools on their ROS_DOMAIN_ID see the demo: its monitor learns there
    assert f'ROS_DOMAIN_ID {domain_id} (yours)' in out, out
    assert_nodes_stopped_cleanly(out)
    assert re.search(r'^stopped .*predictor.*trainer.*sim_sensor', out, re.M) \
        or 'ros2 launch' in out, out
    check_learned(out)
    check_png(png)


@pytest.mark.slow
def test_ctrl_c_ends_the_demo_early_with_summary_plot_and_exit_zero(tmp_path):
    png = tmp_path / 'demo.png'
    proc = start_demo('--duration', 300, '--out', png)
    head = read_until(proc, r'^\s+\d+\.\ds\s+\d+', timeout=60)
    proc.send_signal(signal.SIGINT)
    out = head + finish(proc, timeout=40)
    assert proc.returncode == 0, out
    assert 'interrupted' in out and 'summary after' in out
    assert_nodes_stopped_cleanly(out)
    check_png(png)


def test_bad_arguments_exit_2_with_the_reason(tmp_path):
    proc = start_demo('--duration', -1, '--out', tmp_path / 'x.png')
    out = finish(proc, timeout=30)
    assert proc.returncode == 2 and '--duration must be' in out
    (tmp_path / 'taken').mkdir()
    proc = start_demo('--record', tmp_path / 'taken', '--out', tmp_path / 'x.png')
    out = finish(proc, timeout=30)
    assert proc.returncode == 2 and 'already exists' in out
    proc = start_demo('--out', tmp_path / 'x.png', domain_id='robot7')
    out = finish(proc, timeout=30)
    assert proc.returncode == 2 and "ROS_DOMAIN_ID='robot7' is not a domain ID" in out, out
    assert 'Traceback' not in out
