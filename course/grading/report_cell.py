"""The written report in the grading view (loaded by nbgrader_config.py, in ``Autograde.autograde_preprocessors``
after ``ShowSubmittedOutputs`` and before ``SanitizeNotebook``).

The report is one file of the hand-in, ``report.md`` (or ``report.pdf``) next to the notebooks
(course/jupyter/handin.py); nbgrader copies notebooks only into ``course/autograded/``, so the formgrader never
serves it. ``ShowReport`` inserts, right before the first manually graded answer of each notebook that has one
(03 ``schedule_report``, 04 ``tables_report``, 05 ``set5_report``; before the submitted outputs shown there),
one markdown cell headed ``REPORT_MARKER``:

* ``report.md``: its text (at most ``max_chars``), pictures replaced by a line naming the file -- the whole cell
  is then sanitised by ``SanitizeNotebook`` like every other markdown the student wrote (no script survives);
* ``report.pdf``: a line saying it was handed in, its size and where the instructor finds it in
  ``course/submitted/`` (a path, never a link the formgrader would serve);
* no report: ``NO_REPORT_TEXT``, also listed in ``course/grades/summary.txt`` by ``python -m course.grade``.

The cell carries no nbgrader metadata: grade ids, checksums and scores are untouched. A cell the student wrote
that holds the label (and is not one of the assignment's cells) is dropped first: nobody can forge it.

The cell is in the notebook's language (``metadata.sr_kit.language``; the student reads it in the feedback); its
label is recognised in any language (``REPORT_LABELS``).
"""
from __future__ import annotations

import os
import re

from nbformat.v4 import new_markdown_cell
from traitlets import Integer

from course import student_files
from course.jupyter import handin
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import NbGraderPreprocessor
from sr_utils.i18n import LANGUAGES, notebook_language

from .student_client import grader_tr
from .submitted_outputs import MARKERS as OUTPUTS

REPORT_LABEL = "WRITTEN REPORT (handed in by the student, shown as submitted; this cell is not graded by itself)"
REPORT_MARKER = f"**{REPORT_LABEL}**"  # (the sanitised cell holds it as HTML: look for REPORT_LABEL)
NO_REPORT_TEXT = "NO REPORT HANDED IN"
REPORT_LABELS = tuple(dict.fromkeys(grader_tr(REPORT_LABEL, language=lang) for lang in LANGUAGES))
IMAGE = re.compile(r"!\[([^\]]*)\]\(\s*<?([^)\s>]*)>?(?:\s+[\"'][^)]*[\"'])?\s*\)")


def _is_manual_answer(cell) -> bool:
    m = cell.get("metadata", {}).get("nbgrader", {})
    return bool(m.get("grade") and m.get("solution"))


def _size(n: int) -> str:
    return f"{n / (1 << 20):.1f} MB" if n >= 1 << 20 else f"{max(1, round(n / 1024))} kB"


class ShowReport(NbGraderPreprocessor):
    """Insert the student's report (or the fact that there is none) before the first manually graded answer."""

    max_chars = Integer(200_000, help="characters of report.md shown in the grading view").tag(config=True)

    def preprocess(self, nb, resources):
        nb.cells = [c for c in nb.cells if not (c.cell_type == "markdown" and any(label in c.source for label in
                                                                                  REPORT_LABELS)
                                                and not c.get("metadata", {}).get("nbgrader"))]
        first = next((i for i, c in enumerate(nb.cells) if _is_manual_answer(c)), None)
        if first is None:
            return nb, resources
        if first and nb.cells[first - 1].cell_type == "code" and nb.cells[first - 1].source.startswith(OUTPUTS):
            first -= 1  # before the submitted outputs (ShowSubmittedOutputs), which stay next to their answer
        info = resources.get("nbgrader", {})
        student, assignment = info.get("student"), info.get("assignment")
        coursedir = CourseDirectory(config=self.config)
        folder = coursedir.format_path(coursedir.submitted_directory, student, assignment)
        shown = os.path.relpath(folder, coursedir.root) if coursedir.root else folder
        nb.cells.insert(first, new_markdown_cell(self.text(folder, shown, notebook_language(nb))))
        return nb, resources

    def text(self, folder: str, shown: str, language: str = "en") -> str:
        def say(message, **fields):
            return grader_tr(message, language=language, **fields)

        found = handin.report_status(folder)
        lines = [f"**{say(REPORT_LABEL)}**", ""]
        if not found["file"]:
            return "\n".join(lines + [say("**{label}**: neither `report.md` nor `report.pdf` is in `{folder}/`.",
                                          label=say(NO_REPORT_TEXT), folder=shown)])
        if found["file"] == "report.pdf" or found["also"] == "report.pdf":
            size = found["bytes"] if found["file"] == "report.pdf" else \
                os.lstat(os.path.join(folder, "report.pdf")).st_size
            lines.append(say("`report.pdf` was handed in ({size}): open `{path}` (it is not shown here).",
                             size=_size(size), path=f"{shown}/report.pdf"))
        if found["file"] == "report.md":
            try:  # (as root: beneath the submission folder, no link followed, course/student_files.py)
                body = student_files.read_beneath(folder, "report.md", handin.MAX_FILE_BYTES).decode(
                    "utf-8", "replace")
            except (OSError, ValueError) as e:
                return "\n".join(lines + [say("`report.md` could not be read ({error}).", error=e)])
            if len(body) > self.max_chars:
                body = body[:self.max_chars] + "\n\n" + say("[... report cut at {n} characters]", n=self.max_chars)
            body = IMAGE.sub(lambda m: say("*[picture {name!r}: `{path}` in the hand-in]*", name=m.group(1),
                                           path=m.group(2)), body)
            lines += [say("`report.md` ({size}), as written:", size=_size(found["bytes"])), "", "---", "", body, "",
                      "---"]
        return "\n".join(lines)
