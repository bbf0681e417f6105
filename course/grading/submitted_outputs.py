"""The student's own outputs in the grading view (loaded by nbgrader_config.py).

Autograde clears every output (``ClearOutput``) and re-runs the notebook with the tiny grading configuration, so
without these two preprocessors the formgrader shows the grader's re-run (a 2-block network trained for seconds)
next to the report the student wrote about their own run. Here:

* ``StashSubmittedOutputs`` (first of ``Autograde.sanitize_preprocessors``, before ``ClearOutput``) copies the
  outputs of the submitted notebook into the notebook's metadata (``sr_kit_submitted``) -- in the trusted nbgrader
  process, never seen by the kernel -- and notes which cells the course asks outputs of
  (``expected_outputs``) came without any.
* ``ShowSubmittedOutputs`` (in ``Autograde.autograde_preprocessors``, after execution and before
  ``SanitizeNotebook``) inserts, right before every manually graded answer cell, one code cell that is never run:
  its source says it holds what the student submitted, its outputs are the submitted outputs of the cells since
  the previous answer cell (each headed by the cell's grade id), and a last line says that the outputs *in* the
  cells are the grader's re-run, which decided the automatic points. A missing expected output is said there
  (``MISSING``) and listed in ``course/grades/summary.txt`` by ``python -m course.grade``.

The inserted cell carries no nbgrader metadata, so grade ids, checksums and scores are untouched; its outputs go
through ``SanitizeNotebook`` like every other output (no script runs in the instructor's browser).

The inserted cell is in the notebook's language (``metadata.sr_kit.language``; the student reads it in the
feedback): its first line is ``MARKER`` in that language, and the cell is recognised by the marker of any language
(``MARKERS``), the missing outputs by their label in any language (:func:`missing_outputs`).
"""
from __future__ import annotations

import copy
import json

from nbformat.v4 import new_code_cell, new_output
from traitlets import Dict, Integer

from nbgrader.preprocessors import NbGraderPreprocessor
from sr_utils.i18n import LANGUAGES, notebook_language

from .student_client import grader_tr

STASH_KEY = "sr_kit_submitted"
# first line of the inserted cell: how it is recognised (a submitted cell starting with it is dropped at stash)
MARKER = "# SUBMITTED OUTPUTS (the student's own run, shown as submitted; this cell is not run by the grader)"
MISSING = "submitted without outputs: {cells}"  # the line naming the cells submitted without their outputs
MARKERS = tuple(dict.fromkeys(grader_tr(MARKER, language=lang) for lang in LANGUAGES))  # in every language
MISSING_LABELS = tuple(dict.fromkeys(grader_tr(MISSING, language=lang, cells="").strip() for lang in LANGUAGES))


def _meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def _is_manual_answer(cell) -> bool:
    m = _meta(cell)
    return bool(m.get("grade") and m.get("solution"))


def _is_autograded_test(cell) -> bool:
    m = _meta(cell)
    return bool(m.get("grade") and not m.get("solution"))


class StashSubmittedOutputs(NbGraderPreprocessor):
    """Keep the submitted outputs (before ``ClearOutput``) in the notebook metadata, at most ``max_bytes``."""

    expected_outputs = Dict(help="{notebook name: [grade ids of cells whose outputs the course asks for]}"
                            ).tag(config=True)
    max_bytes = Integer(8 << 20, help="submitted outputs kept per notebook, in bytes").tag(config=True)

    def preprocess(self, nb, resources):
        nb.cells = [c for c in nb.cells if not (c.cell_type == "code" and c.source.startswith(MARKERS))]
        language = notebook_language(nb)
        kept, used = [], 0
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code" or not cell.get("outputs") or _is_autograded_test(cell):
                continue
            outputs = copy.deepcopy(cell.outputs)
            size = len(json.dumps(outputs, default=str))
            if used + size > self.max_bytes:
                outputs = [new_output("stream", name="stdout", text=grader_tr(
                    "[submitted output too large to show]", language=language) + "\n")]
                size = 0
            used += size
            kept.append({"index": index, "grade_id": _meta(cell).get("grade_id"), "outputs": outputs})
        name = resources.get("nbgrader", {}).get("notebook") or resources.get("unique_key", "")
        have = {k["grade_id"] for k in kept if k["grade_id"]}
        missing = [g for g in self.expected_outputs.get(name, []) if g not in have]
        answers = {_meta(c).get("grade_id"): i for i, c in enumerate(nb.cells) if _is_manual_answer(c)}
        nb.metadata[STASH_KEY] = {"cells": kept, "missing": missing, "answers": answers}
        return nb, resources


class ShowSubmittedOutputs(NbGraderPreprocessor):
    """Insert the stashed submitted outputs before every manually graded answer cell (a cell never run)."""

    def preprocess(self, nb, resources):
        stash = nb.metadata.pop(STASH_KEY, None)
        if stash is None:
            return nb, resources
        answers = stash.get("answers", {})
        language = notebook_language(nb)
        cells, previous, flagged = [], -1, False
        for cell in nb.cells:
            if _is_manual_answer(cell):
                # the submitted cells between the previous answer cell and this one, in the submitted order
                here = answers.get(_meta(cell).get("grade_id"))
                upto = here if here is not None else previous
                shown = [k for k in stash["cells"] if previous < k["index"] < upto]
                cells.append(self._cell(shown, [] if flagged else stash["missing"], language))
                flagged = True
                previous = max(previous, upto)
            cells.append(cell)
        nb.cells = cells
        return nb, resources

    @staticmethod
    def _cell(stashed: list[dict], missing: list[str], language: str = "en"):
        def say(message, **fields):
            return new_output("stream", name="stdout", text=grader_tr(message, language=language, **fields) + "\n")

        outputs = []
        for k in stashed:
            which = k["grade_id"] or grader_tr("#{n} (a cell the student added)", language=language, n=k["index"] + 1)
            outputs.append(say("--- submitted output of cell {which} ---", which=which))
            for out in k["outputs"]:
                outputs.append(_harmless(out, language))
        absent = sorted(missing)
        if absent:
            outputs.append(say(MISSING, cells=", ".join(absent)))
        if not stashed and not absent:
            outputs.append(say("(no submitted output in the cells above)"))
        outputs.append(say("--- the outputs inside the cells above are the grader's re-run (tiny grading "
                           "configuration): they decided the automatic points ---"))
        return new_code_cell(source=grader_tr(MARKER, language=language), outputs=outputs)


def _harmless(out, language: str = "en"):
    """A submitted output that cannot change a grade or a reason: errors and stderr become plain stdout text
    (a test cell's score and ``course.grade``'s reasons look for those); display data is kept for the sanitiser."""
    out = copy.deepcopy(out)
    kind = out.get("output_type")
    if kind == "error":
        return new_output("stream", name="stdout", text=grader_tr("[submitted error] {ename}: {evalue}",
                                                                  language=language, ename=out.get("ename"),
                                                                  evalue=out.get("evalue")) + "\n")
    if kind == "stream":
        text = out.get("text", "")
        return new_output("stream", name="stdout", text="".join(text) if isinstance(text, list) else text)
    if kind == "execute_result":
        return new_output("display_data", data=out.get("data", {}))
    if kind == "display_data":
        return new_output("display_data", data=out.get("data", {}))
    return new_output("stream", name="stdout", text=grader_tr("[submitted output of kind {kind!r} not shown]",
                                                              language=language, kind=kind) + "\n")


def missing_outputs(notebook: dict) -> list[str]:
    """Grade ids an autograded notebook (as JSON) says were submitted without their outputs (in any language)."""
    found = []
    for cell in notebook.get("cells", []):
        src = cell.get("source", "")
        if cell.get("cell_type") != "code" or not ("".join(src) if isinstance(src, list) else src).startswith(MARKERS):
            continue
        for out in cell.get("outputs", []):
            text = out.get("text", "")
            text = "".join(text) if isinstance(text, list) else text
            label = next((label for label in MISSING_LABELS if text.startswith(label)), None)
            if label is not None:
                found += [g.strip() for g in text[len(label):].split(",") if g.strip()]
    return sorted(set(found))
