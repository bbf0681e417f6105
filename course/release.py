"""Regenerating the student release without ever deleting someone's work: ``python -m course.release superres``
(``make release``).

Each language the kit speaks has its own student version, generated from the same source: English in
``release/<assignment>/``, Chinese in ``release/zh-CN/<assignment>/`` (the source notebooks with the translation
catalogues of ``course/translations/`` applied, see :mod:`course.notebook_translation`; same cells, grade ids and
points). Only the English generation records the assignment in the gradebook.

``nbgrader generate_assignment --force`` deletes ``release/<assignment>/`` and writes it again. Students and
instructors do open the release's notebooks and work there (filled notebooks, ``checkpoints/``, ``results/``,
``submission/``, ``.ipynb_checkpoints/``), so this command first generates into a private folder and compares:

- a file the release would not contain again (anything but the generated notebooks) is *foreign*;
- a generated notebook that differs from the new one is foreign unless git says it is the committed version
  (unmodified since the last commit: a stale generated file, which regenerating is meant to replace).

With a foreign file, nothing is touched: the command lists them and says how to proceed (move them away, or
``--force``). Otherwise the new release replaces the old one. The gradebook learns the assignment's test cells
either way — :func:`record_in_gradebook` does only that, and never touches ``release/`` (the grading command uses it).
"""
from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from course.grading.contract import STATE_DIR
from course.paths import KIT_ROOT as REPO
from course.paths import ToolMissing, nbgrader_executable, tool_env
from sr_utils.i18n import LANGUAGES, check_language


__all__ = ["ReleaseError", "release_folder", "generate_into", "record_in_gradebook", "foreign_files",
           "regenerate_release"]


class ReleaseError(RuntimeError):
    """The release cannot be (re)generated; the message says why and what to do."""


def release_folder(course_root: Path, assignment: str, language: str = "en") -> Path:
    """Where the student version of ``assignment`` in ``language`` lives: ``release/<assignment>`` for English,
    ``release/<language>/<assignment>`` for the others."""
    base = Path(course_root) / "release"
    return base / assignment if language == "en" else base / check_language(language) / assignment


def generate_into(course_root: Path, assignment: str, release_root: Path, language: str = "en") -> Path:
    """``nbgrader generate_assignment`` with ``release_root`` as the release folder; returns
    ``release_root/<assignment>``. English updates the gradebook as usual; another language is generated from the
    translated sources with a throw-away gradebook, so the course's gradebook keeps the English source cells."""
    try:
        nbgrader = nbgrader_executable()
    except ToolMissing as e:
        raise ReleaseError(str(e)) from None
    options = [f"--CourseDirectory.release_directory={release_root}"]
    if language != "en":
        from course.notebook_translation import RELEASE_STUBS, translated_sources

        translated = Path(release_root).parent / f".{Path(release_root).name}-{language}-source"
        shutil.rmtree(translated, ignore_errors=True)
        try:
            translated_sources(course_root, assignment, language, translated)
        except ValueError as e:
            raise ReleaseError(str(e)) from None
        options += [f"--CourseDirectory.source_directory={translated}",
                    f"--CourseDirectory.db_url=sqlite:///{translated / 'gradebook.db'}",
                    f"--ClearSolutions.code_stub={RELEASE_STUBS[language]['code']}",
                    f"--ClearSolutions.text_stub={RELEASE_STUBS[language]['text']}"]
    out = subprocess.run([nbgrader, "generate_assignment", assignment, "--force", *options],
                         cwd=course_root, env=tool_env(), capture_output=True, text=True)
    if language != "en":
        shutil.rmtree(translated, ignore_errors=True)
    if out.returncode != 0:
        raise ReleaseError(f"nbgrader generate_assignment {assignment} failed in {course_root}:\n"
                           + (out.stderr or out.stdout)[-2000:])
    return Path(release_root) / assignment


def record_in_gradebook(course_root: Path, assignment: str) -> None:
    """Make the gradebook know ``assignment``'s notebooks and test cells without touching ``release/``."""
    state = Path(course_root) / STATE_DIR
    state.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=state, prefix="release-") as tmp:
        generate_into(course_root, assignment, Path(tmp))


def _all_files(folder: Path) -> list[str]:
    """Every entry below ``folder`` that is not a folder (files, links, FIFOs...), as relative POSIX paths;
    links are listed, never followed."""
    found = []
    for here, dirs, files in os.walk(folder, followlinks=False):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(here, d))]:
            found.append(Path(here, name).relative_to(folder).as_posix())
    return sorted(found)


def _committed_unchanged(path: Path) -> bool:
    """True when git tracks ``path`` and it has no change since the last commit."""
    try:
        tracked = subprocess.run(["git", "ls-files", "--error-unmatch", path.name], cwd=path.parent,
                                 capture_output=True).returncode == 0
        clean = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", path.name], cwd=path.parent,
                               capture_output=True).returncode == 0
    except OSError:  # no git on this machine
        return False
    return tracked and clean


def foreign_files(current: Path, generated: Path) -> list[str]:
    """What regenerating ``current`` (a release folder) from ``generated`` would lose: files the new release does
    not have, and generated files edited since they were committed (see the module doc)."""
    if not current.exists():
        return []
    new = set(_all_files(generated))
    foreign = []
    for rel in _all_files(current):
        path = current / rel
        if rel not in new or path.is_symlink():
            foreign.append(rel)
        elif not filecmp.cmp(path, generated / rel, shallow=False) and not _committed_unchanged(path):
            foreign.append(f"{rel} (edited since it was generated)")
    return foreign


def regenerate_release(course_root: Path = REPO, assignment: str = "superres", force: bool = False,
                       language: str = "en") -> Path:
    """Regenerate the ``language`` student version of ``assignment`` (:func:`release_folder`) from ``source/``;
    refuses (:class:`ReleaseError`) when that would delete or replace files that are not generated ones, unless
    ``force``. Returns the release folder."""
    course_root = Path(course_root)
    target = release_folder(course_root, assignment, language)
    work = course_root / STATE_DIR
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work, prefix="release-") as tmp:
        generated = generate_into(course_root, assignment, Path(tmp), language)
        foreign = foreign_files(target, generated)
        if foreign and not force:
            shown = "\n  ".join(foreign[:15]) + (f"\n  ... and {len(foreign) - 15} more" if len(foreign) > 15 else "")
            raise ReleaseError(
                f"{target} holds files that are not the generated release; regenerating would delete them:\n  "
                f"{shown}\nMove your work out of {target} (students work in a copy: docs/instructors.md), "
                "or run `make release FORCE=1` (`python -m course.release --force`) to delete them.")
        target.parent.mkdir(parents=True, exist_ok=True)
        old = target.with_name(f".{assignment}.old")
        if old.exists():
            shutil.rmtree(old)
        if target.exists():
            target.rename(old)
        shutil.move(str(generated), str(target))
        shutil.rmtree(old, ignore_errors=True)
    return target


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m course.release", description=__doc__.split("\n\n")[0])
    ap.add_argument("assignment", nargs="?", default="superres")
    ap.add_argument("--force", action="store_true", help="delete files in release/ that are not generated ones")
    ap.add_argument("--language", choices=LANGUAGES, action="append",
                    help="the student version(s) to write (default: every language, English first)")
    args = ap.parse_args(argv)
    from sr_utils.notebook import find_project_root

    root = find_project_root() or REPO  # the course folder holding nbgrader_config.py, from where we are
    for language in args.language or LANGUAGES:
        try:
            target = regenerate_release(root, args.assignment, force=args.force, language=language)
        except ReleaseError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(f"regenerated {target.relative_to(root)} ({language}) from source/{args.assignment}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
