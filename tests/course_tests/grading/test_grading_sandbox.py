"""The sandboxed grading command against a class with hostile and broken submissions.

The class is graded once (``class_batch``, tests/class_batch.py: ``python -m course.grade`` with 3 workers in a
private course copy): two copies of the reference solution (English and zh-CN), a partly solved submission, the
untouched releases, the mistakes of ``submissions/mistakes.toml`` and the attacks of ``submissions/attacks.toml``,
each built on the unsolved student release (so that any point it gets is a point it stole). Afterwards: every
attack scored 0, nothing outside its own folder changed, nothing secret shows up anywhere it could have been
printed, no connection reached the test's server, no sandboxed process is left, the other students' grades equal
those they get when graded alone, the per-test breakdown agrees with the gradebook, and the feedback shows no
hidden test. The sandbox on its own, intake and small grading runs are tested in ``test_sandbox_and_intake``.
"""
from __future__ import annotations

import html
import json
import os
import re
from pathlib import Path

import pytest

from class_batch import (CORRECT, FOLDER_BYTES, HOST_TMP_MARK, INTAKE_ATTACKS, UNTOUCHED, WORKERS, ZH_STUDENT,
                         attack_names, load_attacks)
from class_batch import scores as _gradebook_scores
from class_batch import read_notebook as _nb
from course.grading.contract import FORKED_MARK, WARMED_MARK, ZYGOTE_MARK
from course.jupyter.handin import EXCHANGE_FILES
from course.paths import tool
from course_fixtures import cell_source as _src

REPO = Path(__file__).resolve().parents[3]
NBGRADER = tool("nbgrader")

pytestmark = pytest.mark.skipif(not NBGRADER.exists(), reason="nbgrader is not installed (pip install -e '.[test]')")


@pytest.fixture
def batch(class_batch):
    return class_batch


def _scores(course: Path, student: str) -> dict[tuple, float]:
    return _gradebook_scores(course, student)


# what the attack "scripts" plants in outputs and its markdown answer: none may be live in a page
LIVE_MARKERS = ["XSS_SCRIPT", "XSS_ONERROR", "XSS_HREF", "XSS_JSOUT", "XSS_SVG", "XSS_MIME", "XSS_MD_SCRIPT",
                "XSS_MD_ONERROR", "XSS_MD_LINK", "XSS_MD_SVG", "XSS_MD_MATH", "XSS_MD_REF"]


def _graded_students(batch) -> set[str]:
    """Everyone the batch graded (the intake refused the others)."""
    return {*CORRECT, "partial", *UNTOUCHED, *batch["attacks"], *batch["mistakes"]}


def _total(course: Path, student: str) -> float:
    return sum(v or 0 for v in _scores(course, student).values())


def test_the_suite_is_large_enough(batch):
    assert len(batch["attacks"]) >= 15


def test_correct_submissions_get_full_marks_and_partial_gets_part(batch):
    course = batch["course"]
    rows = [r for r in _read_breakdown(course) if r["auto_graded"] == "True"]
    full = sum(float(r["max_score"]) for r in rows if r["student"] == "ref_a")
    for name in CORRECT:
        assert _total(course, name) == full == 36, f"{name}: {_total(course, name)} / {full}"
    assert 0 < _total(course, "partial") < full


@pytest.mark.parametrize("attack", sorted(attack_names()))
def test_each_attack_gains_no_points(batch, attack):
    assert _total(batch["course"], attack) == 0, _read_reasons(batch["course"], attack)


def test_no_output_of_the_kernel_scores_and_kernels_that_disagree_are_listed(batch):
    """Results shown before a test's error, numbers displayed, errors swallowed by the kernel,
    execute_results forged through its iopub socket, in every notebook: no point, each test cell decided by the
    trusted side (starting with its error, no execute_result left), each such submission listed for attention; the
    reference is not."""
    course, summary = batch["course"], batch["result"]["summary_text"]
    # (survive_kernel's cell in every notebook lists the sandbox's processes: it leaves the outputs alone)
    everywhere = [name for name, attack in batch["attacks"].items() if "everywhere" in attack
                  and name != "survive_kernel"]
    assert len(everywhere) == 4, everywhere
    for name in everywhere:
        assert _total(course, name) == 0, _read_reasons(course, name)
        assert f"  {name}: its kernel's outputs disagree with the trusted decisions" in summary, name
        for nb in (course / "course" / "autograded" / name / "superres").glob("*.ipynb"):
            for cell in _nb(nb)["cells"]:
                meta = cell.get("metadata", {}).get("nbgrader", {})
                if cell["cell_type"] == "code" and meta.get("grade") and not meta.get("solution"):
                    kinds = [o["output_type"] for o in cell["outputs"]]
                    assert kinds[:1] == ["error"] and "execute_result" not in kinds, (name, nb.name, kinds)
        decided = json.loads((course / "course" / ".grading" / "verdicts" / name / "cells" / "01_models.json")
                             .read_text())
        assert decided and all(not d["passed"] and d["evalue"] is not None for d in decided.values()), decided
    for name in [*CORRECT, "partial"]:
        assert f"  {name}: its kernel's outputs disagree" not in summary


def test_the_batch_completed_and_flags_what_needs_attention(batch):
    results = {r["student"]: r for r in batch["result"]["results"]}
    assert set(results) == {*_graded_students(batch), *INTAKE_ATTACKS}
    for name in INTAKE_ATTACKS:
        assert results[name]["status"].startswith("refused at intake"), results[name]
    # none is killed at the submission timeout: the submissions that write into every descriptor of their kernels
    # once left nbgrader waiting to send a kernel that no longer talked its question after a timeout, or its
    # interrupt as the notebook ended (both now sent within a bound: test_unanswering_kernel). A submission killed
    # there is listed and scores nothing, and its log holds the stacks of its nbgrader process: where it waited
    killed = {s for s, r in results.items() if "killed after" in r["status"]}
    logs_dir = batch["course"] / "course" / ".grading" / "logs"
    assert not killed, {s: (logs_dir / f"{s}.log").read_text(errors="replace")[-3000:] for s in killed}
    for name in [*CORRECT, "partial"]:
        assert results[name]["status"] == "ok", results[name]
    summary = batch["result"]["summary_text"]
    assert "Test cells most often failed" in summary and "Hidden checks most often failed" in summary
    # each submission's nbgrader process and check server were forked from the run's fork server
    logs = {p.stem: p.read_text(errors="replace")
            for p in (batch["course"] / "course" / ".grading" / "logs").glob("*.log")}
    forked = [s for s, text in logs.items()
              if f"{FORKED_MARK} nbgrader:" in text and f"{FORKED_MARK} check-server:" in text]
    assert sorted(forked) == sorted(logs), sorted(set(logs) - set(forked))
    assert not [s for s, text in logs.items() if "started anew" in text]
    # the kernels and the student side of each submission were forked from one zygote in its sandbox, none started
    # anew but those of kill_parent, which kills its zygote (and so its own kernel: nbgrader then stops at that
    # notebook; its student side then starts in a sandbox of its own), and maybe fork_bomb's (its processes fill
    # the sandbox's memory cgroup, whose OOM killer may choose the zygote)
    ran = {s for s, r in results.items() if not r["status"].startswith("refused at intake")}
    handed_in = {s: len(list((batch["course"] / "course" / "submitted" / s / "superres").glob("*.ipynb")))
                 for s in ran}
    zygotes = {s: logs[s].count(f"{ZYGOTE_MARK} started") for s in ran}
    assert {s for s in ran if zygotes[s] != 1} == set(), zygotes
    assert sum(n > 1 for n in handed_in.values()) >= 10 and "kill_parent" in ran
    anew = {s: re.findall(r".*start anew.*", logs[s]) for s in ran if "start anew" in logs[s]}
    assert set(anew) - {"fork_bomb"} == {"kill_parent"}, anew
    # the student side has a first optimizer (~1 s of CPU) ahead of the solver checks, and only in a submission that
    # hands in the notebook asking for them
    submitted = batch["course"] / "course" / "submitted"
    solver = {s for s in ran if (submitted / s / "superres" / "02_solver.ipynb").is_file()}
    warmed = {s for s in ran if f"{WARMED_MARK} srgan_epoch, srresnet_epoch" in logs[s]}
    assert {*CORRECT, "partial", *UNTOUCHED} <= warmed <= solver, (warmed - solver, solver - warmed)
    # ... which the zygote built before notebook 02's kernel and that student side were forked from it
    zygote_built = {s for s in ran if f"{ZYGOTE_MARK} built a first optimizer" in logs[s]}
    assert {*CORRECT, "partial", *UNTOUCHED} <= zygote_built <= warmed, (zygote_built - warmed, warmed - zygote_built)
    assert len(ran - solver) >= 10, "(the batch has submissions without notebook 02, which never pay for it)"
    for r in results.values():
        if r["status"] != "ok":
            assert r["student"] in summary


def test_only_nbgrader_talks_to_the_check_servers(batch):
    """Each submission's check server (trusted: it decides the hidden checks) reads requests from that submission's
    nbgrader process alone. forge_verdicts writes fake lines into every descriptor its code holds, in its kernels
    and in its student side: had one reached a server, the server would have stopped on a request that is not JSON,
    with a traceback in the log. (Its student side's lines break that process's own answers: a failed check.)"""
    logs = {p.stem: p.read_text(errors="replace")
            for p in (batch["course"] / "course" / ".grading" / "logs").glob("*.log")}
    assert "forge_verdicts" in logs
    assert [s for s, text in logs.items() if 'check_server.py", line' in text] == []


def test_nothing_outside_the_submission_folders_changed(batch):
    before, after = batch["before"], batch["after"]
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    assert not changed, f"files changed by the batch: {changed[:10]}"
    assert not HOST_TMP_MARK.exists(), "an attack wrote into the grader's /tmp"
    for name in ["late.txt"]:
        assert not (batch["course"] / "course" / "autograded" / "survive_kernel" / "superres" / name).exists(), \
            "a process started by a kernel outlived it"
    for notebook in ("01_models", "02_solver"):  # (what the first left was killed before the second started)
        text = (batch["course"] / "course" / "autograded" / "survive_kernel" / "superres" / f"{notebook}.ipynb"
                ).read_text()
        assert "SANDBOX_PROCESSES []" in text, (notebook, re.findall(r"SANDBOX_PROCESSES[^\\\n]*", text))


def test_the_gradebook_holds_only_this_class_and_the_assignment_is_intact(batch):
    from nbgrader.api import Gradebook

    course = batch["course"]
    with Gradebook("sqlite:///" + str(course / "course" / "gradebook.db")) as gb:
        students = {s.id for s in gb.students}
        cells = sorted((nb.name, c.name, c.max_score) for nb in gb.find_assignment("superres").notebooks
                       for c in nb.grade_cells)
    assert students == _graded_students(batch)
    assert len(cells) == 13 and sum(c[2] for c in cells) == 50


def test_no_secret_was_read(batch):
    course = batch["course"]
    reference_lines = {ln.strip() for nb in batch["reference"].values() for c in nb["cells"]
                       for ln in _src(c).splitlines()}
    release_lines = {ln.strip() for nb in batch["release"].values() for c in nb["cells"]
                     for ln in _src(c).splitlines()}
    release_text = "\n".join(_src(c) for nb in batch["release"].values() for c in nb["cells"])
    solution_only = [ln for ln in reference_lines - release_lines
                     if len(ln) > 30 and "hidden_check" not in ln and ln not in release_text]
    checks_only = ["def _oracle_srgan_epoch", "class CheckFailed", "SQLite format 3", "PWNED", "CONNECTED", "WROTE"]
    assert len(solution_only) > 20
    texts = {}
    # (an attack built on the solved 01_models holds that solution itself: only the check markers count there)
    solved = {name for name, attack in batch["attacks"].items() if attack.get("solved_models")}
    for name in batch["attacks"]:
        markers = checks_only if name in solved else solution_only + checks_only
        for folder in (course / "course" / "autograded" / name, course / "course" / "feedback" / name):
            for p in folder.rglob("*"):
                if p.is_file() and p.suffix in (".ipynb", ".html", ".txt", ".py"):
                    texts[str(p)] = (p.read_text(errors="replace"), markers)
        for p in (course / "course" / ".grading" / "verdicts" / name).glob("*.json"):
            texts[str(p)] = (p.read_text(), markers)
    texts["breakdown"] = ((course.parent / "grades_of_the_batch" / "breakdown.csv").read_text(),
                          solution_only + checks_only)
    assert any("denied" in t for t, _ in texts.values()), "the read attacks did not run"
    for where, (text, markers) in texts.items():
        for marker in markers:
            assert marker not in text, f"{marker!r} leaked into {where}"


def test_no_connection_reached_the_server(batch):
    assert batch["server"].accepted == []
    out = (batch["course"] / "course" / "autograded" / "network" / "superres" / "01_models.ipynb").read_text()
    assert "no network" in out, "the network attack did not run"


def test_no_sandboxed_process_is_left(batch):
    """No process of the batch's sandbox uids is alive after it (the attacks leave some behind that try to)."""
    from course.sandbox import FIRST_SANDBOX_UID, SANDBOX_UIDS

    if os.geteuid() != 0:
        pytest.skip("sandbox uids are used when grading as root")
    uids = {r["sandbox_uid"] for r in batch["result"]["results"] if r.get("sandbox_uid") is not None}
    assert 0 < len(uids) <= WORKERS, uids
    assert all(FIRST_SANDBOX_UID <= uid < FIRST_SANDBOX_UID + SANDBOX_UIDS for uid in uids), uids
    assert not batch["leftover"], batch["leftover"]


def test_special_files_were_removed_and_nothing_followed(batch):
    folder = batch["course"] / "course" / "autograded" / "symlink_escape" / "superres"
    assert not any(p.is_symlink() for p in folder.rglob("*"))
    assert not (folder / "04_test.ipynb.fifo").exists()


def test_others_grades_equal_grades_alone(batch):
    """The partial submission scores cell for cell what it scores graded alone. (The correct ones score every point
    among the attackers, all they could score alone: test_correct_submissions_get_full_marks_and_partial_gets_part.)"""
    assert set(batch["alone"]) == {"partial"}
    for student, alone in batch["alone"].items():
        assert batch["batch_scores"][student] == alone, student


def _read_breakdown(course: Path) -> list[dict]:
    import csv

    with open(course.parent / "grades_of_the_batch" / "breakdown.csv", newline="") as f:
        return list(csv.DictReader(f))


def _read_reasons(course: Path, student: str) -> str:
    return "; ".join(f"{r['cell']}={r['score']}" for r in _read_breakdown(course) if r["student"] == student)


def test_breakdown_agrees_with_gradebook_and_grades_csv(batch):
    import csv

    course = batch["course"]
    rows = _read_breakdown(course)
    per_student = {}
    for r in rows:
        if r["cell"]:
            per_student.setdefault(r["student"], {})[(r["notebook"], r["cell"])] = float(r["score"] or 0)
    assert set(per_student) == _graded_students(batch)
    for student, scores in per_student.items():
        if student in batch["alone"]:
            continue  # regraded alone after the breakdown was written
        assert scores == {k: v or 0 for k, v in _scores(course, student).items()}, student
    with open(course.parent / "grades_of_the_batch" / "grades.csv", newline="") as f:
        totals = {r["student_id"]: float(r["raw_score"]) for r in csv.DictReader(f)}
    for student, scores in per_student.items():
        if student not in batch["alone"]:
            assert totals[student] == pytest.approx(sum(scores.values())), student
    lost = [r for r in rows if r["student"] == "partial" and r["auto_graded"] == "True"
            and float(r["score"]) < float(r["max_score"])]
    assert lost and all(r["reason"] for r in lost), "every lost test says why"


def test_feedback_shows_no_hidden_test(batch):
    course = batch["course"]
    pages = list((course / "course" / "feedback").rglob("*.html"))
    assert len(pages) >= 5 * 2
    hidden = {ln.strip() for nb in batch["reference"].values() for c in nb["cells"] if "BEGIN HIDDEN" in _src(c)
              for ln in _src(c).split("### BEGIN HIDDEN TESTS")[1].split("### END HIDDEN TESTS")[0].splitlines()
              if ln.strip()}
    assert hidden
    for page in pages:
        text = page.read_text()
        for line in hidden:
            assert html.escape(line) not in text and line not in text, f"{line!r} in {page}"


def test_one_run_grades_both_languages_and_gives_each_student_feedback_in_their_own(batch):
    """ref_a (English) and ref_b (zh-CN) were graded in the same run with the same points, grade by grade; ref_b's
    feedback pages are in Chinese, ref_a's in English."""
    course = batch["course"]
    assert _scores(course, ZH_STUDENT) == _scores(course, "ref_a")
    for student, chinese in (("ref_a", False), (ZH_STUDENT, True)):
        pages = sorted((course / "course" / "feedback" / student / "superres").glob("*.html"))
        assert len(pages) == 5, (student, pages)
        for page in pages:
            text = page.read_text(encoding="utf-8")
            han = len(re.findall(r"[\u4e00-\u9fff]", text))
            assert (han > 100) == chinese, f"{page}: {han} Chinese characters"


def test_graded_folders_and_feedback_keep_only_notebooks_and_pages(batch):
    """What a notebook wrote while graded (a page of HTML, a folder 1,500 levels deep, 50 MB in .grading-run/) is
    gone once its submission is graded: the formgrader serves course/autograded/ from the instructor's origin and
    the feedback is made from it. The grader survived the deep folder and graded the others."""
    course = batch["course"]
    assert any("LEFT FILES" in text for text in _texts_of(course, "scripts").values()), "the attack did not run"
    graded = [r["student"] for r in batch["result"]["results"]
              if (course / "course" / "autograded" / r["student"] / "superres").is_dir()]
    assert "scripts" in graded and len(graded) > 10, graded
    for student in graded:
        folder = course / "course" / "autograded" / student / "superres"
        # nbgrader's records of the hand-in (timestamp, secret) are those collect kept, put back after the run
        submitted = course / "course" / "submitted" / student / "superres"
        records = [n for n in EXCHANGE_FILES if (folder / n).exists()]
        assert all((folder / n).read_bytes() == (submitted / n).read_bytes() for n in records), student
        odd = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.name not in records and (
               p.parent != folder or p.suffix != ".ipynb" or p.is_symlink() or not p.is_file())]
        assert not odd, (student, odd[:5])
        feedback = course / "course" / "feedback" / student
        if feedback.exists():
            odd = [p.relative_to(feedback).as_posix() for p in feedback.rglob("*")
                   if not p.is_dir() and p.suffix != ".html" and p.name not in EXCHANGE_FILES]
            assert not odd, (student, odd[:5])


# ---------------------------------------------------------------------------------------------------------
# Verdicts cannot be forged, nothing leaks back, nothing of the host is exposed
# ---------------------------------------------------------------------------------------------------------
def test_refused_submissions_were_never_touched_by_nbgrader(batch):
    course = batch["course"]
    for name in INTAKE_ATTACKS:
        assert not (course / "course" / "autograded" / name).exists(), name
        assert not (course / "course" / "feedback" / name).exists(), name
    assert "linked" in batch["result"]["summary_text"] and "symbolic link" in batch["result"]["summary_text"]


def _texts_of(course: Path, student: str) -> dict[str, str]:
    texts = {}
    for folder in (course / "course" / "autograded" / student, course / "course" / "feedback" / student):
        for p in folder.rglob("*"):
            if p.is_file() and p.suffix in (".ipynb", ".html"):
                texts[str(p)] = p.read_text(errors="replace")
    return texts


def _live_script(page: str) -> set[str]:
    """What a browser would run or load as code from ``page``: script bodies, event handlers, javascript: URLs,
    SVG/iframe/object/embed elements."""
    from html.parser import HTMLParser

    found = set()

    class Finder(HTMLParser):
        in_script = False

        def handle_starttag(self, tag, attrs):
            self.in_script = tag == "script"
            if tag in ("svg", "iframe", "object", "embed"):
                found.add(f"<{tag}>")
            for name, value in attrs:
                if name.startswith("on"):
                    found.add(f"{name}={value}")
                if value and value.strip().lower().startswith("javascript:"):
                    found.add(f"{name}={value}")

        def handle_endtag(self, tag):
            self.in_script = False

        def handle_data(self, data):
            if self.in_script and data.strip():
                found.add("script:" + data.strip()[:200])

    Finder().feed(page)
    return found


def _formgrader_page(notebook: Path) -> str:
    """The page the formgrader serves for an autograded notebook (its exporter and template)."""
    from nbconvert.exporters import HTMLExporter
    from nbgrader.server_extensions.formgrader import handlers
    from traitlets.config import Config

    c = Config()
    c.HTMLExporter.template_name = "formgrade"
    c.HTMLExporter.extra_template_basedirs = [handlers.template_path]
    resources = {"assignment_id": "superres", "notebook_id": notebook.stem, "submission_id": "x", "index": 0,
                 "total": 1, "base_url": "/", "student": "s", "last_name": "", "first_name": "",
                 "notebook_path": "/x"}
    html_text, _ = HTMLExporter(config=c).from_filename(str(notebook), resources=resources)
    return html_text


def test_no_student_script_runs_in_the_formgrader_or_the_feedback(batch):
    course = batch["course"]
    texts = _texts_of(course, "scripts")
    assert texts, "the script attack was not graded"
    for name in ("01_models", "03_train"):
        hostile = course / "course" / "autograded" / "scripts" / "superres" / f"{name}.ipynb"
        clean = course / "course" / "autograded" / "ref_a" / "superres" / f"{name}.ipynb"
        texts[f"formgrader {name}"] = page = _formgrader_page(hostile)
        extra = _live_script(page) - _live_script(_formgrader_page(clean))
        assert not extra, f"live script in the formgrader page of {name}: {sorted(extra)[:5]}"
    for page in (p for p in (course / "course" / "feedback" / "scripts").rglob("*.html")):
        base = course / "course" / "feedback" / "ref_a" / page.relative_to(course / "course" / "feedback" /
                                                                        "scripts")
        extra = _live_script(page.read_text()) - _live_script(base.read_text())
        assert not extra, f"live script in the feedback {page.name}: {sorted(extra)[:5]}"
    for where, text in texts.items():
        for marker in LIVE_MARKERS:
            if marker != "XSS_MD_MATH":
                assert marker not in text, f"{marker} survived in {where}"
        assert "\\href{javascript" not in text and "\\href{" not in text, where


def test_exported_csv_cells_hold_no_formula(batch):
    import csv

    grades = batch["course"].parent / "grades_of_the_batch"
    seen_formula_student = False
    for name in ("breakdown.csv", "grades.csv"):
        with open(grades / name, newline="") as f:
            for row in csv.reader(f):
                for cell in row:
                    seen_formula_student |= "HYPERLINK" in cell
                    assert not cell[:1] in ("=", "+", "@", "\t", "\r") and not (
                        cell.startswith("-") and not cell.lstrip("-").replace(".", "", 1).isdigit()), (name, cell)
    assert seen_formula_student, "the formula attack's reason did not reach breakdown.csv"


def test_output_bombs_are_bounded(batch):
    course = batch["course"]
    for student in ("output_bombs", "output_flood"):
        nb = course / "course" / "autograded" / student / "superres" / "01_models.ipynb"
        assert nb.is_file(), student
        assert nb.stat().st_size < 20 << 20, f"{student}: {nb.stat().st_size >> 20} MB"
    assert "truncated by the grader" in (course / "course" / "autograded" / "output_bombs" / "superres" /
                                         "01_models.ipynb").read_text()
    for nb in (course / "course" / "autograded").rglob("*.ipynb"):
        assert nb.stat().st_size <= 20 << 20, nb


def test_the_kernel_keyring_is_denied(batch):
    out = (batch["course"] / "course" / "autograded" / "scripts" / "superres" /
           "01_models.ipynb").read_text()
    assert "KEYRING denied" in out and "KEYRING " + "ADDED" not in out


def test_check_messages_are_short_and_composed_by_the_grader(batch):
    course = batch["course"]
    for student in ("exfiltrate_gc", "forge_and_alias", "scripts"):
        for f in (course / "course" / ".grading" / "verdicts" / student).glob("*.json"):
            for name, v in json.loads(f.read_text()).items():
                assert not v["passed"], (student, name)
                assert len(v["reason"]) <= 400, (student, name, len(v["reason"]))
                assert "HYPERLINK" not in v["reason"] or "raised an exception" in v["reason"], v["reason"]
        for text in _texts_of(course, student).values():  # a check's message: at most 200 characters of EXFIL...
            for reason in re.findall(r"hidden check '\w+' failed: ([^\"]*)", text):
                assert len(reason) <= 400, reason[:100]


def test_sanitizer_leaves_no_live_script_in_a_rendered_notebook(tmp_path):
    """Without bwrap: the preprocessor the formgrader and feedback rely on, on every kind of payload."""
    import nbformat

    from course.grading.sanitize_notebook import SanitizeNotebook

    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_markdown_cell(load_attacks(tmp_path, 0)["scripts"]["markdown"]))
    code = nbformat.v4.new_code_cell("x")
    js = "X" + "SS_"
    code.outputs = [
        nbformat.v4.new_output("display_data", data={"text/html": f"<script>{js}SCRIPT</script><img src=x onerror="
                                                                  f"'{js}ONERROR'><a href='javascript:{js}HREF'>a</a>",
                                                     "application/javascript": f"{js}JSOUT",
                                                     "image/svg+xml": f"<svg onload='{js}SVG'/>",
                                                     "text/markdown": f"[x](javascript:{js}MIME)"},
                               metadata={"big": "z" * 1000}),
        nbformat.v4.new_output("execute_result", data={"text/latex": f"$\\href{{javascript:{js}MD_MATH}}{{x}}$"},
                               execution_count=1),
    ]
    nb.cells.append(code)
    clean, _ = SanitizeNotebook().preprocess(nb, {})
    path = tmp_path / "n.ipynb"
    nbformat.write(clean, str(path))
    page = _formgrader_page(path)
    assert not _live_script(page) - _live_script(_formgrader_page(_blank_notebook(tmp_path / "blank"))), \
        _live_script(page)
    for marker in LIVE_MARKERS:
        if marker != "XSS_MD_MATH":
            assert marker not in page, marker
    assert "\\href{" not in page


def _blank_notebook(folder: Path) -> Path:
    import nbformat

    folder.mkdir()
    path = folder / "n.ipynb"  # the same name: the template's own script holds it
    nbformat.write(nbformat.v4.new_notebook(), str(path))
    return path


def test_a_disk_flood_is_bounded_while_it_runs_and_costs_that_notebook_its_points(batch):
    """Many 100 MB files: the submission's folder bound holds during the run (as root: its tmpfs refuses the writes
    past it), its files are removed, its solved notebook scores 0, the grader lists it; the others keep theirs."""
    from course.grading.graded_folder import DISK_RESERVE_BYTES

    course = batch["course"]
    folder = course / "course" / "autograded" / "disk_flood"
    nb = (folder / "superres" / "01_models.ipynb").read_text()
    assert "FLOOD wrote" in nb, "the flood did not run"
    if os.geteuid() == 0:
        written = int(re.search(r"FLOOD wrote (\d+) files", nb).group(1))
        assert "No space left on device" in nb, "the folder's tmpfs did not stop the writes"
        assert written * (100 << 20) <= FOLDER_BYTES + DISK_RESERVE_BYTES, written
    assert not list(folder.rglob("flood*.bin")), "the flood's files were kept"
    assert sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) <= FOLDER_BYTES
    assert "DiskBoundExceeded" in nb
    scores = _scores(course, "disk_flood")
    assert all(v == 0 for (notebook, _), v in scores.items() if notebook == "01_models")
    assert sum(v or 0 for (notebook, _), v in batch["batch_scores"]["partial"].items() if notebook == "01_models") > 0, \
        "the same solved notebook scores when it does not flood"
    status = {r["student"]: r["status"] for r in batch["result"]["results"]}["disk_flood"]
    assert "MB" in status and "disk_flood" in batch["result"]["summary_text"], status
    for student in CORRECT:
        assert _total(course, student) == 36


