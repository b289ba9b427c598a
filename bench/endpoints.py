"""The source and the sink of the benchmarks: each a process of its own, driven over stdin/stdout.

    python bench/endpoints.py source '{"inputs": [...], "samples": [...]}'
    python bench/endpoints.py sink '{"outputs": {"/topic": "raw" | "sigmoid"}}'

Each reads one JSON command per line on stdin and answers one JSON line on stdout (ROS logging
goes to stderr); end of input or ``{"cmd": "quit"}`` stops it. Every wait inside has a deadline.

The timestamp: the source writes its send time (``time.monotonic_ns``, CLOCK_MONOTONIC, one clock
for every process on the machine) into the first value of each sample, and the sequence number
into the second. So that the value survives the predictor's model as well as a relay, the node
under test is given weights e_0 and bias 0, and the time is encoded as ``z`` in (-30, 0]::

    z = -30 * (t mod P) / P,   P = 2**32 ns (4.3 s)

The relay passes ``z`` through; the predictor publishes ``sigmoid(z)``, which the sink inverts
exactly (``log(y) - log1p(-y)``, well conditioned for z <= 0) to within a nanosecond. The sink then
takes the send time as the latest time congruent to ``t mod P`` before the receive time, which is
right for any latency below 4.3 s. The predictor runs its default (sigmoid) model: no special mode.

Both ends handle serialized messages, so that what they cost per message (and take from the node
under test on a 2-core machine) is as little as rclpy allows: the source patches the two values
into the serialized form of its message and publishes the bytes; the sink subscribes raw and reads
the first value with the predictor's own ``MatrixDecoder``. Each checks itself against rclpy's
(de)serialization at start and uses messages where they disagree.
"""

from __future__ import annotations

import json
import os
import random
import struct
import sys
import threading
import time
from array import array
from typing import Any, Callable, Dict, List, Optional, TextIO

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from rclpy.serialization import deserialize_message, serialize_message
from std_msgs.msg import Float64MultiArray, MultiArrayDimension
from std_srvs.srv import SetBool

from nn_one_node.ros.codecs import _BYTE_ORDER, MatrixDecoder, _dims
from nn_one_node.ros.runtime import make_executor, spin
from procstat import cpu_delta, cpu_sample

PERIOD_NS = 1 << 32
Z_SPAN = 30.0
_SCALE = Z_SPAN / PERIOD_NS


def encode(t_ns: int) -> float:
    return -(t_ns & (PERIOD_NS - 1)) * _SCALE


def decode_send_ns(recv_ns: np.ndarray, values: np.ndarray, kind: str) -> np.ndarray:
    """Send times (ns) from receive times and the first value of each received message."""
    values = np.asarray(values, dtype=np.float64)
    if kind == 'sigmoid':
        with np.errstate(divide='ignore', invalid='ignore'):
            z = np.log(values) - np.log1p(-values)
    else:
        z = values
    residue = np.rint(-z / _SCALE).astype(np.int64)
    recv_ns = np.asarray(recv_ns, dtype=np.int64)
    return recv_ns - np.mod(recv_ns - residue, PERIOD_NS)


def sample_message(n: int, rows: int = 1) -> Float64MultiArray:
    """A features message of ``rows`` x ``n`` values (0.25), 2-D layout when rows > 1."""
    msg = Float64MultiArray()
    if rows > 1:
        msg.layout.dim = [MultiArrayDimension(label='samples', size=rows, stride=rows * n),
                          MultiArrayDimension(label='features', size=n, stride=n)]
    msg.data = array('d', [0.25]) * (rows * n)
    return msg


class StampedSample:
    """A features message the source publishes over and over with a new time and sequence number
    (its first two values): ``stamped(t, k)`` returns what to hand to ``Publisher.publish``, the
    serialized bytes with the two values patched in, or the message itself with them set where
    the patch does not deserialize to exactly that (another encoding)."""

    def __init__(self, n: int, rows: int = 1) -> None:
        self.msg = sample_message(n, rows)
        self.n = n
        raw = serialize_message(self.msg)
        order = _BYTE_ORDER.get(raw[:2])
        self._buf = bytearray(raw)
        self._offset = len(raw) - 8 * n * rows  # the data ends the message
        self._pack = struct.Struct((order or '<') + 'd').pack_into
        self.raw = False
        if order is not None and self._offset > 0:
            back = deserialize_message(self._patched(-1.5, 7.0), Float64MultiArray)
            expect = [-1.5, 7.0] if n > 1 else [-1.5]
            expect += list(self.msg.data)[len(expect):]
            self.raw = list(back.data) == expect and _dims(back) == _dims(self.msg)

    def _patched(self, t_value: float, seq: float) -> bytes:
        buf, off = self._buf, self._offset
        self._pack(buf, off, t_value)
        if self.n > 1:
            self._pack(buf, off + 8, seq)
        return bytes(buf)

    def stamped(self, t_value: float, seq: float):
        if self.raw:
            return self._patched(t_value, seq)
        self.msg.data[0] = t_value
        if self.n > 1:
            self.msg.data[1] = seq
        return self.msg


def raw_first_value() -> Optional[Callable[[bytes], float]]:
    """For a raw subscription: a serialized Float64MultiArray -> its first value, read by the
    predictor's ``MatrixDecoder`` (rclpy's deserializer takes what it does not parse); None where
    the decoder does not read bytes (``raw``) on this middleware."""
    reader = MatrixDecoder(1)
    if not reader.raw:
        return None
    parse = reader.parse

    def first(raw: bytes) -> float:
        parsed = parse(raw)
        data = (parsed.data if parsed is not None
                else deserialize_message(raw, Float64MultiArray).data)
        return float(data[0])
    return first


# ------------------------------------------------------------------------------------- source
class Source(Node):
    """Publishes timestamped samples on a schedule; fills a trainer; calls SetBool services."""

    def __init__(self, inputs: List[str], samples: List[str]) -> None:
        super().__init__('bench_source')
        # A sensor driver's QoS: best effort, as the predictor's subscription expects.
        self._pubs = {t: self.create_publisher(Float64MultiArray, t, qos_profile_sensor_data)
                      for t in inputs}
        # Training data is reliable, as the trainer's subscription (depth 1000) asks.
        self._sample_pubs = {t: self.create_publisher(Float64MultiArray, t,
                                                      QoSProfile(depth=1000))
                             for t in samples}
        self._call_executor = SingleThreadedExecutor(context=self.context)
        self._call_executor.add_node(self)
        self._bool_clients: Dict[str, Any] = {}
        self._messages: Dict[tuple, StampedSample] = {}

    def _message(self, n: int, rows: int) -> StampedSample:
        key = (n, rows)
        if key not in self._messages:
            self._messages[key] = StampedSample(n, rows)
        return self._messages[key]

    def subs(self, topic: str) -> Dict:
        pubs = self._pubs if topic in self._pubs else self._sample_pubs
        return {'count': pubs[topic].get_subscription_count()}

    def probe(self, topic: str, n: int, rows: int = 1) -> Dict:
        sample = self._message(n, rows)
        self._pubs[topic].publish(sample.stamped(encode(time.monotonic_ns()), 0.0))
        return {'ok': True}

    def run(self, topic: str, n: int, rate: float, count: int, warmup: int = 0, rows: int = 1,
            pids: Optional[Dict[str, int]] = None, drain: float = 0.05) -> Dict:
        """Publish ``warmup`` then ``count`` messages at ``rate``; CPU of ``pids`` over the
        ``count`` messages (plus ``drain`` seconds for the last one to be handled)."""
        pub = self._pubs[topic]
        stamped = self._message(n, rows).stamped
        pids = pids or {}
        period = 1e9 / rate
        total = warmup + count
        late = 0
        cpu0: Dict[str, Any] = {}
        first_ns = stamp = 0
        t0 = time.monotonic_ns() + 1_000_000
        for k in range(total):
            if k == warmup:
                cpu0 = {name: cpu_sample(pid) for name, pid in pids.items()}
            target = t0 + int(k * period)
            now = time.monotonic_ns()
            if target > now:
                time.sleep((target - now) * 1e-9)
            stamp = time.monotonic_ns()
            pub.publish(stamped(encode(stamp), float(k)))
            if k == warmup:
                first_ns = stamp
            elif k > warmup and stamp - target > period:
                late += 1
        last_ns = stamp
        time.sleep(drain)
        cpu = {name: cpu_delta(cpu0[name], cpu_sample(pid)) for name, pid in pids.items()}
        span = (last_ns - first_ns) * 1e-9
        return {'first_ns': first_ns, 'last_ns': last_ns, 'sent': count, 'late': late,
                'achieved_rate': (count - 1) / span if span > 0 else None,
                'window_s': span + drain, 'cpu': cpu}

    def run_interleaved(self, targets: List[Dict[str, Any]], rate: float, count: int,
                        block: int, warmup: int = 0, pids: Optional[Dict[str, int]] = None,
                        seed: int = 0) -> Dict[str, Dict]:
        """``count`` messages to each of ``targets`` ({'topic', 'n', 'pid'}) at ``rate``, in
        blocks of ``block`` messages taking turns in an order shuffled every turn (``seed``),
        so that a drift of the machine (its idle states, a neighbour's load) falls on every
        target alike. The CPU of each target's node
        (and of ``pids``) is summed over that target's own blocks only, read at the block
        boundaries, one period after the previous block's last message.
        """
        period = 1e9 / rate
        pids = pids or {}
        state = []
        for t in targets:
            state.append({'pub': self._pubs[t['topic']],
                          'stamped': self._message(t['n'], 1).stamped,
                          'n': t['n'], 'pid': t['pid'], 'sent': 0, 'late': 0,
                          'first_ns': None, 'last_ns': 0,
                          'cpu': {name: None for name in ['node', *pids]}})
        # Warm-up: a few messages to each, outside every window and every CPU count.
        t0 = time.monotonic_ns() + 1_000_000
        slot = 0
        for s in state:
            for _ in range(warmup):
                self._wait_slot(t0 + int(slot * period))
                s['pub'].publish(s['stamped'](encode(time.monotonic_ns()), 0.0))
                slot += 1
        self._wait_slot(t0 + int(slot * period))  # the last warm-up message handled
        slot += 1
        blocks = -(-count // block)
        order = random.Random(seed)
        for b in range(blocks):
            # A fresh order every turn: no target always follows the same one (whose caches,
            # or lingering work, it would inherit).
            for s in order.sample(state, len(state)):
                size = min(block, count - s['sent'])
                if size <= 0:
                    continue
                before = {'node': cpu_sample(s['pid'])}
                before.update({name: cpu_sample(pid) for name, pid in pids.items()})
                for _ in range(size):
                    target = t0 + int(slot * period)
                    self._wait_slot(target)
                    stamp = time.monotonic_ns()
                    s['pub'].publish(s['stamped'](encode(stamp), float(s['sent'])))
                    if s['first_ns'] is None:
                        s['first_ns'] = stamp
                    elif stamp - target > period:
                        s['late'] += 1
                    s['last_ns'] = stamp
                    s['sent'] += 1
                    slot += 1
                # The boundary: one period on, the block's last message has been handled.
                self._wait_slot(t0 + int(slot * period))
                after = {'node': cpu_sample(s['pid'])}
                after.update({name: cpu_sample(pid) for name, pid in pids.items()})
                slot += 1  # an empty slot: reading /proc delays no message
                for name in after:
                    d = cpu_delta(before[name], after[name])
                    acc = s['cpu'][name]
                    s['cpu'][name] = d if acc is None else {
                        k: (None if acc[k] is None or d[k] is None else acc[k] + d[k])
                        for k in d}
        achieved = rate * slot * period / max(time.monotonic_ns() - t0, 1)
        return {t['topic']: {'first_ns': s['first_ns'], 'last_ns': s['last_ns'],
                             'sent': s['sent'], 'late': s['late'], 'achieved_rate': achieved,
                             'window_s': s['sent'] / rate, 'cpu': s['cpu']}
                for t, s in zip(targets, state)}

    @staticmethod
    def _wait_slot(target_ns: int) -> None:
        now = time.monotonic_ns()
        if target_ns > now:
            time.sleep((target_ns - now) * 1e-9)

    def fill(self, topic: str, n: int, rows: int, messages: int, seed: int = 0,
             timeout: float = 60.0) -> Dict:
        """Publish ``messages`` labeled batches of ``rows`` rows (N features, then a 0/1 label
        from a known linear rule), reliably, waiting for the publisher's queue to drain."""
        pub = self._sample_pubs[topic]
        rng = np.random.default_rng(seed)
        w_true = np.linspace(-1.0, 1.0, n)
        deadline = time.monotonic() + timeout
        for i in range(messages):
            X = rng.normal(0.0, 1.0, size=(rows, n))
            y = (X @ w_true > 0.0).astype(np.float64)
            block = np.empty((rows, n + 1))
            block[:, :n] = X
            block[:, n] = y
            msg = Float64MultiArray()
            msg.layout.dim = [
                MultiArrayDimension(label='samples', size=rows, stride=rows * (n + 1)),
                MultiArrayDimension(label='features+label', size=n + 1, stride=n + 1)]
            msg.data = array('d', block.tobytes())
            pub.publish(msg)
            if time.monotonic() > deadline:
                return {'sent_rows': (i + 1) * rows, 'timed_out': True}
            time.sleep(0.005)  # a reliable writer's history is bounded: let it drain
        ok = pub.wait_for_all_acked(rclpy.duration.Duration(seconds=max(
            0.1, deadline - time.monotonic())))
        return {'sent_rows': messages * rows, 'acked': bool(ok)}

    def set_bool(self, service: str, data: bool, timeout: float = 30.0,
                 retry_s: float = 3.0) -> Dict:
        """Call a SetBool service; the request is sent again if no reply comes in ``retry_s``.

        Fast DDS drops a reply when the server has not yet matched the client's reply reader
        ('failed to send response (timeout)' in the server's log, ros2/rmw_fastrtps#467): a
        client made just before its first call risks it while many nodes are still being
        discovered. Setting a switch is idempotent, so sending it again is safe.
        """
        client = self._bool_clients.get(service)
        if client is None:
            client = self._bool_clients[service] = self.create_client(SetBool, service)
        if not client.wait_for_service(timeout_sec=timeout):
            return {'success': False, 'message': f'{service} not available within {timeout} s'}
        deadline = time.monotonic() + timeout
        attempts = 0
        while time.monotonic() < deadline:
            attempts += 1
            future = client.call_async(SetBool.Request(data=bool(data)))
            self._call_executor.spin_until_future_complete(
                future, timeout_sec=max(0.0, min(retry_s, deadline - time.monotonic())))
            if future.done():
                reply = future.result()
                return {'success': bool(reply.success), 'message': reply.message,
                        'attempts': attempts}
            client.remove_pending_request(future)
        return {'success': False, 'attempts': attempts,
                'message': f'no reply from {service} within {timeout} s ({attempts} requests)'}


# --------------------------------------------------------------------------------------- sink
class Sink(Node):
    """Records (receive time, first value) of every message on the output topics."""

    def __init__(self, outputs: Dict[str, str]) -> None:
        super().__init__('bench_sink')
        self.kinds = dict(outputs)
        self.records: Dict[str, List[tuple]] = {}
        self.last_ns: Dict[str, int] = {}
        self._first_value = raw_first_value()
        for topic in outputs:
            self.records[topic] = []
            self.create_subscription(Float64MultiArray, topic, self._callback(topic),
                                     QoSProfile(depth=100), raw=self._first_value is not None)
        self.diagnostics: Dict[str, Dict[str, str]] = {}
        self.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 100)

    def _callback(self, topic: str):
        rec = self.records[topic]
        clock = time.monotonic_ns
        first = self._first_value
        if first is None:
            def on_message(msg: Float64MultiArray) -> None:
                rec.append((clock(), msg.data[0]))
            return on_message

        def on_raw(raw: bytes) -> None:
            now = clock()
            rec.append((now, first(raw)))
        return on_raw

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            self.diagnostics[status.name] = {kv.key: kv.value for kv in status.values}

    def count(self, topic: str) -> Dict:
        return {'count': len(self.records[topic])}

    def reset(self, topic: str) -> Dict:
        self.records[topic].clear()
        return {'ok': True}

    def report(self, topic: str, first_ns: int, last_ns: int, quiet: float = 0.1,
               timeout: float = 5.0) -> Dict:
        """Latencies (us) of the messages sent in [first_ns, last_ns], once nothing has arrived
        for ``quiet`` seconds (or ``timeout`` passed)."""
        rec = self.records[topic]
        deadline = time.monotonic_ns() + int(timeout * 1e9)
        while time.monotonic_ns() < deadline:
            newest = rec[-1][0] if rec else 0
            if time.monotonic_ns() - newest > quiet * 1e9:
                break
            time.sleep(quiet / 4)
        snapshot = list(rec)
        if not snapshot:
            return {'received': 0, 'in_window': 0, 'latency_us': []}
        recv = np.array([r[0] for r in snapshot], dtype=np.int64)
        values = np.array([r[1] for r in snapshot])
        sent = decode_send_ns(recv, values, self.kinds[topic])
        inside = (sent >= first_ns - 1000) & (sent <= last_ns + 1000)
        latency = (recv[inside] - sent[inside]) / 1e3
        return {'received': len(snapshot), 'in_window': int(inside.sum()),
                'latency_us': [round(float(v), 2) for v in latency]}

    def diag(self, name_part: str) -> Dict:
        for name, values in self.diagnostics.items():
            if name_part in name:
                return {'name': name, 'values': values}
        return {'name': None, 'values': {}}


# ------------------------------------------------------------------------------------- worker
def serve(node: Node, reply: TextIO) -> None:
    """Answer commands from stdin until 'quit' or end of input."""
    reply.write(json.dumps({'ready': True}) + '\n')
    reply.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        cmd = request.pop('cmd')
        if cmd == 'quit':
            break
        try:
            answer = getattr(node, cmd)(**request)
        except (AttributeError, TypeError, ValueError, KeyError) as err:
            answer = {'error': f'{cmd}: {type(err).__name__}: {err}'}
        reply.write(json.dumps(answer) + '\n')
        reply.flush()


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    role, config = argv[0], json.loads(argv[1])
    # Replies go to the original stdout; anything else that writes to fd 1 lands on stderr.
    reply = os.fdopen(os.dup(1), 'w')
    os.dup2(2, 1)
    rclpy.init()
    context = rclpy.get_default_context()
    thread = None
    try:
        if role == 'source':
            node: Node = Source(config.get('inputs', []), config.get('samples', []))
        elif role == 'sink':
            node = Sink(config.get('outputs', {}))
            executor, _ = make_executor('auto', context)
            executor.add_node(node)
            thread = threading.Thread(target=spin, args=(executor, context), daemon=True)
            thread.start()
        else:
            raise SystemExit(f'unknown role {role!r}: expected source or sink')
        serve(node, reply)
    finally:
        rclpy.try_shutdown()
        if thread is not None:
            thread.join(timeout=5.0)
    return 0


if __name__ == '__main__':
    sys.exit(main())
