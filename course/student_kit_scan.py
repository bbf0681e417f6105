"""The scan that guards every student kit build (:mod:`course.student_kit`): which lines only the instructor holds
(:func:`secret_lines`: the solutions, hidden tests and mark schemes of ``source/``'s notebooks and of their
translations, every line of the hidden checks, the reference solution and the instructor's tests) and which files of
a kit hold one, or are instructor-only by their path or their content (:func:`find_leaks`).
"""
from __future__ import annotations

import copy
import json
import re
import unicodedata
from pathlib import Path

from course.paths import KIT_ROOT as REPO

#: Files of the repository no kit may hold, whatever a future change to the kit's list ships (the translation
#: catalogues hold the translated solutions and hidden tests).
SECRET_SOURCES = ("source", "course/grading", "course/reference.py", "tests", "course/translations")
#: The first line of an entry of a translation catalogue (``course.notebook_translation.HEADER``): a file holding
#: one is a catalogue, wherever it is in a kit.
CATALOGUE_ENTRY = re.compile(r"^<!-- cell [A-Za-z0-9_-]+ en [0-9a-f]{12} -->$", re.M)
#: A secret line shorter than this is too common to mean a leak (``return x``, ``import torch``).
MIN_SECRET_CHARS = 24

__all__ = ["SECRET_SOURCES", "secret_lines", "public_texts", "find_leaks"]


#: nbgrader's markers of what the release leaves out of a cell.
MARKERS = (("BEGIN SOLUTION", "END SOLUTION"), ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS"),
           ("BEGIN MARK SCHEME", "END MARK SCHEME"))


def _source_text(cell: dict) -> str:
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])


def _notebook_secret_lines(nb: dict) -> list[str]:
    """The lines of a source notebook (a dict) that its release leaves out: those between ``### BEGIN <x>`` and
    ``### END <x>`` markers, and every line of a solution cell without markers (nbgrader replaces it whole)."""
    lines = []
    for cell in nb.get("cells", []):
        source = _source_text(cell)
        inside = marked = False
        for line in source.splitlines():
            if any(begin in line for begin, _ in MARKERS):
                inside = marked = True
            elif any(end in line for _, end in MARKERS):
                inside = False
            elif inside:
                lines.append(line)
        if not marked and cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
            lines += source.splitlines()
    return lines


def _translated_secret_lines() -> list[str]:
    """:func:`_notebook_secret_lines` of every translated source notebook: ``source/<assignment>/<notebook>.ipynb``
    with its catalogue ``course/translations/<language>/<assignment>/<notebook>.md`` applied
    (:func:`course.notebook_translation.translate_notebook`). A stale entry (a translation being updated) is applied
    all the same: its text is the instructor's either way; a catalogue that cannot be read is secret line by line."""
    from course.notebook_translation import TranslationError, read_catalogue, translate_notebook

    lines = []
    for catalogue in sorted((REPO / "course" / "translations").glob("*/*/*.md")):
        language, assignment = catalogue.parent.parent.name, catalogue.parent.name
        source = REPO / "source" / assignment / f"{catalogue.stem}.ipynb"
        try:
            entries = read_catalogue(catalogue)
        except (TranslationError, OSError, ValueError):
            lines += catalogue.read_text(encoding="utf-8", errors="replace").splitlines()
            continue
        if not source.is_file():  # a catalogue of a notebook no longer in source/: all its cells are secret
            lines += [line for entry in entries.values() for line in entry.source.splitlines()]
            continue
        nb = json.loads(source.read_text(encoding="utf-8"))
        try:
            translated = translate_notebook(nb, entries, language)
        except TranslationError:
            translated = copy.deepcopy(nb)
            for cell in translated["cells"]:
                if cell.get("id") in entries:
                    cell["source"] = entries[cell["id"]].source
        lines += _notebook_secret_lines(translated)
    return lines


def _weight(line: str) -> int:
    """A line's length, a wide (CJK) character counting twice: a Chinese line says as much in half the characters."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in line)


def secret_lines(release_text: str, shipped_text: str) -> set[str]:
    """Lines (stripped, at least :data:`MIN_SECRET_CHARS` long, a CJK character counting twice) that only the
    instructor holds:

    - the solutions, hidden tests and mark schemes of ``source/``'s notebooks, and of their translations
      (``course/translations/``), less the lines the release itself shows (``release_text``, every language's: a
      given line that the solution repeats is no leak);
    - every line of the hidden checks, the reference solution and the instructor's tests, less the lines of
      anything the kit ships from the repository (``shipped_text``: a shared import or idiom is no leak)."""
    def kept(lines, public: str) -> set[str]:
        seen = {line.strip() for line in public.splitlines()}
        return {s for s in (line.strip() for line in lines) if _weight(s) >= MIN_SECRET_CHARS and s not in seen}

    solutions = []
    for notebook in sorted((REPO / "source").rglob("*.ipynb")):
        solutions += _notebook_secret_lines(json.loads(notebook.read_text(encoding="utf-8")))
    solutions += _translated_secret_lines()
    code = []
    for folder in SECRET_SOURCES[1:]:  # (the catalogues hold no .py: their solutions are the translated ones above)
        paths = [REPO / folder] if (REPO / folder).is_file() else sorted((REPO / folder).rglob("*.py"))
        for path in paths:
            code += path.read_text(errors="replace").splitlines()
    return kept(solutions, release_text) | kept(code, release_text + "\n" + shipped_text)


def public_texts(files: dict[str, bytes | Path]) -> tuple[str, str]:
    """(the release notebooks' cells, every other file the kit ships) as text; a file taken from a secret source
    (:data:`SECRET_SOURCES`) is never public, whatever the kit's list says."""
    release, shipped = [], []
    for rel, content in files.items():
        if isinstance(content, Path) and _is_secret_source(content):
            continue
        text = content.read_text(errors="replace") if isinstance(content, Path) else content.decode()
        if rel.endswith(".ipynb"):
            release.append(_cells_text(text))
        else:
            shipped.append(text)
    return "\n".join(release), "\n".join(shipped)


def _is_secret_source(path: Path) -> bool:
    try:
        rel = path.resolve().relative_to(REPO).as_posix()
    except ValueError:
        return False
    return any(rel == s or rel.startswith(s + "/") for s in SECRET_SOURCES)


def _cells_text(notebook_json: str) -> str:
    """The cells' sources of a notebook, one after the other (its JSON escapes them)."""
    return "\n".join(c["source"] if isinstance(c["source"], str) else "".join(c["source"])
                     for c in json.loads(notebook_json)["cells"])


def find_leaks(kit: Path, secrets: set[str]) -> list[str]:
    """``path:line: text`` for every line of a file under ``kit`` (``.git`` excluded) that is a secret line, and
    for every file whose path names a secret source (``source/``, ``course/grading/``, ``course/translations/`` …)
    or that is a translation catalogue under any name (:data:`CATALOGUE_ENTRY`)."""
    leaks = []
    for path in sorted(Path(kit).rglob("*")):
        rel = path.relative_to(kit).as_posix()
        if rel == ".git" or rel.startswith(".git/") or not path.is_file():
            continue
        if (any(rel == s or rel.startswith(s + "/") for s in SECRET_SOURCES) or "grading/" in rel
                or "translations/" in rel):
            leaks.append(f"{rel}: an instructor-only file")
            continue
        text = path.read_text(errors="replace")
        if CATALOGUE_ENTRY.search(text):  # a translation catalogue, under any name: it holds translated solutions
            leaks.append(f"{rel}: a translation catalogue (instructor-only: it holds the translated solutions)")
            continue
        if rel.endswith(".ipynb"):  # a notebook's JSON escapes its lines: read its cells
            try:
                text = _cells_text(text)
            except (ValueError, KeyError, TypeError):
                pass
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip() in secrets:
                leaks.append(f"{rel}:{number}: {line.strip()[:80]}")
    return leaks

