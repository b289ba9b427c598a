"""Load on the installed predictor and trainer (issue 6): a short soak and a burst, in CI.

The soak (reliability_kit.run_soak; bench/soak.py runs it for minutes): features at 200 Hz and
labeled samples at 1 kHz, one message in a hundred of each deliberately bad, for about 25 s.
Resident memory of both nodes stays flat, no prediction is lost, nothing non-finite is published,
the trainer keeps deploying, and every counter adds up with what was sent. The predictor takes its
features through the documented QoS override to reliable: with the default best-effort depth-5
subscription a message may be dropped whenever the node falls 5 messages behind, which is that
QoS's contract, not a loss by the node.

The burst: 100 000 labeled samples in four batch messages. The trainer keeps exactly the newest
buffer_size (its next update equals the model core's on those rows), and a Trigger service call
answers within a bound while it ingests and trains.
"""

import os
import time

import numpy as np
import pytest
from reliability_kit import Diagnostics, TimedClient, batch_msg, record, run_soak
from rclpy.qos import QoSProfile
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import SetBool, Trigger

from nn_one_node.model import sigmoid
from nn_one_node.learning.buffer import SampleBuffer
from nn_one_node.learning.config import DEFAULTS
from nn_one_node.learning.descent import train_update

TIMEOUT = 30.0
SOAK_SECONDS = float(os.environ.get('NN1_SOAK_SECONDS', '25'))


def rss_flat(r):
    """End vs start (after warm-up): at most +5 % + 4 MiB, as the benchmarks of issue 5 judge."""
    return r['end_kib'] <= r['start_kib'] * 1.05 + 4096


@pytest.mark.slow
def test_soak_memory_flat_nothing_lost_training_deploys_counters_add_up(ros):
    # The trainer at niceness 0: at its default 19 a machine busy with anything else starves it,
    # and a reliable writer's bounded history then drops rows it could not take in time (two
    # CPU hogs next to this test: 15 343 of 24 976 rows received). That is the default's
    # purpose (prediction first); what this test checks is that every row is counted.
    f = run_soak(ros, SOAK_SECONDS, trainer_params={'niceness': 0})
    record('soak_ci', {k: v for k, v in f.items() if k != 'rss_series'})
    sent = f['sent']
    # the rates offered: slots skipped while this process stalled stay rare
    assert sum(f['skipped_in_stalls'].values()) <= 0.05 * sum(sent.values()), f
    # nothing lost, nothing non-finite
    assert f['predictions_lost'] == 0, f
    assert f['predictions_received'] == sent['features']
    assert f['non_finite_predictions'] == 0 and f['predictions_out_of_0_1'] == 0
    # the predictor's counters: received = predicted + refused = what was sent
    p = f['predictor']
    assert p['messages received'] == sent['features'] + sent['features_bad'], f
    assert p['messages received'] == p['messages predicted'] + p['messages refused']
    assert p['messages refused'] == sent['features_bad'] > 0
    # the trainer's: every row counted, the bad ones refused, the ring full
    t = f['trainer']
    assert t['samples received'] == sent['labeled'] + sent['labeled_bad'], f
    assert t['samples refused'] == sent['labeled_bad'] > 0
    assert t['samples held'] == 10000
    # training deploys all along: in every third of the soak
    series = f['deployed_series']
    thirds = np.array_split(np.array([d for _, d in series]), 3)
    assert all(part[-1] > part[0] for part in thirds), series
    # memory flat
    for name, r in f['rss'].items():
        assert rss_flat(r), f'{name} RSS grew: {r}'


@pytest.mark.slow
def test_a_burst_of_100000_samples_keeps_the_newest_and_the_services_answer(ros):
    n, cap, total, batches = 5, 20_000, 100_000, 4
    trainer = ros.start('trainer', {
        'num_features': n, 'buffer_size': cap, 'train_period': 0.05, 'min_samples': 1,
        'iterations_per_update': 100, 'tolerance': 0.0, 'predictor_node': '',
        'diagnostics_period': 0.1, 'weights_file': str(ros.tmp_path / 'w.yaml'),
        # the whole ring trained on, as the check below computes it (the policy's window and
        # change detection, tested elsewhere, would train on fewer)
        'train_window': cap, 'change_threshold': 0.0, 'relative_tolerance': 0.0,
        # niceness 0: at the default 19, any other load on the machine delays its services by
        # whole time slices (two CPU hogs next to this test: p90 1.2 s), which is the default's
        # purpose; this test is about the trainer's own work not blocking them.
        'niceness': 0})
    diags = Diagnostics(ros)
    samples = ros.publisher(Float64MultiArray, 'labeled_samples', QoSProfile(depth=10))
    ros.wait_for_subscribers(samples, 1, TIMEOUT)
    save = TimedClient(ros, Trigger, '/trainer/save', TIMEOUT)
    rng = np.random.default_rng(8)
    X = rng.normal(size=(total, n)) * np.array([1.0, 10.0, 0.1, 1e3, 1e-3])
    y = sigmoid((X / X.std(axis=0)) @ np.array([1.0, -1.0, 0.5, 2.0, 0.0]))
    mirror = SampleBuffer(cap, n)
    # While it ingests and trains, Trigger calls (~/save) answer, each within the bound. The
    # batches go one after the other as the trainer takes them, so that what is timed is the
    # node and not the transport: four 1.2 MB messages at once answer as fast on a quiet machine
    # (bench/soak.py --burst-at-once), but were once seen to delay a call by 2.8 s on one shared
    # with other test runs.
    latencies = []
    start = time.monotonic()
    parts = list(np.array_split(np.arange(total), batches))
    sent = 0
    while True:
        d = diags.of('trainer')
        received = int(d['samples received']) if d else 0
        if parts and received == sent:
            idx = parts.pop(0)
            samples.publish(batch_msg(np.column_stack([X[idx], y[idx]])))  # 1.2 MB
            mirror.add(X[idx], y[idx])
            sent += idx.shape[0]
        reply, seconds = save.call()
        latencies.append(seconds)
        assert reply.success, reply.message
        if not parts and received == total and int(d['updates']) >= 5:
            break
        assert time.monotonic() - start < TIMEOUT, f'the burst was not handled: {d}'
    # An update on the full ring takes 20-100 ms here: most calls wait for none or one, and no
    # call waits for long (2 s allows for a CI machine shared with other jobs).
    assert np.percentile(latencies, 90) < 0.2, sorted(latencies)[-10:]
    assert max(latencies) < 2.0, f'a Trigger call took {max(latencies):.3f} s'
    assert int(d['samples held']) == cap and int(d['samples refused']) == 0, d

    # the newest buffer_size kept: the next update is the core's on exactly those rows
    reply = ros.call(SetBool, '/trainer/enable_training', SetBool.Request(data=False), TIMEOUT)
    assert reply.success
    got = ros.get_parameters('/trainer', ['weights', 'bias'], TIMEOUT)
    reply = ros.call(Trigger, '/trainer/train_now', Trigger.Request(), TIMEOUT)
    offline = train_update(*mirror.arrays(), np.asarray(got['weights']), got['bias'],
                           learning_rate=2.0, iterations=100, tolerance=0.0,
                           l2=DEFAULTS['prior'] / cap)  # the prior over the rows fitted
    assert reply.message == offline.reason and f'on {cap} samples' in reply.message
    after = ros.get_parameters('/trainer', ['weights', 'bias'], TIMEOUT)
    np.testing.assert_allclose(after['weights'], offline.weights, rtol=1e-9)
    assert trainer.alive() and 'Traceback' not in trainer.output()
    record('burst', {
        'samples': total, 'messages': batches, 'buffer_size': cap,
        'message_bytes': int(total / batches * (n + 1) * 8),
        'trigger_calls_during_burst': len(latencies),
        'trigger_latency_max_ms': round(max(latencies) * 1e3, 1),
        'trigger_latency_median_ms': round(float(np.median(latencies)) * 1e3, 1),
        'updates_during_burst': int(d['updates']),
    })
