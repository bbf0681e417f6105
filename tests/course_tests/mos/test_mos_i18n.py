"""The MOS study in Chinese: every sentence a rater or a student reads has its zh-CN translation, the Chinese pages
hold no English prose, the language is negotiated (``?lang=``, the study's, ``Accept-Language``), and the answers
stored do not depend on the language of the page."""
from __future__ import annotations

import ast
import re
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mos_fixtures import REPO_ROOT, make_study, sample_ref  # noqa: F401 (fixture)

MOS = REPO_ROOT / "course" / "mos"
CALLS = {"tr", "tr_html"}  # course.mos.i18n's: a literal English template, then language=
CJK = re.compile(r"[\u4e00-\u9fff]")
TAG = re.compile(r"</?[a-z]+[^>]*>")


def _catalogue() -> dict[str, str]:
    from course.mos.locales.zh_CN import MESSAGES

    return MESSAGES


def _calls() -> list[tuple[str, ast.Call]]:
    """Every ``tr(...)`` / ``tr_html(...)`` call in course/mos, with its file:line."""
    found = []
    for path in sorted(MOS.rglob("*.py")):
        if "locales" in path.parts or path == MOS / "i18n.py":  # the catalogues; the definitions of tr, tr_html
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call):
                name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
                if name in CALLS:
                    found.append((f"{path.relative_to(REPO_ROOT)}:{node.lineno}", node))
    return found


def _template(node: ast.Call) -> str | None:
    first = node.args[0] if node.args else None
    return first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else None


def test_every_message_of_the_mos_study_has_its_chinese_translation():
    """Read by AST: each call has a literal English template, ``language=`` and exactly its placeholders' values;
    its zh-CN entry exists, is Chinese, keeps the placeholders and the markup; and the catalogue holds nothing that
    no call uses."""
    from sr_utils.i18n import placeholders

    messages = _catalogue()
    calls = _calls()
    assert len(calls) >= 40, "the MOS pages' messages were not found"
    problems, used = [], set()
    for where, node in calls:
        template = _template(node)
        if template is None:
            problems.append(f"{where}: the first argument must be a literal English template")
            continue
        used.add(template)
        if not any(k.arg == "language" for k in node.keywords):
            problems.append(f"{where}: {template!r} has no language=")
        given = {k.arg for k in node.keywords if k.arg != "language"}
        if None not in given and given != placeholders(template):  # (**params: names not known statically)
            problems.append(f"{where}: {template!r} is given {sorted(given)}, its placeholders are "
                            f"{sorted(placeholders(template))}")
        zh = messages.get(template)
        if zh is None:
            problems.append(f"{where}: no zh-CN translation of {template!r} in course/mos/locales/zh_CN.py")
            continue
        if not CJK.search(zh):
            problems.append(f"{where}: the translation of {template!r} is not Chinese: {zh!r}")
        if placeholders(zh) != placeholders(template):
            problems.append(f"{where}: placeholders of {template!r} {sorted(placeholders(template))} != "
                            f"{sorted(placeholders(zh))} in the translation")
        if Counter(TAG.findall(zh)) != Counter(TAG.findall(template)):
            problems.append(f"{where}: the markup of {template!r} differs in its translation {zh!r}")
    problems += [f"course/mos/locales/zh_CN.py: {k!r} is used by no tr() call (stale)" for k in messages
                 if k not in used]
    for path in sorted(MOS.glob("*.py")):  # a tr() of course/mos must be the MOS catalogue's, not sr_utils'
        text = path.read_text()
        if re.search(r"\btr(_html)?\(", text) and path.name != "i18n.py":
            assert re.search(r"from course\.mos\.i18n import [^\n]*\btr", text), path
    assert not problems, "\n".join(problems)


class _Visible(HTMLParser):
    """The text a reader sees: text nodes (not style/script) and the attributes shown (alt, title)."""

    def __init__(self):
        super().__init__()
        self.text, self.lang, self._skip = [], None, 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "html":
            self.lang = attrs.get("lang")
        if tag in ("style", "script"):
            self._skip += 1
        self.text += [attrs[a] for a in ("alt", "title", "placeholder", "aria-label") if attrs.get(a)]

    def handle_endtag(self, tag):
        if tag in ("style", "script"):
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.text.append(data)


def _english_words(text: str, allowed=()) -> list[str]:
    """Latin words of two letters or more, ids (hex), numbers and the ``allowed`` code words aside."""
    words = re.findall(r"[A-Za-z][A-Za-z0-9_]+", text)
    return [w for w in words if w not in allowed and not re.fullmatch(r"[0-9a-f]{6,}", w)]


def _check_chinese_page(html: str) -> None:
    parser = _Visible()
    parser.feed(html)
    assert parser.lang == "zh-CN", html[:120]
    shown = " ".join(parser.text)
    assert CJK.search(shown), shown
    assert _english_words(shown) == [], shown


@pytest.fixture()
def study(sample_ref, tmp_path):
    return make_study(sample_ref, tmp_path / "study")


def _client(study, language=None):
    from starlette.testclient import TestClient

    from course.mos.app import make_app

    return TestClient(make_app(study, language), follow_redirects=False)


def _item_on(page: str) -> str:
    return re.search(r'name="item" value="([0-9a-f]+)"', page).group(1)


def test_every_page_a_rater_reads_is_chinese_in_zh_cn(study, sample_ref, tmp_path):
    """Calibration, rating, done (rating and pairwise modes) and every refusal: Chinese, ``<html lang="zh-CN">``,
    no English prose (ids, numbers and the form's own field names aside)."""
    from course.mos.pages import calibration_page, done_page, pair_page, rating_page
    from course.mos.study import freeze

    client = _client(study, "zh-CN")
    token = study.tokens["ta"]
    page = client.get(f"/r/{token}")
    assert page.headers["content-type"].startswith("text/html") and "charset=utf-8" in page.headers["content-type"]
    _check_chinese_page(page.text)
    assert "1 分的示例" in page.text and "（很差）" in page.text
    refused = client.post(f"/r/{token}/answer", content="item=x&score=3")  # before the calibration
    assert refused.status_code == 400 and refused.text.startswith("请求被拒绝：")
    client.post(f"/r/{token}/calibrated")
    page = client.get(f"/r/{token}").text
    _check_chinese_page(page)
    order = study.meta["orders"]["ta"]
    assert f"第 1 张，共 {len(order)} 张" in page and all(f">{k} " in page for k in range(1, 6))
    form = ("item", "score", "pair", "choice", "left", "right")
    for body in ("item=x&score=3", f"item={order[0]}&score=9", f"item={order[0]}", "\xff", "a=" + "x" * 300):
        r = client.post(f"/r/{token}/answer", content=body)
        assert r.status_code == 400 and r.text.startswith("请求被拒绝：") and "charset=utf-8" in r.headers["content-type"]
        assert _english_words(r.text, form) == [], r.text
    for item in order:
        client.post(f"/r/{token}/answer", content=f"item={item}&score=3")
    _check_chinese_page(client.get(f"/r/{token}").text)
    for html in (calibration_page("/r/t", [("a", "b")], True, "zh-CN"), pair_page("/r/t", "p", "l", "r", 0, 3, "zh-CN"),
                 done_page(3, "pairs", "zh-CN"), done_page(3, language="zh-CN"),
                 rating_page("/r/t", "abc123", 0, 3, "zh-CN")):
        _check_chinese_page(html)
    paired = freeze(tmp_path / "pairwise", sample_ref, {"alice": dict(sample_ref.hr)}, ["instructor"], seed=0,
                    mode="pairwise", pairs_per_rater=1, language="zh-CN")
    c, t = _client(paired), paired.tokens["instructor"]
    page = c.get(f"/r/{t}").text
    _check_chinese_page(page)
    assert "第 1 组，共 1 组" in page
    for body in ("pair=x&choice=up", "pair=x", "pair=x&choice=left"):
        r = c.post(f"/r/{t}/answer", content=body)
        assert r.status_code == 400 and _english_words(r.text, form) == [], r.text


def test_english_pages_are_unchanged(study):
    client = _client(study)
    page = client.get(f"/r/{study.tokens['ta']}").text
    assert '<html lang="en">' in page and "Before you start: the scale" in page and not CJK.search(page)


def test_negotiation_rules():
    from course.mos.i18n import from_accept_language, negotiate, normalise

    assert normalise("zh-CN") == normalise("zh") == normalise("ZH_cn") == normalise("zh-Hant-TW") == "zh-CN"
    assert normalise("en-GB") == "en" and normalise("fr") is None and normalise("") is None
    assert normalise("<script>") is None and normalise("zh" * 40) is None
    assert from_accept_language("zh-CN,zh;q=0.9,en;q=0.8") == "zh-CN"
    assert from_accept_language("en-US,en;q=0.9,zh-CN;q=0.8") == "en"
    assert from_accept_language("fr-FR, de;q=0.9, zh-TW;q=0.5") == "zh-CN"
    assert from_accept_language("en;q=0.2, zh;q=0.7") == "zh-CN"
    assert from_accept_language("zh;q=0, en;q=0.1") == "en"  # q=0: not acceptable
    assert from_accept_language("*, fr") is None
    for hostile in ("zh;q=abc", "zh;q=2", ";;;,,,", "zh;level=1", "\x00zh\xff", "x" * 100_000, None):
        assert from_accept_language(hostile) is None, hostile
    assert from_accept_language("fr," * 1000 + "zh") is None  # only the start of a huge header is read
    assert negotiate("en", "zh-CN", "zh") == "en"            # the URL first
    assert negotiate(None, "zh-CN", "en") == "zh-CN"         # then the study
    assert negotiate("nonsense", None, "zh-CN") == "zh-CN"   # then the browser
    assert negotiate(None, None, None) == "en"


def test_the_app_negotiates_and_keeps_a_raters_choice(study, sample_ref, tmp_path):
    from course.mos.store import AnswerStore
    from course.mos.study import freeze, load_study

    def lang(r) -> str:
        return re.search(r'<html lang="([^"]+)"', r.text).group(1)

    client = _client(study)  # no language in the study: the browser decides
    token = study.tokens["ta"]
    url = f"/r/{token}"
    assert lang(client.get(url)) == "en"
    assert lang(client.get(url, headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})) == "zh-CN"
    assert lang(client.get(url, headers={"Accept-Language": "zh-TW"})) == "zh-CN"
    assert lang(client.get(url, headers={"Accept-Language": "en-US,en;q=0.9,zh;q=0.8"})) == "en"
    assert lang(client.get(url + "?lang=en", headers={"Accept-Language": "zh-CN"})) == "en"
    r = client.get(url + "?lang=zh-CN")
    assert lang(r) == "zh-CN" and f'action="{url}/calibrated?lang=zh-CN"' in r.text
    assert r.headers["vary"] == "Accept-Language" and r.headers["content-security-policy"].startswith("default-src")
    for hostile in ('"><script>alert(1)</script>', "zh-CN\r\nSet-Cookie: x=1", "x" * 5000):
        r = client.get(url, params={"lang": hostile})
        assert r.status_code == 200 and lang(r) == "en" and "alert(1)" not in r.text and "Set-Cookie" not in r.text
    r = client.post(f"{url}/calibrated?lang=zh-CN")
    assert r.status_code == 303 and r.headers["location"] == f"{url}?lang=zh-CN"
    page = client.get(r.headers["location"]).text
    assert f'action="{url}/answer?lang=zh-CN"' in page
    item = _item_on(page)
    r = client.post(f"{url}/answer?lang=zh-CN", content=f"item={item}&score=4")
    assert r.status_code == 303 and r.headers["location"] == f"{url}?lang=zh-CN"
    assert AnswerStore(study.db_path).all_answers() == [("ta", item, 4)]
    # the study's language, stored with it; a link's ?lang= still wins; serve --language wins over the study
    zh = freeze(tmp_path / "zh", sample_ref, {"alice": dict(sample_ref.hr)}, ["instructor"], seed=0, language="zh-CN")
    assert load_study(zh.folder).meta["language"] == "zh-CN"
    t = zh.tokens["instructor"]
    c = _client(load_study(zh.folder))
    assert lang(c.get(f"/r/{t}", headers={"Accept-Language": "en"})) == "zh-CN"
    assert lang(c.get(f"/r/{t}?lang=en")) == "en"
    assert lang(_client(zh, "en").get(f"/r/{t}")) == "en"
    with pytest.raises(ValueError, match="zh-CN"):
        freeze(tmp_path / "fr", sample_ref, {"alice": dict(sample_ref.hr)}, ["instructor"], seed=0, language="fr")


def test_answers_are_stored_the_same_in_either_language(study):
    """Two raters answer their sets, one in Chinese, one in English (switching languages half-way): the same order
    is shown, each answer is stored exactly as given, and every refusal is the same in both languages."""
    from course.mos.store import AnswerStore

    client = _client(study)
    given = {}
    ways = {"instructor": lambda k: {"headers": {"Accept-Language": "zh-CN"}},
            "ta": lambda k: {"params": {"lang": "en" if k % 2 else "zh-CN"}}}
    for rater, way in ways.items():
        token, order = study.tokens[rater], study.meta["orders"][rater]
        client.post(f"/r/{token}/calibrated", **way(0))
        for k, expected in enumerate(order):
            page = client.get(f"/r/{token}", **way(k)).text
            assert _item_on(page) == expected
            given[(rater, expected)] = 1 + (k * 7 + len(rater)) % 5
            r = client.post(f"/r/{token}/answer", content=f"item={expected}&score={given[(rater, expected)]}",
                            **way(k))
            assert r.status_code == 303
        assert 'id="done"' in client.get(f"/r/{token}", **way(1)).text
    assert sorted(AnswerStore(study.db_path).all_answers()) == sorted((r, i, s) for (r, i), s in given.items())
    token, first = study.tokens["ta"], study.meta["orders"]["ta"][0]
    for body in (f"item={first}&score=0", f"item={first}", "item=deadbeef&score=3", "x" * 400):
        codes = {lang: client.post(f"/r/{token}/answer", content=body, params={"lang": lang}).status_code
                 for lang in ("en", "zh-CN")}
        assert codes == {"en": 400, "zh-CN": 400}, body
    assert sorted(AnswerStore(study.db_path).all_answers()) == sorted((r, i, s) for (r, i), s in given.items())


def test_each_students_result_in_chinese(study):
    """The feedback text in zh-CN: the same numbers as in English, glossary terms, no English prose."""
    from course.mos.feedback import student_text
    from course.mos.store import AnswerStore

    store = AnswerStore(study.db_path)
    for rater, order in study.meta["orders"].items():
        for item in order:
            version = study.meta["items"][item]["version"]
            for_version = {"control:hr": 5, "control:nn": 1, "gold:degraded": 1}
            store.answer(rater, item, for_version.get(version, 2 + (len(item) + order.index(item) + len(rater)) % 3))
    from course.mos.results import analyse

    a = analyse(study)
    en, zh = student_text(a, "alice", 4), student_text(a, "alice", 4, "zh-CN")
    assert "mean opinion score" in en, en
    assert "平均意见得分（MOS）" in zh and "人工评价" in zh and "评分者" in zh
    assert re.findall(r"\d+\.\d\d", en) == re.findall(r"\d+\.\d\d", zh)
    assert _english_words(zh, ("MOS", "HR", "bootstrap")) == [], zh
    with pytest.raises(ValueError, match="zh-CN"):
        student_text(a, "alice", 4, "fr")
