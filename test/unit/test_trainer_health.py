"""The trainer's learning WARNs (``TrainerCore.problems(now)``, ``health.TrainerHealth``) with
explicit ROS times and no ROS: a silent label topic, every row refused and why, accuracy below
the constant guess, updates that do not deploy (and the log turning from INFO to WARN)."""

from typing import List, Tuple

import numpy as np
import pytest

from nn_one_node.learning.config import DEFAULTS
from nn_one_node.learning.health import (GUESS_MIN_ROWS, REFUSED_RUN, SILENCE_MIN_SEC,
                                         UNDEPLOYED_RUN, TrainerHealth, majority_rate,
                                         silence_limit)
from nn_one_node.learning.trainer_core import TrainerCore

N = 2


class Log:
    """An rclpy-style logger that keeps (level, text)."""

    def __init__(self) -> None:
        self.lines: List[Tuple[str, str]] = []

    def _at(level):
        def log(self, text, **_kwargs):
            self.lines.append((level, text))
        return log
    debug, info, warning, error = _at('debug'), _at('info'), _at('warning'), _at('error')


def make(active=lambda: True, **values) -> Tuple[TrainerCore, Log]:
    log = Log()
    core = TrainerCore({**DEFAULTS, 'num_features': N, 'weights': [0.0] * N, 'predictor_node': '',
                        **values}, logger=log, active=active)
    core.health.topic = '/robot1/labeled_samples'
    return core, log


def rows(rng, m, w=(2.0, -3.0)):
    X = rng.normal(size=(m, N))
    return np.column_stack([X, (X @ np.asarray(w) > 0).astype(float)])


def learning_problems(core, now):
    return core.problems(now)  # predictor_node '': no deployment problem either


# ----------------------------------------------------------------------- the label topic
def test_the_limit_is_ten_train_periods_and_at_least_a_minute():
    assert silence_limit(1.0) == SILENCE_MIN_SEC == 60.0
    assert silence_limit(30.0) == 300.0


def test_a_label_topic_silent_since_the_start_then_after_samples_warns_with_what_to_check():
    core, _ = make()
    assert core.problems(100.0) == []  # the first status: listening from here
    assert core.problems(159.0) == []
    (problem,) = core.problems(160.0)
    assert problem.startswith('no labeled sample on /robot1/labeled_samples since the trainer '
                              'started 60 s ago (WARN after 60 s)'), problem
    assert 'ros2 topic hz /robot1/labeled_samples' in problem
    assert core.counters(160.0)['seconds since last labeled sample'] == 'never'

    core.receive(rows(np.random.default_rng(1), 20), now=170.0)
    assert core.problems(229.0) == []
    assert core.counters(229.0)['seconds since last labeled sample'] == '59.0'
    (problem,) = core.problems(231.5)
    assert problem.startswith('no labeled sample on /robot1/labeled_samples for 62 s (WARN '
                              'after 60 s): its publisher stopped?'), problem
    # a refused message is a message heard: the topic is not silent (the refusal has its WARN)
    core.refuse_message('length', 'expected 3 values for one sample, got 4', 232.0, 4)
    assert core.problems(233.0) == []


def test_no_silence_while_inactive_or_before_the_clock_and_a_jump_back_starts_again():
    state = {'active': False}
    core, _ = make(active=lambda: state['active'], train_period=10.0)  # limit: 100 s
    assert core.problems(0.0) == core.problems(500.0) == []  # inactive
    state['active'] = True
    assert core.problems(0.0) == []  # use_sim_time before /clock ticks: not listening yet
    assert core.problems(1000.0) == [] and core.problems(1099.0) == []
    assert core.problems(1100.0)  # 100 s since the activation
    state['active'] = False
    assert core.problems(1200.0) == []
    state['active'] = True
    assert core.problems(1250.0) == []  # active again: the silence counts from here
    core.receive(rows(np.random.default_rng(2), 5), now=1260.0)
    assert core.problems(1359.0) == [] and core.problems(1361.0)
    assert core.problems(5.0) == []  # time jumped back (a world reset): counting again
    assert core.problems(104.0) == [] and core.problems(105.0)


# ------------------------------------------------------------------------- refused rows
def test_rows_of_the_wrong_width_warn_with_the_widths_and_a_kept_row_ends_it():
    core, _ = make()
    core.problems(1.0)
    for k in range(REFUSED_RUN - 1):
        core.refuse_message('length', 'expected 3 values for one sample, got 4', 2.0 + k, 4)
    assert learning_problems(core, 12.0) == []  # nine: not yet "every row lately"
    core.refuse_message('length', 'expected 3 values for one sample, got 4', 12.0, 4)
    (problem,) = learning_problems(core, 12.5)
    assert problem == ('every labeled sample refused lately (the last 10, none kept): rows have '
                       '4 values, num_features is 2 (a row is 2 features, then the label): set '
                       'num_features to 3 on the trainer and the predictor, or publish 3 values '
                       'a row')
    assert core.counters(12.5)['samples refused in a row'] == 10
    assert core.messages_refused.by_kind == {'length': 10}
    core.receive(rows(np.random.default_rng(3), 1), now=13.0)
    assert learning_problems(core, 13.5) == []
    assert core.counters(13.5)['samples refused in a row'] == 0


def test_rows_refused_by_screening_say_why_by_kind():
    core, _ = make()
    bad = rows(np.random.default_rng(4), 6)
    bad[:3, 0] = np.nan
    bad[3:, N] = 2.0  # labels outside [0, 1] for the sigmoid model
    core.receive(bad, now=1.0)
    core.receive(bad, now=2.0)
    (problem,) = learning_problems(core, 3.0)
    assert problem.startswith('every labeled sample refused lately (the last 12, none kept): '
                              'rows hold NaN or infinite values'), problem
    assert "labels outside [0, 1] for the sigmoid model: publish 0/1 labels (the assembler's "\
           'label_threshold)' in problem
    # a message with some rows kept is not "every row"
    mixed = rows(np.random.default_rng(5), 4)
    mixed[0, 1] = np.inf
    core.receive(mixed, now=4.0)
    assert learning_problems(core, 5.0) == [] and core.health.refused_run == 0


def test_a_layout_that_says_no_width_keeps_the_codecs_reason():
    core, _ = make()
    for k in range(REFUSED_RUN):
        core.refuse_message('layout', 'layout has 3 dims; expected 0, 1 or 2', float(k + 1))
    (problem,) = learning_problems(core, 11.0)
    assert problem.endswith('none kept): layout has 3 dims; expected 0, 1 or 2'), problem


# ------------------------------------------------------------------- the constant guess
def imbalanced(rng, m, ones=0.2):
    X = rng.normal(size=(m, N))
    y = (rng.random(m) < ones).astype(float)
    return np.column_stack([X, y])


def test_accuracy_below_the_majority_rate_warns_once_a_model_scored_the_whole_window():
    core, _ = make(metrics_window=200)
    core.training_enabled = False
    rng = np.random.default_rng(6)
    # the initial zero weights answer 0.5 (class 1) for everything: far below the majority
    # class (0, about 80 %), but that is no model yet: no WARN
    core.receive(imbalanced(rng, 300), now=1.0)
    assert core.policy.metrics()['accuracy'] < 0.3
    assert learning_problems(core, 2.0) == []
    # a model set by hand that answers class 1 almost everywhere (bias 3): worse than the guess
    core.apply({**core.values, 'weights': [0.1, 0.1], 'bias': 3.0})
    core.receive(imbalanced(rng, 150), now=3.0)
    assert learning_problems(core, 4.0) == []  # 50 of the 200 scored by the initial weights
    core.receive(imbalanced(rng, 50), now=5.0)
    (problem,) = learning_problems(core, 6.0)
    m = core.policy.metrics()
    labels = core.policy.buffer.newest(200)[1]
    assert problem.startswith(f'prequential accuracy {m["accuracy"]:.3f} over the last 200 '
                              f'samples is below the constant guess '
                              f'{majority_rate(labels):.3f} (always the majority class)'), problem
    assert core.counters(6.0)['majority class rate'] == f'{majority_rate(labels):.4f}'
    # a model that predicts class 0: as good as the guess, not below it
    core.apply({**core.values, 'weights': [0.0, 0.0], 'bias': -3.0})
    core.receive(imbalanced(rng, 200), now=7.0)
    assert learning_problems(core, 8.0) == []


def test_too_few_rows_or_a_linear_model_are_never_judged_against_the_guess():
    core, _ = make(metrics_window=GUESS_MIN_ROWS - 1, weights=[0.1, 0.1], bias=3.0)
    core.training_enabled = False
    core.apply({**core.values, 'bias': 4.0})
    core.receive(imbalanced(np.random.default_rng(7), 400), now=1.0)
    assert core.policy.metrics()['accuracy'] < 0.5 and learning_problems(core, 2.0) == []
    lin, _ = make(activation='linear', learning_rate=0.1)
    lin.training_enabled = False
    lin.apply({**lin.values, 'bias': 3.0})
    lin.receive(imbalanced(np.random.default_rng(8), 400), now=1.0)
    assert learning_problems(lin, 2.0) == []
    assert lin.counters(2.0)['majority class rate'] == '-'


# ------------------------------------------------------------------------ no deployment
def test_refusals_log_at_info_and_warn_only_when_twenty_in_a_row():
    rng = np.random.default_rng(9)
    core, log = make(activation='linear', learning_rate=1e6, min_samples=5)
    core.training_enabled = False  # updates only when called, below
    for k in range(UNDEPLOYED_RUN - 1):
        core.receive(rows(rng, 10), now=1.0 + k)  # new rows each time: never an idle update
        assert core.update(2.0 + k).startswith('refused'), core.last_update_reason
    assert learning_problems(core, 30.0) == []
    assert core.counters(30.0)['updates not deployed in a row'] == UNDEPLOYED_RUN - 1
    refusals = [(level, text) for level, text in log.lines if 'not deployed' in text]
    assert refusals and all(level == 'info' for level, _ in refusals), refusals
    core.receive(rows(rng, 10), now=31.0)
    core.update(32.0)
    (problem,) = learning_problems(core, 33.0)
    assert problem.startswith('no update deployed in the last 20 (the model in force stays; '
                              '~/train_now answers why): last: refused'), problem
    assert 'learning_rate 1e+06' in problem
    assert log.lines[-1][0] == 'warning' and log.lines[-1][1].startswith(
        '20 updates in a row not deployed, the previous model stays: refused'), log.lines[-1]
    # a learning rate that works: deployed, and the WARN is gone
    core.apply({**core.values, 'learning_rate': 0.1})
    core.receive(rows(rng, 10), now=34.0)
    assert core.update(35.0).startswith('deployed')
    assert learning_problems(core, 36.0) == []
    assert core.counters(36.0)['updates not deployed in a row'] == 0


def test_the_health_alone_counts_failed_updates_too():
    h = TrainerHealth(3)
    for _ in range(UNDEPLOYED_RUN):
        h.updated(False, 'update failed: bce needs labels in [0, 1]')
    (problem,) = h.problems(1.0, active=False, train_period=1.0)
    assert problem.endswith('last: update failed: bce needs labels in [0, 1]')
    assert h.updated(True, 'deployed') == 0 and h.problems(1.0, False, 1.0) == []


@pytest.mark.parametrize('labels,rate', [([0, 0, 0, 1], 0.75), ([1, 1, 0.6, 0.2], 0.75),
                                         ([0, 1], 0.5)])
def test_majority_rate_reads_labels_as_the_accuracy_does(labels, rate):
    assert majority_rate(np.asarray(labels, dtype=float)) == rate
