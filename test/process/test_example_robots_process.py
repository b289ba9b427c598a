"""The example robots end to end, as a user starts them: config/turtlebot3.yaml and
config/jackal.yaml as shipped, through nn_one_launch.py (start_assembler:=true
start_sim_robot:=true), sim_robot imitating the robot (its profile), the assembler, the predictor
and the trainer over DDS. The model must learn the profile's hidden rule from its late Bool
labels: the trainer's prequential accuracy (each row scored before it is learned) clearly above
the constant guess within a bounded time, and the deployed weights of the rule's two main
features with the rule's signs. The Jackal runs under its Clearpath namespace."""

import signal
import time

import numpy as np
import pytest
import yaml
from launch_scenario import evaluate_launch_file, installed_config, start_node, topic
from std_msgs.msg import Float64, Float64MultiArray

from nn_one_node.ros.codecs import matrix_from_msg
from nn_one_node.sim.profiles import PROFILES

N = 5
MIN_ROWS = 50  # labeled rows before the accuracy is judged (the trainer starts at 10)
MARGIN = 0.15  # above the constant guess: two standard errors at 50 rows of chance
# Labels come every moment (0.5 s, 0.4 s): 50 rows take 20-25 s; the model passes the margin at
# 50-70 rows (simulated offline, four seeds); the rest is room for a loaded 2-core machine: under
# the whole colcon test in the ROS userland the Jackal had 113 rows after 45 s at 0.75 against
# the 0.77 needed (the niceness-19 trainer deploying late, more rows scored by older models, and
# the prequential window holds them all): a deadline, met as soon as the margin is.
LEARN_TIMEOUT = 90.0


def main_features(profile):
    """The indices and signs of the two features of largest |weight| x spread in the rule."""
    spread = []
    for f in profile.features:
        lo = {v.name: v.low for v in profile.variables}
        hi = {v.name: v.high for v in profile.variables}
        lo['voltage'] = hi['voltage'] = profile.battery.full
        spread.append(abs(f.weight * (f.clean(hi) - f.clean(lo))))
    top = np.argsort(spread)[::-1][:2]
    return {int(i): np.sign(profile.features[i].weight) for i in top}


def run_example(ros, config, namespace):
    params_file = installed_config(config)
    with open(params_file) as f:
        shipped = yaml.safe_load(f)
    profile = PROFILES[shipped['/**/sim_robot']['ros__parameters']['profile']]
    ev = evaluate_launch_file(start_assembler='true', start_sim_robot='true',
                              params_file=params_file, namespace=namespace)
    procs = {spec.name: start_node(ros, spec) for spec in ev.nodes}
    assert set(procs) == {'predictor', 'trainer', 'assembler', 'sim_robot'}
    # num_features derived from the entries by the launch file: no number in the config
    assert ev.node('predictor').param_dict()['num_features'] == N
    assert 'num_features' not in str(shipped)

    ns = namespace
    labeled = ros.collect(Float64MultiArray, topic(ns, 'labeled_samples'))
    accuracy = ros.collect(Float64, topic(ns, 'trainer/metrics/accuracy'))
    predictions = ros.collect(Float64MultiArray, topic(ns, 'prediction'))
    ros.wait_for_messages(predictions, 5, timeout=30.0,
                          what=f"predictions of {config}'s assembled rows")
    names = ros.get_parameters(topic(ns, 'assembler'), ['feature_names'])['feature_names']
    assert len(names) == N and names[0].startswith('min(') and '@-30:30' in names[0], names

    state = {}

    def learned():
        rows = [matrix_from_msg(m, N + 1) for m in labeled]
        if not rows or not accuracy:
            return None
        y = np.vstack(rows)[:, N]
        guess = max(np.mean(y >= 0.5), np.mean(y < 0.5))
        state.update(rows=len(y), guess=guess, accuracy=accuracy[-1].data)
        return len(y) >= MIN_ROWS and accuracy[-1].data >= guess + MARGIN

    ros.wait_for_messages(labeled, 1, timeout=30.0, what=f'labeled samples of {config}')
    started = time.monotonic()
    try:
        ros.spin_until(learned, LEARN_TIMEOUT, f'{config}: prequential accuracy {MARGIN} above '
                       'the constant guess')
    except AssertionError as err:
        raise AssertionError(f'{err}; last seen {state}') from None
    took = time.monotonic() - started

    model = ros.get_parameters(topic(ns, 'trainer'), ['weights', 'bias'])
    w = np.asarray(model['weights'])
    for i, sign in main_features(profile).items():
        assert np.sign(w[i]) == sign, (names[i], w)
    for name, proc in procs.items():
        assert proc.stop(signal.SIGINT) == 0, (name, proc.tail())
    return {**state, 'seconds': took}


@pytest.mark.slow
def test_turtlebot3_example_learns_its_bump_rule(ros):
    result = run_example(ros, 'turtlebot3.yaml', '')
    print(f'turtlebot3: {result}')


@pytest.mark.slow
def test_jackal_example_learns_its_slip_rule_under_its_namespace(ros):
    result = run_example(ros, 'jackal.yaml', 'j100_0000')
    print(f'jackal: {result}')
