"""The installed `predictor` executable as a process, driven over real DDS by a test node."""

import math
import signal

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import qos_profile_sensor_data
from rclpy.serialization import serialize_message
from rosbench import diagnostic_values
from std_msgs.msg import Float64MultiArray, MultiArrayDimension

from nn_one_node.ros.codecs import matrix_to_msg
from nn_one_node.model import NeuronModel

W = [0.5, -1.25, 2.0]
B = 0.1


def one(values):
    return Float64MultiArray(data=[float(v) for v in values])


def start_predictor(ros, **params):
    values = {'num_features': 3, 'weights': W, 'bias': B, 'diagnostics_period': 0.2}
    values.update(params)
    proc = ros.start('predictor', values)
    pub = ros.publisher(Float64MultiArray, 'features')
    out = ros.collect(Float64MultiArray, 'prediction')
    ros.handshake(pub, one([0.0, 0.0, 0.0]), out)
    return proc, pub, out


def prediction(msg):
    return np.asarray(msg.data)


def test_single_and_batch_predictions_match_the_model_core(ros):
    proc, pub, out = start_predictor(ros)
    core = NeuronModel(3, weights=W, bias=B)
    rng = np.random.default_rng(1)
    singles = rng.normal(0, 2, size=(5, 3))
    for x in singles:
        ros.ask(pub, one(x), out)
    batch = rng.normal(0, 2, size=(7, 3))
    ros.ask(pub, matrix_to_msg(batch), out)
    one_dim = Float64MultiArray(data=[0.3, -0.2, 0.9])
    one_dim.layout.dim = [MultiArrayDimension(label='features', size=3, stride=3)]
    ros.ask(pub, one_dim, out)
    for msg, x in zip(out[:5], singles):
        assert msg.layout.dim[0].label == 'samples'
        assert msg.layout.dim[0].size == 1 and msg.layout.dim[0].stride == 1
        np.testing.assert_allclose(prediction(msg), core.predict(x), rtol=0, atol=1e-15)
    assert out[5].layout.dim[0].size == 7 and out[5].layout.dim[0].stride == 7
    np.testing.assert_allclose(prediction(out[5]), core.predict(batch), rtol=0, atol=1e-15)
    np.testing.assert_allclose(prediction(out[6]), core.predict([0.3, -0.2, 0.9]), atol=1e-15)
    assert proc.stop(signal.SIGINT) == 0


def test_linear_activation_and_a_best_effort_publisher(ros):
    ros.start('predictor', {'num_features': 3, 'weights': W, 'bias': B, 'activation': 'linear'})
    pub = ros.publisher(Float64MultiArray, 'features', qos_profile_sensor_data)
    out = ros.collect(Float64MultiArray, 'prediction')
    ros.handshake(pub, one([1.0, 1.0, 1.0]), out)
    reply = ros.ask(pub, one([1.0, 2.0, 3.0]), out)
    assert prediction(reply)[0] == pytest.approx(0.5 - 2.5 + 6.0 + 0.1, abs=1e-12)


@pytest.mark.parametrize('atomic', [False, True])
def test_weight_changes_through_the_parameter_services_apply_to_the_next_message(ros, atomic):
    _, pub, out = start_predictor(ros)
    new_w, new_b = [-3.0, 0.25, 1.5], -0.75
    results = ros.set_parameters('/predictor', {'weights': new_w, 'bias': new_b}, atomic=atomic)
    for r in (results if isinstance(results, list) else [results]):
        assert r.successful, r.reason
    x = [0.2, -0.4, 0.6]
    reply = ros.ask(pub, one(x), out)
    expected = NeuronModel(3, weights=new_w, bias=new_b).predict(x)
    np.testing.assert_allclose(prediction(reply), expected, atol=1e-15)
    got = ros.get_parameters('/predictor', ['weights', 'bias', 'num_features'])
    assert list(got['weights']) == new_w and got['bias'] == new_b and got['num_features'] == 3


def bad_messages():
    wrong_len = one([1.0, 2.0])
    nan = one([1.0, math.nan, 0.0])
    inf = one([math.inf, 0.0, 0.0])
    bad_stride = matrix_to_msg(np.ones((2, 3)))
    bad_stride.layout.dim[0].stride = 5
    short_batch = matrix_to_msg(np.ones((2, 3)))
    short_batch.layout.dim[0].size = 3  # says 3 rows, carries 2
    short_batch.layout.dim[0].stride = 9
    empty = matrix_to_msg(np.ones((0, 3)))
    three_d = matrix_to_msg(np.ones((2, 3)))
    three_d.layout.dim.append(MultiArrayDimension(label='x', size=1, stride=1))
    offset = one([1.0, 2.0, 3.0])
    offset.layout.data_offset = 10
    wrong_width = matrix_to_msg(np.ones((2, 4)))
    nan_in_batch = matrix_to_msg(np.array([[1.0, 2.0, 3.0], [0.0, np.nan, 1.0]]))
    # x . w + b overflows to +inf: the sigmoid would answer 1.0 (and 0.0 for -inf), for a z
    # that was never computed; with other signs an overflow gives a wrong sign or NaN
    overflow = one([0.0, 0.0, 1e308])
    overflow_batch = matrix_to_msg(np.array([[1.0, 2.0, 3.0], [1e308, -1e308, 1e308]]))
    return {'wrong length': wrong_len, 'nan': nan, 'inf': inf, 'bad stride': bad_stride,
            'short batch': short_batch, 'empty batch': empty, '3-d layout': three_d,
            'offset past end': offset, 'wrong width': wrong_width, 'nan in batch': nan_in_batch,
            'overflow to +inf': overflow, 'overflow in a batch': overflow_batch}


def refused_and_still_answering(ros, pub, out, diags, bad):
    """Publish each of ``bad`` (messages, or serialized bytes) followed by a good message: only
    the good one is answered, as the core answers it. Returns the predictor's diagnostics once
    every bad one is counted, after checking that received = predicted + refused."""
    core = NeuronModel(3, weights=W, bias=B)
    for name, msg in bad.items():
        pub.publish(msg)
        good = [0.1 * len(name), -0.5, 0.25]
        pub.publish(one(good))
        ros.wait_for_messages(out, 1, what=f'the prediction after the {name!r} message')
        assert len(out) == 1, f'the {name!r} message was answered'
        np.testing.assert_allclose(prediction(out[0]), core.predict(good), atol=1e-15)
        out.clear()

    def counted():
        d = diagnostic_values(diags, 'predictor')
        return d if d and int(d['messages refused']) == len(bad) else None
    d = ros.spin_until(counted, what='the refusals counted in /diagnostics')
    assert int(d['messages received']) == int(d['messages predicted']) + len(bad)
    return d


def test_bad_messages_are_refused_counted_and_the_node_goes_on(ros):
    proc, pub, out = start_predictor(ros)
    diags = ros.collect(DiagnosticArray, '/diagnostics')
    bad = bad_messages()
    d = refused_and_still_answering(ros, pub, out, diags, bad)
    assert int(d['refused: non-finite']) == 3
    assert int(d['refused: empty']) == 1
    assert int(d['refused: overflow']) == 2
    log = proc.output()
    for kind in ('length', 'layout', 'empty', 'non-finite', 'overflow'):
        assert f'features message refused ({kind}' in log, f'no warning for {kind}'
    assert 'NaN or infinite' in log and 'strides' in log
    assert proc.alive()


def test_bad_parameter_values_are_refused_with_a_reason_and_change_nothing(ros):
    _, pub, out = start_predictor(ros)
    cases = {
        'weights': [[1.0, 2.0], [1.0, math.nan, 0.0], [math.inf, 0.0, 0.0], 'abc', [1, 2, 3]],
        'bias': [math.nan, math.inf, 'x', [1.0]],
        'activation': ['relu', 3.0],
        'num_features': [4],
        'diagnostics_period': [0.5],
    }
    for name, values in cases.items():
        for value in values:
            (result,) = ros.set_parameters('/predictor', {name: value})
            assert not result.successful, f'{name}={value!r} was accepted'
            assert result.reason, f'{name}={value!r} refused without a reason'
    # atomically: one bad value refuses the whole change
    r = ros.set_parameters('/predictor', {'weights': [9.0, 9.0, 9.0], 'bias': math.nan},
                           atomic=True)
    assert not r.successful and 'bias' in r.reason
    got = ros.get_parameters('/predictor', ['weights', 'bias', 'activation', 'num_features'])
    assert list(got['weights']) == W and got['bias'] == B
    assert got['activation'] == 'sigmoid' and got['num_features'] == 3
    reply = ros.ask(pub, one([1.0, 1.0, 1.0]), out)
    expected = NeuronModel(3, weights=W, bias=B).predict([1.0, 1.0, 1.0])
    np.testing.assert_allclose(prediction(reply), expected, atol=1e-15)


def test_rows_outside_the_trained_range_are_counted_by_feature_and_warned_of(ros):
    # The trainer deploys each model with the ranges it was trained on (trained_min/max).
    _, pub, out = start_predictor(ros)
    diags = ros.collect(DiagnosticArray, '/diagnostics')
    r = ros.set_parameters('/predictor', {'weights': W, 'bias': B,
                                          'trained_min': [-1.0, -1.0, 11.9],
                                          'trained_max': [1.0, 1.0, 12.4]}, atomic=True)
    assert r.successful, r.reason
    # the third feature drifts below its range (a draining battery), one row in four; the
    # rows go one by one (the fast path) and in batches (the vectorized one)
    rows = [[0.5, -0.5, 12.0], [0.1, 0.2, 12.3], [0.0, 0.9, 12.1], [0.3, 0.3, 11.5]] * 30
    for x in rows[:60]:
        ros.ask(pub, one(x), out)
    ros.ask(pub, matrix_to_msg(np.array(rows[60:])), out)
    core = NeuronModel(3, weights=W, bias=B)  # the ranges change no prediction
    np.testing.assert_allclose(prediction(out[-1]), core.predict(np.array(rows[60:])),
                               atol=1e-15)

    def counted(statuses, n):
        d = diagnostic_values(statuses, 'predictor')
        return d if d and int(d['rows since the model came']) == n else None
    d = ros.spin_until(lambda: counted(diags, len(rows)), what='the rows counted')
    assert d['rows outside the trained range, by feature'] == '2: 30'
    status = [s for a in diags for s in a.status if s.name.endswith('predictor')][-1]
    assert status.level == b'\x01' and 'feature 2: 30 of 120 rows' in status.message
    # refused: a range the wrong way round, NaN, the wrong length; nothing changes
    for bad in ({'trained_min': [0.0, 0.0, 13.0]}, {'trained_max': [1.0, math.nan, 12.4]},
                {'trained_min': [0.0, 0.0]}):
        (result,) = ros.set_parameters('/predictor', bad)
        assert not result.successful and 'trained_m' in result.reason, (bad, result.reason)
    # a new model starts the count again; unknown ranges (-inf, inf) count nothing
    r = ros.set_parameters('/predictor', {'weights': W, 'bias': 0.5,
                                          'trained_min': [-math.inf] * 3,
                                          'trained_max': [math.inf] * 3}, atomic=True)
    assert r.successful, r.reason
    for x in rows[:8]:
        ros.ask(pub, one(x), out)
    d = ros.spin_until(lambda: counted(diags, 8), what='the count started again')
    assert d['rows outside the trained range, by feature'] == 'none'


@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM])
def test_signals_exit_zero(ros, sig):
    proc, _, _ = start_predictor(ros)
    assert proc.stop(sig, timeout=5.0) == 0


@pytest.mark.parametrize('params, reason', [
    ({'num_features': 0}, 'out of range'),
    ({'num_features': 2, 'weights': [1.0]}, 'weights must have num_features = 2'),
    ({'num_features': 1, 'diagnostics_period': 1e-9}, 'diagnostics_period must be 0 .* at least'),
    ({'num_features': 1,
      'qos_overrides': {'/features': {'subscription': {'reliability': 'bogus'}}}},
     'cannot start: .*bogus'),
    ({'num_features': 1, 'qos_overrides': {'/features': {'subscription': {'depth': -1}}}},
     'cannot start: '),
    ({'num_features': 1, 'activation': 'tanh'}, 'activation must be one of'),
    ({'num_features': 1, 'executor': 'fast'}, 'executor must be one of'),
])
def test_bad_start_up_configuration_exits_2_with_the_reason(ros, params, reason):
    proc = ros.start('predictor', params)
    proc.wait_for_output(reason)
    assert proc.proc.wait(timeout=20) == 2
    assert 'Traceback' not in proc.output()


def malformed_payloads():
    """Serialized payloads no well-behaved writer sends; any DDS participant can."""
    good = serialize_message(one([1.0, 2.0, 3.0]))
    claims_more = bytearray(good)
    claims_more[12:16] = (1000).to_bytes(4, 'little')  # data length 1000, 3 values follow
    huge_dims = bytearray(good)
    huge_dims[4:8] = (2**31).to_bytes(4, 'little')  # 2**31 layout dimensions
    # name: (payload, the kind of refusal); a bare header reads as a message with no values
    return {'truncated': (good[:18], 'malformed'), 'header only': (good[:4], 'length'),
            'length past the end': (bytes(claims_more), 'malformed'),
            'dimension count past the end': (bytes(huge_dims), 'malformed')}


def test_malformed_serialized_messages_are_refused_counted_and_the_node_goes_on(ros):
    proc, pub, out = start_predictor(ros)
    diags = ros.collect(DiagnosticArray, '/diagnostics')
    bad = malformed_payloads()
    # bytes: published as they are
    d = refused_and_still_answering(ros, pub, out, diags, {k: v[0] for k, v in bad.items()})
    kinds = [kind for _, kind in bad.values()]
    for kind in set(kinds):
        assert int(d[f'refused: {kind}']) == kinds.count(kind), (kind, d)
    assert 'features message refused (malformed' in proc.output()
    assert proc.alive()
