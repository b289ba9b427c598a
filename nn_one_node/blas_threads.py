"""One BLAS thread for the process that imports this before numpy, unless its environment says.

Both nodes import it first. OpenBLAS's default of a thread per core costs a robot's computer more
than it gives a node: in the trainer a training step took every core and multiplied the
predictor's p99 latency (issue 5 goal 6: 6x its idle p99 with 2 BLAS threads, 1.75x with one);
in the predictor one BLAS call long enough to be split (a dot product of a 1000 x 64 batch, 64 000
values) woke a worker thread that then spun for about 0.1 s, so that batches at 20 Hz kept a whole
core busy (51 ms of CPU per message, against under 1 ms on one thread). A value set explicitly in
the environment (``OPENBLAS_NUM_THREADS=2 ros2 run ...``) wins.
"""

import os

for _name in ('OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS', 'MKL_NUM_THREADS'):
    os.environ.setdefault(_name, '1')
