"""The student kit (``course.student_kit``, ``make student-kit``): what students receive holds the release, the
handout, the report template, ``sr_utils``, ``data_tools``, the student environment and the student commands, and
nothing of the instructor's: no solution line, no hidden test, no hidden check, no reference solution, no
instructor test, no translated solution and no translation catalogue. It is both a git repository and a zip with
the same files, and it ships every language of the release (``release/zh-CN/``, the Chinese handout, JupyterLab in
Chinese with ``make lab LANGUAGE=zh-CN``). (That a fresh clone of it sets itself up and runs all five notebooks
filled with answers: ``tests/course_tests/test_student_trial.py``; JupyterLab in Chinese in a browser:
``tests/course_tests/test_lab_zh_browser.py``.)"""
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
from course.student_kit import KIT_NAME, TRANSLATED_DOCUMENTS, StudentKitError, build_student_kit, scan_kit

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = ["01_models", "02_solver", "03_train", "04_test", "05_super_resolution"]
#: The translated documents the repository has now (the kit ships them when present).
TRANSLATED = {there for rel, there in TRANSLATED_DOCUMENTS.items() if (REPO / rel).is_file()}
KIT_TOP = {".gitignore", "Makefile", "README.md", "environment.yml", "handout.md", "jupyter", "nbgrader_config.py",
           "pyproject.toml", "release", "report_template.md", "sr_utils", "data_tools"} | TRANSLATED
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")


def _tracked_release_notebooks() -> list[str]:
    out = subprocess.run(["git", "ls-files", "--", "release"], cwd=REPO, capture_output=True, text=True, check=True)
    return sorted(f for f in out.stdout.split() if f.endswith(".ipynb"))


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
    released = _tracked_release_notebooks()  # every language's: release/superres/, release/zh-CN/superres/ ...
    assert {f"release/superres/{n}.ipynb" for n in NOTEBOOKS} <= set(released)
    assert sorted(f for f in files if f.endswith(".ipynb")) == released
    for rel in released:  # the committed release, byte for byte
        assert (folder / rel).read_bytes() == (REPO / rel).read_bytes(), rel
    for package in ("sr_utils", "data_tools"):
        shipped = {f for f in files if f.startswith(package + "/")}
        tracked = _git(REPO, "ls-files", "--", package).split()  # (subpackages too: locales/)
        assert shipped == {f for f in tracked if f.endswith((".py", ".json"))}
    assert not [f for f in files if f.startswith(("source/", "course/", "tests/", "benchmarks/", "docs/"))
                or "grading/" in f or f.endswith(("reference.py", "models.py", "solver.py"))]
    assert scan_kit(folder) == []
    assert _git(folder, "status", "--porcelain") == "" and len(_git(folder, "log", "--oneline").splitlines()) == 1


def _translated_cells(name: str) -> dict[str, list[dict]]:
    """``{language: cells}`` of source notebook ``name`` with each translation catalogue's entries put in by cell
    id (read here with the catalogue reader only, independently of the kit's scanner)."""
    from course.notebook_translation import read_catalogue

    out = {}
    for catalogue in sorted((REPO / "course" / "translations").glob(f"*/superres/{name}.md")):
        entries = read_catalogue(catalogue)
        cells = json.loads(json.dumps(_cells(REPO / "source" / "superres" / f"{name}.ipynb")))
        for cell in cells:
            if cell.get("id") in entries:
                cell["source"] = entries[cell["id"]].source
        out[catalogue.parent.parent.name] = cells
    return out


def _solution_lines(cells: list[dict], released: str) -> set[str]:
    """Lines between solution/hidden-test markers, and of marker-less solution cells, that ``released`` lacks."""
    secret = set()
    for cell in cells:
        inside, whole = False, not re.search(r"### BEGIN", _text(cell)) and \
            cell["metadata"].get("nbgrader", {}).get("solution")
        for line in _text(cell).splitlines():
            if re.search(r"### (BEGIN|END) (SOLUTION|HIDDEN TESTS)", line):
                inside = "BEGIN" in line
            elif (inside or whole) and len(line.strip()) >= 24 and line.strip() not in released:
                secret.add(line.strip())
    return secret


def test_no_line_of_a_solution_or_hidden_test_is_in_the_kit(kit):
    """Read from ``source/`` and the translation catalogues here, independently of the kit's scanner: every
    solution or hidden-test line of the source notebooks and of their translations that no release shows (and is
    long enough to mean something) is in no kit file."""
    secret, translated = set(), set()
    for name in NOTEBOOKS:
        released = "\n".join(_text(c) for rel in _tracked_release_notebooks() if rel.endswith(f"/{name}.ipynb")
                             for c in _cells(REPO / rel))
        secret |= _solution_lines(_cells(REPO / "source" / "superres" / f"{name}.ipynb"), released)
        for cells in _translated_cells(name).values():
            translated |= _solution_lines(cells, released)
    assert len(secret) > 50, "the source notebooks hold solutions and hidden tests"
    assert [line for line in translated - secret if CJK.search(line)], "the translations hold translated solutions"
    secret |= translated
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
    shutil.copy(REPO / "course" / "grading" / "checks" / "solver_checks.py", copy / "notes.py")
    leaks = scan_kit(copy)
    assert any(leak.startswith("sr_utils/inference.py:") and "sr.detach()" in leak for leak in leaks), leaks[:5]
    assert sum(leak.startswith("notes.py:") for leak in leaks) > 50, leaks[:5]


def test_the_scanner_finds_a_translated_solution_comment_planted_in_a_release_notebook(kit, tmp_path):
    """The translated solutions are secret too: a Chinese comment of a solution (from the zh-CN catalogue applied
    to ``source/``), which no English line holds, pasted into a release notebook's answer cell, is reported; so is a
    line of a translated reference answer (a marker-less solution cell)."""
    copy = tmp_path / "kit"
    shutil.copytree(kit["folder"], copy)
    english = "\n".join(_text(c) for n in NOTEBOOKS for c in _cells(REPO / "source" / "superres" / f"{n}.ipynb"))
    released = "\n".join(_text(c) for rel in _tracked_release_notebooks() for c in _cells(REPO / rel))
    comments, answers = [], []
    for name in NOTEBOOKS:
        for cells in _translated_cells(name).values():
            for line in _solution_lines(cells, released):
                if CJK.search(line) and line not in english:
                    (comments if line.startswith("#") or " # " in line else answers).append(line)
    assert comments and answers, "the zh-CN catalogues translate solution comments and reference answers"
    comment, answer = max(comments, key=len), max(answers, key=len)
    target = copy / _tracked_release_notebooks()[-1]  # the last language's 05 notebook (zh-CN once released)
    nb = json.loads(target.read_text())
    cell = next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("solution")
                and c["cell_type"] == "code")
    cell["source"] = _text(cell) + f"\n    {comment}\n"
    nb["cells"].append({"cell_type": "markdown", "id": "planted", "metadata": {}, "source": answer})
    target.write_text(json.dumps(nb, ensure_ascii=False))
    rel = target.relative_to(copy).as_posix()
    leaks = scan_kit(copy)
    assert any(leak.startswith(f"{rel}:") and comment[:60] in leak for leak in leaks), (comment, leaks[:5])
    assert any(leak.startswith(f"{rel}:") and answer[:60] in leak for leak in leaks), (answer, leaks[:5])


def test_translation_catalogues_are_never_shipped(kit, tmp_path, monkeypatch):
    """``course/translations/`` holds the translated solutions: no kit holds a catalogue, a catalogue copied into a
    kit under any name is reported, and a kit that would ship one is refused."""
    catalogues = sorted((REPO / "course" / "translations").rglob("*.md"))
    assert catalogues, "the repository has translation catalogues"
    files = _git(kit["folder"], "ls-files").split()
    assert not [f for f in files if "translations" in f or f.startswith("course/")], files
    assert not [f for f in files if "<!-- cell " in (kit["folder"] / f).read_text(errors="replace")]
    copy = tmp_path / "kit"
    shutil.copytree(kit["folder"], copy)
    shutil.copy(catalogues[0], copy / "release" / "notes.md")
    assert any(leak.startswith("release/notes.md: a translation catalogue") for leak in scan_kit(copy))
    monkeypatch.setitem(student_kit.DOCUMENTS, catalogues[0].relative_to(REPO).as_posix(), "glossary.md")
    out = tmp_path / "out"
    with pytest.raises(StudentKitError, match=r"glossary\.md: a translation catalogue"):
        build_student_kit(out, log=lambda *a: None)
    assert not out.exists() or list(out.iterdir()) == []


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
    assert {n.lower() for n in names} >= {re.split(r"[<>=!~\[; ]", d)[0] for d in repo["dependencies"]} | {
        "nbgrader", "jupyterlab", "jupyterlab-language-pack-zh-cn"}
    assert not names & {"starlette", "uvicorn", "nh3", "selenium", "pytest"}, names
    assert set(project.get("optional-dependencies", {})) <= {"metrics"}, project.get("optional-dependencies")
    env = (kit["folder"] / "environment.yml").read_text()
    assert "nbgrader" in env and "pytorch" in env and "starlette" not in env and "selenium" not in env
    assert "jupyterlab-language-pack-zh-cn" in env.lower()


def _documents(folder: Path) -> list[Path]:
    return [folder / "README.md", folder / "handout.md", folder / "report_template.md",
            *(folder / name for name in sorted(TRANSLATED))]


def test_every_command_the_kit_shows_exists_in_the_kit(kit):
    """The kit's README and handout show student commands: ``make X`` is a target of the kit's Makefile and
    ``python -m M sub`` answers ``--help`` with the kit's packages."""
    folder = kit["folder"]
    shown = [cmd for doc in _documents(folder) for line in shell_lines(doc) for cmd in shell_commands(line)]
    assert {c[1] for c in shown if c[0] == "make"} >= {"setup", "lab", "data", "validate"}, shown
    for cmd in shown:
        if cmd[0] == "make":
            argv = ["make", "-n", *cmd[1:]]
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


def _make_n(folder: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-n", *args], cwd=folder, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(folder), **env})


def test_the_kit_works_in_chinese_with_make_lab_language_zh_cn(kit):
    """``make lab LANGUAGE=zh-CN`` opens ``release/zh-CN/superres`` with JupyterLab's interface in Chinese: a default
    setting of the translation plugin in ``jupyter/lab-locale/zh-CN/labconfig/``, put on JUPYTER_CONFIG_PATH (never
    the user's own settings); ``make lab`` stays English, also when gettext's LANGUAGE is set in the environment; an
    unknown language is refused before anything is installed. The README says so; the Chinese documents are
    shipped (their maintainers' note naming the English original left out)."""
    folder = kit["folder"]
    for language, locale in (("en", "en"), ("zh-CN", "zh_CN")):
        settings = folder / "jupyter" / "lab-locale" / language / "labconfig" / "default_setting_overrides.json"
        assert json.loads(settings.read_text()) == {"@jupyterlab/translation-extension:plugin": {"locale": locale}}
    zh = _make_n(folder, "lab", "LANGUAGE=zh-CN")
    assert zh.returncode == 0, zh.stderr
    assert 'cd "release/zh-CN/superres"' in zh.stdout
    assert f"JUPYTER_CONFIG_PATH=\"{folder / 'jupyter'}:{folder / 'jupyter' / 'lab-locale' / 'zh-CN'}" in zh.stdout
    for out in (_make_n(folder, "lab"), _make_n(folder, "lab", LANGUAGE="en_US:en")):
        assert out.returncode == 0 and 'cd "release/superres"' in out.stdout, out.stdout + out.stderr
        assert f"{folder / 'jupyter' / 'lab-locale' / 'en'}" in out.stdout
    assert 'cd "release/zh-CN/superres"' in _make_n(folder, "validate", "LANGUAGE=zh-CN").stdout
    bad = subprocess.run(["make", "lab", "LANGUAGE=fr"], cwd=folder, capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "HOME": str(folder)})
    assert bad.returncode != 0 and "the course speaks en and zh-CN" in bad.stderr, bad.stdout + bad.stderr
    assert not (folder / ".venv").exists(), "an unknown language is refused before the kit installs anything"
    readme = (folder / "README.md").read_text()
    assert "make lab LANGUAGE=zh-CN" in readme and "release/zh-CN/superres/" in readme
    for name in TRANSLATED:
        text = (folder / name).read_text()
        assert CJK.search(text) and not text.startswith("<!--"), name
    if any(rel.startswith("release/zh-CN/") for rel in _tracked_release_notebooks()):
        assert sorted(p.name for p in (folder / "release" / "zh-CN" / "superres").glob("*.ipynb")) == \
            [f"{n}.ipynb" for n in NOTEBOOKS]


def test_make_student_kit_is_the_documented_command():
    out = subprocess.run(["make", "-n", "student-kit"], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0 and "course.student_kit" in out.stdout, out.stdout + out.stderr
