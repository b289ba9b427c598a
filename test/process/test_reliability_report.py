"""bench/reliability_report.py renders the figures of the reliability tests into a page's
block, and touches nothing outside it."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIGURES = {
    'fuzz_predictor': {
        'messages': {'catalogue': 87, 'hypothesis': 250}, 'sent': 675, 'predicted': 418,
        'refused': 257, 'refused_by_kind': {'layout': 144, 'length': 66, 'empty': 34,
                                            'non-finite': 12, 'overflow': 1},
        'samples_predicted': 211343, 'largest_message_bytes': 4800000,
        'non_finite_published': 0, 'recorded': '2026-01-01 10:00:00'},
    'signals': {'stops': 12, 'exit_codes_nonzero': 0, 'recorded': '2026-01-01 10:05:00',
                'exit_seconds_max': {'trainer SIGINT': 0.16, 'predictor SIGTERM': 0.27}},
    'qos_probe': {'arrived_of_3': {'best effort': {'0.48 MB': '3/3', '0.96 MB': '0/3'},
                                   'reliable': {'0.48 MB': '3/3', '0.96 MB': '3/3'}},
                  'recorded': '2026-01-01 10:06:00'},
}


def render(tmp_path, figures):
    data = tmp_path / 'reliability.json'
    data.write_text(json.dumps(figures))
    readme = tmp_path / 'README.md'
    readme.write_text('# x\n\nbefore\n<!-- reliability:begin -->\nold figures\n'
                      '<!-- reliability:end -->\nafter\n')
    proc = subprocess.run([sys.executable, '-m', 'bench.reliability_report', '--json', str(data),
                           '--readme', str(readme)], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    return readme.read_text()


def test_the_block_is_rendered_from_the_figures_and_nothing_else_changes(tmp_path):
    text = render(tmp_path, FIGURES)
    assert text.startswith('# x\n\nbefore\n<!-- reliability:begin -->\n')
    assert text.endswith('<!-- reliability:end -->\nafter\n')
    assert 'old figures' not in text
    assert '87 catalogue + 250 hypothesis messages' in text
    assert 'overflow 1' in text and '211 343 samples' in text
    assert 'all exit 0 (slowest 0.27 s' in text
    assert 'up to 0.48 MB arrived and from 0.96 MB on none did' in text
    assert '2026-01-01 10:00:00 to 2026-01-01 10:06:00' in text
    # the same figures, the same README: the rendering is stable
    assert render(tmp_path, FIGURES) == text


def test_no_figures_yet_says_so(tmp_path):
    assert '(no figures yet)' in render(tmp_path, {})
