"""nn_one_node.ranges: a row counts the same whichever form the predictor hands it in."""

import numpy as np

from nn_one_node.ranges import RangeWatch


def test_a_row_counts_alike_as_floats_as_an_ndarray_and_in_a_batch():
    rng = np.random.default_rng(3)
    X = rng.normal(scale=2.0, size=(200, 7))
    low, high = [-1.0] * 7, [1.5] * 7
    as_floats, as_arrays, as_batch = (RangeWatch(low, high) for _ in range(3))
    for x in X:
        as_floats.row(tuple(x.tolist()))
        as_arrays.row(x)
    as_batch.matrix(X)
    for w in (as_floats, as_arrays, as_batch):
        assert w.rows == 200
        np.testing.assert_array_equal(w.outside, ((X < -1.0) | (X > 1.5)).sum(axis=0))
