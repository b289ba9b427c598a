"""Goal 5: the trainer's gradient-descent step against the memory-bandwidth floor, in one process.

For each buffer of M x N samples (a real ``training.SampleBuffer``):

Floor and step are timed side by side in each of several rounds; the figures are medians over the
rounds (of the per-round ratio, for step / floor).

* floor: the time of the step's two matrix-vector products alone, ``X @ w`` and ``delta @ X``
  (numpy ``out=`` into preallocated arrays: nothing else a step could avoid).
* step: the marginal time of one step inside ``training.train_update``, the code the trainer node
  runs: ``(t(1 + K steps) - t(1 step)) / K`` with ``tolerance = 0`` so that every step runs; the
  per-update work (statistics, loss before and after) cancels out.
* update: the time of a whole update of ``1 + K`` steps, for reference.
* loop: one step written as a per-sample Python loop (the textbook form: a dot product, the
  sigmoid and the gradient accumulated sample by sample), the baseline of "vectorized".
* ceiling: loop / ``X @ w`` alone, one read of the buffer at the speed of a BLAS product (of a
  buffer beyond the last-level cache, from memory: each repetition starts with rows the one
  before evicted): about the most "loop / step" that a step on these threads could reach, since
  a step reads all of X at least once; only the part of a large X still in the cache from the
  step before, which walked the blocks the other way (``training._Kernel.mse_step``), comes
  faster.
* allocation: tracemalloc's peak above the starting point during a whole update with a warm
  ``Workspace``, against the size of one O(M) float64 vector (``8 M`` bytes): an update that
  allocates nothing of size M peaks far below it. The peak of a 1-step and a (1 + K)-step update
  are both recorded: equal peaks mean no allocation builds up per step.

    python bench/training_bench.py [--quick] [--json FILE]

numpy's BLAS threads are set by the environment before numpy loads (OPENBLAS_NUM_THREADS=1 ...):
run_all.py runs this script once as the trainer is shipped and once with one BLAS thread.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
import tracemalloc
from pathlib import Path
from typing import Callable, Dict, List, Sequence

import numpy as np

from nn_one_node.learning.buffer import SampleBuffer
from nn_one_node.learning.standardizer import Workspace
from nn_one_node.learning.descent import train_update

FULL_SIZES = (1000, 2000, 5000, 10000, 20000, 50000, 100000)
QUICK_SIZES = (1000, 4000)
NUM_FEATURES = 64
LEARNING_RATE = 2.0


def _median_time(fn: Callable[[], object], min_repeats: int, budget_s: float) -> float:
    fn()  # warm
    times: List[float] = []
    deadline = time.perf_counter() + budget_s
    while len(times) < min_repeats or time.perf_counter() < deadline:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) >= 1000:
            break
    return float(np.median(times))


def per_sample_step(X: np.ndarray, y: np.ndarray, w: np.ndarray, b: float,
                    lr: float) -> tuple:
    """One gradient step of the course's sigmoid + MSE model, sample by sample."""
    m = X.shape[0]
    grad_w = np.zeros_like(w)
    grad_b = 0.0
    for i in range(m):
        x_i = X[i]
        z = float(np.dot(x_i, w)) + b
        y_hat = 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))
        d = (y_hat - y[i]) * y_hat * (1.0 - y_hat)
        grad_w += d * x_i
        grad_b += d
    return w - lr * grad_w / m, b - lr * grad_b / m


def bench_size(m: int, n: int, steps: int, rounds: int, budget_s: float, loop_budget_s: float,
               seed: int = 0) -> Dict:
    rng = np.random.default_rng(seed)
    w_true = np.linspace(-1.0, 1.0, n)
    buffer = SampleBuffer(m, n)
    X_new = rng.normal(0.0, 1.0, size=(m, n))
    buffer.add(X_new, (X_new @ w_true > 0.0).astype(np.float64))
    del X_new
    X, y = buffer.arrays()
    w0 = rng.normal(0.0, 0.01, size=n)
    ws = Workspace(m, n)

    z, grad, delta = np.empty(m), np.empty(n), rng.normal(size=m)

    def update(k: int):
        return train_update(X, y, w0, 0.0, learning_rate=LEARNING_RATE, iterations=k,
                            tolerance=0.0, workspace=ws)

    check = update(1 + steps)
    assert check.iterations == 1 + steps, check.reason
    # Interleaved rounds: the floor and the step are timed side by side in every round, and the
    # figure is the median of the per-round ratios, so a load that comes and goes cancels out.
    per_round = []
    for _ in range(rounds):
        t_xw = _median_time(lambda: np.dot(X, w0, out=z), 3, budget_s / rounds / 8)
        t_dx = _median_time(lambda: np.dot(delta, X, out=grad), 3, budget_s / rounds / 8)
        t_one = _median_time(lambda: update(1), 3, budget_s / rounds / 4)
        t_many = _median_time(lambda: update(1 + steps), 3, budget_s / rounds / 2)
        step_r = max(t_many - t_one, 0.0) / steps
        per_round.append({'floor_s': t_xw + t_dx, 'xw_s': t_xw, 'delta_x_s': t_dx,
                          'update_1_s': t_one, 'update_many_s': t_many, 'step_s': step_r,
                          'ratio': step_r / (t_xw + t_dx)})

    def med(key: str) -> float:
        return float(np.median([r[key] for r in per_round]))
    step, floor = med('step_s'), med('floor_s')

    loop_times = []
    deadline = time.perf_counter() + loop_budget_s
    while not loop_times or (len(loop_times) < 3 and time.perf_counter() < deadline):
        t0 = time.perf_counter()
        per_sample_step(X, y, w0, 0.0, LEARNING_RATE)
        loop_times.append(time.perf_counter() - t0)
    t_loop = float(np.median(loop_times))

    peaks = {}
    for k in (1, 1 + steps):
        update(k)  # workspace warm, lazy imports done
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            update(k)
            peaks[k] = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()

    return {
        'samples': m, 'features': n, 'buffer_bytes': int(X.nbytes), 'rounds': rounds,
        'floor_s': floor, 'xw_s': med('xw_s'), 'delta_x_s': med('delta_x_s'),
        'step_s': step, 'step_over_floor': med('ratio'),
        'step_over_floor_by_round': [r['ratio'] for r in per_round],
        'update_1_step_s': med('update_1_s'), f'update_{1 + steps}_steps_s': med('update_many_s'),
        'per_sample_loop_step_s': t_loop, 'loop_over_step': t_loop / step if step > 0 else None,
        'loop_over_read_once': t_loop / med('xw_s'),
        'alloc_peak_bytes_1_step': int(peaks[1]),
        f'alloc_peak_bytes_{1 + steps}_steps': int(peaks[1 + steps]),
        'one_vector_bytes': 8 * m,
    }


def run(sizes: Sequence[int] = FULL_SIZES, n: int = NUM_FEATURES, quick: bool = False) -> Dict:
    steps = 4 if quick else 20
    rounds = 2 if quick else 7
    budget = 0.2 if quick else 2.0
    loop_budget = 0.2 if quick else 1.5
    rows = [bench_size(m, n, steps, rounds, budget, loop_budget) for m in sizes]
    return {'steps_per_update_measured': steps, 'learning_rate': LEARNING_RATE,
            'blas_threads_env': {k: v for k, v in os.environ.items()
                                 if k.endswith('_NUM_THREADS')},
            'sizes': rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true', help='two small buffers, short timings')
    parser.add_argument('--json', type=Path, help='also write the figures to this file')
    parser.add_argument('--sizes', help='comma-separated buffer sizes M (samples of 64 features)')
    args = parser.parse_args()
    sizes = ([int(v) for v in args.sizes.split(',')] if args.sizes
             else QUICK_SIZES if args.quick else FULL_SIZES)
    result = run(sizes, quick=args.quick)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + '\n')
    for row in result['sizes']:
        print(f"{row['samples']:>7} x {row['features']}  {row['buffer_bytes'] / 1e6:6.2f} MB  "
              f"floor {row['floor_s'] * 1e6:9.1f} us  step {row['step_s'] * 1e6:9.1f} us  "
              f"x{row['step_over_floor']:.2f}  loop x{row['loop_over_step']:.0f} "
              f"(ceiling x{row['loop_over_read_once']:.0f})  "
              f"alloc peak {row['alloc_peak_bytes_1_step']} B")


if __name__ == '__main__':
    main()
