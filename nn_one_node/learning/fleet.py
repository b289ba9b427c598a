"""The fleet: one trainer, many robots. The robots it knows, up or gone, what each taught and
serves, and the robot whose accuracy is far below the rest. No ROS import: the ROS side
(``nn_one_node.ros.fleet``) looks at the graph and hands ``Fleet.observe`` what it saw.

* **Which robots.** The trainer's ``fleet`` parameter lists robot namespaces or patterns:
  ``/r1``, ``/r*``, ``/warehouse/amr_?`` (fnmatch on each name of the namespace, so ``*`` does
  not cross a ``/``: ``/r*`` matches ``/r1`` and not ``/r1/arm``); a relative one is taken under
  the trainer's namespace. A robot is a namespace that matches and has, in the graph, a
  publisher of ``<ns>/labeled_samples`` or the predictor node ``<ns>/<predictor_node>``.
* **Up and gone.** A robot is up while either is in the graph, gone once neither is (a clean
  exit leaves the graph at once; a crash or a network loss when DDS's lease runs out). A gone
  robot is reported gone (its counts kept; ``Deployment.lost``: it holds none of the trainer's
  models) and is forgotten after ``FORGET_AFTER`` seconds gone; one that comes back before
  that is the same robot again, one that comes back later is a new one. Its rows stay in the
  model either way.
* **One model, every robot.** Each robot has its own ``deployment.Deployment`` over its own
  link: each is non-blocking and retried on its own, so a robot gone, slow or refusing never
  delays the others. ``Fleet`` offers ``Deployment``'s interface (``new_model``, ``poll``,
  ``version``, ``state`` ...) so that ``TrainerCore`` drives the fleet as it drives one
  predictor; a robot that joins gets the model in force, at the fleet's version.
* **Per robot.** The rows each sent, refused and taught, scored by the model in force before
  they were learned (``metrics.PrequentialMetrics``, once a model is in force), and the version
  its predictor confirmed. A robot's accuracy far below that of the rest of the fleet (its rows
  against every other robot's: two rates, ``below_fleet``) is WARNed, naming the robot.

>>> from nn_one_node.learning.link import Answered  # a call answered at once
>>> class Link:                                   # a predictor that answers at once
...     def __init__(self, name): self.name, self.model = name, None
...     def deploy_ready(self): return True
...     def deploy(self, model, ranges): self.model = model; return Answered((True, ''))
...     def read_ready(self): return True
...     def read(self): return Answered(self.model)
>>> class Log:
...     def info(self, msg, **_): print(msg)
...     def warning(self, msg, **_): print('WARN', msg)
...     def debug(self, msg, **_): pass
>>> t = [0.0]
>>> fleet = Fleet(['/r*'], 'predictor', Log(), clock=lambda: t[0])
>>> links = {}
>>> connect = lambda ns: links.setdefault(ns, Link(ns + '/predictor'))
>>> fleet.observe({'/r1': (True, True), '/other': (True, True)}, connect, print)
robot /r1 joined (labeled_samples publishing, predictor up)
>>> fleet.new_model([1.0, -1.0], 0.0, 'sigmoid'); fleet.poll()
1
>>> links['/r1'].model
([1.0, -1.0], 0.0, 'sigmoid')
>>> fleet.observe({'/r1': (True, True), '/r2': (False, True)}, connect, print); fleet.poll()
robot /r2 joined (predictor up)
>>> links['/r2'].model, fleet.state()                 # the model in force, at its version
(([1.0, -1.0], 0.0, 'sigmoid'), 'version 1: served by 2 of 2 robot(s) up')
>>> t[0] = 5.0; fleet.observe({'/r1': (True, True)}, connect, print)  # doctest: +ELLIPSIS
WARN robot /r2 is gone (no labeled_samples publisher, no predictor in the graph): ...
>>> t[0] = 700.0; fleet.observe({'/r1': (True, True)}, connect, print)
robot /r2 forgotten: gone for 695 s
/r2

The rows of a robot whose sensor broke (labels unrelated to features) against the others':

>>> import numpy as np
>>> rng = np.random.default_rng(3)
>>> fleet.observe({'/r1': (True, True), '/r2': (True, True)}, connect, lambda ns: None)
robot /r2 joined (labeled_samples publishing, predictor up)
>>> X = rng.normal(size=(300, 2)); good = (X @ [1.0, -1.0] > 0).astype(float)
>>> from nn_one_node.model import forward
>>> scores = forward(X, np.array([1.0, -1.0]), 0.0, 'sigmoid')  # as the policy scored them
>>> fleet.learned('/r1', scores, good)
>>> fleet.learned('/r2', scores, rng.integers(0, 2, 300).astype(float))
>>> [p[:56] for p in fleet.robot_problems(fleet.robots['/r2'])]
['robot /r2: accuracy 0.54 over 300 samples against the fl']
>>> fleet.robot_problems(fleet.robots['/r1'])
[]
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from nn_one_node.learning.deployment import Deployment
from nn_one_node.learning.link import Logger, PredictorLink
from nn_one_node.learning.metrics import PrequentialMetrics
from nn_one_node.names import namespace_matches as matches
from nn_one_node.names import pattern_problem, resolve_pattern as resolve

SAMPLES_TOPIC = 'labeled_samples'  # each robot's, under its namespace
POLL_PERIOD = 0.5  # seconds (steady) between two looks at the ROS graph
SYNC_PERIOD = 0.1  # ... and between two polls of the deployments while a robot up lacks the model
FORGET_AFTER = 600.0  # seconds a robot stays reported gone before it is forgotten
READS_PER_SEC = 5.0  # read-backs of the served models, the whole fleet, at most (a second)
# robots' /diagnostics statuses a second, the whole fleet, at most (a changed one goes out at once)
STATUSES_PER_SEC = 10.0
FLEET_MIN_ROWS = 100  # rows scored on a robot, and on the rest, before its accuracy is judged
FLEET_Z = 3.0  # standard errors of the difference of the two rates ...
FLEET_MARGIN = 0.1  # ... and at least this far below: a real gap, not a robot's other room

def check_fleet(value: Sequence[str], values: Mapping[str, Any]) -> Optional[str]:
    """The ``fleet`` parameter's check (``config.trainer_params``): every entry a pattern, and a
    predictor_node each robot can have under its namespace."""
    for pattern in value:
        reason = pattern_problem(pattern)
        if reason:
            return f'entry {reason}'
    if value and str(values.get('predictor_node', '')).startswith('/'):
        return (f"needs a relative predictor_node (each robot's, under its namespace), got "
                f"{values['predictor_node']!r}")
    return None


def below_fleet(accuracy: float, rows: int, rest: float, rest_rows: int,
                z: float = FLEET_Z, margin: float = FLEET_MARGIN) -> bool:
    """Whether a robot's ``accuracy`` over ``rows`` is below the rest of the fleet's ``rest``
    over ``rest_rows`` beyond the noise (``z`` standard errors of the difference of two rates,
    as ``health.below_guess``) and by more than ``margin``; not before ``FLEET_MIN_ROWS`` each.

    >>> below_fleet(0.52, 200, 0.91, 400), below_fleet(0.85, 200, 0.91, 400)
    (True, False)
    >>> below_fleet(0.3, 50, 0.9, 400)   # 50 rows cannot tell
    False
    """
    if min(rows, rest_rows) < FLEET_MIN_ROWS or not (math.isfinite(accuracy)
                                                     and math.isfinite(rest)):
        return False
    se = math.sqrt(accuracy * (1 - accuracy) / rows + rest * (1 - rest) / rest_rows)
    return rest - accuracy > max(margin, z * se)


class Robot:
    """One robot of the fleet: its deployment, its rows, its place in the graph."""

    def __init__(self, namespace: str, deployment: Deployment, metrics: PrequentialMetrics,
                 now: float) -> None:
        self.namespace = namespace
        self.deployment = deployment
        self.metrics = metrics
        self.received = 0  # rows in its labeled_samples messages
        self.refused = 0  # rows refused by screening
        self.messages_refused = 0  # whole messages refused (their layout)
        self.learned = 0  # rows kept and learned
        self.publishing = False  # a labeled_samples publisher in the graph
        self.predictor_up = False  # its predictor node in the graph
        self.seen_at = now  # the last look that found it (clock)
        self.gone_since: Optional[float] = None
        self.joins = 1  # times it appeared (1 + the times it came back)

    @property
    def up(self) -> bool:
        return self.gone_since is None

    def sighted(self, found: Tuple[bool, bool]) -> str:
        self.publishing, self.predictor_up = found
        return ', '.join(w for w, on in zip(('labeled_samples publishing', 'predictor up'),
                                            found) if on)


class Fleet:
    """The robots (``robots``, by namespace) and their deployments, as one ``Deployment``.

    Parameters: ``patterns`` (absolute, ``resolve``), ``predictor_node`` (the relative name of
    each robot's predictor), ``logger``, ``clock`` (monotonic seconds), and what each robot's
    ``Deployment`` and ``PrequentialMetrics`` take (``deploy_timeout``, ``check_period``,
    ``metrics_window``, ``probabilities``: a sigmoid model, whose accuracy means something).
    """

    link = None  # no one link: each robot has its own (see Robot.deployment)
    linked = True
    name = 'the fleet'

    def __init__(self, patterns: Sequence[str], predictor_node: str, logger: Logger,
                 clock: Callable[[], float] = time.monotonic, deploy_timeout: float = 2.0,
                 check_period: float = 1.0, metrics_window: int = 500,
                 probabilities: bool = True, throttle: float = 5.0) -> None:
        self.patterns = list(patterns)
        self._wanted: Dict[str, bool] = {}
        self.predictor_node = predictor_node
        self.robots: Dict[str, Robot] = {}
        self.version = 0
        self._model: Optional[Tuple[List[float], float, str]] = None
        self._ranges: Any = None
        self._log = logger
        self._clock = clock
        self._throttle = throttle
        self._timeout, self._period = deploy_timeout, check_period
        self._window, self._probabilities = metrics_window, probabilities

    @classmethod
    def from_values(cls, values: Mapping[str, Any], namespace: str, logger: Logger) -> 'Fleet':
        """The fleet of the trainer's parameter ``values``, for a trainer in ``namespace``."""
        return cls([resolve(p, namespace) for p in values['fleet']], values['predictor_node'],
                   logger, deploy_timeout=values['deploy_timeout'],
                   check_period=values['train_period'], metrics_window=values['metrics_window'],
                   probabilities=values['activation'] == 'sigmoid')

    def configure(self, values: Mapping[str, Any]) -> None:
        """New trainer parameters: another metrics window or activation restarts each robot's
        metrics (as the policy's own)."""
        window, prob = values['metrics_window'], values['activation'] == 'sigmoid'
        if (window, prob) != (self._window, self._probabilities):
            self._window, self._probabilities = window, prob
            for robot in self.robots.values():
                robot.metrics = PrequentialMetrics(window, prob)

    # ------------------------------------------------------------------------ the registry
    def wants(self, namespace: str) -> bool:
        known = self._wanted.get(namespace)
        if known is None:  # the patterns are set at start: each namespace is matched once
            known = self._wanted[namespace] = matches(namespace, self.patterns)
        return known

    def observe(self, seen: Mapping[str, Tuple[bool, bool]],
                connect: Callable[[str], Optional[PredictorLink]],
                forget: Callable[[str], Any]) -> None:
        """A look at the graph: ``seen`` maps namespaces to (a labeled_samples publisher, the
        predictor node) found. A new robot that matches joins (``connect(ns)`` makes its
        subscription and returns its predictor's link, or None); a robot not found is gone; one
        gone for ``FORGET_AFTER`` is forgotten (``forget(ns)`` releases what connect made)."""
        now = self._clock()
        for ns, robot in list(self.robots.items()):
            found = seen.get(ns, (False, False))
            if any(found):
                what = robot.sighted(found)
                if not robot.up:
                    robot.gone_since = None
                    robot.joins += 1
                    self._log.info(f'robot {ns} is back after {now - robot.seen_at:.0f} s '
                                   f'({what})')
                robot.seen_at = now
            elif robot.up:
                robot.gone_since = now
                robot.publishing = robot.predictor_up = False
                robot.deployment.lost()
                self._log.warning(f'robot {ns} is gone (no labeled_samples publisher, no '
                                  'predictor in the graph): reported gone, forgotten after '
                                  f'{FORGET_AFTER:.0f} s unless it comes back')
            elif now - robot.gone_since > FORGET_AFTER:
                del self.robots[ns]
                self._spread_reads()
                self._log.info(f'robot {ns} forgotten: gone for {now - robot.gone_since:.0f} s')
                forget(ns)
        for ns, found in seen.items():
            if ns not in self.robots and any(found) and self.wants(ns):
                self._join(ns, found, connect(ns), now)

    def _join(self, ns: str, found: Tuple[bool, bool], link: Optional[PredictorLink],
              now: float) -> None:
        dep = Deployment(link, self._log, clock=self._clock, deploy_timeout=self._timeout,
                         check_period=self._period, throttle=self._throttle)
        if self._model is not None:  # the model in force, at the fleet's version
            dep.version = self.version - 1
            dep.new_model(*self._model, ranges=self._ranges)
        robot = Robot(ns, dep, PrequentialMetrics(self._window, self._probabilities), now)
        self.robots[ns] = robot
        self._spread_reads()
        self._log.info(f'robot {ns} joined ({robot.sighted(found)})')

    # ---------------------------------------------------------------- a Deployment's interface
    def new_model(self, weights, bias: float, activation: str, ranges=None) -> int:
        if hasattr(weights, 'tolist'):
            weights = weights.tolist()
        self._model = (list(map(float, weights)), float(bias), str(activation))
        self._ranges = ranges
        self.version += 1
        for robot in self.robots.values():
            robot.deployment.new_model(*self._model, ranges=ranges)
        return self.version

    def poll(self) -> None:
        """Each robot up brought to the model in force (never blocks)."""
        for robot in list(self.robots.values()):
            if robot.up:
                robot.deployment.poll()

    def hold(self) -> None:
        for robot in self.robots.values():
            robot.deployment.hold()

    @property
    def deploy_timeout(self) -> float:
        return self._timeout

    @deploy_timeout.setter
    def deploy_timeout(self, seconds: float) -> None:
        self._timeout = seconds
        for robot in self.robots.values():
            robot.deployment.deploy_timeout = seconds

    @property
    def check_period(self) -> float:
        return self._period

    @check_period.setter
    def check_period(self, seconds: float) -> None:
        self._period = seconds
        self._spread_reads()

    def _spread_reads(self) -> None:
        """Each robot's read-back period: ``check_period`` (the trainer's train_period), longer
        in a fleet of more than ``READS_PER_SEC`` x that many robots, so that the read-backs of
        the whole fleet stay at most ``READS_PER_SEC`` a second (each costs the trainer a
        request and an answer). Set anew whenever a robot joins or is forgotten."""
        each = max(self._period, len(self.robots) / READS_PER_SEC)
        for robot in self.robots.values():
            robot.deployment.check_period = each

    def _up(self) -> List[Robot]:
        return [r for r in self.robots.values() if r.up]

    @property
    def in_sync(self) -> bool:
        """Every robot up serves the model in force (and one is up)."""
        up = self._up()
        return bool(up) and all(r.deployment.in_sync for r in up)

    @property
    def confirmed_at(self) -> Optional[float]:
        times = [r.deployment.confirmed_at for r in self.robots.values()
                 if r.deployment.confirmed_at is not None]
        return max(times) if times else None

    def problem(self) -> str:
        """Each robot's problems are in its own status (``robot_problems``): none here."""
        return ''

    def state(self) -> str:
        up = self._up()
        if not self.robots:
            return f'no robot found yet (looking for {", ".join(self.patterns)})'
        if not self.version:
            return f'no model yet ({len(up)} robot(s) up)'
        gone = len(self.robots) - len(up)
        serving = sum(r.deployment.in_sync for r in up)
        return (f'version {self.version}: served by {serving} of {len(up)} robot(s) up'
                + (f', {gone} gone' if gone else ''))

    def counters(self) -> Dict[str, Any]:
        up = self._up()
        return {
            'deployment': self.state(),
            'model version': self.version,
            'fleet': ', '.join(self.patterns),
            'robots': len(self.robots),
            'robots up': len(up),
            'robots gone': len(self.robots) - len(up),
            'robots serving the model in force': sum(r.deployment.in_sync for r in up),
        }

    # ------------------------------------------------------------------------ a robot's rows
    def received(self, ns: str, rows: int, refused: int) -> None:
        robot = self.robots.get(ns)
        if robot is not None:  # (a message in flight from a robot just forgotten: not counted)
            robot.received += rows
            robot.refused += refused

    def message_refused(self, ns: str) -> None:
        robot = self.robots.get(ns)
        if robot is not None:
            robot.messages_refused += 1

    def learned(self, ns: str, scores: Any, y: np.ndarray) -> None:
        """Rows of robot ``ns`` learned, with the scores the policy gave them by the model in
        force (``LearningPolicy.add``): counted in its metrics once there is a model."""
        robot = self.robots.get(ns)
        if robot is None:
            return
        robot.learned += len(y)
        if self.version and scores is not None:  # (finite: the policy scored them)
            robot.metrics.update(scores, float(y[0]) if isinstance(scores, float) else y)

    # ---------------------------------------------------------------------------- reporting
    def _rest(self, robot: Robot) -> Tuple[float, int]:
        """The accuracy of every other robot's rows together, and their number."""
        correct = rows = 0.0
        for other in self.robots.values():
            m = other.metrics
            if other is not robot and m.count:
                correct += m.accuracy * m.count
                rows += m.count
        return (correct / rows if rows else math.nan), int(rows)

    def robot_problems(self, robot: Robot, fleet_accuracy: float = math.nan) -> List[str]:
        """What a user must act on about ``robot`` (none while it is gone: that is its state).
        ``fleet_accuracy``: the policy's, over the fleet's newest rows, for the words."""
        if not robot.up:
            return []
        found = [p for p in (robot.deployment.problem(),) if p]
        m = robot.metrics
        if self._probabilities and m.count:
            rest, rest_rows = self._rest(robot)
            if below_fleet(m.accuracy, m.count, rest, rest_rows):
                fleet = rest if math.isnan(fleet_accuracy) else fleet_accuracy
                found.append(f'robot {robot.namespace}: accuracy {m.accuracy:.2f} over '
                             f"{m.count} samples against the fleet's {fleet:.2f} (the other "
                             f'robots: {rest:.2f} over {rest_rows}): a misconfigured or failing '
                             'sensor?')
        return found

    def status_every(self, period: float) -> float:
        """Seconds between two statuses of a robot whose level and message are unchanged."""
        return max(period, len(self.robots) / STATUSES_PER_SEC)  # period: diagnostics_period

    def report(self, robot: Robot, fleet_accuracy: float = math.nan
               ) -> Tuple[str, str, Dict[str, Any]]:
        """``(level, message, values)`` of a robot's status: 'ok', 'warn', 'stale' (gone)."""
        return (*self.headline(robot, fleet_accuracy), self.robot_values(robot, fleet_accuracy))

    def headline(self, robot: Robot, fleet_accuracy: float = math.nan) -> Tuple[str, str]:
        problems = self.robot_problems(robot, fleet_accuracy)
        if not robot.up:
            gone = self._clock() - robot.gone_since
            return 'stale', (f'gone for {gone:.0f} s (forgotten after {FORGET_AFTER:.0f} s): '
                             f'version {self.version} deploys when it is back')
        return ('warn' if problems else 'ok'), '; '.join(problems) or robot.deployment.state()

    def robot_values(self, robot: Robot, fleet_accuracy: float = math.nan) -> Dict[str, Any]:
        now = self._clock()
        dep, m = robot.deployment, robot.metrics

        def rate(x: float) -> str:
            return f'{x:.4f}' if math.isfinite(x) else '-'
        return {
            'robot': robot.namespace,
            'state': 'up' if robot.up else 'gone',
            'labeled_samples': 'publishing' if robot.publishing else 'no publisher',
            'predictor': (f'{dep.name}: ' if dep.linked else '') + (
                'up' if robot.predictor_up else 'not in the graph'),
            'samples received': robot.received,
            'samples refused': robot.refused,
            'messages refused': robot.messages_refused,
            'samples learned': robot.learned,
            'prequential accuracy': rate(m.accuracy),
            'prequential mse': rate(m.mse),
            'prequential window': m.count,
            'fleet prequential accuracy': rate(fleet_accuracy),
            'model version served': dep.confirmed_version if dep.confirmed_version > 0 else '-',
            'model version in force': self.version,
            'deployment': dep.state(),
            'predictor refusals': dep.refusals,
            'predictor timeouts': dep.timeouts,
            'seconds since seen': f'{now - robot.seen_at:.1f}',
            'joins': robot.joins,
        }
