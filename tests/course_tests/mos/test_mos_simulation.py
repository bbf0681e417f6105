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


def test_a_colluder_among_seven_cannot_lift_a_friend():
    """Seven raters rate everything (a small class); one of them rates the controls honestly and gives a weak
    friend 5 on every image. The friend's true quality is that of the NN control (0 points). The colluder is flagged
    and the friend's points stay near 0; even kept, the model bounds the lift."""
    import numpy as np

    from course.mos.analysis import build_table, estimate
    from course.mos.screening import screen_raters

    rng = np.random.default_rng(3)
    quality = {"student:friend": 1.2, "student:a": 3.0, "student:b": 3.8, "control:nn": 1.2,
               "control:bicubic": 2.0, "control:hr": 4.8, "gold:degraded": 1.0}
    images = [f"img{k}" for k in range(5)]
    items = {f"i{k}": {"version": v, "image": im} for k, (v, im) in
             enumerate((v, im) for v in quality for im in images)}
    raters = [f"r{k}" for k in range(6)] + ["colluder"]
    answers = []
    for r in raters:
        bias, noise = rng.normal(0, 0.3), rng.uniform(0.4, 0.8)
        for iid, it in items.items():
            honest = int(np.clip(round(quality[it["version"]] + bias + noise * rng.normal()), 1, 5))
            answers.append((r, iid, 5 if r == "colluder" and it["version"] == "student:friend" else honest))
    versions = [v for v in quality if v != "gold:degraded"]
    meta = {"items": items, "raters": raters, "versions": versions}
    table = build_table(meta, answers)
    screen = screen_raters(table.x, raters, table.item_version, table.repeats)
    flagged = {r for r, s in screen.items() if s["flags"]}
    assert flagged == {"colluder"}, {r: s["flags"] for r, s in screen.items() if s["flags"]}
    assert any(f.startswith("favouritism") for f in screen["colluder"]["flags"])
    cfg = AnalysisConfig(model=ModelConfig(resamples=5))
    assert estimate(table, versions, flagged, cfg, intervals=False)["student:friend"]["points"] <= 0.2
    kept_all = estimate(table, versions, set(), cfg, intervals=False)["student:friend"]["points"]
    assert kept_all <= 0.1 * 4  # not screened: the model down-weights the inconsistent colluder (0.02 here)
