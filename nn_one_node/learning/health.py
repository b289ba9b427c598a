"""What the trainer's ``/diagnostics`` WARN about its learning, in words a robot user can act on,
and the figures behind each. No ROS import; times are explicit (ROS time, in seconds), so every
rule is tested without a clock. ``TrainerCore`` feeds it and asks it (``problems``, ``figures``).

* **The label topic is silent**: no labeled_samples message (kept or refused) for
  ``silence_limit(train_period)`` seconds of ROS time while the trainer is active:
  ``SILENCE_PERIODS`` x train_period, and at least ``SILENCE_MIN_SEC`` (a robot path stops its
  labels while an input is stale, e.g. a driver that publishes only on change; a minute of that
  is no routine pause).
* **Every row is refused**: ``REFUSED_RUN`` rows or whole messages refused in a row, none kept;
  the reasons say what to change ("rows have 6 values, num_features is 4").
* **Worse than the constant guess** (sigmoid): the prequential accuracy over the metrics window
  is below the majority class rate of the same rows by more than ``GUESS_Z`` standard errors,
  once the window holds ``GUESS_MIN_ROWS`` rows, each scored by a model that learned or was given
  (not by the initial weights, which answer 0.5 for everything).
* **No update deploys**: ``UNDEPLOYED_RUN`` updates in a row not deployed, with the last reason
  (also where the trainer's log turns a refusal from INFO to WARN).

>>> h = TrainerHealth(num_features=4, topic='/labeled_samples')
>>> h.problems(now=100.0, active=True, train_period=1.0)   # active from 100 s: listening
[]
>>> h.problems(now=150.0, active=True, train_period=1.0)   # 50 s: within the minute
[]
>>> print(h.problems(now=170.0, active=True, train_period=1.0)[0][:66])
no labeled sample on /labeled_samples since the trainer started 70
>>> for second in range(171, 181):                         # rows of 6 values, not 5
...     h.message_refused('length', 'expected 5 values for one sample, got 6', second, width=6)
>>> first, why = h.problems(now=181.0, active=True, train_period=1.0)[0].split(': ', 1)
>>> first
'every labeled sample refused lately (the last 10, none kept)'
>>> why[:37]
'rows have 6 values, num_features is 4'
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from nn_one_node.learning.screening import MAX_MAGNITUDE, Refusals

SILENCE_PERIODS = 10  # label topic silent for this many train_period ...
SILENCE_MIN_SEC = 60.0  # ... and at least this long (ROS time)
REFUSED_RUN = 10  # rows or whole messages refused in a row, none kept
GUESS_MIN_ROWS = 50  # rows in the metrics window before its accuracy is judged
GUESS_Z = 2.0  # standard errors below the constant guess
UNDEPLOYED_RUN = 20  # updates in a row not deployed

# What to change, by kind of row refused (screening.screen_rows's kinds).
ROW_ADVICE = {
    'non-finite': 'rows hold NaN or infinite values: find the input that gives them',
    'magnitude': f'rows hold values beyond +-{MAX_MAGNITUDE:g}: find the input that gives them',
    'label range': ("labels outside [0, 1] for the sigmoid model: publish 0/1 labels (the "
                    "assembler's label_threshold), or set activation 'linear'"),
}


def claimed_width(values: int, dims: Sequence[Tuple[str, int]]) -> Optional[int]:
    """The values a row has by a labeled_samples message's layout ``dims`` ((label, size) each),
    or by its length ``values`` without one; None when the layout says no row width (the codec's
    reason then stands).

    >>> claimed_width(6, []), claimed_width(18, [('samples', 3), ('features+label', 6)])
    (6, 6)
    """
    if not dims:
        return values
    if len(dims) == 1:
        return dims[0][1] if dims[0][1] == values else None
    if len(dims) == 2 and dims[0][0] not in ('features', 'features+label') \
            and dims[1][0] != 'samples':
        return dims[1][1]
    return None


def silence_limit(train_period: float) -> float:
    """Seconds of silence on the label topic that make a WARN."""
    return max(SILENCE_PERIODS * train_period, SILENCE_MIN_SEC)


def majority_rate(labels: np.ndarray) -> float:
    """The accuracy of the constant guess on ``labels``: the rate of the majority class (a label
    counts as class 1 from 0.5, as the prequential accuracy reads it).

    >>> majority_rate(np.array([0.0, 0.0, 1.0, 0.0]))
    0.75
    """
    ones = float(np.count_nonzero(np.asarray(labels) >= 0.5)) / len(labels)
    return max(ones, 1.0 - ones)


def below_guess(accuracy: float, guess: float, rows: int, z: float = GUESS_Z) -> bool:
    """Whether ``accuracy`` over ``rows`` is below the constant guess's beyond the noise: by
    more than ``z`` standard errors of the difference of two rates over ``rows`` rows.

    >>> below_guess(0.80, 0.90, 500), below_guess(0.88, 0.90, 500)
    (True, False)
    >>> below_guess(0.3, 0.5, 10)   # 10 rows cannot tell
    False
    """
    if rows < 1 or not math.isfinite(accuracy):
        return False
    se = math.sqrt((accuracy * (1 - accuracy) + guess * (1 - guess)) / rows)
    return guess - accuracy > z * se


class TrainerHealth:
    """The bookkeeping behind the learning WARNs of one trainer (see the module's docstring).

    Fed by: ``heard`` (a labeled_samples message arrived), ``rows_refused`` / ``message_refused``
    and ``kept`` (what screening did), ``model_given`` (the first model that learned or was
    given, and the rows scored before it), ``updated`` (an update's outcome). Asked by:
    ``problems`` and ``figures``, with the time and what the trainer knows then.
    """

    def __init__(self, num_features: int, topic: str = 'labeled_samples') -> None:
        self.num_features = num_features
        self.topic = topic
        self.heard_at: Optional[float] = None  # the last labeled_samples message (ROS time)
        self._listening_since: Optional[float] = None  # active since (ROS time)
        self.refused_run = 0  # rows or messages refused since the last row kept
        self._run_reasons: Dict[str, str] = {}  # kind -> what to change, for this run
        self._kinds_seen: Dict[str, int] = {}  # the rows' refusal counts at the last look
        self.undeployed_run = 0  # updates not deployed since the last one deployed
        self.last_undeployed = ''
        self.model_rows: Optional[int] = None  # rows scored before the first real model

    # --------------------------------------------------------------------------------- fed
    def heard(self, now: float) -> None:
        self.heard_at = now

    def kept(self) -> None:
        self.refused_run = 0
        self._run_reasons.clear()

    def rows_refused(self, refusals: Refusals, count: int) -> None:
        """``count`` rows of a message refused by screening, counted by kind in ``refusals``."""
        for kind, n in refusals.by_kind.items():
            if n != self._kinds_seen.get(kind, 0):
                self._kinds_seen[kind] = n
                self._run_reasons[kind] = ROW_ADVICE.get(kind, refusals.last_reason)
        self.refused_run += count

    def message_refused(self, kind: str, reason: str, now: float,
                        width: Optional[int] = None) -> None:
        """A whole message refused (``reason``, the codec's); ``width``: the values a row has
        by its layout (the message's length without one), when known."""
        self.heard(now)
        n = self.num_features
        if width is not None and width != n + 1:
            reason = (f'rows have {width} values, num_features is {n} (a row is {n} features, '
                      f'then the label): set num_features to {width - 1} on the trainer and '
                      f'the predictor, or publish {n + 1} values a row')
        self._run_reasons[f'message {kind}'] = reason
        self.refused_run += 1

    def model_given(self, rows_scored: int) -> None:
        """The model in force learned or was given; ``rows_scored`` were scored before it."""
        if self.model_rows is None:
            self.model_rows = rows_scored

    def updated(self, deployed: bool, reason: str) -> int:
        """An update's outcome; returns the updates not deployed in a row (0 if deployed)."""
        if deployed:
            self.undeployed_run = 0
        else:
            self.undeployed_run += 1
            self.last_undeployed = reason
        return self.undeployed_run

    # ---------------------------------------------------------------------------- asked
    def silence(self, now: float, active: bool) -> Optional[float]:
        """Seconds the label topic has been silent while active (None: not active, or the clock
        stands at zero, as with use_sim_time before /clock ticks). A jump back in time starts
        the count again."""
        if not active or now <= 0.0:
            self._listening_since = None
            return None
        if self.heard_at is not None and now < self.heard_at:
            self.heard_at = None  # heard on a timeline that time jumped back from
        if self._listening_since is None or now < self._listening_since:
            self._listening_since = now
        start = self._listening_since if self.heard_at is None else max(self.heard_at,
                                                                         self._listening_since)
        return now - start

    def problems(self, now: float, active: bool, train_period: float,
                 accuracy: float = math.nan, labels: Optional[np.ndarray] = None,
                 rows_scored: int = 0) -> List[str]:
        """The WARNs now. ``accuracy``: the prequential accuracy over the metrics window;
        ``labels``: that window's labels (None: not known, or not a sigmoid model);
        ``rows_scored``: rows scored in all, to tell which were scored by a real model."""
        found = []
        if self.refused_run >= REFUSED_RUN:
            found.append(f'every labeled sample refused lately (the last {self.refused_run}, '
                         'none kept): ' + '; '.join(self._run_reasons.values()))
        silent = self.silence(now, active)
        limit = silence_limit(train_period)
        if silent is not None and silent >= limit:
            check = (f'`ros2 topic info -v {self.topic}` lists its publishers (and their QoS), '
                     f'`ros2 topic hz {self.topic}` its rate; an assembler publishes one only '
                     'when a label joins a row (its /diagnostics say why not)')
            if self.heard_at is None:
                found.append(f'no labeled sample on {self.topic} since the trainer started '
                             f'{silent:.0f} s ago (WARN after {limit:g} s): nothing to learn '
                             f'from; {check}')
            else:
                found.append(f'no labeled sample on {self.topic} for {silent:.0f} s (WARN '
                             f'after {limit:g} s): its publisher stopped?; {check}')
        if labels is not None and len(labels) >= GUESS_MIN_ROWS and self.model_rows is not None \
                and rows_scored - self.model_rows >= len(labels):
            guess = majority_rate(labels)
            if below_guess(accuracy, guess, len(labels)):
                found.append(
                    f'prequential accuracy {accuracy:.3f} over the last {len(labels)} samples '
                    f'is below the constant guess {guess:.3f} (always the majority class): the '
                    'model predicts worse than none. Check that each label is joined to its '
                    "moment (the assembler's label_delay) and that no feature drifts like a "
                    'clock; ~/reset learns afresh')
        if self.undeployed_run >= UNDEPLOYED_RUN:
            found.append(f'no update deployed in the last {self.undeployed_run} (the model in '
                         f'force stays; ~/train_now answers why): last: {self.last_undeployed}')
        return found

    def figures(self, now: float, labels: Optional[np.ndarray] = None) -> Dict[str, object]:
        """The figures behind the WARNs, for /diagnostics."""
        silent = None if self.heard_at is None else max(0.0, now - self.heard_at)
        return {
            'seconds since last labeled sample': 'never' if silent is None else f'{silent:.1f}',
            'samples refused in a row': self.refused_run,
            'majority class rate': ('-' if labels is None or not len(labels)
                                    else f'{majority_rate(labels):.4f}'),
            'updates not deployed in a row': self.undeployed_run,
        }
