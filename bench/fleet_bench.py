"""The fleet's scale figures of issue 25, as ratios measured in one run.

Every robot is an installed ``assembler`` and ``predictor`` under its namespace (``/r1`` ...),
with its typed inputs (``odom``, ``imu``) and its label (``bump``, std_msgs/Bool) published by
one process per ``ROBOTS_PER_PUBLISHER`` robots (bench/fleet_workers.py ``robots``). The labeled
samples of all robots together come at ``TOTAL_LABEL_RATE`` a second whatever their number:
each robot's label rate is that divided by the robots. One trainer learns from them all.

Each configuration is a run of its own (its own ROS_DOMAIN_ID, every process started afresh):

* ``plain 1``: the trainer as one robot runs it (no ``fleet``; in the robot's namespace): the
  baseline;
* ``fleet N`` for N in 1, 5, 10, 20: the trainer with ``fleet: ['/r*']`` at the root;
* ``fleet 20`` with discovery through a Fast DDS Discovery Server (``fast-discovery-server`` on
  loopback, every process its client, the trainer and the monitor super clients), and again
  with default discovery, in the order default, server, server, default.

In each, the robots start first; once every robot's nodes are in the graph the trainer starts.
Measured from outside (bench/fleet_workers.py ``monitor``, /parameter_events and /diagnostics):

* **discovery**: from the trainer's start until every robot's predictor took a model of the
  trainer (its ``weights`` parameter set, by the event's stamp);
* **CPU per labeled sample**: the trainer's CPU over the window (bench/procstat) divided by the
  samples it received in it (its ``samples received``, read at two of its statuses); in every
  run over the same ``--window`` from the warm-up's end (the longer window at the largest scale
  is for the memory figure: each update trains on the samples held, so a later stretch costs
  more a sample whatever the number of robots; its own figure is kept as ``long_window``);
* **serving delay**: for each model the trainer made in the window (its own ``weights`` set)
  and each robot, the seconds until that robot's predictor took it or a later one; a model a
  robot never took counts as late;
* **trainer memory**: its RSS every ``RSS_PERIOD`` seconds through the window;
* **machine load**: the share of both cores busy in the window (/proc/stat);
* **late join** (fleet and discovery runs): one more robot's predictor started once every robot
  serves (after the window where there is one), the seconds until it serves a model of the
  trainer: from its node up (its first log line, or its appearing in the graph if earlier),
  from its appearing in the graph (as the monitor sees it: its name or its parameter service),
  and from the trainer's own graph showing it (its "robot ... joined"); the rest is DDS
  discovery.

Goals (issue 25): ``fleet 20`` / ``plain 1`` CPU per sample <= 1.5; p99 serving delay <= 1 s at
20 robots; trainer RSS flat (grows by at most ``FLAT_RSS`` over the long window); discovery
through the server <= 1.5 x default discovery (medians); a robot joining 20 serves the model
within 2 s of its predictor up (medians over the discovery runs, each kind).

    python bench/fleet_bench.py            # about 15 min; writes bench/results/fleet.{json,md}
    python bench/fleet_bench.py --quick    # about 1 min: plain 1, fleet 2, both discoveries
                                           # at 2 robots (the smoke test; no figure judged)
    python bench/fleet_bench.py --only 'fleet 10' [--profile]   # one run (and where its CPU goes)
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / 'bench'))
sys.path.insert(0, str(REPO / 'test' / 'support'))  # discovery_server: the tests' own

from harness import NodeProc, Worker, executable  # noqa: E402
from procstat import cpu_delta, cpu_sample, rss_bytes  # noqa: E402
from provenance import run_meta  # noqa: E402

from nn_one_node.ros.isolation import claim_domain_id, loopback_env  # noqa: E402

TOTAL_LABEL_RATE = 40.0  # labeled samples a second, all robots together
MIN_INPUT_RATE = 10.0  # each robot's inputs and rows, at least (Hz)
ROBOTS_PER_PUBLISHER = 5
FEATURES = ['odom nav_msgs/msg/Odometry twist.twist.linear.x',
            'odom nav_msgs/msg/Odometry twist.twist.angular.z',
            'imu sensor_msgs/msg/Imu linear_acceleration.x']
LABEL = 'bump std_msgs/msg/Bool data'
SCALES = (1, 5, 10, 20)
RSS_PERIOD = 5.0
GRACE = 3.0  # seconds after the window for the serving of its last models to be seen
START_TIMEOUT = 240.0  # 40 Python processes starting on two cores
# Past 32 processes on one host LOCALHOST discovery misses some (see the profile): every process
# of every run gets it, whichever discovery it uses
DDS_PROFILE = REPO / 'config' / 'fastdds_local_fleet.xml'
GOALS = {'cpu_ratio': 1.5, 'p99_serving_s': 1.0, 'rss_growth': 0.02, 'discovery_ratio': 1.5,
         'late_join_server_s': 2.0, 'late_join_default_s': 2.0}
FLAT_RSS = GOALS['rss_growth']


# runs a script (argv[2:]) under cProfile on the CPU time of its main thread, where rclpy's
# executor runs every callback (wall time would count the waits), and writes argv[1]
PROFILED = """import cProfile, runpy, sys, time
out, sys.argv = sys.argv[1], sys.argv[2:]
p = cProfile.Profile(time.thread_time)
try:
    p.runcall(runpy.run_path, sys.argv[0], run_name='__main__')
except SystemExit:
    pass
finally:
    p.dump_stats(out)
"""


def rates(robots: int, total: float = TOTAL_LABEL_RATE) -> Dict[str, float]:
    """Each robot's label rate (its share of ``total``) and its input and row rate.

    >>> rates(20), rates(1)
    ({'label': 2.0, 'input': 10.0}, {'label': 40.0, 'input': 50.0})
    """
    label = total / robots
    return {'label': label, 'input': max(MIN_INPUT_RATE, 1.25 * label)}


def percentile(values: List[float], q: float) -> float:
    """The ``q`` quantile (nearest rank) of ``values``; inf counts as the largest.

    >>> percentile([0.1, 0.2, 0.3, math.inf], 0.5), percentile([0.1, 0.2], 0.99)
    (0.2, 0.2)
    """
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


def busy_jiffies() -> List[int]:
    """(busy, total) jiffies of all CPUs, from /proc/stat."""
    with open('/proc/stat') as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return [sum(fields) - idle, sum(fields)]


def wait(until: Callable[[], Any], timeout: float, what: str, step: float = 0.2) -> Any:
    """Poll ``until`` (a worker's answer: there is no event to wait on across processes)."""
    deadline = time.monotonic() + timeout
    while True:
        got = until()
        if got:
            return got
        if time.monotonic() > deadline:
            raise RuntimeError(f'timed out after {timeout:g} s waiting for {what}')
        time.sleep(step)


class Run:
    """One configuration's processes, on a domain of its own."""

    def __init__(self, label: str, robots: int, logs: Path, server_env: Dict[str, str],
                 super_env: Dict[str, str], profile: Optional[Path] = None) -> None:
        self.label, self.n = label, robots
        self.profile = profile
        self.logs = logs / label.replace(' ', '_')
        self.logs.mkdir(parents=True, exist_ok=True)
        self.lock = claim_domain_id()
        self.env = {**loopback_env(self.lock.domain_id), 'PYTHONUNBUFFERED': '1', **server_env,
                    'FASTRTPS_DEFAULT_PROFILES_FILE': str(DDS_PROFILE),
                    'FASTDDS_DEFAULT_PROFILES_FILE': str(DDS_PROFILE)}
        self.super_env = {**self.env, **super_env}
        self.robots = [f'/r{i + 1}' for i in range(robots)]
        self.nodes: List[NodeProc] = []
        self.workers: List[Worker] = []

    def node(self, role: str, ns: str, params: Dict[str, Any],
             env: Optional[Dict[str, str]] = None, prefix: List[str] = ()) -> NodeProc:
        import yaml
        label = f'{role}{ns.replace("/", "_")}'
        pfile = self.logs / f'{label}.yaml'
        pfile.write_text(yaml.safe_dump({'/**': {'ros__parameters': params}}))
        argv = [*prefix, executable(role), '--ros-args', '--params-file', str(pfile),
                '-r', f'__ns:={ns}']
        proc = NodeProc(label, argv, env or self.env, self.logs / f'{label}.log')
        self.nodes.append(proc)
        return proc

    def worker(self, label: str, role: str, config: Dict[str, Any],
               env: Optional[Dict[str, str]] = None) -> Worker:
        argv = [sys.executable, str(REPO / 'bench' / 'fleet_workers.py'), role,
                json.dumps(config)]
        w = Worker(label, argv, env or self.env, self.logs / f'{label}.log')
        self.workers.append(w)
        return w

    def start_robots(self) -> Worker:
        r = rates(self.n)
        for k in range(0, self.n, ROBOTS_PER_PUBLISHER):
            group = self.robots[k:k + ROBOTS_PER_PUBLISHER]
            self.worker(f'robots{k // ROBOTS_PER_PUBLISHER}', 'robots', {
                'robots': group, 'input_rate': r['input'], 'label_rate': r['label'], 'seed': k})
        for ns in self.robots:
            self.node('predictor', ns, {'num_features': len(FEATURES)})
            self.node('assembler', ns, {
                'features': FEATURES, 'label': LABEL, 'rate': r['input'], 'max_age': 1.0,
                'max_join_gap': 0.6 / r['input'], 'history': 2.0})
        return self.worker('monitor', 'monitor', {'robots': self.robots,
                                                  'trainer': self.trainer_name},
                           self.super_env)

    @property
    def trainer_name(self) -> str:
        return '/r1/trainer' if self.label.startswith('plain') else '/trainer'

    def start_trainer(self) -> NodeProc:
        params: Dict[str, Any] = {'num_features': len(FEATURES)}
        prefix = [sys.executable, '-c', PROFILED, str(self.profile)] if self.profile else []
        if self.label.startswith('plain'):
            return self.node('trainer', '/r1', params, self.super_env, prefix)
        params['fleet'] = ['/r*']
        return self.node('trainer', '/', params, self.super_env, prefix)

    def close(self) -> None:
        for w in self.workers:
            w.close()
        for p in self.nodes:  # every node asked to stop at once, then each waited for
            if p.alive():
                p.proc.send_signal(2)
        for p in self.nodes:
            p.stop()
        self.lock.release()


def measure(run: Run, window: float, warmup: float, cpu_window: float) -> Dict[str, Any]:
    """One configuration, as the module's docstring says. The CPU per sample is taken over the
    first ``cpu_window`` seconds of the ``window`` in every run: each update trains on the
    samples held, so a later stretch of a longer window would cost more a sample (a fuller
    buffer) whatever the number of robots."""
    out: Dict[str, Any] = {'robots': run.n, 'rates': rates(run.n), 'domain_id':
                           run.lock.domain_id}
    monitor = run.start_robots()
    t = time.monotonic()
    wait(lambda: monitor.call('graph') == {'predictor': run.n, 'assembler': run.n},
         START_TIMEOUT, f'the {run.n} robots in the graph')
    out['robots_up_s'] = round(time.monotonic() - t, 2)
    t0 = time.time()
    trainer = run.start_trainer()
    taken = wait(lambda: (lambda f: f if all(v is not None for v in f.values()) else None)(
        monitor.call('first_taken', since=t0)), START_TIMEOUT,
        'every robot serving a model of the trainer')
    out['discovery_s'] = round(max(taken.values()) - t0, 3)
    out['discovery_each_s'] = sorted(round(v - t0, 3) for v in taken.values())
    if window <= 0:  # a discovery run: and a robot joining late, by the same discovery
        out['late_join'] = late_join(run, monitor)
        return out
    end_warmup = time.monotonic() + warmup
    wait(lambda: time.monotonic() >= end_warmup, warmup + 1.0, 'the warm-up')

    def at_status() -> Dict[str, Any]:  # right after a fresh status of the trainer
        count = monitor.call('trainer_status')['count']
        s = wait(lambda: (lambda a: a if a['count'] > count else None)(
            monitor.call('trainer_status', answer_timeout=10.0)), 10.0, 'a trainer status',
            step=0.02)
        return {'wall': time.time(), 'mono': time.monotonic(), 'cpu': cpu_sample(trainer.pid),
                'machine': busy_jiffies(), 'samples': int(s['values']['samples received'])}
    a = at_status()
    rss = [(0.0, rss_bytes(trainer.pid))]
    mid = None  # at cpu_window
    while time.monotonic() - a['mono'] < window:
        if mid is None and time.monotonic() - a['mono'] >= cpu_window:
            mid = at_status()
        next_at = rss[-1][0] + RSS_PERIOD
        wait(lambda: time.monotonic() - a['mono'] >= min(next_at, window), RSS_PERIOD + 1.0,
             'the next memory sample', step=0.05)
        rss.append((round(time.monotonic() - a['mono'], 1), rss_bytes(trainer.pid)))
    b = at_status()
    mid = mid or b
    after = time.monotonic() + GRACE
    wait(lambda: time.monotonic() >= after, GRACE + 1.0, 'the grace')
    served = monitor.call('deployments', start=a['wall'], end=b['wall'])
    def cpu_seconds(x: Dict[str, Any], y: Dict[str, Any]) -> float:
        cpu = cpu_delta(x['cpu'], y['cpu'])
        return cpu['schedstat_s'] if cpu['schedstat_s'] is not None else cpu['stat_s']
    cpu_s, samples = cpu_seconds(a, mid), mid['samples'] - a['samples']
    elapsed = mid['mono'] - a['mono']
    delays = [math.inf if d is None else d for d in served['delays']]
    busy = [y - x for x, y in zip(a['machine'], mid['machine'])]
    if mid is not b:  # the whole long window too, for what it shows
        whole = b['samples'] - a['samples']
        out['long_window'] = {'window_s': round(b['mono'] - a['mono'], 2), 'samples': whole,
                              'cpu_us_per_sample': round(1e6 * cpu_seconds(a, b) / whole, 1)
                              if whole else None}
    firsts = [r for _, r in rss[:3] if r]
    lasts = [r for _, r in rss[-3:] if r]
    if run.label.startswith('fleet'):
        out['late_join'] = late_join(run, monitor)
    out.update({
        'window_s': round(elapsed, 2), 'samples': samples,
        'samples_per_s': round(samples / elapsed, 2),
        'trainer_cpu_s': round(cpu_s, 4), 'trainer_cpu_share': round(cpu_s / elapsed, 4),
        'cpu_us_per_sample': round(1e6 * cpu_s / samples, 1) if samples else None,
        'machine_busy_share': round(busy[0] / busy[1], 3) if busy[1] else None,
        'models': served['models'], 'foreign_models': served['foreign_models'],
        'serving': {'count': len(delays), 'late': sum(1 for d in delays if math.isinf(d)),
                    'p50_s': round(percentile(delays, 0.5), 3) if delays else None,
                    'p99_s': round(percentile(delays, 0.99), 3) if delays else None,
                    'max_s': round(max(delays), 3) if delays else None},
        'rss_mb': [(t, round(r / 2**20, 2)) for t, r in rss if r],
        'rss_growth': round(statistics.median(lasts) / statistics.median(firsts) - 1.0, 4)
        if firsts and lasts else None,
    })
    return out


def late_join(run: Run, monitor: Worker) -> Dict[str, Optional[float]]:
    """One more robot's predictor started after the window: the seconds until it serves a
    model of the trainer from its node up (``from_up_s``: its log's first stamp, or its being
    in the graph if that came first: its services come before that line), from its
    appearing in the graph as the monitor sees it (``s``), and from the trainer's "robot ...
    joined" (``after_trainer_found_s``, its log's stamp: the trainer's part; the rest is DDS
    discovery)."""
    late = f'/r{run.n + 1}'
    monitor.call('watch', ns=late)
    run.node('predictor', late, {'num_features': len(FEATURES)})
    seen = wait(lambda: monitor.call('in_graph', name=f'{late}/predictor')['in_graph']
                and time.time(), START_TIMEOUT, f'{late} in the graph', step=0.02)
    served = wait(lambda: monitor.call('served', ns=late)['at'], 60.0, f'{late} serving a model')
    log = (run.logs / 'trainer_.log').read_text(errors='replace')
    found = re.search(r'\[(\d+\.\d+)\] \[trainer\]: robot ' + re.escape(late) + ' joined', log)
    up = re.search(r'\[(\d+\.\d+)\]', (run.logs / f'predictor_r{run.n + 1}.log').read_text(
        errors='replace'))  # its first line: the node made, its services offered
    return {'s': round(max(0.0, served - seen), 3),
            'from_up_s': round(served - min(float(up.group(1)), seen), 3) if up else None,
            'after_trainer_found_s': round(served - float(found.group(1)), 3) if found else None}


def one(label: str, robots: int, logs: Path, window: float, warmup: float,
        server: bool = False, profile: Optional[Path] = None,
        cpu_window: Optional[float] = None) -> Dict[str, Any]:
    ds = None
    server_env: Dict[str, str] = {}
    super_env: Dict[str, str] = {}
    if server:
        from discovery_server import DiscoveryServer
        ds = DiscoveryServer(logs / f'{label.replace(" ", "_")}.server.log')
        ds.wait_running()
        server_env = ds.client_env()
        super_env = {'ROS_SUPER_CLIENT': 'TRUE'}
    run = Run(label, robots, logs, server_env, super_env, profile)
    started = time.monotonic()
    try:
        result = measure(run, window, warmup, window if cpu_window is None else cpu_window)
    finally:
        run.close()
        if ds is not None:
            ds.stop()
    result.update(label=label, discovery='server' if server else 'default',
                  run_s=round(time.monotonic() - started, 1))
    shown = ('discovery_s', 'samples_per_s', 'cpu_us_per_sample', 'serving', 'rss_growth',
             'machine_busy_share')
    print(f'{label:18s} {json.dumps({k: result.get(k) for k in shown})}', flush=True)
    return result


def only(label: str, logs: Path, window: float, profile: bool) -> int:
    import pstats
    kind, n = label.split()
    logs.mkdir(parents=True, exist_ok=True)
    path = logs / f'{label.replace(" ", "_")}.prof'
    path.unlink(missing_ok=True)
    one(label, int(n), logs, window, 10.0, profile=path if profile else None)
    if not profile:
        return 0
    wait(lambda: path.exists(), 30.0, 'the profile written')
    pstats.Stats(str(path)).sort_stats('cumulative').print_stats(40)
    pstats.Stats(str(path)).sort_stats('tottime').print_stats(30)
    return 0


def late_median(runs: List[Dict[str, Any]], discovery: str) -> Optional[float]:
    """The median late join (from the predictor up) of the discovery runs of one kind."""
    joins = [r['late_join']['from_up_s'] for r in runs if r['discovery'] == discovery
             and (r.get('late_join') or {}).get('from_up_s') is not None]
    return round(statistics.median(joins), 3) if joins else None


def judge(results: Dict[str, Any]) -> Dict[str, Any]:
    runs = results['runs']
    base = runs['plain 1']['cpu_us_per_sample']
    growth = {}
    for n in results['config']['scales']:
        r = runs[f'fleet {n}']
        growth[n] = {'robots': n, 'cpu_ratio': round(r['cpu_us_per_sample'] / base, 3)
                     if base and r.get('cpu_us_per_sample') else None,
                     'trainer_cpu_share': r.get('trainer_cpu_share'),
                     'machine_busy_share': r.get('machine_busy_share'),
                     'p99_serving_s': r['serving']['p99_s'], 'discovery_s': r['discovery_s'],
                     'late_join_s': (r.get('late_join') or {}).get('from_up_s')}
    top = max(results['config']['scales'])
    default = [r['discovery_s'] for r in results['discovery'] if r['discovery'] == 'default']
    server = [r['discovery_s'] for r in results['discovery'] if r['discovery'] == 'server']
    d_ratio = statistics.median(server) / statistics.median(default) if default and server \
        else None
    last = runs[f'fleet {top}']
    figures = {'cpu_ratio': growth[top]['cpu_ratio'],
               'p99_serving_s': last['serving']['p99_s'],
               'rss_growth': last['rss_growth'],
               'discovery_ratio': round(d_ratio, 3) if d_ratio is not None else None,
               'late_join_server_s': late_median(results['discovery'], 'server'),
               'late_join_default_s': late_median(results['discovery'], 'default')}
    goals = {k: {'figure': v, 'goal': GOALS[k],
                 'met': v is not None and v <= GOALS[k]} for k, v in figures.items()}
    return {'growth': growth, 'goals': goals,
            'discovery_default_s': default, 'discovery_server_s': server}


def late_cell(join: Optional[Dict[str, Any]]) -> str:
    return f'{join.get("from_up_s")} / {join.get("s")}' if join else '-'


def markdown(results: Dict[str, Any]) -> str:
    m, j = results['meta'], results['judged']
    lines = [f'# Fleet benchmark ({m["date"]}, commit {m["commit"]})', '',
             f'`{m["command"]}`: {m["machine"]}, {m["cpus"]} CPUs, Python {m["python"]}; '
             f'{results["config"]["total_label_rate"]:g} labeled samples/s in all; '
             f'{m["duration_s"]:.0f} s.', '',
             '| goal | figure | goal | met |', '|---|---|---|---|']
    names = {'cpu_ratio': 'trainer CPU per sample, fleet 20 / plain 1',
             'p99_serving_s': 'serving delay p99 at 20 robots (s)',
             'rss_growth': 'trainer RSS growth over the long window',
             'discovery_ratio': 'discovery, server / default (medians)',
             'late_join_server_s': 'a robot joining 20, Discovery Server: its predictor up to '
             'serving (s, median)',
             'late_join_default_s': 'the same, default discovery (s, median)'}
    for k, g in j['goals'].items():
        lines.append(f'| {names[k]} | {g["figure"]} | <= {g["goal"]} | '
                     f'{"yes" if g["met"] else "no"} |')
    lines += ['', '| run | robots | samples/s | trainer CPU us/sample | ratio to plain 1 | '
              'trainer CPU share | machine busy | models | serving p50 / p99 / max (s) | late '
              '| discovery (s) | late join: up / in the graph to serving (s) |',
              '|---' * 12 + '|']
    base = results['runs']['plain 1']['cpu_us_per_sample']
    for label, r in results['runs'].items():
        s = r['serving']
        ratio = r['cpu_us_per_sample'] / base if base and r['cpu_us_per_sample'] else math.nan
        lines.append(f'| {label} | {r["robots"]} | {r["samples_per_s"]} | '
                     f'{r["cpu_us_per_sample"]} | {ratio:.2f} | {r["trainer_cpu_share"]:.3f} | '
                     f'{r["machine_busy_share"]} | {r["models"]} | {s["p50_s"]} / {s["p99_s"]} / '
                     f'{s["max_s"]} | {s["late"]} of {s["count"]} | {r["discovery_s"]} | '
                     f'{late_cell(r.get("late_join"))} |')
    for label, r in results['runs'].items():
        if 'long_window' in r:
            w = r['long_window']
            lines += ['', f'{label} over its whole long window ({w["window_s"]} s, the buffer '
                      f'filling): {w["cpu_us_per_sample"]} us a sample.']
    lines += ['', '| discovery run | robots | every robot serving (s) | robots up (s) | a robot '
              'joining: its predictor up to serving (s) | in the graph to serving (s) | after '
              'the trainer found it (s) |', '|---' * 7 + '|']
    for r in results['discovery']:
        j = r.get('late_join') or {}
        lines.append(f'| {r["label"]} | {r["robots"]} | {r["discovery_s"]} | '
                     f'{r["robots_up_s"]} | {j.get("from_up_s")} | {j.get("s")} | '
                     f'{j.get("after_trainer_found_s")} |')
    return '\n'.join(lines) + '\n'


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--quick', action='store_true', help='tiny and short: the smoke test')
    ap.add_argument('--out', type=Path, default=REPO / 'bench' / 'results' / 'fleet',
                    help='prefix of the .json and .md written')
    ap.add_argument('--logs', type=Path, default=REPO / 'artifacts' / 'fleet-bench-logs',
                    help="where every process's log goes")
    ap.add_argument('--window', type=float, default=60.0, help='seconds measured a run')
    ap.add_argument('--long-window', type=float, default=180.0,
                    help='seconds measured at the largest scale (the memory figure)')
    ap.add_argument('--only', metavar='RUN', help="only the run RUN ('plain 1', 'fleet 20' ...)")
    ap.add_argument('--profile', action='store_true', help='with --only: its trainer under '
                    'cProfile (CPU time of the thread that runs the callbacks), and where it goes')
    opts = ap.parse_args(argv)
    started = time.monotonic()
    if opts.only:
        return only(opts.only, opts.logs, opts.window, opts.profile)
    scales = (2,) if opts.quick else SCALES
    window = 4.0 if opts.quick else opts.window
    long_window = 6.0 if opts.quick else opts.long_window
    warmup = 2.0 if opts.quick else 10.0
    logs = opts.logs
    logs.mkdir(parents=True, exist_ok=True)
    top = max(scales)
    results: Dict[str, Any] = {'config': {
        'quick': opts.quick, 'scales': list(scales), 'window_s': window,
        'long_window_s': long_window, 'warmup_s': warmup, 'total_label_rate': TOTAL_LABEL_RATE,
        'robots_per_publisher': ROBOTS_PER_PUBLISHER, 'features': FEATURES, 'label': LABEL,
        'dds_profile': str(DDS_PROFILE.relative_to(REPO)),
        'goals': GOALS}, 'runs': {}, 'discovery': []}
    runs = results['runs']
    runs['plain 1'] = one('plain 1', 1, logs, window, warmup)
    for n in scales:
        runs[f'fleet {n}'] = one(f'fleet {n}', n, logs,
                                 long_window if n == top else window, warmup, cpu_window=window)
    order = [False, True] if opts.quick else [False, True, True, False]
    for i, server in enumerate(order):
        results['discovery'].append(one(
            f'discovery {"server" if server else "default"} {i + 1}', top, logs, 0.0, 0.0,
            server))
    results['judged'] = judge(results)
    results['meta'] = run_meta('fleet_bench.py', argv, started)
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.with_suffix('.json').write_text(json.dumps(results, indent=1) + '\n')
    opts.out.with_suffix('.md').write_text(markdown(results))
    for k, g in results['judged']['goals'].items():
        print(f'{k:16s} {g["figure"]} (goal <= {g["goal"]}): {"met" if g["met"] else "missed"}')
    print(f'{results["meta"]["duration_s"]} s; wrote {opts.out}.json, .md')
    return 0


if __name__ == '__main__':
    sys.exit(main())
