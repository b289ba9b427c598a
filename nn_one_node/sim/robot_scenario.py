"""The wheel-slip scenario as a robot's own sensor streams: moments, readings, late labels.

No ROS import. ``sim_robot`` (sim_robot_node.py) publishes what this module computes as typed
messages; the tests use it to know the ground truth of every message.

Time is cut into *moments* of ``moment_period`` seconds, aligned to the clock's epoch: moment
``k`` covers ``[k T, (k + 1) T)``. During a moment the robot's state is one draw of the scenario
(``scenario.py``): the clean readings ``x_clean`` of its five sensors, the true slip probability
``p = sigmoid(x_clean . w_true + b_true)`` and a slip ``slip ~ Bernoulli(p)``. The state of a
moment depends only on the seed, the timeline and ``k`` (random access: no replay of the past), so
a test can recompute it from a message's stamp.

Each sensor reports the state of the moment at the time it is asked, with fresh measurement noise
per message (the scenario's noise), in the unit of the scenario's feature, so that a field picked
out of each message *is* the scenario's feature plus noise:

==================  ===========================  =================================================
feature             message field                encoding
==================  ===========================  =================================================
``lidar_range``     LaserScan ``min(ranges)``    the nearest return, ahead (beams near angle 0);
                                                 the other beams farther, some ``+inf`` (no
                                                 return: nothing within ``range_max``)
``speed``           Odometry                     m/s, forward
                    ``twist.twist.linear.x``
``motor_current``   JointState                   A (the drive motor's current, as the wheel's
                    ``effort[left_wheel_joint]``  effort); ``right_wheel_joint`` carries another,
                                                 uninformative motor; names in varying order
``imu_vibration``   Imu ``linear_acceleration.z``  the RMS vertical vibration, in g (a vibration
                                                 monitor's reading: a raw IMU's z would hold
                                                 gravity, in m/s^2)
``temperature``     Temperature ``temperature``  degrees C
==================  ===========================  =================================================

The label of moment ``k`` describes its centre, ``(k + 1/2) T``, and is published ``label_delay``
seconds after it: a slip is known only after it happened. An assembler with the same
``label_delay`` joins it to the row nearest the centre, whose readings are all of moment ``k`` as
long as every sensor has reported at least once in the first half of the moment (its period under
``T / 2`` minus the assembler's half row period): see ``too_slow``.

When the clock jumps back (a simulator reset, a looped bag), a new *timeline* starts: new states,
and the labels still pending from before the jump are dropped, never published.

>>> robot = RobotScenario(seed=3, moment_period=0.1, label_delay=1.0)
>>> robot.moment_at(12.34).index             # started at 12.34 s: labels from moment 124 on
123
>>> m = robot.moment_at(12.44)               # the state in force at t = 12.44 s
>>> m.index, round(m.centre, 2)
(124, 12.45)
>>> robot.labels_due(13.44)                   # 12.45 + 1.0 is still ahead
[]
>>> [(lab.index, lab.slip == m.slip) for lab in robot.labels_due(13.46)]
[(124, True)]
>>> now = robot.moment_at(13.46)             # the moment in force when that label is out
>>> ranges = robot.scan_ranges(13.46)
>>> bool(abs(float(ranges.min()) - now.clean[0]) < 0.3)  # the nearest return: lidar_range
True
>>> robot.moment_at(0.5).timeline            # the clock jumped back: a new timeline
1
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np

from nn_one_node.sim.scenario import SENSORS, TRUE_BIAS
from nn_one_node.model import sigmoid

LIDAR, SPEED, CURRENT, VIBRATION, TEMPERATURE = range(5)
WHEEL_JOINTS = ('left_wheel_joint', 'right_wheel_joint')
WHEEL_RADIUS = 0.1  # m: the joints' velocity is the forward speed over it
RANGE_MIN = 0.05  # m; a nearest return below it (noise at 0.2 m, about 1e-4 of readings) is
RANGE_MAX = 30.0  # clipped up to it, so that a LaserScan user does not discard it
MIN_GAP = 0.3  # m: every other beam is at least this much farther than the nearest return
FRONT_BEAMS = 0.05  # the nearest return is within this fraction of the beams around angle 0
MAX_LABELS_PER_CALL = 1000  # a jump forward in time must not flood the label topic
_NOISE = np.array([s.noise_std for s in SENSORS])
_LOW = np.array([s.low for s in SENSORS])
_HIGH = np.array([s.high for s in SENSORS])
_W = np.array([s.weight for s in SENSORS])


@dataclass(frozen=True)
class Moment:
    """The robot's state over ``[start, start + period)``."""

    timeline: int
    index: int
    start: float
    period: float
    clean: np.ndarray          # (5,) the clean readings, the scenario's feature order
    probability: float         # the true slip probability of ``clean``
    slip: bool                 # whether the wheel slipped: a draw with that probability
    other_current: float       # the right wheel's motor current (not a feature)

    @property
    def centre(self) -> float:
        """The time the moment's label describes."""
        return self.start + self.period / 2.0


@dataclass(frozen=True)
class Label:
    """One moment's label, and when it is to be published."""

    timeline: int
    index: int
    describes: float           # the moment's centre
    due: float                 # describes + label_delay
    slip: bool
    probability: float


def too_slow(rates: Dict[str, float], moment_period: float, row_rate: float = 50.0
             ) -> List[str]:
    """The sensors (by name) whose rate leaves the row at a moment's centre with a reading of the
    previous moment: a period over half the moment minus half a row period. 0 (off) is not
    listed.

    >>> too_slow({'scan': 40.0, 'temperature': 5.0}, 0.1)
    ['temperature']
    """
    budget = moment_period / 2.0 - 0.5 / row_rate
    return [name for name, rate in rates.items() if rate > 0.0 and 1.0 / rate >= budget]


def moment_rng(seed: int, timeline: int, index: int, *salt: int) -> np.random.Generator:
    """The random stream of one moment: a function of the seed, the timeline and the index
    alone (random access: no replay of the past)."""
    return np.random.default_rng([seed, timeline, index & 0xFFFFFFFFFFFF, 1 if index < 0 else 0,
                                  *salt])


class RobotScenario:
    """The moments, the readings of each sensor and the late labels of one simulated robot.

    Parameters
    ----------
    seed
        The same seed, the same moments (per timeline) and the same noise streams.
    moment_period
        Seconds one state holds (T).
    label_delay
        Seconds from a moment's centre to the publication of its label.
    """

    def __init__(self, seed: int = 0, moment_period: float = 0.2, label_delay: float = 1.0,
                 scan_beams: int = 360, no_return_fraction: float = 0.2) -> None:
        if not (math.isfinite(moment_period) and moment_period > 0.0):
            raise ValueError(f'moment_period must be a finite number > 0, got {moment_period}')
        if not (math.isfinite(label_delay) and label_delay >= 0.0):
            raise ValueError(f'label_delay must be a finite number >= 0, got {label_delay}')
        self.seed = int(seed)
        self.period = float(moment_period)
        self.label_delay = float(label_delay)
        self.scan_beams = int(scan_beams)
        self.no_return_fraction = float(no_return_fraction)
        self.timeline = 0
        self.jumps = 0
        self._last_now: Optional[float] = None
        self._cache: Dict[int, Moment] = {}
        self._next_label: Optional[int] = None  # index of the next label to publish
        # one noise stream per sensor: how often one sensor reports does not change another's
        streams = np.random.SeedSequence([self.seed, 0x5EED]).spawn(6)
        self._noise = [np.random.default_rng(s) for s in streams[:5]]
        self._scan_rng = np.random.default_rng(streams[5])
        # odometry and wheel angles, integrated from the clean speed
        self._x = 0.0
        self._wheel_angle = 0.0
        self._odom_t: Optional[float] = None

    # --------------------------------------------------------------------------- time
    def _observe(self, now: float) -> None:
        """Note the time; a time before the last one seen starts a new timeline."""
        if self._last_now is not None and now < self._last_now:
            self.timeline += 1
            self.jumps += 1
            self._cache.clear()
            self._next_label = None
            self._odom_t = None
            self._x = 0.0
            self._wheel_angle = 0.0
        if self._next_label is None:
            # the first moment seen whole: the labels of moments nobody saw are not published
            self._next_label = self.index_at(now) + 1
        self._last_now = now

    def index_at(self, t: float) -> int:
        return int(math.floor(t / self.period))

    def moment(self, index: int, timeline: Optional[int] = None) -> Moment:
        """The state of moment ``index`` (of the current timeline, or of ``timeline``)."""
        timeline = self.timeline if timeline is None else timeline
        if timeline == self.timeline and index in self._cache:
            return self._cache[index]
        m = self._draw(timeline, index)
        if timeline == self.timeline:
            if len(self._cache) > 64:
                self._cache.clear()
            self._cache[index] = m
        return m

    def _draw(self, timeline: int, index: int) -> Moment:
        """The state of moment ``index`` of ``timeline``: one draw of the scenario (a subclass
        draws its own states: sim/profile_robot.py)."""
        u = moment_rng(self.seed, timeline, index).uniform(size=7)
        clean = _LOW + u[:5] * (_HIGH - _LOW)
        p = float(sigmoid(float(clean @ _W) + TRUE_BIAS))
        return Moment(timeline, index, index * self.period, self.period, clean, p,
                      bool(u[5] < p),
                      float(_LOW[CURRENT] + u[6] * (_HIGH[CURRENT] - _LOW[CURRENT])))

    def moment_at(self, now: float) -> Moment:
        self._observe(now)
        return self.moment(self.index_at(now))

    # --------------------------------------------------------------------------- readings
    def _noisy(self, now: float, sensor: int) -> Tuple[Moment, float]:
        m = self.moment_at(now)
        return m, float(m.clean[sensor] + self._noise[sensor].normal() * _NOISE[sensor])

    def scan_ranges(self, now: float) -> np.ndarray:
        """``scan_beams`` float32 ranges over [-pi, pi): the nearest return ahead is the noisy
        lidar_range; every other beam is farther, or +inf (no return)."""
        _, nearest = self._noisy(now, LIDAR)
        nearest = min(max(nearest, RANGE_MIN), RANGE_MAX)
        n = self.scan_beams
        rng = self._scan_rng
        ranges = nearest + MIN_GAP + rng.uniform(0.0, RANGE_MAX, size=n)
        ranges[ranges > RANGE_MAX] = np.inf  # beyond the lidar's reach: no return
        ranges[rng.uniform(size=n) < self.no_return_fraction] = np.inf  # open space
        half = max(0, int(FRONT_BEAMS * n / 2))
        ranges[n // 2 + int(rng.integers(-half, half + 1)) if n > 1 else 0] = nearest
        return ranges.astype(np.float32)

    def odometry(self, now: float) -> Tuple[float, float, float]:
        """(x position, noisy forward speed, speed variance): the pose integrates the clean
        speed."""
        m, speed = self._noisy(now, SPEED)
        self._integrate(now, m)
        return self._x, speed, float(_NOISE[SPEED] ** 2)

    def wheels(self, now: float) -> Tuple[List[str], List[float], List[float], List[float]]:
        """(names, positions, velocities, efforts) of the two wheel joints, in a random order:
        the left wheel's effort is the noisy motor current."""
        m, current = self._noisy(now, CURRENT)
        self._integrate(now, m)
        other = m.other_current + self._noise[CURRENT].normal() * _NOISE[CURRENT]
        omega = m.clean[SPEED] / WHEEL_RADIUS
        order = [0, 1] if self._scan_rng.uniform() < 0.5 else [1, 0]
        names = [WHEEL_JOINTS[i] for i in order]
        positions = [self._wheel_angle] * 2
        velocities = [float(omega)] * 2
        efforts = [[current, float(other)][i] for i in order]
        return names, positions, velocities, efforts

    def vibration(self, now: float) -> Tuple[float, float]:
        """(noisy RMS vertical vibration in g, its variance)."""
        _, value = self._noisy(now, VIBRATION)
        return value, float(_NOISE[VIBRATION] ** 2)

    def temperature(self, now: float) -> Tuple[float, float]:
        """(noisy tyre temperature in C, its variance)."""
        _, value = self._noisy(now, TEMPERATURE)
        return value, float(_NOISE[TEMPERATURE] ** 2)

    def _integrate(self, now: float, m: Moment) -> None:
        if self._odom_t is not None and now > self._odom_t:
            dt = now - self._odom_t
            self._x += m.clean[SPEED] * dt
            self._wheel_angle = math.fmod(self._wheel_angle + m.clean[SPEED] / WHEEL_RADIUS * dt,
                                          2.0 * math.pi)
        self._odom_t = now

    # --------------------------------------------------------------------------- labels
    def labels_due(self, now: float) -> List[Label]:
        """The labels whose time has come (due <= now), oldest first, each once.

        A timeline's labels start with the first moment it saw whole (after the start, or after a
        jump back): the moments before it were never reported by the sensors.
        """
        self._observe(now)
        newest = self.index_at(now - self.label_delay - self.period / 2.0)
        first = max(self._next_label, newest - MAX_LABELS_PER_CALL + 1)
        labels = []
        for k in range(first, newest + 1):
            m = self.moment(k)
            labels.append(Label(m.timeline, k, m.centre, m.centre + self.label_delay, m.slip,
                                m.probability))
        self._next_label = max(self._next_label, newest + 1)
        return labels
