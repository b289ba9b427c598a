"""The long soak of issue 6, and two transport probes; figures to artifacts/reliability.json.

    source scripts/setup_env.sh && python bench/soak.py                 # 180 s soak
    source scripts/setup_env.sh && python bench/soak.py --duration 600 --best-effort
    source scripts/setup_env.sh && python bench/soak.py --qos-probe     # seconds
    source scripts/setup_env.sh && python bench/soak.py --burst-at-once # seconds

The soak is test_soak_process.py's scenario (reliability_kit.run_soak), for minutes: the
installed predictor and trainer, features at --feature-rate and single labeled rows at
--label-rate (one in a hundred of each bad), with the same checks; it prints a line per second
and the figures, and says FAIL (exit 1) where a check does not hold. RSS growth is also fitted
(KiB per minute after warm-up), which a few minutes resolve better than the CI's 25 s.

--qos-probe sends features messages of growing size to a predictor with its default best-effort
subscription and with the reliable override, and counts which arrive. --burst-at-once sends the
100 000-sample burst as four messages at once (the CI test paces them) and times Trigger calls.
Everything runs on a claimed ROS_DOMAIN_ID with DDS on loopback.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / 'test' / 'support'))

from nn_one_node.ros.isolation import claim_domain_id, keep_this_process_on_loopback  # noqa: E402

# This process's own rclpy contexts read these at init.
keep_this_process_on_loopback()

import reliability_kit as kit  # noqa: E402
from rosbench import RosBench  # noqa: E402


def soak(ros, args) -> int:
    f = kit.run_soak(ros, args.duration, args.feature_rate, args.label_rate,
                     best_effort=args.best_effort, warmup=args.warmup, log=print)
    fits = {}
    for name, series in f['rss_series'].items():
        t = np.array([s for s, _ in series if s >= args.warmup])
        v = np.array([kib for s, kib in series if s >= args.warmup])
        fits[name] = float(np.polyfit(t, v, 1)[0] * 60.0) if t.size > 2 else None
    f['rss_growth_kib_per_min'] = fits
    sent = f['sent']
    checks = {
        'no prediction lost': f['predictions_lost'] == 0,
        'nothing non-finite published': f['non_finite_predictions'] == 0,
        'predictor: received = predicted + refused = sent': (
            f['predictor']['messages received'] == f['predictor']['messages predicted']
            + f['predictor']['messages refused'] == sent['features'] + sent['features_bad']),
        'trainer: every sample counted, the bad ones refused': (
            f['trainer']['samples received'] == sent['labeled'] + sent['labeled_bad']
            and f['trainer']['samples refused'] == sent['labeled_bad']),
        'training deploys in every third': all(
            part[-1] > part[0] for part in np.array_split(
                np.array([d for _, d in f['deployed_series']]), 3)),
        'RSS flat (end <= start + 5 % + 4 MiB)': all(
            r['end_kib'] <= r['start_kib'] * 1.05 + 4096 for r in f['rss'].values()),
    }
    f['checks'] = checks
    kit.record('soak_long_best_effort' if args.best_effort else 'soak_long',
               {k: v for k, v in f.items() if k != 'rss_series'})
    print(f'\n{f["duration_s"]} s, features {sent["features"]} (+{sent["features_bad"]} bad) '
          f'at {args.feature_rate} Hz ({f["features_qos"]}), labeled rows {sent["labeled"]} '
          f'(+{sent["labeled_bad"]} bad) at {args.label_rate} Hz')
    print(f'predictions received {f["predictions_received"]}, lost {f["predictions_lost"]}; '
          f'predictor {f["predictor"]}; trainer {f["trainer"]}')
    for name, r in f['rss'].items():
        print(f'RSS {name}: {r["first_kib"]} KiB at start, {r["start_kib"]} after warm-up, '
              f'{r["end_kib"]} at the end (max {r["max_kib"]}); '
              f'{fits[name]:+.1f} KiB/min fitted')
    for what, ok in checks.items():
        print(f'{"ok  " if ok else "FAIL"} {what}')
    return 0 if all(checks.values()) or args.best_effort else 1


def qos_probe(ros, _args) -> int:
    """Which features message sizes arrive over best effort (default) vs reliable."""
    from rclpy.qos import QoSProfile
    from std_msgs.msg import Float64MultiArray
    rows = [1000, 10_000, 20_000, 40_000, 60_000, 100_000, 300_000]
    results = {}
    for qos in ('best effort', 'reliable'):
        params = {'num_features': 3, 'diagnostics_period': 0.05}
        if qos == 'reliable':
            params['qos_overrides'] = kit.RELIABLE_FEATURES_QOS
        name = 'probe_' + qos.replace(' ', '_')
        proc = ros.start('predictor', params, name=name)
        pub = ros.publisher(Float64MultiArray, 'features', QoSProfile(depth=10))
        out = []
        sub = ros.node.create_subscription(Float64MultiArray, 'prediction', out.append, 10)
        ros.handshake(pub, kit.msg_of([0.0] * 3), out, 30.0)
        results[qos] = {}
        for m in rows:
            got = 0
            for _ in range(3):
                before = len(out)
                pub.publish(kit.batch_msg(np.ones((m, 3))))
                try:
                    ros.spin_until(lambda: len(out) > before, 3.0, 'a reply')
                    got += 1
                except AssertionError:
                    pass
            mb = m * 3 * 8 / 1e6
            results[qos][f'{mb:.2f} MB'] = f'{got}/3'
            print(f'{qos:12s} {mb:6.2f} MB: {got}/3 arrived')
        proc.stop()
        ros.node.destroy_subscription(sub)
        ros.spin_until(lambda: pub.get_subscription_count() == 0, 30.0, 'the probe to leave')
        ros.node.destroy_publisher(pub)
    kit.record('qos_probe', {'arrived_of_3': results})
    return 0


def burst_at_once(ros, _args) -> int:
    from rclpy.qos import QoSProfile
    from std_msgs.msg import Float64MultiArray
    from std_srvs.srv import Trigger
    n, total = 5, 100_000
    ros.start('trainer', {'num_features': n, 'buffer_size': 20_000, 'train_period': 0.05,
                          'min_samples': 1, 'iterations_per_update': 100, 'tolerance': 0.0,
                          'predictor_node': '', 'diagnostics_period': 0.1,
                          'weights_file': str(ros.tmp_path / 'w.yaml')})
    diags = kit.Diagnostics(ros)
    samples = ros.publisher(Float64MultiArray, 'labeled_samples', QoSProfile(depth=10))
    ros.wait_for_subscribers(samples, 1, 30.0)
    save = kit.TimedClient(ros, Trigger, '/trainer/save')
    rng = np.random.default_rng(0)
    rows = np.column_stack([rng.normal(size=(total, n)), rng.random(total)])
    t0 = time.monotonic()
    for idx in np.array_split(np.arange(total), 4):
        samples.publish(kit.batch_msg(rows[idx]))
    latencies = []
    all_in = None
    while time.monotonic() - t0 < 10.0:  # Trigger calls for 3 s after the last sample is in
        _, seconds = save.call()
        latencies.append(seconds)
        d = diags.of('trainer')
        if all_in is None and d and int(d['samples received']) == total:
            all_in = time.monotonic() - t0
        if all_in is not None and time.monotonic() - t0 > all_in + 3.0:
            break
    d = diags.of('trainer')
    fig = {'samples_received': int(d['samples received']) if d else 0,
           'seconds_to_count_all': None if all_in is None else round(all_in, 2),
           'trigger_latency_max_ms': round(max(latencies) * 1e3, 1),
           'trigger_latency_median_ms': round(float(np.median(latencies)) * 1e3, 1),
           'calls': len(latencies)}
    kit.record('burst_at_once', fig)
    print(fig)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--duration', type=float, default=180.0, help='seconds of soak')
    parser.add_argument('--feature-rate', type=float, default=200.0)
    parser.add_argument('--label-rate', type=float, default=1000.0)
    parser.add_argument('--warmup', type=float, default=10.0,
                        help='seconds before the start RSS is taken')
    parser.add_argument('--best-effort', action='store_true',
                        help="the predictor's default best-effort features subscription "
                             '(losses are reported, not failed)')
    parser.add_argument('--qos-probe', action='store_true')
    parser.add_argument('--burst-at-once', action='store_true')
    args = parser.parse_args()
    lock = claim_domain_id()
    with tempfile.TemporaryDirectory(prefix='nn1-soak-') as tmp:
        ros = RosBench(lock.domain_id, Path(tmp))
        try:
            if args.qos_probe:
                return qos_probe(ros, args)
            if args.burst_at_once:
                return burst_at_once(ros, args)
            return soak(ros, args)
        finally:
            ros.close()
            lock.release()


if __name__ == '__main__':
    sys.exit(main())
