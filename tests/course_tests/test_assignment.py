"""The assignment through nbgrader itself: release in sync and clean, what autograding gives each kind of work,
exploits, feedback.

Runs real ``nbgrader generate_assignment`` in a temporary copy of the course (nbgrader_config.py, source/), and
reads the class graded once by the grading command (``class_batch``, tests/class_batch.py: nbgrader's autograde
of every submission in its sandbox, then ``generate_feedback``).
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from class_batch import CORRECT, ZH_STUDENT
from class_batch import read_notebook as _read
from course_fixtures import cell_source as _src
from course.paths import tool, tool_env

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = ["01_models", "02_solver", "03_train", "04_test", "05_super_resolution"]
REFERENCE, REFERENCE_ZH = CORRECT[0], ZH_STUDENT
NBGRADER = str(tool("nbgrader"))

pytestmark = pytest.mark.skipif(shutil.which(NBGRADER) is None and not Path(NBGRADER).exists(),
                                reason="nbgrader is not installed (pip install -e '.[test]')")


def _meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A private copy of the course with the assignment generated; returns (root, env)."""
    from course.demo import copy_course

    root = copy_course(tmp_path_factory.mktemp("course"))
    env = tool_env()  # (nbgrader runs `alembic` by name: the venv's bin/ first on PATH)
    out = subprocess.run([NBGRADER, "generate_assignment", "superres", "--force"], cwd=root, env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    return root, env


def test_generate_reproduces_the_committed_release(course):
    root, _ = course
    for name in NOTEBOOKS:
        fresh, committed = _read(root / "release" / "superres" / f"{name}.ipynb"), \
            _read(REPO / "release" / "superres" / f"{name}.ipynb")
        assert [(c["cell_type"], _src(c)) for c in fresh["cells"]] == \
               [(c["cell_type"], _src(c)) for c in committed["cells"]], \
            f"release/superres/{name}.ipynb is out of date: run `make release` and commit it"
        assert [_meta(c).get("grade_id") for c in fresh["cells"]] == [_meta(c).get("grade_id") for c in committed["cells"]]


def test_the_translated_release_is_generated_from_the_same_source_and_committed(course):
    """release/zh-CN/superres is what the source and its translation catalogues give now: the same cells, grade
    ids and points as the English release, each notebook tagged with its language."""
    from course.release import generate_into

    root, _ = course
    fresh_root = generate_into(root, "superres", root / "course" / ".fresh-zh-CN", language="zh-CN")
    for name in NOTEBOOKS:
        fresh, committed = _read(fresh_root / f"{name}.ipynb"), \
            _read(REPO / "release" / "zh-CN" / "superres" / f"{name}.ipynb")
        assert [(c["cell_type"], _src(c)) for c in fresh["cells"]] == \
               [(c["cell_type"], _src(c)) for c in committed["cells"]], \
            f"release/zh-CN/superres/{name}.ipynb is out of date: run `make release` and commit it"
        english = _read(REPO / "release" / "superres" / f"{name}.ipynb")
        assert [(c.get("id"), _meta(c).get("grade_id"), _meta(c).get("points")) for c in committed["cells"]] == \
               [(c.get("id"), _meta(c).get("grade_id"), _meta(c).get("points")) for c in english["cells"]]
        assert committed["metadata"]["sr_kit"]["language"] == "zh-CN"
        assert "### BEGIN SOLUTION" not in json.dumps(committed) and "hidden_check" not in json.dumps(committed)


def test_release_has_no_solution_no_hidden_test_no_module():
    files = sorted(p.name for p in (REPO / "release" / "superres").iterdir())
    assert files == [f"{n}.ipynb" for n in NOTEBOOKS], f"only the notebooks belong in the release, found {files}"
    for name in NOTEBOOKS:
        source = _read(REPO / "source" / "superres" / f"{name}.ipynb")
        release_text = "\n".join(_src(c) for c in _read(REPO / "release" / "superres" / f"{name}.ipynb")["cells"])
        assert "BEGIN HIDDEN TESTS" not in release_text and "hidden_check" not in release_text, name
        assert "BEGIN SOLUTION" not in release_text and "Instructor's reference" not in release_text, name
        solution_lines, other_lines = [], set()
        for cell in source["cells"]:
            pattern = r"### BEGIN SOLUTION\n(.*?)### END SOLUTION"
            for block in re.findall(pattern, _src(cell), re.S):
                solution_lines += [ln.strip() for ln in block.splitlines() if len(ln.strip()) > 25]
            other_lines |= {ln.strip() for ln in re.sub(pattern, "", _src(cell), flags=re.S).splitlines()}
        release_lines = {ln.strip() for ln in release_text.splitlines()}
        # a line only the solution has must not be in the release (lines the handout also shows are fine)
        leaked = [ln for ln in solution_lines if ln in release_lines and ln not in other_lines]
        assert len(solution_lines) > 0 or name == "03_train"
        assert not leaked, f"{name}: solution lines in the release: {leaked[:3]}"


def _grades(root: Path, student: str, notebooks=None) -> dict[str, tuple[float, float]]:
    """grade id -> (auto score, max score) of the autograded cells of ``notebooks`` (default: all five)."""
    from nbgrader.api import Gradebook

    with Gradebook("sqlite:///" + str(root / "course" / "gradebook.db"), course_id="sr-course-kit") as gb:
        sub = gb.find_submission("superres", student)
        return {g.name: (g.auto_score, g.max_score) for nb in sub.notebooks for g in nb.grades
                if _is_auto(root, nb.name, g.name) and (notebooks is None or nb.name in notebooks)}


def _handed_in(batch, student: str) -> list[str]:
    """The notebooks a submission of ``mistakes.toml`` holds."""
    return batch["mistakes"][student].get("notebooks", NOTEBOOKS)


_AUTO: dict = {}


def _is_auto(root, notebook, grade_id) -> bool:
    if notebook not in _AUTO:
        nb = _read(root / "source" / "superres" / f"{notebook}.ipynb")
        _AUTO[notebook] = {_meta(c)["grade_id"] for c in nb["cells"]
                           if _meta(c).get("grade") and c["cell_type"] == "code"}
    return grade_id in _AUTO[notebook]


@pytest.fixture
def graded(class_batch):
    """The class graded once by the grading command (tests/class_batch.py); returns its course root. The students
    these tests look at: the reference (``ref_a``) and its zh-CN translation (``ref_b``), the untouched English and
    zh-CN releases, the release's test cells tagged to be skipped (``skip_tags``) or edited into no-ops
    (``edit_tests``), and the mistakes of ``submissions/mistakes.toml``."""
    return class_batch["course"]


def test_reference_gets_full_marks(graded):
    root = graded
    grades = _grades(root, REFERENCE)
    assert len(grades) == 10
    lost = {k: v for k, v in grades.items() if v[0] != v[1]}
    assert not lost, f"the reference solution lost points: {lost}"


def test_the_translated_release_is_graded_the_same(graded):
    """A zh-CN submission gets the English one's points (full marks for the translated reference, 0 for the
    untouched zh-CN release), and its autograded notebooks keep their Chinese test cells and language tag."""
    root = graded
    assert _grades(root, REFERENCE_ZH) == _grades(root, REFERENCE)
    untouched = _grades(root, "untouched-zh")
    assert set(untouched) == set(_grades(root, "untouched")) and all(v[0] == 0 for v in untouched.values()), untouched
    for student in (REFERENCE_ZH, "untouched-zh"):
        nb = _read(root / "course" / "autograded" / student / "superres" / "01_models.ipynb")
        assert nb["metadata"]["sr_kit"]["language"] == "zh-CN"
        test_cell = next(c for c in nb["cells"] if _meta(c).get("grade_id") == "test_conv_block")
        assert "应" in _src(test_cell) or "公开测试" in _src(test_cell), _src(test_cell)[:300]
    said = "".join(json.dumps(c.get("outputs", []), ensure_ascii=False) for c in
                   _read(root / "course" / "autograded" / "untouched-zh" / "superres" / "01_models.ipynb")["cells"])
    assert "NotImplementedError" in said


@pytest.mark.parametrize("student", ["untouched", "skip_tags", "edit_tests"])
def test_unsolved_gets_zero_everywhere(graded, student):
    root = graded
    grades = _grades(root, student)
    assert len(grades) == 10
    scored = {k: v for k, v in grades.items() if v[0] != 0}
    assert not scored, f"{student}: an unsolved notebook scored {scored}"


def test_deleted_test_cells_are_restored_and_correct_work_keeps_its_points(graded, class_batch):
    root = graded
    grades = _grades(root, "deleted", _handed_in(class_batch, "deleted"))
    assert len(grades) == 8 and all(v[0] == v[1] for v in grades.values()), grades  # (6 cells of 01, 2 of 02)


def test_monkeypatching_gains_nothing(graded):
    root = graded
    grades = _grades(root, "patched_asserts")
    assert grades["test_srresnet"][0] == 0, "a wrong SRResNet scored with patched asserts"
    assert grades["test_conv_block"][0] == grades["test_conv_block"][1]
    assert grades["test_srgan_epoch"][0] == grades["test_srgan_epoch"][1], \
        "solver tests use the reference models: a wrong models.py must not cost them"


def test_warnings_from_correct_work_cost_nothing(graded, class_batch):
    root = graded
    grades = _grades(root, "warnings", _handed_in(class_batch, "warnings"))
    assert grades and all(v[0] == v[1] for v in grades.values()), grades


def test_stale_module_and_deleted_writefile_gain_nothing(graded):
    root = graded
    grades = _grades(root, "stale")
    for cell in ("test_conv_block", "test_srresnet", "test_discriminator", "test_generator"):
        assert grades[cell][0] == 0, f"{cell} scored from a models.py the notebook did not write"


def test_one_solver_bug_costs_only_the_solvers_points(graded):
    root = graded
    grades = _grades(root, "cascade")
    lost = {k for k, (score, max_score) in grades.items() if score != max_score}
    assert lost == {"test_srgan_epoch"}, f"one bug in train_srgan_epoch cost {sorted(lost)}"
    autograded = root / "course" / "autograded" / "cascade" / "superres"
    said = "".join(json.dumps(c.get("outputs", [])) for c in _read(autograded / "04_test.ipynb")["cells"])
    assert "03_train did not produce checkpoints/srgan/best.pth: fix 03_train first" in said
    assert "SRGAN (stand-in)" in said


def _feedback(root, env, student) -> dict[str, str]:
    out = subprocess.run([NBGRADER, "generate_feedback", "superres", "--student", student, "--force"], cwd=root,
                         env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    return {p.stem: p.read_text() for p in (root / "course" / "feedback" / student / "superres").glob("*.html")}


def test_feedback_shows_no_hidden_test_and_marks_answers_awaiting_a_human(class_batch):
    """The feedback of all five notebooks of ``cascade`` (the reference but for one solver bug; the manual score
    given here is taken back after: the batch is shared)."""
    root, env, student = class_batch["course"], class_batch["env"], "cascade"
    pages = _feedback(root, env, student)
    html = "\n".join(pages.values())
    assert "01_models" in html or "ConvolutionalBlock" in html
    assert "hidden_check" not in html and "HIDDEN TESTS" not in html
    page = pages["03_train"]  # its only graded cell is the written schedule report (6 points)
    assert "1 answer awaiting manual grading" in page and "Written response</a> (Score" not in page
    assert "Score: 0.0 / 6.0 <a" not in page, "the answer's own heading shows no provisional 0"
    assert "awaiting manual grading" not in pages["01_models"], "autograded notebooks show their scores"
    from nbgrader.api import Gradebook

    def manual_score(score):
        with Gradebook("sqlite:///" + str(root / "course" / "gradebook.db"), course_id="sr-course-kit") as gb:
            grade = gb.find_grade("schedule_report", "03_train", "superres", student)
            grade.manual_score = score
            grade.needs_manual_grade = score is None  # what the formgrader does when a score is saved
            gb.db.commit()

    manual_score(5)
    try:
        page = _feedback(root, env, student)["03_train"]
    finally:
        manual_score(None)
    assert "awaiting manual grading" not in page and "Score: 5.0 / 6.0" in page
