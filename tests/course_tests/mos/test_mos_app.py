"""The rating app without a browser (Starlette's test client): links, validation, blinding, storage."""
from __future__ import annotations

import re

import pytest

from mos_fixtures import make_study, sample_ref  # noqa: F401 (fixture)


@pytest.fixture()
def study(sample_ref, tmp_path):
    return make_study(sample_ref, tmp_path / "study")


@pytest.fixture()
def client(study):
    from starlette.testclient import TestClient

    from course.mos.app import make_app

    return TestClient(make_app(study), follow_redirects=False)


def _item_on(page: str) -> str:
    return re.search(r'name="item" value="([0-9a-f]+)"', page).group(1)


def test_forged_or_missing_links_get_nothing(client, study):
    token = study.tokens["instructor"]
    item = study.meta["orders"]["instructor"][0]
    for method, url in [("GET", "/"), ("GET", "/r/"), ("GET", "/r/" + "x" * 32), ("GET", f"/r/{token[:-1]}"),
                        ("GET", f"/r/{token}x"), ("GET", f"/r/forged/img/{item}"), ("GET", "/r/forged/app.js"),
                        ("POST", "/r/forged/answer"), ("POST", "/r/forged/calibrated"), ("GET", "/static/x"),
                        ("POST", f"/r/{token}")]:
        r = client.request(method, url, content=f"item={item}&score=3")
        assert r.status_code in (404, 405) and r.content == b"", (method, url, r.status_code, r.content[:80])
    assert client.get(f"/r/{token}").status_code == 200


def test_calibration_first_then_one_image_at_a_time_blinded(client, study):
    token = study.tokens["alice"]
    page = client.get(f"/r/{token}").text
    assert "Calibration" in page and 'id="start"' in page
    for c in study.meta["calibration"]:
        assert f"/calibration/{c['id']}" in page
        assert client.get(f"/r/{token}/calibration/{c['id']}").headers["content-type"] == "image/png"
    assert client.post(f"/r/{token}/calibrated").status_code == 303
    page = client.get(f"/r/{token}").text
    order = study.meta["orders"]["alice"]
    assert _item_on(page) == order[0] and f"Image 1 of {len(order)}" in page
    students = [v.split(":")[1] for v in study.meta["versions"] if v.startswith("student:")]
    r = client.get(f"/r/{token}")
    for text in (r.text, *r.headers.values()):
        assert not any(s in text for s in students) and "control" not in text and "bicubic" not in text.lower()
    assert r.headers["content-security-policy"].startswith("default-src 'none'")
    assert r.headers["referrer-policy"] == "no-referrer" and r.headers["cache-control"] == "no-store"
    # a student can fetch neither their own images nor items outside their order
    own = [i for i, it in study.meta["items"].items() if it["version"] == "student:alice"]
    assert own and all(client.get(f"/r/{token}/img/{i}").status_code == 404 for i in own)
    assert client.get(f"/r/{token}/img/{order[0]}").content[:8] == b"\x89PNG\r\n\x1a\n"
    assert client.get(f"/r/{study.tokens['instructor']}/img/{own[0]}").status_code == 200


def test_answers_are_validated_stored_and_answering_twice_keeps_one(client, study):
    from course.mos.store import AnswerStore

    token = study.tokens["ta"]
    first, second = study.meta["orders"]["ta"][:2]
    assert client.post(f"/r/{token}/answer", content=f"item={first}&score=3").status_code == 400  # not calibrated
    client.post(f"/r/{token}/calibrated")
    other = next(i for i in study.meta["items"] if i not in study.meta["orders"]["alice"])
    bad = [f"item={first}&score=0", f"item={first}&score=6", f"item={first}&score=3.0", f"item={first}&score=",
           f"item={first}&score=%EF%BC%93", f"item={first}", "score=3", f"item=deadbeef&score=3",
           f"item={first}&score=3&score=4", f"item={first}&score=3&x=" + "a" * 400]
    for body in bad:
        assert client.post(f"/r/{token}/answer", content=body).status_code == 400, body
    alice = study.tokens["alice"]
    client.post(f"/r/{alice}/calibrated")
    assert client.post(f"/r/{alice}/answer", content=f"item={other}&score=3").status_code == 400  # own image
    assert AnswerStore(study.db_path).all_answers() == []
    r = client.post(f"/r/{token}/answer", content=f"item={first}&score=2")
    assert r.status_code == 303 and r.headers["location"] == f"/r/{token}"
    assert _item_on(client.get(f"/r/{token}").text) == second
    client.post(f"/r/{token}/answer", content=f"item={first}&score=4")
    assert AnswerStore(study.db_path).all_answers() == [("ta", first, 4)]


def test_done_page_after_the_last_item(client, study):
    token = study.tokens["bob"]
    client.post(f"/r/{token}/calibrated")
    for item in study.meta["orders"]["bob"]:
        client.post(f"/r/{token}/answer", content=f"item={item}&score=5")
    page = client.get(f"/r/{token}").text
    assert 'id="done"' in page and f"all {len(study.meta['orders']['bob'])} images" in page


def test_hostile_answers_are_refused_with_a_reason_and_store_nothing(client, study):
    """Foreign items, a reused (replayed) link on another rater's item, malformed, oversized and many-at-once bodies:
    each gets a 4xx with a short reason (the rater's own link is valid, so saying why helps an honest one), and
    nothing reaches the answers."""
    from course.mos.store import AnswerStore

    token = study.tokens["ta"]
    client.post(f"/r/{token}/calibrated")
    mine = study.meta["orders"]["ta"][0]
    foreign = next(i for i in study.meta["items"] if i not in study.meta["orders"]["ta"])  # e.g. another's repeat
    many = "&".join(f"item={i}&score=3" for i in study.meta["orders"]["ta"][:20])
    hostile = {
        "item of no order": f"item={'0' * 16}&score=3",
        "item outside the rater's set": f"item={foreign}&score=3",
        "many answers at once": many,
        "many fields": f"item={mine}&score=3" + "&a=1" * 10,
        "not a form": '{"item": "%s", "score": 3}' % mine,
        "bad percent-encoding": f"item={mine}%ZZ&score=3",
        "binary": b"\xff\xfe\x00item=\x00",
        "oversized": f"item={mine}&score=3&pad=" + "x" * (1 << 20),
    }
    for what, body in hostile.items():
        r = client.post(f"/r/{token}/answer", content=body)
        assert r.status_code in (400, 413), (what, r.status_code)
        assert r.text.startswith("refused:"), (what, r.text[:80])
    # a link used for someone else's image: the token decides the rater, the item must be theirs
    alice_own = next(i for i, it in study.meta["items"].items() if it["version"] == "student:alice")
    client.post(f"/r/{study.tokens['alice']}/calibrated")
    assert client.post(f"/r/{study.tokens['alice']}/answer", content=f"item={alice_own}&score=5").status_code == 400
    assert AnswerStore(study.db_path).all_answers() == []
    # a replayed answer is idempotent: one row
    for _ in range(3):
        assert client.post(f"/r/{token}/answer", content=f"item={mine}&score=2").status_code == 303
    assert AnswerStore(study.db_path).all_answers() == [("ta", mine, 2)]
