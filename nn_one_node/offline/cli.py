"""``nn_one_bag``: train and evaluate the model on recorded rosbag2 bags, as the robot does live.

    nn_one_bag info BAG [--params-file CONFIG.yaml]
    nn_one_bag train BAG... --params-file CONFIG.yaml --out MODEL.yaml [--report R.png] [--json M]
    nn_one_bag evaluate BAG... --params-file CONFIG.yaml --weights MODEL.yaml [--report] [--json]

Reads bags with ``rosbags`` (mcap and sqlite3; no ROS install beyond the venv), streaming them in
receive-time order. The samples are built by the live assembler's code from the params file's
``assembler`` section, or taken from recorded ``labeled_samples`` arrays; training follows the
params file's ``trainer`` section on bag time (see ``offline``). Exit codes: 0 done, 2 bad input
(a missing, truncated or corrupt bag, a topic or type the config needs that the bag lacks, a bad
params or weights file, nothing to learn from), with the reason on stderr; on any failure the
model file is neither written nor changed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, TextIO

import numpy as np

from nn_one_node import blas_threads  # noqa: F401 - one BLAS thread, as the trainer node
from nn_one_node.offline.bagio import BagError, Recording, normalize_topic
from nn_one_node.offline.replay import NS, Replay
from nn_one_node.offline.params_file import ConfigError, has_node, load_params_file, params_for
from nn_one_node.offline.sources import LabeledSource
from nn_one_node.offline.scores import Scores, Series
from nn_one_node.offline.learner import TrainerLearner

PROG = 'nn_one_bag'
EXIT_BAD_INPUT = 2
DEFAULT_LABELED_TOPIC = '/labeled_samples'
CLOCK_TOPIC = '/clock'
CLOCK_TYPE = 'rosgraph_msgs/msg/Clock'
EVAL_BINS = 100  # time bins of the evaluate report's series

EPILOG = f"""examples:
  {PROG} info run1/ --params-file robot_params.yaml
  {PROG} train run1/ run2/ --params-file robot_params.yaml --out model.yaml \\
      --report train.png --json train.json
  {PROG} evaluate run3/ --params-file robot_params.yaml --weights model.yaml \\
      --report eval.png
  ros2 run nn_one_node predictor --ros-args --params-file model.yaml

samples come from the assembler section of the params file (typed topics: Imu, JointState,
LaserScan, Odometry, ... and a label topic), or, without one, from the labeled_samples arrays of
the bag (--source chooses). Exit code 2: bad input (the reason is printed; no model written).
"""


class Failure(Exception):
    """Bad input: the message for the user; exit code 2."""


# ------------------------------------------------------------------------------------ progress
class Progress:
    """A one-line progress bar on stderr, drawn only when stderr is a terminal."""

    def __init__(self, total: int, what: str, stream: TextIO = sys.stderr) -> None:
        self.total = max(int(total), 1)
        self.what = what
        self.stream = stream
        self.enabled = bool(getattr(stream, 'isatty', lambda: False)())
        self.start = time.monotonic()
        self._drawn = 0.0

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._drawn < 0.2:
            return
        self._drawn = now
        frac = min(done / self.total, 1.0)
        bar = '#' * int(frac * 30)
        rate = done / max(now - self.start, 1e-9)
        self.stream.write(f'\r{PROG} {self.what} [{bar:<30}] {frac:4.0%} {done:,}/'
                          f'{self.total:,} messages, {rate:,.0f}/s ')
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write('\r' + ' ' * 100 + '\r')
            self.stream.flush()


# ------------------------------------------------------------------------------------ sources
def _section(document: Any, node: str) -> Dict[str, Any]:
    try:
        return params_for(document, node)
    except ConfigError as err:
        raise Failure(str(err)) from None


def choose_source(args, document: Any) -> str:
    if args.source != 'auto':
        return args.source
    return 'assembler' if has_node(document, 'assembler') else 'labeled'


def build_source(kind: str, document: Any, num_features: Optional[int], activation: str,
                 labeled_topic: str):
    """The sample source, with the params file's name for what is wrong (Failure)."""
    if kind == 'assembler':
        from nn_one_node.offline.sources import AssembledSource
        section = _section(document, 'assembler')
        try:
            return AssembledSource(section)
        except ValueError as err:  # assembly.ConfigError is a ValueError naming the entry
            raise Failure(f'assembler section of the params file: {err}') from None
    if num_features is None:
        raise Failure('the params file gives no trainer num_features: cannot read '
                      f'{labeled_topic} rows (N features + label)')
    return LabeledSource(labeled_topic, num_features, activation)


def check_inputs(rec: Recording, inputs: Dict[str, str], what: str) -> None:
    """Every topic the source needs is in the bag, with the type the config says."""
    topics = rec.topics()
    problems = []
    for topic, msgtype in inputs.items():
        if topic not in topics:
            problems.append(f'topic {topic} ({msgtype}) that the {what} needs is not in the bag')
        elif topics[topic][0] != msgtype:
            problems.append(f'topic {topic} is {topics[topic][0]} in the bag, but the {what} '
                            f'needs {msgtype}')
    if problems:
        have = ', '.join(f'{t} ({ty})' for t, (ty, _n) in topics.items()) or 'no topics'
        raise Failure(f'bag {rec.name}: ' + '; '.join(problems) + f' (the bag has: {have})')


def clock_topic(rec: Recording, mode: str) -> Optional[str]:
    topics = rec.topics()
    has = topics.get(CLOCK_TOPIC, ('', 0))[0] == CLOCK_TYPE
    if mode == 'clock':
        if not has:
            raise Failure(f'bag {rec.name} has no {CLOCK_TOPIC} ({CLOCK_TYPE}) for --clock clock')
        return CLOCK_TOPIC
    if mode == 'auto' and has:
        return CLOCK_TOPIC
    return None


def _trainer_setup(document: Any, source_kind: str):
    section = _section(document, 'trainer')
    n = section.get('num_features')
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise Failure(f'trainer num_features must be an integer >= 1, got {n!r}')
    return section, n


# -------------------------------------------------------------------------------------- replay
def _replay(rec: Recording, source, learner, on_rows, clock: Optional[str], what: str,
            quiet: bool) -> Dict[str, Any]:
    topics = list(source.inputs)
    if clock is not None:
        topics.append(clock)
    total = rec.count(topics)
    progress = Progress(total, what, sys.stderr if not quiet else _Null())
    replay = Replay(source, on_rows, learner=learner, clock_topic=clock)
    started = time.monotonic()
    try:
        replay.run(rec.messages(topics), progress.update)
    finally:
        progress.close()
    st = replay.stats
    return {'messages': st.messages, 'rows': st.rows, 'clock_jumps_back': st.jumps_back,
            'bag_seconds': ((st.last_ns - st.first_ns) / NS) if st.messages else 0.0,
            'wall_seconds': time.monotonic() - started,
            'clock': clock or 'receive timestamps'}


class _Null:
    def isatty(self) -> bool:
        return False


def _open(bags: Sequence[str]) -> Recording:
    return Recording(bags)


def _write_outputs(args, metrics: Dict[str, Any], report) -> None:
    if args.report:
        try:
            report(metrics, args.report)
        except OSError as err:
            raise Failure(f'cannot write the report {args.report}: {err}') from None
    if args.json:
        try:
            _write_json(args.json, metrics)
        except OSError as err:
            raise Failure(f'cannot write {args.json}: {err}') from None


def _write_json(path: str, metrics: Dict[str, Any]) -> None:
    tmp = f'{path}.tmp-{os.getpid()}'
    with open(tmp, 'w', encoding='utf-8') as f:
        json.dump(metrics, f, indent=1, sort_keys=True, allow_nan=False)
        f.write('\n')
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------- train
def cmd_train(args) -> int:
    from nn_one_node.offline.report import train_report
    from nn_one_node.learning.weights_file import save_weights_file
    document = _load(args.params_file)
    kind = choose_source(args, document)
    section, n = _trainer_setup(document, kind)
    activation = section.get('activation', 'sigmoid')
    with _open(args.bags) as rec:
        source = build_source(kind, document, n, activation, args.labeled_topic)
        check_inputs(rec, source.inputs, 'assembler section' if kind == 'assembler'
                     else 'trainer (labeled samples)')
        try:
            learner = TrainerLearner(section, source.num_features)
        except ConfigError as err:
            raise Failure(f'trainer section of the params file: {err}') from None
        if kind == 'labeled':
            source.activation = learner.activation
        clock = clock_topic(rec, args.clock)
        run = _replay(rec, source, learner, learner.add, clock, 'train', args.quiet)
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
    _write_outputs(args, metrics, train_report)
    pre = metrics['prequential']
    print(f'{PROG} train: {run["messages"]:,} messages, {run["bag_seconds"]:.1f} s of bag time '
          f'in {run["wall_seconds"]:.1f} s; {pre["samples"]:,} samples, '
          f'{learner.deployed}/{learner.updates} updates deployed, '
          f'{len(learner.changes)} change(s) detected; prequential accuracy '
          f'{_fmt(pre["accuracy"])}, log loss {_fmt(pre["log_loss"])}; wrote {args.out}')
    return 0


def _fmt(x: Optional[float]) -> str:
    return 'n/a' if x is None else f'{x:.4f}'


def _load(path: Optional[str]) -> Any:
    if path is None:
        return None
    try:
        return load_params_file(path)
    except ConfigError as err:
        raise Failure(str(err)) from None


# ------------------------------------------------------------------------------------ evaluate
class Evaluator:
    """Scores a fixed model on each arriving row, overall and per time bin."""

    def __init__(self, weights: np.ndarray, bias: float, activation: str, num_features: int,
                 start_ns: int, end_ns: int) -> None:
        self.w, self.b, self.activation, self.n = weights, bias, activation, num_features
        self.scores = Scores()
        self.bin_ns = max((end_ns - start_ns) // EVAL_BINS, 1)
        self.start_ns = start_ns
        self._bin: Optional[int] = None
        self._window = Scores(bins=1)
        self.series = Series(['t', 'accuracy', 'log_loss', 'mse', 'samples'])

    def add(self, rows: np.ndarray, now_ns: int) -> None:
        from nn_one_node.model import forward as _predict
        X, y = rows[:, :self.n], rows[:, self.n]
        p = _predict(X, self.w, self.b, self.activation)
        b = (now_ns - self.start_ns) // self.bin_ns
        if self._bin is not None and b != self._bin:
            self._emit()
        self._bin = b
        self.scores.add(p, y)
        self._window.add(p, y)

    def _emit(self) -> None:
        w = self._window
        if w.count:
            t = (self.start_ns + (self._bin + 0.5) * self.bin_ns) / NS
            self.series.add(t, _num(w.accuracy()), _num(w.log_loss()), _num(w.mse()), w.count)
        self._window = Scores(bins=1)

    def finish(self) -> None:
        self._emit()


def _num(x: float) -> Optional[float]:
    return float(x) if math.isfinite(x) else None


def cmd_evaluate(args) -> int:
    from nn_one_node.offline.report import evaluate_report
    from nn_one_node.learning.weights_file import WeightsFileError, load_weights_file
    document = _load(args.params_file)
    kind = choose_source(args, document)
    section, n = _trainer_setup(document, kind)
    try:
        model = load_weights_file(args.weights, require_checksum=False)
    except WeightsFileError as err:
        raise Failure(str(err)) from None
    if n is not None and n != model.num_features:
        raise Failure(f'{args.weights} holds a model of {model.num_features} features; the '
                      f'params file says trainer num_features {n}')
    with _open(args.bags) as rec:
        source = build_source(kind, document, model.num_features, model.activation,
                              args.labeled_topic)
        if source.num_features != model.num_features:
            raise Failure(f'{args.weights} holds a model of {model.num_features} features; the '
                          f'assembler section builds {source.num_features}')
        check_inputs(rec, source.inputs, 'assembler section' if kind == 'assembler'
                     else 'evaluation (labeled samples)')
        clock = clock_topic(rec, args.clock)
        ev = Evaluator(np.asarray(model.weights), model.bias, model.activation,
                       model.num_features, rec.start_ns, rec.end_ns)
        run = _replay(rec, source, None, ev.add, clock, 'evaluate', args.quiet)
        ev.finish()
        storages = rec.storages()
    if ev.scores.count == 0:
        raise Failure(f'no labeled samples in {", ".join(args.bags)} to evaluate on')
    metrics = {
        'command': 'evaluate', 'bags': list(args.bags), 'storages': storages, 'source': kind,
        'feature_names': list(source.feature_names), 'run': run,
        'model': {'weights': np.asarray(model.weights).tolist(), 'bias': model.bias,
                  'activation': model.activation, 'file': args.weights},
        'scores': ev.scores.summary(), 'series': ev.series.as_dict(),
        'inputs': source.counters(),
    }
    _write_outputs(args, metrics, evaluate_report)
    s = metrics['scores']
    c = s['confusion']
    print('calibration (predicted probability bin: samples, mean predicted, observed rate):')
    for b in s['calibration']:
        if b['count']:
            print(f'  [{b["low"]:.1f}, {b["high"]:.1f}): {b["count"]:>8,}  '
                  f'{b["mean_predicted"]:.3f}  {b["observed_rate"]:.3f}')
    print(f'{PROG} evaluate: {s["samples"]:,} samples from {run["messages"]:,} messages: '
          f'accuracy {_fmt(s["accuracy"])}, log loss {_fmt(s["log_loss"])}, MSE '
          f'{_fmt(s["mse"])} (TP {c["true_positive"]}, FP {c["false_positive"]}, '
          f'TN {c["true_negative"]}, FN {c["false_negative"]})')
    return 0


# ---------------------------------------------------------------------------------------- info
def config_entries(document: Any, labeled_topic: str) -> List[Dict[str, str]]:
    """The (topic, type) entries a params file needs from a bag, with what needs them."""
    out = []
    if has_node(document, 'assembler'):
        section = _section(document, 'assembler')
        entries = list(section.get('features') or [])
        if section.get('label'):
            entries.append(section['label'])
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
    with _open(args.bags) as rec:
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
        document = _load(args.params_file)
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
        _write_json(args.json, info)
    return status


# ----------------------------------------------------------------------------------------- cli
def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG, description='Train and evaluate the nn_one_node model on recorded rosbag2 '
        'bags (mcap or sqlite3), building samples as the live nodes do.', epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest='command', required=True, metavar='{train,evaluate,info}')

    def common(sp, params_required: bool) -> None:
        sp.add_argument('bags', nargs='+', metavar='BAG',
                        help='bag directories (or .mcap / .db3 files), read as one stream in '
                        'receive-time order')
        sp.add_argument('--params-file', required=params_required, metavar='CONFIG.yaml',
                        help='ROS params file: its assembler and trainer sections are used')
        sp.add_argument('--source', choices=('auto', 'assembler', 'labeled'), default='auto',
                        help='samples from the assembler section (typed topics) or from '
                        'recorded labeled_samples arrays; auto: assembler if the params file '
                        'has an assembler section (default)')
        sp.add_argument('--labeled-topic', default=DEFAULT_LABELED_TOPIC,
                        help=f'topic of the labeled arrays (default {DEFAULT_LABELED_TOPIC})')
        sp.add_argument('--clock', choices=('auto', 'receive', 'clock'), default='auto',
                        help='bag time: the receive timestamps, or the recorded /clock as the '
                        'nodes see it with use_sim_time; auto: /clock if the bag has it')
        sp.add_argument('--report', metavar='REPORT.png', help='write a PNG report')
        sp.add_argument('--json', metavar='METRICS.json',
                        help="write the figures (the report's among them) as JSON")
        sp.add_argument('-q', '--quiet', action='store_true', help='no progress bar')

    t = sub.add_parser('train', help='learn a model from bags; write it as a weights file',
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    common(t, True)
    t.add_argument('--out', required=True, metavar='MODEL.yaml',
                   help="the model, in the trainer's weights-file format (written atomically; "
                   "load it with predictor --params-file or as the trainer's weights_file)")
    t.set_defaults(func=cmd_train)
    e = sub.add_parser('evaluate', help='score a model on bags',
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    common(e, False)
    e.add_argument('--weights', required=True, metavar='MODEL.yaml',
                   help="a weights file (the trainer's, or a params file with weights/bias)")
    e.set_defaults(func=cmd_evaluate)
    i = sub.add_parser('info', help='topics, types and counts; which config entries a bag '
                       'satisfies', epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    i.add_argument('bags', nargs='+', metavar='BAG')
    i.add_argument('--params-file', metavar='CONFIG.yaml',
                   help='check which entries of this params file the bag satisfies (exit 2 '
                   'if one is not)')
    i.add_argument('--labeled-topic', default=DEFAULT_LABELED_TOPIC)
    i.add_argument('--json', metavar='INFO.json', help='write the same as JSON')
    i.set_defaults(func=cmd_info)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (Failure, BagError) as err:
        print(f'{PROG} {args.command}: error: {err}', file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f'{PROG} {args.command}: interrupted; nothing written', file=sys.stderr)
        return 130


def console_main() -> None:
    sys.exit(main())


if __name__ == '__main__':
    console_main()
