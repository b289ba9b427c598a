"""``nn_one_bag info``: a bag's topics, types, counts and rates, and which entries of a params
file it satisfies (exit code 2 where one is not)."""

from __future__ import annotations

import sys
from typing import Any, Dict, List

from nn_one_node.offline.bagio import Recording, normalize_topic
from nn_one_node.offline.commands import (EXIT_BAD_INPUT, PROG, load_document, section,
                                          write_json)
from nn_one_node.offline.params_file import has_node
from nn_one_node.offline.replay import NS
from nn_one_node.offline.sources import LabeledSource


def config_entries(document: Any, labeled_topic: str) -> List[Dict[str, str]]:
    """The (topic, type) entries a params file needs from a bag, with what needs them."""
    out = []
    if has_node(document, 'assembler'):
        assembler = section(document, 'assembler')
        entries = list(assembler.get('features') or [])
        if assembler.get('label'):
            entries.append(assembler['label'])
        for entry in entries:
            parts = str(entry).split(None, 2)
            if len(parts) >= 2:
                out.append({'entry': str(entry), 'topic': normalize_topic(parts[0]),
                            'type': parts[1], 'by': 'assembler'})
            else:
                out.append({'entry': str(entry), 'topic': '', 'type': '', 'by': 'assembler'})
    else:
        out.append({'entry': f'{labeled_topic} (trainer input)',
                    'topic': normalize_topic(labeled_topic),
                    'type': LabeledSource.TYPE, 'by': 'trainer'})
    return out


def cmd_info(args) -> int:
    with Recording(args.bags) as rec:
        topics = rec.topics()
        storages = rec.storages()
        count = rec.message_count
        start, end = rec.start_ns, rec.end_ns
    info: Dict[str, Any] = {
        'bags': list(args.bags), 'storages': storages, 'messages': count,
        'start': start / NS, 'end': end / NS, 'duration': (end - start) / NS,
        'topics': [{'topic': t, 'type': ty, 'count': c,
                    'rate_hz': (c - 1) / ((end - start) / NS) if end > start and c > 1 else None}
                   for t, (ty, c) in topics.items()]}
    print(f'bag(s):   {", ".join(args.bags)} ({", ".join(storages)})')
    print(f'messages: {count:,} over {info["duration"]:.3f} s '
          f'(receive time {info["start"]:.3f} .. {info["end"]:.3f})')
    width = max([len(t) for t in topics] + [5])
    twidth = max([len(ty) for ty, _ in topics.values()] + [4])
    print(f'{"topic":<{width}}  {"type":<{twidth}}  {"count":>9}  {"rate":>9}')
    for row in info['topics']:
        rate = f'{row["rate_hz"]:.1f} Hz' if row['rate_hz'] else '-'
        print(f'{row["topic"]:<{width}}  {row["type"]:<{twidth}}  {row["count"]:>9,}  '
              f'{rate:>9}')
    status = 0
    if args.params_file:
        document = load_document(args.params_file)
        entries = config_entries(document, args.labeled_topic)
        print(f'\nentries of {args.params_file}:')
        for e in entries:
            if not e['topic']:
                e['status'] = 'not "<topic> <type> <path>"'
            elif e['topic'] not in topics:
                e['status'] = 'MISSING: topic not in the bag'
            elif topics[e['topic']][0] != e['type']:
                e['status'] = f'TYPE MISMATCH: the bag has {topics[e["topic"]][0]}'
            else:
                e['status'] = f'ok ({topics[e["topic"]][1]:,} messages)'
            print(f'  [{e["by"]}] {e["entry"]}: {e["status"]}')
        info['entries'] = entries
        bad = [e for e in entries if not e['status'].startswith('ok')]
        if bad:
            status = EXIT_BAD_INPUT
            print(f'{PROG} info: {len(bad)} of {len(entries)} entries are not satisfied by '
                  'the bag', file=sys.stderr)
        else:
            print(f'all {len(entries)} entries are satisfied')
    if args.json:
        write_json(args.json, info)
    return status
