"""What the trainer keeps of a labeled_samples message, and the refusals counted by kind.

One copy of the rules, pure (no ROS import), used by the trainer node and by ``nn_one_bag``
(``offline``), so a recording refuses and counts what the live trainer would.

>>> refused = Refusals()
>>> rows = np.array([[0.5, 1.0], [np.nan, 0.0], [2.0, 1.5], [1e200, 1.0]])
>>> screen_rows(rows, 1, 'sigmoid', refused).tolist()
[[0.5, 1.0]]
>>> refused.by_kind
{'non-finite': 1, 'magnitude': 1, 'label range': 1}
"""

from __future__ import annotations

from typing import Dict

import numpy as np

# A row holding a value beyond +-MAX_MAGNITUDE is refused. An update sums squares of deviations
# over the whole ring (up to 10**8 rows): (2e100)**2 * 1e8 stays finite in float64, while a
# single 1e300 would make every update fail until that row left the ring.
MAX_MAGNITUDE = 1e100


class Refusals:
    """Refusals counted by kind (``runtime.RefusalLog`` adds the throttled log line)."""

    def __init__(self) -> None:
        self.by_kind: Dict[str, int] = {}
        self.total = 0
        self.last_reason = ''

    def refuse(self, kind: str, reason: str, count: int = 1) -> None:
        self.total += count
        self.by_kind[kind] = self.by_kind.get(kind, 0) + count
        self.last_reason = reason


def screen_rows(rows: np.ndarray, num_features: int, activation: str,
                refused: Refusals) -> np.ndarray:
    """The rows of a labeled_samples message the trainer keeps, refusing the rest: 'non-finite'
    (NaN/inf), 'magnitude' (a value beyond +-MAX_MAGNITUDE), 'label range' (a label outside
    [0, 1] for the sigmoid model). Returns the kept rows (M', N + 1): ``rows`` itself when
    every one is kept."""
    n = num_features
    if rows.shape[0] == 1:
        # One row a message, the common case: a comparison per Python float costs less than
        # the dozen numpy calls below (NaN fails every comparison, an infinity the magnitude's).
        values = rows[0].tolist()
        if all(-MAX_MAGNITUDE <= v <= MAX_MAGNITUDE for v in values) and (
                activation != 'sigmoid' or 0.0 <= values[n] <= 1.0):
            return rows
    finite = np.isfinite(rows).all(axis=1)
    if not finite.all():
        bad = int(np.count_nonzero(~finite))
        refused.refuse('non-finite', f'{bad} row(s) hold NaN or infinite values', bad)
    with np.errstate(invalid='ignore'):  # NaN rows are already refused
        good = finite & (np.abs(rows) <= MAX_MAGNITUDE).all(axis=1)
    huge = finite & ~good
    if huge.any():
        bad = int(np.count_nonzero(huge))
        refused.refuse('magnitude', f'{bad} row(s) hold a value beyond +-{MAX_MAGNITUDE:g}', bad)
    if activation == 'sigmoid':
        labels = rows[:, n]
        in_range = (labels >= 0.0) & (labels <= 1.0)
        out = good & ~in_range
        if out.any():
            bad = int(np.count_nonzero(out))
            refused.refuse('label range',
                           f'{bad} row(s) have a label outside [0, 1] (sigmoid model)', bad)
        good = good & in_range
    return rows if good.all() else rows[good]
