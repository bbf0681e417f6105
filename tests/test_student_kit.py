"""The student kit (``course.student_kit``, ``make student-kit``): what students receive holds the release, the
handout, the report template, ``sr_utils``, ``data_tools``, the student environment and the student commands, and
nothing of the instructor's: no solution line, no hidden test, no hidden check, no reference solution, no
instructor test. It is both a git repository and a zip with the same files. (That a fresh clone of it sets
itself up and runs all five notebooks filled with answers: ``tests/test_student_trial.py``.)"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from course_fixtures import shell_commands, shell_lines

from course import student_kit
from course.student_kit import KIT_NAME, StudentKitError, build_student_kit, scan_kit

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = ["01_models", "02_solver", "03_train", "04_test", "05_super_resolution"]
KIT_TOP = {".gitignore", "Makefile", "README.md", "environment.yml", "handout.md", "jupyter", "nbgrader_config.py",
           "pyproject.toml", "release", "report_template.md", "sr_utils", "data_tools"}


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    return build_student_kit(tmp_path_factory.mktemp("kit"), log=lambda *a: None)


def _git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, check=True).stdout


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def _text(cell: dict) -> str:
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])


def test_the_kit_holds_the_student_material_and_nothing_of_the_instructor(kit):
    folder = kit["folder"]
    files = _git(folder, "ls-files").split()
    assert {f.split("/")[0] for f in files} == KIT_TOP, sorted({f.split("/")[0] for f in files})
    assert sorted(f for f in files if f.endswith(".ipynb")) == [f"release/superres/{n}.ipynb" for n in NOTEBOOKS]
    for name in NOTEBOOKS:  # the committed release, byte for byte
        assert (folder / "release" / "superres" / f"{name}.ipynb").read_bytes() == \
            (REPO / "release" / "superres" / f"{name}.ipynb").read_bytes()
    for package in ("sr_utils", "data_tools"):
        shipped = {f for f in files if f.startswith(package + "/")}
        assert shipped == {p.relative_to(REPO).as_posix() for p in (REPO / package).glob("*")
                           if p.is_file() and p.suffix in (".py", ".json")}
    assert not [f for f in files if f.startswith(("source/", "course/", "tests/", "benchmarks/", "docs/"))
                or "grading/" in f or f.endswith(("reference.py", "models.py", "solver.py"))]
    assert scan_kit(folder) == []
    assert _git(folder, "status", "--porcelain") == "" and len(_git(folder, "log", "--oneline").splitlines()) == 1


def test_no_line_of_a_solution_or_hidden_test_is_in_the_kit(kit):
    """Read from ``source/`` here, independently of the kit's scanner: every solution or hidden-test line of the
    source notebooks that the release does not show (and is long enough to mean something) is in no kit file."""
    secret = set()
    for name in NOTEBOOKS:
        released = "\n".join(_text(c) for c in _cells(REPO / "release" / "superres" / f"{name}.ipynb"))
        for cell in _cells(REPO / "source" / "superres" / f"{name}.ipynb"):
            inside = False
            for line in _text(cell).splitlines():
                if re.search(r"### (BEGIN|END) (SOLUTION|HIDDEN TESTS)", line):
                    inside = "BEGIN" in line
                elif inside and len(line.strip()) >= 24 and line.strip() not in released:
                    secret.add(line.strip())
    assert len(secret) > 50, "the source notebooks hold solutions and hidden tests"
    for path in sorted(kit["folder"].rglob("*")):
        if path.is_file() and ".git" not in path.relative_to(kit["folder"]).parts:
            text = path.read_text(errors="replace")
            if path.suffix == ".ipynb":
                text = "\n".join(_text(c) for c in json.loads(text)["cells"])
            found = {line.strip() for line in text.splitlines()} & secret
            assert not found, f"{path.name} holds solution lines: {sorted(found)[:3]}"


def test_the_zip_holds_the_same_files_as_the_repository(kit):
    folder = kit["folder"]
    files = _git(folder, "ls-files").split()
    with zipfile.ZipFile(kit["zip"]) as z:
        names = sorted(z.namelist())
        assert names == sorted(f"{KIT_NAME}/{f}" for f in files)
        for f in files:
            assert z.read(f"{KIT_NAME}/{f}") == (folder / f).read_bytes(), f


def test_the_scanner_finds_a_smuggled_solution_line_and_hidden_check(kit, tmp_path):
    """Negative control: the scan that guards every build reports a solution line pasted into a shipped module
    and a hidden-check file copied into the kit."""
    copy = tmp_path / "kit"
    shutil.copytree(kit["folder"], copy)
    solver = "\n".join(_text(c) for c in _cells(REPO / "source" / "superres" / "02_solver.ipynb"))
    line = next(s.strip() for s in solver.splitlines() if "= discriminator(sr.detach())" in s)
    with open(copy / "sr_utils" / "inference.py", "a") as f:
        f.write(f"\n# {line}\n{line}\n")
    shutil.copy(REPO / "course" / "grading" / "checks.py", copy / "notes.py")
    leaks = scan_kit(copy)
    assert any(leak.startswith("sr_utils/inference.py:") and "sr.detach()" in leak for leak in leaks), leaks[:5]
    assert sum(leak.startswith("notes.py:") for leak in leaks) > 50, leaks[:5]


def test_a_kit_with_a_leak_is_refused_and_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.setitem(student_kit.DOCUMENTS, "course/reference.py", "notes.py")
    with pytest.raises(StudentKitError, match=r"notes\.py:\d+"):
        build_student_kit(tmp_path, log=lambda *a: None)
    assert list(tmp_path.iterdir()) == [], "a refused kit leaves nothing behind"


def test_the_student_environment_has_no_instructor_extras(kit):
    import tomllib

    project = tomllib.loads((kit["folder"] / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[<>=!~\[; ]", d)[0] for d in project["dependencies"]}
    repo = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert names >= {re.split(r"[<>=!~\[; ]", d)[0] for d in repo["dependencies"]} | {"nbgrader", "jupyterlab"}
    assert not names & {"starlette", "uvicorn", "nh3", "selenium", "pytest"}, names
    assert set(project.get("optional-dependencies", {})) <= {"metrics"}, project.get("optional-dependencies")
    env = (kit["folder"] / "environment.yml").read_text()
    assert "nbgrader" in env and "pytorch" in env and "starlette" not in env and "selenium" not in env


def _documents(folder: Path) -> list[Path]:
    return [folder / "README.md", folder / "handout.md", folder / "report_template.md"]


def test_every_command_the_kit_shows_exists_in_the_kit(kit):
    """The kit's README and handout show student commands: ``make X`` is a target of the kit's Makefile and
    ``python -m M sub`` answers ``--help`` with the kit's packages."""
    folder = kit["folder"]
    shown = [cmd for doc in _documents(folder) for line in shell_lines(doc) for cmd in shell_commands(line)]
    assert {c[1] for c in shown if c[0] == "make"} >= {"setup", "lab", "data", "validate"}, shown
    for cmd in shown:
        if cmd[0] == "make":
            argv = ["make", "-n", *cmd[1:2]]
        elif cmd[0] in ("python", "python3") and cmd[1] == "-m":
            argv = [sys.executable, "-m", cmd[2], *[w for w in cmd[3:4] if not w.startswith("-")], "--help"]
        else:
            raise AssertionError(f"the kit shows a command this test does not know: {' '.join(cmd)}")
        out = subprocess.run(argv, cwd=folder, capture_output=True, text=True, timeout=300,
                             env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(folder), "HOME": str(folder)})
        assert out.returncode == 0, f"`{' '.join(cmd)}` fails in the kit: {out.stdout[-800:]}{out.stderr[-800:]}"


def test_the_kit_documents_name_only_what_the_kit_holds(kit):
    """No pointer into the instructor's repository (``course/``, ``source/``, ``docs/``, ``make demo``, a clone
    of the course repository), and every link and every kit path the documents name exists in the kit."""
    folder = kit["folder"]
    for doc in _documents(folder):
        text = doc.read_text()
        for pointer in ("course/", "source/", "docs/", "make demo", "course repository", "tests/"):
            assert pointer not in text, f"{doc.name} points at the instructor's {pointer!r}"
        for target in re.findall(r"\]\(([^)#]+)\)", text):
            assert target.startswith("http") or (doc.parent / target).exists(), f"{doc.name} links to {target}"
        for named in re.findall(r"`([\w./-]+\.(?:md|toml|yml))`", text):
            if Path(named).name == "report.md":  # the student's own report, written beside the notebooks
                continue
            assert (folder / named).exists(), f"{doc.name} names {named}, which the kit does not hold"
    assert "release/superres/" in (folder / "README.md").read_text()


def test_make_student_kit_is_the_documented_command():
    out = subprocess.run(["make", "-n", "student-kit"], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0 and "course.student_kit" in out.stdout, out.stdout + out.stderr
