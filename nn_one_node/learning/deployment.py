"""The trainer's deployment protocol: bring the predictor to the model in force, and keep it there.

No ROS import. ``Deployment`` is the state machine; the calls to the predictor go through a
``PredictorLink`` given to it (``nn_one_node.ros.predictor_link.RosPredictorLink`` makes one of
rclpy
clients), so that the protocol runs, and is tested, without DDS, with a fake link and a fake
clock.

* **Versions.** Every new model in force (a gated update, a model resumed from the weights file,
  weights or an activation set by hand) is ``new_model(...)``: the next version. The predictor's
  version is the newest one it confirmed; it is in sync when that is the version in force.
* **One request at a time, never blocking.** ``poll()``, called whenever the model may have
  changed and on every tick, sends the model in force (weights, bias and activation together)
  when the predictor lacks it and nothing is in flight, and returns at once. A request not
  answered within ``deploy_timeout`` is dropped and sent again; one the predictor refuses is
  logged and sent again at the next ``poll()``. A predictor that has just appeared is sent the
  request again every ``FIRST_TRY_SEC`` until it first answers (a timeout counted and logged
  for each ``deploy_timeout`` without an answer): its service is in the graph before the
  trainer's request and reply are matched with it, and a request sent before then is lost.
* **The predictor coming and going.** A predictor that leaves the graph, or appears, is taken to
  hold none of the trainer's models: it gets the model in force as soon as it is up.
* **Read-back.** A respawned predictor may come up while DDS still lists the one that crashed,
  so it is never seen "down". Once per ``check_period``, while in sync, the model the predictor
  serves is read back; if it is not the one it confirmed (restarted, or set there by hand), the
  model is deployed again.
* **A managed predictor** (``predictor --managed``: its link offers ``state_ready`` / ``state``)
  gets a model only while it is active: before each deployment its lifecycle state is asked for
  (``~/get_state``, asynchronously), and an inactive or unconfigured one is asked again at the
  next ``poll()``, so the model arrives once it is activated. (A predictor deactivated between
  the answer and the deployment keeps the model and serves it when active again.)
* **What to tell the user** (``problem()``, ``state()``). A deployment in flight, answered within
  ``deploy_timeout``, is the protocol working, not a predictor out of sync: ``state()`` says
  "deploying version k". ``problem()`` names only what a user must act on, until the predictor
  confirms a model again: it refused one (with its reason), did not answer one within
  ``deploy_timeout``, served a model other than the one it confirmed, or has not been up for
  longer than ``deploy_timeout`` while it lacks the model in force.

Example: a predictor that answers at once, one that is down, one that refuses.

>>> from nn_one_node.learning.link import Answered  # a call answered at once
>>> class Predictor:                     # what a PredictorLink offers
...     name, up, refuse, model = '/predictor', True, '', None
...     def deploy_ready(self): return self.up
...     def deploy(self, model, ranges):
...         if not self.refuse: self.model = model
...         return Answered((not self.refuse, self.refuse))
...     def read_ready(self): return self.up
...     def read(self): return Answered(self.model)
>>> class Log:
...     def warning(self, msg, **_): print('WARN', msg)
...     def debug(self, msg, **_): pass
>>> predictor = Predictor()
>>> d = Deployment(predictor, Log(), clock=lambda: 0.0)
>>> d.new_model([0.5, -1.0], 0.25, 'sigmoid'), d.in_sync
(1, False)
>>> d.poll(); d.in_sync, predictor.model
(True, ([0.5, -1.0], 0.25, 'sigmoid'))
>>> predictor.up = False
>>> d.new_model([1.0, 2.0], 0.0, 'sigmoid'); d.poll(); d.in_sync
2
WARN predictor /predictor is not up: will deploy when it is
False
>>> predictor.up, predictor.refuse = True, 'weights must have num_features = 3'
>>> d.poll(); d.in_sync
WARN /predictor refused the deployment: weights must have num_features = 3
False
>>> d.problem()
'predictor /predictor refused version 2: weights must have num_features = 3'
>>> predictor.refuse = ''
>>> d.poll(); d.in_sync, d.confirmed_version, d.problem(), d.state()
(True, 2, '', 'in sync (version 2)')
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Dict, Optional, Tuple

from nn_one_node.learning.link import Call, Logger, Model, PredictorLink, Ranges

# A request to a predictor just up, unanswered this long, is sent again, until the predictor
# first answers (then each waits deploy_timeout): a robot joining a fleet on one computer lost
# its first requests while the service's halves were matching, for up to 2.6 s, and was served
# seconds late when each lost request waited deploy_timeout
FIRST_TRY_SEC = 0.5


class Deployment:
    """Keeps a predictor at the trainer's model in force (see the module docstring).

    Parameters
    ----------
    link
        The predictor, or None: deploy nowhere (versions are still counted, for the weights file).
    logger
        Where the warnings go, each kind at most once per ``throttle`` seconds of ``clock`` for
        this predictor (rclpy's ``throttle_duration_sec`` is per line of code, so in a fleet one
        robot's warning would silence every other's, and it costs milliseconds a call even
        when it prints nothing).
    clock
        Seconds, monotonic (``time.monotonic``).
    deploy_timeout
        Seconds to wait for an answer before sending again (the ``deploy_timeout`` parameter).
    check_period
        Seconds between two read-backs of the served model (the trainer's ``train_period``).
    """

    def __init__(self, link: Optional[PredictorLink], logger: Logger,
                 clock: Callable[[], float] = time.monotonic, deploy_timeout: float = 2.0,
                 check_period: float = 1.0, throttle: float = 5.0) -> None:
        self.link = link
        self.deploy_timeout = deploy_timeout
        self.check_period = check_period
        self._log = logger
        self._clock = clock
        self._throttle = throttle
        self._warned: Dict[str, float] = {}  # kind -> clock of its last warning
        self.version = 0  # of the model in force; 0: none yet (the predictor keeps its own)
        self.confirmed_version = -1  # the newest version the predictor confirmed
        self.confirmed_at: Optional[float] = None  # clock() of the last confirmation
        self._model: Optional[Model] = None
        self._ranges: Optional[Ranges] = None
        self._pending: Optional[Tuple[Call, int, float, Model]] = None  # call, version, sent at
        self._was_up = False
        # read-back of what the predictor serves (see _check)
        self._confirmed: Optional[Model] = None  # the model it confirmed last
        self._reading: Optional[Tuple[Call, float]] = None  # call, sent at
        self._checked_at = -math.inf
        # what the diagnostics report (see problem())
        self.refusals = 0  # deployments the predictor refused
        self.timeouts = 0  # deployments not answered within deploy_timeout
        self.mismatches = 0  # read-backs that found another model than the one confirmed
        self._fault = ''  # the last refusal, timeout or mismatch, until a confirmation
        self._down_since: Optional[float] = None  # clock() when first seen not up, lacking
        # a managed predictor's lifecycle state (see _predictor_active); '' for a plain one
        self.predictor_state = ''
        self._state_call: Optional[Tuple[Call, float]] = None
        self._state_ok = False
        self._held = False  # hold() until the next poll(): no send from a reply's callback
        self._contact_since: Optional[float] = None  # clock() of a predictor just up's first
        # request, or of its last timeout, until it answers

    @property
    def name(self) -> str:
        return self.link.name if self.link is not None else ''

    @property
    def linked(self) -> bool:
        return self.link is not None

    @property
    def in_sync(self) -> bool:
        """The predictor confirmed the model in force."""
        return self.link is not None and self.confirmed_version >= self.version

    def new_model(self, weights, bias: float, activation: str, ranges=None) -> int:
        """A new model in force: returns its version. Send it with ``poll()``. ``ranges``:
        ``(low, high)``, each feature's smallest and largest value it was trained on; None: not
        known."""
        if hasattr(weights, 'tolist'):  # a numpy array: its floats at C speed
            weights = weights.tolist()
        self._model = (list(map(float, weights)), float(bias), str(activation))
        n = len(self._model[0])
        if ranges is None:
            self._ranges = ([-math.inf] * n, [math.inf] * n)
        else:
            self._ranges = tuple([float(v) for v in side] for side in ranges)
        self.version += 1
        return self.version

    def _warn(self, kind: str, message: str) -> None:
        """A warning, unless one of its kind went out less than ``throttle`` seconds ago."""
        now = self._clock()
        if now - self._warned.get(kind, -math.inf) >= self._throttle:
            self._warned[kind] = now
            self._log.warning(message)

    # ------------------------------------------------------------------------------ deploy
    def poll(self) -> None:
        """Send the model in force to the predictor unless it has it; never blocks."""
        self._held = False
        link = self.link
        if link is None:
            return
        if (self._pending is None and self._reading is None and self._was_up and self.version
                and self.in_sync and self._clock() - self._checked_at < self.check_period):
            return  # in sync, nothing in flight, no read-back due: the graph is not asked
        if self._pending is not None:
            call, version, started, sent = self._pending
            now = self._clock()
            if call.done():
                self._pending = None
                self._on_reply(call, version, sent)
            elif (self._contact_since is not None
                  and now - started > min(FIRST_TRY_SEC, self.deploy_timeout)):
                # a predictor just up that has not answered yet: sent again soon, silently (a
                # request sent before the service's halves matched ours is lost); a timeout
                # for each deploy_timeout without an answer
                call.cancel()
                self._pending = None
                if now - self._contact_since > self.deploy_timeout:
                    self._contact_since = now
                    self._timed_out(link.name, version)
            elif now - started > self.deploy_timeout:
                call.cancel()
                self._pending = None
                self._timed_out(link.name, version)
            else:
                return
        if not link.deploy_ready():
            if self._was_up:
                self.confirmed_version = -1  # it went away: redeploy when it is back
            self._was_up = False
            if self._down_since is None and not self.in_sync and self.version:
                self._down_since = self._clock()
            if self.version > self.confirmed_version:
                self._warn('down', f'predictor {link.name} is not up: will deploy when it is')
            return
        self._down_since = None
        if not self._was_up:
            self.confirmed_version = -1  # (re)started: it may not hold our model
            self._was_up = True
            self._contact_since = self._clock()
        if self.version <= self.confirmed_version or self.version == 0:
            self._check()
            return
        if not self._predictor_active():
            return
        sent, version = self._model, self.version
        call = link.deploy(sent, self._ranges)
        self._pending = (call, version, self._clock(), sent)
        call.add_done_callback(lambda: self._done(call, version, sent))

    def _timed_out(self, name: str, version: int) -> None:
        self.timeouts += 1
        self._fault = self._timeout_text(version)
        self._warn('timeout', f'{name} did not confirm the deployment within '
                   f'{self.deploy_timeout} s: will retry')

    def lost(self) -> None:
        """The predictor is known to have left (its robot is gone): it holds none of the
        trainer's models, and ``poll`` is not called until it is back (a fleet's robot)."""
        self.confirmed_version = -1
        self._was_up = False

    def _predictor_active(self) -> bool:
        """Whether the predictor serves: a plain one always; a managed one (its link has
        ``state_ready``, and it is up) once its ~/get_state answers 'active'. Otherwise the
        state is asked for (one call at a time, never blocking) and the model waits."""
        link = self.link
        state_ready = getattr(link, 'state_ready', None)
        if state_ready is None or not state_ready():
            self.predictor_state = ''
            return True
        if self._state_ok:  # answered 'active' just now
            self._state_ok = False
            return True
        if self._state_call is not None:
            call, started = self._state_call
            if not call.done() and self._clock() - started <= self.deploy_timeout:
                return False
            if not call.done():
                call.cancel()
            self._state_call = None
        call = link.state()
        self._state_call = (call, self._clock())
        call.add_done_callback(lambda: self._on_state(call))
        return False

    def hold(self) -> None:
        """Stop until the next ``poll()``: a state question in flight is dropped, so that its
        answer deploys nothing (the trainer deactivated meanwhile)."""
        if self._state_call is not None:
            self._state_call[0].cancel()
            self._state_call = None
        self._state_ok = False
        self._held = True

    def _on_state(self, call: Call) -> None:
        if self._state_call is None or self._state_call[0] is not call:
            return
        self._state_call = None
        if call.failed():
            return
        self.predictor_state = str(call.reply())
        if self.predictor_state == 'active':
            self._state_ok = True
            self.poll()  # deploy now, not at the next tick
        else:
            self._warn('inactive', f'predictor {self.name} is {self.predictor_state}: version '
                       f'{self.version} will be deployed when it is active')

    def _done(self, call: Call, version: int, sent: Model) -> None:
        if self._pending is not None and self._pending[0] is call:
            self._pending = None
            self._on_reply(call, version, sent)
            if self.version > version and not self._held:
                self.poll()  # a newer model waited behind this one: send it now, not next tick

    def _on_reply(self, call: Call, version: int, sent: Model) -> None:
        self._contact_since = None
        if call.failed():
            return
        successful, reason = call.reply()
        if successful:
            if version >= self.confirmed_version:
                self._confirmed = sent
            self.confirmed_version = max(self.confirmed_version, version)
            self.confirmed_at = self._clock()
            self._fault = ''
            self._log.debug(f'deployed model version {version} to {self.name}')
        else:
            self.refusals += 1
            self._fault = f'predictor {self.name} refused version {version}: {reason}'
            self._warn('refused', f'{self.name} refused the deployment: {reason}')

    # ---------------------------------------------------------------------------- read-back
    def _check(self) -> None:
        """Read back, once per check_period, the model the predictor serves; if it is not the
        one it confirmed, deploy again.

        deploy_ready cannot tell a respawned predictor from the one that confirmed: after a
        crash the old server stays in the graph until its DDS lease expires, and the new one is
        up before that, so it would serve its start-up weights for as long as no new model is
        deployed (training paused, refused updates, too few samples after a restart).
        """
        link = self.link
        if self._confirmed is None:
            return
        now = self._clock()
        if self._reading is not None:
            call, started = self._reading
            if not call.done() and now - started <= self.deploy_timeout:
                return
            if not call.done():
                call.cancel()
            self._reading = None
        if now - self._checked_at < self.check_period or not link.read_ready():
            return
        self._checked_at = now
        confirmed, version = self._confirmed, self.confirmed_version
        call = link.read()
        self._reading = (call, now)
        call.add_done_callback(lambda: self._on_read(call, confirmed, version))

    def _on_read(self, call: Call, confirmed: Model, version: int) -> None:
        if self._reading is not None and self._reading[0] is call:
            self._reading = None
        if call.failed():
            return
        if self._confirmed is not confirmed or self.confirmed_version != version:
            return  # deployed again meanwhile
        held = call.reply()
        if held != confirmed and not (self._pending is not None and held == self._pending[3]):
            # (a deployment sent after this read may have been applied before it was answered)
            self.confirmed_version = -1
            self._confirmed = None
            self.mismatches += 1
            self._fault = (f'predictor {self.name} served a model other than the one it '
                           'confirmed (restarted, or set there by hand?): deploying it again')
            self._warn('lost', f'{self.name} does not serve the model it confirmed (restarted, '
                       'or set by hand?): deploying it again')

    # ----------------------------------------------------------------------------- reporting
    def _timeout_text(self, version: int) -> str:
        return (f'predictor {self.name} did not confirm version {version} within '
                f'{self.deploy_timeout:g} s')

    def problem(self) -> str:
        """What a user must act on about the predictor: '' when nothing.

        A deployment in flight within ``deploy_timeout``, or waiting for a predictor that has
        been gone for less than that, is not a problem (``state()`` tells it).
        """
        if self.link is None or self.in_sync or self.version == 0:
            return ''
        now = self._clock()
        if self._down_since is not None and now - self._down_since > self.deploy_timeout:
            return (f'predictor {self.name} is not up (for {now - self._down_since:.0f} s): '
                    f'version {self.version} waits for it')
        if self._pending is not None and now - self._pending[2] > self.deploy_timeout:
            return self._timeout_text(self._pending[1])
        return self._fault

    def state(self) -> str:
        """The deployment in a few words, for the diagnostics."""
        if self.link is None:
            return 'deploying nowhere'
        if self.version == 0:
            return 'no model yet'
        if self.in_sync:
            return f'in sync (version {self.version})'
        if self.predictor_state and self.predictor_state != 'active':
            return (f'waiting for {self.name} to be active (it is {self.predictor_state}): '
                    f'version {self.version} deploys then')
        return f'deploying version {self.version} to {self.name}'

    def counters(self) -> Dict[str, Any]:
        """Key/values for the diagnostics."""
        return {
            'deployment': self.state(),
            'model version': self.version,
            'predictor version': max(self.confirmed_version, 0),
            'predictor refusals': self.refusals,
            'predictor timeouts': self.timeouts,
            'predictor read-back mismatches': self.mismatches,
            **({'predictor lifecycle state': self.predictor_state}
               if self.predictor_state else {}),
        }
