"""The stack at a glance, from what its nodes say: ``StackView`` takes the ``/diagnostics``
statuses as they come (duck-typed ``DiagnosticArray`` messages: rclpy's, or recorded ones), the
lifecycle states and the models that parameter services answered, and gives one document
(``document(now)``, plain data, the ``--json`` form) that ``render.table`` prints. No ROS import;
times are explicit (seconds of a monotonic clock of the caller's).

A node of the stack is a status with hardware_id ``nn_one_node`` named ``<node>: <role>``
(``ros.diagnostics``); its key/values are read by role: the assembler's inputs (``messages:``,
``rate (Hz):``, ``since last message:``, ``max_age:`` per topic), the trainer's samples, metrics
and model versions, the predictor's counters. A fleet trainer's statuses named ``<node>: robot
<ns>``, one a robot, are its robots (``details['robots']``), not the node's own status; a robot's
WARN is a problem of the trainer. A node silent for longer than ``stale_after``
(three of its diagnostics periods, at least ``STALE_MIN_SEC``) is STALE. Every WARN or ERROR,
of the stack or of any other node on ``/diagnostics``, is a problem, with advice.

>>> from types import SimpleNamespace as NS
>>> def array(name, level, message, **values):
...     kv = [NS(key=k.replace('_', ' '), value=str(v)) for k, v in values.items()]
...     return NS(status=[NS(name=name, level=level, message=message,
...                          hardware_id='nn_one_node', values=kv)])
>>> view = StackView()
>>> view.on_array(array('/trainer: trainer', b'\\x00', 'training', samples_held=40,
...                     prequential_accuracy=0.9, majority_class_rate='0.6000',
...                     model_version=3, predictor_version=3), received=10.0)
>>> doc = view.document(now=10.5)
>>> node = doc['nodes'][0]
>>> node['name'], node['role'], node['lifecycle'], node['level']
('/trainer', 'trainer', 'unmanaged/active', 'OK')
>>> t = node['details']
>>> t['samples_held'], t['accuracy'], t['majority_rate'], t['version_trained']
(40, 0.9, 0.6, 3)
>>> view.document(now=30.0)['problems'][0]['problem'][:41]
'no /diagnostics from /trainer for 20.0 s '
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from nn_one_node.status.advice import advice

FORMAT = 1  # of the document; raised when a key changes meaning or goes
HARDWARE_ID = 'nn_one_node'  # ros.diagnostics.HARDWARE_ID (that module imports rclpy)
LEVELS = {0: 'OK', 1: 'WARN', 2: 'ERROR', 3: 'STALE'}
STALE_MIN_SEC = 5.0  # a node is STALE after this long without a status (and 3 periods)
STALE_PERIODS = 3
UNMANAGED = 'unmanaged/active'  # a plain node: no lifecycle, always active
ROBOT = 'robot '  # a fleet trainer's status of a robot, '<trainer>: robot <ns>' (ros.fleet's)

# A model as the parameter services give it: (weights, bias, activation).
Model = Tuple[Sequence[float], float, str]


def level_name(level: Any) -> str:
    """A DiagnosticStatus level (rclpy gives bytes, a recording an int) as its name.

    >>> level_name(b'\\x01'), level_name(2), level_name(7)
    ('WARN', 'ERROR', 'level 7')
    """
    if isinstance(level, (bytes, bytearray)):
        level = level[0] if level else 0
    return LEVELS.get(int(level), f'level {int(level)}')


def number(text: Optional[str]) -> Optional[float]:
    """A value's number; None for 'never', '-', 'nan', '' and the like.

    >>> number('0.250'), number('never'), number('nan'), number(None)
    (0.25, None, None, None)
    """
    try:
        x = float(text)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def integer(text: Optional[str]) -> Optional[int]:
    x = number(text)
    return None if x is None else int(x)


def predictor_of(trainer: str, predictor_node: str) -> str:
    """The full name of the predictor a trainer deploys to, as the trainer resolves its
    ``predictor_node`` parameter (relative: in the trainer's namespace).

    >>> predictor_of('/robot1/trainer', 'predictor'), predictor_of('/trainer', '/x/predictor')
    ('/robot1/predictor', '/x/predictor')
    """
    if not predictor_node or predictor_node.startswith('/'):
        return predictor_node
    namespace = trainer.rsplit('/', 1)[0]
    return f'{namespace}/{predictor_node}'


def under(name: str, namespace: str) -> bool:
    """Whether node ``name`` is in ``namespace`` or below it ('/' holds every node).

    >>> under('/robot1/trainer', '/robot1'), under('/robot10/trainer', '/robot1')
    (True, False)
    """
    ns = '/' + namespace.strip('/')
    return ns == '/' or name == ns or name.startswith(ns + '/')


@dataclass
class Report:
    """The newest status of one node, and the one before (for rates)."""
    name: str
    role: str
    level: str
    message: str
    values: Dict[str, str]
    problems: List[str]
    received: float
    previous: Optional['Report'] = None


def role_of(names: Iterable[str]) -> Optional[str]:
    """The role of a node of this package by the names of the parameters it declares (a
    managed node reports on /diagnostics only once configured); None: not one of ours.

    >>> role_of(['features', 'label']), role_of(['weights', 'bias', 'activation'])
    ('assembler', 'predictor')
    >>> role_of(['weights', 'predictor_node']), role_of(['use_sim_time'])
    ('trainer', None)
    """
    names = set(names)
    if 'features' in names and 'label' in names:
        return 'assembler'
    if 'predictor_node' in names:
        return 'trainer'
    return 'predictor' if {'weights', 'bias', 'activation'} <= names else None


@dataclass
class _Known:
    role: Optional[str] = None  # by its parameters, for a node that does not report
    lifecycle: Optional[str] = None  # from ~/get_state
    period: Optional[float] = None  # its diagnostics_period parameter
    model: Optional[Model] = None  # its weights, bias, activation parameters
    predictor_node: Optional[str] = None  # a trainer's, resolved


@dataclass
class StackView:
    """What the stack's nodes said lately (see the module's docstring)."""

    namespace: str = '/'
    reports: Dict[str, Report] = field(default_factory=dict)
    others: Dict[str, Report] = field(default_factory=dict)  # WARN/ERROR of other nodes
    robots: Dict[str, Dict[str, Report]] = field(default_factory=dict)  # a fleet trainer's
    known: Dict[str, _Known] = field(default_factory=dict)

    # ------------------------------------------------------------------------------- fed
    def on_array(self, msg: Any, received: float) -> None:
        """A ``/diagnostics`` message (its ``status`` list), received at ``received``."""
        for status in msg.status:
            self.on_status(status, received)

    def on_status(self, status: Any, received: float) -> None:
        pairs = [(kv.key, kv.value) for kv in status.values]
        values = dict(pairs)
        name, _, role = status.name.rpartition(': ')
        level = level_name(status.level)
        problems = [v for k, v in pairs if k.startswith('problem ')]
        if status.hardware_id != HARDWARE_ID or not name.startswith('/'):
            if level != 'OK':
                self.others[status.name] = Report(status.name, '', level, status.message,
                                                  values, [], received)
            else:
                self.others.pop(status.name, None)
            return
        if not under(name, self.namespace):
            return
        if role.startswith(ROBOT):  # one of a fleet trainer's robots
            ns = role[len(ROBOT):]
            self.robots.setdefault(name, {})[ns] = Report(
                ns, 'robot', level, status.message, values,
                [status.message] if level in ('WARN', 'ERROR') else [], received)
            return
        self.reports[name] = Report(name, role, level, status.message, values,
                                    problems or ([status.message] if level != 'OK' else []),
                                    received, previous=self._previous(name))

    def _previous(self, name: str) -> Optional[Report]:
        old = self.reports.get(name)
        if old is not None:
            old.previous = None  # one step of history is enough
        return old

    def set_lifecycle(self, name: str, state: Optional[str]) -> None:
        """``name``'s state by its ``~/get_state`` (None: it has none, a plain node)."""
        self.known.setdefault(name, _Known()).lifecycle = state

    def set_parameter_names(self, name: str, names: Iterable[str]) -> None:
        """The names of ``name``'s parameters (its ``list_parameters``): its role."""
        self.known.setdefault(name, _Known()).role = role_of(names)

    def set_parameters(self, name: str, values: Mapping[str, Any]) -> None:
        """What ``name``'s parameter services answered (names it lacks are None): its
        diagnostics_period, and a trainer's or predictor's model and predictor_node."""
        known = self.known.setdefault(name, _Known())
        period = values.get('diagnostics_period')
        if period:
            known.period = float(period)
        if values.get('weights') is not None and values.get('bias') is not None:
            known.model = (list(values['weights']), float(values['bias']),
                           str(values.get('activation') or ''))
        if values.get('predictor_node') is not None:
            known.predictor_node = predictor_of(name, values['predictor_node'])

    # ----------------------------------------------------------------------------- asked
    def nodes(self, role: Optional[str] = None) -> List[str]:
        return sorted(n for n, r in self.reports.items() if role is None or r.role == role)

    def unreported(self) -> List[str]:
        """Managed nodes of the stack (a role and a lifecycle state) that do not report."""
        return sorted(n for n, k in self.known.items() if n not in self.reports and k.role
                      and k.lifecycle and under(n, self.namespace))

    def reported_once(self, now: float) -> List[str]:
        """Nodes with one status so far and not yet stale: their rates need a second one."""
        return sorted(n for n, r in self.reports.items() if r.previous is None
                      and now - r.received < self.stale_after(n))

    def stale_after(self, name: str) -> float:
        period = self.known.get(name, _Known()).period
        return max(STALE_MIN_SEC, STALE_PERIODS * period) if period else STALE_MIN_SEC

    def lifecycle(self, name: str) -> str:
        known = self.known.get(name)
        if known is not None and known.lifecycle:
            return known.lifecycle
        return self.reports[name].values.get('lifecycle state', UNMANAGED)

    def document(self, now: float) -> Dict[str, Any]:
        """The stack now, as plain data (``now`` on the clock of ``received``)."""
        nodes, problems = [], []
        for name in self.nodes():
            r = self.reports[name]
            silent = now - r.received
            level = r.level
            if silent > self.stale_after(name):
                level = 'STALE'
                problems.append(_problem(name, r.role, 'STALE', (
                    f'no /diagnostics from {name} for {silent:.1f} s (its last said: '
                    f'{r.level} {r.message})')))
            elif level != 'OK':
                problems += [_problem(name, r.role, level, p) for p in r.problems]
            for robot in self.robots.get(name, {}).values() if level != 'STALE' else ():
                problems += [_problem(name, r.role, robot.level, p) for p in robot.problems]
            nodes.append({
                'name': name, 'role': r.role, 'lifecycle': self.lifecycle(name),
                'level': level, 'message': r.message, 'seconds_since_status': round(silent, 3),
                'details': self._details(r), 'values': dict(r.values)})
        for name in self.unreported():
            known = self.known[name]
            nodes.append({
                'name': name, 'role': known.role, 'lifecycle': known.lifecycle or 'unknown',
                'level': 'OK', 'message': 'no /diagnostics until configured',
                'seconds_since_status': None, 'details': {},
                'values': {}})
        for name, r in sorted(self.others.items()):
            problems.append(_problem(name, '', r.level, r.message))
        counts = {lv: sum(n['level'] == lv for n in nodes) for lv in LEVELS.values()}
        return {'format': FORMAT, 'namespace': '/' + self.namespace.strip('/'),
                'found': bool(nodes), 'summary': {'nodes': len(nodes), **counts},
                'nodes': nodes, 'problems': problems}

    def _details(self, r: Report) -> Dict[str, Any]:
        if r.role == 'assembler':
            return assembler_details(r.values)
        if r.role == 'trainer':
            return self._trainer_details(r)
        if r.role == 'predictor':
            return predictor_details(r)
        return {}

    def _trainer_details(self, r: Report) -> Dict[str, Any]:
        d = trainer_details(r.values)
        robots = self.robots.get(r.name)
        if robots:  # a fleet's: its newest status of each robot
            d['robots'] = [robot_details(robot) for _, robot in sorted(robots.items())]
        known = self.known.get(r.name, _Known())
        target = known.predictor_node
        served = None if not target else self.known.get(target, _Known()).model
        d['predictor'] = target
        d['served_matches'] = None if served is None or known.model is None else \
            _same(served, known.model)
        d['version_served'] = d['version_trained'] if d['served_matches'] else None
        return d


def _same(a: Model, b: Model) -> bool:
    return list(a[0]) == list(b[0]) and a[1] == b[1] and a[2] == b[2]


def _problem(node: str, role: str, level: str, text: str) -> Dict[str, str]:
    return {'node': node, 'role': role, 'level': level, 'problem': text, 'advice': advice(text)}


def _per_topic(values: Mapping[str, str], prefix: str) -> Dict[str, str]:
    return {k[len(prefix):]: v for k, v in values.items() if k.startswith(prefix)}


def assembler_details(values: Mapping[str, str]) -> Dict[str, Any]:
    """An assembler's figures: rows, labels, and each input topic's rate and age."""
    messages = _per_topic(values, 'messages: ')
    rates = _per_topic(values, 'rate (Hz): ')
    ages = _per_topic(values, 'since last message: ')
    max_ages = _per_topic(values, 'max_age: ')
    inputs = []
    for topic in messages:
        age, max_age = number(ages.get(topic)), number(max_ages.get(topic))
        inputs.append({
            'topic': topic, 'messages': integer(messages[topic]),
            'rate_hz': number(rates.get(topic)), 'age_s': age, 'max_age_s': max_age,
            'stale': None if max_age is None else (age is None or age > max_age)})
    return {
        'rows_published': integer(values.get('rows published')),
        'ticks': integer(values.get('ticks')),
        'rows_stale': integer(values.get('rows stale')),
        'seconds_since_last_row': number(values.get('seconds since last row')),
        'labels': {k: integer(values.get(f'labels {k}'))
                   for k in ('received', 'joined', 'unmatched', 'waiting')},
        'readings_refused': integer(values.get('readings refused')),
        'last_refusal': values.get('last refusal', ''),
        'inputs': inputs,
    }


def trainer_details(values: Mapping[str, str]) -> Dict[str, Any]:
    """A trainer's figures: samples, the prequential accuracy against the constant guess, the
    model's versions and the last update."""
    return {
        'samples_held': integer(values.get('samples held')),
        'samples_received': integer(values.get('samples received')),
        'samples_refused': integer(values.get('samples refused')),
        'accuracy': number(values.get('prequential accuracy')),
        'majority_rate': number(values.get('majority class rate')),
        'window': integer(values.get('prequential window')),
        'updates': integer(values.get('updates')),
        'updates_deployed': integer(values.get('updates deployed')),
        'version_trained': integer(values.get('model version')),
        'version_deployed': integer(values.get('predictor version')),
        'in_sync': values.get('predictor in sync') == 'True',
        'deployment': values.get('deployment', ''),
        'last_update': values.get('last update', ''),
        'last_loss': number(values.get('last loss')),
        'seconds_since_labeled_sample': number(values.get('seconds since last labeled sample')),
        'training_enabled': values.get('training enabled', 'True') == 'True',
    }


def robot_details(r: Report) -> Dict[str, Any]:
    """One robot of a fleet trainer, by its status: state, samples, accuracies, versions."""
    v = r.values
    return {'robot': r.name, 'state': v.get('state', ''), 'level': r.level,
            'message': r.message, 'samples_received': integer(v.get('samples received')),
            'accuracy': number(v.get('prequential accuracy')),
            'fleet_accuracy': number(v.get('fleet prequential accuracy')),
            'version_served': integer(v.get('model version served')),
            'version_in_force': integer(v.get('model version in force'))}


def predictor_details(r: Report) -> Dict[str, Any]:
    """A predictor's counters, and its predictions per second between its last two statuses."""
    v = r.values
    d = {'messages_received': integer(v.get('messages received')),
         'messages_predicted': integer(v.get('messages predicted')),
         'samples_predicted': integer(v.get('samples predicted')),
         'messages_refused': integer(v.get('messages refused')),
         'last_refusal': v.get('last refusal', ''), 'predictions_per_s': None}
    p = r.previous
    if p is not None and r.received > p.received:
        now, then = d['messages_predicted'], integer(p.values.get('messages predicted'))
        if now is not None and then is not None and now >= then:
            d['predictions_per_s'] = round((now - then) / (r.received - p.received), 2)
    return d


def worst(levels: Iterable[str]) -> str:
    """The worst of some level names (OK < WARN < ERROR < STALE)."""
    order = {name: lv for lv, name in LEVELS.items()}
    return max(levels, key=lambda name: order.get(name, 4), default='OK')
