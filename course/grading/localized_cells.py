"""Autograding a translated submission: the locked cells come back in the language of the release it came from.

nbgrader's ``OverwriteCells`` puts back the source of every locked cell (test cells, read-only instructions) from
the gradebook, which holds the English source. For a notebook of another release (``metadata.sr_kit.language``,
written by ``python -m course.release``), :class:`LocalizedOverwriteCells` does the same from the trusted
translation instead: the course's source notebook with its catalogue applied
(:func:`course.notebook_translation.translate_notebook`), never the student's copy. The translated test cells are
the same code as the English ones (the catalogue check makes sure of it), so the points are the same; only what
the student reads — instructions, test messages — is in their language.

A student who changes the language tag changes only the words they read back.
"""
from __future__ import annotations

import json
from pathlib import Path

from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import OverwriteCells


def trusted_locked_sources(course_root: Path, assignment: str, notebook: str, language: str) -> dict[str, str]:
    """``{grade_id: translated source}`` of the locked and autograded cells of ``source/<assignment>/<notebook>``
    in ``language``, from the course's own files."""
    from course.notebook_translation import catalogue_path, read_catalogue, translate_notebook

    source = Path(course_root) / "source" / assignment / f"{notebook}.ipynb"
    nb = json.loads(source.read_text(encoding="utf-8"))
    translated = translate_notebook(nb, read_catalogue(catalogue_path(course_root, language, assignment, notebook)),
                                    language)
    found = {}
    for cell in translated["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade_id") and (meta.get("locked") or (meta.get("grade") and not meta.get("solution"))):
            src = cell["source"]
            found[meta["grade_id"]] = "".join(src) if isinstance(src, list) else src
    return found


class LocalizedOverwriteCells(OverwriteCells):
    """nbgrader's ``OverwriteCells``, and then, in a translated notebook, the trusted translation of each locked
    or autograded cell (see the module doc). An English notebook is treated exactly as nbgrader does."""

    def preprocess(self, nb, resources):
        from sr_utils.i18n import notebook_language

        language = notebook_language(nb)
        if language == "en":
            return super().preprocess(nb, resources)
        nbg = resources["nbgrader"]
        # the course being graded (its source/ and translations), not the folder of this package
        course_root = CourseDirectory(config=self.config).root
        trusted = trusted_locked_sources(course_root, nbg["assignment"], nbg["notebook"], language)
        english = self._english_cells(resources)
        for cell in nb.cells:  # an untouched translated cell is not a change: nbgrader need not warn about it
            meta = cell.metadata.get("nbgrader", {})
            gid = meta.get("grade_id")
            if gid in trusted and gid in english and cell.source == trusted[gid]:
                cell.source, meta["checksum"] = english[gid]
        nb, resources = super().preprocess(nb, resources)
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            gid = meta.get("grade_id")
            if gid in trusted and (meta.get("locked") or (meta.get("grade") and not meta.get("solution"))):
                cell.source = trusted[gid]
        nb.metadata.setdefault("sr_kit", {})["language"] = language
        return nb, resources

    @staticmethod
    def _english_cells(resources) -> dict[str, tuple[str, str]]:
        """``{grade_id: (source, checksum)}`` of the notebook's cells in the gradebook (the English source)."""
        from nbgrader.api import Gradebook

        nbg = resources["nbgrader"]
        with Gradebook(nbg["db_url"]) as gb:
            notebook = gb.find_notebook(nbg["notebook"], nbg["assignment"])
            return {cell.name: (cell.source, cell.checksum) for cell in notebook.source_cells}
