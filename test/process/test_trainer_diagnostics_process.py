"""The trainer's /diagnostics tell the truth about the predictor (issue 16, item 7).

A deployment in flight within ``deploy_timeout`` is not a predictor out of sync: the status stays
OK and says "deploying version k". WARN is for what a user must act on: a predictor that is not
up, refuses the model, does not answer, or serves a model other than the one it confirmed.
The installed executables as processes, over real DDS.
"""

import signal
from typing import Callable, Dict, List, NamedTuple

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticStatus
from rcl_interfaces.srv import SetParametersAtomically
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.parameter import parameter_value_to_python
from rclpy.task import Future
from test_trainer_process import (Ends, N, TIMEOUT, count, model_of, sigmoid_data,
                                  start_predictor, wait_in_sync, wait_model)

OK, WARN = DiagnosticStatus.OK, DiagnosticStatus.WARN


class Status(NamedTuple):
    level: bytes
    message: str
    values: Dict[str, str]


def statuses(ends: Ends, start: int = 0) -> List[Status]:
    """The trainer's statuses among the /diagnostics messages received from index ``start``."""
    return [Status(s.level, s.message, {kv.key: kv.value for kv in s.values})
            for msg in ends.diags[start:] for s in msg.status if s.name.endswith(': trainer')]


def wait_status(ends: Ends, check: Callable[[Status], bool], what: str) -> Status:
    start = len(ends.diags)

    def found():
        return next((s for s in statuses(ends, start) if check(s)), None)
    return ends.ros.spin_until(found, TIMEOUT, f'a trainer status: {what}')


def names(level: bytes) -> str:
    return {OK: 'OK', WARN: 'WARN'}.get(level, repr(level))


def test_deployments_in_flight_are_not_reported_as_a_predictor_out_of_sync(ros):
    rng = np.random.default_rng(61)
    X, y, _ = sigmoid_data(rng, 400)
    start_predictor(ros)
    ends = Ends(ros)
    # The defaults: the two timers share the 1 s period, so a status is taken right after an
    # update has sent its model, before the predictor's reply is in (every time, here). A
    # generous deploy_timeout: a loaded machine may answer slowly, and that is still no fault.
    ends.start_trainer(train_period=1.0, diagnostics_period=1.0, deploy_timeout=30.0)
    ends.feed(X, y)
    ends.diag(lambda d: count(d, 'updates deployed') >= 8, 'eight updates deployed')
    ends.pause()
    model = wait_in_sync(ros)
    ends.diag(lambda d: d['predictor in sync'] == 'True', 'the trainer sees it in sync')
    assert model_of(ros, '/predictor') == model

    seen = statuses(ends)
    after_first = [s for s in seen if count(s.values, 'updates deployed') >= 1]
    in_flight = [s for s in after_first if s.values['predictor in sync'] == 'False']
    warned = [(names(s.level), s.message) for s in seen if s.level != OK]
    assert len(after_first) >= 6, len(after_first)
    assert not warned, (f'{len(warned)} of {len(seen)} statuses not OK while every deployment '
                        f'was confirmed ({len(in_flight)} taken in flight): {warned[:3]}')
    # a status taken with a deployment in flight says so, and which version
    for s in in_flight:
        version = int(s.values['model version'])
        assert f'deploying version {version} to /predictor' in s.message, s
        assert int(s.values['predictor version']) < version
    assert all(int(s.values['predictor refusals']) == 0
               and int(s.values['predictor timeouts']) == 0 for s in seen)


def test_a_predictor_that_answers_slowly_but_within_the_timeout_is_no_warning(ros):
    # Whatever the phase of the trainer's two timers: a node named 'predictor', in this process,
    # whose set_parameters_atomically confirms each deployment 0.3 s after it arrives, so that
    # the trainer's status, every 0.05 s, is taken with a deployment in flight again and again.
    fake = rclpy.create_node('predictor', context=ros.context, start_parameter_services=False)
    group = ReentrantCallbackGroup()
    served = []

    async def confirm_later(request, response):
        done = Future()

        def fire():
            timer.cancel()
            done.set_result(None)
        timer = fake.create_timer(0.3, fire, callback_group=group)
        await done
        fake.destroy_timer(timer)
        served.append({p.name: parameter_value_to_python(p.value) for p in request.parameters})
        response.result.successful = True
        return response
    fake.create_service(SetParametersAtomically, '/predictor/set_parameters_atomically',
                        confirm_later, callback_group=group)
    ros.executor.add_node(fake)
    try:
        rng = np.random.default_rng(79)
        X, y, _ = sigmoid_data(rng, 300)
        ends = Ends(ros)
        ends.start_trainer(train_period=0.5, diagnostics_period=0.05, deploy_timeout=5.0)
        ends.feed(X, y)
        ends.diag(lambda d: count(d, 'updates deployed') >= 4, 'four updates deployed')
        ends.pause()
        ends.diag(lambda d: d['predictor in sync'] == 'True', 'the last one confirmed', fresh=2)
        weights, bias = model_of(ros, '/trainer')
        assert served and list(served[-1]['weights']) == weights and served[-1]['bias'] == bias
    finally:
        ros.executor.remove_node(fake)
        fake.destroy_node()
    seen = statuses(ends)
    in_flight = [s for s in seen if count(s.values, 'updates deployed') >= 1
                 and s.values['predictor in sync'] == 'False']
    warned = [(names(s.level), s.message) for s in seen if s.level != OK]
    assert len(in_flight) >= 8, len(in_flight)  # 0.3 s in flight per update: ~6 statuses each
    assert not warned, (f'{len(warned)} of {len(seen)} statuses not OK while every deployment '
                        f'was confirmed within 0.3 s ({len(in_flight)} taken in flight): '
                        f'{warned[:3]}')
    for s in in_flight:
        assert f'deploying version {s.values["model version"]} to /predictor' in s.message, s


def test_a_predictor_absent_then_refusing_is_a_warning_until_one_confirms(ros):
    rng = np.random.default_rng(67)
    X, y, _ = sigmoid_data(rng, 300)
    ends = Ends(ros)
    trainer = ends.start_trainer(deploy_timeout=0.5)
    ends.feed(X, y)
    s = wait_status(ends, lambda s: s.level == WARN, 'WARN without a predictor')
    assert 'predictor /predictor is not up' in s.message, s.message
    assert s.values['predictor in sync'] == 'False' and count(s.values, 'updates deployed') >= 1

    # a predictor that refuses the model (3 features, not 4)
    wrong = start_predictor(ros, num_features=3)
    s = wait_status(ends, lambda s: 'refused' in s.message, 'the refusal')
    assert s.level == WARN, s
    assert 'predictor /predictor refused version' in s.message, s.message
    assert 'weights must have num_features = 3' in s.message, s.message
    assert count(s.values, 'predictor refusals') >= 1
    # retried, and still refused: the warning stays while it refuses
    first = count(s.values, 'predictor refusals')
    later = wait_status(ends, lambda t: count(t.values, 'predictor refusals') > first,
                        'refused again')
    assert later.level == WARN and 'refused' in later.message, later
    assert wrong.stop() == 0

    # a predictor that takes it: OK again, and it stays OK while updates are confirmed
    start_predictor(ros)
    wait_status(ends, lambda s: s.level == OK and s.values['predictor in sync'] == 'True',
                'OK and in sync with a predictor that confirms')
    start = len(ends.diags)
    deployed = count(ends.diag(lambda d: True, 'a status'), 'updates deployed')
    ends.diag(lambda d: count(d, 'updates deployed') >= deployed + 4, 'four more deployed')
    warned = [(names(s.level), s.message) for s in statuses(ends, start) if s.level != OK]
    assert not warned, warned
    assert trainer.alive() and 'Traceback' not in trainer.output()


def test_a_predictor_that_stops_answering_is_a_warning_until_it_answers_again(ros):
    rng = np.random.default_rng(71)
    X, y, _ = sigmoid_data(rng, 300)
    predictor = start_predictor(ros)
    ends = Ends(ros)
    ends.start_trainer(deploy_timeout=0.5)
    ends.feed(X[:100], y[:100])
    wait_status(ends, lambda s: s.level == OK and s.values['predictor in sync'] == 'True'
                and count(s.values, 'updates deployed') >= 1, 'OK and a deployment confirmed')
    predictor.proc.send_signal(signal.SIGSTOP)  # up in the graph, answering nothing
    try:
        ends.feed(X[100:], y[100:])
        s = wait_status(ends, lambda s: s.level == WARN, 'WARN while the predictor is stopped')
        assert 'predictor /predictor did not confirm version' in s.message, s.message
        assert 'within 0.5 s' in s.message, s.message
        ends.pause()
        model = model_of(ros, '/trainer')
    finally:
        predictor.proc.send_signal(signal.SIGCONT)
    wait_model(ros, '/predictor', model, 'the deployment once the predictor answers again')
    s = wait_status(ends, lambda s: s.values['predictor in sync'] == 'True', 'in sync again')
    assert s.level == OK, s
    assert count(s.values, 'predictor timeouts') >= 1


def test_a_predictor_serving_another_model_is_counted_and_given_the_model_again(ros):
    rng = np.random.default_rng(73)
    X, y, _ = sigmoid_data(rng, 200)
    start_predictor(ros)
    ends = Ends(ros)
    ends.start_trainer()
    ends.feed(X, y)
    ends.diag(lambda d: count(d, 'updates deployed') >= 1, 'an update deployed')
    ends.pause()
    model = wait_in_sync(ros)
    d = ends.diag(lambda d: d['predictor in sync'] == 'True', 'in sync')
    assert count(d, 'predictor read-back mismatches') == 0
    result = ros.set_parameters('/predictor', {'weights': [9.0] * N, 'bias': 9.0}, atomic=True)
    assert result.successful, result.reason
    wait_model(ros, '/predictor', model, 'the deployed model back on the predictor')
    s = wait_status(ends, lambda s: s.values['predictor in sync'] == 'True'
                    and count(s.values, 'predictor read-back mismatches') >= 1,
                    'the mismatch counted, and in sync again')
    assert s.level == OK and count(s.values, 'predictor read-back mismatches') == 1, s
