"""The learning benchmark's goals, tables and figure (``learning_bench.py`` runs it).

Goals of issue 23, judged per stream and protocol against River on the same rows:

* ``accuracy``: prequential accuracy over the whole stream >= River's - 0.005;
* ``first10``: over its first 10 % >= River's - 0.02;
* ``recovery`` (streams with an abrupt change): rows to recover <= River's (never recovering
  misses it, whatever River does);
* ``cpu``: learning CPU per row <= River's;
* ``restart`` (the restart stream): accuracy over the 1,000 rows after the restart >= over the
  1,000 before it - 0.01.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, List, Optional

GOALS = {
    'accuracy': 'accuracy >= River - 0.005',
    'first10': 'first 10 % >= River - 0.02',
    'recovery': 'recovery <= River',
    'cpu': 'CPU per row <= River',
    'restart': 'after restart >= before - 0.01',
}
SLACK = 1e-9  # accuracies are ratios of counts: a tie is a tie
SETS = ('tuning', 'validation')
PROTOCOL_TITLES = {
    'row': '1. one row a message, clock-driven updates',
    'batch': '2. rounds of K rows, ~/train_now each round',
    'irregular': '3. irregular timing: rows at random intervals, ticks at random phases',
}


def goals(entry: Dict, stream: Dict) -> Dict[str, bool]:
    """The goals that apply to this stream, each met or not."""
    o, r = entry['ours'], entry['river']
    g = {'accuracy': o['accuracy'] >= r['accuracy'] - 0.005 - SLACK,
         'first10': o['first10'] >= r['first10'] - 0.02 - SLACK}
    if stream['change'] is not None:
        g['recovery'] = o['recovery'] is not None and (
            r['recovery'] is None or o['recovery'] <= r['recovery'])
    g['cpu'] = o['learn_us'] <= r['learn_us']
    if stream['restart_at'] is not None:
        g['restart'] = o['after_restart'] >= o['before_restart'] - 0.01 - SLACK
    return g


def met_text(g: Dict[str, bool]) -> str:
    missed = [name for name, ok in g.items() if not ok]
    return f'{len(g) - len(missed)}/{len(g)}' + (f' (missed: {", ".join(missed)})'
                                                 if missed else '')


def summary(results: Dict) -> Dict:
    """Goals met of goals judged, per protocol and set, and the misses by name."""
    out: Dict = {}
    for protocol, by_stream in results['results'].items():
        out[protocol] = {}
        for which in SETS:
            judged = met = 0
            missed: List[str] = []
            for name, entry in by_stream.items():
                if results['streams'][name]['set'] != which:
                    continue
                for goal, ok in entry['goals'].items():
                    judged += 1
                    met += bool(ok)
                    if not ok:
                        missed.append(f'{name}: {goal}')
            out[protocol][which] = dict(judged=judged, met=met, missed=missed)
    return out


def _pair(o: Optional[float], r: Optional[float], fmt: str = '.3f') -> str:
    def one(v: Optional[float]) -> str:
        return 'never' if v is None else format(v, fmt)
    return f'{one(o)} ({one(r)})'


def _row(name: str, stream: Dict, entry: Dict, peers: List[str]) -> str:
    o, r = entry['ours'], entry['river']
    cells = [name, f'{stream["rows"]} x {stream["features"]}', _pair(o['accuracy'], r['accuracy']),
             _pair(o['first10'], r['first10']),
             _pair(o.get('recovery'), r.get('recovery'), 'd') if 'recovery' in o else '',
             _pair(o['learn_us'], r['learn_us'], '.1f'),
             (f'{o["after_restart"]:.3f} / {o["before_restart"]:.3f} '
              f'({r["after_restart"]:.3f} / {r["before_restart"]:.3f})'
              if 'after_restart' in o else '')]
    cells += [f'{entry[p]["accuracy"]:.3f}' for p in peers if p != 'river']
    g = entry['goals']
    cells.append(('**all met**' if all(g.values()) else '') + ', '.join(
        f'{goal} **missed**' for goal, ok in g.items() if not ok))
    return '| ' + ' | '.join(cells) + ' |'


def markdown(results: Dict) -> str:
    meta, cfg, streams = results['meta'], results['config'], results['streams']
    peers = cfg['peers']
    dirty = (f' plus uncommitted changes to {", ".join(meta["uncommitted"])}'
             if meta['uncommitted'] else '')
    lines = [
        "# Learning benchmark: the trainer's own code against River (issue 23)", '',
        f'Reproduce: `{meta["command"]}` ({meta["duration_s"]:.0f} s). Run {meta["date"]}, '
        f'commit {meta["commit"]}{dirty}; {meta["machine"]}, {meta["cpus"]} CPUs, Python '
        f'{meta["python"]}, River {meta["versions"]["river"]}.', '',
        "`TrainerCore` with the trainer's defaults, driven as the trainer node drives it, "
        "prequentially (each row predicted by the model in force before it is given); River's "
        '`StandardScaler() | LogisticRegression()` on the same rows and messages. Cells: ours '
        '(River). First 10 %: accuracy over the first tenth of the stream. Recovery (abrupt '
        f'changes): rows after the change until the accuracy over the last '
        f'{cfg["recovery_window"]} rows is back within {cfg["recovery_tolerance"]} of the '
        f'learner\'s own accuracy over the {cfg["pre_window"]} rows before it (least possible '
        f'{cfg["recovery_window"]}). CPU: `time.process_time` per row around the learning calls '
        'only (River: `learn_one`, with the dict it takes). Restart: accuracy over the '
        f'{cfg["restart_window"]} rows after the restart / before it. How it measures: '
        "`bench/learning_bench.py`'s docstring.", '',
        '**Validation streams are held out from tuning**: judge a change on them, do not shape '
        'it by them.', '',
        '## Goals met', '',
        '| protocol | tuning streams | validation streams |', '| --- | --- | --- |']
    for protocol, by_set in results['summary'].items():
        lines.append(f'| {PROTOCOL_TITLES[protocol]} | ' + ' | '.join(
            f'{s["met"]}/{s["judged"]}' for s in (by_set[w] for w in SETS)) + ' |')
    lines += ['', 'Goals per stream: ' + '; '.join(GOALS.values()) + '.', '']
    for protocol, by_set in results['summary'].items():
        for which in SETS:
            missed = by_set[which]['missed']
            if missed:
                lines.append(f'- {protocol}, {which}: missed {", ".join(missed)}')
    for name, s in streams.items():
        if s.get('clock') is not None:
            swings = ', '.join(
                f'{protocol} {by[name]["ours"]["final_weights"][s["clock"]]:+.3g} '
                f'({abs(by[name]["ours"]["final_weights"][s["clock"]]) * s["clock_range"]:.2g})'
                for protocol, by in results['results'].items())
            lines += ['', f'Clock-like feature of {name} (column {s["clock"]}, moving '
                      f'{s["clock_range"]:.3g} over the stream): our final weight on it per '
                      f'protocol (the logit it moves over the stream): {swings}.']
    lines += ['', '## Streams', '', '| stream | set | rows x features | rows/s | K | positives | '
              'what |', '| --- | --- | --- | --- | --- | --- | --- |']
    for which in SETS:
        for name, s in streams.items():
            if s['set'] == which:
                lines.append(f'| {name} | {which} | {s["rows"]} x {s["features"]} | '
                             f'{s["rate"]:g} | {s["K"]} | {s["positives"]:.2f} | '
                             f'{s["label"]} |')
    head = ['stream', 'rows x N', 'accuracy', 'first 10 %', 'recovery', 'CPU us/row',
            'restart: after / before'] + [f'accuracy {p}' for p in peers if p != 'river'] \
        + ['goals']
    for protocol, by_stream in results['results'].items():
        lines += ['', f'## Protocol {PROTOCOL_TITLES[protocol]}', '',
                  '| ' + ' | '.join(head) + ' |', '|' + ' --- |' * len(head)]
        for which in SETS:
            names = [name for name in by_stream if streams[name]['set'] == which]
            if names:
                lines.append(f'| **{which}** |' + ' |' * (len(head) - 1))
            lines += [_row(name, streams[name], by_stream[name], peers) for name in names]
    return '\n'.join(lines) + '\n'


def plot(curves: Dict, results: Dict, path: Path) -> None:
    """Top: ours against River per stream and protocol (accuracy overall and over the first
    10 %, learning CPU) with the goals; below: the rolling accuracy over each stream."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    streams = results['streams']
    names = [n for w in SETS for n in streams if streams[n]['set'] == w]
    n_tuning = sum(streams[n]['set'] == 'tuning' for n in names)
    protocols = list(results['results'])
    cols = 4
    grid_rows = math.ceil(len(names) / cols)
    fig = plt.figure(figsize=(18, 7.0 + 3.1 * grid_rows))
    gs = fig.add_gridspec(3 + grid_rows, cols, hspace=0.6, wspace=0.25,
                          height_ratios=[0.15, 1.6, 0.6] + [1.0] * grid_rows)
    markers = {'row': 'o', 'batch': 's', 'irregular': '^'}
    top = []
    for span, key, limit, ylabel, title in (
            (slice(0, 2), 'accuracy', -0.005, 'accuracy, ours - River',
             'Accuracy over the whole stream, ours - River (goal: >= -0.005)'),
            (slice(2, 3), 'first10', -0.02, 'accuracy, ours - River',
             'First 10 %, ours - River (goal: >= -0.02)'),
            (slice(3, 4), 'learn_us', 1.0, 'CPU per row, ours / River (log)',
             'Learning CPU, ours / River (goal: <= 1)')):
        ax = fig.add_subplot(gs[1, span])
        for k, protocol in enumerate(protocols):
            by = results['results'][protocol]
            d = [by[n]['ours'][key] / by[n]['river'][key] if key == 'learn_us'
                 else by[n]['ours'][key] - by[n]['river'][key] for n in names]
            ax.plot([i + (k - 1) * 0.2 for i in range(len(names))], d, markers[protocol],
                    label=f'protocol {PROTOCOL_TITLES[protocol].split(".")[0]} ({protocol})',
                    markersize=5)
        ax.axhline(limit, color='red', linestyle='--', linewidth=1.0, label='goal')
        if key == 'learn_us':
            ax.set_yscale('log')
        else:
            ax.axhline(0.0, color='grey', linewidth=0.6)
        ax.axvline(n_tuning - 0.5, color='black', linestyle=':', linewidth=1.0)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels([n + (' (v)' if streams[n]['set'] == 'validation' else '')
                            for n in names], rotation=60, ha='right', fontsize=7)
        ax.set_ylabel(ylabel, fontsize=9)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        top.append(ax)
    legend_ax = fig.add_subplot(gs[0, :])
    legend_ax.axis('off')
    legend_ax.legend(*top[0].get_legend_handles_labels(), loc='center', ncol=4, fontsize=9,
                     title='(v): a validation stream, held out from tuning (right of the dotted '
                     'lines)', title_fontsize=9)
    styles = {('row', 'ours'): ('C0', '-'), ('row', 'river'): ('C3', '-'),
              ('batch', 'ours'): ('C1', '--'), ('irregular', 'ours'): ('C2', ':')}
    handles = {}
    for i, name in enumerate(names):
        ax = fig.add_subplot(gs[3 + i // cols, i % cols])
        for key, acc in curves[name].items():
            if key not in styles:
                continue
            color, ls = styles[key]
            (line,) = ax.plot(acc, color=color, linestyle=ls, linewidth=1.0)
            handles[key] = line
        s = streams[name]
        for x, c in ((s['change'], 'grey'), (s['restart_at'], 'black')):
            if x is not None:
                ax.axvline(x, color=c, linestyle=':', linewidth=1.0)
        ax.set_title(f'{name} ({s["set"]})', fontsize=10)
        ax.set_xlabel('row', fontsize=8)
        ax.set_ylabel('rolling accuracy', fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    order = [k for k in styles if k in handles]
    legend_ax = fig.add_subplot(gs[2, :])
    legend_ax.axis('off')
    legend_ax.legend([handles[k] for k in order], [f'{who}, protocol {p}' for p, who in order],
                     loc='lower center', ncol=len(order), fontsize=9, title_fontsize=9,
                     title='below: rolling accuracy (window: a tenth of the stream, 20 to 500 '
                     'rows); dotted lines: an abrupt change (grey), the restart (black)')
    fig.savefig(path, dpi=80, bbox_inches='tight')
    plt.close(fig)
