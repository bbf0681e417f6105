"""The student's own outputs in the grading view, and release notebooks that open clean.

A tiny assignment (one notebook named ``03_train`` so that the kit's ``expected_outputs`` applies: a cell ``plots``
whose output the course asks for, an autograded test cell, a manually graded answer) goes through the kit's real
``nbgrader_config.py``: plain ``nbgrader autograde`` and the sandboxed ``python -m course.grade``. The submitted
outputs (a picture, a table, a script that must not survive) must show up, labelled, before the answer cell; the
re-run outputs stay in their cells; grades and checksums are those of nbgrader; a submission without the outputs
is flagged in the autograded notebook and in ``summary.txt``.
"""
from __future__ import annotations

import base64
import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from course.paths import tool, tool_env
from course_fixtures import tiny_assignment_notebook

REPO = Path(__file__).resolve().parents[3]
NBGRADER = tool("nbgrader")

pytestmark = pytest.mark.skipif(not NBGRADER.exists(), reason="nbgrader is not installed (pip install -e '.[test]')")


def _png() -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 30, 30)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


@pytest.fixture(scope="module")
def tiny_course(tmp_path_factory):
    """A course copy with the tiny assignment generated; returns (root, env, release notebook)."""
    from course.demo import copy_course

    root = copy_course(tmp_path_factory.mktemp("course"))
    import nbformat

    nb = tiny_assignment_notebook()
    (root / "source" / "tiny").mkdir(parents=True)
    nbformat.write(nb, root / "source" / "tiny" / "03_train.ipynb")
    env = tool_env()
    out = subprocess.run([str(NBGRADER), "generate_assignment", "tiny", "--force"], cwd=root, env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    return root, env, json.loads((root / "release" / "tiny" / "03_train.ipynb").read_text())


def _submission(release: dict, with_outputs: bool) -> dict:
    nb = json.loads(json.dumps(release))
    cells = nb["cells"]
    cells[1]["source"] = "y = x + 1"
    cells[3]["source"] = "My run: see the curve."
    if with_outputs:
        cells[0]["outputs"] = [
            {"output_type": "stream", "name": "stdout", "text": "student's own run: 28.1 dB\n"},
            {"output_type": "display_data", "metadata": {}, "data": {"image/png": _png(), "text/plain": "<Figure>"}},
            {"output_type": "display_data", "metadata": {}, "data": {
                "text/html": "<table><tr><td>SRGAN 27.9</td></tr></table><script>alert('pwned')</script>",
                "application/javascript": "alert('pwned')"}},
            {"output_type": "error", "ename": "ValueError", "evalue": "old error of the student", "traceback": []},
        ]
        cells[2]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "forged test output\n"}]
    return nb


REPORT_MD = ("# My report\n\nSRGAN reaches **27.9 dB** on the samples.\n\n![curves](checkpoints/srgan/curves.png)\n\n"
             "<script>alert('report pwned')</script>\n")


def _submit(root: Path, student: str, nb: dict, report: dict | None = None) -> None:
    folder = root / "course" / "submitted" / student / "tiny"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "03_train.ipynb").write_text(json.dumps(nb))
    for name, data in (report or {}).items():
        (folder / name).write_bytes(data)


def _autograded(root: Path, student: str) -> dict:
    return json.loads((root / "course" / "autograded" / student / "tiny" / "03_train.ipynb").read_text())


def _texts(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        t = out.get("text") or out.get("data", {}).get("text/plain") or out.get("data", {}).get("text/html") or ""
        parts.append("".join(t) if isinstance(t, list) else t)
    return "".join(parts)


def _scores(root: Path, student: str) -> dict:
    from nbgrader.api import Gradebook

    with Gradebook("sqlite:///" + str(root / "course" / "gradebook.db")) as gb:
        nb = gb.find_submission_notebook("03_train", "tiny", student)
        return {g.name: (g.auto_score, g.needs_manual_grade) for g in nb.grades}


def _check_graded(root: Path, with_outputs: str, without: str) -> None:
    from course.grading.submitted_outputs import MARKER, missing_outputs

    nb = _autograded(root, with_outputs)
    ids = [c["metadata"].get("nbgrader", {}).get("grade_id") for c in nb["cells"]]
    shown = [i for i, c in enumerate(nb["cells"]) if "".join(c["source"]).startswith(MARKER)]
    assert len(shown) == 1 and ids[shown[0] + 1] == "report", f"the submitted outputs sit before the answer: {ids}"
    cell = nb["cells"][shown[0]]
    text = _texts(cell)
    assert "student's own run: 28.1 dB" in text and "SRGAN 27.9" in text and "old error of the student" in text
    assert "submitted output of cell plots" in text and "grader's re-run" in text
    assert "forged test output" not in text, "an autograded test cell's submitted output is not the student's work"
    assert any("image/png" in o.get("data", {}) for o in cell["outputs"]), "the submitted picture is shown"
    assert "<script" not in json.dumps(nb) and "application/javascript" not in json.dumps(nb)
    assert not [o for o in cell["outputs"] if o["output_type"] == "error" or o.get("name") == "stderr"]
    assert "re-run of the grader 2" in _texts(nb["cells"][ids.index("plots")]), "the re-run stays in its cell"
    assert "sr_kit_submitted" not in nb["metadata"]
    assert missing_outputs(nb) == []
    _check_report(nb, with_outputs)
    _check_report(_autograded(root, without), None)
    bare = _autograded(root, without)
    assert missing_outputs(bare) == ["plots"], "a submission without the asked-for outputs is flagged"
    for student in (with_outputs, without):
        assert _scores(root, student) == {"test_y": (1.0, False), "report": (None, True)}, student


def _check_report(nb: dict, student: str | None) -> None:
    """The report cell sits right before the submitted outputs of the first written answer: alice's report.md
    (sanitised: its script does not survive), carol's report.pdf (a line, no link), nothing for the others."""
    from course.grading.report_cell import NO_REPORT_TEXT, REPORT_LABEL
    from course.grading.submitted_outputs import MARKER

    sources = ["".join(c["source"]) for c in nb["cells"]]
    at = [i for i, src in enumerate(sources) if REPORT_LABEL in src]
    assert len(at) == 1 and sources[at[0] + 1].startswith(MARKER), sources
    cell = nb["cells"][at[0]]
    assert cell["cell_type"] == "markdown" and not cell["metadata"].get("nbgrader"), cell
    text = sources[at[0]]
    if student == "alice":
        assert "My report" in text and "27.9 dB" in text and "checkpoints/srgan/curves.png" in text
        assert "<script" not in text and "alert(" not in text, text
    elif student == "carol":
        assert "report.pdf" in text and "course/submitted/carol/tiny/report.pdf" in text and "href" not in text
    else:
        assert NO_REPORT_TEXT in text, text


def _autograded_with_plain_nbgrader(tiny_course) -> tuple[Path, dict]:
    """alice (outputs and a report.md) and bob (neither) handed in and graded by ``nbgrader autograde``."""
    root, env, release = tiny_course
    _submit(root, "alice", _submission(release, with_outputs=True), {"report.md": REPORT_MD.encode()})
    _submit(root, "bob", _submission(release, with_outputs=False))
    out = subprocess.run([str(NBGRADER), "autograde", "tiny", "--force"], cwd=root, env=env, capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "checksum" not in out.stderr.lower(), out.stderr[-3000:]
    return root, env


def test_plain_nbgrader_autograde_shows_the_submitted_outputs(tiny_course):
    root, _ = _autograded_with_plain_nbgrader(tiny_course)
    _check_graded(root, "alice", "bob")


def test_one_feedback_process_makes_each_students_page_as_the_command_does(tiny_course):
    """The grader's feedback process (``FeedbackServer``): one process for every student, each page byte for byte
    what ``nbgrader generate_feedback --student`` makes; a student it cannot make feedback for (nothing graded)
    is a failure that leaves the others theirs. Forked from a grading run's fork server (nbgrader imported there
    already), it makes the same pages."""
    from course.grading.reports import FeedbackServer
    from course.grading.trusted_forkserver import FEEDBACK
    from course.grading.trusted_forkserver_client import TrustedForkServer
    from course.grading.trusted_processes import TRUSTED_CPU_SECONDS, TRUSTED_MEMORY_BYTES, trusted_env

    root, env = _autograded_with_plain_nbgrader(tiny_course)
    page = root / "course" / "feedback" / "{}" / "tiny" / "03_train.html"
    out = subprocess.run([str(NBGRADER), "generate_feedback", "tiny", "--student", "alice", "--force"], cwd=root,
                         env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    by_command = Path(str(page).format("alice")).read_bytes()
    server = FeedbackServer(root, "tiny")
    try:
        assert server.feedback("alice")
        pid = server.proc.pid
        assert not server.feedback("nobody")
        assert server.feedback("bob") and server.proc.pid == pid, "one process for the whole class"
    finally:
        server.close()
    assert Path(str(page).format("alice")).read_bytes() == by_command
    assert "03_train" in Path(str(page).format("bob")).read_text()
    assert not (root / "course" / "feedback" / "nobody").exists()

    Path(str(page).format("alice")).unlink()
    forks = TrustedForkServer(trusted_env(root), root / "forkserver.log", (TRUSTED_MEMORY_BYTES, TRUSTED_CPU_SECONDS))
    server = FeedbackServer(root, "tiny", forks)
    try:
        assert server.feedback("alice") and getattr(server.proc, "kind", None) == FEEDBACK, "forked"
        pid = server.proc.pid
        assert not server.feedback("nobody")
        assert server.feedback("bob") and server.proc.pid == pid, "one forked process for the whole class"
    finally:
        server.close()
        forks.close()
    assert Path(str(page).format("alice")).read_bytes() == by_command


def test_the_sandboxed_grader_shows_them_and_flags_missing_outputs_in_the_summary(tiny_course):
    from class_batch import require_bwrap

    require_bwrap()
    root, env, release = tiny_course
    _submit(root, "carol", _submission(release, with_outputs=True), {"report.pdf": b"%PDF-1.4 " + b"x" * 3000})
    _submit(root, "dave", _submission(release, with_outputs=False))
    out = subprocess.run([sys.executable, "-m", "course.grade", "tiny", "--course-dir", str(root), "--workers", "1",
                          "--student", "carol", "--student", "dave"], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    _check_graded(root, "carol", "dave")
    summary = (root / "course" / "grades" / "summary.txt").read_text()
    assert "dave: 03_train submitted without outputs: plots" in summary, summary
    assert "carol" not in summary.split("Submitted without outputs")[-1], summary
    # the report: carol's report.pdf is counted, dave's missing report is in the attention list and grades.csv
    attention = summary.split("Needing manual attention")[1].split("Submitted without outputs")[0]
    assert "dave: no report handed in" in attention and "carol" not in attention, summary
    assert "Written reports: 1 of 2 handed in (report.md: 0, report.pdf: 1)" in summary, summary
    with open(root / "course" / "grades" / "grades.csv", newline="") as f:
        reports = {r["student_id"]: r["report"] for r in csv.DictReader(f)}
    assert reports["carol"] == "report.pdf" and reports["dave"] == "", reports
    assert not (root / "course" / "autograded" / "carol" / "tiny" / "report.pdf").exists()  # never served


def test_release_notebooks_carry_complete_metadata():
    """JupyterLab marks a notebook changed on open when the kernel completes its language_info."""
    from course.grading.release_metadata import KERNELSPEC, language_info

    want = set(language_info())
    for path in sorted((REPO / "release" / "superres").glob("*.ipynb")):
        meta = json.loads(path.read_text())["metadata"]
        assert meta["kernelspec"] == KERNELSPEC, path.name
        assert set(meta["language_info"]) == want and meta["language_info"]["version"], \
            f"{path.name}: incomplete language_info {meta['language_info']}: run `make release` and commit release/"
