"""What the fleet's process tests share: the robots of robot_launch.py and the trainer of
fleet_launch.py started as launch_ros would start them (the launch files' own logic, evaluated
by ``launch_scenario.evaluate_launch_file``), and the waits for a robot that serves and for a
fleet whose every predictor serves the trainer's model.
"""

from __future__ import annotations

import os
import time
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
from launch_scenario import evaluate_launch_file, installed_launch_file, start_node
from std_msgs.msg import Float64, Float64MultiArray

N = 5  # config/robot.yaml's assembler entries


def launch_file(name: str) -> str:
    return os.path.join(os.path.dirname(installed_launch_file()), name)


def start_robot(ros, namespace: str, env: Optional[Dict[str, str]] = None,
                **arguments: str) -> Dict[str, Any]:
    """robot_launch.py's nodes for ``namespace`` (with a simulated robot unless
    ``start_sim_robot`` says otherwise), started: {node name: process}."""
    arguments.setdefault('start_sim_robot', 'true')
    ev = evaluate_launch_file(launch_file('robot_launch.py'), namespace=namespace, **arguments)
    return {spec.name: start_node(ros, spec, env) for spec in ev.nodes}


def start_fleet_trainer(ros, env: Optional[Dict[str, str]] = None, **arguments: str):
    """fleet_launch.py's trainer, started (its process)."""
    ev = evaluate_launch_file(launch_file('fleet_launch.py'), **arguments)
    (spec,) = ev.nodes
    return start_node(ros, spec, env)


def wait_robot_serving(ros, namespace: str, timeout: float = 60.0) -> List[Any]:
    """The robot's assembler rows predicted by its predictor (one value each) and its labeled
    samples published (N features + label): returns the labeled messages seen."""
    predictions = ros.collect(Float64MultiArray, f'{namespace}/prediction')
    labeled = ros.collect(Float64MultiArray, f'{namespace}/labeled_samples')
    ros.wait_for_messages(predictions, 5, timeout=timeout,
                          what=f"{namespace}'s predictions of its assembler's rows")
    assert {len(p.data) for p in predictions} == {1}
    ros.wait_for_messages(labeled, 3, timeout=timeout, what=f'{namespace}/labeled_samples')
    assert all(len(m.data) % (N + 1) == 0 for m in labeled)
    return labeled


def wait_fleet_served(ros, robots: Sequence[str], trainer: str = '/trainer',
                      timeout: float = 90.0) -> Dict[str, Any]:
    """Wait until the trainer has deployed (a ``~/loss``) and every robot's predictor serves a
    model the trainer has held (its ``weights``/``bias`` at one of the polls, every 0.3 s).
    Returns {robot: its predictor's weights and bias}."""
    loss = ros.collect(Float64, f'{trainer}/loss')
    made: List[Any] = []
    next_poll = [0.0]

    def served():
        if not loss or time.monotonic() < next_poll[0]:
            return None
        next_poll[0] = time.monotonic() + 0.3
        mine = ros.get_parameters(trainer, ['weights', 'bias'])
        made.append((list(mine['weights']), mine['bias']))
        out = {}
        for ns in robots:
            theirs = ros.get_parameters(f'{ns}/predictor', ['weights', 'bias'])
            model = (list(theirs['weights']), theirs['bias'])
            if not np.any(model[0]) or model not in made:
                return None
            out[ns] = theirs
        return out
    return ros.spin_until(served, timeout, f'every robot of {list(robots)} serving the model '
                          f'of {trainer}')


def wait_learned(ros, predictor: str, bound: float = 0.5, timeout: float = 90.0) -> float:
    """Wait until ``predictor`` serves a model within ``bound`` of the simulated robot's truth
    (``sim.scenario.weight_error``, polled every 0.5 s); returns the error."""
    from nn_one_node.sim.scenario import Scenario, weight_error
    truth = Scenario()
    next_poll = [0.0]
    last = [None]

    def learned():
        if time.monotonic() < next_poll[0]:
            return None
        next_poll[0] = time.monotonic() + 0.5
        model = ros.get_parameters(predictor, ['weights', 'bias'])
        last[0] = weight_error(np.asarray(model['weights']), model['bias'], truth)
        return last[0] if last[0] < bound else None
    return ros.spin_until(learned, timeout, f'{predictor} serving a model within {bound} of '
                          f'the truth (last error: {last[0]})')
