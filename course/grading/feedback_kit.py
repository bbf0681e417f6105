"""The feedback pages students get (``nbgrader generate_feedback``): a manually graded answer that no one has
graded yet says "awaiting manual grading", not "Score: 0.0 / 6".

:class:`GetGradesMarkingPending` is nbgrader's ``GetGrades`` that also records, per cell, whether its grade still
waits for a human (``needs_manual_grade`` in the gradebook); :class:`KitFeedbackExporter` renders the pages with
``templates/feedback_kit``, which extends nbgrader's own feedback template and only changes how a pending cell's
score reads. :class:`RedactHiddenTestsInOutputs` removes the hidden tests' lines from what the cells printed (a
kernel runs the hidden tests' source, so code that reads its own memory can print it). All are configured in
``nbgrader_config.py``; the formgrader's own pages are not affected.

The page speaks the notebook's language (``metadata.sr_kit.language``, kept through autograde): the template
writes each of its words as ``"English" | kit_tr(nb)`` (:func:`kit_tr`, the course's catalogue ``course/locales``),
the ``<html>`` element says the language, and the placeholder of a redacted line is translated too. What
nbconvert's own cell rendering shows (prompts such as ``In [1]:``) stays as nbconvert writes it.
"""
from __future__ import annotations

from pathlib import Path

from nbconvert.exporters import HTMLExporter
from nbgrader.preprocessors import GetGrades, NbGraderPreprocessor
from sr_utils.i18n import notebook_language

import nbgrader

from .student_client import grader_tr

TEMPLATES = Path(__file__).resolve().parent / "templates"
FORMGRADER = Path(nbgrader.__file__).resolve().parent / "server_extensions" / "formgrader"
NBGRADER_TEMPLATES = FORMGRADER / "templates"
BOOTSTRAP_CSS = FORMGRADER / "static" / "node_modules" / "bootstrap" / "dist" / "css"  # the page inlines it


class GetGradesMarkingPending(GetGrades):
    """``GetGrades``, plus ``cell.metadata.nbgrader.awaiting_manual_grade`` (bool) on every graded cell."""

    def _get_score(self, cell, resources) -> None:
        super()._get_score(cell, resources)
        grade = self.gradebook.find_grade(cell.metadata["nbgrader"]["grade_id"], self.notebook_id,
                                          self.assignment_id, self.student_id)
        cell.metadata.nbgrader["awaiting_manual_grade"] = bool(grade.needs_manual_grade)


class RedactHiddenTestsInOutputs(NbGraderPreprocessor):  # (enabled by default)
    """Every line of a hidden test (``### BEGIN HIDDEN TESTS`` … ``### END HIDDEN TESTS`` in any cell's source),
    wherever it appears in an output's text (streams, errors, results, displays), becomes ``[hidden test]``.
    Runs before ``ClearHiddenTests``, which removes them from the sources only."""

    begin, end, placeholder = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS", "[hidden test]"

    def preprocess(self, nb, resources):
        placeholder = grader_tr(self.placeholder, language=notebook_language(nb))
        lines = set()
        for cell in nb.cells:
            inside = False
            for line in cell.source.splitlines():
                if self.begin in line or self.end in line:
                    lines.add(line.strip())
                    inside = self.begin in line
                elif inside and line.strip():
                    lines.add(line.strip())
        ordered = sorted(lines, key=len, reverse=True)  # (a line that holds another goes first)

        def redact(value):
            if isinstance(value, str):
                for line in ordered:
                    value = value.replace(line, placeholder)
                return value
            if isinstance(value, list):
                return [redact(v) for v in value]
            if isinstance(value, dict):
                return {k: redact(v) for k, v in value.items()}
            return value

        if ordered:
            for cell in nb.cells:
                for output in cell.get("outputs", []):
                    for key in ("text", "traceback", "evalue", "data"):
                        if key in output:
                            output[key] = redact(output[key])
        return nb, resources


def kit_tr(message: str, nb, **params) -> str:
    """The template's filter: ``message`` (an English template of ``course/locales``) with ``params``, in the
    language of notebook ``nb``."""
    return grader_tr(message, language=notebook_language(nb), **params)


class KitFeedbackExporter(HTMLExporter):
    """nbgrader's feedback page, with pending manual grades shown as such (template ``feedback_kit``), in the
    notebook's language (the template's filters ``kit_tr`` and ``kit_language``).

    ``GenerateFeedback`` configures ``HTMLExporter.template_name = "feedback"`` for every HTML exporter, ours
    included, so this class sets its own section of the configuration, which takes precedence."""

    def __init__(self, config=None, **kwargs):
        from traitlets.config import Config

        config = Config(config) if config is not None else Config()
        config.KitFeedbackExporter.template_name = "feedback_kit"  # this class's section wins over HTMLExporter's
        config.KitFeedbackExporter.extra_template_basedirs = [str(TEMPLATES), str(NBGRADER_TEMPLATES)]
        # "feedback/index.html.j2" (what ours extends) is found from nbgrader's template root
        config.KitFeedbackExporter.extra_template_paths = [str(NBGRADER_TEMPLATES), str(BOOTSTRAP_CSS)]
        super().__init__(config=config, **kwargs)

    def default_filters(self):
        yield from super().default_filters()
        yield "kit_tr", kit_tr
        yield "kit_language", notebook_language
