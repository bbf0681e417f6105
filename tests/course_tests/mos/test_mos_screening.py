"""course.mos.screening on a hand-made panel: each kind of bad rater gets its own flag, a harsh honest rater none."""
from __future__ import annotations

import numpy as np

from course.mos.screening import screen_raters


def _panel(seed: int = 0):
    rng = np.random.default_rng(seed)
    versions = (["control:nn"] * 5 + ["gold:degraded"] * 5 + ["control:bicubic"] * 5 + ["control:hr"] * 5
                + [f"student:s{k}" for k in range(8) for _ in range(5)])
    known = {"control:nn": 1.2, "gold:degraded": 1.0, "control:bicubic": 2.0, "control:hr": 4.8}
    quality = np.array([known[v] if v in known else 1.8 + 0.3 * int(v[-1]) for v in versions])
    raters = [f"honest{k}" for k in range(8)] + ["harsh", "flat", "saboteur", "reversed", "friend", "shaky"]
    x = np.empty((len(versions), len(raters)))
    for j, r in enumerate(raters):
        honest = np.clip(np.round(quality + rng.normal(0, 0.3) + rng.normal(0, 0.5, len(versions))), 1, 5)
        x[:, j] = honest
    col = {r: j for j, r in enumerate(raters)}
    student = np.char.startswith(np.array(versions), "student:")
    x[:, col["harsh"]] = np.clip(np.round(quality - 0.8 + rng.normal(0, 0.4, len(versions))), 1, 5)
    x[:, col["flat"]] = 3
    x[student, col["saboteur"]] = 1
    x[:, col["reversed"]] = 6 - x[:, col["honest0"]]
    x[np.array(versions) == "student:s0", col["friend"]] = 5
    repeats = {r: [(3, 3), (4, 4), (2, 2)] for r in raters}
    repeats["shaky"] = [(1, 5), (5, 1), (2, 5)]
    return x, raters, versions, repeats


def test_each_bad_rater_gets_its_flag_and_honest_ones_none():
    x, raters, versions, repeats = _panel()
    out = screen_raters(x, raters, versions, repeats)
    kinds = {r: {f.split(":")[0] for f in out[r]["flags"]} for r in raters}
    for r in raters:
        if r.startswith("honest") or r == "harsh":
            assert kinds[r] == set(), (r, out[r]["flags"])
    assert "straight-lining" in kinds["flat"] and "gold" in kinds["flat"]
    assert "straight-lining on the students' images" in kinds["saboteur"] and "panel" in kinds["saboteur"]
    assert "gold" in kinds["reversed"] and "panel" in kinds["reversed"]
    assert "favouritism" in kinds["friend"] and "student:s0" in " ".join(out["friend"]["flags"])
    assert kinds["shaky"] == {"retest"}
    assert out["harsh"]["gap"] > 1 and out["flat"]["variance"] == 0
