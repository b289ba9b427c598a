"""A sector of a laser scan chosen by angle: ``ranges@<from>:<to>``, in degrees, measured as the
scan's own angles (beam i at ``angle_min + i * angle_increment``, counterclockwise as REP 103
has it), both ends included. A sector may wrap around the ends of the array: the front of a
360-beam scan with ``angle_min`` 0 (a TurtleBot3's LDS) is ``-30:30``, beams 330..359 and
0..30; the same words pick beams 150..210 of a scan from -180 to 180 degrees. ``from`` must be
below ``to`` and the sector at most 360 degrees wide (``330:390`` is ``-30:30`` too).

The beams are found from each message's ``angle_min`` and ``angle_increment`` and kept per
(angle_min, angle_increment, number of beams), so a scan of the usual geometry costs one dict
lookup; a beam within a hundredth of an increment of an end counts as on it (drivers compute
their angles in float32).

>>> front = Sector.parse('-30:30')
>>> beams = front.indices(0.0, math.radians(1.0), 360)          # angle_min 0: wraps around
>>> len(beams), beams[:2].tolist(), beams[-2:].tolist()
(61, [0, 1], [358, 359])
>>> beams = front.indices(-math.pi, math.radians(1.0), 360)     # -180..179: the middle
>>> int(beams[0]), int(beams[-1])
(150, 210)
>>> Sector.parse('30:-30')  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: from 30 must be below to -30 (degrees, counterclockwise): ...
"""

from __future__ import annotations

import math
from typing import Any, Dict, Tuple

import numpy as np

from nn_one_node.assembly.errors import MessageFault

CACHE_SIZE = 8        # scan geometries remembered per entry (one is usual)
END_TOLERANCE = 0.01  # of an increment: a beam this near an end of the sector is on it
EXAMPLE = 'the front is -30:30, the back 150:210'


class Sector:
    """The beams of a scan between two angles (degrees), found per scan geometry."""

    def __init__(self, start_deg: float, end_deg: float) -> None:
        self.start, self.end = start_deg, end_deg
        self.width = end_deg - start_deg
        self._cache: Dict[Tuple[float, float, int], np.ndarray] = {}

    @classmethod
    def parse(cls, raw: str) -> 'Sector':
        """``'-30:30'`` -> Sector(-30.0, 30.0); ValueError saying what is wrong."""
        return cls(*parse_angles(raw))

    def __repr__(self) -> str:
        return f'Sector({self.start:g}, {self.end:g})'

    def indices(self, angle_min: float, increment: float, n: int) -> np.ndarray:
        """The indices of the beams in the sector (ascending; maybe none), for a scan of ``n``
        beams; MessageFault ('scan angles') where the angles are unusable."""
        key = (angle_min, increment, n)
        found = self._cache.get(key)
        if found is not None:
            return found
        if not (math.isfinite(angle_min) and math.isfinite(increment)) or increment == 0.0:
            raise MessageFault('scan angles', f'angle_min {angle_min} and angle_increment '
                               f"{increment} do not give the beams' angles")
        angles = np.degrees(angle_min + np.arange(n, dtype=np.float64) * increment)
        offset = np.mod(angles - self.start, 360.0)
        tol = END_TOLERANCE * abs(math.degrees(increment))
        inside = (offset <= self.width + tol) | (offset >= 360.0 - tol)
        found = np.flatnonzero(inside)
        if len(self._cache) >= CACHE_SIZE:
            self._cache.clear()
        self._cache[key] = found
        return found

    def take(self, values: np.ndarray, scan: Any, label: str) -> np.ndarray:
        """The values of the sector's beams in ``values`` (an array field of ``scan``);
        MessageFault where the scan's angles are unusable or no beam lies in the sector."""
        try:
            idx = self.indices(float(scan.angle_min), float(scan.angle_increment),
                               values.shape[0])
        except MessageFault as fault:
            raise MessageFault(fault.kind, f'{label}: {fault}') from None
        if idx.shape[0] == 0:
            last = scan.angle_min + (values.shape[0] - 1) * scan.angle_increment
            raise MessageFault('empty', f'{label}: no beam of this scan lies in the sector '
                               f'(its {values.shape[0]} beams span '
                               f'{math.degrees(scan.angle_min):.4g} to '
                               f'{math.degrees(last):.4g} degrees)')
        return values[idx]


def parse_angles(raw: str) -> Tuple[float, float]:
    """``'<from>:<to>'`` in degrees -> (from, to); ValueError where it is not a sector."""
    parts = raw.split(':')
    if len(parts) != 2 or not all(p.strip() for p in parts):
        raise ValueError(f'{raw!r} is not <from>:<to> in degrees ({EXAMPLE})')
    angles = []
    for p in parts:
        try:
            a = float(p)
        except ValueError:
            raise ValueError(f'{p.strip()!r} is not an angle in degrees ({EXAMPLE})') from None
        if not math.isfinite(a):
            raise ValueError(f'{p.strip()!r} is not a finite angle in degrees')
        angles.append(a)
    start, end = angles
    if not start < end:
        raise ValueError(f'from {start:g} must be below to {end:g} (degrees, counterclockwise): '
                         f'{EXAMPLE}')
    if end - start > 360.0:
        raise ValueError(f'{start:g}:{end:g} spans {end - start:g} degrees, more than a turn')
    return start, end
