"""``TailModel``'s reference counts: the run-based count each reference value gets against its own column equals
the plain definition (values ≥ it), with ties, a constant column, signed zeros and NaNs (sorted last)."""

from __future__ import annotations

import numpy as np

from gnnsec.gnn.window_detect import TailModel


def test_own_counts_equal_the_definition_and_the_binary_search() -> None:
    rng = np.random.default_rng(3)
    x = np.column_stack([
        rng.poisson(1.5, 400).astype(float),  # many ties
        np.round(rng.exponential(1.0, 400), 2),
        np.full(400, 7.0),  # constant
        np.where(rng.random(400) < 0.5, -0.0, 0.0),  # signed zeros are equal
        np.where(rng.random(400) < 0.1, np.nan, rng.normal(size=400)),  # NaNs sort last
    ])
    ordered, counts = TailModel._sorted_with_own_counts(x)
    assert np.array_equal(ordered, np.sort(x, axis=0), equal_nan=True)
    assert np.array_equal(counts, TailModel._tail_counts(np.sort(x, axis=0), x))
    finite = ~np.isnan(x[:, 4])
    for j in range(4):
        assert np.array_equal(counts[:, j], (x[None, :, j] >= x[:, None, j]).sum(axis=1))
    nans = int((~finite).sum())  # sorted last, so they count as above every number, as in the binary search
    assert np.array_equal(counts[finite, 4], (x[None, finite, 4] >= x[finite, None, 4]).sum(axis=1) + nans)
    assert np.all(counts[~finite, 4] == nans)
