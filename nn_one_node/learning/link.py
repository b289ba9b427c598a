"""What ``deployment.Deployment`` needs of a predictor and of a logger, as protocols: the calls
to the predictor's parameter services, asynchronously (``ros.predictor_link.RosPredictorLink``
makes them of rclpy clients; the tests, of fakes). No ROS import.

A link whose predictor answers at once (its calls ``Answered``), and a logger, are enough for a
``Deployment``:

>>> class Link:                           # a PredictorLink
...     name, model = '/predictor', None
...     def deploy_ready(self): return True
...     def deploy(self, model, ranges): self.model = model; return Answered((True, ''))
...     def read_ready(self): return True
...     def read(self): return Answered(self.model)
>>> class Log:                            # a Logger
...     def warning(self, message, **_): print('WARN', message)
...     def debug(self, message, **_): print(message)
>>> from nn_one_node.learning.deployment import Deployment
>>> link = Link()
>>> d = Deployment(link, Log()); d.new_model([1.0, -2.0], 0.5, 'sigmoid'); d.poll()
1
deployed model version 1 to /predictor
>>> link.model, d.in_sync
(([1.0, -2.0], 0.5, 'sigmoid'), True)
"""

from __future__ import annotations

from typing import Any, Callable, List, Protocol, Tuple

# The model as deployed and read back: raw-feature weights, bias, activation.
Model = Tuple[List[float], float, str]
# Deployed with it, not read back: per feature, the smallest and largest value it was trained on
# (-inf and inf where that is not known: a model resumed or set by hand).
Ranges = Tuple[List[float], List[float]]


class Call(Protocol):
    """One request to the predictor, answered later."""

    def done(self) -> bool:
        """Answered, failed or cancelled."""

    def failed(self) -> bool:
        """Done without an answer (cancelled, or the call raised)."""

    def reply(self) -> Any:
        """The answer of a call done and not failed (see ``PredictorLink``)."""

    def cancel(self) -> None:
        """Stop waiting for the answer (the link forgets the request)."""

    def add_done_callback(self, fn: Callable[[], None]) -> None:
        """Call ``fn()`` once done (from the executor that handles the reply)."""


class PredictorLink(Protocol):
    """The predictor as ``Deployment`` sees it: its parameter services, asynchronously."""

    name: str  # for log lines and diagnostics, e.g. '/predictor'

    def deploy_ready(self) -> bool:
        """Its set_parameters_atomically service is in the graph."""

    def deploy(self, model: Model, ranges: Ranges) -> Call:
        """Set weights, bias and activation (and the trained ranges) atomically; the reply is
        ``(successful, reason)``."""

    def read_ready(self) -> bool:
        """Its get_parameters service is in the graph."""

    def read(self) -> Call:
        """Get weights, bias and activation; the reply is the ``Model`` served, or None if those
        parameters are not set (not a predictor, or another one)."""


class Logger(Protocol):
    """The methods of rclpy's node logger used here."""

    def warning(self, message: str, **kwargs: Any) -> Any: ...

    def debug(self, message: str, **kwargs: Any) -> Any: ...


class Answered:
    """A ``Call`` answered already, with ``value``: what a link that answers at once returns
    (the examples here, in ``deployment`` and in ``fleet``)."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def done(self) -> bool:
        return True

    def failed(self) -> bool:
        return False

    def reply(self) -> Any:
        return self.value

    def cancel(self) -> None:
        pass

    def add_done_callback(self, fn: Callable[[], None]) -> None:
        fn()
