"""The trainer's screening of labeled rows (nn_one_node.learning.screening), one row and many."""

from itertools import product

import numpy as np
import pytest

from nn_one_node.learning.screening import MAX_MAGNITUDE, Refusals, screen_rows


@pytest.mark.parametrize('activation', ['sigmoid', 'linear'])
def test_one_row_is_screened_as_a_batch_of_it_would_be(activation):
    """screening.screen_rows takes a message of one row on a path of its own (Python floats):
    it keeps and refuses exactly what the vectorized path does, by the same kinds."""
    specials = [0.0, 0.5, 1.0, -1.0, 2.0, MAX_MAGNITUDE, -MAX_MAGNITUDE, 1.5 * MAX_MAGNITUDE,
                np.nan, np.inf, -np.inf, 5e-324]
    for feature, label in product(specials, specials):
        row = np.array([[0.25, feature, label]])
        one, batch = Refusals(), Refusals()
        kept = screen_rows(row, 2, activation, one)
        kept_batch = screen_rows(np.vstack([row, row]), 2, activation, batch)
        assert kept.shape[0] * 2 == kept_batch.shape[0], (feature, label)
        assert {k: 2 * v for k, v in one.by_kind.items()} == batch.by_kind, (feature, label)
