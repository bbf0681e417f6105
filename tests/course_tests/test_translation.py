"""Translated notebooks from one source (course/notebook_translation.py): the catalogue format, what makes a
translation stale or a different program, and the course's own zh-CN catalogues, complete and current."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from course.notebook_translation import (Entry, TranslationError, catalogue_path, catalogue_problems,
                                         code_difference, english_prose, fingerprint, has_prose, read_catalogue,
                                         translate_notebook, write_catalogue)

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted(p.stem for p in (REPO / "source" / "superres").glob("*.ipynb"))


def _nb(*cells):
    return {"cells": [dict(c) for c in cells], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def _md(cell_id, text):
    return {"cell_type": "markdown", "id": cell_id, "metadata": {}, "source": text}


def _code(cell_id, text):
    return {"cell_type": "code", "id": cell_id, "metadata": {}, "source": text, "outputs": [],
            "execution_count": None}


TEST_CELL = ('x = f(3)\nassert x == 9, f"f(3) should be 9, got {x}"  # squares\nprint("visible tests passed")\n'
             "### BEGIN HIDDEN TESTS\nassert f(4) == 16\n### END HIDDEN TESTS")
TEST_CELL_ZH = ('x = f(3)\nassert x == 9, f"f(3) 应为 9，实际得到 {x}"  # 平方\nprint("公开测试通过")\n'
                "### BEGIN HIDDEN TESTS\nassert f(4) == 16\n### END HIDDEN TESTS")


def test_a_catalogue_round_trips_through_its_file(tmp_path):
    entries = {"a": Entry("## 标题\n\n正文 `code`", fingerprint("## Title\n\nText `code`")),
               "b": Entry(TEST_CELL_ZH, fingerprint(TEST_CELL))}
    path = tmp_path / "zh-CN" / "nb.md"
    write_catalogue(path, entries, "<!-- preamble: ignored -->")
    back = read_catalogue(path)
    assert {k: (e.source, e.fingerprint) for k, e in back.items()} == \
           {k: (e.source, e.fingerprint) for k, e in entries.items()}
    assert back["a"].line == 3 and back["b"].line > back["a"].line


def test_a_cell_translated_twice_or_a_bad_header_is_refused_with_its_line(tmp_path):
    path = tmp_path / "nb.md"
    path.write_text("<!-- cell a en 0123456789ab -->\n一\n<!-- cell a en 0123456789ab -->\n二\n", encoding="utf-8")
    with pytest.raises(TranslationError, match=r"nb.md:3: cell a is translated twice \(first at line 1\)"):
        read_catalogue(path)
    path.write_text("<!-- cell a en nothex -->\n一\n", encoding="utf-8")
    with pytest.raises(TranslationError, match=r"nb.md:1: malformed header"):
        read_catalogue(path)


def test_translated_code_must_be_the_same_program():
    assert code_difference(TEST_CELL, TEST_CELL_ZH) is None
    # fields of a translated f-string may move, never change
    assert code_difference('print(f"got {a}, expected {b}")', 'print(f"期望 {b}，得到 {a}")') is None
    assert code_difference('print(f"got {a}")', 'print(f"得到 {a + 1}")') is not None
    assert code_difference("x = f(3)", "x = f(4)  # 改了数") is not None          # a value changed
    # any string turned into Chinese counts as text (a translated key would pass here; the round trips catch it)
    assert code_difference('k = d["content"]', 'k = d["内容"]') is None
    assert code_difference('k = d["content"]', 'k = d["contents"]') is not None  # an English value changed
    assert code_difference('use_language("en")', 'use_language("zh-CN")') is None  # the one allowed tag change
    assert "markers" in code_difference(TEST_CELL, TEST_CELL_ZH.replace("### END HIDDEN TESTS", ""))
    assert "IPython" in code_difference("%%writefile m.py\nx = 1", "%%writefile n.py\nx = 1")
    assert "not valid Python" in code_difference("x = 1", "x = = 1")
    assert code_difference('"""Doc of f."""\ndef f(x):\n    return x * x',
                           '"""f 的说明。"""\ndef f(x):\n    return x * x') is None


def test_problems_name_the_cell_missing_stale_changed_or_left_in_english():
    src = _nb(_md("m1", "## Title\n\nSquares with `f`."), _code("c1", TEST_CELL), _code("c2", "y = 1"))
    good = {"m1": Entry("## 标题\n\n用 `f` 求平方。", fingerprint(src["cells"][0]["source"])),
            "c1": Entry(TEST_CELL_ZH, fingerprint(TEST_CELL))}
    assert catalogue_problems(src, good, "cat.md") == []  # c2 has no prose: it needs no entry

    missing = catalogue_problems(src, {"m1": good["m1"]}, "cat.md")
    assert missing == ["cat.md: cell c1 (#1, 'x = f(3)') has no translation"]

    src["cells"][0]["source"] = "## Title\n\nSquares with `f`, now changed."
    stale = catalogue_problems(src, good, "cat.md")
    assert len(stale) == 1 and "cell m1" in stale[0] and "changed in English" in stale[0] \
        and fingerprint(src["cells"][0]["source"]) in stale[0]

    src["cells"][0]["source"] = "## Title\n\nSquares with `f`."
    bad = dict(good, c1=Entry(TEST_CELL_ZH.replace("f(3)\n", "f(2)\n"), fingerprint(TEST_CELL)),
               m1=Entry("## 标题\n\n求平方。 Still some English words here.", good["m1"].fingerprint),
               gone=Entry("旧的", "0" * 12, line=40))
    lines = "\n".join(catalogue_problems(src, bad, "cat.md"))
    assert "cell c1" in lines and "not the same code" in lines
    assert "drops the inline code f" in lines and "English left in the translation" in lines
    assert "cat.md:40: cell gone is not in the English notebook" in lines


def test_translate_notebook_replaces_sources_tags_the_language_and_refuses_stale_entries():
    src = _nb(_md("m1", "Text here."), _code("c1", TEST_CELL))
    entries = {"c1": Entry(TEST_CELL_ZH, fingerprint(TEST_CELL)), "m1": Entry("正文。", fingerprint("Text here."))}
    out = translate_notebook(src, entries, "zh-CN")
    assert [c["source"] for c in out["cells"]] == ["正文。", TEST_CELL_ZH]
    assert out["metadata"]["sr_kit"]["language"] == "zh-CN"
    assert src["cells"][1]["source"] == TEST_CELL  # the source notebook is not touched
    with pytest.raises(TranslationError, match="cell m1: its translation is stale"):
        translate_notebook(src, dict(entries, m1=Entry("正文。", fingerprint("Old text."))), "zh-CN")


def test_english_prose_finds_runs_of_english_words_only():
    assert english_prose(["用 `nn.Conv2d` 搭建卷积层，PSNR 约 28.4 dB"]) == []
    assert english_prose(["参见《Photo-Realistic Single Image Super-Resolution》"]) == []
    assert english_prose(["这一句 still has English words"]) == ["still has English words"]
    # in code: two words are prose, a string compared with a library's message is a value
    assert has_prose(_code("c", 'assert ok, "use detach"')) and not has_prose(_code("c", "x = f(1)  # noqa"))
    assert not has_prose(_code("c", 'if "backward through the graph" in str(e):\n    raise'))


def test_the_courses_catalogues_translate_every_cell_of_every_notebook():
    """The zh-CN release is complete and current: every cell that needs a translation has one, made from the
    English as it is now, and every translated code cell is the same program."""
    problems = []
    for name in NOTEBOOKS:
        cat = catalogue_path(REPO, "zh-CN", "superres", name)
        assert cat.exists(), f"{cat.relative_to(REPO)} is missing: python -m course.notebook_translation add-missing"
        nb = json.loads((REPO / "source" / "superres" / f"{name}.ipynb").read_text(encoding="utf-8"))
        problems += catalogue_problems(nb, read_catalogue(cat), str(cat.relative_to(REPO)))
    assert not problems, "\n".join(problems)
    out = subprocess.run([sys.executable, "-m", "course.notebook_translation", "check"], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "0 problem(s) in the zh-CN translation of superres" in out.stdout, out.stdout


def test_add_missing_gives_a_new_cell_an_entry_at_its_place_and_check_lists_it(tmp_path):
    """The documented way to translate a new cell: `add-missing` writes its English text at its place in the
    catalogue; `check` lists it (English left) until it is translated."""
    root = tmp_path / "course"
    (root / "source" / "a").mkdir(parents=True)
    (root / "nbgrader_config.py").write_text("")  # marks the course root for find_project_root
    nb = _nb(_md("m1", "## Title\n\nFirst words here."), _md("m2", "Second part of the text."))
    (root / "source" / "a" / "nb.ipynb").write_text(json.dumps(nb))
    cat = catalogue_path(root, "zh-CN", "a", "nb")
    write_catalogue(cat, {"m1": Entry("## 标题\n\n第一段。", fingerprint(nb["cells"][0]["source"]))})
    nb["cells"].insert(1, _md("new", "A new cell in the middle."))
    (root / "source" / "a" / "nb.ipynb").write_text(json.dumps(nb))
    run = lambda *args: subprocess.run([sys.executable, "-m", "course.notebook_translation", *args, "a"],  # noqa
                                       cwd=root, capture_output=True, text=True, timeout=120,
                                       env={**__import__("os").environ, "PYTHONPATH": str(REPO)})
    out = run("add-missing")
    assert "added 2 cell(s) to translate: new, m2" in out.stdout, out.stdout + out.stderr
    assert list(read_catalogue(cat)) == ["m1", "new", "m2"]
    assert read_catalogue(cat)["m1"].source == "## 标题\n\n第一段。"  # translated entries are kept
    out = run("check")
    assert out.returncode == 1 and "cell new (#1, 'A new cell in the middle.')" in out.stdout \
        and "English left" in out.stdout, out.stdout
