"""The robot path end to end, as nn_one_launch.py starts it with config/robot.yaml: sim_robot's
typed topics -> assembler -> predictor, late labels -> assembler -> trainer -> predictor. Every
labeled sample must hold the readings of the moment its label describes (the label's probability
names the moment), and the deployed model must be the scenario's ground truth."""

import signal
import time

import numpy as np
import pytest
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from launch_scenario import evaluate_launch_file, installed_config, start_node, wait_for_deployment
from rosbench import diagnostic_values
from std_msgs.msg import Float64, Float64MultiArray

from nn_one_node.ros.codecs import matrix_from_msg, matrix_to_msg
from nn_one_node.sim.robot_scenario import RANGE_MAX, RANGE_MIN, RobotScenario
from nn_one_node.sim.scenario import SENSORS, Scenario, accuracy, weight_error

N = len(SENSORS)
NOISE = np.array([s.noise_std for s in SENSORS])


def evaluate(ros, features, predictions, scenario, m=200):
    """Accuracy of the predictor on a fresh batch (its reply told from the rows' by its size)."""
    X, y = scenario.sample(m)
    reply = ros.ask_until_answered(features, matrix_to_msg(X), predictions,
                                   lambda p: len(p.data) == m,
                                   'the prediction of an evaluation batch')
    return accuracy(np.asarray(reply.data), y)


@pytest.mark.slow
def test_launched_robot_path_joins_each_label_to_its_moment_and_learns_the_truth(ros):
    params_file = installed_config('robot.yaml')
    ev = evaluate_launch_file(start_assembler='true', start_sim_robot='true',
                              params_file=params_file)
    procs = {spec.name: start_node(ros, spec) for spec in ev.nodes}
    assert set(procs) == {'predictor', 'trainer', 'assembler', 'sim_robot'}
    with open(params_file) as f:
        sim = yaml.safe_load(f)['/**/sim_robot']['ros__parameters']
    robot = RobotScenario(sim['seed'], sim['moment_period'], sim['label_delay'])
    labeled = ros.collect(Float64MultiArray, 'labeled_samples')
    loss = ros.collect(Float64, '/trainer/loss')
    diagnostics = ros.collect(DiagnosticArray, '/diagnostics')
    features = ros.publisher(Float64MultiArray, 'features')
    predictions = ros.collect(Float64MultiArray, 'prediction')
    ros.wait_for_messages(predictions, 5, timeout=60.0, what="predictions of the assembler's rows")
    assert {len(p.data) for p in predictions} == {1}

    names = ros.get_parameters('/assembler', ['feature_names'])['feature_names']
    assert len(names) == N and 'left_wheel_joint' in names[2]

    ros.wait_for_messages(labeled, 80, timeout=60.0, what='labeled samples')
    rows = np.vstack([matrix_from_msg(m, N + 1) for m in labeled])
    k_now = robot.index_at(time.time())
    by_p = {robot.moment(k).probability: k for k in range(k_now - 3000, k_now + 1)}
    joined_right = 0
    for row in rows:
        k = by_p.get(row[N])
        assert k is not None, f'label {row[N]} is no moment of sim_robot'
        clean = robot.moment(k).clean.copy()
        clean[0] = min(max(clean[0], RANGE_MIN), RANGE_MAX)
        joined_right += bool(np.all(np.abs(row[:N] - clean) < 6.0 * NOISE + 1e-6))
    # the row of the label's moment, all five readings of that moment (a row of a neighbour
    # moment would differ by the spread of a uniform draw, not by the noise)
    assert joined_right >= 0.95 * len(rows), f'{joined_right} of {len(rows)} joined right'

    model = wait_for_deployment(ros, loss, timeout=60.0)
    scenario = Scenario()
    assert weight_error(np.asarray(model['weights']), model['bias'], scenario) < 0.3
    assert evaluate(ros, features, predictions, Scenario(31)) > 0.9

    status = ros.spin_until(lambda: diagnostic_values(diagnostics, ': assembler'), 30.0,
                            "the assembler's /diagnostics")
    assert int(status['rows published']) > 0 and int(status['labels joined']) > 0
    for name, proc in procs.items():
        assert proc.stop(signal.SIGINT) == 0, (name, proc.tail())
