"""The trainer's /diagnostics tell the truth about the predictor (issue 16, item 7) and about
its learning (issue 23).

A deployment in flight within ``deploy_timeout`` is not a predictor out of sync: the status stays
OK and says "deploying version k". WARN is for what a user must act on: a predictor that is not
up, refuses the model, does not answer, or serves a model other than the one it confirmed; a
label topic silent for a minute of ROS time, every row refused (and why), a prequential accuracy
below the constant guess, updates that do not deploy twenty times in a row.
The installed executables as processes, over real DDS.
"""

import re
import signal
import time
from typing import Callable, Dict, List, NamedTuple

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticStatus
from rcl_interfaces.srv import SetParametersAtomically
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.parameter import parameter_value_to_python
from rclpy.task import Future
from rosbench import diagnostic_values
from rosgraph_msgs.msg import Clock
from test_trainer_process import (B_TRUE, LINEAR_LR, W_TRUE, Ends, N, TIMEOUT, batch, count,
                                  linear_data, model_of, row, sigmoid_data, start_predictor,
                                  wait_in_sync, wait_model)

OK, WARN = DiagnosticStatus.OK, DiagnosticStatus.WARN


class Status(NamedTuple):
    level: bytes
    message: str
    values: Dict[str, str]
    stamp: float = 0.0  # the message's header stamp (ROS time of the trainer)


def statuses(ends: Ends, start: int = 0) -> List[Status]:
    """The trainer's statuses among the /diagnostics messages received from index ``start``."""
    return [Status(s.level, s.message, {kv.key: kv.value for kv in s.values},
                   msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9)
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
    # fresh rows meanwhile: an update with no new row after a converged descent is idle
    X2, y2, _ = sigmoid_data(rng, 400)
    fed = {'rows': 0, 'at': 0.0}

    def four_more():
        if time.monotonic() - fed['at'] >= 0.25 and fed['rows'] < len(y2):
            k = fed['rows']
            ends.feed(X2[k:k + 20], y2[k:k + 20])
            fed['rows'], fed['at'] = k + 20, time.monotonic()
        d = diagnostic_values(ends.diags[start:], ': trainer')
        return d is not None and count(d, 'updates deployed') >= deployed + 4
    ros.spin_until(four_more, TIMEOUT, 'four more deployed')
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


# ------------------------------------------------------------------------- the learning (#23)
def test_a_silent_label_topic_is_a_warning_after_a_minute_of_ros_time(ros):
    # Simulated time from the test, 0.5 s a step: a minute of ROS time passes in seconds.
    clock = ros.publisher(Clock, '/clock')
    ends = Ends(ros)
    ends.start_trainer(use_sim_time=True, predictor_node='', train_period=1.0,
                       diagnostics_period=1.0)
    ros.wait_for_subscribers(clock, 1, TIMEOUT)
    sim = {'ns': 100 * 10**9}

    def tick() -> None:
        sim['ns'] += 500_000_000
        clock.publish(Clock(clock=Time(sec=sim['ns'] // 10**9, nanosec=sim['ns'] % 10**9)))

    def wait_sim(check, what) -> Status:
        start = len(ends.diags)

        def found():
            tick()
            return next((s for s in statuses(ends, start) if check(s)), None)
        return ros.spin_until(found, TIMEOUT, f'a trainer status: {what}')

    first = wait_sim(lambda s: True, 'the first status on simulated time')
    s = wait_sim(lambda s: 'no labeled sample' in s.message, 'the silence WARN')
    assert s.level == WARN, s
    assert s.message.startswith('no labeled sample on /labeled_samples since the trainer '
                                'started'), s
    assert '(WARN after 60 s)' in s.message and 'ros2 topic hz /labeled_samples' in s.message
    assert s.values['seconds since last labeled sample'] == 'never'
    assert s.stamp - first.stamp >= 60.0 - 1.0, (first.stamp, s.stamp)
    early = [t for t in statuses(ends) if t.stamp < first.stamp + 59.0]
    assert early and all(t.level == OK for t in early), early[-1]

    # samples arrive: OK again; then the topic stops: WARN again, saying for how long
    rng = np.random.default_rng(83)
    X, y, _ = sigmoid_data(rng, 100)
    ends.feed(X, y)
    s = wait_sim(lambda s: count(s.values, 'samples held') == 100, 'the samples held')
    assert s.level == OK and 'no labeled sample' not in s.message, s
    heard = s.stamp
    s = wait_sim(lambda s: 'no labeled sample' in s.message, 'the silence WARN again')
    assert s.level == WARN and 'for 6' in s.message and 'its publisher stopped?' in s.message, s
    assert s.stamp - heard >= 59.0 and float(s.values['seconds since last labeled sample']) >= 60


def test_every_row_refused_is_a_warning_that_says_why_until_a_row_is_kept(ros):
    ends = Ends(ros)
    ends.start_trainer(predictor_node='')
    s = wait_status(ends, lambda s: True, 'a first status')
    assert s.level == OK and s.values['samples refused in a row'] == '0', s
    # rows of N + 2 values, one a message and in batches: a publisher with one feature too many
    rng = np.random.default_rng(89)
    wide = rng.normal(size=(5, N + 2))
    for k in range(5):
        ends.samples.publish(row(wide[k]))
        ends.samples.publish(batch(wide[:, :-1], wide[:, -1]))
    s = wait_status(ends, lambda s: s.level == WARN, 'the refusals WARN')
    assert s.message.startswith('every labeled sample refused lately (the last 10, none kept): '
                                f'rows have {N + 2} values, num_features is {N}'), s.message
    assert f'set num_features to {N + 1} on the trainer and the predictor' in s.message
    assert s.values['samples refused in a row'] == '10'
    assert count(s.values, 'messages refused: length') == 5
    assert count(s.values, 'messages refused: layout') == 5
    # labels a sigmoid model cannot take: the reason changes with them
    bad = np.column_stack([rng.normal(size=(10, N)), np.full(10, 3.0)])
    ends.samples.publish(batch(bad[:, :N], bad[:, N]))
    s = wait_status(ends, lambda s: 'labels outside [0, 1]' in s.message, 'the label refusals')
    assert s.level == WARN and s.values['samples refused in a row'] == '20', s
    # one message with a row kept ends it
    X, y, _ = sigmoid_data(rng, 20)
    ends.feed(X, y)
    s = wait_status(ends, lambda s: count(s.values, 'samples held') == 20, 'the rows kept')
    assert s.level == OK and s.values['samples refused in a row'] == '0', s


def test_accuracy_below_the_constant_guess_is_a_warning(ros):
    ends = Ends(ros)
    ends.start_trainer(predictor_node='', metrics_window=200)
    ends.pause()  # the model set below stays: nothing trains it away
    # the ground truth's opposite: wrong wherever the truth is sure
    result = ros.set_parameters('/trainer', {'weights': [float(w) for w in -W_TRUE],
                                             'bias': -B_TRUE}, atomic=True)
    assert result.successful, result.reason
    rng = np.random.default_rng(97)
    X, y, _ = sigmoid_data(rng, 300)
    ends.feed(X, y)
    s = wait_status(ends, lambda s: s.level == WARN, 'the WARN: worse than the constant guess')
    accuracy, guess = float(s.values['prequential accuracy']), float(s.values['majority class '
                                                                              'rate'])
    labels = y[-200:]
    assert abs(guess - max(labels.mean(), 1 - labels.mean())) < 1e-4, (guess, labels.mean())
    assert accuracy < guess - 0.2, s
    assert s.message.startswith(f'prequential accuracy {accuracy:.3f} over the last 200 samples '
                                f'is below the constant guess {guess:.3f}'), s.message
    assert 'label_delay' in s.message and '~/reset' in s.message
    # the ground truth: as good as it gets, OK
    result = ros.set_parameters('/trainer', {'weights': [float(w) for w in W_TRUE],
                                             'bias': B_TRUE}, atomic=True)
    assert result.successful, result.reason
    X, y, _ = sigmoid_data(rng, 300)
    ends.feed(X, y)
    s = wait_status(ends, lambda s: count(s.values, 'samples held') == 600, 'the rows scored')
    assert s.level == OK and float(s.values['prequential accuracy']) > 0.7, s


def test_updates_refused_again_and_again_log_at_info_then_warn_at_twenty(ros):
    rng = np.random.default_rng(101)
    ends = Ends(ros)
    # linear, learning_rate 1e6: every update diverges and is refused; updates by ~/train_now
    proc = ends.start_trainer(predictor_node='', activation='linear', learning_rate=1e6,
                              train_period=3600.0)
    X, y = linear_data(rng, 300)
    ends.feed(X[:100], y[:100])

    def refused_in_a_row(s: Status) -> int:
        return count(s.values, 'updates not deployed in a row')
    k = 100
    while refused_in_a_row(wait_status(ends, lambda s: True, 'a status')) < 20:
        ends.feed(X[k:k + 5], y[k:k + 5])  # new rows: never an idle update
        k += 5
        reply = ends.call('train_now')
        assert not reply.success and 'learning_rate 1e+06' in reply.message, reply.message
    s = wait_status(ends, lambda s: refused_in_a_row(s) >= 20, 'twenty refused in a row')
    assert s.level == WARN, s
    assert s.message.startswith(f'no update deployed in the last {refused_in_a_row(s)} (the '
                                'model in force stays; ~/train_now answers why): last: refused'), s
    # below twenty, no WARN: the gate at work is no fault
    seen = statuses(ends)
    assert all((s.level == WARN) == (refused_in_a_row(s) >= 20) for s in seen), \
        [(names(s.level), refused_in_a_row(s)) for s in seen]
    logged = [line for line in proc.output().splitlines()
              if 'not deployed, the previous model stays: refused' in line]
    assert logged and logged[0].startswith('[INFO]'), logged[:3]
    assert any(re.match(r'\[WARN\].*: \d+ updates in a row not deployed', line)
               for line in logged), logged
    # a learning rate that works: deployed, OK again
    (result,) = ros.set_parameters('/trainer', {'learning_rate': LINEAR_LR})
    assert result.successful, result.reason
    ends.feed(X[k:k + 40], y[k:k + 40])
    reply = ends.call('train_now')
    assert reply.success, reply.message
    s = wait_status(ends, lambda s: refused_in_a_row(s) == 0, 'a deployment')
    assert s.level == OK, s
