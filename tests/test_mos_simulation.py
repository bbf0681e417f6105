"""A simulated peer-rated class (100 students, honest noisy raters, a harsh TA, four planted bad raters): screening
catches every bad rater, no single rater moves anyone's points by more than 10 % of the item, the ranking by true
quality is recovered, and each rater sees a bounded number of images."""
from __future__ import annotations

from course.mos.analysis import AnalysisConfig
from course.mos.model import ModelConfig
from course.mos.simulate import PLANTED, SimConfig, run_simulation


def test_simulated_class_cannot_be_bent_by_one_rater():
    r = run_simulation(SimConfig(students=100, seed=0), AnalysisConfig(model=ModelConfig(resamples=10)))
    assert r["planted_flagged"] == sorted(PLANTED), r["flag_reasons"]
    assert r["honest_flagged"] == [], r["flag_reasons"]
    assert r["max_loo_change"] <= 0.1 * r["max_points"]
    assert r["hinging_students"] == []
    assert all(v <= 0.1 * r["max_points"] for v in r["unscreened_influence"].values())
    assert r["spearman_model"] >= 0.9
    assert r["max_items_per_rater"] <= 60
    assert r["friend_points_kept"] <= r["friend_points_everyone"]  # the colluder's vote is gone
