"""``nn_one_bag train``: learn a model from bags as the trainer node would, on bag time, and
write it as a weights file (atomically; on any failure the file is neither written nor changed).
"""

from __future__ import annotations

from nn_one_node.offline.bagio import Recording
from nn_one_node.offline.commands import (PROG, Failure, fmt, load_document, prepare,
                                          replay_bag, write_outputs)


def cmd_train(args) -> int:
    if getattr(args, 'fleet', None):  # several robots: offline.fleet_command
        from nn_one_node.offline.fleet_command import cmd_train_fleet
        return cmd_train_fleet(args)
    from nn_one_node.offline.report import train_report
    from nn_one_node.learning.weights_file import save_weights_file
    document = load_document(args.params_file)
    with Recording(args.bags) as rec:
        setup = prepare(args, document, rec)   # the checks info makes too
        setup.require()
        kind, source, learner = setup.kind, setup.source, setup.learner
        run = replay_bag(rec, source, learner, learner.add, setup.clock, 'train', args.quiet)
        storages = rec.storages()
    if learner.deployed == 0:
        refused = source.refusal_summary()
        raise Failure(
            f'nothing learned from {", ".join(args.bags)}: {learner.scores.count} labeled '
            f'samples, {learner.updates} update(s) run, none deployed '
            f'(min_samples {learner.values["min_samples"]}, train_period '
            f'{learner.values["train_period"]} s of bag time'
            + (f'; last: {learner.last_reason}' if learner.last_reason else '')
            + ')' + (f'; {refused}' if refused else '') + f'; {args.out} not written')
    metrics = {
        'command': 'train', 'bags': list(args.bags), 'storages': storages, 'source': kind,
        'feature_names': list(source.feature_names), 'run': run,
        'prequential': learner.scores.summary(), 'training': learner.summary(),
        'model': {'weights': learner.weights.tolist(), 'bias': learner.bias,
                  'activation': learner.activation, 'file': args.out},
        'series': learner.history.as_dict(), 'inputs': source.counters(),
    }
    try:
        save_weights_file(args.out, learner.weights, learner.bias, learner.activation)
    except (OSError, ValueError) as err:
        raise Failure(f'cannot write {args.out}: {err}') from None
    write_outputs(args, metrics, train_report)
    pre = metrics['prequential']
    print(f'{PROG} train: {run["messages"]:,} messages, {run["bag_seconds"]:.1f} s of bag time '
          f'in {run["wall_seconds"]:.1f} s; {pre["samples"]:,} samples, '
          f'{learner.deployed}/{learner.updates} updates deployed, '
          f'{len(learner.changes)} change(s) detected; prequential accuracy '
          f'{fmt(pre["accuracy"])}, log loss {fmt(pre["log_loss"])}; wrote {args.out}')
    for warning in metrics['training']['warnings']:  # as the trainer node's /diagnostics
        print(f'{PROG} train: WARN: {warning}')
    return 0
