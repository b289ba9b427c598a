"""bench/fleet_bench.py runs end to end in its quick mode (a plain trainer and a fleet trainer of
two robots, default and Discovery Server discovery) and writes every result, well formed. No
figure is judged: timings on a shared machine say nothing. What is checked is behaviour the
figures stand on: the samples of every robot reached the trainer, every model it made in the
window reached every robot, and the server run had its server."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_quick_fleet_bench_writes_every_result(tmp_path):
    out = tmp_path / 'fleet'
    proc = subprocess.run([sys.executable, str(REPO / 'bench' / 'fleet_bench.py'), '--quick',
                           '--out', str(out), '--logs', str(tmp_path / 'logs')],
                          capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, f'{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}'
    r = json.loads(out.with_suffix('.json').read_text())

    assert r['meta']['command'].startswith('python bench/fleet_bench.py --quick --out ')
    assert set(r['runs']) == {'plain 1', 'fleet 2'}
    for label, run in r['runs'].items():
        assert run['samples'] > 0 and run['cpu_us_per_sample'] > 0, (label, run)
        # the robots' label rates add up to the same total: what the ratio stands on
        assert run['rates']['label'] * run['robots'] == r['config']['total_label_rate']
        assert run['models'] >= 1 and run['foreign_models'] == 0, (label, run)
        s = run['serving']
        assert s['count'] == run['models'] * run['robots'] and s['late'] == 0, (label, s)
        assert 0.0 <= s['p50_s'] <= s['p99_s'] <= s['max_s'] < math.inf
        assert len(run['discovery_each_s']) == run['robots'] and run['discovery_s'] > 0
        assert run['rss_mb'] and run['rss_growth'] is not None
        # a robot started after the window is timed from up and from the graph (fleet runs)
        assert ('late_join' in run) == label.startswith('fleet'), (label, run)
    assert [d['discovery'] for d in r['discovery']] == ['default', 'server']
    for run in [*r['discovery'], r['runs']['fleet 2']]:  # (the trainer may find it first)
        j = run['late_join']
        assert 0.0 <= j['s'] < 60.0 and 0.0 <= j['after_trainer_found_s'] < 60.0, run
        assert j['s'] <= j['from_up_s'] < 60.0, run  # up before it is seen
    (server_log,) = (tmp_path / 'logs').glob('discovery_server_*.server.log')
    assert 'Server is running' in server_log.read_text()
    goals = r['judged']['goals']
    assert set(goals) == {'cpu_ratio', 'p99_serving_s', 'rss_growth', 'discovery_ratio',
                          'late_join_server_s', 'late_join_default_s'}
    assert all(g['figure'] is not None and isinstance(g['met'], bool) for g in goals.values())
    assert r['judged']['growth']['2']['robots'] == 2
    md = out.with_suffix('.md').read_text()
    assert 'discovery, server / default' in md and '| fleet 2 | 2 |' in md
