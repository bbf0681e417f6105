"""course.mos.results and gradebook: the numbers equal the answers given; outputs; points into nbgrader; the CLI."""
from __future__ import annotations

import csv
import math
import subprocess
import sys

import numpy as np
import pytest

from mos_fixtures import REPO_ROOT, make_study, sample_ref, save, student_image  # noqa: F401 (fixture)


def _answer_all(study, rule):
    """Answer every rater's whole order with ``rule(rater, version, k)``; returns {(rater, item): score}."""
    from course.mos.store import AnswerStore

    store = AnswerStore(study.db_path)
    given = {}
    for rater, order in study.meta["orders"].items():
        for k, item in enumerate(order):
            score = rule(rater, study.meta["items"][item]["version"], k)
            store.answer(rater, item, score)
            given[(rater, item)] = score
    return given


def _rule(rater, version, k):
    if version == "control:hr":
        return 1 if rater == "<b>flip</b>" else 5
    if version == "control:nn":
        return 5 if rater == "<b>flip</b>" else 1
    return 2 + (k + len(rater)) % 3


def test_mos_equals_the_answers_and_inconsistent_raters_can_be_excluded(sample_ref, tmp_path):
    from course.mos.results import analyse, controls_in_order, write_results

    study = make_study(sample_ref, tmp_path / "s", raters=("instructor", "<b>flip</b>"), peer=True)
    given = _answer_all(study, _rule)
    screened = analyse(study)  # the screening flags the rater who reverses the scale and leaves them out
    assert screened["flagged"] == ["<b>flip</b>"] and screened["excluded"] == ["<b>flip</b>"]
    assert any(f.startswith("gold") for f in screened["screening"]["<b>flip</b>"]["flags"])
    a = analyse(study, keep=["<b>flip</b>"])  # put back: the raw means are the answers given
    assert a["excluded"] == [] and a["kept_back"] == ["<b>flip</b>"]
    for row in a["rows"]:
        scores = [s for (r, i), s in given.items() if study.meta["items"][i]["version"] == row["version"]
                  and "repeat_of" not in study.meta["items"][i]]  # repeats serve test-retest only
        assert row["n"] == len(scores) and row["mos"] == pytest.approx(np.mean(scores))
    assert a["n_ratings"] == sum("repeat_of" not in study.meta["items"][i] for _, i in given)
    assert a["consistency"]["<b>flip</b>"]["consistent"] is False
    assert a["consistency"]["instructor"]["consistent"] is True
    assert controls_in_order(a)  # three consistent raters outweigh one
    assert not controls_in_order(analyse(study, exclude=["instructor", "alice", "bob"], keep=["<b>flip</b>"]))
    kept = analyse(study, exclude=["<b>flip</b>"])
    mos = {r["version"]: r["mos"] for r in kept["rows"]}
    assert mos["control:hr"] == 5 and mos["control:nn"] == 1 and kept["n_ratings"] < a["n_ratings"]
    with pytest.raises(ValueError, match="names no rater"):
        analyse(study, exclude=["nobody"])
    paths = write_results(a, tmp_path / "out")
    rows = list(csv.DictReader(open(paths["csv"])))
    assert [r["version"] for r in rows] == [r["version"] for r in a["rows"]]
    assert all(r["split"].startswith("bundled sample photos") for r in rows)
    html = paths["html"].read_text()
    assert "&lt;b&gt;flip&lt;/b&gt;" in html and "<b>flip</b>" not in html
    assert "Krippendorff" in paths["md"].read_text() and "put back (--keep)" in paths["md"].read_text()
    md = write_results(screened, tmp_path / "out2")["md"].read_text()
    assert "left out (flagged)" in md and "gold: HR originals" in md and "--keep RATER" in md
    raters = {r["rater"]: r for r in csv.DictReader(open(tmp_path / "out2" / "raters.csv"))}
    assert raters["<b>flip</b>"]["status"] == "left out (flagged)" and "gold" in raters["<b>flip</b>"]["reasons"]
    assert raters["instructor"]["status"] == "kept" and raters["instructor"]["reasons"] == ""
    assert paths["png"].read_bytes()[:4] == b"\x89PNG"


def test_alpha_is_one_when_raters_agree_exactly(sample_ref, tmp_path):
    from course.mos.results import analyse

    study = make_study(sample_ref, tmp_path / "s", peer=False)
    _answer_all(study, lambda rater, version, k: {"control:hr": 5, "control:nn": 1}.get(version, 3 + (
        version == "student:alice")))
    assert analyse(study)["alpha"] == pytest.approx(1.0)


def test_points_between_the_controls():
    from course.mos.gradebook import points

    assert points(3.0, 1.0, 5.0, 4) == 2.0
    assert points(0.5, 1.0, 5.0, 4) == 0.0 and points(5.0, 1.2, 4.5, 4) == 4.0
    assert math.isnan(points(3.0, 4.0, 3.0, 4)) and math.isnan(points(math.nan, 1, 5, 4))


def _gradebook(path, students=("alice", "bob", "zoe")):
    """Assignment ``superres`` with a ``human_evaluation`` cell, ``other`` without one; both submitted."""
    from nbgrader.api import Gradebook

    url = f"sqlite:///{path}"
    with Gradebook(url) as gb:
        for s in students:
            gb.add_student(s)
        for assignment in ("superres", "other"):
            gb.add_assignment(assignment)
            gb.add_notebook("05_super_resolution", assignment)
            gb.add_grade_cell("test_set5_submission", "05_super_resolution", assignment, max_score=2,
                              cell_type="code")
            if assignment == "superres":
                # what the notebook change makes: a manually graded markdown task cell
                gb.add_task_cell("human_evaluation", "05_super_resolution", assignment, max_score=4,
                                 cell_type="markdown")
            for s in students:
                gb.add_submission(assignment, s)
    return url


def test_to_gradebook_writes_manual_scores_only_where_the_cell_exists(sample_ref, tmp_path, monkeypatch):
    from nbgrader.api import Gradebook

    from course.mos.gradebook import student_points, to_gradebook
    from course.paths import tool_env
    from course.mos.results import analyse

    monkeypatch.setenv("PATH", tool_env()["PATH"])  # (nbgrader runs `alembic` by name: the venv's bin/ first)
    study = make_study(sample_ref, tmp_path / "s", peer=False)
    _answer_all(study, _rule)
    a = analyse(study)
    expected = student_points(a, 4)
    url = _gradebook(tmp_path / "gb.db")
    out = to_gradebook(url, "superres", a, log=lambda *_: None)
    assert out["cell"] == ("05_super_resolution", 4) and set(out["written"]) == {"alice", "bob"}
    with Gradebook(url) as gb:
        for s in ("alice", "bob"):
            g = gb.find_grade("human_evaluation", "05_super_resolution", "superres", s)
            assert g.manual_score == expected[s][1] and g.score == expected[s][1] and not g.needs_manual_grade
        assert gb.find_grade("human_evaluation", "05_super_resolution", "superres", "zoe").manual_score is None
        gb.find_comment("human_evaluation", "05_super_resolution", "superres", "alice").manual_comment = "Nice."
        gb.db.commit()
    to_gradebook(url, "superres", a, log=lambda *_: None)  # again: the kit's block is replaced, not repeated
    rows = {r["version"]: r for r in a["rows"]}
    with Gradebook(url) as gb:
        for s in ("alice", "bob"):  # each student's feedback holds their own result and the controls, no other
            text = gb.find_comment("human_evaluation", "05_super_resolution", "superres", s).comment
            assert text.count("mean opinion score") == 1 and f"{expected[s][1]:.2f} / 4" in text
            assert f"{rows[f'student:{s}']['model_mos']:.2f}" in text
            assert f"{rows['control:hr']['model_mos']:.2f}" in text
            other = "bob" if s == "alice" else "alice"
            assert other not in text and f"{rows[f'student:{other}']['model_low']:.2f}–" not in text
        assert gb.find_comment("human_evaluation", "05_super_resolution", "superres", "alice").comment.startswith(
            "Nice.")
    messages = []
    assert to_gradebook(url, "other", a, log=messages.append) == {"written": {}, "skipped": {}, "cell": None}
    assert "05_super_resolution.ipynb" in messages[0]
    with Gradebook(url) as gb:
        assert [c.name for c in gb.find_notebook("05_super_resolution", "other").grade_cells] == \
            ["test_set5_submission"]
    assert to_gradebook(f"sqlite:///{tmp_path / 'absent.db'}", "superres", a, log=messages.append)["cell"] is None
    assert not (tmp_path / "absent.db").exists()


def _run(*args, cwd=REPO_ROOT):
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def _doc_commands() -> list[str]:
    import re

    text = (REPO_ROOT / "docs" / "mos.md").read_text()
    cmds = [re.sub(r"\s+#.*$", "", line).strip() for block in re.findall(r"```bash\n(.*?)```", text, re.S)
            for line in block.splitlines() if line.strip()]
    cmds += re.findall(r"`((?:make|python -m) [^`]+)`", text)
    return sorted(set(cmds))


def test_every_command_in_docs_mos_is_run():
    """Each `python -m ...` of docs/mos.md answers --help and knows every option the doc gives it; each `make`
    target exists. (`python -m pytest ...` is the command running this very test.)"""
    cmds = _doc_commands()
    assert len(cmds) >= 12, cmds
    for cmd in cmds:
        words = cmd.split()
        if words[0] == "make":
            out = subprocess.run(["make", "-n", *words[1:]], cwd=REPO_ROOT, capture_output=True, text=True)
            assert out.returncode == 0, (cmd, out.stderr)
            continue
        words = [w for w in words if "=" not in w or w.startswith("--")]  # MOS_UPDATE_DOCS=1 python -m ...
        assert words[:2] == ["python", "-m"], cmd
        if words[2] == "pytest":
            continue
        sub = [words[3]] if words[2] == "course.mos" else []
        out = _run(words[2], *sub, "--help")
        assert out.returncode == 0, (cmd, out.stderr)
        for option in (w.split("=")[0] for w in words if w.startswith("--")):
            assert option in out.stdout, (cmd, option)


def test_cli_collect_then_results(sample_ref, tmp_path, capsys):
    from course.mos.collect import bicubic

    for k, student in enumerate(["alice", "bob", "frank"]):  # frank hands in the bicubic upscale
        for name in sample_ref.names:
            img = bicubic(sample_ref.lr[name], 4) if student == "frank" else student_image(sample_ref, name, 3 + k)
            save(img, tmp_path / "class" / student / "superres" / "submission" / sample_ref.folder / f"{name}.png")
    from course.mos.__main__ import main

    data = str(sample_ref.list_file.parent.parent)
    study = tmp_path / "study"
    assert main(["collect", "superres", "--from", str(tmp_path / "class"), "--study", str(study), "--data-dir", data,
                 "--rater", "instructor", "--peer", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "left out frank" in out and "2 submissions collected" in out
    report = {r["student"]: r for r in csv.DictReader(open(study / "collection.csv"))}
    assert report["alice"]["status"] == "collected" and "bicubic" in report["frank"]["reason"]
    links = (study / "links.txt").read_text().splitlines()
    assert len(links) == 3 and all("http://127.0.0.1:8765/r/" in line for line in links)
    assert main(["collect", "--from", str(tmp_path / "class"), "--study", str(study), "--data-dir", data]) == 2
    assert "--force" in capsys.readouterr().err
    code = main(["results", "--study", str(study), "--to-gradebook", "--gradebook", f"sqlite:///{tmp_path / 'x.db'}"])
    assert code == 3  # no gradebook with a human_evaluation cell: said, and the CSV written
    assert "0 ratings" in capsys.readouterr().out and (study / "results" / "human_evaluation.csv").is_file()
    assert (study / "results" / "mos.html").is_file()
