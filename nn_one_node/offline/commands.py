"""What the ``nn_one_bag`` commands share: the failure that means bad input (exit code 2), the
progress bar, the sample source and the clock a params file and a bag call for, the replay, and
the writing of the report and the JSON figures."""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, TextIO, Tuple

from nn_one_node.names import InvalidName, node_namespace
from nn_one_node.offline.bagio import Recording
from nn_one_node.offline.params_file import ConfigError, has_node, load_params_file, params_for
from nn_one_node.offline.replay import NS, Replay
from nn_one_node.offline.sources import LabeledSource, Need

PROG = 'nn_one_bag'
EXIT_BAD_INPUT = 2
DEFAULT_LABELED_TOPIC = 'labeled_samples'  # the trainer's input, resolved as the node does
CLOCK_TOPIC = '/clock'
CLOCK_TYPE = 'rosgraph_msgs/msg/Clock'


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


# -------------------------------------------------------------------- the params file, the bag
def load_document(path: Optional[str]) -> Any:
    if path is None:
        return None
    try:
        return load_params_file(path)
    except ConfigError as err:
        raise Failure(str(err)) from None


def section(document: Any, node: str) -> Dict[str, Any]:
    """The ``ros__parameters`` of ``node`` in the params file, or Failure."""
    try:
        return params_for(document, node)
    except ConfigError as err:
        raise Failure(str(err)) from None


def choose_source(args, document: Any) -> str:
    if args.source != 'auto':
        return args.source
    return 'assembler' if has_node(document, 'assembler') else 'labeled'


def build_source(kind: str, document: Any, num_features: Optional[int], activation: str,
                 labeled_topic: str, namespace: str = '/'):
    """The sample source, with the params file's name for what is wrong (Failure); its topic
    names resolved under ``namespace`` as the nodes resolve them."""
    if kind == 'assembler':
        from nn_one_node.offline.sources import AssembledSource
        assembler = section(document, 'assembler')
        try:
            return AssembledSource(assembler, namespace=namespace)
        except ValueError as err:  # assembly.ConfigError is a ValueError naming the entry
            raise Failure(f'assembler section of the params file: {err}') from None
    if num_features is None:
        raise Failure('the params file gives no trainer num_features: cannot read '
                      f'{labeled_topic} rows (N features + label)')
    try:
        return LabeledSource(labeled_topic, num_features, activation, namespace)
    except ValueError as err:  # names.InvalidName
        raise Failure(f'--labeled-topic: {err}') from None


def check_namespace(namespace: str) -> str:
    """``--namespace`` as a node takes it (``robot1`` -> ``/robot1``), or Failure."""
    try:
        return node_namespace(namespace)
    except InvalidName as err:
        raise Failure(f'--namespace: {err}') from None


# ------------------------------------------------------------ the one check of every command
@dataclass
class Setup:
    """What a command will read from a bag, and whether the bag has it: the source, each topic
    it needs with its status in the bag, the trainer's learner (train's check of the trainer
    section) and the clock. ``problems`` says whether the bag is refused; ``require`` raises
    the one line that says why."""
    kind: str
    source: Any
    statuses: List[Tuple[Need, str]]
    missing: List[Tuple[Need, Optional[str]]]   # (need, the namespace the bag holds it under)
    wrong: List[Tuple[Need, str]]               # (need, the type the bag has)
    learner: Any
    clock: Optional[str]
    namespace: str
    bag: str
    topics: Dict[str, Tuple[str, int]]

    @property
    def problems(self) -> bool:
        return bool(self.missing or self.wrong)

    def require(self) -> None:
        """Failure naming every topic the bag lacks or holds with another type, and the
        --namespace under which the bag has the ones it lacks, where it has them."""
        if not self.problems:
            return
        what = 'assembler section' if self.kind == 'assembler' else 'trainer (labeled samples)'
        parts = []
        if self.missing:
            names = ', '.join(f'{n.topic} ({n.type})' for n, _ns in self.missing)
            one = len(self.missing) == 1
            parts.append(f'topic{"" if one else "s"} {names} that the {what} needs '
                         f'{"is" if one else "are"} not in the bag')
            under = {ns for _n, ns in self.missing}
            if len(under) == 1 and None not in under:
                ns = under.pop()
                parts[-1] += (f' (it has {"it" if one else "them"} under {ns}: '
                              f'give {_namespace_option(ns)})')
        for need, held in self.wrong:
            parts.append(f'topic {need.topic} is {held} in the bag, but the {what} needs '
                         f'{need.type}')
        have = ', '.join(f'{t} ({ty})' for t, (ty, _n) in self.topics.items()) or 'no topics'
        raise Failure(f'bag {self.bag}: ' + '; '.join(parts) + f' (the bag has: {have})')


def prepare(args, document: Any, rec: Recording, num_features: Optional[int] = None,
            activation: Optional[str] = None, learn: bool = True) -> Setup:
    """The checks that ``info``, ``train`` and ``evaluate`` all make, in one place: the source
    the params file asks for (its entries checked by the assembler's own code, its topic names
    resolved under ``--namespace``), each topic it needs against the bag's, the trainer section
    (``learn``: by the trainer's own parameter table) and the clock. Failure for a bad params
    file; what the bag lacks is in the Setup (``require`` raises it)."""
    from nn_one_node.offline.learner import TrainerLearner
    namespace = check_namespace(args.namespace)
    kind = choose_source(args, document)
    trainer, n = trainer_section(document)
    source = build_source(kind, document, n if num_features is None else num_features,
                          activation or trainer.get('activation', 'sigmoid'),
                          args.labeled_topic, namespace)
    if kind == 'assembler':  # num_features derived from the entries, as the launch file does
        check_num_features(document)
    topics = rec.topics()
    statuses, missing, wrong = [], [], []
    for need in source.needs:
        held = topics.get(need.topic)
        if held is None:
            ns = _held_under(need, topics)
            hint = f' (it has it under {ns}: {_namespace_option(ns)})' if ns else ''
            statuses.append((need, 'MISSING: not in the bag' + hint))
            if need.topic not in [m.topic for m, _ in missing]:
                missing.append((need, ns))
        elif held[0] != need.type:
            statuses.append((need, f'TYPE MISMATCH: the bag has {held[0]}'))
            if need.topic not in [w.topic for w, _ in wrong]:
                wrong.append((need, held[0]))
        else:
            statuses.append((need, f'ok ({held[1]:,} messages)'))
    learner = None
    if learn:
        try:
            learner = TrainerLearner(trainer, source.num_features)
        except ConfigError as err:
            raise Failure(f'trainer section of the params file: {err}') from None
        if kind == 'labeled':
            source.activation = learner.activation
    return Setup(kind, source, statuses, missing, wrong, learner,
                 clock_topic(rec, args.clock), namespace, rec.name, topics)


def check_num_features(document: Any) -> None:
    """A num_features set by hand in the predictor's or trainer's section must be the number
    the assembler's entries make (``assembly.config.derive_num_features``, which the launch
    file calls too), else Failure naming both."""
    from nn_one_node.assembly.config import derive_num_features
    from nn_one_node.assembly.msgtypes import default_resolver
    sections = {node: section(document, node) for node in ('assembler', 'predictor', 'trainer')}
    try:
        derive_num_features(sections, default_resolver)
    except ValueError as err:  # assembly.ConfigError
        raise Failure(f'params file: {err}') from None


def _held_under(need: Need, topics: Dict[str, Tuple[str, int]]) -> Optional[str]:
    """The namespace(s) under which the bag holds a relative name it lacks (with its type),
    comma-separated: the --namespace (or, for several robots, --fleet) to give. None for other
    names, or where the bag has it nowhere."""
    if need.written[:1] in ('/', '~', '{'):
        return None
    under = [topic[:-len(need.written) - 1] or '/'
             for topic, (msgtype, _n) in topics.items()
             if topic.endswith('/' + need.written) and msgtype == need.type]
    return ','.join(under) or None


def _namespace_option(under: str) -> str:
    """The option that reads a bag's topics held under ``under`` (``_held_under``)."""
    if ',' in under:
        return (f'--namespace for one robot, or train --fleet {under} to learn from all of '
                'them')
    return f'--namespace {under}'


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


def trainer_section(document: Any) -> Tuple[Dict[str, Any], Optional[int]]:
    """The params file's trainer section and its num_features (None where it gives none)."""
    trainer = section(document, 'trainer')
    n = trainer.get('num_features')
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise Failure(f'trainer num_features must be an integer >= 1, got {n!r}')
    return trainer, n


# -------------------------------------------------------------------------------------- replay
def replay_bag(rec: Recording, source, learner, on_rows, clock: Optional[str], what: str,
               quiet: bool) -> Dict[str, Any]:
    """Replay the source's topics (and the clock) of ``rec`` through ``offline.replay.Replay``,
    with a progress bar; return the run's figures."""
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
            'first_s': (st.first_ns / NS) if st.messages else None,  # the reports' time zero
            'wall_seconds': time.monotonic() - started,
            'clock': clock or 'receive timestamps'}


class _Null:
    def isatty(self) -> bool:
        return False


# -------------------------------------------------------------------------------------- output
def fmt(x: Optional[float]) -> str:
    return 'n/a' if x is None else f'{x:.4f}'


def write_outputs(args, metrics: Dict[str, Any], report) -> None:
    """The report (``--report``) and the figures as JSON (``--json``), where asked for."""
    if args.report:
        try:
            report(metrics, args.report)
        except OSError as err:
            raise Failure(f'cannot write the report {args.report}: {err}') from None
    if args.json:
        try:
            write_json(args.json, metrics)
        except OSError as err:
            raise Failure(f'cannot write {args.json}: {err}') from None


def write_json(path: str, metrics: Dict[str, Any]) -> None:
    """Written to a temporary file, then renamed: a reader never sees half a file."""
    tmp = f'{path}.tmp-{os.getpid()}'
    with open(tmp, 'w', encoding='utf-8') as f:
        json.dump(metrics, f, indent=1, sort_keys=True, allow_nan=False)
        f.write('\n')
    os.replace(tmp, path)
