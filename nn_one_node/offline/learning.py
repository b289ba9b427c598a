"""Learning from and evaluating on recorded bags, as the robot does live: the pure core of
``nn_one_bag`` (no rclpy import).

* ``params_for(document, node)``: a node's ``ros__parameters`` from a ROS params file, matched as
  ROS matches them ('/**', '/**/trainer', 'trainer', '/trainer').
* Sample sources turn a bag's messages, in time order, into labeled rows (N features, then the
  label), exactly as the live nodes would:

  - ``AssembledSource``: the live assembler's own code (``assembly.Assembler``, built from the
    params file's ``assembler`` section), its rate ticks and arrival times driven by bag time;
  - ``LabeledSource``: ``labeled_samples`` arrays recorded from the trainer's input, screened
    with the trainer's rules (``screen_rows``), refusals counted by the same kinds.

* ``Replay`` drives a source and a learner through a recording: the clock is the bag's receive
  time (or its ``/clock`` topic, as ``use_sim_time`` would), timers fire at their periods of that
  time, and a backward jump of it clears the assembler as the live node does.
* ``TrainerLearner``: the trainer's policy and parameters (its ``trainer`` section): the
  trainer node's own ``policy.LearningPolicy`` (prequential scoring, change detection, cadence,
  the gate), its clock being bag time.
* ``Scores``: accuracy, log loss, MSE, a calibration table and confusion counts, accumulated in
  O(1) memory however long the bag.

Example: a stream of labeled rows whose ground truth is the scenario's, learned as live::

    >>> import numpy as np
    >>> from nn_one_node.sim.scenario import Scenario
    >>> learner = TrainerLearner({'num_features': 5, 'train_period': 1.0}, 5)
    >>> s = Scenario(seed=3)
    >>> for second in range(30):
    ...     learner.advance(second * 1_000_000_000)
    ...     learner.add(s.labeled_rows(50), second * 1_000_000_000)
    >>> learner.deployed > 20, learner.scores.accuracy() > 0.9
    (True, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple

import numpy as np

from nn_one_node.model import sigmoid
from nn_one_node.learning.screening import Refusals, screen_rows

NS = 1_000_000_000
LOG_EPS = 1e-12  # predictions are clipped into [eps, 1 - eps] for the log loss
CALIBRATION_BINS = 10
MAX_POINTS = 4096  # points kept per report series: the oldest half is thinned when full


class ConfigError(ValueError):
    """A params file, or a part of it, that cannot be used; the text names the entry."""


# ---------------------------------------------------------------------------------- params file
def _matches(key: Any, node: str) -> bool:
    if not isinstance(key, str):
        return False
    key = key.strip()
    return key in ('/**', '**', node, '/' + node, '/**/' + node, '**/' + node)


def params_for(document: Any, node: str) -> Dict[str, Any]:
    """The ``ros__parameters`` that a node named ``node`` (in any namespace) takes from a params
    file, merged in file order ('/**' entries first apply to every node, as in ROS).

    >>> params_for({'/**': {'ros__parameters': {'a': 1}},
    ...             '/**/trainer': {'ros__parameters': {'b': 2.0}},
    ...             'predictor': {'ros__parameters': {'c': 3}}}, 'trainer')
    {'a': 1, 'b': 2.0}
    """
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError('the params file is not a mapping of node names to ros__parameters')
    merged: Dict[str, Any] = {}
    for key, value in document.items():
        if _matches(key, node):
            params = value.get('ros__parameters') if isinstance(value, dict) else None
            if not isinstance(params, dict):
                raise ConfigError(f'params file entry {key!r} has no ros__parameters mapping')
            merged.update(params)
    return merged


def has_node(document: Any, node: str) -> bool:
    """True if the file names ``node`` itself (not only through '/**')."""
    return isinstance(document, dict) and any(
        _matches(k, node) and k.strip() not in ('/**', '**') for k in document)


def load_params_file(path: str) -> Any:
    """The parsed YAML of a params file; ConfigError naming the file if it cannot be read."""
    import yaml
    try:
        with open(path, 'rb') as f:
            return yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(f'params file {path}: no such file') from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f'params file {path} cannot be read: {err}') from None
    except yaml.YAMLError as err:
        mark = getattr(err, 'problem_mark', None)
        where = f' at line {mark.line + 1}' if mark is not None else ''
        raise ConfigError(f'params file {path} is not valid YAML{where}') from None


# ------------------------------------------------------------------------------------- refusals
# --------------------------------------------------------------------------------------- scores
class Scores:
    """Accuracy (threshold 0.5 on prediction and label), log loss, MSE, calibration and
    confusion counts of predictions ``p`` against labels ``y`` (soft labels allowed), in O(1)
    memory.

    >>> s = Scores()
    >>> s.add(np.array([0.9, 0.2, 0.6]), np.array([1.0, 0.0, 0.0]))
    >>> s.count, round(s.accuracy(), 3), s.confusion()
    (3, 0.667, {'true_positive': 1, 'false_positive': 1, 'true_negative': 1, 'false_negative': 0})
    """

    def __init__(self, bins: int = CALIBRATION_BINS) -> None:
        self.bins = bins
        self.count = 0
        self.correct = 0
        self.sq_err = 0.0
        self.log_loss_sum = 0.0
        self.tp = self.fp = self.tn = self.fn = 0
        self.bin_count = np.zeros(bins, dtype=np.int64)
        self.bin_p = np.zeros(bins)
        self.bin_y = np.zeros(bins)

    def add(self, p: np.ndarray, y: np.ndarray) -> None:
        m = int(p.shape[0])
        if not m:
            return
        self.count += m
        d = p - y
        self.sq_err += float(np.dot(d, d))
        q = np.clip(p, LOG_EPS, 1.0 - LOG_EPS)
        self.log_loss_sum -= float(np.dot(y, np.log(q)) + np.dot(1.0 - y, np.log1p(-q)))
        pred = p >= 0.5
        true = y >= 0.5
        tp = int(np.count_nonzero(pred & true))
        fp = int(np.count_nonzero(pred & ~true))
        pos = int(np.count_nonzero(true))
        self.tp += tp
        self.fp += fp
        self.fn += pos - tp
        self.tn += m - pos - fp
        self.correct += tp + (m - pos - fp)
        idx = np.clip((np.clip(p, 0.0, 1.0) * self.bins).astype(np.intp), 0, self.bins - 1)
        self.bin_count += np.bincount(idx, minlength=self.bins)
        self.bin_p += np.bincount(idx, weights=p, minlength=self.bins)
        self.bin_y += np.bincount(idx, weights=y, minlength=self.bins)

    def accuracy(self) -> float:
        return self.correct / self.count if self.count else math.nan

    def mse(self) -> float:
        return self.sq_err / self.count if self.count else math.nan

    def log_loss(self) -> float:
        return self.log_loss_sum / self.count if self.count else math.nan

    def confusion(self) -> Dict[str, int]:
        return {'true_positive': self.tp, 'false_positive': self.fp,
                'true_negative': self.tn, 'false_negative': self.fn}

    def calibration(self) -> List[Dict[str, Any]]:
        """One row per bin of predicted probability: its range, count, mean prediction and
        observed label rate (None where the bin is empty)."""
        out = []
        for i in range(self.bins):
            c = int(self.bin_count[i])
            out.append({'low': i / self.bins, 'high': (i + 1) / self.bins, 'count': c,
                        'mean_predicted': float(self.bin_p[i] / c) if c else None,
                        'observed_rate': float(self.bin_y[i] / c) if c else None})
        return out

    def summary(self) -> Dict[str, Any]:
        return {'samples': self.count, 'accuracy': _num(self.accuracy()),
                'log_loss': _num(self.log_loss()), 'mse': _num(self.mse()),
                'confusion': self.confusion(), 'calibration': self.calibration()}


def _num(x: float) -> Optional[float]:
    return float(x) if math.isfinite(x) else None


class Series:
    """Points (t, values...) for a report, at most ``MAX_POINTS`` kept: when full, every other
    point is dropped and only every 2nd (then 4th ...) new point kept, so memory stays bounded
    and the series still spans the whole bag."""

    def __init__(self, names: Iterable[str], limit: int = MAX_POINTS) -> None:
        self.names = list(names)
        self.points: List[Tuple[Any, ...]] = []
        self._limit = limit
        self._stride = 1
        self._seen = 0

    def add(self, *values: Any) -> None:
        if self._seen % self._stride == 0:
            self.points.append(values)
            if len(self.points) >= self._limit:
                self.points = self.points[::2]
                self._stride *= 2
        self._seen += 1

    def as_dict(self) -> Dict[str, List[Any]]:
        cols = list(zip(*self.points)) if self.points else [[] for _ in self.names]
        return {name: list(col) for name, col in zip(self.names, cols)}


# -------------------------------------------------------------------------------- the trainer
def _predict(X: np.ndarray, w: np.ndarray, b: float, activation: str) -> np.ndarray:
    z = X @ w + b
    return sigmoid(z) if activation == 'sigmoid' else z


def trainer_values(section: Mapping[str, Any], num_features: int) -> Dict[str, Any]:
    """The trainer's parameter values from its params-file section: its typed table's defaults,
    overridden by the file, checked by the table's own checks (ConfigError naming the entry)."""
    from nn_one_node.ros.params import NUM_FEATURES, check_all
    from nn_one_node.nodes.trainer import trainer_params  # the node's table (imports rclpy)
    n = section.get('num_features', num_features)
    if n != num_features:
        raise ConfigError(f'trainer num_features is {n!r} but the samples have {num_features} '
                          'features')
    specs = [NUM_FEATURES] + trainer_params(num_features)
    values = {s.name: s.default for s in specs}
    known = {s.name: s for s in specs}
    for name, value in section.items():
        spec = known.get(name)
        if spec is None:
            continue  # QoS overrides, use_sim_time ...: not the policy's
        if isinstance(spec.default, float) and isinstance(value, int) \
                and not isinstance(value, bool):
            raise ConfigError(f'trainer {name} must be a double (write {value}.0, as ROS '
                              f'requires), got {value!r}')
        if type(value) is not type(spec.default) and not (
                isinstance(spec.default, list) and isinstance(value, list)):
            raise ConfigError(f'trainer {name} must be of type {type(spec.default).__name__}, '
                              f'got {value!r}')
        lo_hi = spec.int_range or spec.float_range
        if lo_hi is not None and not (lo_hi[0] <= value <= lo_hi[1]):
            raise ConfigError(f'trainer {name} must lie in [{lo_hi[0]}, {lo_hi[1]}], '
                              f'got {value!r}')
        values[name] = value
    values['num_features'] = num_features
    reasons = check_all(specs, values, [s.name for s in specs])
    if reasons:
        raise ConfigError('trainer parameters: ' + '; '.join(reasons))
    return values


class TrainerLearner:
    """The trainer's learning, offline: ``policy.LearningPolicy`` (the code the trainer node
    runs) with the params file's ``trainer`` section, on bag time.

    Driven as the node drives it: ``add(rows, now_ns)`` scores the rows with the model in force,
    then keeps them (prequential), and updates when ``due_by_rows`` (fast start,
    ``update_every``, a detected change); ``advance(now_ns)`` is the node's ``train_period``
    timer, at multiples of the period of bag time (an update when ``can_update``).
    ``weights``, ``bias``, ``activation`` are the model in force; ``history`` holds the
    report's series, one point per update.
    """

    policy = "policy.LearningPolicy (the trainer node's)"

    def __init__(self, section: Mapping[str, Any], num_features: int) -> None:
        from nn_one_node.learning.policy import LearningPolicy, PolicyConfig, initial_weights
        self.values = v = trainer_values(section, num_features)
        self.num_features = n = num_features
        # The policy's own parameters that the trainer's table does not list (yet) are taken
        # from the section as they are; PolicyConfig checks them.
        from dataclasses import fields as _fields
        extra = {f.name: section[f.name] for f in _fields(PolicyConfig)
                 if f.name in section and f.name not in v}
        try:
            self.config = PolicyConfig.from_params({**v, **extra})
        except (TypeError, ValueError) as err:
            raise ConfigError(f'trainer parameters: {err}') from None
        weights = np.asarray(v['weights'], dtype=np.float64)
        if not np.any(weights) and v['seed'] >= 0:
            weights = initial_weights(n, v['seed'])
        self.pol = LearningPolicy(n, self.config, weights=weights, bias=float(v['bias']))
        self.activation = self.pol.activation
        self.period_ns = int(float(v['train_period']) * NS)
        self._next_ns: Optional[int] = None
        self.failed = 0
        self.last_reason = ''
        self.changes: List[int] = []  # bag times (ns) at which a change was detected
        self.scores = Scores()
        self.history = Series(['t', 'accuracy', 'log_loss', 'mse', 'samples', 'loss',
                               'deployed', 'bias'] + [f'w{i}' for i in range(n)])

    @property
    def weights(self) -> np.ndarray:
        return self.pol.weights

    @property
    def bias(self) -> float:
        return self.pol.bias

    @property
    def updates(self) -> int:
        return self.pol.updates + self.failed

    @property
    def deployed(self) -> int:
        return self.pol.deployed

    @property
    def buffer(self):
        return self.pol.buffer

    def add(self, rows: np.ndarray, now_ns: int) -> None:
        n = self.num_features
        pol = self.pol
        X, y = rows[:, :n], rows[:, n]
        self.scores.add(_predict(X, pol._model[0], pol._model[1], self.activation), y)
        changes = pol.changes
        now = now_ns * 1e-9
        pol.add(X, y, now)
        if pol.changes != changes:
            self.changes.append(now_ns)
        if pol.due_by_rows():  # as the node's _learn: the rows may make an update due
            self._update(now_ns)

    def advance(self, now_ns: int) -> None:
        if self._next_ns is None:
            self._next_ns = (now_ns // self.period_ns + 1) * self.period_ns
        while self._next_ns <= now_ns:
            t = self._next_ns
            if self.pol.can_update:  # as the node's train_period timer
                self._update(t)
            self._next_ns = t + self.period_ns

    def jumped_back(self, now_ns: int) -> None:
        """The clock went back: the timer restarts one period after the new time (rcl)."""
        self._next_ns = now_ns + self.period_ns

    def _update(self, t_ns: int) -> None:
        try:
            result = self.pol.update(t_ns * 1e-9)
        except ValueError as err:  # as the node: counted, the model in force stays
            self.failed += 1
            self.last_reason = f'update failed: {err}'
            return
        self.last_reason = result.reason
        m = self.pol.metrics()
        self.history.add(t_ns / NS, _num(m['accuracy']), _num(m['log_loss']), _num(m['mse']),
                         m['samples'], _num(result.loss), bool(result.deployed), self.bias,
                         *self.weights.tolist())

    def summary(self) -> Dict[str, Any]:
        m = self.pol.metrics()
        return {'policy': self.policy, 'updates': self.updates, 'updates_deployed': self.deployed,
                'updates_refused': self.pol.refused + self.failed,
                'last_update': self.last_reason, 'samples_held': self.buffer.count,
                'changes_detected': len(self.changes),
                'change_times': [t / NS for t in self.changes],
                'windowed': {k: (_num(v) if isinstance(v, float) else v)
                             for k, v in m.items()}}


# -------------------------------------------------------------------------------------- sources
class LabeledSource:
    """labeled_samples arrays (std_msgs/Float64MultiArray, rows of N features and the label) as
    the trainer takes them: the layout read by ``conversions.matrix_from_msg``, the rows screened
    by ``screen_rows``. Refused messages and rows are counted by kind."""

    TYPE = 'std_msgs/msg/Float64MultiArray'

    def __init__(self, topic: str, num_features: int, activation: str) -> None:
        from nn_one_node.offline.bagio import normalize_topic
        self.topic = normalize_topic(topic)
        self.num_features = num_features
        self.activation = activation
        self.inputs = {self.topic: self.TYPE}
        self.feature_names = [f'x{i}' for i in range(num_features)]
        self.messages_refused = Refusals()
        self.rows_refused = Refusals()
        self.rows_received = 0

    def on_message(self, topic: str, msg: Any, now_ns: int) -> List[np.ndarray]:
        from nn_one_node.ros.codecs import MessageError, matrix_from_msg
        try:
            rows = matrix_from_msg(msg, self.num_features + 1)
        except MessageError as err:
            self.messages_refused.refuse(err.kind, str(err))
            return []
        self.rows_received += rows.shape[0]
        kept = screen_rows(rows, self.num_features, self.activation, self.rows_refused)
        return [kept] if kept.shape[0] else []

    def advance(self, now_ns: int) -> List[np.ndarray]:
        return []  # no timers: rows come as they were recorded

    def jumped_back(self, now_ns: int) -> None:
        pass  # the trainer keeps its buffer across a jump

    def refusal_summary(self) -> str:
        parts = []
        for what, log in (('message(s)', self.messages_refused), ('row(s)', self.rows_refused)):
            if log.total:
                parts.append(f'{log.total} {what} refused (last: {log.last_reason})')
        return '; '.join(parts)

    def counters(self) -> Dict[str, Any]:
        return {'rows received': self.rows_received,
                'rows refused': self.rows_refused.total,
                'messages refused': self.messages_refused.total,
                **{f'rows refused: {k}': c for k, c in sorted(self.rows_refused.by_kind.items())},
                **{f'messages refused: {k}': c
                   for k, c in sorted(self.messages_refused.by_kind.items())}}


class AssembledSource:
    """The live assembler's own logic (``assembly.Assembler``) from its params-file section,
    driven as the node drives it: its rate timer ticks on bag time (``tick`` then ``flush`` at
    each multiple of ``1 / rate``, the timer's first overdue call at the first time seen, and
    one period after a jump back, as rcl's timer does), messages given with their bag time as
    arrival time (``header.stamp`` where a message has one: the assembler reads it). Refusals,
    stale rows and unmatched labels are counted by the assembler itself (``counters``)."""

    def __init__(self, section: Mapping[str, Any], resolve=None) -> None:
        from nn_one_node.assembly.assembler import (Assembler, AssemblerConfig,
                                                              default_resolver)
        self.config = cfg = AssemblerConfig.from_params(section)
        self.asm = Assembler(cfg, resolve=resolve or default_resolver)
        self.on_message_s = self.asm.on_message  # (topic, msg, seconds), as the node calls it
        self.inputs = dict(self.asm.inputs)
        self.feature_names = list(self.asm.feature_names)
        self.num_features = self.asm.num_features
        if self.asm.label_entry is None:
            raise ConfigError('the assembler section has no label: it builds no labeled '
                              'samples to train or evaluate on (set its label entry)')
        # rclpy's create_timer(1.0 / rate): the period in integer nanoseconds
        self.period_ns = int(float(1.0 / cfg.rate) * NS)
        self._next_ns: Optional[int] = None
        self.rows_built = 0
        self.feature_rows: Optional[Callable[[np.ndarray, float], None]] = None

    def advance(self, now_ns: int) -> List[np.ndarray]:
        """Run the ticks due at or before ``now_ns``; return the labeled rows they settle."""
        out: List[np.ndarray] = []
        period = self.period_ns
        if self._next_ns is None:
            # The timer of a node started before the bag is overdue at the first time: it
            # fires once, then keeps its phase (multiples of the period), as rcl's does.
            self._tick(now_ns, out)
            self._next_ns = (now_ns // period + 1) * period
        while self._next_ns <= now_ns:
            t = self._next_ns
            self._tick(t, out)
            self._next_ns = t + period
        return out

    def _tick(self, t_ns: int, out: List[np.ndarray]) -> None:
        now = t_ns * 1e-9  # as the node: clock.now().nanoseconds * 1e-9
        row = self.asm.tick(now)
        if row is not None:
            self.rows_built += 1
            if self.feature_rows is not None:
                self.feature_rows(row, now)
        out.extend(self.asm.flush(now))

    def jumped_back(self, now_ns: int) -> None:
        # The assembler clears itself on the earlier time (it is the node's own rule); the
        # timer restarts one period after the new time (rcl's rule for a jump back).
        self._next_ns = now_ns + self.period_ns

    def on_message(self, topic: str, msg: Any, now_ns: int) -> List[np.ndarray]:
        return self.asm.on_message(topic, msg, now_ns * 1e-9)

    def refusal_summary(self) -> str:
        c = self.asm.counters()
        parts = []
        if c['refused total']:
            parts.append(f'{c["refused total"]} message(s) refused ({c["refused"]}; last: '
                         f'{c["last refusal"]})')
        if c['rows stale']:
            parts.append(f'{c["rows stale"]} of {c["ticks"]} rows stale (by input: '
                         f'{c["stale"]})')
        if c['labels unmatched']:
            parts.append(f'{c["labels unmatched"]} label(s) unmatched ({c["unmatched"]})')
        return '; '.join(parts)

    def counters(self) -> Dict[str, Any]:
        c = self.asm.counters()
        c.pop('last arrival', None)
        return c


# --------------------------------------------------------------------------------------- replay
@dataclass
class ReplayStats:
    messages: int = 0
    rows: int = 0
    jumps_back: int = 0
    first_ns: Optional[int] = None
    last_ns: Optional[int] = None
    extra: Dict[str, Any] = field(default_factory=dict)


class Replay:
    """Plays ``(topic, t_ns, msg)`` in bag order to a source (and a learner), on bag time.

    The clock is each message's receive time, or, with ``clock_topic`` (a recorded /clock, as
    the nodes see it with use_sim_time), the newest /clock value. Before each message the
    source's rate ticks and the learner's update ticks that fall at or before its time are run;
    then the message is given to the source with its time as arrival time; the labeled rows it
    completes go to ``on_rows(rows, t_ns)``. A clock that goes back clears the source and
    restarts the timers.
    """

    def __init__(self, source, on_rows: Callable[[np.ndarray, int], None],
                 learner=None, clock_topic: Optional[str] = None) -> None:
        self.source = source
        self.learner = learner
        self.on_rows = on_rows
        self.clock_topic = clock_topic
        self.now_ns: Optional[int] = None
        self.stats = ReplayStats()

    def _set_clock(self, t_ns: int) -> None:
        if self.now_ns is not None and t_ns < self.now_ns:
            self.stats.jumps_back += 1
            self.source.jumped_back(t_ns)
            if self.learner is not None:
                self.learner.jumped_back(t_ns)
        self.now_ns = t_ns
        for rows in self.source.advance(t_ns):
            self._rows(rows, t_ns)
        if self.learner is not None:
            self.learner.advance(t_ns)

    def _rows(self, rows: np.ndarray, t_ns: int) -> None:
        if rows.ndim == 1:
            rows = rows.reshape(1, -1)
        self.stats.rows += rows.shape[0]
        self.on_rows(rows, t_ns)

    def feed(self, topic: str, t_ns: int, msg: Any) -> None:
        st = self.stats
        st.messages += 1
        if st.first_ns is None:
            st.first_ns = t_ns
        st.last_ns = t_ns
        if self.clock_topic is not None:
            if topic == self.clock_topic:
                self._set_clock(int(msg.clock.sec) * NS + int(msg.clock.nanosec))
                return
            now = self.now_ns if self.now_ns is not None else 0  # before /clock: time 0
        else:
            self._set_clock(t_ns)
            now = t_ns
        for rows in self.source.on_message(topic, msg, now):
            self._rows(rows, now)

    def _next_due(self) -> float:
        """The earliest bag time at which a timer (the source's or the learner's) is due."""
        due = getattr(self.source, '_next_ns', None)
        due = math.inf if due is None else due
        if self.learner is not None and self.learner._next_ns is not None:
            due = min(due, self.learner._next_ns)
        return due

    def run(self, stream: Iterable[Tuple[str, int, Any]],
            progress: Optional[Callable[[int], None]] = None,
            every: int = 4096) -> ReplayStats:
        """Play the whole stream; ``progress(messages so far)`` every ``every`` messages.

        On receive time (no clock topic) this is the lean loop: the clock and the timers are
        only touched when a timer is due (or time goes back), so a message costs the source's
        ``on_message`` and little more."""
        st = self.stats
        n = 0
        if self.clock_topic is not None:
            feed = self.feed
            for topic, t_ns, msg in stream:
                feed(topic, t_ns, msg)
                n += 1
                if progress is not None and not n % every:
                    progress(n)
            return st
        on_message = self.source.on_message
        direct = getattr(self.source, 'on_message_s', None)  # takes seconds: one call less
        rows_out = self._rows
        due = -math.inf
        last = None
        first = None
        try:
            for topic, t_ns, msg in stream:
                if t_ns >= due or t_ns < last:
                    if first is None:
                        first = t_ns
                    self._set_clock(t_ns)
                    due = self._next_due()
                last = t_ns
                rows = (direct(topic, msg, t_ns * 1e-9) if direct is not None
                        else on_message(topic, msg, t_ns))
                if rows:
                    for r in rows:
                        rows_out(r, t_ns)
                n += 1
                if progress is not None and not n % every:
                    progress(n)
        finally:
            st.messages += n
            if n:
                st.first_ns = first if st.first_ns is None else st.first_ns
                st.last_ns = last
        return st
