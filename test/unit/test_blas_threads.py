"""Both nodes run numpy's BLAS on one thread unless the environment says otherwise (see
nn_one_node/blas_threads.py): the module of each node, imported as its console script imports it,
in a fresh interpreter; the thread count read from the OpenBLAS library numpy loaded."""

import os
import subprocess
import sys

import pytest

PROBE = r"""
import ctypes, importlib, sys
importlib.import_module(sys.argv[1])
import numpy  # noqa: F401 - loaded by the node module already; here for clarity
paths = sorted({line.split()[-1] for line in open('/proc/self/maps')
                if 'openblas' in line.lower()})
assert paths, 'numpy loaded no OpenBLAS library'
lib = ctypes.CDLL(paths[0])
for name in ('scipy_openblas_get_num_threads64_', 'openblas_get_num_threads64_',
             'openblas_get_num_threads'):
    if hasattr(lib, name):
        print(getattr(lib, name)())
        break
else:
    raise SystemExit(f'no get_num_threads in {paths[0]}')
"""


def blas_threads(module, **env):
    base = {k: v for k, v in os.environ.items()
            if k not in ('OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS', 'MKL_NUM_THREADS')}
    proc = subprocess.run([sys.executable, '-c', PROBE, module], env={**base, **env},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return int(proc.stdout.split()[-1])


@pytest.mark.parametrize('module', ['nn_one_node.nodes.predictor', 'nn_one_node.nodes.trainer'])
def test_one_blas_thread_by_default_and_the_environment_wins(module):
    cores = os.cpu_count() or 1
    assert blas_threads('numpy') == min(cores, 64)  # numpy alone: one per core (the hazard)
    assert blas_threads(module) == 1
    assert blas_threads(module, OPENBLAS_NUM_THREADS='2') == min(cores, 2)
