"""Where a benchmark's figures come from, written next to them: the command, the commit (and
what of the package was uncommitted), the machine, the versions of the libraries compared."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any, Dict, List, Sequence

REPO = Path(__file__).resolve().parent.parent


def git(*args: str) -> str:
    done = subprocess.run(['git', *args], cwd=REPO, capture_output=True, text=True)
    return done.stdout.rstrip() if done.returncode == 0 else ''


def run_meta(script: str, argv: List[str], started: float,
             versions_of: Sequence[str] = ('numpy',)) -> Dict[str, Any]:
    """``script`` (under bench/) run with ``argv``, started at ``time.monotonic()`` ``started``;
    the versions of the modules ``versions_of`` (None: not installed)."""
    import nn_one_node

    versions: Dict[str, Any] = {}
    for name in versions_of:
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            versions[name] = None
    return dict(command=' '.join(['python', f'bench/{script}', *argv]).strip(),
                date=time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()),
                commit=git('rev-parse', '--short', 'HEAD'),
                uncommitted=[line[3:] for line in git('status', '--porcelain', '--',
                                                      'nn_one_node').splitlines()],
                nn_one_node=str(Path(nn_one_node.__file__).parent),
                machine=platform.platform(), python=platform.python_version(),
                cpus=os.cpu_count(), versions=versions,
                duration_s=round(time.monotonic() - started, 1))
