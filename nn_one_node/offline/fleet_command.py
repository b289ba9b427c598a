"""``nn_one_bag train BAG... --fleet PATTERN``: one model from the bags of several robots, as the
fleet trainer learns it live (``offline.fleet``): the robots found by their namespaces, each
checked as ``train --namespace`` checks one, their samples interleaved in bag time into one
``TrainerCore``; per-robot samples and prequential scores in the summary line and the JSON."""

from __future__ import annotations

import argparse
from typing import Any, Dict, List

from nn_one_node.offline.bagio import Recording
from nn_one_node.offline.commands import (PROG, Failure, fmt, load_document, prepare,
                                          replay_bag, write_outputs)
from nn_one_node.offline.fleet import (FleetScores, FleetSource, pattern_list,
                                       robot_namespaces)


def find_robots(args, document: Any, rec: Recording, patterns: List[str]) -> List[str]:
    """The namespaces of the robots the bags hold, or Failure saying why there are none."""
    template = prepare(_under(args, '/'), document, rec, learn=False)
    relative = [(n.written, n.type) for n in template.source.needs
                if n.written[:1] not in ('/', '~', '{')]
    if not relative:
        raise Failure('--fleet finds robots by the topics the params file names relatively '
                      '(scan, not /scan), and it names none: write them relative')
    topics = rec.topics()
    robots = robot_namespaces(topics, relative, patterns)
    if not robots:
        names = ', '.join(sorted({w for w, _ in relative}))
        have = ', '.join(f'{t} ({ty})' for t, (ty, _n) in topics.items()) or 'no topics'
        raise Failure(f'no robot in {rec.name} matches --fleet {",".join(patterns)}: none of '
                      f'{names} is under a matching namespace (the bags have: {have})')
    return robots


def _under(args, namespace: str):
    return argparse.Namespace(**{**vars(args), 'namespace': namespace})


def cmd_train_fleet(args) -> int:
    from nn_one_node.learning.weights_file import save_weights_file
    from nn_one_node.offline.report import train_report
    if args.namespace not in ('/', ''):
        raise Failure('--fleet and --namespace: each robot is read under its own namespace; '
                      'give one of them')
    try:
        patterns = pattern_list(args.fleet)
    except ValueError as err:
        raise Failure(str(err)) from None
    document = load_document(args.params_file)
    with Recording(args.bags) as rec:
        robots = find_robots(args, document, rec, patterns)
        setups = {}
        for i, ns in enumerate(robots):
            setup = prepare(_under(args, ns), document, rec, learn=(i == 0))
            try:
                setup.require()
            except Failure as err:
                raise Failure(f'robot {ns}: {err}') from None
            setups[ns] = setup
        learner = setups[robots[0]].learner
        source = FleetSource({ns: s.source for ns, s in setups.items()})
        _each_bag_holds_a_robot(args.bags, source, robots)
        scoring = FleetScores(learner, robots)
        run = replay_bag(rec, source, learner, scoring.add, setups[robots[0]].clock,
                         'train', args.quiet)
        storages = rec.storages()
    if learner.deployed == 0:
        raise Failure(
            f'nothing learned from {", ".join(args.bags)} (robots {", ".join(robots)}): '
            f'{learner.scores.count} labeled samples, {learner.updates} update(s) run, none '
            f'deployed' + (f'; last: {learner.last_reason}' if learner.last_reason else '')
            + (f'; {source.refusal_summary()}' if source.refusal_summary() else '')
            + f'; {args.out} not written')
    per_robot = scoring.summary()
    metrics: Dict[str, Any] = {
        'command': 'train', 'bags': list(args.bags), 'storages': storages,
        'source': setups[robots[0]].kind, 'feature_names': list(source.feature_names),
        'run': run, 'prequential': learner.scores.summary(), 'training': learner.summary(),
        'model': {'weights': learner.weights.tolist(), 'bias': learner.bias,
                  'activation': learner.activation, 'file': args.out},
        'series': learner.history.as_dict(), 'inputs': source.counters(),
        'fleet': {'patterns': patterns, 'robots': per_robot},
    }
    try:
        save_weights_file(args.out, learner.weights, learner.bias, learner.activation)
    except (OSError, ValueError) as err:
        raise Failure(f'cannot write {args.out}: {err}') from None
    write_outputs(args, metrics, train_report)
    pre = metrics['prequential']
    robots_text = ', '.join(f'{ns} {r["samples"]:,} samples, accuracy {fmt(r["accuracy"])}'
                            for ns, r in per_robot.items())
    print(f'{PROG} train: {len(robots)} robots ({robots_text}); {run["messages"]:,} messages, '
          f'{run["bag_seconds"]:.1f} s of bag time in {run["wall_seconds"]:.1f} s; '
          f'{pre["samples"]:,} samples, {learner.deployed}/{learner.updates} updates deployed, '
          f'{len(learner.changes)} change(s) detected; prequential accuracy '
          f'{fmt(pre["accuracy"])}, log loss {fmt(pre["log_loss"])}; wrote {args.out}')
    return 0


def _each_bag_holds_a_robot(bags, source: FleetSource, robots: List[str]) -> None:
    """A bag given with --fleet that holds none of the robots' topics is a mistake (another
    robot's bag, a pattern that misses it): refused, naming the bag."""
    if len(bags) < 2:
        return
    for bag in bags:
        with Recording([bag]) as one:
            if not set(one.topics()) & set(source.inputs):
                raise Failure(f'bag {bag} holds no topic of the robots {", ".join(robots)} '
                              'that --fleet found: is it a robot the patterns do not match?')
