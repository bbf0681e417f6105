"""Students and instructors in a real browser: headless Chromium from the distribution, Selenium.

With every non-local host unreachable (Chromium's resolver maps them to nothing), so the pages must work offline:

* a student opens ``01_models`` of the release in JupyterLab (started as ``make lab`` starts it), runs it, and
  validates it unsolved (the Validate dialog lists failures) and solved with the reference's code (success);
* an instructor opens the formgrader on a submission of a tiny assignment graded with the kit's configuration,
  sees the submitted outputs (labelled, the picture included) before the report cell, types a manual score, and
  the notebook's total in the gradebook view updates; the maths of the page is typeset by MathJax;
* the student's feedback page (served by Jupyter) shows no hidden test, runs none of the student's scripts and
  typesets its maths.

Screenshots go to ``tests/artifacts/course-browser/`` (git-ignored). Skips with the reason where Chromium cannot
be had; fails under CI.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from course.paths import tool, tool_env
from course_fixtures import (JupyterServer, find_chromium, headless_chromium, jupyter_lab_argv, nbgrader_cell,
                             save_screenshot, wait_for)

REPO = Path(__file__).resolve().parents[2]
NBGRADER = tool("nbgrader")
ARTIFACTS = REPO / "tests" / "artifacts" / "course-browser"
HIDDEN = "assert y * 10 == 30  # the hidden test"
PWNED = "document.title = 'PWNED'"

pytestmark = pytest.mark.skipif(not NBGRADER.exists(), reason="nbgrader is not installed (pip install -e '.[test]')")


def _env(**extra) -> dict:
    return tool_env(**extra)


def _run(argv, cwd, env=None) -> None:
    out = subprocess.run([str(a) for a in argv], cwd=cwd, env=env or _env(), capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0, f"{' '.join(map(str, argv))}:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}"


def _shot(b, name: str) -> Path:
    return save_screenshot(b, name, ARTIFACTS)


def _wait(b, condition, timeout: float, what: str):
    return wait_for(b, condition, timeout, what, ARTIFACTS)


def _solved(release: dict, source: dict) -> dict:
    """The release notebook with the reference's code in every answer cell (as a student who solved it)."""
    ref = {c["metadata"].get("nbgrader", {}).get("grade_id"): "".join(c["source"]) for c in source["cells"]}
    nb = json.loads(json.dumps(release))
    for cell in nb["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        if meta.get("solution"):
            lines = ref[meta["grade_id"]].splitlines(keepends=True)
            cell["source"] = "".join(ln for ln in lines if ln.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION"))
    return nb


def _tiny_assignment(root: Path) -> None:
    """``tiny/03_train``: a cell whose outputs the course asks for, an answer, a test with a hidden part, a report."""
    import nbformat
    from nbformat.v4 import new_notebook

    cell = nbgrader_cell

    nb = new_notebook(cells=[
        cell("markdown", "The loss is $\\mathcal{L} = \\frac{1}{N}\\sum_i (y_i - \\hat y_i)^2$.", grade_id="intro",
             locked=True),
        cell("code", "x = 2\nprint('re-run of the grader', x)", grade_id="plots", locked=True),
        cell("code", "### BEGIN SOLUTION\ny = x + 1\n### END SOLUTION", grade_id="answer_code", solution=True),
        cell("code", f"assert y > 0\n### BEGIN HIDDEN TESTS\n{HIDDEN}\n### END HIDDEN TESTS", grade_id="test_y",
             grade=True, points=1, locked=True),
        cell("markdown", "Discuss your run, with maths: $\\alpha$.\n\n### BEGIN SOLUTION\nreference\n### END SOLUTION",
             grade_id="report", grade=True, solution=True, points=2),
    ])
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    (root / "source" / "tiny").mkdir(parents=True)
    nbformat.write(nb, root / "source" / "tiny" / "03_train.ipynb")


def _submission(release: dict) -> dict:
    import base64
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (160, 60), (220, 40, 40)).save(buf, format="PNG")
    nb = json.loads(json.dumps(release))
    by_id = {c["metadata"].get("nbgrader", {}).get("grade_id"): c for c in nb["cells"]}
    by_id["answer_code"]["source"] = "y = x + 1"
    by_id["report"]["source"] = (f"My curve fell to 0.01: $\\beta^2$. <script>{PWNED}</script>"
                                 f"<img src=x onerror=\"{PWNED}\">")
    by_id["plots"]["outputs"] = [
        {"output_type": "stream", "name": "stdout", "text": "student's own run: PSNR 28.1 dB\n"},
        {"output_type": "display_data", "metadata": {},
         "data": {"image/png": base64.b64encode(buf.getvalue()).decode(), "text/plain": "<Figure loss curves>"}},
        {"output_type": "display_data", "metadata": {},
         "data": {"text/html": f"<b>results table</b><script>{PWNED}</script><img src=x onerror=\"{PWNED}\">"}},
    ]
    return nb


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A course copy: the superres release for the student, and the tiny assignment autograded for alice, with
    her feedback generated and the roster imported."""
    from course.demo import copy_course
    from course.roster import import_roster

    root = copy_course(tmp_path_factory.mktemp("course"))
    _tiny_assignment(root)
    for assignment in ("superres", "tiny"):
        _run([NBGRADER, "generate_assignment", assignment, "--force"], root)
    roster = root / "roster.csv"
    roster.write_text("id,first_name,last_name,email\nalice,Alice,Liddell,\n")
    import_roster(root, roster)
    release = json.loads((root / "release" / "tiny" / "03_train.ipynb").read_text())
    sub = root / "course" / "submitted" / "alice" / "tiny"
    sub.mkdir(parents=True)
    (sub / "03_train.ipynb").write_text(json.dumps(_submission(release)))
    _run([NBGRADER, "autograde", "tiny"], root)
    _run([NBGRADER, "generate_feedback", "tiny"], root)
    return root


@pytest.fixture(scope="module")
def chrome():
    b = headless_chromium(*find_chromium(), browser_log=True)
    yield b
    b.quit()


def _mathjax_typeset(b) -> int:
    """Elements MathJax produced on the page (0 when it did not load or did not typeset)."""
    return b.execute_script("return window.MathJax && MathJax.Hub ? "
                            "document.querySelectorAll('.MathJax_CHTML, .MathJax, .MathJax_Display').length : 0")


def _lab_command(b, command: str, args: dict | None = None):
    return b.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "window.jupyterapp.restored.then(() => window.jupyterapp.commands.execute(arguments[0], arguments[1]))"
        ".then(() => done('ok'), e => done(String(e)));",
        command, args or {})


def _validate(b, path: str, name: str) -> str:
    """Open ``path`` in JupyterLab, press Validate, return the dialog's class (validation-success/-failed)."""
    from selenium.webdriver.common.by import By

    b.get(b.lab.url(f"lab/tree/{path}"))
    _wait(b, lambda d: d.execute_script("return !!window.jupyterapp"), 120, "JupyterLab")
    _wait(b, lambda d: d.execute_script(
        "return window.jupyterapp.shell.currentWidget && window.jupyterapp.shell.currentWidget.sessionContext"
        " && window.jupyterapp.shell.currentWidget.sessionContext.session"
        " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
        " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'"),
          120, "the kernel")
    # the Validate button of this notebook's toolbar (nbgrader's labextension)
    _wait(b, lambda d: d.execute_script(
        "const w = window.jupyterapp.shell.currentWidget;"
        "const v = w && w.context.path === arguments[0] && w.node.querySelector('.validate-button');"
        "if (v) { v.click(); return true; } return false;", path), 60, "the Validate button")
    dialog = _wait(b, lambda d: d.find_elements(By.CSS_SELECTOR, ".validation-success, .validation-failed"), 300,
                   f"the validation of {path}")[0]
    _shot(b, name)
    kind = "validation-success" if "validation-success" in dialog.get_attribute("class") else "validation-failed"
    text = dialog.text
    b.execute_script("document.querySelector('.jp-Dialog-footer button.jp-mod-accept').click()")
    _wait(b, lambda d: not d.find_elements(By.CSS_SELECTOR, ".jp-Dialog"), 30, "the dialog to close")
    return kind + "\n" + text


def _opens_dirty(b, path: str) -> bool:
    """Open ``path``; once the kernel's info (its language_info) has reached the notebook, is it marked changed?"""
    b.get(b.lab.url(f"lab/tree/{path}"))
    _wait(b, lambda d: d.execute_script(
        "const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
        "return w && w.context && w.context.path === arguments[0] && w.sessionContext.session"
        " && w.sessionContext.session.kernel && w.sessionContext.session.kernel.status === 'idle'", path), 120,
          f"the kernel of {path}")
    return b.execute_async_script(
        "const done = arguments[arguments.length - 1], w = window.jupyterapp.shell.currentWidget;"
        "w.sessionContext.session.kernel.info.then(() => setTimeout(() => done(w.context.model.dirty), 500));")


@pytest.mark.slow
def test_student_runs_and_validates_01_models(course, chrome, tmp_path):
    from selenium.webdriver.common.by import By

    work = tmp_path / "student"
    for folder in ("unsolved", "solved"):
        (work / folder).mkdir(parents=True)
    release = json.loads((course / "release" / "superres" / "01_models.ipynb").read_text())
    source = json.loads((REPO / "source" / "superres" / "01_models.ipynb").read_text())
    (work / "unsolved" / "01_models.ipynb").write_text(json.dumps(release))
    (work / "unsolved" / "old_metadata.ipynb").write_text(json.dumps(
        {**release, "metadata": {**release["metadata"], "language_info": {"name": "python"}}}))
    (work / "solved" / "01_models.ipynb").write_text(json.dumps(_solved(release, source)))
    env = _env(JUPYTER_CONFIG_PATH=str(course / "course" / "jupyter"), HOME=str(tmp_path / "home"))
    lab = chrome.lab = JupyterServer(jupyter_lab_argv(work), work, env, tmp_path / "student-lab.log")
    try:
        # the release opens clean: no unsaved-changes mark once the kernel is up (the metadata it had before this
        # issue, language_info {"name": "python"}, does get the mark: the check can fail)
        assert _opens_dirty(chrome, "unsolved/old_metadata.ipynb") is True
        assert _opens_dirty(chrome, "unsolved/01_models.ipynb") is False, \
            "the release notebook shows unsaved changes on open (incomplete metadata)"
        # run it: cells run until the first unsolved answer raises (JupyterLab stops a run-all at an error)
        assert _lab_command(chrome, "notebook:run-all-cells") == "ok"
        _wait(chrome, lambda d: d.execute_script(
            "const w = window.jupyterapp.shell.currentWidget;"
            "const ran = w.content.widgets.filter(c => c.model.type === 'code' && c.model.executionCount !== null);"
            "return ran.length >= 2 && w.sessionContext.session.kernel.status === 'idle'"
            " && document.querySelector('.jp-Notebook').innerText.includes('NotImplementedError')"), 300,
              "the run to reach the first unsolved answer")
        _shot(chrome, "student-ran-unsolved")
        assert _lab_command(chrome, "docmanager:save") == "ok"
        unsolved = _validate(chrome, "unsolved/01_models.ipynb", "student-validate-unsolved")
        assert unsolved.startswith("validation-failed"), unsolved
        solved = _validate(chrome, "solved/01_models.ipynb", "student-validate-solved")
        assert solved.startswith("validation-success") and "passes all the tests" in solved, solved
        # the Assignments panel: no error in a student's own copy (mode a)
        chrome.get(lab.url("lab"))
        _wait(chrome, lambda d: d.execute_script("return !!window.jupyterapp"), 120, "JupyterLab")
        _wait(chrome, lambda d: d.execute_script(
            "return window.jupyterapp.commands.hasCommand('nbgrader:open-assignment-list')"), 60,
              "nbgrader's Assignments panel")
        assert _lab_command(chrome, "nbgrader:open-assignment-list") == "ok"
        _wait(chrome, lambda d: "Released assignments" in d.find_element(By.TAG_NAME, "body").text, 60,
              "the Assignments panel")
        _wait(chrome, lambda d: any(t in d.find_element(By.TAG_NAME, "body").text for t in (
            "There are no assignments to fetch", "Error fetching courses", "does not exist")), 60,
              "the Assignments panel's answer")
        page = chrome.find_element(By.TAG_NAME, "body").text
        _shot(chrome, "student-assignments-panel")
        assert "Error fetching courses" not in page and "does not exist" not in page, page[-1000:]
        assert "There are no assignments to fetch" in page
    finally:
        lab.stop()


@pytest.mark.slow
def test_instructor_grades_beside_the_submitted_outputs_and_feedback_is_safe(course, chrome, tmp_path):
    from nbgrader.api import Gradebook
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    with Gradebook("sqlite:///" + str(course / "course" / "gradebook.db")) as gb:
        submission = gb.find_submission_notebook("03_train", "tiny", "alice").id
    lab = chrome.lab = JupyterServer(jupyter_lab_argv(course), course, _env(HOME=str(tmp_path / "home")),
                                     tmp_path / "instructor-lab.log")
    try:
        # as an instructor does: JupyterLab first (it sets the XSRF cookie the formgrader's API calls need), then
        # Nbgrader -> Formgrader, here opened at the submission's page
        chrome.get(lab.url("lab"))
        _wait(chrome, lambda d: d.execute_script("return !!window.jupyterapp"), 120, "JupyterLab")
        chrome.get(lab.url(f"formgrader/submissions/{submission}/"))
        score = _wait(chrome, lambda d: d.find_elements(By.CSS_SELECTOR, "input.score#report"), 60,
                      "the report's score box")[0]
        page = chrome.find_element(By.ID, "notebook").text
        assert "SUBMITTED OUTPUTS" in page and "student's own run: PSNR 28.1 dB" in page and "results table" in page
        assert "grader's re-run" in page and "re-run of the grader 2" in page
        shown = chrome.execute_script(
            "return [...document.querySelectorAll('#notebook img')].filter(i => i.src.startsWith('data:image/png'))"
            ".map(i => i.naturalWidth)")
        assert 160 in shown, f"the submitted picture is not shown: {shown}"
        # the submitted outputs come right before the report cell
        order = chrome.execute_script(
            "const cells = [...document.querySelectorAll('#notebook .cell')];"
            "const box = cells.findIndex(c => c.textContent.includes('SUBMITTED OUTPUTS'));"
            "const rep = cells.findIndex(c => c.querySelector('input.score#report'));"
            "return [box, rep];")
        assert order[0] >= 0 and order[1] == order[0] + 1, order
        _wait(chrome, lambda d: _mathjax_typeset(d) > 0, 60, "MathJax to typeset the formgrader page offline")
        assert chrome.title != "PWNED"
        score.clear()
        score.send_keys("1.5", Keys.TAB)  # leaving the box saves it
        _shot(chrome, "instructor-formgrader")
        def manual_score(_):
            with Gradebook("sqlite:///" + str(course / "course" / "gradebook.db")) as gb:
                return gb.find_grade("report", "03_train", "tiny", "alice").manual_score == 1.5

        _wait(chrome, manual_score, 30, "the manual score in the gradebook")
        # the total of the notebook (autograded 1 + manual 1.5) in the formgrader's gradebook view
        chrome.get(lab.url("formgrader/gradebook/tiny/03_train"))
        _wait(chrome, lambda d: "2.5 / 3" in d.find_element(By.TAG_NAME, "body").text, 60, "the updated total")
        _shot(chrome, "instructor-total")
        # the feedback page, served by Jupyter: no hidden test, no live script, maths typeset offline
        chrome.get(lab.url("files/course/feedback/alice/tiny/03_train.html"))
        _wait(chrome, lambda d: _mathjax_typeset(d) > 0, 60, "MathJax to typeset the feedback offline")
        text = chrome.find_element(By.TAG_NAME, "body").text
        assert "assert y > 0" in text and HIDDEN not in text and "BEGIN HIDDEN" not in text
        assert "student's own run: PSNR 28.1 dB" in text
        assert chrome.title != "PWNED"
        assert not chrome.execute_script("return [...document.scripts].filter(s => s.textContent.includes('PWNED'))"
                                         ".length")
        _shot(chrome, "feedback")
        # MathJax itself came from this machine (its web fonts may not load in the sandboxed /files/ view: CORS)
        failed = [e["message"] for e in chrome.get_log("browser") if e["level"] == "SEVERE" and (
            "MathJax.js" in e["message"] or "is not defined" in e["message"] or "cdnjs" in e["message"])]
        assert not failed, failed
    finally:
        lab.stop()
