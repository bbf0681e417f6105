"""The student kit: what students receive, built from this repository (``python -m course.student_kit``,
``make student-kit``).

The repository holds every solution (``source/``), the reference solution (``course/reference.py``), the hidden
checks (``course/grading/``) and the instructor's tests: students never get it. They get a kit that holds only

- the student release of every assignment in ``release/`` (each language the course offers is a folder there:
  ``release/zh-CN/`` for Chinese),
- the handout and the report template (``handout.md``, ``report_template.md`` at the kit's root), and their
  translations where the course has them (``handout.zh-CN.md``, ``report_template.zh-CN.md``),
- the packages the notebooks import (``sr_utils``, ``data_tools``),
- the student environment (``pyproject.toml`` and ``environment.yml`` generated from the repository's, without
  the instructor's extras), the students' nbgrader configuration (``jupyter/``: the course's exchange and what
  a hand-in holds; ``jupyter/lab-locale/``: JupyterLab's interface language, a default setting per language) and
  the student commands (``Makefile``: ``make setup``, ``make lab``, ``make data``, ``make validate``; ``make lab
  LANGUAGE=zh-CN`` opens the Chinese release with JupyterLab in Chinese).

The kit is written twice, with the same files: a folder that is a git repository of one commit (to push to the
course's Git host) and a zip beside it (to post on the course's website). Before either is written, every file is
scanned for any line of a solution, of a hidden test, of the hidden checks or of the reference solution
(:mod:`course.student_kit_scan`) -- the solutions of every language the course is translated into included, and no
translation catalogue (``course/translations/``) ever travels; a kit with a leak is refused and nothing is written.
The kit is built in a private folder and moved into place only once complete.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

from course.paths import KIT_ROOT as REPO
from course.paths import PACKAGE
from course.student_kit_scan import find_leaks, public_texts, secret_lines

KIT_FILES = PACKAGE / "student_kit_files"
#: The kit's folder name, its zip's stem and its Python distribution's name.
KIT_NAME = "sr-course-kit-student"
#: What students need besides the packages the notebooks import: JupyterLab to work in (and its Chinese language
#: pack, for ``make lab LANGUAGE=zh-CN``), nbgrader for the Validate button and the Assignments panel. The
#: instructor's other extras (rating app, sanitiser) stay out.
STUDENT_TOOLS = ("nbgrader", "jupyterlab", "jupyterlab-language-pack-zh-cn")
#: Optional extras of the repository that students may want too: ``metrics`` (LPIPS, ``pip install -e '.[metrics]'``).
STUDENT_EXTRAS = ("metrics",)
#: Repository packages shipped as they are (the notebooks import them).
PACKAGES = ("sr_utils", "data_tools")
#: Student documents: repository path -> path in the kit.
DOCUMENTS = {"course/handout.md": "handout.md", "course/report_template.md": "report_template.md"}
#: Translated student documents, shipped when the repository has them: repository path -> path in the kit.
TRANSLATED_DOCUMENTS = {"course/handout.zh-CN.md": "handout.zh-CN.md",
                        "course/report_template.zh-CN.md": "report_template.zh-CN.md"}
#: JupyterLab's interface language for each language of the kit (``make lab LANGUAGE=zh-CN``): a default setting
#: in ``<language>/labconfig/``, which the kit's Makefile puts on ``JUPYTER_CONFIG_PATH``.
LAB_LOCALE = "lab-locale"
#: Conda's names for the PyPI packages whose names differ.
CONDA_NAMES = {"torch": "pytorch"}

__all__ = ["StudentKitError", "KIT_NAME", "kit_files", "scan_kit", "build_student_kit", "main"]


class StudentKitError(RuntimeError):
    """The kit cannot be built; the message says why and what to do."""


def _tracked(folder: str) -> list[str]:
    """Files under ``folder`` (repository-relative POSIX paths) that git tracks; without git, every file but
    caches and the modules that ``%%writefile`` cells generate."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--", folder], cwd=REPO, capture_output=True, check=True)
        files = [f for f in out.stdout.decode().split("\0") if f]
        if files:
            return sorted(f for f in files if (REPO / f).is_file())
    except (OSError, subprocess.CalledProcessError):
        pass
    found = []
    for path in sorted((REPO / folder).rglob("*")):
        rel = path.relative_to(REPO).as_posix()
        if path.is_file() and "__pycache__" not in rel and path.name not in ("models.py", "solver.py"):
            found.append(rel)
    return found


def _requirement_name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].strip().lower()


def student_dependencies() -> list[str]:
    """The kit's requirements: the repository's own dependencies plus :data:`STUDENT_TOOLS`, with the version
    ranges the repository declares (one source: ``pyproject.toml``)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project.get("optional-dependencies", {})
    tools = {}
    for requirement in extras.get("instructor", []) + extras.get("test", []):
        tools.setdefault(_requirement_name(requirement), requirement)
    missing = [name for name in STUDENT_TOOLS if name not in tools]
    if missing:
        raise StudentKitError(f"pyproject.toml's instructor extra no longer lists {', '.join(missing)}: "
                              f"the student kit needs it (STUDENT_TOOLS in {Path(__file__).name})")
    return list(project["dependencies"]) + [tools[name] for name in STUDENT_TOOLS]


def _pyproject() -> str:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    deps = "".join(f"    {json.dumps(d)},\n" for d in student_dependencies())
    extras = "".join(f"{name} = {json.dumps(project['optional-dependencies'][name])}\n"
                     for name in STUDENT_EXTRAS if name in project.get("optional-dependencies", {}))
    scripts = "".join(f"{k} = {json.dumps(v)}\n" for k, v in project.get("scripts", {}).items())
    return (f"# The student kit's environment, generated from the course repository's pyproject.toml.\n"
            f"[build-system]\nrequires = [\"setuptools>=64\"]\nbuild-backend = \"setuptools.build_meta\"\n\n"
            f"[project]\nname = \"{KIT_NAME}\"\nversion = \"{project['version']}\"\n"
            f"description = \"Student kit of the SR course: notebooks, sr_utils and data_tools\"\n"
            f"requires-python = {json.dumps(project['requires-python'])}\ndependencies = [\n{deps}]\n\n"
            f"[project.optional-dependencies]\n{extras}\n"
            f"[project.scripts]\n{scripts}\n"
            f"[tool.setuptools.packages.find]\ninclude = [\"sr_utils*\", \"data_tools*\"]\n\n"
            f"[tool.setuptools.package-data]\ndata_tools = [\"sources.json\"]\n")


def _environment_yml() -> str:
    lines = []
    for requirement in student_dependencies():
        name = _requirement_name(requirement)
        lines.append(f"  - {CONDA_NAMES.get(name, name)}{requirement[len(name):].replace(' ', '')}")
    python = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    return ("# conda users: `conda env create -f environment.yml && conda activate sr-course-kit-student`\n"
            f"name: {KIT_NAME}\nchannels:\n  - pytorch\n  - conda-forge\ndependencies:\n"
            f"  - python{python}\n  - pip\n" + "\n".join(lines) + "\n  - pip:\n      - -e .\n")


def _without_maintainer_note(text: str) -> str:
    """A translated document without the HTML comment it opens with: the translators' note naming the English
    original in the repository (``<!-- 译自 course/handout.md … -->``), which students never see rendered and whose
    path the kit does not hold."""
    if text.startswith("<!--") and "-->" in text:
        return text[text.index("-->") + 3:].lstrip("\n")
    return text


def kit_files() -> dict[str, bytes | Path]:
    """Every file of the kit: ``{path in the kit: repository file to copy, or the bytes to write}``."""
    files: dict[str, bytes | Path] = {}
    for rel in _tracked("release"):
        if rel.endswith(".ipynb"):
            files[rel] = REPO / rel
    if not files:
        raise StudentKitError("release/ holds no notebook: run `make release` first")
    for package in PACKAGES:
        for rel in _tracked(package):
            files[rel] = REPO / rel
    for rel, there in DOCUMENTS.items():
        files[there] = REPO / rel
    for rel, there in TRANSLATED_DOCUMENTS.items():
        if (REPO / rel).is_file():
            files[there] = _without_maintainer_note((REPO / rel).read_text(encoding="utf-8")).encode("utf-8")
    for rel in _tracked("course/jupyter"):  # the students' nbgrader configuration and the hand-in it submits
        files[rel[len("course/"):]] = REPO / rel
    for path in sorted((KIT_FILES / LAB_LOCALE).rglob("*.json")):
        files[f"jupyter/{path.relative_to(KIT_FILES).as_posix()}"] = path
    for name in ("Makefile", "README.md", "nbgrader_config.py"):
        files[name] = KIT_FILES / name
    files[".gitignore"] = KIT_FILES / "gitignore"
    files["pyproject.toml"] = _pyproject().encode()
    files["environment.yml"] = _environment_yml().encode()
    return files


def scan_kit(kit: Path) -> list[str]:
    """:func:`~course.student_kit_scan.find_leaks` of a built kit against what this repository holds now (empty: no leak)."""
    return find_leaks(Path(kit), secret_lines(*public_texts(kit_files())))


def _write_zip(folder: Path, zip_path: Path) -> None:
    """The kit's files (not ``.git``) under one top folder, in name order with fixed dates: the same kit gives
    the same zip."""
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder).as_posix()
            if not path.is_file() or rel == ".git" or rel.startswith(".git/"):
                continue
            info = zipfile.ZipInfo(f"{folder.name}/{rel}", date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = (0o644 << 16)
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, path.read_bytes())


def _git(folder: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "SR course kit", "GIT_AUTHOR_EMAIL": "kit@localhost",
           "GIT_COMMITTER_NAME": "SR course kit", "GIT_COMMITTER_EMAIL": "kit@localhost"}
    out = subprocess.run(["git", *args], cwd=folder, env=env, capture_output=True, text=True)
    if out.returncode:
        raise StudentKitError(f"git {' '.join(args)} failed in {folder}: {(out.stderr or out.stdout).strip()}")


def build_student_kit(out_dir=REPO / "outputs" / "student-kit", log=print) -> dict:
    """Write ``out_dir/<KIT_NAME>/`` (a git repository of one commit) and ``out_dir/<KIT_NAME>.zip``.

    Refuses, writing nothing, when ``release/`` holds no notebook or any kit file holds an instructor-only line.
    Returns ``{"folder": Path, "zip": Path, "files": int, "secrets": int}``."""
    out_dir = Path(out_dir).resolve()
    files = kit_files()
    secrets = secret_lines(*public_texts(files))
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".building-") as tmp:
        kit = Path(tmp) / KIT_NAME
        for rel, content in sorted(files.items()):
            target = kit / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, Path):
                shutil.copyfile(content, target)
            else:
                target.write_bytes(content)
        leaks = find_leaks(kit, secrets)
        if leaks:
            shown = "\n  ".join(leaks[:20])
            raise StudentKitError(f"the student kit would hold instructor-only material ({len(leaks)} lines); "
                                  f"nothing was written:\n  {shown}")
        _git(kit, "init", "-q", "-b", "main")
        _git(kit, "add", "-A")
        _git(kit, "commit", "-q", "-m", "Student kit of the SR course")
        zip_tmp = Path(tmp) / f"{KIT_NAME}.zip"
        _write_zip(kit, zip_tmp)
        folder, zip_path = out_dir / KIT_NAME, out_dir / f"{KIT_NAME}.zip"
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(kit, folder)
        os.replace(zip_tmp, zip_path)
    log(f"student kit: {folder}/ (a git repository) and {zip_path.name}: {len(files)} files, "
        f"scanned against {len(secrets)} instructor-only lines")
    return {"folder": folder, "zip": zip_path, "files": len(files), "secrets": len(secrets)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m course.student_kit", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=REPO / "outputs" / "student-kit",
                    help="where to write the kit's folder and zip (default: outputs/student-kit)")
    args = ap.parse_args(argv)
    try:
        build_student_kit(args.out)
    except StudentKitError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
