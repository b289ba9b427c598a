"""The benchmark's source and sink handle serialized messages (bench/endpoints.py): what they
publish and what they read must be exactly what the message form would have been, or every
latency the benchmarks report is wrong."""

import sys
from pathlib import Path

import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from std_msgs.msg import Float64MultiArray

from nn_one_node.ros.codecs import matrix_to_msg, value_to_msg, vector_to_msg

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / 'bench'))
from endpoints import (StampedSample, decode_send_ns, encode, raw_first_value,  # noqa: E402
                       sample_message)


@pytest.mark.parametrize('n,rows', [(1, 1), (4, 1), (64, 1), (1024, 1), (64, 1000), (3, 2)])
def test_the_source_patches_time_and_sequence_into_the_serialized_message(n, rows):
    sample = StampedSample(n, rows)
    assert sample.raw, 'the serialized path turned itself off on this middleware'
    stamp = 123_456_789_012_345
    for seq in (0.0, 17.0, 99999.0):  # the same buffer, patched again each time
        out = sample.stamped(encode(stamp + int(seq)), seq)
        assert isinstance(out, bytes)
        got = deserialize_message(out, Float64MultiArray)
        expect = sample_message(n, rows)
        expect.data[0] = encode(stamp + int(seq))
        if n > 1:
            expect.data[1] = seq
        assert got.data.tobytes() == expect.data.tobytes()
        assert [(d.label, d.size, d.stride) for d in got.layout.dim] == [
            (d.label, d.size, d.stride) for d in expect.layout.dim]
        # and the time it carries comes back out, for any latency below the encoding's period
        recv = stamp + int(seq) + 3_000_000
        sent = decode_send_ns(np.array([recv]), np.array([got.data[0]]), 'raw')
        assert sent[0] == stamp + int(seq)


@pytest.mark.parametrize('msg', [
    sample_message(64), sample_message(4, 3), value_to_msg(0.123456789),
    vector_to_msg(np.array([0.75, 0.5])), matrix_to_msg(np.arange(12.0).reshape(3, 4) - 5.5)],
    ids=['row', 'batch', 'prediction', 'predictions', 'matrix'])
def test_the_sink_reads_the_first_value_of_any_output(msg):
    first = raw_first_value()
    assert first is not None, 'the serialized path turned itself off on this middleware'
    msg.data[0] = -12.345678901234567
    assert first(serialize_message(msg)) == -12.345678901234567


def test_set_bool_sends_the_request_again_when_no_reply_comes(domain_id):
    """A reply Fast DDS drops (server not yet matched to the client's reply reader) must not
    stall the benchmark: the switch is set again, and the reply taken is the one to the last
    request, not a late one to an earlier request."""
    import threading

    import rclpy
    from rclpy.callback_groups import ReentrantCallbackGroup
    from rclpy.executors import MultiThreadedExecutor
    from std_srvs.srv import SetBool

    from endpoints import Source

    rclpy.init(domain_id=domain_id)
    executor = MultiThreadedExecutor(num_threads=2)
    stop = threading.Event()
    spinner = None
    try:
        server = rclpy.create_node('switch_server')
        resent = threading.Event()
        seen = []

        def on_request(request, response):
            seen.append(request.data)
            number = len(seen)
            if number == 1:  # the first reply is held back until the request comes again
                resent.wait(timeout=30.0)
            else:
                resent.set()
            response.success = True
            response.message = f'reply to request {number}'
            return response

        server.create_service(SetBool, 'switch', on_request,
                              callback_group=ReentrantCallbackGroup())
        executor.add_node(server)

        def spin():
            while not stop.is_set():
                executor.spin_once(timeout_sec=0.1)
        spinner = threading.Thread(target=spin, daemon=True)
        spinner.start()

        source = Source([], [])
        answer = source.set_bool('/switch', True, timeout=30.0, retry_s=0.5)
        assert answer['success'], answer
        assert answer['attempts'] >= 2, answer
        assert answer['message'] == f'reply to request {answer["attempts"]}'
        assert seen[:answer['attempts']] == [True] * answer['attempts']
    finally:
        stop.set()
        if spinner is not None:
            spinner.join(timeout=10.0)
        executor.shutdown()
        rclpy.shutdown()
