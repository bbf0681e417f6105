"""Pairwise mode: Bradley–Terry recovers known strengths; the app shows one stored pair at a time, refuses anything
but the pending pair, and the results map the scores onto the points rule through the controls."""
from __future__ import annotations

import re

import numpy as np
import pytest

from mos_fixtures import make_study, sample_ref  # noqa: F401 (fixture)


def test_bradley_terry_recovers_known_strengths():
    from course.mos.pairwise import bradley_terry, scale_to_points_scale

    rng = np.random.default_rng(0)
    true = np.array([0.0, 1.0, 2.0, 3.0])
    a, b = rng.integers(0, 4, 4000), rng.integers(0, 4, 4000)
    keep = a != b
    a, b = a[keep], b[keep]
    first = rng.random(a.size) < 1 / (1 + np.exp(true[b] - true[a]))
    theta = bradley_terry(4, np.where(first, a, b), np.where(first, b, a))
    assert np.allclose(np.diff(theta), 1.0, atol=0.15)
    assert scale_to_points_scale(theta, 0, 3)[[0, 3]] == pytest.approx([1.0, 5.0])


QUALITY = {"control:nn": 0, "gold:degraded": -1, "control:bicubic": 1, "student:alice": 3, "student:bob": 2,
           "control:hr": 5}


@pytest.fixture()
def pair_study(sample_ref, tmp_path):
    from course.mos.study import calibration_pairs, freeze
    from mos_fixtures import student_image

    accepted = {s: {n: student_image(sample_ref, n, 5 + 7 * k) for n in sample_ref.names}
                for k, s in enumerate(("alice", "bob"))}
    return freeze(tmp_path / "study", sample_ref, accepted, ["instructor", "ta"], peer=False,
                  calibration=calibration_pairs(sample_ref.list_file.parent.parent, n=1, size=64), seed=0,
                  mode="pairwise", pairs_per_rater=12)


def _pair_on(page: str) -> tuple[str, str, str]:
    pair = re.search(r'name="pair" value="([0-9a-f]+)"', page).group(1)
    left, right = re.findall(r'/img/([0-9a-f]+)"', page)
    return pair, left, right


def test_app_shows_one_stored_pair_refuses_others_and_results_follow_the_choices(pair_study):
    from starlette.testclient import TestClient

    from course.mos.app import make_app
    from course.mos.results import analyse, controls_in_order
    from course.mos.store import AnswerStore

    items = pair_study.meta["items"]
    client = TestClient(make_app(pair_study), follow_redirects=False)
    for rater, token in pair_study.tokens.items():
        assert "pick the better one" in client.get(f"/r/{token}").text  # the calibration page says what to do
        client.post(f"/r/{token}/calibrated")
        for step in range(12):
            page = client.get(f"/r/{token}").text
            pair, left, right = _pair_on(page)
            assert f"Pair {step + 1} of 12" in page and items[left]["image"] == items[right]["image"]
            assert _pair_on(client.get(f"/r/{token}").text) == (pair, left, right)  # a reload shows the same pair
            assert client.get(f"/r/{token}/img/{left}").status_code == 200
            other = next(i for i in pair_study.meta["orders"][rater] if i not in (left, right))
            assert client.get(f"/r/{token}/img/{other}").status_code == 404  # only the pair on screen
            for bad in (f"pair={pair}&choice=up", f"pair={'0' * 16}&choice=left", f"pair={pair}",
                        f"pair={pair}&choice=left&choice=right"):
                r = client.post(f"/r/{token}/answer", content=bad)
                assert r.status_code == 400 and r.text.startswith("refused:"), bad
            better = "left" if QUALITY[items[left]["version"]] >= QUALITY[items[right]["version"]] else "right"
            assert client.post(f"/r/{token}/answer", content=f"pair={pair}&choice={better}").status_code == 303
            # replaying the answer is refused: the pair is no longer pending, nothing more is stored
            assert client.post(f"/r/{token}/answer", content=f"pair={pair}&choice={better}").status_code == 400
        assert 'id="done"' in client.get(f"/r/{token}").text
    comparisons = AnswerStore(pair_study.db_path).all_comparisons()
    assert len(comparisons) == 24 and len({(c[0], frozenset(c[1:3])) for c in comparisons}) == 24
    a = analyse(pair_study, resamples=30)
    assert a["mode"] == "pairwise" and a["flagged"] == []
    rows = {r["version"]: r for r in a["rows"]}
    assert rows["control:nn"]["model_mos"] == pytest.approx(1) and rows["control:hr"]["model_mos"] == pytest.approx(5)
    assert controls_in_order(a)
    assert rows["student:alice"]["points"] >= rows["student:bob"]["points"]


def test_a_rater_who_prefers_the_worse_image_is_flagged_and_left_out(sample_ref, tmp_path):
    import random

    from course.mos.pairwise import next_pair
    from course.mos.results import analyse
    from course.mos.store import AnswerStore
    from course.mos.study import freeze
    from mos_fixtures import student_image

    accepted = {s: {n: student_image(sample_ref, n, 5 + 7 * k) for n in sample_ref.names}
                for k, s in enumerate(("alice", "bob"))}
    pair_study = freeze(tmp_path / "study", sample_ref, accepted, ["instructor", "ta2", "ta3", "ta"], seed=0,
                        mode="pairwise", pairs_per_rater=12)
    items, store = pair_study.meta["items"], AnswerStore(pair_study.db_path)
    rng = random.Random(0)
    for step in range(12):
        for rater in ("instructor", "ta2", "ta3", "ta"):
            left, right = next_pair(pair_study.meta, rater, store.all_comparisons(), rng)
            pair = store.set_pending(rater, f"{rater}{step}", left, right)[0]
            better = QUALITY[items[left]["version"]] >= QUALITY[items[right]["version"]]
            honest = "left" if better else "right"
            store.answer_pair(rater, pair, honest if rater != "ta" else
                              {"left": "right", "right": "left"}[honest])
    a = analyse(pair_study, resamples=10)
    assert a["flagged"] == ["ta"] and a["excluded"] == ["ta"], {r: s["flags"] for r, s in a["screening"].items()}
    assert any(f.startswith(("gold", "panel")) for f in a["screening"]["ta"]["flags"])
    rows = {r["version"]: r for r in a["rows"]}
    assert rows["student:alice"]["points"] > rows["student:bob"]["points"]
    kept = analyse(pair_study, keep=["ta"], resamples=10)
    assert kept["excluded"] == [] and kept["n_ratings"] == 48
