"""What the managed mode costs per message: the predictor as shipped vs `predictor --managed`
(activated), side by side, with run_all's source, sink and interleaved turns.

    source scripts/setup_env.sh && python bench/lifecycle_cost.py            # about a minute
    source scripts/setup_env.sh && python bench/lifecycle_cost.py --rounds 1 --rate 500

Both nodes take the same messages in shuffled blocks (endpoints.Source.run_interleaved), so a
drift of the machine falls on both alike; each round gives the ratio managed / plain of CPU per
message and of the p50 latency, and the median over the rounds is printed. The managed node pays
one wrapper call and one attribute test per message (managed.SteppedNode.serving); the plain one
registers the very callback it always had.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import rclpy
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor

from harness import Bench, Target, executable, wait_ready
from nn_one_node.ros.isolation import claim_domain_id, keep_this_process_on_loopback
from run_all import FULL, Session


def predictor(bench: Bench, n: int, managed: bool, tag: str = '') -> Target:
    label = f'predictor-{"managed" if managed else "plain"}{tag}-{n}'
    ns = f'/{label.replace("-", "_")}'
    target = Target(label, 'predictor', 'auto', n, ns, f'{ns}/features', f'{ns}/prediction',
                    'sigmoid')
    argv0 = [executable('predictor')] + (['--managed'] if managed else [])
    target.proc = bench.start_node(label, argv0, 'predictor', ns, {
        'num_features': n, 'weights': [1.0] + [0.0] * (n - 1), 'bias': 0.0})
    return target


def activate(domain_id: int, node: str, timeout: float = 30.0) -> None:
    """configure, then activate ``node`` through its ~/change_state service."""
    context = Context()
    rclpy.init(context=context, domain_id=domain_id)
    client_node = rclpy.create_node('lifecycle_cost', context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(client_node)
    try:
        client = client_node.create_client(ChangeState, f'{node}/change_state')
        if not client.wait_for_service(timeout_sec=timeout):
            raise RuntimeError(f'no {node}/change_state within {timeout} s')
        for transition in (Transition.TRANSITION_CONFIGURE, Transition.TRANSITION_ACTIVATE):
            future = client.call_async(ChangeState.Request(
                transition=Transition(id=transition)))
            executor.spin_until_future_complete(future, timeout_sec=timeout)
            if not future.done() or not future.result().success:
                raise RuntimeError(f'{node}: transition {transition} failed')
    finally:
        executor.remove_node(client_node)
        executor.shutdown()
        client_node.destroy_node()
        rclpy.try_shutdown(context=context)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--n', type=int, default=64)
    ap.add_argument('--rate', type=float, default=1000.0)
    ap.add_argument('--seconds', type=float, default=3.0, help='per node and round')
    ap.add_argument('--rounds', type=int, default=5)
    ap.add_argument('--aa', action='store_true',
                    help='an A/A run: two plain predictors, the noise floor of the ratio')
    ap.add_argument('--out', type=Path, default=Path('bench/results/logs/lifecycle_cost'))
    args = ap.parse_args(argv)
    keep_this_process_on_loopback()
    with claim_domain_id() as lock, Bench(lock.domain_id, args.out) as bench:
        plain = predictor(bench, args.n, False)
        managed = predictor(bench, args.n, not args.aa, '2' if args.aa else '')
        session = Session(bench, {**FULL, 'trainer_variants': {}}, log=lambda *a: None)
        session.trainers = {}
        session.source = bench.worker('source', {'inputs': [plain.in_topic, managed.in_topic],
                                                 'samples': []})
        session.sink = bench.worker('sink', {'outputs': {t.out_topic: t.decode
                                                         for t in (plain, managed)}})
        if not args.aa:
            managed.proc.wait_for_output('unconfigured: parameters declared')
            activate(lock.domain_id, f'{managed.namespace}/predictor')
        for t in (plain, managed):
            wait_ready(t)
        count = int(args.rate * args.seconds)
        cpu, p50 = [], []
        for rnd in range(args.rounds):
            a, b = session.measure_interleaved('lifecycle', rnd, [plain, managed], args.rate,
                                               count, block=100)
            cpu.append(b['cpu_per_msg_us'] / a['cpu_per_msg_us'])
            p50.append(b['latency_us']['p50'] / a['latency_us']['p50'])
            print(f'round {rnd}: cpu/msg plain {a["cpu_per_msg_us"]:.1f} us, managed '
                  f'{b["cpu_per_msg_us"]:.1f} us ({cpu[-1]:.3f}x); p50 plain '
                  f'{a["latency_us"]["p50"]:.0f} us, managed {b["latency_us"]["p50"]:.0f} us; '
                  f'delivered {a["delivered"]:.3f} / {b["delivered"]:.3f}', flush=True)
        what = 'plain2 / plain (A/A)' if args.aa else 'managed / plain'
        print(f'N={args.n} at {args.rate:g} Hz, {args.rounds} rounds ({time.strftime("%F %T")}):'
              f' {what} CPU per message, median {statistics.median(cpu):.3f}x '
              f'(rounds {min(cpu):.3f} .. {max(cpu):.3f}); p50 latency median '
              f'{statistics.median(p50):.3f}x')
    return 0


if __name__ == '__main__':
    sys.exit(main())
