"""``nn_one_bag info``: a bag's topics, types, counts and rates, and which entries of a params
file it satisfies (exit code 2 where one is not)."""

from __future__ import annotations

import sys
from typing import Any, Dict

from nn_one_node.offline.bagio import Recording
from nn_one_node.offline.commands import (EXIT_BAD_INPUT, PROG, Failure, load_document, prepare,
                                          write_json)
from nn_one_node.offline.replay import NS


def cmd_info(args) -> int:
    document = load_document(args.params_file) if args.params_file else None
    with Recording(args.bags) as rec:
        topics = rec.topics()
        storages = rec.storages()
        count = rec.message_count
        start, end = rec.start_ns, rec.end_ns
        # train's own checks (commands.prepare): what info says here, train says too
        setup = prepare(args, document, rec) if args.params_file else None
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
    if setup is not None:
        print(f'\nentries of {args.params_file} (namespace {setup.namespace}):')
        entries = []
        for need, state in setup.statuses:
            where = '' if need.written == need.topic else f' -> {need.topic}'
            print(f'  [{need.by}] {need.entry}{where}: {state}')
            entries.append({'entry': need.entry, 'topic': need.topic, 'type': need.type,
                            'by': need.by, 'status': state})
        info['entries'] = entries
        info['namespace'] = setup.namespace
        info['topics_to_record'] = sorted({need.topic for need, _ in setup.statuses})
        if setup.problems:  # train and evaluate refuse this bag
            status = EXIT_BAD_INPUT
            try:
                setup.require()
            except Failure as err:  # the very line train and evaluate would print
                print(f'{PROG} info: error: {err}', file=sys.stderr)
        else:
            print(f'all {len(entries)} entries are satisfied: train and evaluate take this bag')
    if args.json:
        write_json(args.json, info)
    return status
