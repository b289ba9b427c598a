"""The predictor's parameter services as a ``link.PredictorLink``: rclpy clients, messages.

Everything ROS of the deployment protocol is here; its state machine (``deployment.Deployment``)
sees only plain values: the model as ``(weights list, bias, activation)``, a reply as
``(successful, reason)``.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional, Tuple

from lifecycle_msgs.srv import GetState
from rcl_interfaces.srv import GetParameters, SetParametersAtomically
from rclpy.client import Client
from rclpy.node import Node
from rclpy.parameter import Parameter, parameter_value_to_python
from rclpy.task import Future

from nn_one_node.learning.link import Model, Ranges

DEPLOYED = ('weights', 'bias', 'activation')
DEPLOY_SERVICE = 'set_parameters_atomically'  # the predictor's, a model is deployed through


class RosCall:
    """A ``link.Call`` made of an rclpy client's future."""

    __slots__ = ('_client', '_future', '_convert')

    def __init__(self, client: Client, future: Future, convert: Callable[[Any], Any]) -> None:
        self._client = client
        self._future = future
        self._convert = convert

    def done(self) -> bool:
        return self._future.done()

    def failed(self) -> bool:
        return self._future.cancelled() or self._future.exception() is not None

    def reply(self) -> Any:
        return self._convert(self._future.result())

    def cancel(self) -> None:
        self._client.remove_pending_request(self._future)

    def add_done_callback(self, fn: Callable[[], None]) -> None:
        self._future.add_done_callback(lambda _future: fn())


def deploy_outcome(response: SetParametersAtomically.Response) -> tuple:
    return bool(response.result.successful), response.result.reason


def served_model(response: GetParameters.Response) -> Optional[Model]:
    try:
        weights, bias, activation = (parameter_value_to_python(v) for v in response.values)
        return [float(x) for x in weights], float(bias), activation
    except (TypeError, ValueError):  # not set: not a predictor, or a different one
        return None


def state_label(response: GetState.Response) -> str:
    return response.current_state.label


@functools.lru_cache(maxsize=4)
def deploy_request(weights: Tuple[float, ...], bias: float, activation: str,
                   low: Tuple[float, ...], high: Tuple[float, ...]
                   ) -> SetParametersAtomically.Request:
    """The request that sets a model and its ranges on a predictor: made once a model, however
    many predictors it goes to (a fleet), since making it costs more than sending it."""
    return SetParametersAtomically.Request(parameters=[
        Parameter('weights', value=list(weights)).to_parameter_msg(),
        Parameter('bias', value=bias).to_parameter_msg(),
        Parameter('activation', value=activation).to_parameter_msg(),
        Parameter('trained_min', value=list(low)).to_parameter_msg(),
        Parameter('trained_max', value=list(high)).to_parameter_msg(),
    ])


class RosPredictorLink:
    """The predictor node ``name`` (fully qualified), through clients made on ``node``."""

    def __init__(self, node: Node, name: str) -> None:
        self.name = name
        self._node = node
        self._set = node.create_client(SetParametersAtomically,
                                       f'{name}/{DEPLOY_SERVICE}')
        self._get = node.create_client(GetParameters, f'{name}/get_parameters')
        # a managed predictor (predictor --managed) offers its lifecycle state
        self._state = node.create_client(GetState, f'{name}/get_state')

    def destroy(self) -> None:
        for client in (self._set, self._get, self._state):
            self._node.destroy_client(client)

    def state_ready(self) -> bool:
        return self._state.service_is_ready()

    def state(self) -> RosCall:
        return RosCall(self._state, self._state.call_async(GetState.Request()), state_label)

    def deploy_ready(self) -> bool:
        return self._set.service_is_ready()

    def deploy(self, model: Model, ranges: Ranges) -> RosCall:
        weights, bias, activation = model
        low, high = ranges
        request = deploy_request(tuple(weights), bias, activation, tuple(low), tuple(high))
        return RosCall(self._set, self._set.call_async(request), deploy_outcome)

    def read_ready(self) -> bool:
        return self._get.service_is_ready()

    def read(self) -> RosCall:
        future = self._get.call_async(GetParameters.Request(names=list(DEPLOYED)))
        return RosCall(self._get, future, served_model)
