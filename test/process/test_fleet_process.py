"""The trainer in fleet mode, as processes over DDS: one `trainer` with `fleet` set, a real
`predictor` process a robot under its namespace (`-r __ns:=/r1`), and the test node publishing
each robot's labeled rows on `/rK/labeled_samples`, drawn from a known logistic rule.

Two and three robots: learning from all, every predictor serving the trainer's model; a robot
that joins late, one whose predictor leaves (the others keep getting new models; it is reported
gone) and comes back, one that stops answering; the per-robot `/diagnostics` and the WARN that
names a robot whose sensor broke (labels unrelated to its features).
"""

import json
import re
import signal
import subprocess
import time
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rcl_interfaces.srv import GetParameters
from rclpy.qos import QoSProfile
from rosbench import executable_path
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import SetBool

from nn_one_node.model import sigmoid
from nn_one_node.ros.codecs import matrix_to_msg

TIMEOUT = 30.0
# A robot that joins or comes back serves the model in force: checked here with the tests'
# deadline (correctness). How soon (issue 25's 2 s) is a timing, not a test: bench/fleet_bench.py
# times a late join at 1 to 20 robots (doc/performance.md#a-fleet).
N = 2
W_TRUE = np.array([3.0, -2.0])
B_TRUE = 0.5
# niceness 0: at its default 19, a machine busy with anything else starves the trainer for
# seconds (its graph looks, deployments and diagnostics with it): the tests time the fleet's
# reactions, not the scheduler's (doc/fleet.md says so for a trainer sharing a computer)
TRAINER = {'num_features': N, 'train_period': 0.25, 'diagnostics_period': 0.2,
           'min_samples': 10, 'niceness': 0}

Model = Tuple[List[float], float]


def labeled(rng: np.random.Generator, m: int, broken: bool = False) -> np.ndarray:
    """m rows (features, label) of the logistic rule; a broken sensor's labels are coin flips."""
    X = rng.normal(size=(m, N))
    if broken:
        y = rng.integers(0, 2, m).astype(np.float64)
    else:
        y = (rng.random(m) < sigmoid(X @ W_TRUE + B_TRUE)).astype(np.float64)
    return np.column_stack([X, y])


class Fleet:
    """The test node's ends: a labeled_samples publisher a robot, the diagnostics, the
    parameter clients of the trainer and of each robot's predictor (made before the nodes
    start, so that they are discovered with everything else)."""

    def __init__(self, ros, robots: List[str]) -> None:
        self.ros = ros
        self.rng = np.random.default_rng(25)
        self.pubs: Dict[str, object] = {}
        self.diags: List[DiagnosticArray] = ros.collect(DiagnosticArray, '/diagnostics')
        self.predictors: Dict[str, object] = {}
        for ns in ['', *robots]:
            ros.client(GetParameters, f'{ns}/{"predictor" if ns else "trainer"}/get_parameters')
        ros.client(SetBool, '/trainer/enable_training')

    def start_trainer(self, **params):
        return self.ros.start('trainer', {**TRAINER, **params})

    def start_predictor(self, ns: str):
        self.predictors[ns] = self.ros.start('predictor', {'num_features': N}, namespace=ns)
        return self.predictors[ns]

    def publisher(self, ns: str):
        """The robot's labeled_samples publisher, once the trainer has found the robot and
        subscribed to it."""
        pub = self.pubs.get(ns)
        if pub is None:
            pub = self.pubs[ns] = self.ros.publisher(Float64MultiArray, f'{ns}/labeled_samples',
                                                     QoSProfile(depth=1000))
        self.ros.wait_for_subscribers(pub, 1, TIMEOUT)
        return pub

    def drop_publisher(self, ns: str) -> None:
        self.ros.node.destroy_publisher(self.pubs.pop(ns))

    def feed(self, robots: Dict[str, bool], rows: int, batch: int = 20) -> None:
        """``rows`` rows to each robot (True: its sensor is broken), interleaved in batches."""
        pubs = {ns: self.publisher(ns) for ns in robots}
        for _ in range(rows // batch):
            for ns, broken in robots.items():
                pubs[ns].publish(matrix_to_msg(labeled(self.rng, batch, broken),
                                               cols_label='features+label'))
            self.ros.spin_for(0.005)

    def training(self, on: bool) -> None:
        reply = self.ros.call(SetBool, '/trainer/enable_training', SetBool.Request(data=on),
                              TIMEOUT)
        assert reply.success, reply.message

    # --------------------------------------------------------------------------- looking
    def model(self, node: str) -> Model:
        got = self.ros.get_parameters(node, ['weights', 'bias'], TIMEOUT)
        return [float(v) for v in got['weights']], float(got['bias'])

    def serve_the_trainers_model(self, robots: List[str], timeout: float = TIMEOUT) -> Model:
        """Wait until every robot's predictor holds exactly the trainer's model; return it."""
        def same():
            model = self.model('/trainer')
            return model if all(self.model(f'{ns}/predictor') == model for ns in robots) \
                else None
        return self.ros.spin_until(same, timeout, f"{robots} to serve the trainer's model")

    def status(self, ns: Optional[str], since: int = 0) -> Optional[DiagnosticStatus]:
        """The newest status of the trainer (ns None) or of its robot ``ns``."""
        name = '/trainer: trainer' if ns is None else f'/trainer: robot {ns}'
        for msg in reversed(self.diags[since:]):
            for status in msg.status:
                if status.name == name:
                    return status
        return None

    def wait_status(self, ns: Optional[str], check: Callable[[DiagnosticStatus, Dict], bool],
                    what: str, timeout: float = TIMEOUT) -> Tuple[DiagnosticStatus, Dict]:
        since = len(self.diags)

        def ok():
            s = self.status(ns, since)
            if s is None:
                return None
            values = {kv.key: kv.value for kv in s.values}
            return (s, values) if check(s, values) else None
        try:
            return self.ros.spin_until(ok, timeout, f'{ns or "trainer"} status: {what}')
        except AssertionError as err:  # with what it said last, to tell why
            s = self.status(ns)
            last = 'none' if s is None else f'{s.message!r} {[(v.key, v.value) for v in s.values]}'
            raise AssertionError(f'{err}\nthe last status: {last}') from None

    def robots_in_diagnostics(self) -> set:
        names = {s.name for msg in self.diags[-5:] for s in msg.status}
        return {n.split('robot ', 1)[1] for n in names if ': robot ' in n}

    def seen_in_graph(self, ns: str, timeout: float = TIMEOUT) -> float:
        """time.monotonic() when the test node sees ``ns``'s predictor in the graph."""
        self.ros.spin_until(lambda: ('predictor', ns) in
                            self.ros.node.get_node_names_and_namespaces(), timeout,
                            f'{ns}/predictor in the graph')
        return time.monotonic()


def version_served(values: Dict[str, str]) -> int:
    v = values['model version served']
    return int(v) if v != '-' else 0


# ------------------------------------------------------------------------------- the tests
def test_two_robots_teach_one_model_and_both_serve_it(ros):
    fleet = Fleet(ros, ['/r1', '/r2'])
    for ns in ('/r1', '/r2'):
        fleet.start_predictor(ns)
    fleet.start_trainer(fleet=['/r1', '/r2'])
    outsider = ros.publisher(Float64MultiArray, '/r9/labeled_samples', QoSProfile(depth=10))
    fleet.feed({'/r1': False, '/r2': False}, 400)
    _, trainer = fleet.wait_status(None, lambda s, v: v['samples received'] == '800',
                                   'the 800 samples of both robots received')
    assert trainer['robots'] == '2' and trainer['robots up'] == '2', trainer
    model = fleet.serve_the_trainers_model(['/r1', '/r2'])
    assert np.all(np.sign(model[0]) == np.sign(W_TRUE)), model  # learned the rule
    for ns in ('/r1', '/r2'):
        # (publishing waited for too: once in a full CI run, a status said 'no publisher' while
        # the test's publisher was there; not reproduced in 16 runs alone or four at a time)
        s, v = fleet.wait_status(ns, lambda s, v: v['samples learned'] == '400'
                                 and v['deployment'].startswith('in sync')
                                 and v['labeled_samples'] == 'publishing',
                                 'its 400 samples, its publisher and the model in force')
        assert s.level == DiagnosticStatus.OK and v['state'] == 'up', (s.message, v)
        assert v['predictor'] == f'{ns}/predictor: up'
        assert version_served(v) == int(v['model version in force']) >= 1
        assert 0.6 < float(v['prequential accuracy']) <= 1.0, v
    # /r9 publishes labeled samples too, but is not in the fleet
    assert outsider.get_subscription_count() == 0
    assert fleet.robots_in_diagnostics() == {'/r1', '/r2'}


def test_robots_join_late_leave_and_come_back_without_delaying_the_others(ros):
    fleet = Fleet(ros, ['/r1', '/r2', '/r3'])
    for ns in ('/r1', '/r2'):
        fleet.start_predictor(ns)
    fleet.start_trainer(fleet=['/r*'])
    fleet.feed({'/r1': False, '/r2': False}, 200)
    fleet.training(False)  # the model in force stays put while the joins are timed
    fleet.serve_the_trainers_model(['/r1', '/r2'])

    # a robot that joins late serves the model in force (how soon: see the module's top)
    fleet.start_predictor('/r3')
    fleet.seen_in_graph('/r3')
    fleet.serve_the_trainers_model(['/r3'])

    # r2 goes (its predictor stopped, its rows stop): reported gone; the others go on
    # getting every new model
    fleet.training(True)
    assert fleet.predictors['/r2'].stop(signal.SIGTERM) == 0
    fleet.drop_publisher('/r2')
    s, v = fleet.wait_status('/r2', lambda s, v: v['state'] == 'gone', 'gone')
    assert s.level == DiagnosticStatus.STALE and s.message.startswith('gone for'), s.message
    _, before = fleet.wait_status(None, lambda s, v: v['robots gone'] == '1', '1 robot gone')
    fleet.feed({'/r1': False, '/r3': False}, 400)
    _, after = fleet.wait_status(
        None, lambda s, v: int(v['model version']) > int(before['model version'])
        and v['robots serving the model in force'] == '2', 'a newer model served by r1, r3')
    fleet.training(False)
    fleet.serve_the_trainers_model(['/r1', '/r3'])

    # r2 restarted: back, and serving the model in force
    fleet.start_predictor('/r2')
    fleet.seen_in_graph('/r2')
    fleet.serve_the_trainers_model(['/r2'])
    s, v = fleet.wait_status('/r2', lambda s, v: v['state'] == 'up', 'up again')
    assert v['joins'] == '2' and v['samples learned'] == '200', v  # the same robot


def test_a_predictor_that_stops_answering_never_delays_the_others(ros):
    fleet = Fleet(ros, ['/r1', '/r2'])
    for ns in ('/r1', '/r2'):
        fleet.start_predictor(ns)
    fleet.start_trainer(fleet=['/r*'], deploy_timeout=0.5)
    fleet.feed({'/r1': False, '/r2': False}, 200)
    fleet.serve_the_trainers_model(['/r1', '/r2'])
    frozen = fleet.predictors['/r2'].proc
    frozen.send_signal(signal.SIGSTOP)  # in the graph, its services "ready", never answering
    try:
        _, before = fleet.wait_status(None, lambda s, v: True, 'the trainer')
        fleet.feed({'/r1': False}, 400)
        fleet.wait_status(None, lambda s, v: int(v['model version'])
                          > int(before['model version']), 'a newer model')
        fleet.serve_the_trainers_model(['/r1'])  # r1 keeps up
        s, _ = fleet.wait_status('/r2', lambda s, v: s.level == DiagnosticStatus.WARN,
                                 'WARN for the predictor that does not answer')
        assert 'did not confirm version' in s.message, s.message
    finally:
        frozen.send_signal(signal.SIGCONT)
    fleet.serve_the_trainers_model(['/r1', '/r2'])  # and it catches up once it answers


def test_a_robot_with_a_broken_sensor_is_named_in_a_warn(ros):
    robots = ['/r1', '/r2', '/r3']
    fleet = Fleet(ros, robots)
    for ns in robots:
        fleet.start_predictor(ns)
    fleet.start_trainer(fleet=['/r1', '/r2', '/r3'])
    sensors = {'/r1': False, '/r2': False, '/r3': True}  # r3's labels are coin flips
    fleet.feed(sensors, 60)
    fleet.wait_status(None, lambda s, v: int(v['model version']) >= 1, 'a first model')
    fleet.feed(sensors, 300)  # scored by a model in force: enough to tell r3 apart
    s, v = fleet.wait_status('/r3', lambda s, v: s.level == DiagnosticStatus.WARN
                             and 'accuracy' in s.message, 'the WARN naming r3')
    assert re.search(r"robot /r3: accuracy 0\.\d\d over \d+ samples against the fleet's 0\.\d\d",
                     s.message) and 'failing sensor?' in s.message, s.message
    assert float(v['prequential accuracy']) < 0.7, v
    for ns in ('/r1', '/r2'):
        s, v = fleet.wait_status(ns, lambda s, v: True, 'its status')
        assert s.level == DiagnosticStatus.OK, s.message
        assert float(v['prequential accuracy']) > float(v['fleet prequential accuracy']) - 0.1

    # the status view: the trainer a node, each robot a row under it, r3's WARN a problem
    proc = subprocess.Popen([executable_path('status'), '--once', '--json'], env=ros.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 3, (proc.returncode, out, err)  # 3: problems
    doc = json.loads(out)
    (trainer,) = [n for n in doc['nodes'] if n['name'] == '/trainer']
    assert trainer['role'] == 'trainer' and trainer['details']['samples_received'], trainer
    rows = {r['robot']: r for r in trainer['details']['robots']}
    assert set(rows) == set(robots) and rows['/r3']['level'] == 'WARN', rows
    assert [p['node'] for p in doc['problems'] if 'robot /r3: accuracy' in p['problem']] == [
        '/trainer'], doc['problems']


@pytest.mark.parametrize('params, reason', [
    ({'fleet': ['/r1/']}, "fleet entry '/r1/' is not a namespace pattern"),
    ({'fleet': ['/r*'], 'predictor_node': '/predictor'}, 'fleet needs a relative predictor_node'),
])
def test_a_bad_fleet_exits_2_with_the_reason(ros, params, reason):
    proc = ros.start('trainer', {'num_features': N, **params})
    proc.wait_for_output(r'cannot start: .*' + re.escape(reason))
    assert proc.proc.wait(timeout=20) == 2
    assert 'Traceback' not in proc.output()


def test_managed_trainer_and_predictor_in_fleet_mode(ros):
    from lifecycle_client import Lifecycle
    fleet = Fleet(ros, ['/r1'])
    predictor = Lifecycle(ros, '/r1/predictor')
    trainer = Lifecycle(ros, '/trainer')
    ros.start('predictor', {'num_features': N}, namespace='/r1', args=['--managed'])
    ros.start('trainer', {**TRAINER, 'fleet': ['/r1']}, args=['--managed'])
    trainer.wait_for_state('unconfigured', TIMEOUT)
    assert trainer.configure() and trainer.activate()
    fleet.feed({'/r1': False}, 200)  # learned (the robot found by its rows' publisher) ...
    _, v = fleet.wait_status('/r1', lambda s, v: v['samples learned'] == '200', 'its rows')
    assert v['model version served'] == '-'  # ... but not deployed to an unconfigured predictor
    predictor.wait_for_state('unconfigured', TIMEOUT)
    assert predictor.configure() and predictor.activate()
    fleet.training(False)
    fleet.serve_the_trainers_model(['/r1'])  # once it is active
    assert trainer.deactivate() and trainer.cleanup()  # the robot's subscription released
    ros.spin_until(lambda: fleet.pubs['/r1'].get_subscription_count() == 0, TIMEOUT,
                   'the trainer to release /r1/labeled_samples')
