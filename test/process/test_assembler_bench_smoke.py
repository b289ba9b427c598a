"""bench/assembler_bench.py runs end to end in its quick mode (no figure is judged here: timings
on a shared machine say nothing). What is checked is that it measured what it reports: both
subscribers received the publisher's stream, the assembler published rows and counted its ticks,
and the figures are present and positive."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_quick_assembler_bench_writes_its_figures(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / 'bench' / 'assembler_bench.py'), '--quick',
                           '--out', str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f'{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}'
    r = json.loads((tmp_path / 'assembler-quick.json').read_text())
    sent = r['messages']['sent (at the rates)']
    for who in ('assembler', 'bare'):
        assert 0.5 * sent < r['messages'][who] <= 1.1 * sent, r['messages']
        assert r['cpu_s'][who] > 0 and r['cpu_per_msg_us'][who] > 0
    assert r['cpu_ratio'] > 0 and isinstance(r['cpu_met'], bool)
    ticks = r['ticks']
    assert 0.5 * r['window_s'] * r['row_rate_hz'] < ticks['ticks'] <= 1.1 * r['window_s'] * 100
    assert 0 <= ticks['late'] <= ticks['ticks'] and 0.0 <= ticks['share_on_time'] <= 1.0
    assert r['rows_received']['rows'] > 0
    md = (tmp_path / 'assembler-quick.md').read_text()
    assert 'CPU per input message' in md and 'rows published on time' in md
