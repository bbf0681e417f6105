"""The rating app as raters use it: headless Chromium (the distribution's package) driven by Selenium.

Two raters at once, calibration, answers with the keyboard, a server restart in the middle with no answer lost, forged
and missing links refused, and results equal to the scores entered. Screenshots of the rating page and the results page
are taken (copied to docs/img/ when ``MOS_UPDATE_DOCS=1``). Traffic goes to 127.0.0.1 only.
"""
from __future__ import annotations

import math
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from course_fixtures import find_chromium, free_port, headless_chromium

from mos_fixtures import REPO_ROOT, make_study, sample_ref  # noqa: F401 (fixture)

DOCS_IMG = REPO_ROOT / "docs" / "img"


class Server:
    """``python -m course.mos serve`` in a subprocess, as the instructor starts it."""

    def __init__(self, study_dir: Path, port: int, log: Path):
        self.cmd = [sys.executable, "-m", "course.mos", "serve", "--study", str(study_dir), "--port", str(port)]
        self.port, self.log, self.proc = port, log, None

    def start(self, timeout: float = 60) -> None:
        self.proc = subprocess.Popen(self.cmd, cwd=REPO_ROOT, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited: {self.log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise TimeoutError(f"the server did not listen within {timeout} s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def _browser(binary: str, driver: str, languages: str | None = None):
    """Headless Chromium, 1100×720; ``languages``: its Accept-Language (e.g. ``"zh-CN,zh"``)."""
    return headless_chromium(binary, driver, languages=languages, size="1100,720", offline=False, page_load_timeout=30)


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _item(b) -> str | None:
    """The item the page shows, read in one script (an element found first may leave the document before it is read
    while the next page loads: chromedriver then fails the read)."""
    return b.execute_script("const e = document.querySelector('input[name=item]'); return e ? e.value : null")


def _wait_for_item(b) -> None:
    """Wait (bounded) until the page shows an item (reads fail while the page loads: read again)."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(b, 15, ignored_exceptions=(WebDriverException,)).until(lambda d: _item(d) is not None)


def _press(b, key: str, before: str) -> None:
    """Press ``key`` on the page and wait (bounded) for the next page."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import WebDriverWait

    ActionChains(b).send_keys(key).perform()
    # (while the next page loads, a read may fail: the wait reads again)
    WebDriverWait(b, 15, ignored_exceptions=(WebDriverException,)).until(
        lambda d: _item(d) != before or d.find_elements("id", "done"))


def _shot(b, dest: Path) -> Path:
    """A small PNG screenshot (800 px wide, 128 colours)."""
    from PIL import Image

    raw = dest.with_suffix(".raw.png")
    b.save_screenshot(str(raw))
    with Image.open(raw) as im:
        im = im.convert("RGB")
        im = im.resize((800, round(im.height * 800 / im.width)), Image.LANCZOS)
        im.quantize(colors=128).save(dest, optimize=True)
    raw.unlink()
    return dest


BASE = {"control:hr": 5, "control:nn": 1, "control:bicubic": 2, "student:alice": 4, "student:bob": 3,
        "gold:degraded": 1}


def _score(rater: str, version: str, step: int) -> int:
    """A plausible rater: the controls in order, students between them, a little disagreement."""
    return int(np.clip(BASE[version] + ((step + len(rater)) % 3 - 1) * (step % 2), 1, 5))


@pytest.mark.slow
def test_two_raters_keyboard_restart_and_results(sample_ref, tmp_path):
    binary, driver = find_chromium()
    from selenium.webdriver.common.by import By

    from course.mos.results import analyse, write_results
    from course.mos.store import AnswerStore
    from course.mos.study import load_study

    study = make_study(sample_ref, tmp_path / "study", raters=("instructor", "ta"), peer=False)
    orders = study.meta["orders"]
    total = len(orders["instructor"])
    port = free_port()
    server = Server(study.folder, port, tmp_path / "server.log")
    base = f"http://127.0.0.1:{port}"
    links = {r: f"{base}/r/{t}" for r, t in study.tokens.items()}
    browsers = {}
    given: dict[tuple[str, str], int] = {}
    try:
        server.start()
        # a missing, forged or truncated link gets a 404 and nothing else
        for url in (f"{base}/", f"{base}/r/", f"{base}/r/{'A' * 32}", links["ta"][:-1],
                    f"{base}/r/forged/img/{orders['ta'][0]}", f"{base}/r/forged/app.js"):
            assert _get(url) == (404, b""), url
        browsers = {r: _browser(binary, driver) for r in ("instructor", "ta")}
        forged = browsers["ta"]
        forged.get(f"{base}/r/{study.tokens['ta'][::-1]}")
        text = forged.find_element(By.TAG_NAME, "body").text  # Chromium's own error page: the server sent nothing
        assert "HTTP ERROR 404" in text and "Calibration" not in text
        assert not forged.find_elements(By.ID, "photo") and not forged.find_elements(By.ID, "start")
        # calibration first, for both raters at once
        for rater, b in browsers.items():
            b.get(links[rater])
            assert b.find_element(By.TAG_NAME, "h1").text.startswith("Before you start")
            assert len(b.find_elements(By.CSS_SELECTOR, ".pairs img")) == 2
            assert [f.text for f in b.find_elements(By.TAG_NAME, "figcaption")] == ["score 1 (bad)",
                                                                                   "score 5 (excellent)"]
        for rater, b in browsers.items():
            b.find_element(By.ID, "start").click()
            _wait_for_item(b)
            assert _item(b) == orders[rater][0]
        # interleaved keyboard answers: 9 each, then the server is restarted
        first_half = 9
        for step in range(first_half):
            for rater, b in browsers.items():
                item = _item(b)
                assert item == orders[rater][step]
                assert b.find_element(By.ID, "count").text == f"Image {step + 1} of {total}"
                assert b.find_element(By.ID, "progress").get_attribute("value") == str(step)
                if step == 3 and rater == "instructor":
                    _shot(b, tmp_path / "mos-rating.png")
                given[(rater, item)] = _score(rater, study.meta["items"][item]["version"], step)
                _press(b, str(given[(rater, item)]), item)
        server.stop()
        assert sorted(AnswerStore(study.db_path).all_answers()) == sorted((r, i, s) for (r, i), s in given.items())
        server.start()
        for rater, b in browsers.items():  # resume where they left off
            b.get(links[rater])
            assert _item(b) == orders[rater][first_half]
            assert b.find_element(By.ID, "count").text == f"Image {first_half + 1} of {total}"
        for step in range(first_half, total):
            for rater, b in browsers.items():
                item = _item(b)
                given[(rater, item)] = _score(rater, study.meta["items"][item]["version"], step)
                _press(b, str(given[(rater, item)]), item)
        for b in browsers.values():
            assert b.find_element(By.ID, "done").text == "Thank you"
        # the results are the scores entered
        assert len(given) == 2 * total
        a = analyse(load_study(study.folder))
        items = study.meta["items"]
        for row in a["rows"]:
            scores = [s for (r, i), s in given.items() if items[i]["version"] == row["version"]
                      and "repeat_of" not in items[i]]
            assert row["n"] == len(scores) and row["mos"] == pytest.approx(np.mean(scores))
        # the hidden gold and repeated items went through the browser like any other and feed the screening
        for rater in ("instructor", "ta"):
            repeats = [i for i in orders[rater] if "repeat_of" in items[i]]
            assert len(repeats) == 3 and all((rater, i) in given for i in repeats)
            assert any(items[i]["version"] == "gold:degraded" for i in orders[rater])
            st = a["screening"][rater]
            assert st["flags"] == [] and not math.isnan(st["retest"]) and not math.isnan(st["gold_error"])
        paths = write_results(a, tmp_path / "results")
        viewer = browsers["instructor"]
        viewer.set_window_size(1000, 900)
        viewer.get(paths["html"].as_uri())
        shown = {tr.find_elements(By.TAG_NAME, "td")[0].text: tr.find_elements(By.TAG_NAME, "td")[1].text
                 for tr in viewer.find_elements(By.CSS_SELECTOR, "#mos tr")[1:]}
        assert shown == {r["version"]: f"{r['model_mos']:.2f}" for r in a["rows"]}
        _shot(viewer, tmp_path / "mos-results.png")
    finally:
        for b in browsers.values():
            b.quit()
        server.stop()
    for name in ("mos-rating.png", "mos-results.png"):
        assert (tmp_path / name).stat().st_size < 200_000
        if os.environ.get("MOS_UPDATE_DOCS") == "1":
            DOCS_IMG.mkdir(parents=True, exist_ok=True)
            shutil.copy(tmp_path / name, DOCS_IMG / name)


def _pair(b) -> str | None:
    from selenium.webdriver.common.by import By

    found = b.find_elements(By.CSS_SELECTOR, "input[name=pair]")
    return found[0].get_attribute("value") if found else None


@pytest.mark.slow
def test_pairwise_keys_restart_and_nothing_lost(sample_ref, tmp_path):
    """Pairwise mode in Chromium: ← / → pick a side, a reload and a server restart show the same pending pair, and
    every comparison made is stored exactly once."""
    binary, driver = find_chromium()
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    from course.mos.store import AnswerStore
    from course.mos.study import calibration_pairs, freeze
    from mos_fixtures import student_image

    accepted = {s: {n: student_image(sample_ref, n, 5 + 7 * k) for n in sample_ref.names}
                for k, s in enumerate(("alice", "bob"))}
    study = freeze(tmp_path / "study", sample_ref, accepted, ["instructor"], peer=False,
                   calibration=calibration_pairs(sample_ref.list_file.parent.parent, n=1, size=64), seed=0,
                   mode="pairwise", pairs_per_rater=6)
    items = study.meta["items"]
    port = free_port()
    server = Server(study.folder, port, tmp_path / "server.log")
    link = f"http://127.0.0.1:{port}/r/{study.tokens['instructor']}"
    b = None
    chosen = {}  # pair id -> (left, right, side)
    try:
        server.start()
        b = _browser(binary, driver)
        b.get(link)
        b.find_element(By.ID, "start").click()
        WebDriverWait(b, 15).until(lambda d: _pair(d) is not None)
        for step in range(6):
            if step == 3:  # restart the server mid-study: the same pair comes back
                before = _pair(b)
                server.stop()
                assert len(AnswerStore(study.db_path).all_comparisons()) == 3
                server.start()
                b.get(link)
                assert _pair(b) == before
            pair = _pair(b)
            assert b.find_element(By.ID, "count").text == f"Pair {step + 1} of 6"
            left = b.find_element(By.ID, "left").get_attribute("src").rsplit("/", 1)[1]
            right = b.find_element(By.ID, "right").get_attribute("src").rsplit("/", 1)[1]
            assert items[left]["image"] == items[right]["image"] and left != right
            side = "left" if step % 2 else "right"
            chosen[pair] = (left, right, side)
            ActionChains(b).send_keys(Keys.ARROW_LEFT if side == "left" else Keys.ARROW_RIGHT).perform()
            WebDriverWait(b, 15, ignored_exceptions=(StaleElementReferenceException,)).until(
                lambda d: _pair(d) != pair or d.find_elements(By.ID, "done"))
        assert b.find_element(By.ID, "done").text == "Thank you"
    finally:
        if b is not None:
            b.quit()
        server.stop()
    stored = AnswerStore(study.db_path).all_comparisons()
    expected = sorted(("instructor", l, r, l if s == "left" else r) for l, r, s in chosen.values())
    assert sorted(stored) == expected


@pytest.mark.slow
def test_chinese_rating_page_in_chromium(sample_ref, tmp_path):
    """A browser set to Chinese gets the Chinese pages (its Accept-Language; the study sets no language):
    ``<html lang="zh-CN">``, the scale's Chinese words, the progress in Chinese; keys answer as in English and the
    answers are stored as given; ``?lang=en`` on the link switches back to English."""
    binary, driver = find_chromium()
    from selenium.webdriver.common.by import By

    from course.mos.store import AnswerStore

    study = make_study(sample_ref, tmp_path / "study", raters=("instructor",), peer=False)
    order = study.meta["orders"]["instructor"]
    port = free_port()
    server = Server(study.folder, port, tmp_path / "server.log")
    link = f"http://127.0.0.1:{port}/r/{study.tokens['instructor']}"
    b = None
    try:
        server.start()
        b = _browser(binary, driver, "zh-CN,zh")
        b.get(link)
        assert b.execute_script("return document.documentElement.lang") == "zh-CN"
        assert b.title == "评分校准" and b.find_element(By.TAG_NAME, "h1").text == "开始之前：了解评分标准"
        assert [f.text for f in b.find_elements(By.TAG_NAME, "figcaption")] == ["1 分（很差）", "5 分（优秀）"]
        b.find_element(By.ID, "start").click()
        _wait_for_item(b)
        assert b.find_element(By.ID, "count").text == f"第 1 张，共 {len(order)} 张"
        labels = [x.text for x in b.find_elements(By.CSS_SELECTOR, "form.scores button")]
        assert labels == ["1 很差", "2 较差", "3 一般", "4 良好", "5 优秀"]
        for step, key in enumerate("425"):
            assert _item(b) == order[step]
            _press(b, key, order[step])
        assert b.find_element(By.ID, "count").text == f"第 4 张，共 {len(order)} 张"
        assert sorted(AnswerStore(study.db_path).all_answers()) == sorted(
            ("instructor", order[k], int(s)) for k, s in enumerate("425"))
        b.get(link + "?lang=en")
        assert b.execute_script("return document.documentElement.lang") == "en"
        assert b.find_element(By.ID, "count").text == f"Image 4 of {len(order)}"
        _press(b, "3", order[3])  # the form keeps ?lang=en: the next page is English too
        assert b.current_url.endswith("?lang=en") and b.find_element(By.ID, "count").text.startswith("Image 5 of")
    finally:
        if b is not None:
            b.quit()
        server.stop()
    assert ("instructor", order[3], 3) in AnswerStore(study.db_path).all_answers()
