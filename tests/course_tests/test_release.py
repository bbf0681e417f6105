"""Regenerating release/ never deletes work in it (course/release.py, `make release`), and grading never touches it."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from course.paths import tool

REPO = Path(__file__).resolve().parents[2]
NBGRADER = tool("nbgrader")
pytestmark = pytest.mark.skipif(not NBGRADER.exists(), reason="nbgrader is not installed (pip install -e '.[test]')")


@pytest.fixture
def course(tmp_path):
    """A private copy of the course (not a git repository: edited notebooks cannot be told from stale ones)."""
    from course.demo import REPO, copy_course

    root = copy_course(tmp_path / "course")
    shutil.copytree(REPO / "release", root / "release")
    return root


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_work_in_the_release_is_never_deleted_without_force(course):
    from course.release import ReleaseError, regenerate_release

    release = course / "release" / "superres"
    regenerate_release(course)  # the committed release is the generated one: nothing foreign
    (release / "checkpoints" / "srresnet").mkdir(parents=True)
    (release / "checkpoints" / "srresnet" / "best.pth").write_bytes(b"hours of training")
    (release / ".ipynb_checkpoints").mkdir()
    (release / ".ipynb_checkpoints" / "01_models-checkpoint.ipynb").write_text("{}")
    nb = json.loads((release / "04_test.ipynb").read_text())
    nb["cells"][0]["source"] = "my answers"
    (release / "04_test.ipynb").write_text(json.dumps(nb))
    before = _snapshot(release)
    with pytest.raises(ReleaseError) as e:
        regenerate_release(course)
    msg = str(e.value)
    for shown in ("checkpoints/srresnet/best.pth", ".ipynb_checkpoints/01_models-checkpoint.ipynb",
                  "04_test.ipynb (edited since it was generated)", "FORCE=1"):
        assert shown in msg, (shown, msg)
    assert "01_models.ipynb" not in msg.replace(".ipynb_checkpoints/01_models-checkpoint.ipynb", "")
    assert _snapshot(release) == before, "a refused regeneration changes nothing"
    regenerate_release(course, force=True)
    assert sorted(_snapshot(release)) == [f"{n}.ipynb" for n in
                                          ("01_models", "02_solver", "03_train", "04_test", "05_super_resolution")]
    assert "my answers" not in (release / "04_test.ipynb").read_text()


def test_the_make_target_refuses_and_says_how_to_force(course):
    (course / "release" / "superres" / "results").mkdir()
    (course / "release" / "superres" / "results" / "test_table.csv").write_text("set,method\n")
    out = subprocess.run([sys.executable, "-m", "course.release", "superres"], cwd=course, capture_output=True,
                         text=True, env={"PATH": f"{NBGRADER.parent}:/usr/bin:/bin", "PYTHONPATH": str(REPO)})
    assert out.returncode == 2, out.stdout + out.stderr
    assert "results/test_table.csv" in out.stderr and "--force" in out.stderr
    assert (course / "release" / "superres" / "results" / "test_table.csv").is_file()


def test_grading_records_the_assignment_without_touching_the_release(course):
    from nbgrader.api import Gradebook

    from course.release import record_in_gradebook

    release = course / "release" / "superres"
    (release / "submission" / "samples").mkdir(parents=True)
    (release / "submission" / "samples" / "baby.png").write_bytes(b"png")
    before = _snapshot(release)
    record_in_gradebook(course, "superres")
    assert _snapshot(release) == before
    with Gradebook("sqlite:///" + str(course / "course" / "gradebook.db"), course_id="sr-course-kit") as gb:
        assert len(gb.find_assignment("superres").notebooks) == 5
    assert not [p for p in (course / "course" / ".grading").iterdir() if p.name.startswith("release-")], \
        "the private generation folder is removed"
    shutil.rmtree(release / "submission")
