"""Tests of nn_one_node.learning.deployment alone: the protocol with a fake predictor and clock,
no DDS.

The process tests (test_trainer_process.py, test_faults_process.py) run the same protocol over
DDS against the real predictor; here every interleaving the network may produce is made on
purpose: replies late, out of order, after a timeout, a predictor that leaves and comes back.
"""

import ast
import math
from pathlib import Path
from typing import Any, Callable, List, Optional

import pytest
from hypothesis import given, settings, strategies as st

from nn_one_node.learning import deployment, link as link_protocols
from nn_one_node.learning.deployment import FIRST_TRY_SEC, Deployment

FAST = settings(derandomize=True, deadline=None, max_examples=200)
MODEL_A = ([0.5, -1.0], 0.25, 'sigmoid')
MODEL_B = ([1.0, 2.0], -0.5, 'sigmoid')


class FakeCall:
    """A request the test answers (or not) when it chooses."""

    def __init__(self, kind: str, payload: Any = None) -> None:
        self.kind, self.payload = kind, payload
        self._done = self._failed = self.cancelled = False
        self._reply: Any = None
        self._callbacks: List[Callable[[], None]] = []

    def done(self) -> bool:
        return self._done

    def failed(self) -> bool:
        return self._failed

    def reply(self) -> Any:
        assert self._done and not self._failed
        return self._reply

    def cancel(self) -> None:
        self.cancelled = True

    def add_done_callback(self, fn: Callable[[], None]) -> None:
        self._callbacks.append(fn)
        if self._done:
            fn()

    def finish(self, reply: Any = None, failed: bool = False, run_callbacks: bool = True) -> None:
        self._done, self._failed, self._reply = True, failed, reply
        if run_callbacks:
            for fn in self._callbacks:
                fn()


class FakeLink:
    name = '/robot/predictor'

    def __init__(self, name: str = '/robot/predictor') -> None:
        self.name = name
        self.up = True
        self.calls: List[FakeCall] = []
        self.ranges: List[tuple] = []  # sent with each deploy call

    def deploy_ready(self) -> bool:
        return self.up

    def deploy(self, model, ranges) -> FakeCall:
        self.calls.append(FakeCall('deploy', model))
        self.ranges.append(ranges)
        return self.calls[-1]

    def read_ready(self) -> bool:
        return self.up

    def read(self) -> FakeCall:
        self.calls.append(FakeCall('read'))
        return self.calls[-1]

    def of(self, kind: str) -> List[FakeCall]:
        return [c for c in self.calls if c.kind == kind]

    def open(self, kind: str) -> List[FakeCall]:
        return [c for c in self.of(kind) if not c.done() and not c.cancelled]


class FakeLog:
    def __init__(self) -> None:
        self.warnings: List[str] = []

    def warning(self, message: str, **kwargs: Any) -> None:
        assert not kwargs  # throttled by the deployment, not by rclpy's per-line throttle
        self.warnings.append(message)

    def debug(self, message: str, **kwargs: Any) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make(timeout: float = 2.0, period: float = 1.0, link: Optional[FakeLink] = None):
    link = link if link is not None else FakeLink()
    log, clock = FakeLog(), Clock()
    d = Deployment(link, log, clock=clock, deploy_timeout=timeout, check_period=period)
    return d, link, log, clock


@pytest.mark.parametrize('module', [deployment, link_protocols])
def test_the_protocol_imports_nothing_of_ros(module):
    tree = ast.parse(Path(module.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}
    assert imported <= {'__future__', 'math', 'time', 'typing', 'nn_one_node.learning.link'}, \
        imported


def test_without_a_link_versions_are_counted_and_nothing_is_sent():
    d = Deployment(None, FakeLog())
    assert d.new_model(*MODEL_A) == 1 and d.new_model(*MODEL_B) == 2
    d.poll()
    assert not d.linked and not d.in_sync and d.version == 2


def test_no_model_yet_is_not_deployed_and_not_read_back():
    d, link, log, clock = make()
    for _ in range(3):
        d.poll()
        clock.now += 5.0
    assert link.calls == [] and not d.in_sync and log.warnings == []


def test_a_model_is_sent_once_and_confirmed():
    d, link, log, clock = make()
    d.new_model(*MODEL_A)
    d.poll()
    d.poll()  # in flight: not sent again
    (call,) = link.of('deploy')
    assert call.payload == MODEL_A and not d.in_sync
    clock.now += 0.5
    call.finish((True, ''))
    assert d.in_sync and d.confirmed_version == 1 and d.confirmed_at == clock.now
    assert log.warnings == []


def test_the_trained_ranges_go_with_their_model_and_unknown_ones_are_unbounded():
    import numpy as np
    d, link, _, _ = make()
    d.new_model(*MODEL_A, ranges=(np.array([0.0, -2.0]), np.array([1.0, 3.0])))
    d.poll()
    assert link.ranges == [([0.0, -2.0], [1.0, 3.0])]
    link.of('deploy')[0].finish((True, ''))
    d.new_model(*MODEL_B)  # resumed or set by hand: its ranges are not known
    d.poll()
    assert link.ranges[-1] == ([-math.inf] * 2, [math.inf] * 2)
    # a predictor that comes back gets the model in force with its own ranges, not the first's
    link.of('deploy')[-1].finish((True, ''))
    link.up = False
    d.poll()
    link.up = True
    d.poll()
    assert link.of('deploy')[-1].payload == MODEL_B
    assert link.ranges[-1] == ([-math.inf] * 2, [math.inf] * 2)


def test_weights_given_as_any_sequence_are_sent_as_floats():
    import numpy as np
    d, link, _, _ = make()
    d.new_model(np.array([1, 2], dtype=np.float64), np.float64(0.5), 'linear')
    d.poll()
    weights, bias, activation = link.of('deploy')[0].payload
    assert weights == [1.0, 2.0] and all(type(x) is float for x in weights)
    assert type(bias) is float and activation == 'linear'


def test_a_reply_seen_by_poll_before_its_callback_counts_once():
    d, link, _, _ = make()
    d.new_model(*MODEL_A)
    d.poll()
    call = link.of('deploy')[0]
    call.finish((True, ''), run_callbacks=False)
    d.poll()  # sees it done first
    assert d.in_sync
    for fn in call._callbacks:  # the executor runs the callback later: nothing more happens
        fn()
    assert d.in_sync and len(link.of('deploy')) == 1


def test_a_new_model_waits_for_the_one_in_flight_then_goes():
    d, link, _, _ = make()
    d.new_model(*MODEL_A)
    d.poll()
    d.new_model(*MODEL_B)
    d.poll()
    assert len(link.of('deploy')) == 1  # one request at a time
    link.of('deploy')[0].finish((True, ''))
    assert d.confirmed_version == 1 and not d.in_sync
    # sent as soon as the one in flight is confirmed, from its reply: not at the next poll
    assert len(link.of('deploy')) == 2
    second = link.of('deploy')[1]
    assert second.payload == MODEL_B
    d.poll()
    assert len(link.of('deploy')) == 2  # in flight: not sent twice
    second.finish((True, ''))
    assert d.in_sync and d.confirmed_version == 2


def test_a_held_deployment_sends_nothing_from_a_reply_until_the_next_poll():
    d, link, _, _ = make()
    d.new_model(*MODEL_A)
    d.poll()
    d.new_model(*MODEL_B)
    d.hold()  # the trainer was deactivated
    link.of('deploy')[0].finish((True, ''))
    assert d.confirmed_version == 1 and len(link.of('deploy')) == 1
    d.poll()  # active again
    assert link.of('deploy')[1].payload == MODEL_B


def test_an_unanswered_request_is_dropped_after_the_timeout_and_sent_again():
    d, link, log, clock = make(timeout=1.0)
    confirm_first(d, link)  # (the first request to a predictor just up: see the next test)
    d.new_model(*MODEL_B)
    d.poll()
    first = link.of('deploy')[1]
    clock.now += 1.0
    d.poll()  # at the timeout, not beyond: still waiting
    assert not first.cancelled and len(link.of('deploy')) == 2
    clock.now += 0.01
    d.poll()
    assert first.cancelled and len(link.of('deploy')) == 3 and d.timeouts == 1
    assert log.warnings == ['/robot/predictor did not confirm the deployment within 1.0 s: '
                            'will retry']
    # the late answer of the dropped request changes nothing; the new one is awaited
    first.finish((True, ''))
    assert d.confirmed_version == 1
    link.of('deploy')[2].finish((True, ''))
    assert d.in_sync


def test_a_predictor_just_up_is_sent_the_request_again_until_it_answers():
    """A predictor's service is in the graph before the trainer's request and reply are matched
    with it: a request sent before then is lost. To a predictor that appeared, the request is
    sent again every FIRST_TRY_SEC until it first answers, silently for deploy_timeout, then
    with a timeout counted (and its WARN) each deploy_timeout; again when it comes back."""
    d, link, log, clock = make(timeout=2.0)
    d.new_model(*MODEL_A)
    d.poll()
    for k in range(1, 4):  # at 0.51, 1.02, 1.53 s
        clock.now += FIRST_TRY_SEC + 0.01
        d.poll()
        sent = link.of('deploy')
        assert len(sent) == k + 1 and all(c.cancelled for c in sent[:-1])
        assert not sent[-1].cancelled and sent[-1].payload == MODEL_A
    assert log.warnings == [] and d.timeouts == 0 and d.problem() == ''
    clock.now += FIRST_TRY_SEC + 0.01  # 2.04 s without an answer: a timeout, and again
    d.poll()
    assert len(link.of('deploy')) == 5 and d.timeouts == 1 and len(log.warnings) == 1
    assert 'did not confirm' in d.problem()
    for _ in range(3):  # 2.55 to 3.57 s: sent again, the next timeout at 4.08 s
        clock.now += FIRST_TRY_SEC + 0.01
        d.poll()
    assert len(link.of('deploy')) == 8 and d.timeouts == 1
    clock.now += FIRST_TRY_SEC + 0.01
    d.poll()
    assert len(link.of('deploy')) == 9 and d.timeouts == 2
    link.of('deploy')[8].finish((True, ''))
    assert d.in_sync and d.problem() == ''
    link.up = False  # it leaves, and comes back: a first contact again
    d.poll()
    link.up = True
    d.poll()
    clock.now += FIRST_TRY_SEC + 0.01
    d.poll()
    assert len(link.of('deploy')) == 11 and d.timeouts == 2


def test_an_answer_ends_the_first_contact():
    """Once the predictor answered, a request waits deploy_timeout."""
    d, link, log, clock = make(timeout=2.0)
    d.new_model(*MODEL_A)
    d.poll()
    link.of('deploy')[0].finish((True, ''))
    d.new_model(*MODEL_B)
    d.poll()
    clock.now += FIRST_TRY_SEC + 0.01
    d.poll()
    assert len(link.of('deploy')) == 2 and not link.of('deploy')[1].cancelled


def test_a_new_timeout_applies_to_the_request_in_flight():
    d, link, _, clock = make(timeout=10.0)
    confirm_first(d, link)
    d.new_model(*MODEL_B)
    d.poll()
    clock.now += 1.0
    d.poll()
    assert len(link.of('deploy')) == 2
    d.deploy_timeout = 0.5
    d.poll()
    assert link.of('deploy')[1].cancelled and len(link.of('deploy')) == 3


def test_a_refusal_is_logged_and_the_model_sent_again_at_the_next_poll():
    d, link, log, _ = make()
    d.new_model(*MODEL_A)
    d.poll()
    link.of('deploy')[0].finish((False, 'weights must have num_features = 3'))
    assert not d.in_sync and d.confirmed_version == -1 and d.confirmed_at is None
    assert log.warnings == ['/robot/predictor refused the deployment: weights must have '
                            'num_features = 3']
    d.poll()
    assert len(link.of('deploy')) == 2


def test_a_failed_call_is_sent_again_without_a_word():
    d, link, log, _ = make()
    d.new_model(*MODEL_A)
    d.poll()
    link.of('deploy')[0].finish(failed=True)
    assert not d.in_sync and log.warnings == []
    d.poll()
    assert len(link.of('deploy')) == 2


def test_a_predictor_that_is_not_up_gets_the_model_once_it_is():
    link = FakeLink()
    link.up = False
    d, link, log, clock = make(link=link)
    d.new_model(*MODEL_A)
    d.poll()
    d.poll()
    assert link.calls == []
    # said once, and again once the throttle's 5 s are over (the deployment's own throttle)
    assert log.warnings == ['predictor /robot/predictor is not up: will deploy when it is']
    clock.now += 4.9
    d.poll()
    assert len(log.warnings) == 1
    clock.now += 0.1
    d.poll()
    assert log.warnings == ['predictor /robot/predictor is not up: will deploy when it is'] * 2
    link.up = True
    d.poll()
    link.of('deploy')[0].finish((True, ''))
    assert d.in_sync


def test_each_deployment_throttles_its_own_warnings():
    # in a fleet every robot's deployment warns from the same line of code: one robot's
    # warning must not silence another's
    log, clock = FakeLog(), Clock()
    robots = []
    for ns in ('/r1', '/r2'):
        link = FakeLink(f'{ns}/predictor')
        link.up = False
        robots.append(Deployment(link, log, clock=clock))
    for d in robots:
        d.new_model(*MODEL_A)
        d.poll()
        d.poll()
    assert log.warnings == [f'predictor {ns}/predictor is not up: will deploy when it is'
                            for ns in ('/r1', '/r2')]


def test_a_predictor_that_leaves_and_comes_back_gets_the_model_again():
    d, link, log, _ = make()
    d.new_model(*MODEL_A)
    d.poll()
    link.of('deploy')[0].finish((True, ''))
    assert d.in_sync
    link.up = False
    d.poll()
    assert not d.in_sync  # gone: it will hold nothing of ours when it is back
    link.up = True
    d.poll()
    assert [c.payload for c in link.of('deploy')] == [MODEL_A, MODEL_A]
    link.of('deploy')[1].finish((True, ''))
    assert d.in_sync


def test_a_stale_confirmation_does_not_lower_the_confirmed_version():
    d, link, _, clock = make(timeout=0.5)
    d.new_model(*MODEL_A)
    d.poll()
    old = link.of('deploy')[0]
    clock.now += 1.0
    d.new_model(*MODEL_B)
    d.poll()  # the first times out; version 2 goes
    new = link.of('deploy')[1]
    assert old.cancelled and new.payload == MODEL_B
    new.finish((True, ''))
    old.finish((True, ''))  # its callback is ignored: it is no longer the request in flight
    assert d.in_sync and d.confirmed_version == 2


def test_the_served_model_is_read_back_once_per_period_while_in_sync():
    d, link, log, clock = make(period=1.0)
    d.new_model(*MODEL_A)
    d.poll()
    link.of('deploy')[0].finish((True, ''))
    d.poll()
    assert len(link.of('read')) == 1
    link.of('read')[0].finish(MODEL_A)
    d.poll()
    clock.now += 0.5
    d.poll()
    assert len(link.of('read')) == 1  # not before check_period
    clock.now += 0.5
    d.poll()
    assert len(link.of('read')) == 2
    link.of('read')[1].finish(MODEL_A)
    assert d.in_sync and log.warnings == [] and len(link.of('deploy')) == 1


def test_a_predictor_serving_another_model_gets_the_confirmed_one_again():
    d, link, log, clock = make(period=1.0)
    d.new_model(*MODEL_A)
    d.poll()
    link.of('deploy')[0].finish((True, ''))
    d.poll()
    link.of('read')[0].finish(([0.0, 0.0], 0.0, 'sigmoid'))  # a respawned predictor
    assert not d.in_sync
    assert log.warnings == ['/robot/predictor does not serve the model it confirmed (restarted, '
                            'or set by hand?): deploying it again']
    d.poll()
    assert link.of('deploy')[1].payload == MODEL_A


def test_an_unreadable_answer_counts_as_another_model():
    d, link, _, _ = make()
    d.new_model(*MODEL_A)
    d.poll()
    link.of('deploy')[0].finish((True, ''))
    d.poll()
    link.of('read')[0].finish(None)  # weights not set: not a predictor
    assert not d.in_sync


def test_a_read_back_overtaken_by_a_new_deployment_is_ignored():
    d, link, log, clock = make(period=1.0)
    d.new_model(*MODEL_A)
    d.poll()
    link.of('deploy')[0].finish((True, ''))
    d.poll()
    reading = link.of('read')[0]
    d.new_model(*MODEL_B)
    d.poll()
    link.of('deploy')[1].finish((True, ''))
    reading.finish(MODEL_A)  # what it served before it took MODEL_B: not a mismatch
    assert d.in_sync and log.warnings == []


def test_a_read_back_unanswered_is_dropped_after_the_timeout_and_a_failed_one_ignored():
    d, link, log, clock = make(timeout=0.5, period=0.1)
    d.new_model(*MODEL_A)
    d.poll()
    link.of('deploy')[0].finish((True, ''))
    d.poll()
    first = link.of('read')[0]
    clock.now += 0.3
    d.poll()
    assert not first.cancelled and len(link.of('read')) == 1  # one read at a time
    clock.now += 0.3
    d.poll()
    assert first.cancelled and len(link.of('read')) == 2
    link.of('read')[1].finish(failed=True)
    assert d.in_sync and log.warnings == []


# ---------------------------------------------------------------- any order of events
EVENTS = st.lists(st.sampled_from([
    'poll', 'new model', 'answer ok', 'answer refused', 'answer failed', 'read answer same',
    'read answer other', 'time 0.3', 'time 3', 'down', 'up']), max_size=60)


@FAST
@given(EVENTS)
def test_the_protocol_holds_under_any_order_of_events(events):
    d, link, log, clock = make(timeout=2.0, period=1.0)
    served = None  # what the fake predictor serves
    models = {}
    for event in events:
        if event == 'poll':
            d.poll()
        elif event == 'new model':
            model = ([float(d.version + 1)], 0.0, 'sigmoid')
            models[d.new_model(*model)] = model
        elif event.startswith('answer') and link.open('deploy'):
            call = link.open('deploy')[0]
            if event == 'answer ok':
                served = call.payload
            call.finish(None if event == 'answer failed' else (event == 'answer ok', 'no'),
                        failed=event == 'answer failed')
        elif event.startswith('read answer') and link.open('read'):
            link.open('read')[0].finish(served if event.endswith('same') else ([-1.0], 0.0, 's'))
        elif event.startswith('time'):
            clock.now += float(event.split()[1])
        elif event in ('down', 'up'):
            link.up = event == 'up'
            if event == 'down':
                served = None  # it restarts with its own weights
        # never more than one deployment and one read-back in flight
        assert len(link.open('deploy')) <= 1 and len(link.open('read')) <= 1
        # only models in force, never version 0, and in sync means the predictor said so
        assert all(c.payload in models.values() for c in link.of('deploy'))
        assert d.confirmed_version <= d.version
        if d.in_sync and d.version:
            assert d.confirmed_version == d.version
        if d.in_sync or d.version == 0:
            assert d.problem() == ''
    # once the predictor is up and answers, any history ends in sync
    link.up = True
    for _ in range(4):
        d.poll()
        for call in link.open('deploy'):
            call.finish((True, ''))
        for call in link.open('read'):
            call.finish(link.of('deploy')[-1].payload if link.of('deploy') else served)
        clock.now += 3.0
    assert (d.in_sync or d.version == 0) and d.problem() == ''
    if d.version:
        assert link.of('deploy')[-1].payload == models[d.version]


# ------------------------------------------------------------------ what the user is told
def confirm_first(d, link):
    d.new_model(*MODEL_A)
    d.poll()
    link.of('deploy')[-1].finish((True, ''))
    assert d.in_sync


def test_a_deployment_in_flight_within_the_timeout_is_no_problem():
    d, link, _, clock = make(timeout=2.0)
    assert d.problem() == '' and d.state() == 'no model yet'
    confirm_first(d, link)
    assert d.state() == 'in sync (version 1)'
    d.new_model(*MODEL_B)
    d.poll()
    for _ in range(4):  # up to the timeout, in flight: OK
        clock.now += 0.5
        assert d.problem() == '' and d.state() == 'deploying version 2 to /robot/predictor'
    clock.now += 0.01  # beyond it: a problem at once, before a poll drops the request
    assert d.problem() == 'predictor /robot/predictor did not confirm version 2 within 2 s'
    d.poll()
    assert d.timeouts == 1 and d.problem().endswith('did not confirm version 2 within 2 s')
    clock.now += 0.5  # sent again and in flight: the timeout stays reported until it confirms
    assert d.problem().endswith('did not confirm version 2 within 2 s')
    link.open('deploy')[0].finish((True, ''))
    assert d.in_sync and d.problem() == '' and d.state() == 'in sync (version 2)'
    assert d.counters() == {
        'deployment': 'in sync (version 2)', 'model version': 2, 'predictor version': 2,
        'predictor refusals': 0, 'predictor timeouts': 1, 'predictor read-back mismatches': 0}


def test_a_refusal_is_a_problem_while_the_predictor_refuses_and_not_after_it_confirms():
    d, link, _, clock = make()
    d.new_model(*MODEL_A)
    d.poll()
    link.of('deploy')[0].finish((False, 'weights must have num_features = 3'))
    problem = 'predictor /robot/predictor refused version 1: weights must have num_features = 3'
    assert d.problem() == problem and d.refusals == 1
    d.poll()  # retried, in flight: still the refusal, the last word it said
    assert d.problem() == problem
    link.of('deploy')[1].finish((True, ''))
    assert d.problem() == '' and d.refusals == 1


def test_a_predictor_not_up_is_a_problem_after_the_timeout_only():
    link = FakeLink()
    link.up = False
    d, link, _, clock = make(timeout=1.0, link=link)
    d.poll()
    clock.now += 10.0
    d.poll()
    assert d.problem() == ''  # no model: nothing it lacks
    d.new_model(*MODEL_A)
    d.poll()
    clock.now += 1.0
    d.poll()
    assert d.problem() == '' and d.state() == 'deploying version 1 to /robot/predictor'
    clock.now += 1.5
    d.poll()
    assert d.problem() == ('predictor /robot/predictor is not up (for 2 s): version 1 waits '
                           'for it')
    link.up = True
    d.poll()  # up, and sent: in flight again
    assert d.problem() == ''
    link.of('deploy')[0].finish((True, ''))
    # in sync, then gone: a problem once it has been gone for longer than the timeout
    link.up = False
    d.poll()
    assert not d.in_sync and d.problem() == ''
    clock.now += 1.1
    d.poll()
    assert 'is not up (for 1 s)' in d.problem()


def test_a_mismatch_is_a_problem_until_the_model_is_confirmed_again():
    d, link, _, clock = make()
    confirm_first(d, link)
    d.poll()
    link.of('read')[0].finish(([9.0, 9.0], 9.0, 'sigmoid'))
    assert d.mismatches == 1 and d.problem() == (
        'predictor /robot/predictor served a model other than the one it confirmed '
        '(restarted, or set there by hand?): deploying it again')
    d.poll()
    link.of('deploy')[1].finish((True, ''))
    assert d.in_sync and d.problem() == '' and d.mismatches == 1


def test_a_read_back_answered_with_the_deployment_in_flight_is_no_mismatch():
    # the read goes, then a new model; the predictor applies it before it answers the read,
    # and the read's answer arrives before the deployment's
    d, link, log, clock = make()
    confirm_first(d, link)
    d.poll()
    reading = link.of('read')[0]
    d.new_model(*MODEL_B)
    d.poll()
    reading.finish(MODEL_B)
    assert d.mismatches == 0 and log.warnings == [] and d.problem() == ''
    link.of('deploy')[1].finish((True, ''))
    assert d.in_sync and len(link.of('deploy')) == 2


def test_without_a_link_nothing_is_a_problem():
    d = Deployment(None, FakeLog())
    d.new_model(*MODEL_A)
    assert d.problem() == '' and d.state() == 'deploying nowhere'


class ManagedLink(FakeLink):
    """A managed predictor (predictor --managed): it offers its lifecycle state."""

    def state_ready(self) -> bool:
        return self.up

    def state(self) -> FakeCall:
        self.calls.append(FakeCall('state'))
        return self.calls[-1]


def test_a_managed_predictor_gets_the_model_only_once_it_says_it_is_active():
    link, now = ManagedLink(), [0.0]
    d = Deployment(link, FakeLog(), clock=lambda: now[0], deploy_timeout=2.0)
    d.new_model(*MODEL_A)
    d.poll()
    assert [c.kind for c in link.calls] == ['state'] and not d.in_sync
    d.poll()  # the question in flight: not asked twice, nothing deployed
    assert [c.kind for c in link.calls] == ['state']
    link.of('state')[0].finish('inactive')
    assert link.of('deploy') == [] and d.predictor_state == 'inactive'
    assert 'waiting for /robot/predictor to be active (it is inactive)' in d.state()
    assert d.problem() == ''  # deactivated on purpose: nothing to act on
    d.poll()  # asked again at the next poll
    assert len(link.of('state')) == 2 and link.of('deploy') == []
    link.of('state')[1].finish('active')  # deployed from the answer, not at the next tick
    (call,) = link.of('deploy')
    assert call.payload == MODEL_A
    call.finish((True, ''))
    assert d.in_sync and d.state() == 'in sync (version 1)'
    assert d.counters()['predictor lifecycle state'] == 'active'


def test_a_lost_state_question_is_asked_again_after_the_timeout():
    link, now = ManagedLink(), [0.0]
    d = Deployment(link, FakeLog(), clock=lambda: now[0], deploy_timeout=2.0)
    d.new_model(*MODEL_A)
    d.poll()
    now[0] = 1.0
    d.poll()
    assert len(link.of('state')) == 1
    now[0] = 3.5
    d.poll()
    assert link.of('state')[0].cancelled and len(link.of('state')) == 2
    link.of('state')[0].finish('active')  # the late answer of the cancelled one: ignored
    assert link.of('deploy') == []
    link.of('state')[1].finish('active')
    assert len(link.of('deploy')) == 1


def test_a_plain_predictor_is_not_asked_for_its_state():
    link = FakeLink()  # no state_ready: a plain predictor
    d = Deployment(link, FakeLog(), clock=lambda: 0.0)
    d.new_model(*MODEL_A)
    d.poll()
    assert [c.kind for c in link.calls] == ['deploy']
    assert 'predictor lifecycle state' not in d.counters()


def test_hold_drops_a_state_question_in_flight():
    link = ManagedLink()
    d = Deployment(link, FakeLog(), clock=lambda: 0.0)
    d.new_model(*MODEL_A)
    d.poll()
    d.hold()  # the trainer deactivated
    assert link.of('state')[0].cancelled
    link.of('state')[0].finish('active')
    assert link.of('deploy') == []
    d.poll()
    link.of('state')[1].finish('active')
    assert len(link.of('deploy')) == 1


class CountingLink(FakeLink):
    """Counts its graph questions: each is a walk through the graph's endpoints in rmw."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = 0

    def deploy_ready(self) -> bool:
        self.asked += 1
        return self.up


def test_in_sync_the_graph_is_asked_only_when_a_read_back_is_due():
    d, link, _, clock = make(timeout=2.0, period=4.0, link=CountingLink())
    confirm_first(d, link)
    d.poll()  # the first read-back
    link.of('read')[0].finish(MODEL_A)
    asked = link.asked
    for _ in range(7):  # polled twice a second, as a fleet's ticks and looks do
        clock.now += 0.5
        d.poll()
    assert link.asked == asked and len(link.of('read')) == 1
    clock.now += 0.6  # 4.1 s: the next read-back is due, and the graph asked with it
    d.poll()
    assert link.asked == asked + 1 and len(link.of('read')) == 2
    link.of('read')[1].finish(MODEL_A)
    link.up = False  # it goes while in sync: seen at the next read-back, and deployed again
    clock.now += 4.1
    d.poll()
    assert not d.in_sync
    link.up = True
    d.poll()
    assert len(link.of('deploy')) == 2
