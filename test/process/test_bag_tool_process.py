"""The installed nn_one_bag with the installed nodes, over real DDS:

* the MODEL.yaml it writes is what the predictor serves when started with ``--params-file`` and
  what the trainer resumes from as its ``weights_file``;
* its exit code 2 for bad input, from the installed executable;
* live equals offline: a recorded bag replayed with its timestamps to the running ``assembler``
  (use_sim_time, /clock published from the bag's times) yields the feature rows and labeled
  samples that nn_one_bag builds offline from the same bag and params file.
"""

import json
import subprocess
from pathlib import Path

import numpy as np
from rclpy.qos import QoSProfile
from rclpy.serialization import deserialize_message
from diagnostic_msgs.msg import DiagnosticArray
from rosgraph_msgs.msg import Clock
from std_msgs.msg import Float64MultiArray

from bagkit import NS, robot_params, write_labeled_bag, write_params, write_robot_bag
from nn_one_node.assembly.msgtypes import default_resolver
from nn_one_node.offline.bagio import Recording
from nn_one_node.ros.codecs import matrix_from_msg
from nn_one_node.offline.sources import AssembledSource
from nn_one_node.offline.replay import Replay
from nn_one_node.offline.params_file import params_for
from nn_one_node.learning.weights_file import load_weights_file
from rosbench import diagnostic_values, executable_path

TIMEOUT = 30.0


def nn_one_bag(ros, *args, check=True):
    done = subprocess.run([executable_path('nn_one_bag'), *map(str, args)], env=ros.env,
                          capture_output=True, text=True, timeout=300)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def test_the_model_file_is_what_the_predictor_serves_and_the_trainer_resumes(ros, tmp_path):
    bag = tmp_path / 'bag'
    write_labeled_bag(bag, 'sqlite3', seconds=20.0)
    params = write_params(tmp_path / 'p.yaml', {'/**/trainer': {'ros__parameters': {
        'num_features': 5, 'train_period': 1.0}}})
    model = tmp_path / 'model.yaml'
    done = nn_one_bag(ros, 'train', bag, '--params-file', params, '--out', model)
    assert 'nn_one_bag train:' in done.stdout and done.stderr == ''
    content = load_weights_file(model, num_features=5)
    expected = ([float(w) for w in content.weights], content.bias, 'sigmoid', 5)

    ros.start('predictor', params_files=[model])
    got = ros.get_parameters('/predictor', ['weights', 'bias', 'activation', 'num_features'],
                             TIMEOUT)
    assert ([float(w) for w in got['weights']], got['bias'], got['activation'],
            got['num_features']) == expected

    trainer = ros.start('trainer', params={'num_features': 5, 'predictor_node': '',
                                           'weights_file': str(model)})
    trainer.wait_for_output('resumed the model from', TIMEOUT)
    got = ros.get_parameters('/trainer', ['weights', 'bias', 'activation'], TIMEOUT)
    assert ([float(w) for w in got['weights']], got['bias'], got['activation']) == expected[:3]


def test_bad_input_exits_2_from_the_installed_executable(ros, tmp_path):
    model = tmp_path / 'model.yaml'
    params = write_params(tmp_path / 'p.yaml', {'trainer': {'ros__parameters': {
        'num_features': 5}}})
    done = nn_one_bag(ros, 'train', tmp_path / 'missing', '--params-file', params,
                      '--out', model, check=False)
    assert done.returncode == 2 and 'missing: no such file' in done.stderr
    assert not model.exists()
    done = nn_one_bag(ros, '--help')
    assert 'examples:' in done.stdout


def _offline(bag: Path, section):
    """Feature rows (t_ns, row) and labeled samples that nn_one_bag builds from the bag."""
    source = AssembledSource(section)
    rows = []
    source.feature_rows = lambda row, now: rows.append((now, row))
    samples = []
    with Recording([bag]) as rec:
        Replay(source, lambda r, t: samples.append(r)).run(rec.messages())
        raw = list(rec.raw_messages())
    return source, rows, np.vstack(samples), raw


def test_live_equals_offline_the_assembler_builds_from_a_replayed_bag_what_nn_one_bag_does(
        ros, tmp_path):
    bag = tmp_path / 'bag'
    write_robot_bag(bag, 'mcap', seconds=4.0, imu_hz=20.0, joint_hz=10.0, scan_hz=10.0,
                    odom_hz=10.0, state_hz=4.0, label_delay=0.5)
    document = robot_params(rate=20.0, label_delay=0.5)
    section = params_for(document, 'assembler')
    source, offline_rows, offline_samples, raw = _offline(bag, section)
    assert len(offline_rows) > 60 and offline_samples.shape == (14, 6)

    params = write_params(tmp_path / 'live.yaml', {'/**/assembler': {'ros__parameters': {
        **section, 'use_sim_time': True, 'diagnostics_period': 0.01}}})
    ros.start('assembler', params_files=[params])
    rows = ros.collect(Float64MultiArray, 'features')
    samples = ros.collect(Float64MultiArray, 'labeled_samples')
    clock = ros.publisher(Clock, '/clock', QoSProfile(depth=10))
    pubs = {topic: ros.publisher(default_resolver(msgtype), topic, QoSProfile(depth=10))
            for topic, msgtype in source.inputs.items()}
    for pub in [clock, *pubs.values()]:
        ros.wait_for_subscribers(pub, 1, TIMEOUT)
    ros.spin_until(lambda: ros.node.count_publishers('features') >= 1
                   and ros.node.count_publishers('labeled_samples') >= 1, TIMEOUT,
                   'the assembler publishers')

    # Discovery is asymmetric: seeing the assembler's subscriptions does not prove it takes our
    # messages yet. Warm up well before the bag's first time: /clock steps and one probe per
    # input (stamped then, so stale by the bag's first tick, and refused where empty) until its
    # /diagnostics (a timer on the /clock) count a message on every input.
    diag = ros.collect(DiagnosticArray, '/diagnostics')
    first = raw[0][2]
    warm = first - 5 * NS
    probes = {topic: _probe(default_resolver(msgtype), warm) for topic, msgtype in
              source.inputs.items()}

    def heard_all():
        values = diagnostic_values(diag, 'assembler') or {}
        return all(int(values.get(f'messages: {t}', 0)) >= 1 for t in pubs)

    step = 0
    while not heard_all():
        assert step < 2000, f'the assembler never heard the probes\n{ros.logs()}'
        step += 1
        clock.publish(Clock(clock=_time(warm + step * NS // 100)))
        for topic, pub in pubs.items():
            pub.publish(probes[topic])
        ros.spin_for(0.02)

    def barrier():
        """A reply from the assembler: what was published to it before has been taken."""
        ros.get_parameters('/assembler', ['rate'], TIMEOUT)

    def set_clock(t_ns):
        clock.publish(Clock(clock=_time(t_ns)))
        barrier()

    # The offline timeline, played live: the timer's ticks (the first at the first message,
    # then at multiples of 1 / rate) and the messages between them, in bag order.
    period = source.period_ns
    ticks = [first] + list(range((first // period + 1) * period, raw[-1][2] + 1, period))
    row_times = {now for now, _row in offline_rows}
    assert len(ticks) == source.asm.ticks
    expected_rows = 0
    i = 0
    for k, tick in enumerate(ticks):
        set_clock(tick)  # the timer fires at this time of the clock
        if tick * 1e-9 in row_times:  # offline, this tick built a row: wait for it live
            expected_rows += 1
            ros.wait_for_messages(rows, expected_rows, TIMEOUT, f'the row of tick {k}')
        else:
            barrier()  # a stale tick: nothing is published
        end = ticks[k + 1] if k + 1 < len(ticks) else raw[-1][2] + 1
        while i < len(raw) and raw[i][2] < end:
            topic, msgtype, t, data = raw[i]
            if topic == '/slip':  # no header: its arrival time on the clock is its time
                set_clock(t)
            pubs[topic].publish(deserialize_message(bytes(data), default_resolver(msgtype)))
            barrier()
            i += 1
    assert i == len(raw)
    ros.wait_for_messages(rows, len(offline_rows), TIMEOUT, 'every feature row')
    live_rows = np.vstack([np.asarray(m.data) for m in rows])
    np.testing.assert_array_equal(live_rows, np.vstack([r for _t, r in offline_rows]))
    n = source.num_features
    ros.wait_for_messages(samples, 1, TIMEOUT, 'labeled samples')
    ros.spin_until(lambda: sum(matrix_from_msg(m, n + 1).shape[0] for m in samples)
                   >= offline_samples.shape[0], TIMEOUT, 'every labeled sample')
    live_samples = np.vstack([matrix_from_msg(m, n + 1) for m in samples])
    np.testing.assert_array_equal(live_samples, offline_samples)
    # and these are the samples the installed nn_one_bag trains on from that bag
    config = write_params(tmp_path / 'robot.yaml', document)
    nn_one_bag(ros, 'train', bag, '--params-file', config, '--out', tmp_path / 'm.yaml',
               '--json', tmp_path / 'm.json')
    metrics = json.loads((tmp_path / 'm.json').read_text())
    assert metrics['prequential']['samples'] == offline_samples.shape[0]
    assert metrics['inputs']['rows published'] == len(offline_rows)


def _probe(cls, t_ns: int):
    msg = cls()
    if hasattr(msg, 'header'):
        msg.header.stamp = _time(t_ns)
    return msg


def _time(t_ns: int):
    from builtin_interfaces.msg import Time
    return Time(sec=t_ns // NS, nanosec=t_ns % NS)
