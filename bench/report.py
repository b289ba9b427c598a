"""From the raw figures of a run to the goals of issue 5: ratios, verdicts, Markdown, plots.

Every ratio is taken round by round between runs made side by side (the same round, one right
after the other), and the median over the rounds is the figure judged.
"""

from __future__ import annotations

from pathlib import Path
from statistics import median
from typing import Any, Dict, Iterable, List, Optional, Sequence

import numpy as np

GOALS = {
    'g1_predictor_vs_relay': 'predictor vs bare relay, same executor: p50 <= 1.1x, p99 <= 1.5x, '
                             'CPU per message <= 1.2x (N = 4, 64, 1024; 100 Hz and 1 kHz)',
    'g2_default_executor': 'predictor out of the box (executor auto -> events) vs a bare relay '
                           'on the SingleThreadedExecutor: p50 <= 0.8x',
    'g3_sustained_rate': 'highest offered rate with >= 99% delivered (N = 64), predictor vs '
                         'relay on the same executor: >= 0.9x',
    'g4_batch_cpu': 'CPU per sample of 1000 x 64 batch messages vs single-row messages: <= 1/100',
    'g5_training_step': 'GD step vs the two matrix-vector products: <= 1.3x for buffers >= 5 MB, '
                        '<= 3x below; >= 100x faster than a per-sample Python loop; no O(M) '
                        'allocation per step',
    'g6_training_interference': 'predictor p99 at 1 kHz with the trainer retraining a 100k x 64 '
                                'buffer continuously vs the trainer idle: <= 1.5x',
    'g7_memory': 'RSS of the predictor and the trainer flat over the run (end vs start after '
                 'warm-up: at most +5% + 4 MiB)',
}
LARGE_BUFFER_BYTES = 5e6


def summarize(latency_us: Sequence[float]) -> Dict[str, Optional[float]]:
    if len(latency_us) == 0:
        return {'count': 0, 'p50': None, 'p90': None, 'p99': None, 'max': None, 'mean': None}
    a = np.asarray(latency_us, dtype=np.float64)
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    return {'count': int(a.size), 'p50': float(p50), 'p90': float(p90), 'p99': float(p99),
            'max': float(a.max()), 'mean': float(a.mean())}


def _med(values: Iterable[Optional[float]]) -> Optional[float]:
    vals = [v for v in values if v is not None and np.isfinite(v)]
    return float(median(vals)) if vals else None


def _ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    if a is None or b is None or b == 0:
        return None
    return a / b


def _find(runs: List[Dict], **match: Any) -> Optional[Dict]:
    for r in runs:
        if all(r.get(k) == v for k, v in match.items()):
            return r
    return None


def _paired(runs: List[Dict], phase: str, num: Dict, den: Dict, rounds: int,
            metric: str) -> Dict[str, Any]:
    """Per-round ratios num/den of ``metric`` (a key of a run, or 'lat.p50' etc.), and medians."""
    def get(run: Optional[Dict]) -> Optional[float]:
        if run is None:
            return None
        if metric.startswith('lat.'):
            return run['latency_us'][metric[4:]]
        return run.get(metric)
    per_round, nums, dens = [], [], []
    for rnd in range(rounds):
        a = get(_find(runs, phase=phase, round=rnd, **num))
        b = get(_find(runs, phase=phase, round=rnd, **den))
        nums.append(a)
        dens.append(b)
        per_round.append(_ratio(a, b))
    return {'ratio': _med(per_round), 'per_round': per_round, 'numerator': _med(nums),
            'denominator': _med(dens)}


def _verdict(value: Optional[float], limit: float, upper: bool = True) -> Optional[bool]:
    if value is None:
        return None
    return value <= limit if upper else value >= limit


def _all(verdicts: Iterable[Optional[bool]]) -> Optional[bool]:
    vs = list(verdicts)
    if not vs or any(v is None for v in vs):
        return None
    return all(vs)


def judge(results: Dict) -> Dict[str, Dict]:
    cfg, runs = results['config'], results['runs']
    labels = results['labels']
    goals: Dict[str, Dict] = {}

    # 1 and 2: the latency matrix
    rows1, rows2 = [], []
    for n in cfg['ns']:
        pred, relay, single = (labels['predictor'][str(n)], labels['relay_events'][str(n)],
                               labels['relay_single'][str(n)])
        for rate in cfg['rates']:
            def paired(den: str, metric: str) -> Dict:
                return _paired(runs, 'latency', {'target': pred, 'rate': rate},
                               {'target': den, 'rate': rate}, cfg['rounds'], metric)
            p50, p99 = paired(relay, 'lat.p50'), paired(relay, 'lat.p99')
            cpu = paired(relay, 'cpu_per_msg_us')
            rows1.append({'n': n, 'rate': rate, 'p50': p50, 'p99': p99, 'cpu_per_msg': cpu,
                          'met': _all([_verdict(p50['ratio'], 1.1), _verdict(p99['ratio'], 1.5),
                                       _verdict(cpu['ratio'], 1.2)])})
            vs_single = paired(single, 'lat.p50')
            rows2.append({'n': n, 'rate': rate, 'p50': vs_single,
                          'cpu_per_msg': paired(single, 'cpu_per_msg_us'),
                          'met': _verdict(vs_single['ratio'], 0.8)})
    goals['g1_predictor_vs_relay'] = {'rows': rows1, 'met': _all(r['met'] for r in rows1)}
    procs = results['processes']
    default_exec = procs[labels['predictor'][str(cfg['focus_n'])]]['executor_used']
    override = labels.get('predictor_single')
    override_exec = procs[override]['executor_used'] if override else None
    events_available = results['meta'].get('events_executor_available')
    choice_ok = (default_exec == ('events' if events_available else 'single_threaded')
                 and (override_exec in (None, 'single_threaded')))
    goals['g2_default_executor'] = {
        'rows': rows2, 'executor_default': default_exec, 'executor_override': override_exec,
        'events_executor_available': events_available, 'executor_choice_ok': choice_ok,
        'met': _all([r['met'] for r in rows2] + [choice_ok])}

    # 3: sustained rate
    sus = results.get('sustained', {})
    pred, relay = labels['predictor'][str(cfg['focus_n'])], labels['relay_events'][
        str(cfg['focus_n'])]
    per_round = []
    for rnd in range(cfg['sustained_rounds']):
        best = sus.get(str(rnd), {})
        per_round.append(_ratio(best.get(pred), best.get(relay)))
    ratio = _med(per_round)
    goals['g3_sustained_rate'] = {
        'ratio': ratio, 'per_round': per_round, 'best_by_round': sus,
        'predictor_rate': _med(sus.get(str(r), {}).get(pred) for r in range(
            cfg['sustained_rounds'])),
        'relay_rate': _med(sus.get(str(r), {}).get(relay) for r in range(
            cfg['sustained_rounds'])),
        'relay_single_rate': _med(sus.get(str(r), {}).get(labels['relay_single'][str(
            cfg['focus_n'])]) for r in range(cfg['sustained_rounds'])),
        'ladder_top': max(cfg['ladder']), 'met': _verdict(ratio, 0.9, upper=False)}

    # 4: batches
    batch = _paired(runs, 'batch', {'target': pred, 'rows': cfg['batch_rows']},
                    {'target': pred, 'rows': 1}, cfg['batch_rounds'], 'cpu_per_sample_us')
    goals['g4_batch_cpu'] = {**batch, 'met': _verdict(batch['ratio'], 0.01)}

    # 5: training step
    tr = results.get('training', {}).get('sizes', [])
    steps = results.get('training', {}).get('steps_per_update_measured', 0)
    rows5, verdicts = [], []
    for row in tr:
        limit = 1.3 if row['buffer_bytes'] >= LARGE_BUFFER_BYTES else 3.0
        peak_many = row[f'alloc_peak_bytes_{1 + steps}_steps']
        alloc_ok = (peak_many <= row['alloc_peak_bytes_1_step'] + 1024
                    and (peak_many < row['one_vector_bytes']
                         or row['buffer_bytes'] < LARGE_BUFFER_BYTES))
        ok = _all([_verdict(row['step_over_floor'], limit),
                   _verdict(row['loop_over_step'], 100.0, upper=False), alloc_ok])
        verdicts.append(ok)
        rows5.append({**row, 'floor_limit': limit, 'alloc_ok': alloc_ok, 'met': ok})
    goals['g5_training_step'] = {'rows': rows5, 'met': _all(verdicts)}

    # 6: training next to prediction, judged on the trainer as shipped
    variants = {}
    for variant, how in cfg['trainer_variants'].items():
        label = 'trainer' if variant == 'shipped' else f'trainer-{variant}'
        busy = {'target': pred, 'trainer': 'busy', 'trainer_variant': variant}
        idle = {'target': pred, 'trainer': 'idle', 'trainer_variant': variant}
        cpu = {state: _med(r['cpu_s'].get(label, 0.0) / r['window_s'] for r in runs
                           if r['phase'] == 'training' and r.get('trainer') == state
                           and r.get('trainer_variant') == variant)
               for state in ('busy', 'idle')}
        variants[variant] = {
            'how': how, 'p99': _paired(runs, 'training', busy, idle, cfg['training_rounds'],
                                       'lat.p99'),
            'p50': _paired(runs, 'training', busy, idle, cfg['training_rounds'], 'lat.p50'),
            'trainer_cpu_cores': cpu}
    shipped = variants.get('shipped', {'p99': {'ratio': None, 'numerator': None,
                                               'denominator': None, 'per_round': []}})
    goals['g6_training_interference'] = {
        **shipped['p99'], 'variants': variants, 'trainer_buffer': cfg['trainer_buffer'],
        'met': _verdict(shipped['p99']['ratio'], 1.5)}

    # 7: memory
    rss = results.get('rss', [])
    rows7 = []
    warm = next((s for s in rss if s['when'] == cfg['rss_start']), rss[0] if rss else None)
    end = rss[-1] if rss else None
    for label in (pred, 'trainer'):
        if not warm or not end or label not in warm['bytes'] or label not in end['bytes']:
            continue
        start_b, end_b = warm['bytes'][label], end['bytes'][label]
        peak = max(s['bytes'].get(label) or 0 for s in rss)
        flat = end_b <= start_b * 1.05 + 4 * 2**20
        rows7.append({'process': label, 'start_bytes': start_b, 'end_bytes': end_b,
                      'peak_bytes': peak, 'growth_bytes': end_b - start_b, 'flat': flat,
                      'span_s': end['t_s'] - warm['t_s']})
    goals['g7_memory'] = {'rows': rows7, 'met': _all(r['flat'] for r in rows7) if rows7 else None}
    for key, text in GOALS.items():
        goals[key]['goal'] = text
    return goals


# ----------------------------------------------------------------------------------- markdown
def _f(value: Optional[float], fmt: str = '.2f') -> str:
    return '–' if value is None else format(value, fmt)


def _yes(met: Optional[bool]) -> str:
    return {True: 'yes', False: '**no**', None: 'n/a'}[met]


def _worst(rows: List[Dict], key: str, upper: bool = True) -> str:
    vals = [(r[key]['ratio'], r) for r in rows if r[key]['ratio'] is not None]
    if not vals:
        return '–'
    v, r = (max if upper else min)(vals, key=lambda t: t[0])
    return f'{v:.2f}x (N = {r["n"]}, {r["rate"]} Hz)'


def markdown(results: Dict) -> str:
    g, meta = results['goals'], results['meta']
    out = [f'# Benchmarks ({"quick smoke run" if meta["quick"] else "full run"})', '',
           f'`{meta["command"]}` on {meta["machine"]}; {meta["date"]}; commit '
           f'{meta["commit"]}; {meta["duration_s"]:.0f} s; load average before/after '
           f'{meta["loadavg_start"]} / {meta["loadavg_end"]}.', '',
           'Each figure is the median over interleaved rounds of a ratio measured side by side '
           'in the same round. Latency: one-way, source publish to sink callback, separate '
           'processes on loopback. CPU: the node process, /proc schedstat over the window.', '',
           '| # | goal | measured | met |', '|---|---|---|---|']
    g1, g2, g3 = g['g1_predictor_vs_relay'], g['g2_default_executor'], g['g3_sustained_rate']
    out.append(f'| 1 | {GOALS["g1_predictor_vs_relay"]} | worst p50 {_worst(g1["rows"], "p50")}, '
               f'p99 {_worst(g1["rows"], "p99")}, CPU {_worst(g1["rows"], "cpu_per_msg")} | '
               f'{_yes(g1["met"])} |')
    out.append(f'| 2 | {GOALS["g2_default_executor"]} | worst p50 {_worst(g2["rows"], "p50")}; '
               f'default executor: {g2["executor_default"]}, override: '
               f'{g2["executor_override"]} | {_yes(g2["met"])} |')
    out.append(f'| 3 | {GOALS["g3_sustained_rate"]} | {_f(g3["ratio"])}x '
               f'({_f(g3["predictor_rate"], ".0f")} vs {_f(g3["relay_rate"], ".0f")} msg/s; '
               f'single-threaded relay {_f(g3["relay_single_rate"], ".0f")}) | '
               f'{_yes(g3["met"])} |')
    g4 = g['g4_batch_cpu']
    out.append(f'| 4 | {GOALS["g4_batch_cpu"]} | {_f(g4["ratio"], ".4f")} '
               f'({_f(g4["numerator"], ".2f")} vs {_f(g4["denominator"], ".1f")} us/sample) | '
               f'{_yes(g4["met"])} |')
    g5 = g['g5_training_step']
    worst5 = max((r['step_over_floor'] for r in g5['rows']), default=None)
    low = min(g5['rows'], key=lambda r: r['loop_over_step'] or 0.0, default=None)
    loop5 = 'loop/step –'
    if low:
        ceiling = _f(low.get('loop_over_read_once'), '.0f')
        loop5 = (f'loop/step at least {_f(low["loop_over_step"], ".0f")}x ({low["samples"]} x '
                 f'{low["features"]}; one read of X alone: {ceiling}x)')
    out.append(f'| 5 | {GOALS["g5_training_step"]} | step/floor up to {_f(worst5)}x; {loop5} '
               f'| {_yes(g5["met"])} |')
    g6 = g['g6_training_interference']
    out.append(f'| 6 | {GOALS["g6_training_interference"]} | {_f(g6["ratio"])}x '
               f'(p99 {_f(g6["numerator"], ".0f")} vs {_f(g6["denominator"], ".0f")} us; '
               'trainer as shipped) | '
               f'{_yes(g6["met"])} |')
    g7 = g['g7_memory']
    mem = '; '.join(f'{r["process"]} {r["start_bytes"] / 2**20:.1f} -> '
                    f'{r["end_bytes"] / 2**20:.1f} MiB' for r in g7['rows'])
    out.append(f'| 7 | {GOALS["g7_memory"]} | {mem or "–"} | {_yes(g7["met"])} |')

    g3rows = [r for r in results['runs'] if r['phase'] == 'sustained']
    out += ['', '## 3: sustained rate, by round (msg/s; ladder top '
            f'{g3["ladder_top"]})', '']
    for rnd, best in sorted(g3['best_by_round'].items()):
        out.append(f'- round {int(rnd) + 1}: ' + ', '.join(
            f'{label} {_f(rate, ".0f")}' for label, rate in best.items()))
    if g3rows:
        retries = sum(1 for r in g3rows if r.get('attempt'))
        out.append(f'- {len(g3rows)} ladder steps run, {retries} of them second tries')
    out += ['', '## 1, 2: latency and CPU per message', '',
            '| N | rate (Hz) | p50 pred / relay (us) | p50 ratio | p99 pred / relay (us) | '
            'p99 ratio | CPU/msg pred / relay (us) | CPU ratio | p50 vs single-threaded relay '
            '(us) | ratio |', '|---|---|---|---|---|---|---|---|---|---|']
    for r1, r2 in zip(g1['rows'], g2['rows']):
        out.append(
            f'| {r1["n"]} | {r1["rate"]} | {_f(r1["p50"]["numerator"], ".0f")} / '
            f'{_f(r1["p50"]["denominator"], ".0f")} | {_f(r1["p50"]["ratio"])} | '
            f'{_f(r1["p99"]["numerator"], ".0f")} / {_f(r1["p99"]["denominator"], ".0f")} | '
            f'{_f(r1["p99"]["ratio"])} | {_f(r1["cpu_per_msg"]["numerator"], ".0f")} / '
            f'{_f(r1["cpu_per_msg"]["denominator"], ".0f")} | {_f(r1["cpu_per_msg"]["ratio"])} '
            f'| {_f(r2["p50"]["numerator"], ".0f")} / {_f(r2["p50"]["denominator"], ".0f")} | '
            f'{_f(r2["p50"]["ratio"])} |')
    one = {r['samples']: r for r in results.get('training_variants', {}).get(
        'blas_default', {}).get('sizes', [])}
    out += ['', '## 5: gradient-descent step', '',
            'As the trainer is shipped (one BLAS thread: trainer_node sets OPENBLAS_NUM_THREADS=1 '
            "and the like before numpy loads); floor and step with the same threads. Ceiling: "
            "the loop's time over that of X . w alone (one read of the buffer; beyond the cache, "
            "from memory), about the most that loop / step could be, since a step reads all of "
            "X (only the part of a large X still cached from the step before, walked the other "
            "way, comes faster). The last two columns: "
            "both with numpy's default BLAS threads (one per core), a diagnostic.",
            '',
            '| buffer | MB | floor (us) | step (us) | step / floor | limit | per-sample loop (ms) '
            '| loop / step | ceiling | alloc peak per update (B) | default threads: step (us) '
            '| step / floor |',
            '|---|---|---|---|---|---|---|---|---|---|---|---|']
    for r in g5['rows']:
        o = one.get(r['samples'])
        out.append(f'| {r["samples"]} x {r["features"]} | {r["buffer_bytes"] / 1e6:.2f} | '
                   f'{r["floor_s"] * 1e6:.1f} | {r["step_s"] * 1e6:.1f} | '
                   f'{_f(r["step_over_floor"])} | {r["floor_limit"]} | '
                   f'{r["per_sample_loop_step_s"] * 1e3:.1f} | {_f(r["loop_over_step"], ".0f")} '
                   f'| {_f(r.get("loop_over_read_once"), ".0f")} '
                   f'| {r["alloc_peak_bytes_1_step"]} | '
                   f'{_f(o["step_s"] * 1e6 if o else None, ".1f")} | '
                   f'{_f(o["step_over_floor"] if o else None)} |')
    out += ['', '## 6: training next to prediction', '',
            '| trainer | parameters, environment, prefix | p99 busy / idle (us) | p99 ratio | '
            'p50 ratio | trainer CPU busy / idle (cores) |', '|---|---|---|---|---|---|']
    for variant, v in g6['variants'].items():
        env = ' '.join([f'{k}:={val}' for k, val in v['how'].get('params', {}).items()]
                       + [f'{k}={val}' for k, val in v['how'].get('env', {}).items()]
                       + v['how'].get('prefix', [])) or 'as shipped'
        out.append(f'| {variant} | {env} | {_f(v["p99"]["numerator"], ".0f")} / '
                   f'{_f(v["p99"]["denominator"], ".0f")} | {_f(v["p99"]["ratio"])} | '
                   f'{_f(v["p50"]["ratio"])} | {_f(v["trainer_cpu_cores"]["busy"])} / '
                   f'{_f(v["trainer_cpu_cores"]["idle"])} |')
    out += ['', '## 7: memory', '',
            '| process | start (MiB) | end (MiB) | peak (MiB) | over (s) | flat |',
            '|---|---|---|---|---|---|']
    for r in g7['rows']:
        out.append(f'| {r["process"]} | {r["start_bytes"] / 2**20:.1f} | '
                   f'{r["end_bytes"] / 2**20:.1f} | {r["peak_bytes"] / 2**20:.1f} | '
                   f'{r["span_s"]:.0f} | {_yes(r["flat"])} |')
    plots = results.get('plots', [])
    if plots:
        out += [''] + [f'![{Path(p).stem}]({Path(p).name})' for p in plots]
    return '\n'.join(out) + '\n'


# -------------------------------------------------------------------------------------- plots
def plots(results: Dict, out_dir: Path) -> List[str]:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    files = []
    samples = results.get('latency_samples', {})
    if samples:
        rates = sorted(samples, key=float)
        fig, axes = plt.subplots(1, len(rates), figsize=(6 * len(rates), 4.2), squeeze=False)
        for ax, rate in zip(axes[0], rates):
            for label, values in sorted(samples[rate].items()):
                if not values:
                    continue
                a = np.sort(np.asarray(values))
                ax.plot(a, np.arange(1, a.size + 1) / a.size, label=f'{label} (n={a.size})')
            ax.set_xscale('log')
            ax.set_xlabel('one-way latency source -> node -> sink (us)')
            ax.set_ylabel('fraction of messages')
            ax.set_title(f'N = {results["config"]["focus_n"]}, {rate} Hz, all rounds pooled')
            ax.grid(True, which='both', alpha=0.3)
            ax.legend(fontsize=8, loc='lower right')
        fig.tight_layout()
        path = out_dir / 'latency_cdf.png'
        fig.savefig(path, dpi=110)
        plt.close(fig)
        files.append(str(path))
    rows = results.get('training', {}).get('sizes', [])
    if rows:
        m = np.array([r['samples'] for r in rows])
        fig, ax = plt.subplots(figsize=(6.5, 4.2))
        ax.plot(m, [r['step_s'] * 1e3 for r in rows], 'o-',
                label='GD step (train_update), one BLAS thread as shipped')
        ax.plot(m, [r['floor_s'] * 1e3 for r in rows], 's--',
                label='floor: X @ w + delta @ X')
        ax.plot(m, [r['per_sample_loop_step_s'] * 1e3 for r in rows], '^:',
                label='per-sample Python loop')
        one = results.get('training_variants', {}).get('blas_default', {}).get('sizes', [])
        if one:
            ax.plot([r['samples'] for r in one], [r['step_s'] * 1e3 for r in one], 'o-',
                    alpha=0.45, label="GD step, numpy's default BLAS threads")
            ax.plot([r['samples'] for r in one], [r['floor_s'] * 1e3 for r in one], 's--',
                    alpha=0.45, label="floor, numpy's default BLAS threads")
        five_mb = LARGE_BUFFER_BYTES / (8 * rows[0]['features'])
        ax.axvline(five_mb, color='grey', lw=0.8)
        ax.text(five_mb, 0.03, ' 5 MB: <= 1.3x floor from here', color='grey', fontsize=8,
                transform=ax.get_xaxis_transform())
        ax.set_xscale('log')
        ax.set_yscale('log')
        ax.set_xlabel(f'buffer samples M (x {rows[0]["features"]} features)')
        ax.set_ylabel('time per step (ms)')
        ax.set_title('Gradient-descent step vs the two matrix-vector products')
        ax.grid(True, which='both', alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = out_dir / 'gd_step.png'
        fig.savefig(path, dpi=110)
        plt.close(fig)
        files.append(str(path))
    return files
