"""nn_one_bag train against rosbags alone, on the same recording, ratios measured in one run.

The recording (generated here, not committed): the robot path's typed topics, Imu at 1 kHz,
JointState at 100 Hz, LaserScan (720 ranges) at 40 Hz, and a label (std_msgs/Float64) at 10 Hz
whose ground truth is one sigmoid neuron of the features, written with rosbags' Writer.

* baseline: rosbags alone reads and deserializes every message (``AnyReader.messages`` and
  ``deserialize``): the least any tool that looks at the messages does;
* nn_one_bag: ``nn_one_bag train`` on the same bag (the assembler's code at 50 Hz, the trainer's
  policy on bag time, the model file written).

Both run in child processes, alternating, ``--rounds`` times; the figures are medians. The goal:
nn_one_bag's rate >= 0.5 x the baseline's (messages per second of wall time). Peak RSS of each
child (``VmHWM``) is reported for two bag sizes: streaming keeps it flat as the bag grows.

    python bench/bag_bench.py [--messages 1000000] [--small 250000] [--rounds 2]
                              [--storage mcap|sqlite3] [--json FILE] [--profile]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's nn_one_node, also when run by path
NS = 1_000_000_000
RATES = {'/imu': 1000, '/joint_states': 100, '/scan': 40, '/slip': 10}
TYPES = {'/imu': 'sensor_msgs/msg/Imu', '/joint_states': 'sensor_msgs/msg/JointState',
         '/scan': 'sensor_msgs/msg/LaserScan', '/slip': 'std_msgs/msg/Float64'}
RANGES = 720
W_TRUE = np.array([0.8, -0.5, 1.5, -0.6])  # imu z (g), effort (A), velocity, scan min (m)
B_TRUE = -0.2

PARAMS = {
    '/**/assembler': {'ros__parameters': {
        'features': ['/imu sensor_msgs/msg/Imu linear_acceleration.z',
                     '/joint_states sensor_msgs/msg/JointState effort[left_wheel_joint]',
                     '/joint_states sensor_msgs/msg/JointState velocity[right_wheel_joint]',
                     '/scan sensor_msgs/msg/LaserScan min(ranges)'],
        'label': '/slip std_msgs/msg/Float64 data', 'rate': 50.0, 'max_age': 0.5,
        'label_delay': 0.3, 'max_join_gap': 0.05, 'history': 5.0}},
    '/**/trainer': {'ros__parameters': {'num_features': 4, 'train_period': 1.0}},
}


# ------------------------------------------------------------------------------- the recording
def _templates(store) -> Dict[str, Any]:
    """One serialized message per topic, and the byte offsets of the fields patched per message
    (found by serializing sentinels: no hand-computed CDR layout)."""
    from nn_one_node.offline.bagio import _make

    def mk(t, **f):
        return _make(store, t, f)

    def stamp(sec, nsec):
        return mk('std_msgs/msg/Header', stamp=mk('builtin_interfaces/msg/Time', sec=sec,
                                                  nanosec=nsec), frame_id='base_link')

    s_sec, s_nsec, s_val = 0x5EC0_0001, 0x0A50_0002, 12345.678
    imu = mk('sensor_msgs/msg/Imu', header=stamp(s_sec, s_nsec),
             orientation=mk('geometry_msgs/msg/Quaternion', w=1.0),
             linear_acceleration=mk('geometry_msgs/msg/Vector3', z=s_val),
             orientation_covariance=np.zeros(9), angular_velocity_covariance=np.zeros(9),
             linear_acceleration_covariance=np.zeros(9))
    joint = mk('sensor_msgs/msg/JointState', header=stamp(s_sec, s_nsec),
               name=['left_wheel_joint', 'right_wheel_joint'], position=np.zeros(2),
               velocity=np.array([0.0, s_val + 1]), effort=np.array([s_val, 0.0]))
    ranges = np.full(RANGES, 8.0, dtype=np.float32)
    ranges[RANGES // 2] = np.float32(1234.5)
    scan = mk('sensor_msgs/msg/LaserScan', header=stamp(s_sec, s_nsec), angle_min=-3.1,
              angle_max=3.1, angle_increment=6.2 / RANGES, range_min=0.05, range_max=30.0,
              ranges=ranges, intensities=np.zeros(0, dtype=np.float32))
    label = mk('std_msgs/msg/Float64', data=s_val)
    out = {}
    for topic, msg in (('/imu', imu), ('/joint_states', joint), ('/scan', scan),
                       ('/slip', label)):
        raw = bytes(store.serialize_cdr(msg, TYPES[topic]))

        def at(b: bytes) -> int:
            i = raw.find(b)
            assert i >= 0 and raw.find(b, i + 1) < 0, (topic, b)
            return i
        offsets = {}
        if topic != '/slip':
            offsets['sec'] = at(struct.pack('<i', s_sec))
            offsets['nsec'] = at(struct.pack('<I', s_nsec))
        if topic == '/scan':
            offsets['value32'] = at(struct.pack('<f', 1234.5))
        else:
            offsets['value'] = at(struct.pack('<d', s_val))
        if topic == '/joint_states':
            offsets['value2'] = at(struct.pack('<d', s_val + 1))
        out[topic] = (raw, offsets)
    return out


def write_bag(path: Path, messages: int, storage: str, seed: int = 0) -> Dict[str, Any]:
    """A recording of ``messages`` messages at RATES from t = 1000 s; returns its description."""
    from nn_one_node.offline.bagio import BagWriter
    rng = np.random.default_rng(seed)
    per_second = sum(RATES.values())
    seconds = messages / per_second
    states = int(seconds * 4) + 2  # the world changes 4 times a second
    X = np.column_stack([rng.uniform(-1.0, 1.0, states), rng.uniform(0.0, 2.0, states),
                         rng.uniform(-1.0, 1.0, states), rng.uniform(0.5, 3.0, states)])
    p = 1.0 / (1.0 + np.exp(-(X @ W_TRUE + B_TRUE)))
    events = []
    t0 = 1000 * NS
    for order, (topic, hz) in enumerate(RATES.items()):
        step = NS // hz
        count = int(seconds * hz)
        events.append(np.stack([t0 + step // 3 + order + np.arange(count, dtype=np.int64) * step,
                                np.full(count, order, dtype=np.int64)], axis=1))
    ev = np.concatenate(events)
    ev = ev[np.lexsort((ev[:, 1], ev[:, 0]))][:messages]
    topics = list(RATES)
    with BagWriter(path, storage) as bag:
        templates = _templates(bag.store)
        for topic in topics:
            bag.connection(topic, TYPES[topic])
        pack_i, pack_I = struct.Struct('<i').pack_into, struct.Struct('<I').pack_into
        pack_d, pack_f = struct.Struct('<d').pack_into, struct.Struct('<f').pack_into
        write = bag.write_raw
        for t, order in ev.tolist():
            topic = topics[order]
            raw, off = templates[topic]
            buf = bytearray(raw)
            k = min((t - t0) * 4 // NS, states - 1)
            if topic == '/slip':  # the label of the moment label_delay ago
                k = min(max((t - t0 - int(0.3 * NS)) * 4 // NS, 0), states - 1)
                pack_d(buf, off['value'], float(p[k]))
            else:
                pack_i(buf, off['sec'], t // NS)
                pack_I(buf, off['nsec'], t % NS)
                if topic == '/imu':
                    pack_d(buf, off['value'], X[k, 0])
                elif topic == '/joint_states':
                    pack_d(buf, off['value'], X[k, 1])
                    pack_d(buf, off['value2'], X[k, 2])
                else:
                    pack_f(buf, off['value32'], X[k, 3])
            write(topic, TYPES[topic], t, bytes(buf))
    size = sum(f.stat().st_size for f in path.iterdir())
    return {'messages': int(len(ev)), 'bag_seconds': seconds, 'bytes': size,
            'storage': storage}


# ---------------------------------------------------------------------------- the measured runs
def child_baseline(bag: str) -> Dict[str, Any]:
    from rosbags.highlevel import AnyReader

    from nn_one_node.offline.bagio import typestore
    t0 = time.perf_counter()
    n = 0
    with AnyReader([Path(bag)], default_typestore=typestore()) as reader:
        deserialize = reader.deserialize
        for con, _t, raw in reader.messages():
            deserialize(raw, con.msgtype)
            n += 1
    return {'seconds': time.perf_counter() - t0, 'messages': n}


def child_train(bag: str, params: str, out: str) -> Dict[str, Any]:
    from nn_one_node.offline import cli as bag_tool
    t0 = time.perf_counter()
    code = bag_tool.main(['train', bag, '--params-file', params, '--out', out, '--quiet',
                          '--json', out + '.json'])
    seconds = time.perf_counter() - t0
    assert code == 0, code
    metrics = json.loads(Path(out + '.json').read_text())
    return {'seconds': seconds, 'messages': metrics['run']['messages'],
            'samples': metrics['prequential']['samples'],
            'accuracy': metrics['prequential']['accuracy'],
            'updates': metrics['training']['updates']}


def run_child(*args: str) -> Dict[str, Any]:
    """A child process running one measurement: its result, with its own peak RSS."""
    env = {**os.environ, 'PYTHONPATH': str(ROOT) + os.pathsep + os.environ.get('PYTHONPATH', '')}
    done = subprocess.run([sys.executable, __file__, *args], stdout=subprocess.PIPE, env=env,
                          check=True, timeout=3600)
    return json.loads(done.stdout.decode().strip().splitlines()[-1])


def measure(bag: Path, params: Path, out: Path, rounds: int) -> Dict[str, Any]:
    base: List[Dict[str, Any]] = []
    ours: List[Dict[str, Any]] = []
    for _ in range(rounds):
        base.append(run_child('--child-baseline', str(bag)))
        ours.append(run_child('--child-train', str(bag), str(params), str(out)))
    b = statistics.median(r['seconds'] for r in base)
    o = statistics.median(r['seconds'] for r in ours)
    ratios = [br['seconds'] / orr['seconds'] for br, orr in zip(base, ours)]
    n = ours[0]['messages']
    return {
        'messages': n,
        'baseline_s': b, 'nn_one_bag_s': o,
        'baseline_msgs_per_s': n / b, 'nn_one_bag_msgs_per_s': n / o,
        'ratio': statistics.median(ratios), 'ratios': ratios,
        'baseline_peak_rss_mb': max(r['peak_rss_mb'] for r in base),
        'nn_one_bag_peak_rss_mb': max(r['peak_rss_mb'] for r in ours),
        'samples': ours[0]['samples'], 'accuracy': ours[0]['accuracy'],
        'updates': ours[0]['updates'],
    }


def profile(bag: Path, params: Path, out: Path, top: int = 30) -> str:
    import cProfile
    import io
    import pstats

    from nn_one_node.offline import cli as bag_tool
    prof = cProfile.Profile()
    prof.enable()
    bag_tool.main(['train', str(bag), '--params-file', str(params), '--out', str(out), '-q'])
    prof.disable()
    s = io.StringIO()
    pstats.Stats(prof, stream=s).sort_stats('tottime').print_stats(top)
    return s.getvalue()


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM: of this program since its exec; ``ru_maxrss``
    would also count the parent's footprint at the fork, on Linux)."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) / 1024
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024


def main(argv: List[str]) -> int:
    if argv and argv[0] in ('--child-baseline', '--child-train'):
        result = (child_baseline(argv[1]) if argv[0] == '--child-baseline'
                  else child_train(*argv[1:4]))
        result['peak_rss_mb'] = peak_rss_mb()
        print(json.dumps(result))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--messages', type=int, default=1_000_000)
    ap.add_argument('--small', type=int, default=250_000,
                    help='messages of the second, smaller bag (peak RSS against bag size)')
    ap.add_argument('--rounds', type=int, default=2)
    ap.add_argument('--storage', choices=('mcap', 'sqlite3'), default='mcap')
    ap.add_argument('--json', help='write the figures here')
    ap.add_argument('--profile', action='store_true', help='print a cProfile of one train run')
    args = ap.parse_args(argv)
    import yaml
    results: Dict[str, Any] = {'storage': args.storage, 'rounds': args.rounds,
                               'python': sys.version.split()[0], 'cpus': os.cpu_count(),
                               'load_before': os.getloadavg(),
                               'started': time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}
    with tempfile.TemporaryDirectory(prefix='nn_one_bag_bench_') as tmp:
        tmp_path = Path(tmp)
        params = tmp_path / 'params.yaml'
        params.write_text(yaml.safe_dump(PARAMS, sort_keys=False))
        for label, count in (('small', args.small), ('full', args.messages)):
            bag = tmp_path / f'bag-{label}'
            t0 = time.perf_counter()
            info = write_bag(bag, count, args.storage)
            info['write_s'] = time.perf_counter() - t0
            print(f'[{label}] wrote {info["messages"]:,} messages ({info["bytes"] / 1e6:.0f} MB, '
                  f'{info["bag_seconds"]:.0f} s of bag time) in {info["write_s"]:.1f} s',
                  flush=True)
            m = measure(bag, params, tmp_path / f'model-{label}.yaml', args.rounds)
            m['bag'] = info
            results[label] = m
            print(f'[{label}] rosbags read+deserialize {m["baseline_msgs_per_s"]:,.0f} msg/s, '
                  f'nn_one_bag train {m["nn_one_bag_msgs_per_s"]:,.0f} msg/s: ratio '
                  f'{m["ratio"]:.2f} (goal >= 0.5); peak RSS {m["baseline_peak_rss_mb"]:.0f} / '
                  f'{m["nn_one_bag_peak_rss_mb"]:.0f} MB; {m["samples"]:,} samples, '
                  f'prequential accuracy {m["accuracy"]:.3f}', flush=True)
            if args.profile and label == 'small':
                print(profile(bag, params, tmp_path / 'model-profile.yaml'))
            for f in bag.iterdir():  # free the disk before the next size
                f.unlink()
    results['load_after'] = os.getloadavg()
    results['goal_met'] = results['full']['ratio'] >= 0.5
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + '\n')
    return 0 if results['goal_met'] else 1


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
