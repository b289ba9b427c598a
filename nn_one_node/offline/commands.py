"""What the ``nn_one_bag`` commands share: the failure that means bad input (exit code 2), the
progress bar, the sample source and the clock a params file and a bag call for, the replay, and
the writing of the report and the JSON figures."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, Dict, Optional, TextIO, Tuple

from nn_one_node.offline.bagio import Recording
from nn_one_node.offline.params_file import ConfigError, has_node, load_params_file, params_for
from nn_one_node.offline.replay import NS, Replay
from nn_one_node.offline.sources import LabeledSource

PROG = 'nn_one_bag'
EXIT_BAD_INPUT = 2
DEFAULT_LABELED_TOPIC = '/labeled_samples'
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
                 labeled_topic: str):
    """The sample source, with the params file's name for what is wrong (Failure)."""
    if kind == 'assembler':
        from nn_one_node.offline.sources import AssembledSource
        assembler = section(document, 'assembler')
        try:
            return AssembledSource(assembler)
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
