"""The status document (``view.StackView.document``) as a table for people, or as JSON.

>>> doc = {'format': 1, 'namespace': '/', 'found': True,
...        'summary': {'nodes': 1, 'OK': 0, 'WARN': 1, 'ERROR': 0, 'STALE': 0},
...        'nodes': [{'name': '/assembler', 'role': 'assembler', 'lifecycle': 'active',
...                   'level': 'WARN', 'message': 'no row published for 3.0 s', 'values': {},
...                   'seconds_since_status': 0.2, 'details': {
...                       'rows_published': 0, 'rows_stale': 150, 'ticks': 150,
...                       'seconds_since_last_row': 3.0, 'readings_refused': 75,
...                       'last_refusal': '', 'labels': {'received': 3, 'joined': 0,
...                                                      'unmatched': 3, 'waiting': 0},
...                       'inputs': [{'topic': 'scan', 'messages': 75, 'rate_hz': 25.0,
...                                   'age_s': 0.01, 'max_age_s': 0.2, 'stale': False}]}}],
...        'problems': [{'node': '/assembler', 'role': 'assembler', 'level': 'WARN',
...                      'problem': 'no row published for 3.0 s', 'advice': 'look'}]}
>>> print(table(doc, title='status'))  # doctest: +NORMALIZE_WHITESPACE
status   namespace /   1 node: 1 WARN
<BLANKLINE>
NODE        ROLE       STATE   LEVEL  MESSAGE
/assembler  assembler  active  WARN   no row published for 3.0 s
<BLANKLINE>
/assembler  rows 0 published, 150 stale of 150 ticks, last 3.0 s ago;
            labels 3 received, 0 joined, 3 unmatched, 0 waiting; 75 readings refused
  INPUT  RATE Hz  AGE s  MAX_AGE s  MESSAGES
  scan      25.0   0.01        0.2        75
<BLANKLINE>
PROBLEMS
  WARN  /assembler: no row published for 3.0 s
        -> look
"""

from __future__ import annotations

import json
import textwrap
from typing import Any, Dict, List, Optional, Sequence

MESSAGE_WIDTH = 70  # of the node table's message column; the problems are printed whole


def to_json(doc: Dict[str, Any]) -> str:
    """One JSON document on one line (a refresh a line: JSON Lines)."""
    return json.dumps(doc, sort_keys=False, allow_nan=False, default=str)


def _fmt(x: Any, spec: str = 'g', none: str = '-') -> str:
    if x is None:
        return none
    return format(x, spec)


def _columns(rows: Sequence[Sequence[str]], right: Sequence[int] = (),
             indent: str = '') -> List[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for r in rows:
        cells = [c.rjust(w) if i in right else c.ljust(w)
                 for i, (c, w) in enumerate(zip(r, widths))]
        out.append((indent + '  '.join(cells)).rstrip())
    return out


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 3] + '...'


def table(doc: Dict[str, Any], title: str = 'nn_one_node status',
          width: int = MESSAGE_WIDTH) -> str:
    """The document as text: the nodes, each role's figures, then every problem with advice."""
    s = doc['summary']
    counts = ', '.join(f'{s[lv]} {lv}' for lv in ('OK', 'WARN', 'ERROR', 'STALE') if s.get(lv))
    head = (f'{title}   namespace {doc["namespace"]}   {s["nodes"]} '
            f'node{"" if s["nodes"] == 1 else "s"}' + (f': {counts}' if counts else ''))
    lines = [head, '']
    if not doc['nodes']:
        lines.append('no node of nn_one_node reports on /diagnostics'
                     + (f' under {doc["namespace"]}' if doc['namespace'] != '/' else ''))
    else:
        rows = [('NODE', 'ROLE', 'STATE', 'LEVEL', 'MESSAGE')]
        rows += [(n['name'], n['role'], n['lifecycle'], n['level'], _clip(n['message'], width))
                 for n in doc['nodes']]
        lines += _columns(rows)
    for n in doc['nodes']:
        part = {'assembler': _assembler, 'trainer': _trainer,
                'predictor': _predictor}.get(n['role'])
        if part is not None and n['details']:  # none for a node that does not report
            lines += [''] + part(n['name'], n['details'])
    if doc['problems']:
        lines += ['', 'PROBLEMS']
        for p in doc['problems']:
            lines += textwrap.wrap(f'{p["node"]}: {p["problem"]}', width + 20,
                                   initial_indent=f'  {p["level"]:<5} ',
                                   subsequent_indent=' ' * 8)
            if p['advice']:
                lines += textwrap.wrap(p['advice'], width + 20, initial_indent=' ' * 8 + '-> ',
                                       subsequent_indent=' ' * 11)
    return '\n'.join(lines)


def _hang(name: str, parts: List[str]) -> List[str]:
    pad = ' ' * (len(name) + 2)
    return [(name + '  ' if i == 0 else pad) + p for i, p in enumerate(parts)]


def _assembler(name: str, d: Dict[str, Any]) -> List[str]:
    lab = d['labels']
    last = d['seconds_since_last_row']
    refused = d['readings_refused']
    lines = _hang(name, [
        f'rows {_fmt(d["rows_published"])} published, {_fmt(d["rows_stale"])} stale of '
        f'{_fmt(d["ticks"])} ticks' + ('' if last is None else f', last {last:.1f} s ago') + ';',
        f'labels {_fmt(lab["received"])} received, {_fmt(lab["joined"])} joined, '
        f'{_fmt(lab["unmatched"])} unmatched, {_fmt(lab["waiting"])} waiting'
        + (f'; {refused} readings refused' if refused else '')])
    if d['inputs']:
        rows = [('INPUT', 'RATE Hz', 'AGE s', 'MAX_AGE s', 'MESSAGES', '')]
        rows += [(i['topic'], _fmt(i['rate_hz'], '.1f'), _fmt(i['age_s'], '.2f', 'never'),
                  _fmt(i['max_age_s'], 'g', '(label)'), _fmt(i['messages']),
                  'STALE' if i['stale'] else '') for i in d['inputs']]
        lines += _columns(rows, right=(1, 2, 3, 4), indent='  ')
    return lines


def _version(v: Optional[int]) -> str:
    return '-' if v is None else f'v{v}'


def _trainer(name: str, d: Dict[str, Any]) -> List[str]:
    acc, guess = d['accuracy'], d['majority_rate']
    quality = ('accuracy - (nothing scored yet)' if acc is None else
               f'accuracy {acc:.3f} over {_fmt(d["window"])} samples'
               + ('' if guess is None else f' (constant guess {guess:.3f})'))
    served = d['version_served']
    if d['served_matches'] is None:
        serves = 'served ? (predictor not read)' if d['predictor'] else 'no predictor'
    elif d['served_matches']:
        serves = f'served {_version(served)} by {d["predictor"]}'
    else:
        serves = f'{d["predictor"]} serves another model'
    since = d['seconds_since_labeled_sample']
    lines = _hang(name, [
        f'samples {_fmt(d["samples_held"])} held ({_fmt(d["samples_received"])} received, '
        f'{_fmt(d["samples_refused"])} refused), last labeled '
        + ('never' if since is None else f'{since:.1f} s ago') + ';',
        quality + ';',
        ('model none trained yet' if not d['version_trained'] else
         f'model trained {_version(d["version_trained"])}, deployed '
         f'{_version(d["version_deployed"])}, {serves}') + f'; updates {_fmt(d["updates"])} '
        f'({_fmt(d["updates_deployed"])} deployed)'
        + ('' if d['training_enabled'] else '; training paused') + ';',
        f'last update: {d["last_update"] or "-"}'])
    if d.get('robots'):  # a fleet trainer's
        rows = [('ROBOT', 'STATE', 'LEVEL', 'SAMPLES', 'ACCURACY', 'SERVED', 'MESSAGE')]
        rows += [(r['robot'], r['state'], r['level'], _fmt(r['samples_received']),
                  _fmt(r['accuracy'], '.3f'), _version(r['version_served']),
                  _clip(r['message'], 50)) for r in d['robots']]
        lines += _columns(rows, right=(3, 4), indent='  ')
    return lines


def _predictor(name: str, d: Dict[str, Any]) -> List[str]:
    rate = d['predictions_per_s']
    refused = d['messages_refused']
    return _hang(name, [
        f'{_fmt(d["messages_predicted"])} messages predicted of {_fmt(d["messages_received"])}'
        + ('' if rate is None else f' ({rate:g}/s)')
        + (f'; {refused} refused, last: {d["last_refusal"]}' if refused else '')])
