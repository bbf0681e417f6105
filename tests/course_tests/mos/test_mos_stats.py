"""course.mos.stats against hand-computed values and Krippendorff's published worked example."""
from __future__ import annotations

import math

import numpy as np
import pytest

from course.mos.stats import krippendorff_alpha, mean_ci, rater_consistency

NAN = math.nan
# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section E: 4 observers, 12 units, values 1-5,
# missing data. Published: nominal 0.743, ordinal 0.815, interval 0.849.
KRIPPENDORFF_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
    [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
]


@pytest.mark.parametrize("level, published", [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849)])
def test_alpha_reproduces_krippendorffs_worked_example(level, published):
    assert krippendorff_alpha(KRIPPENDORFF_2011, level) == pytest.approx(published, abs=5e-4)


def test_alpha_hand_computed_small_case():
    """Two raters, units (1,1), (2,2), (3,2). Coincidences o11 = o22 = 2, o23 = o32 = 1; n = (2, 3, 1), n = 6.
    Nominal: 1 - 5 * 2 / (2 * (6 + 2 + 3)) = 6/11. Ordinal: delta(1,2) = 2.5, delta(2,3) = 2, delta(1,3) = 4.5, so
    1 - 5 * (2 * 4) / (2 * (6 * 6.25 + 3 * 4 + 2 * 20.25)) = 1 - 40/180 = 7/9."""
    data = [[1, 2, 3], [1, 2, 2]]
    assert krippendorff_alpha(data, "nominal") == pytest.approx(6 / 11)
    assert krippendorff_alpha(data, "ordinal") == pytest.approx(7 / 9)
    # the mapping form (unit -> values) gives the same number
    assert krippendorff_alpha({"a": [1, 1], "b": [2, 2], "c": [3, 2]}) == pytest.approx(7 / 9)


def test_alpha_limits():
    assert krippendorff_alpha([[1, 2, 3, 4], [1, 2, 3, 4]]) == pytest.approx(1.0)
    assert krippendorff_alpha([[1, 2, 3, 4], [4, 3, 2, 1]]) < 0  # systematic disagreement
    assert math.isnan(krippendorff_alpha([[3, 3], [3, 3]]))  # no variation: undefined
    assert math.isnan(krippendorff_alpha([[1, NAN], [NAN, 2]]))  # nothing pairable
    with pytest.raises(ValueError):
        krippendorff_alpha([[1, 2], [1, 2]], "ratio-ish")


def test_mean_ci_t_interval_by_hand():
    r = mean_ci([1, 2, 3, 4, 5])
    # sd = sqrt(2.5); t(0.975, 4) = 2.7764451; half-width = 2.7764451 * sqrt(2.5) / sqrt(5) = 1.9632432
    assert r["mos"] == 3 and r["n"] == 5 and r["sd"] == pytest.approx(math.sqrt(2.5))
    assert r["ci_low"] == pytest.approx(3 - 1.9632432, abs=1e-6)
    assert r["ci_high"] == pytest.approx(3 + 1.9632432, abs=1e-6)
    one = mean_ci([4])
    assert one["mos"] == 4 and one["n"] == 1 and math.isnan(one["ci_low"])
    assert mean_ci([])["n"] == 0 and math.isnan(mean_ci([])["mos"])
    rng = np.random.default_rng(0)
    narrow, wide = mean_ci(rng.integers(1, 6, 400)), mean_ci(rng.integers(1, 6, 20))
    assert narrow["ci_high"] - narrow["ci_low"] < wide["ci_high"] - wide["ci_low"]


def test_rater_consistency_against_controls():
    ratings = [("good", "control:hr", 5), ("good", "control:hr", 4), ("good", "control:nn", 1),
               ("flip", "control:hr", 1), ("flip", "control:nn", 5),
               ("flat", "control:hr", 3), ("flat", "control:nn", 3), ("new", "student:x", 3)]
    c = rater_consistency(ratings)
    assert c["good"]["consistent"] is True and c["good"]["gap"] == pytest.approx(3.5)
    assert c["flip"]["consistent"] is False and c["flat"]["consistent"] is False
    assert c["new"]["consistent"] is None
    assert rater_consistency(ratings, min_gap=0.0)["flat"]["consistent"] is True
