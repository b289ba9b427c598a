"""Shared pieces of the reliability tests (issue 6) and of bench/soak.py.

* An oracle for std_msgs/Float64MultiArray layouts, written from the documented contract
  (doc/nodes/) and not from nn_one_node.ros.codecs, so that a fuzz test compares the nodes
  against an independent reading of the rules: for a message it gives the number of rows, or
  every kind of refusal the message deserves (a node must report one of them).
* Hostile message builders: NaN, +-inf, denormals, huge magnitudes, contradictory layouts.
* Figures: ``record(section, figures)`` merges a section into artifacts/reliability.json, which
  ``python -m bench.reliability_report`` renders into doc/reliability.md.
* Process memory (VmRSS) and a few waits on diagnostics shared by the process tests.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

import numpy as np
from std_msgs.msg import Float64MultiArray, MultiArrayDimension

REPO = Path(__file__).resolve().parents[2]
FIGURES = Path(os.environ.get('NN1_RELIABILITY_JSON', REPO / 'artifacts' / 'reliability.json'))

UINT32_MAX = 2**32 - 1
MAX_DOUBLE = float(np.finfo(np.float64).max)
MIN_DENORMAL = 5e-324
# Values every generator mixes in: the special ones and the edges of float64.
SPECIAL_VALUES = (math.nan, math.inf, -math.inf, -0.0, 0.0, MIN_DENORMAL, -MIN_DENORMAL,
                  2.2250738585072014e-308, 1e-300, 1e300, -1e300, MAX_DOUBLE, -MAX_DOUBLE)


# ------------------------------------------------------------------------------------ oracle
class Expect:
    """What a node must do with one message: ``rows`` rows to use, or refuse it with one of
    ``kinds``. ``rows`` is None when the message as a whole must be refused."""

    def __init__(self, rows: Optional[np.ndarray], kinds: Set[str]) -> None:
        self.rows = rows
        self.kinds = kinds

    @property
    def refused(self) -> bool:
        return self.rows is None


def layout_verdict(msg: Float64MultiArray, cols: int) -> Expect:
    """The documented layout contract for a message of rows of ``cols`` values.

    Accepted: no dim and exactly ``cols`` values; one dim of size ``cols`` and ``cols`` values;
    two dims ``[{M, M*cols}, {cols, cols}]`` with M >= 1 and M*cols values, whose labels do not
    say features first (dim 0 'features' or 'features+label', or dim 1 'samples'); always after
    skipping ``layout.data_offset`` values. Anything else is refused; ``kinds`` lists every
    applicable category ('layout', 'length', 'empty'), since a node names only the first it
    finds.
    """
    data = np.asarray(msg.data, dtype=np.float64).reshape(-1)
    dims = list(msg.layout.dim)
    offset = int(msg.layout.data_offset)
    if offset > data.shape[0]:
        return Expect(None, {'layout'})
    data = data[offset:]
    n = data.shape[0]
    if not dims:
        return (Expect(data.reshape(1, cols), set()) if n == cols else Expect(None, {'length'}))
    if len(dims) == 1:
        ok = dims[0].size == cols and n == cols
        return Expect(data.reshape(1, cols), set()) if ok else Expect(None, {'layout', 'length'})
    if len(dims) > 2:
        return Expect(None, {'layout'})
    rows_dim, cols_dim = dims
    m = int(rows_dim.size)
    kinds = set()
    if cols_dim.size != cols or cols_dim.stride != cols or rows_dim.stride != m * cols:
        kinds.add('layout')
    # labels may be anything, except ones that put the features first
    if rows_dim.label in ('features', 'features+label') or cols_dim.label == 'samples':
        kinds.add('layout')
    if m == 0:
        kinds.add('empty')
    if n != m * cols:
        kinds.add('length')
    if kinds:
        return Expect(None, kinds)
    return Expect(data.reshape(m, cols), set())


# ---------------------------------------------------------------------------------- messages
def msg_of(values: Sequence[float], dims: Sequence[Tuple[int, int]] = (),
           offset: int = 0) -> Float64MultiArray:
    """A message with ``values`` and the layout ``dims`` [(size, stride), ...] as given."""
    msg = Float64MultiArray()
    msg.layout.dim = [MultiArrayDimension(label=f'd{i}', size=int(s), stride=int(t))
                      for i, (s, t) in enumerate(dims)]
    msg.layout.data_offset = int(offset)
    arr = np.ascontiguousarray(values, dtype=np.float64).reshape(-1)
    msg.data = arr.tolist() if arr.size < 64 else _as_array(arr)
    return msg


def _as_array(arr: np.ndarray):
    from nn_one_node.ros.codecs import to_float64_array
    return to_float64_array(arr)


def batch_msg(X: np.ndarray) -> Float64MultiArray:
    """A dense, well-formed 2-D batch of the rows of X (M may be 0)."""
    X = np.asarray(X, dtype=np.float64)
    m, cols = X.shape
    return msg_of(X.reshape(-1), [(m, m * cols), (cols, cols)])


def describe(msg: Float64MultiArray, limit: int = 8) -> str:
    """A short, printable summary of a message for failure reports."""
    data = np.asarray(msg.data, dtype=np.float64)
    dims = [(d.size, d.stride) for d in msg.layout.dim]
    head = ', '.join(repr(float(v)) for v in data[:limit])
    more = f', ... ({data.size} values)' if data.size > limit else ''
    return f'data=[{head}{more}] dims={dims} offset={msg.layout.data_offset}'


# ------------------------------------------------------------------------------------ figures
def record(section: str, figures: Dict[str, Any], path: Path = FIGURES) -> None:
    """Merge ``figures`` as ``section`` into the reliability JSON (atomic, locked)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(str(path) + '.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            data = json.loads(path.read_text()) if path.exists() else {}
        except (OSError, ValueError):
            data = {}
        figures = dict(figures)
        figures['recorded'] = time.strftime('%Y-%m-%d %H:%M:%S')
        data[section] = figures
        tmp = path.with_suffix('.tmp')
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=float) + '\n')
        os.replace(tmp, path)


# ---------------------------------------------------------------------------------- processes
def rss_kib(pid: int) -> int:
    """VmRSS of a process, in KiB, from /proc/<pid>/status."""
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    raise AssertionError(f'no VmRSS for process {pid}')


class Diagnostics:
    """The newest key/values per status name from /diagnostics, kept as they arrive."""

    def __init__(self, ros) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        self.ros = ros
        self.latest: Dict[str, Dict[str, str]] = {}
        self.count = 0
        self.seen: Dict[str, int] = {}  # statuses received, by name
        ros.node.create_subscription(DiagnosticArray, '/diagnostics', self._on, 100)

    def _on(self, msg) -> None:
        self.count += 1
        for status in msg.status:
            self.latest[status.name] = {kv.key: kv.value for kv in status.values}
            self.seen[status.name] = self.seen.get(status.name, 0) + 1

    def _seen(self, name_part: str) -> int:
        return sum(n for name, n in self.seen.items() if name_part in name)

    def of(self, name_part: str) -> Optional[Dict[str, str]]:
        for name, values in self.latest.items():
            if name_part in name:
                return values
        return None

    def wait(self, name_part: str, check, timeout: float, what: str) -> Dict[str, str]:
        """The first status of ``name_part`` published from now on for which ``check`` holds.

        "From now on" counts statuses of that name: another node's status arriving first must not
        let an old one of ``name_part`` through."""
        start = self._seen(name_part)

        def ok():
            if self._seen(name_part) <= start:
                return None
            d = self.of(name_part)
            return d if d is not None and check(d) else None
        return self.ros.spin_until(ok, timeout, what)


def refused_by_kind(d: Dict[str, str]) -> Dict[str, int]:
    return {k[len('refused: '):]: int(v) for k, v in d.items() if k.startswith('refused: ')}


def kind_delta(before: Dict[str, int], after: Dict[str, int]) -> Dict[str, int]:
    return {k: after.get(k, 0) - before.get(k, 0) for k in set(before) | set(after)
            if after.get(k, 0) != before.get(k, 0)}


def all_finite(values: Any) -> bool:
    return bool(np.all(np.isfinite(np.asarray(values, dtype=np.float64))))


def tmp_files(directory: Path, base: str) -> List[str]:
    """The atomic writer's temporaries of ``base`` in ``directory`` ('.base.*.tmp')."""
    return sorted(p for p in os.listdir(directory) if p.startswith(f'.{base}.')
                  and p.endswith('.tmp'))


def get_parameters(ros, node: str, names: Sequence[str], timeout: float) -> Dict[str, Any]:
    """``ros.get_parameters``, asked again until a reply comes: after a SIGKILL the dead node's
    server stays in the DDS graph until its lease expires (about 20 s), so a request sent before
    the restarted node's server has been discovered reaches only the dead one and is lost."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return ros.get_parameters(node, names, timeout=min(2.0, timeout))
        except AssertionError:
            if time.monotonic() > deadline:
                raise


# --------------------------------------------------------------------------------------- soak
SOAK_N = 5
# The predictor's features subscription is best effort, depth 5 (sensor data): a message can be
# dropped whenever the node is late by 5 messages, which on a shared 2-core machine with the
# trainer retraining next to it happens now and then. "No prediction lost" is a property of the
# node only with a reliable subscription, which the documented QoS override gives.
RELIABLE_FEATURES_QOS = {'/features': {'subscription': {'reliability': 'reliable',
                                                         'depth': 100}}}


def run_soak(ros, duration: float, feature_rate: float = 200.0, label_rate: float = 1000.0,
             bad_every: int = 100, best_effort: bool = False, warmup: float = 3.0,
             log=None, max_burst: int = 20,
             trainer_params: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Features at ``feature_rate`` and single labeled rows at ``label_rate`` for ``duration``
    seconds, one message in ``bad_every`` of each deliberately bad; returns the figures.

    Paced by the clock: each spin publishes what is due, at most ``max_burst`` messages per
    stream. Should this process stall (a shared machine), the slots it missed beyond that are
    skipped and counted ('skipped'), not sent in one burst: a burst of hundreds overruns any
    KEEP_LAST history, and is no rate the predictor is meant to sustain. RSS of both nodes is
    sampled every second; 'start' is taken after ``warmup``. Nothing here raises on a lost
    message: the figures say what was lost, the caller judges. ``trainer_params`` are added to
    the trainer's (e.g. its niceness).
    """
    from rclpy.qos import QoSProfile
    from std_msgs.msg import Float64MultiArray as F64

    n = SOAK_N
    predictor_params = {'num_features': n, 'diagnostics_period': 0.5}
    if not best_effort:
        predictor_params['qos_overrides'] = RELIABLE_FEATURES_QOS
    predictor = ros.start('predictor', predictor_params)
    trainer = ros.start('trainer', {'num_features': n, 'buffer_size': 10000, 'min_samples': 50,
                                    'train_period': 0.5, 'iterations_per_update': 50,
                                    'diagnostics_period': 0.5, **(trainer_params or {})})
    diags = Diagnostics(ros)
    features = ros.publisher(F64, 'features', QoSProfile(depth=100))
    samples = ros.publisher(F64, 'labeled_samples', QoSProfile(depth=1000))
    got = {'predictions': 0, 'non_finite': 0, 'out_of_range': 0}

    def on_prediction(msg):
        y = np.frombuffer(msg.data, dtype=np.float64)
        got['predictions'] += y.shape[0]
        got['non_finite'] += int(np.count_nonzero(~np.isfinite(y)))
        got['out_of_range'] += int(np.count_nonzero((y < 0.0) | (y > 1.0)))
    ros.node.create_subscription(F64, 'prediction', on_prediction, QoSProfile(depth=1000))
    probe = msg_of([0.0] * n)
    out: List[Any] = []
    ros.node.create_subscription(F64, 'prediction', out.append, QoSProfile(depth=10))
    ros.handshake(features, probe, out, 30.0)
    ros.wait_for_subscribers(samples, 1, 30.0)
    ros.spin_for(0.2)
    base_p = diags.wait('predictor', lambda d: True, 30.0, 'a predictor status')
    base_predicted = got['predictions']
    rng = np.random.default_rng(0)
    w_true = np.array([1.0, -2.0, 0.5, 0.25, -0.75])
    f_rows = rng.normal(size=(4096, n))
    l_rows = rng.normal(size=(4096, n))
    l_labels = 1.0 / (1.0 + np.exp(-(l_rows @ w_true)))
    sent = {'features': 0, 'features_bad': 0, 'labeled': 0, 'labeled_bad': 0}
    slots = {'features': 0, 'labeled': 0}  # scheduled so far: sent, or skipped in a stall
    skipped = {'features': 0, 'labeled': 0}

    def due(stream, rate, elapsed):
        n = int(elapsed * rate) - slots[stream]
        if n > max_burst:
            skipped[stream] += n - max_burst
            slots[stream] += n - max_burst
            n = max_burst
        slots[stream] += n
        return n
    rss: Dict[str, List[Tuple[float, int]]] = {'predictor': [], 'trainer': []}
    deployed: List[Tuple[float, int]] = []
    t0 = time.monotonic()
    next_sample = t0
    while True:
        now = time.monotonic()
        elapsed = now - t0
        if elapsed >= duration:
            break
        for _ in range(due('features', feature_rate, elapsed)):
            k = sent['features'] + sent['features_bad']
            if bad_every and k % bad_every == bad_every - 1:
                features.publish(msg_of([math.nan] * n))
                sent['features_bad'] += 1
            else:
                features.publish(msg_of(f_rows[k % 4096]))
                sent['features'] += 1
        for _ in range(due('labeled', label_rate, elapsed)):
            k = sent['labeled'] + sent['labeled_bad']
            if bad_every and k % bad_every == bad_every - 1:
                samples.publish(msg_of(np.r_[l_rows[k % 4096], 2.0]))  # label out of range
                sent['labeled_bad'] += 1
            else:
                samples.publish(msg_of(np.r_[l_rows[k % 4096], l_labels[k % 4096]]))
                sent['labeled'] += 1
        if now >= next_sample:
            next_sample += 1.0
            for name, proc in (('predictor', predictor), ('trainer', trainer)):
                assert proc.alive(), f'{name} died:\n{proc.tail()}'
                rss[name].append((round(elapsed, 1), rss_kib(proc.proc.pid)))
            d = diags.of('trainer')
            deployed.append((round(elapsed, 1), int(d['updates deployed']) if d else 0))
            if log:
                log(f'{elapsed:6.1f} s  features {sent["features"]:7d}  labeled '
                    f'{sent["labeled"]:8d}  predictions {got["predictions"] - base_predicted:7d}'
                    f'  deployed {deployed[-1][1]:4d}  RSS predictor {rss["predictor"][-1][1]}'
                    f' KiB, trainer {rss["trainer"][-1][1]} KiB')
        ros.executor.spin_once(timeout_sec=0.001)
    wall = time.monotonic() - t0
    for name, proc in (('predictor', predictor), ('trainer', trainer)):
        rss[name].append((round(wall, 1), rss_kib(proc.proc.pid)))

    # the counters, once everything sent has been handled
    total_f = sent['features'] + sent['features_bad']
    received0 = int(base_p['messages received'])
    expected_pred = base_predicted + sent['features']
    total_l = sent['labeled'] + sent['labeled_bad']

    def settle(predicate, seconds):  # spin until it holds, or give up after ``seconds``
        end = time.monotonic() + seconds
        while not predicate() and time.monotonic() < end:
            ros.executor.spin_once(timeout_sec=0.05)
    settle(lambda: got['predictions'] >= expected_pred, 5.0 if best_effort else 30.0)
    start_count = diags.count
    settle(lambda: diags.count > start_count + 1 and (
        int(diags.of('predictor')['messages received']) >= received0 + total_f)
        and int(diags.of('trainer')['samples received']) >= total_l, 30.0)
    dp, dt = diags.of('predictor'), diags.of('trainer')

    def start_end(series):
        after = [v for t, v in series if t >= warmup] or [series[-1][1]]
        return {'start_kib': after[0], 'end_kib': series[-1][1], 'max_kib': max(after),
                'first_kib': series[0][1]}
    return {
        'duration_s': round(wall, 1), 'feature_rate_hz': feature_rate,
        'label_rate_hz': label_rate, 'features_qos': 'best effort, the default' if best_effort
        else 'reliable by qos_overrides', 'sent': sent, 'skipped_in_stalls': skipped,
        'predictions_received': got['predictions'] - base_predicted,
        'predictions_lost': expected_pred - got['predictions'],
        'non_finite_predictions': got['non_finite'], 'predictions_out_of_0_1':
        got['out_of_range'],
        # counted by the predictor during the soak (its handshake probes left out)
        'predictor': {k: int(dp[k]) - int(base_p[k]) for k in (
            'messages received', 'messages predicted', 'messages refused')},
        'trainer': {k: int(dt[k]) for k in ('samples received', 'samples refused',
                                            'samples held', 'updates', 'updates deployed',
                                            'updates refused')},
        'deployed_series': deployed,
        'rss': {name: start_end(series) for name, series in rss.items()},
        'rss_series': rss,
    }


class TimedClient:
    """One service client kept for many calls, so that a call's time is the node's answer and not
    the discovery of a new client: ``call`` returns (response, seconds)."""

    def __init__(self, ros, srv_type, name: str, timeout: float = 30.0) -> None:
        self.ros = ros
        self.srv_type = srv_type
        self.name = name
        self.timeout = timeout
        self.client = ros.node.create_client(srv_type, name)
        ros.spin_until(lambda: self.client.wait_for_service(timeout_sec=0.0), timeout,
                       f'service {name}')
        self.call()  # the first answer also proves the response path matched

    def call(self, request=None):
        t0 = time.monotonic()
        future = self.client.call_async(request or self.srv_type.Request())
        self.ros.spin_until(future.done, self.timeout, f'reply from {self.name}')
        return future.result(), time.monotonic() - t0
