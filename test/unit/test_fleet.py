"""Tests of nn_one_node.learning.fleet alone (and TrainerCore driving it): which namespaces are
robots, up and gone and forgotten, one deployment a robot that never waits on another, the rows
each robot taught and how well the model did on them, and the WARN for a robot far below the
rest. Fake links and a fake clock, no DDS (test/process/test_fleet_process.py runs it over DDS).
"""

from typing import Any, Dict, List

import numpy as np
import pytest
from test_deployment import FakeLink

from nn_one_node.learning.config import DEFAULTS, trainer_params
from nn_one_node.learning.fleet import (FLEET_MIN_ROWS, FORGET_AFTER, Fleet, below_fleet,
                                        check_fleet)
from nn_one_node.learning.trainer_core import TrainerCore
from nn_one_node.names import namespace_matches as matches
from nn_one_node.model import forward
from nn_one_node.names import pattern_problem, resolve_pattern as resolve
from nn_one_node.parameters import NUM_FEATURES, values_from_section

W = np.array([2.0, -1.0])


class Log:
    def __init__(self) -> None:
        self.lines: List[str] = []

    def info(self, msg: str, **_: Any) -> None:
        self.lines.append(msg)

    warning = debug = error = info


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t



def learned(fleet, ns, X, y, weights, bias, activation):
    """Rows of ``ns`` learned, scored by the model as the policy scores them."""
    fleet.learned(ns, forward(X, weights, bias, activation), y)

def answer_all(link: FakeLink, ok: bool = True) -> None:
    """Every call in flight answered: deployments confirmed, read-backs with the model last
    deployed."""
    served = None
    for call in link.calls:
        if call.kind == 'deploy':
            served = call.payload
        if not call.done():
            call.finish((ok, '') if call.kind == 'deploy' else served)


def make_fleet(patterns=('/r*',), **kw):
    log, clock = Log(), Clock()
    fleet = Fleet(list(patterns), 'predictor', log, clock=clock, **kw)
    links: Dict[str, FakeLink] = {}
    forgotten: List[str] = []

    def connect(ns):
        links[ns] = FakeLink()
        links[ns].name = f'{ns}/predictor'
        return links[ns]

    def look(seen):
        fleet.observe(seen, connect, forgotten.append)
    return fleet, links, look, clock, log, forgotten


def rows(rng, m, broken=False):
    X = rng.normal(size=(m, 2))
    y = rng.integers(0, 2, m).astype(float) if broken else (X @ W > 0).astype(float)
    return X, y


# ------------------------------------------------------------------------------ the patterns
@pytest.mark.parametrize('ns, patterns, expected', [
    ('/r1', ['/r1', '/r2'], True),
    ('/r3', ['/r1', '/r2'], False),
    ('/r12', ['/r?'], False),
    ('/r12', ['/r*'], True),
    ('/r1/arm', ['/r*'], False),          # * does not cross a /
    ('/site/amr_3', ['/site/amr_[0-9]'], True),
    ('/R1', ['/r*'], False),              # ROS names are case-sensitive
    ('/', ['/*'], False),                 # the root namespace is no robot's
])
def test_matches_name_by_name(ns, patterns, expected):
    assert matches(ns, patterns) is expected


@pytest.mark.parametrize('bad', ['', '/', '/r1/', '//r1', '/r 1', '/r~', '/{ns}'])
def test_a_bad_pattern_is_refused_with_its_reason(bad):
    assert 'is not a namespace pattern' in pattern_problem(bad)


def test_relative_patterns_resolve_under_the_trainers_namespace():
    assert resolve('r*', '/site') == '/site/r*' and resolve('/r1', '/site') == '/r1'


def test_the_fleet_needs_a_relative_predictor_node():
    values = {**DEFAULTS, 'predictor_node': '/predictor'}
    assert 'relative predictor_node' in check_fleet(['/r*'], values)
    assert check_fleet([], values) is None  # one robot: an absolute one is fine
    assert check_fleet(['/r*'], {**DEFAULTS, 'predictor_node': 'nn/predictor'}) is None


def test_the_parameter_is_in_the_trainers_table_checked_as_ros_would():
    specs = [NUM_FEATURES] + trainer_params(2)
    spec = next(s for s in specs if s.name == 'fleet')
    assert spec.default == [] and spec.read_only and spec.type_name == 'string[]'
    got = values_from_section(specs, {'fleet': ['/r1', 'r*']}, 'trainer', {'num_features': 2})
    assert got['fleet'] == ['/r1', 'r*']
    with pytest.raises(ValueError, match='fleet entry'):
        values_from_section(specs, {'fleet': ['/r1/']}, 'trainer', {'num_features': 2})


# ------------------------------------------------------------------------------ the registry
def test_robots_join_by_either_topic_or_predictor_and_only_when_they_match():
    fleet, links, look, *_ = make_fleet()
    look({'/r1': (True, False), '/r2': (False, True), '/x1': (True, True),
          '/r3': (False, False)})
    assert sorted(fleet.robots) == ['/r1', '/r2'] and sorted(links) == ['/r1', '/r2']
    assert fleet.robots['/r1'].publishing and not fleet.robots['/r1'].predictor_up


def test_a_robot_gone_is_reported_then_back_then_forgotten_after_its_time():
    fleet, links, look, clock, log, forgotten = make_fleet()
    look({'/r1': (True, True), '/r2': (True, True)})
    fleet.new_model(W, 0.0, 'sigmoid')
    fleet.poll()
    answer_all(links['/r1'])
    answer_all(links['/r2'])
    assert fleet.in_sync
    clock.t = 10.0
    look({'/r1': (True, True)})
    r2 = fleet.robots['/r2']
    assert not r2.up and any('robot /r2 is gone' in line for line in log.lines)
    assert fleet.in_sync  # a gone robot does not hold the fleet out of sync
    level, message, values = fleet.report(r2)
    assert level == 'stale' and values['state'] == 'gone' and message.startswith('gone for')
    assert fleet.counters()['robots gone'] == 1
    # back: the same robot (counts kept), and it gets the model again (it may have restarted)
    clock.t = 20.0
    sent = len(links['/r2'].calls)
    look({'/r1': (True, True), '/r2': (False, True)})
    fleet.poll()
    assert r2.up and r2.joins == 2 and fleet.robots['/r2'] is r2
    assert [c.kind for c in links['/r2'].calls[sent:]] == ['deploy']
    # gone again, and forgotten FORGET_AFTER later; a return after that is a new robot
    look({'/r1': (True, True)})
    clock.t = 20.0 + FORGET_AFTER - 1.0
    look({'/r1': (True, True)})
    assert '/r2' in fleet.robots and not forgotten
    clock.t = 20.0 + FORGET_AFTER + 1.0
    look({'/r1': (True, True)})
    assert '/r2' not in fleet.robots and forgotten == ['/r2']
    look({'/r1': (True, True), '/r2': (True, False)})
    assert fleet.robots['/r2'] is not r2 and fleet.robots['/r2'].joins == 1


def test_a_robot_that_joins_late_gets_the_model_in_force_at_the_fleets_version():
    fleet, links, look, *_ = make_fleet()
    look({'/r1': (True, True)})
    for k in range(3):
        fleet.new_model(W * (k + 1), 0.5, 'sigmoid', ranges=([-1.0, -2.0], [1.0, 2.0]))
    look({'/r1': (True, True), '/r3': (True, True)})
    fleet.poll()
    call = links['/r3'].calls[-1]
    assert call.kind == 'deploy' and call.payload == ([6.0, -3.0], 0.5, 'sigmoid')
    assert links['/r3'].ranges[-1] == ([-1.0, -2.0], [1.0, 2.0])
    answer_all(links['/r3'])
    assert fleet.robots['/r3'].deployment.confirmed_version == fleet.version == 3


def test_a_robot_that_never_answers_never_delays_the_others():
    fleet, links, look, clock, *_ = make_fleet(deploy_timeout=2.0)
    look({'/r1': (True, True), '/r2': (True, True)})
    for version in range(1, 6):
        clock.t = version * 1.0
        fleet.new_model(W * version, 0.0, 'sigmoid')
        fleet.poll()
        answer_all(links['/r2'])  # r2 answers at once; r1 never does
        assert fleet.robots['/r2'].deployment.confirmed_version == version
    r1 = fleet.robots['/r1']
    assert r1.deployment.timeouts >= 1 and not r1.deployment.in_sync
    assert not fleet.in_sync and fleet.state() == 'version 5: served by 1 of 2 robot(s) up'
    level, message, _ = fleet.report(r1)
    assert level == 'warn' and 'did not confirm version' in message


# ----------------------------------------------------------------------- each robot's rows
def test_rows_before_any_model_are_counted_not_scored():
    fleet, _, look, *_ = make_fleet()
    look({'/r1': (True, True)})
    X, y = rows(np.random.default_rng(0), 50)
    learned(fleet, '/r1', X, y, np.zeros(2), 0.0, 'sigmoid')
    assert fleet.robots['/r1'].learned == 50 and fleet.robots['/r1'].metrics.count == 0
    fleet.new_model(W, 0.0, 'sigmoid')
    learned(fleet, '/r1', X, y, W, 0.0, 'sigmoid')
    assert fleet.robots['/r1'].metrics.count == 50 and fleet.robots['/r1'].metrics.accuracy == 1.0
    learned(fleet, '/gone-long-ago', X, y, W, 0.0, 'sigmoid')  # not a robot now: ignored


@pytest.mark.parametrize('robots', [2, 3])
def test_the_robot_with_a_broken_sensor_is_named_and_only_it(robots):
    fleet, _, look, *_ = make_fleet()
    names = [f'/r{i}' for i in range(1, robots + 1)]
    look({ns: (True, True) for ns in names})
    fleet.new_model(W, 0.0, 'sigmoid')
    rng = np.random.default_rng(robots)
    for ns in names:
        X, y = rows(rng, 2 * FLEET_MIN_ROWS, broken=ns == names[-1])
        learned(fleet, ns, X, y, W, 0.0, 'sigmoid')
    for ns in names[:-1]:
        assert fleet.robot_problems(fleet.robots[ns]) == []
    (problem,) = fleet.robot_problems(fleet.robots[names[-1]], fleet_accuracy=0.8)
    assert problem.startswith(f'robot {names[-1]}: accuracy 0.')
    assert "against the fleet's 0.80" in problem and 'failing sensor?' in problem
    assert fleet.report(fleet.robots[names[-1]])[0] == 'warn'


def test_no_warn_on_too_few_rows_or_for_a_linear_model():
    fleet, _, look, *_ = make_fleet(probabilities=False)
    look({'/r1': (True, True), '/r2': (True, True)})
    fleet.new_model(W, 0.0, 'linear')
    rng = np.random.default_rng(1)
    learned(fleet, '/r1', *rows(rng, 300), W, 0.0, 'linear')
    learned(fleet, '/r2', *rows(rng, 300, broken=True), W, 0.0, 'linear')
    assert fleet.robot_problems(fleet.robots['/r2']) == []
    assert below_fleet(0.5, FLEET_MIN_ROWS - 1, 0.95, 1000) is False
    assert below_fleet(0.5, FLEET_MIN_ROWS, 0.95, 1000) is True
    assert below_fleet(0.86, 10_000, 0.9, 10_000) is False  # significant, but a small gap


def test_another_metrics_window_restarts_each_robots_metrics():
    fleet, _, look, *_ = make_fleet()
    look({'/r1': (True, True)})
    fleet.new_model(W, 0.0, 'sigmoid')
    learned(fleet, '/r1', *rows(np.random.default_rng(2), 20), W, 0.0, 'sigmoid')
    fleet.configure({'metrics_window': 500, 'activation': 'sigmoid'})
    assert fleet.robots['/r1'].metrics.count == 20
    fleet.configure({'metrics_window': 100, 'activation': 'sigmoid'})
    assert fleet.robots['/r1'].metrics.count == 0 and fleet.robots['/r1'].metrics.window == 100


# -------------------------------------------------------------------- TrainerCore drives it
def test_trainer_core_learns_from_every_robot_and_deploys_to_each():
    values = {**DEFAULTS, 'num_features': 2, 'weights': [0.0, 0.0], 'fleet': ['/r*']}
    fleet, links, look, *_ = make_fleet()
    core = TrainerCore(values, None, fleet=fleet)
    assert core.deployment is fleet
    look({'/r1': (True, True), '/r2': (True, True)})
    rng = np.random.default_rng(4)
    for second in range(1, 21):
        for ns in ('/r1', '/r2'):
            X, y = rows(rng, 20)
            core.receive(np.column_stack([X, y]), float(second), robot=ns)
        core.tick(float(second))
        for link in links.values():
            answer_all(link)
    core.receive(np.array([[1.0, np.nan, 1.0]]), 21.0, robot='/r2')
    core.refuse_message('length', 'expected 3 values', 21.0, 4, robot='/r1')
    r1, r2 = fleet.robots['/r1'], fleet.robots['/r2']
    assert (r1.received, r1.learned, r1.refused, r1.messages_refused) == (400, 400, 0, 1)
    assert (r2.received, r2.learned, r2.refused) == (401, 400, 1)
    assert core.policy.buffer.total_added == 800 and fleet.version == core.policy.deployed > 3
    for link in links.values():
        sent = [c.payload for c in link.calls if c.kind == 'deploy'][-1]
        assert sent[0] == core.weights.tolist() and sent[1] == core.bias
    assert fleet.in_sync and core.counters()['robots serving the model in force'] == 2
    assert r1.metrics.accuracy > 0.9 and r2.metrics.accuracy > 0.9


def test_one_robot_mode_is_untouched():
    core = TrainerCore({**DEFAULTS, 'num_features': 2, 'weights': [0.0, 0.0]}, FakeLink())
    assert core.fleet is None and type(core.deployment).__name__ == 'Deployment'
    X, y = rows(np.random.default_rng(5), 30)
    core.receive(np.column_stack([X, y]), 1.0)  # no robot: as before
    assert core.policy.buffer.total_added == 30
    assert 'robots' not in core.counters()


def test_the_fleet_reads_back_at_most_reads_per_sec_models_a_second():
    from nn_one_node.learning.fleet import READS_PER_SEC
    t = [0.0]
    fleet = Fleet(['/r*'], 'predictor', Log(), clock=lambda: t[0], check_period=1.0)
    n = int(3 * READS_PER_SEC)
    fleet.observe({f'/r{i}': (True, True) for i in range(n)},
                  lambda ns: FakeLink(f'{ns}/predictor'), lambda ns: None)
    periods = {r.deployment.check_period for r in fleet.robots.values()}
    assert periods == {n / READS_PER_SEC}  # 15 robots: each every 3 s, 5 a second in all
    fleet.check_period = 10.0  # a train_period longer than that is kept
    assert {r.deployment.check_period for r in fleet.robots.values()} == {10.0}
    few = Fleet(['/r*'], 'predictor', Log(), clock=lambda: t[0], check_period=1.0)
    few.observe({'/r1': (True, True), '/r2': (True, True)}, lambda ns: FakeLink(f'{ns}/predictor'),
                lambda ns: None)
    assert {r.deployment.check_period for r in few.robots.values()} == {1.0}
