"""Render the reliability figures (artifacts/reliability.json) into doc/reliability.md's block.

    source scripts/setup_env.sh
    make test ARGS="test/process/test_fuzz_process.py test/unit/test_extreme_input.py \\
        test/process/test_faults_process.py test/process/test_soak_process.py"  # CI's figures
    python bench/soak.py --duration 240                              # the long soak
    python bench/soak.py --qos-probe && python bench/soak.py --burst-at-once
    python -m bench.reliability_report                   # doc/reliability.md, in place

The tests and bench/soak.py write the figures (reliability_kit.record); this only formats them,
between ``<!-- reliability:begin -->`` and ``<!-- reliability:end -->``, and leaves every other
line of the page alone. A section not run yet is shown as such.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

REPO = Path(__file__).resolve().parent.parent
BEGIN = '<!-- reliability:begin -->'
END = '<!-- reliability:end -->'


def num(value: Any) -> str:
    """12345 -> '12 345' (the README's style); floats as given."""
    if isinstance(value, bool) or not isinstance(value, int):
        return str(value)
    return f'{value:,}'.replace(',', ' ')


def kinds(counts: Dict[str, int]) -> str:
    return ', '.join(f'{k} {num(v)}' for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))


def rss(r: Dict[str, int]) -> str:
    return (f'{r["start_kib"] / 1024:.1f} → {r["end_kib"] / 1024:.1f} MiB '
            f'({(r["end_kib"] - r["start_kib"]) / 1024:+.1f})')


def row(what: str, tried: str, result: str) -> str:
    return f'| {what} | {tried} | {result} |'


def fuzz_rows(f: Dict[str, Any]) -> List[str]:
    out = []
    p = f.get('fuzz_predictor')
    if p:
        m = p['messages']
        out.append(row(
            'Predictor, hostile `features` (`test_fuzz_process.py`)',
            f'{num(m["catalogue"])} catalogue + {num(m["hypothesis"])} hypothesis messages, '
            f'each followed by a valid one ({num(p["sent"])} in all, up to '
            f'{p["largest_message_bytes"] / 1e6:.1f} MB)',
            f'{num(p["predicted"])} answered, each equal to the model core '
            f'({num(p["samples_predicted"])} samples); {num(p["refused"])} refused and counted '
            f'({kinds(p["refused_by_kind"])}); received = predicted + refused; '
            f'{num(p["non_finite_published"])} non-finite predictions published'))
    for key, what in (('assembler_fuzz_scan', 'LaserScan (NaN, +-inf, float32 extremes, empty '
                       'arrays, odd range bounds)'),
                      ('assembler_fuzz_joint_states', 'JointState (names in any order, '
                       'missing or repeated, short effort arrays)')):
        a = f.get(key)
        if a:
            out.append(row(
                f'Assembler, hostile {what} (`test_assembler_fuzz_process.py`)',
                f'{num(a["messages"])} messages, one at a time',
                f'every row equal to an oracle written from the README; '
                f'{num(a["bad readings counted"])} bad readings, each counted '
                f'({kinds(a["by kind"])}); no non-finite value published'))
    t = f.get('fuzz_trainer')
    if t:
        m = t['messages']
        out.append(row(
            'Trainer, hostile `labeled_samples`',
            f'{num(m["catalogue"])} catalogue + {num(m["hypothesis"])} hypothesis messages, '
            f'each followed by a valid batch and `~/train_now`',
            f'{num(t["messages_refused"])} messages refused; of '
            f'{num(t["samples_received"])} rows, refused {kinds(t["samples_refused_by_kind"])}; '
            f'every update equal to the model core on exactly the rows kept '
            f'({kinds(t["updates"])}); {num(t["non_finite_weights_deployed"])} non-finite '
            'weights on either node'))
    a = f.get('parameter_abuse')
    if a:
        out.append(row(
            'Parameter abuse, both nodes, through the services',
            f'{num(a["refused_changes"])} bad changes: wrong types and lengths, NaN/inf, '
            '0 and negative rates and periods, absurd sizes, read-only, undeclared, '
            'undeclare (NOT_SET)',
            f'{num(a["refused_changes"])} refused with a reason, {num(a["accepted_bad"])} '
            'accepted; the model in force unchanged (both nodes, weights file, predictions); '
            'weights set on the predictor by hand replaced by the trainer after '
            f'{a["foreign_weights_replaced_after_s"]} s'))
    e = f.get('extreme_valid')
    if e:
        out.append(row(
            'Extreme but valid samples',
            f'{num(e["samples"])} samples: features near 1e6 and 1e-6 together, one constant '
            'at 1e20, every sample three times, then every label 1.0',
            f'{num(e["updates_deployed"])} updates deployed, all finite; mean error '
            f'{e["mae_before_equal_labels"]:.4f} on fresh data; an overshooting step '
            f'refused by the gate ({num(e["updates_refused"])}), the model in force kept'))
    return out


def fault_rows(f: Dict[str, Any]) -> List[str]:
    out = []
    k = f.get('sigkill_while_writing')
    if k:
        out.append(row(
            'SIGKILL of the trainer while it writes (`test_faults_process.py`)',
            f'{num(k["rounds"])} seeded rounds, {num(k["kills_inside_a_write"])} of them '
            f'inside a write (model of {num(k["model_features"])} features, '
            f'{k["file_bytes"] / 1e3:.0f} kB file, rewritten every few ms)',
            f'{num(k["files_loadable_after_kill"])}/{num(k["rounds"])} files complete and '
            f'loadable (checksum) after the kill, each resumed by the next round; '
            f'{num(k["temporaries_left_by_kills"])} temporaries left by the kills, never '
            f'read, removed by the next start ({num(k["temporaries_left"])} left at the end)'))
    r = f.get('restarts')
    if r:
        out.append(row(
            'Restarts (SIGKILL): ' + ', '.join(r['restarted']),
            f'{num(r["kills"])} kills',
            'the predictor back with the last deployed model from the weights file at once '
            f'({num(r["predictor_served_file_model_at_start"])}×), the trainer resumed from it, '
            f'the next deployment landed each time ({num(r["deployments_resumed"])}/'
            f'{len(r["restarted"])}), no hand on the keyboard'))
    h = f.get('hung_predictor')
    if h:
        out.append(row(
            'A predictor whose parameter service never answers',
            f'{h["seconds_hung"]} s, {num(h["requests_sent_to_hung_predictor"])} deployments '
            'unanswered (one at a time, one per `deploy_timeout`)',
            f'{num(h["service_calls"])} trainer service calls meanwhile: median '
            f'{h["service_latency_median_ms"]} ms, max {h["service_latency_max_ms"]} ms; '
            f'{num(h["samples_collected_meanwhile"])} samples collected, '
            f'{num(h["updates_meanwhile"])} updates; the model deployed once a real '
            'predictor was up'))
    s = f.get('signals')
    if s:
        slowest = max(s['exit_seconds_max'].values())
        out.append(row(
            'SIGINT and SIGTERM',
            f'{num(s["stops"])} stops: the trainer inside a write, the predictor under ~1 kHz '
            'of features',
            f'all exit 0 (slowest {slowest:.2f} s; ' + ', '.join(
                f'{k} {v:.2f} s' for k, v in s['exit_seconds_max'].items())
            + '); the weights file complete, no temporary left'))
    return out


def soak_row(name: str, s: Dict[str, Any]) -> str:
    sent = s['sent']
    p, t = s['predictor'], s['trainer']
    tried = (f'{s["duration_s"]:.0f} s: features at {s["feature_rate_hz"]:.0f} Hz '
             f'({s["features_qos"]}) and labeled rows at {s["label_rate_hz"]:.0f} Hz, 1 % bad '
             f'({num(sent["features"] + sent["features_bad"])} + '
             f'{num(sent["labeled"] + sent["labeled_bad"])} messages)')
    stalls = sum(s.get('skipped_in_stalls', {}).values())
    if stalls:
        tried += f'; {num(stalls)} slots skipped while the sending process stalled'
    growth = s.get('rss_growth_kib_per_min')
    fitted = (' (fitted ' + ', '.join(f'{k} {v:+.0f} KiB/min' for k, v in growth.items()
                                       if v is not None) + ')') if growth else ''
    result = (f'predictions lost: {num(s["predictions_lost"])}, non-finite: '
              f'{num(s["non_finite_predictions"])}; predictor received '
              f'{num(p["messages received"])} = predicted {num(p["messages predicted"])} '
              f'+ refused {num(p["messages refused"])}; trainer received '
              f'{num(t["samples received"])}, refused {num(t["samples refused"])}, '
              f'{num(t["updates deployed"])} updates deployed; RSS predictor '
              f'{rss(s["rss"]["predictor"])}, trainer {rss(s["rss"]["trainer"])}{fitted}')
    failed = [k for k, ok in s.get('checks', {}).items() if not ok]
    if failed:
        result += '; **not met: ' + '; '.join(failed) + '**'
    return row(name, tried, result)


def load_rows(f: Dict[str, Any]) -> List[str]:
    out = []
    if f.get('soak_ci'):
        out.append(soak_row('Soak in CI (`test_soak_process.py`)', f['soak_ci']))
    if f.get('soak_long'):
        out.append(soak_row('Long soak (`bench/soak.py`)', f['soak_long']))
    if f.get('soak_long_best_effort'):
        out.append(soak_row('Long soak, default QoS (`bench/soak.py --best-effort`)',
                            f['soak_long_best_effort']))
    b = f.get('burst')
    if b:
        out.append(row(
            'Burst',
            f'{num(b["samples"])} labeled samples in {num(b["messages"])} messages of '
            f'{b["message_bytes"] / 1e6:.1f} MB, `buffer_size` {num(b["buffer_size"])}',
            f'the newest {num(b["buffer_size"])} kept (the next update equals the core\'s on '
            f'them); {num(b["trigger_calls_during_burst"])} Trigger calls meanwhile: median '
            f'{b["trigger_latency_median_ms"]} ms, max {b["trigger_latency_max_ms"]} ms, '
            f'{num(b["updates_during_burst"])} updates'))
    b = f.get('burst_at_once')
    if b:
        out.append(row(
            'Burst, four messages at once (`bench/soak.py --burst-at-once`)',
            f'{num(b["samples_received"])} samples',
            f'all counted after {b["seconds_to_count_all"]} s; {num(b["calls"])} Trigger '
            f'calls: median {b["trigger_latency_median_ms"]} ms, max '
            f'{b["trigger_latency_max_ms"]} ms'))
    return out


def render(figures: Dict[str, Any], machine: Optional[str] = None) -> str:
    machine = machine or f'{platform.system()} {platform.machine()}, {os.cpu_count()} cores'
    dates = sorted(v['recorded'] for v in figures.values()
                   if isinstance(v, dict) and 'recorded' in v)
    when = f'{dates[0]} to {dates[-1]}' if dates else 'never'
    lines = [
        '## Reliability: hostile input, faults, load',
        '',
        f'Figures written by the tests and `bench/soak.py` ({machine}; recorded {when}), '
        'rendered by `python -m bench.reliability_report` (see its docstring to reproduce). '
        'Every check can fail: each is an assertion of a test, or a FAIL line of the soak '
        'script.',
        '',
        '| what | inputs / faults | result |',
        '| --- | --- | --- |',
    ]
    rows = fuzz_rows(figures) + fault_rows(figures) + load_rows(figures)
    lines += rows or ['| (no figures yet) | | |']
    lines += ['', 'Found by these tests and fixed: the predictor published NaN when finite '
              'features overflowed `x·w + b` (now refused, kind `overflow`); one labeled row '
              'holding 1e300 made every update of the trainer fail until it left the ring (rows '
              'beyond ±1e100 are now refused, kind `magnitude`); a feature constant at 1e16 or '
              'more stopped training, its weight pushed by rounding error until the gate '
              'refused every update (its gradient is now exactly 0); both nodes grew by about '
              '20 KiB a minute, idle or busy, from the way the events executor was polled for '
              'shutdown (rclpy keeps ~32 bytes per `spin_until_future_complete` with a '
              'timeout; now `spin_once`, `test_runtime_memory.py`); bytes that do not '
              'deserialize as a features message were dropped by rclpy without a word (now '
              'refused and counted, kind `malformed`, `test_predictor_process.py`); a SIGKILL '
              'inside a weights-file write left its temporary for good (now removed at the '
              'next start).']
    q = figures.get('qos_probe')
    if q:
        be = q['arrived_of_3']['best effort']
        largest = [size for size, got in be.items() if got.startswith('3/')]
        lost = [size for size, got in be.items() if got.startswith('0/')]
        lines += ['', f'**Large features messages need the reliable QoS override.** Over the '
                  "predictor's default best-effort subscription (Fast DDS, loopback), messages "
                  f'up to {largest[-1] if largest else "?"} arrived and from '
                  f'{lost[0] if lost else "?"} on none did (`bench/soak.py --qos-probe`: a lost '
                  'fragment loses the message, and best effort never resends); with '
                  '`qos_overrides./features.subscription.reliability: reliable` every size did. '
                  'The fuzz and soak tests use that override and say so.']
    return '\n'.join(lines) + '\n'


def replace_block(text: str, block: str) -> str:
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise SystemExit(f'the page has no {BEGIN} ... {END} block')
    return text[:start + len(BEGIN)] + '\n' + block + text[end:]


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--json', type=Path, default=REPO / 'artifacts' / 'reliability.json')
    parser.add_argument('--page', '--readme', dest='readme', type=Path,
                        default=REPO / 'doc' / 'reliability.md',
                        help='the page that holds the block')
    parser.add_argument('--print', action='store_true', help='print the block, change nothing')
    args = parser.parse_args(argv)
    if not args.json.exists():
        raise SystemExit(f'{args.json} does not exist: run the reliability tests first')
    block = render(json.loads(args.json.read_text()))
    if args.print:
        sys.stdout.write(block)
        return 0
    text = args.readme.read_text()
    new = replace_block(text, block)
    if new != text:
        args.readme.write_text(new)
    print(f'{args.readme}: reliability block {"updated" if new != text else "unchanged"}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
