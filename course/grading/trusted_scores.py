"""How a graded test cell's trusted decision becomes its score: :class:`TrustedScores` (``nbgrader_config.py`` names
it as ``course.grading.trusted_scores.TrustedScores``) and the functions that judge a cell's kernel run and rewrite
its outputs so that nbgrader's ``determine_grade`` can only give the decision."""
import re

from nbformat.v4 import new_output

from nbgrader.preprocessors import NbGraderPreprocessor

from .contract import SHOWN_NUMBER_DISPLAYED, SHOWN_NUMBER_PRINTED, SHOWN_RESULT

HIDDEN_CHECK_CALL = re.compile(r"""hidden_check\(\s*["'](\w+)["']""")
TRUSTED = "sr_kit_trusted"  # resources: {grade_id: decision}, TrustedHiddenChecks -> TrustedScores


class TrustedScores(NbGraderPreprocessor):
    """Right before ``SaveAutoGrades``: apply the decisions of :class:`TrustedHiddenChecks` again
    (:func:`settle_outputs`), whatever the preprocessors between them did to the outputs; a graded test cell with no
    decision fails (``NoTrustedVerdict``). Sandboxed grader only."""

    def preprocess(self, nb, resources):
        decided = resources.get(TRUSTED) or {}
        for i in graded_test_cells(nb):
            cell = nb.cells[i]
            settle_outputs(cell, decided.get(grade_id(cell)) or {"passed": False, "ename": "NoTrustedVerdict",
                                                                   "evalue": ""})
        return nb, resources


def grade_id(cell) -> str:
    return str(cell.metadata.get("nbgrader", {}).get("grade_id", ""))


def graded_test_cells(nb) -> dict[int, list[str]]:
    """{cell index: hidden checks its source calls (maybe none)} for every autograded test cell (a graded code cell
    that is not a solution: nbgrader scores it from its outputs)."""
    found = {}
    for i, cell in enumerate(nb.cells):
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
            found[i] = HIDDEN_CHECK_CALL.findall(cell.source)
    return found


def _one_line(text, n: int = 300) -> str:
    text = "".join(text) if isinstance(text, list) else str(text)
    return text.strip().replace("\r", " ").replace("\n", " ")[:n]


def kernel_failure(cell, reply: dict | None, recorded: bool) -> tuple[str, str] | None:
    """``(ename, evalue)`` of the first failure the kernel's run of ``cell`` shows (an error output, stderr, a reply
    that is not ``ok``; with ``recorded``, a cell with no reply did not run), or None. The kernel can hide a failure
    from this, never invent a pass: the trusted checks decide the rest."""
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return _one_line(out.get("ename", ""), 100) or "Error", _one_line(out.get("evalue", ""))
        if out.get("output_type") == "stream" and out.get("name") == "stderr":
            return "stderr", _one_line(out.get("text", ""))
    if reply is not None and reply.get("status") != "ok":
        return reply.get("ename") or "KernelError", reply.get("evalue") or reply.get("status", "")
    if reply is None and recorded:
        return "CellNotRun", ""
    return None


NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def _is_number(text) -> bool:
    text = "".join(text) if isinstance(text, list) else str(text)
    return bool(NUMBER.match(text.strip().strip("'\"").strip()))


def result_shown(cell) -> str:
    """What, among the kernel's outputs of a graded test cell, could read as a score: an ``execute_result``, a
    bare number displayed or printed on a line of its own (a code of ``KERNEL_DISAGREES_RECORD``; ``""`` if none)."""
    for out in cell.get("outputs", []):
        kind = out.get("output_type")
        if kind == "execute_result":
            return SHOWN_RESULT
        if kind == "display_data" and _is_number(out.get("data", {}).get("text/plain", "")):
            return SHOWN_NUMBER_DISPLAYED
        if kind == "stream" and any(_is_number(line) for line in
                                    ("".join(out.get("text", "")) if isinstance(out.get("text"), list)
                                     else str(out.get("text", ""))).splitlines() if line.strip()):
            return SHOWN_NUMBER_PRINTED
    return ""


def settle_outputs(cell, decision: dict) -> None:
    """Rewrite a graded test cell's outputs so that nbgrader's ``determine_grade`` can only give ``decision``:
    ``execute_result`` outputs become plain displays (their text kept for the student, no partial-credit number);
    a failed cell starts with an error output (the kernel's own, moved, when it is the reason; else a new one); a
    passed cell keeps no error or stderr output as such (shown as text). Idempotent."""
    outs = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "execute_result":
            out = new_output("display_data", data=dict(out.get("data", {})), metadata=dict(out.get("metadata", {})))
        elif decision.get("passed") and (out.get("output_type") == "error" or
                                         (out.get("output_type") == "stream" and out.get("name") == "stderr")):
            text = (f"{out.get('ename', '')}: {out.get('evalue', '')}\n" if out.get("output_type") == "error"
                    else out.get("text", ""))
            out = new_output("stream", name="stdout", text=text)
        outs.append(out)
    if not decision.get("passed"):  # its reason first: the kernel's own error output if it is the reason, else new
        ename, evalue = str(decision.get("ename") or "Failed"), str(decision.get("evalue") or "")
        at = next((k for k, o in enumerate(outs) if o.get("output_type") == "error"
                   and _one_line(o.get("ename", ""), 100) == _one_line(ename, 100)
                   and _one_line(o.get("evalue", "")) == _one_line(evalue)), None)
        first = outs.pop(at) if at is not None else new_output("error", ename=ename, evalue=evalue,
                                                                  traceback=[f"{ename}: {evalue}"])
        outs.insert(0, first)
    cell.outputs = outs
