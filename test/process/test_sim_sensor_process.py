"""The installed `sim_sensor` executable as a process, observed over real DDS by a test node."""

import signal

import numpy as np
import pytest
from rclpy.qos import qos_profile_sensor_data
from rosgraph_msgs.msg import Clock
from std_msgs.msg import Float64MultiArray

from nn_one_node.ros.codecs import matrix_from_msg
from nn_one_node.model import NeuronModel
from nn_one_node.sim.scenario import Scenario, accuracy

N = Scenario().num_features


def streams(seed):
    """The scenario streams the node draws from: (labels, features)."""
    labels, features = np.random.SeedSequence(seed).spawn(2)
    return Scenario(labels), Scenario(features)


def find_run(expected, received):
    """Index in ``expected`` where ``received`` starts as a consecutive run, else None."""
    for i in range(len(expected) - len(received) + 1):
        if all(np.array_equal(e, r) for e, r in zip(expected[i:], received)):
            return i
    return None


def test_publishes_the_seeded_scenario_on_both_topics(ros):
    proc = ros.start('sim_sensor', {'seed': 7, 'feature_rate': 50.0, 'label_rate': 20.0,
                                    'label_batch': 8})
    features = ros.collect(Float64MultiArray, 'features', qos_profile_sensor_data)
    labeled = ros.collect(Float64MultiArray, 'labeled_samples')
    ros.wait_for_messages(labeled, 3, what='labeled batches')
    ros.wait_for_messages(features, 3, what='feature rows')

    for msg in labeled[:3]:
        dims = msg.layout.dim
        assert [(d.label, d.size, d.stride) for d in dims] == [
            ('samples', 8, 8 * (N + 1)), ('features+label', N + 1, N + 1)]
    for msg in features[:3]:
        assert len(msg.layout.dim) == 0 and len(msg.data) == N

    # Exactly the scenario's draws for the seed (discovery may have cost the first messages).
    label_stream, feature_stream = streams(7)
    expected = [label_stream.labeled_rows(8) for _ in range(200)]
    got = [matrix_from_msg(m, N + 1) for m in labeled[:3]]
    assert find_run(expected, got) is not None, "labeled batches are not the seed's stream"
    expected_rows = [feature_stream.sample(1)[0][0] for _ in range(1000)]
    first = np.asarray(features[0].data)
    assert any(np.array_equal(first, e) for e in expected_rows)

    rows = np.vstack(got)
    truth = NeuronModel(N, weights=label_stream.true_weights, bias=label_stream.true_bias)
    assert np.all((rows[:, N] > 0.0) & (rows[:, N] < 1.0))
    assert accuracy(truth.predict(rows[:, :N]), rows[:, N]) > 0.85
    assert proc.stop(signal.SIGINT) == 0


def test_single_rows_and_bernoulli_labels_switched_at_runtime(ros):
    ros.start('sim_sensor', {'feature_rate': 0.0, 'label_rate': 50.0, 'label_batch': 1})
    labeled = ros.collect(Float64MultiArray, 'labeled_samples')
    ros.wait_for_messages(labeled, 2, what='single labeled rows')
    for msg in labeled[:2]:
        assert len(msg.layout.dim) == 0 and len(msg.data) == N + 1
        assert 0.0 < msg.data[N] < 1.0

    (result,) = ros.set_parameters('/sim_sensor', {'bernoulli_labels': True})
    assert result.successful, result.reason
    (result,) = ros.set_parameters('/sim_sensor', {'label_batch': 30})
    assert result.successful, result.reason

    def hard_batch():
        for msg in labeled:
            if len(msg.layout.dim) == 2 and msg.layout.dim[0].size == 30:
                return msg
        return None
    msg = ros.spin_until(hard_batch, what='a batch of 30 Bernoulli-labeled rows')
    labels = matrix_from_msg(msg, N + 1)[:, N]
    assert set(np.unique(labels)) <= {0.0, 1.0}


def test_bad_parameter_values_are_refused_and_read_only_ones_stay(ros):
    ros.start('sim_sensor', {'feature_rate': 0.0, 'label_rate': 0.0})
    cases = {'label_batch': [0, 10**6, 2.5], 'feature_rate': [5.0], 'seed': [3],
             'bernoulli_labels': ['yes'], 'label_rate': [-1.0]}
    for name, values in cases.items():
        for value in values:
            (result,) = ros.set_parameters('/sim_sensor', {name: value})
            assert not result.successful, f'{name}={value!r} was accepted'
            assert result.reason
    got = ros.get_parameters('/sim_sensor', ['label_batch', 'feature_rate', 'seed'])
    assert got == {'label_batch': 50, 'feature_rate': 0.0, 'seed': 0}


@pytest.mark.parametrize('params, reason', [
    ({'feature_rate': 5000.0}, 'out of range|range'),
    ({'label_batch': 0}, 'out of range|range'),
    ({'executor': 'fast'}, 'executor must be one of'),
    # 1 / rate would overflow the timer's int64 nanoseconds (a traceback, exit 1, before)
    ({'feature_rate': 1e-10}, 'feature_rate must be 0 .* at least 0.001'),
    ({'label_rate': 1e-300}, 'label_rate must be 0 .* at least 0.001'),
    ({'qos_overrides': {'/features': {'publisher': {'reliability': 'bogus'}}}},
     'cannot start: .*bogus'),
])
def test_bad_start_up_configuration_exits_2(ros, params, reason):
    proc = ros.start('sim_sensor', params)
    proc.wait_for_output(reason)
    assert proc.proc.wait(timeout=20) == 2
    assert 'Traceback' not in proc.output()


def test_with_use_sim_time_nothing_is_published_until_clock_ticks(ros):
    ros.start('sim_sensor', {'feature_rate': 20.0, 'label_rate': 20.0, 'use_sim_time': True})
    labeled = ros.collect(Float64MultiArray, 'labeled_samples')
    features = ros.collect(Float64MultiArray, 'features', qos_profile_sensor_data)
    clock = ros.publisher(Clock, '/clock')
    ros.wait_for_subscribers(clock, 1)
    ros.spin_until(lambda: ros.node.count_publishers('labeled_samples') >= 1,
                   what='the sim_sensor publisher')
    ros.spin_for(1.5)  # 30 ticks of wall time: none may fire without /clock
    assert labeled == [] and features == []

    sim_ns = [10**9]

    def tick():
        sim_ns[0] += 50_000_000  # 50 ms of simulated time per loop
        msg = Clock()
        msg.clock.sec, msg.clock.nanosec = divmod(sim_ns[0], 10**9)
        clock.publish(msg)
        return len(labeled) >= 2 and len(features) >= 2
    ros.spin_until(tick, what='messages once /clock ticks')


def test_sigterm_exits_zero(ros):
    proc = ros.start('sim_sensor')
    proc.wait_for_output('simulating 5 sensors')
    assert proc.stop(signal.SIGTERM, timeout=5.0) == 0
