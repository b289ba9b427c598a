"""CPU time and memory of a process, read from /proc (Linux).

* ``cpu_ticks``: utime + stime of ``/proc/<pid>/stat``, all threads, living and dead, in clock
  ticks (``SC_CLK_TCK``, usually 100 per second: 10 ms resolution, so only long windows resolve).
* ``cpu_ns``: the sum of the first field of ``/proc/<pid>/task/*/schedstat``, the nanoseconds each
  living thread has run, exact to the scheduler's accounting. A thread that exits during a window
  takes its time with it, which the node processes here (long-lived DDS threads) do not do.
* ``rss_bytes``: VmRSS of ``/proc/<pid>/status``.
"""

from __future__ import annotations

import os
from typing import Dict, Optional

CLK_TCK = os.sysconf('SC_CLK_TCK')


def cpu_ticks(pid: int) -> int:
    with open(f'/proc/{pid}/stat', 'rb') as f:
        raw = f.read()
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = raw[raw.rindex(b')') + 2:].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of the line)


def cpu_ns(pid: int) -> Optional[int]:
    """Nanoseconds run by the living threads of ``pid``; None where schedstat is missing."""
    total = 0
    try:
        tids = os.listdir(f'/proc/{pid}/task')
    except FileNotFoundError:
        return None
    for tid in tids:
        try:
            with open(f'/proc/{pid}/task/{tid}/schedstat', 'rb') as f:
                total += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread exited between listdir and open
    return total


def cpu_sample(pid: int) -> Dict[str, Optional[int]]:
    return {'ns': cpu_ns(pid), 'ticks': cpu_ticks(pid)}


def cpu_delta(before: Dict[str, Optional[int]], after: Dict[str, Optional[int]]) -> Dict:
    """Seconds of CPU between two ``cpu_sample`` results, by both counters."""
    ns = None
    if before['ns'] is not None and after['ns'] is not None:
        ns = (after['ns'] - before['ns']) / 1e9
    return {'schedstat_s': ns, 'stat_s': (after['ticks'] - before['ticks']) / CLK_TCK}


def rss_bytes(pid: int) -> Optional[int]:
    try:
        with open(f'/proc/{pid}/status') as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1]) * 1024
    except FileNotFoundError:
        return None
    return None
