"""Keep the DDS traffic of tests, benchmarks and demos on this machine, on a domain per run.

``claim_domain_id`` takes a ROS_DOMAIN_ID that no other process on this machine holds, by a
non-blocking ``flock`` on a per-ID lock file that is held until the returned lock is released (or
the process exits). ``loopback_env`` adds the variables that keep discovery on loopback:
``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` (Jazzy and later) and ``ROS_LOCALHOST_ONLY=1`` (its
Humble spelling) only where the first is not understood.
"""

from __future__ import annotations

import fcntl
import os
import random
import tempfile
from typing import Dict, Mapping, Optional

# Domain IDs 0..101 are valid on Linux with the default port mapping; 0 is everyone's default.
_FIRST, _LAST = 1, 101
_MAX_DOMAIN_ID = 232  # the largest any RMW accepts


class DomainLock:
    """An exclusively held ROS_DOMAIN_ID; ``release`` (or process exit) frees it."""

    def __init__(self, domain_id: int, fd: Optional[int]) -> None:
        self.domain_id = domain_id
        self._fd: Optional[int] = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> 'DomainLock':
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def domain_id_from_env(env: Optional[Mapping[str, str]] = None) -> Optional[int]:
    """The ROS_DOMAIN_ID the user set (None: unset or empty); ValueError if it is no domain ID.

    >>> domain_id_from_env({'ROS_DOMAIN_ID': '42'}), domain_id_from_env({})
    (42, None)
    """
    text = (os.environ if env is None else env).get('ROS_DOMAIN_ID', '').strip()
    if not text:
        return None
    if not text.isdigit() or int(text) > _MAX_DOMAIN_ID:
        raise ValueError(f'ROS_DOMAIN_ID={text!r} is not a domain ID (0 to {_MAX_DOMAIN_ID}): '
                         'unset it to have one chosen, or set a number')
    return int(text)


def use_domain_id(domain_id: int) -> DomainLock:
    """The domain the user chose, as a lock that holds nothing (others may share it: theirs)."""
    return DomainLock(domain_id, None)


def claim_domain_id(rng: Optional[random.Random] = None) -> DomainLock:
    """Lock and return a ROS_DOMAIN_ID in 1..101 that no other claimant on this machine holds."""
    lock_dir = os.path.join(tempfile.gettempdir(), 'nn_one_node-domains')
    os.makedirs(lock_dir, exist_ok=True)
    ids = list(range(_FIRST, _LAST + 1))
    (rng or random.Random()).shuffle(ids)
    for domain_id in ids:
        fd = os.open(os.path.join(lock_dir, f'{domain_id}.lock'), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        return DomainLock(domain_id, fd)
    raise RuntimeError('every ROS_DOMAIN_ID from 1 to 101 is held by another run on this machine')


def ros_distro_is_humble_or_older(env: Mapping[str, str]) -> bool:
    return env.get('ROS_DISTRO', '') in ('foxy', 'galactic', 'humble')


def loopback_env(domain_id: int, base: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """A copy of ``base`` (default os.environ) with DDS kept on loopback and on ``domain_id``."""
    env = dict(os.environ if base is None else base)
    env['ROS_DOMAIN_ID'] = str(domain_id)
    if ros_distro_is_humble_or_older(env):
        env['ROS_LOCALHOST_ONLY'] = '1'
    else:
        env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
        env.pop('ROS_LOCALHOST_ONLY', None)  # on Jazzy setting both only prints a warning
        env.pop('ROS_STATIC_PEERS', None)
    return env


def keep_this_process_on_loopback() -> None:
    """Set the discovery variables of ``loopback_env`` in os.environ, for this process's own
    rclpy contexts (each given its domain explicitly at init)."""
    env = loopback_env(0)
    for key in ('ROS_AUTOMATIC_DISCOVERY_RANGE', 'ROS_LOCALHOST_ONLY', 'ROS_STATIC_PEERS'):
        if key in env:
            os.environ[key] = env[key]
        else:
            os.environ.pop(key, None)
