"""An example robot's streams (``profiles.py``): the readings of each of its sensors and its late
label, moment by moment. No ROS import; ``sim_robot`` with ``profile:=<name>`` publishes what
this module computes (``ros/profile_publisher.py`` fills the messages).

The timing is the wheel-slip robot's (``robot_scenario.py``: moments of ``moment_period`` s, a
label per moment ``label_delay`` s after its centre, a new timeline when the clock jumps back);
what differs is the state, drawn uniformly from the profile's variables, and the messages:

* a scan with the lidar's own geometry (a TurtleBot3's 360 beams from ``angle_min`` 0, so that
  the front spans both ends of the array): the nearest thing ahead on one beam within
  ``front_deg`` of 0, the other beams ahead farther, nearer walls at the sides, a fraction of
  dropouts (0.0 or NaN) and +inf where nothing is within ``range_max``;
* odometry (speed, turning rate), an IMU (turning rate; gravity on z), the wheel joints in the
  driver's order (velocities from the speed, and the wheel slip where the profile has one;
  efforts where the driver fills them);
* a battery that drains linearly from the timeline's first message: a clock-like input.

>>> robot = ProfileRobot('turtlebot3', seed=1)
>>> m = robot.moment_at(100.6)               # started at 100.6 s: labels from moment 202 on
>>> m.index, round(m.centre, 2)
(201, 100.75)
>>> ranges = robot.scan_ranges(100.6)
>>> ranges.shape, bool((ranges == 0.0).any()), bool(np.isinf(ranges).any())
((360,), True, True)
>>> ahead = np.concatenate([ranges[330:], ranges[:31]])        # the sector -30..30 degrees
>>> valid = ahead[(ahead >= 0.12) & (ahead <= 3.5)]
>>> bool(abs(valid.min() - m.state['front']) < 0.05)         # min(ranges@-30:30) is 'front'
True
>>> nxt = robot.moment_at(101.1)
>>> [(lab.index, lab.slip == nxt.slip) for lab in robot.labels_due(101.76)]  # 0.5 s late
[(202, True)]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple, Union

import numpy as np

from nn_one_node.model import sigmoid
from nn_one_node.sim.profiles import PROFILES, Profile
from nn_one_node.sim.robot_scenario import RobotScenario, moment_rng

GRAVITY = 9.80665  # m/s^2 on the IMU's z, at rest
WHEEL_NOISE = 0.05  # rad/s (and N m) where no feature reads a wheel's field
PROFILE_SALT = 0x9F0F1E  # a profile's moments are other draws than the wheel-slip robot's
_STREAMS = ('scan', 'odom', 'imu', 'joints', 'battery', 'sides')


@dataclass(frozen=True)
class ProfileMoment:
    """The robot's state over ``[start, start + period)``: its variables, the battery level at
    the moment's start, the true label probability and the label drawn with it."""

    timeline: int
    index: int
    start: float
    period: float
    state: Dict[str, float] = field(compare=False)
    probability: float
    slip: bool  # the label (a bump, a slip): named as the wheel-slip robot's, whose timing

    @property
    def centre(self) -> float:
        return self.start + self.period / 2.0


class ProfileRobot(RobotScenario):
    """The moments, readings and late labels of one example robot (``profile``: a name of
    ``PROFILES`` or a ``Profile``)."""

    def __init__(self, profile: Union[str, Profile], seed: int = 0) -> None:
        self.profile = PROFILES[profile] if isinstance(profile, str) else profile
        p = self.profile
        super().__init__(seed, p.moment_period, p.label_delay)
        streams = np.random.SeedSequence([self.seed, PROFILE_SALT]).spawn(len(_STREAMS))
        self._rng = {name: np.random.default_rng(s) for name, s in zip(_STREAMS, streams)}
        # the noise of each stream's feature (one a topic here), 0 where no feature reads it
        by_topic = {f.entry.split()[0]: f.noise_std for f in p.features}
        self._std = {st.kind: by_topic.get(st.topic, 0.0) for st in p.streams}
        self._t0: Optional[float] = None  # the timeline's first time: the battery's full
        self._t0_timeline = -1
        lidar = p.lidar
        angles = (lidar.angle_min + np.arange(lidar.beams) * lidar.angle_increment) / math.pi
        wrapped = np.abs((angles + 1.0) % 2.0 - 1.0) * 180.0  # |angle| in degrees, 0..180
        self._front_beams = np.flatnonzero(wrapped <= lidar.front_deg)
        self._clear = wrapped <= lidar.clear_deg
        if self._front_beams.size == 0:
            raise ValueError(f'profile {p.name}: no beam of its lidar looks ahead')

    # ------------------------------------------------------------------------------- state
    def _observe(self, now: float) -> None:
        super()._observe(now)
        if self._t0_timeline != self.timeline:
            self._t0, self._t0_timeline = now, self.timeline

    def voltage(self, t: float) -> float:
        """The battery's clean voltage at ``t`` (drained since the timeline's first time)."""
        b = self.profile.battery
        t0 = t if self._t0 is None else self._t0
        return max(b.full - b.drain * max(t - t0, 0.0), b.empty)

    def _draw(self, timeline: int, index: int) -> ProfileMoment:
        p = self.profile
        u = moment_rng(self.seed, timeline, index, PROFILE_SALT).uniform(
            size=len(p.variables) + 1)
        state = {v.name: v.low + x * (v.high - v.low) for v, x in zip(p.variables, u)}
        start = index * self.period
        state['voltage'] = self.voltage(start)
        prob = float(sigmoid(p.logit(state)))
        return ProfileMoment(timeline, index, start, self.period, state, prob, bool(u[-1] < prob))

    def _noisy(self, now: float, name: str, stream: str, std: float) -> Tuple[ProfileMoment,
                                                                              float]:
        m = self.moment_at(now)
        return m, float(m.state[name] + self._rng[stream].normal() * std)

    # ---------------------------------------------------------------------------- readings
    def scan_ranges(self, now: float) -> np.ndarray:
        """The lidar's ranges (float32): the nearest thing ahead is the noisy ``front``."""
        lidar = self.profile.lidar
        m, front = self._noisy(now, 'front', 'scan', self._std['scan'])
        front = min(max(front, lidar.range_min), lidar.range_max)
        rng, n = self._rng['scan'], lidar.beams
        sides = self._rng['sides']
        ranges = sides.uniform(lidar.range_min, 1.3 * lidar.range_max, size=n)  # walls
        ahead = front + 0.05 + rng.uniform(0.0, lidar.range_max, size=n)
        ranges[self._clear] = ahead[self._clear]  # nothing nearer ahead than the front
        ranges[ranges > lidar.range_max] = lidar.no_return_value
        ranges[rng.uniform(size=n) < lidar.dropout] = lidar.dropout_value
        ranges[self._front_beams[int(rng.integers(self._front_beams.size))]] = front
        return ranges.astype(np.float32)

    def odometry(self, now: float) -> Tuple[float, float, float, float]:
        """(x position, noisy forward speed, noisy turning rate, speed variance)."""
        m, speed = self._noisy(now, 'speed', 'odom', self._std['odom'])
        yaw = m.state.get('yaw_rate', 0.0) + self._rng['odom'].normal() * 0.01
        self._integrate(now, m)
        return self._x, speed, float(yaw), self._std['odom'] ** 2

    def imu(self, now: float) -> Tuple[float, float]:
        """(noisy turning rate in rad/s, the z acceleration in m/s^2: gravity and noise)."""
        m, yaw = self._noisy(now, 'yaw_rate', 'imu', self._std['imu'])
        return yaw, GRAVITY + float(self._rng['imu'].normal() * 0.05)

    def wheels(self, now: float) -> Tuple[List[str], List[float], List[float], List[float]]:
        """(names, positions, velocities, efforts) of the wheel joints in the driver's order:
        velocities in rad/s from the speed (and the wheel slip); efforts, where the driver
        fills them, the first joint's the noisy ``effort`` (the others another motor's)."""
        p = self.profile
        m = self.moment_at(now)
        self._integrate(now, m)
        rng = self._rng['joints']
        omega = (m.state['speed'] + m.state.get('slip_speed', 0.0)) / p.wheel_radius
        std = self._std['joint_states'] or WHEEL_NOISE
        velocities = [float(omega + rng.normal() * (WHEEL_NOISE if p.effort else std))
                      for _ in p.joints]
        efforts: List[float] = []
        if p.effort:
            efforts = [m.state['effort'] + rng.normal() * std]
            efforts += [m.state.get('effort_right', 0.0) + rng.normal() * std
                        for _ in p.joints[1:]]
        return list(p.joints), [self._wheel_angle] * len(p.joints), velocities, \
            [float(e) for e in efforts]

    def battery(self, now: float) -> Tuple[float, float]:
        """(noisy voltage in V, charge fraction 0..1)."""
        self._observe(now)
        b = self.profile.battery
        v = self.voltage(now)
        noisy = v + float(self._rng['battery'].normal() * self._std['battery'])
        return noisy, (v - b.empty) / (b.full - b.empty)

    def _integrate(self, now: float, m: ProfileMoment) -> None:
        if self._odom_t is not None and now > self._odom_t:
            dt = now - self._odom_t
            self._x += m.state['speed'] * dt
            self._wheel_angle = math.fmod(
                self._wheel_angle + m.state['speed'] / self.profile.wheel_radius * dt,
                2.0 * math.pi)
        self._odom_t = now
