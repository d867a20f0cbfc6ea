"""mlffbench.statistics: bootstrap intervals over test frames, paired differences, ranks with ties."""

import numpy as np
import pytest

from mlffbench import statistics


def _record(errors: np.ndarray, refs: np.ndarray) -> dict:
    """A stored test set of frames with one force component each (err, n, ref sums)."""
    return {"forces": {"err": np.abs(errors).tolist(), "n": [1] * len(errors), "ref": np.abs(refs).tolist()},
            "group": [""] * len(errors)}


def test_interval_covers_the_true_mae_at_its_level():
    """Coverage: of 300 test sets of 40 frames drawn from a known error distribution, ~95 % of the intervals
    contain the true MAE (E|N(0, 1)| = sqrt(2/pi))."""
    rng = np.random.default_rng(1)
    truth, hits = np.sqrt(2 / np.pi), 0
    for k in range(300):
        lo, hi = statistics.interval(statistics.samples(_record(rng.normal(size=40), np.ones(40)), "forces", "mae", k))
        hits += lo <= truth <= hi
    assert 0.90 <= hits / 300 <= 0.98


def test_intervals_are_seeded_and_shrink_with_more_frames():
    rng = np.random.default_rng(0)
    small, large = _record(rng.normal(size=20), np.ones(20)), _record(rng.normal(size=320), np.ones(320))
    a, b = statistics.intervals(small, seed=5), statistics.intervals(small, seed=5)
    assert a == b and a["forces.mae_lo"] < statistics.statistic(small["forces"], "mae") < a["forces.mae_hi"]
    width = {n: c["forces.mae_hi"] - c["forces.mae_lo"] for n, c in
             ((20, a), (320, statistics.intervals(large, seed=5)))}
    assert 2.5 < width[20] / width[320] < 6  # ~ sqrt(16) = 4
    # percent = 100 MAE / MAV with MAV = 1 here
    assert a["forces.percent_lo"] == pytest.approx(100 * a["forces.mae_lo"])
    assert statistics.intervals(_record(np.ones(1), np.ones(1)), seed=0) == {}  # one frame: no interval


def test_paired_difference_resolves_what_unpaired_intervals_cannot():
    """Two models whose errors differ by a small constant on frames of widely varying difficulty: their own
    intervals overlap (a tie in a ranking), while the paired difference excludes zero."""
    rng = np.random.default_rng(2)
    hard = rng.exponential(1.0, size=30)
    a, b = _record(hard + 0.05, np.ones(30)), _record(hard, np.ones(30))
    ca, cb = (statistics.interval(statistics.samples(r, "forces", "mae", 7)) for r in (a, b))
    assert statistics.overlapping(ca, cb)
    paired = statistics.difference(statistics.samples(a, "forces", "mae", 7), statistics.samples(b, "forces", "mae", 7))
    assert paired["excludes_zero"] and paired["lo"] == pytest.approx(0.05, rel=1e-6)


def test_ranks_show_ties_where_intervals_overlap():
    labels = statistics.tie_ranks([1.0, 3.0, 1.1, 9.0], [(0.9, 1.2), (2.8, 3.2), (1.0, 1.3), (np.nan, np.nan)])
    assert labels == ["1=", "3=", "1=", "3="]  # an unknown interval ties with its neighbour
    assert statistics.tie_ranks([2.0, 1.0], [(1.9, 2.1), (0.9, 1.1)]) == ["2", "1"]
