"""Points come only from the trusted side, unit level: whatever outputs a kernel leaves in a
graded test cell (results, numbers, displays, forged messages, swallowed errors), nbgrader's own ``determine_grade``
gives exactly what ``TrustedHiddenChecks`` decided once ``settle_outputs`` has rewritten them; every graded test
cell of the source notebooks calls a hidden check. The whole grader against hostile submissions (the attacks
``result_first``, ``numbers_shown``, ``errors_swallowed``, ``iopub_forged`` in every notebook's kernel) is in
``tests/course_tests/grading/test_grading_sandbox.py``."""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_output

REPO = Path(__file__).resolve().parents[3]

from nbgrader.utils import determine_grade  # noqa: E402

from course.grading.limited_output_execute import KERNEL_REPLY  # noqa: E402
from course.grading import trusted_hidden_checks  # noqa: E402
from course.grading.trusted_hidden_checks import TrustedHiddenChecks  # noqa: E402
from course.grading.trusted_scores import (TrustedScores, grade_id, graded_test_cells, kernel_failure,  # noqa: E402
                                           result_shown, settle_outputs)
from course.grading.contract import KERNEL_DISAGREES_RECORD, SANDBOX_ENV, VERDICTS_ENV  # noqa: E402


def _cell(outputs, points=4, source="assert f() == 1\nhidden_check('conv_block')\n"):
    cell = new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "grade_id": "test_x", "points": points,
                                 "locked": True, "schema_version": 3}
    cell.outputs = [nbformat.from_dict(o) for o in outputs]
    return cell


def _result(text, n=1):
    return new_output("execute_result", data={"text/plain": text}, execution_count=n)


ERROR = new_output("error", ename="AssertionError", evalue="wrong shape", traceback=["AssertionError: wrong shape"])
STDERR = new_output("stream", name="stderr", text="Traceback ...\n")
HOSTILE = {  # what a kernel can leave in a cell (before, or instead of, its error)
    "nothing": [],
    "result_text": [_result("'all good'")],
    "result_number": [_result("4")],
    "result_then_error": [_result("'all good'"), ERROR],
    "number_shown": [new_output("display_data", data={"text/plain": "36"}), new_output("stream", name="stdout",
                                                                                        text="36\n")],
    "results_and_stderr": [_result("1"), _result("'ok'"), STDERR],
    "error_only": [ERROR],
}


@pytest.mark.parametrize("outputs", sorted(HOSTILE))
@pytest.mark.parametrize("passed", [True, False])
def test_determine_grade_gives_exactly_the_trusted_decision(outputs, passed):
    cell = _cell(HOSTILE[outputs])
    decision = {"passed": True} if passed else {"passed": False, "ename": "HiddenCheckFailed", "evalue": "no"}
    settle_outputs(cell, decision)
    assert determine_grade(cell) == ((4.0 if passed else 0), 4.0)
    assert not [o for o in cell.outputs if o.output_type == "execute_result"]
    if not passed:
        assert cell.outputs[0].output_type == "error"
    settle_outputs(cell, decision)  # idempotent: TrustedScores applies it again
    assert determine_grade(cell) == ((4.0 if passed else 0), 4.0)
    assert sum(o.output_type == "error" for o in cell.outputs) <= 1 + (outputs in ("result_then_error",
                                                                                     "error_only"))


def test_the_kernels_error_is_moved_first_and_is_the_reason():
    cell = _cell([_result("'all good'"), new_output("stream", name="stdout", text="hi\n"), ERROR])
    failure = kernel_failure(cell, {"status": "error", "ename": "AssertionError", "evalue": "wrong shape"},
                                     True)
    assert failure == ("AssertionError", "wrong shape")
    settle_outputs(cell, {"passed": False, "ename": failure[0], "evalue": failure[1]})
    assert [o.output_type for o in cell.outputs] == ["error", "display_data", "stream"]
    assert cell.outputs[0].evalue == "wrong shape" and cell.outputs[1].data["text/plain"] == "'all good'"


def test_the_decisions_reason_comes_first_even_after_an_error_of_the_kernel():
    cell = _cell([_result("1"), ERROR])
    decision = {"passed": False, "ename": "DiskBoundExceeded", "evalue": "wrote 400 MB\ninto its folder"}
    for _ in range(2):  # (idempotent)
        settle_outputs(cell, decision)
        assert [o.output_type for o in cell.outputs] == ["error", "display_data", "error"]
        assert cell.outputs[0].ename == "DiskBoundExceeded" and cell.outputs[2].ename == "AssertionError"


def test_a_kernel_hiding_its_failure_still_fails_on_any_sign_of_one():
    assert kernel_failure(_cell([]), {"status": "ok"}, True) is None  # (then the trusted checks decide)
    assert kernel_failure(_cell([]), {"status": "error", "ename": "E", "evalue": "v"}, True) == ("E", "v")
    assert kernel_failure(_cell([STDERR]), {"status": "ok"}, True)[0] == "stderr"
    assert kernel_failure(_cell([]), None, True) == ("CellNotRun", "")
    assert kernel_failure(_cell([]), None, False) is None


def test_results_and_numbers_a_graded_cell_shows_are_noticed():
    assert result_shown(_cell([_result("'all good'")]))
    assert result_shown(_cell([new_output("display_data", data={"text/plain": "2"})]))
    assert result_shown(_cell([new_output("stream", name="stdout", text="visible tests passed\n36\n")]))
    assert not result_shown(_cell([new_output("stream", name="stdout", text="visible tests passed\n"
                                                                                    "hidden check 'x': decided\n")]))


class _FakeServer:
    """Stands for the submission's check server: fixed verdicts."""

    unanswered = 0

    def __init__(self, verdicts):
        self.verdicts, self.asked = verdicts, []

    def send(self, op, names, language="en"):
        self.asked += names

    def answer(self):
        return {n: self.verdicts[n] for n in self.asked if n in self.verdicts}


def _notebook(cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    return nb


def test_trusted_hidden_checks_decide_mark_record_and_flag(tmp_path, monkeypatch):
    """Four cells: passed everywhere; passed in the kernel (which showed a result) but failed by the trusted side;
    failed in the kernel after showing a result; kernel-clean and without a hidden check. Scores, outputs, records."""
    folder = tmp_path / "student" / "superres"
    folder.mkdir(parents=True)
    monkeypatch.setenv(VERDICTS_ENV, str(tmp_path / "verdicts"))
    monkeypatch.delenv(SANDBOX_ENV, raising=False)
    server = _FakeServer({"a": (True, ""), "b": (False, "ConvolutionalBlock raised NotImplementedError")})
    monkeypatch.setattr(trusted_hidden_checks, "check_server_for", lambda folder, timeout: server)
    cells = [_cell([new_output("stream", name="stdout", text="visible tests passed\n")], source="hidden_check('a')"),
             _cell([_result("'all good'")], source="hidden_check('b')"),
             _cell([_result("'all good'"), ERROR], source="hidden_check('a')\nhidden_check('b')"),
             _cell([], source="assert True")]
    for i, c in enumerate(cells):
        c.metadata.nbgrader["grade_id"] = f"t{i}"
        c.metadata[KERNEL_REPLY] = {"status": "error" if i == 2 else "ok", "ename": "", "evalue": ""}
    nb = _notebook(cells)
    resources = {"metadata": {"path": str(folder)}, "nbgrader": {"student": "student", "notebook": "01_models"}}
    nb, resources = TrustedHiddenChecks().preprocess(nb, resources)
    nb, resources = TrustedScores().preprocess(nb, resources)
    assert [determine_grade(c)[0] for c in nb.cells] == [4.0, 0, 0, 4.0]
    assert server.asked == ["a", "b"]  # not again for the cell whose kernel failed
    first = nb.cells[1].outputs[0]
    assert first.ename == "HiddenCheckFailed" and "NotImplementedError" in first.evalue
    assert nb.cells[2].outputs[0].ename == "AssertionError"
    assert not any(KERNEL_REPLY in c.metadata for c in nb.cells)
    record = tmp_path / "verdicts" / "student"
    decided = json.loads((record / "cells" / "01_models.json").read_text())
    assert decided["t2"]["passed"] is False and decided["t2"]["kernel"].startswith("AssertionError")
    assert decided["t0"]["passed"] and decided["t3"]["passed"]
    flagged = (record / KERNEL_DISAGREES_RECORD).read_text()
    assert "01_models/t1 kernel_passed_trusted_failed" in flagged and "01_models/t2 execute_result" in flagged
    assert "t0" not in flagged and "t3" not in flagged
    # a cell with no decision (the preprocessors between them lost it) fails
    nb.cells.append(_cell([]))
    nb.cells[-1].metadata.nbgrader["grade_id"] = "new"
    nb, _ = TrustedScores().preprocess(nb, resources)
    assert determine_grade(nb.cells[-1])[0] == 0


def test_every_graded_test_cell_of_the_assignment_calls_a_hidden_check():
    """Under the sandboxed grader the kernel's word never passes a cell: a graded test cell without a hidden check
    would be decided by the kernel alone (it can hide its own failure)."""
    missing = []
    for path in sorted((REPO / "source" / "superres").glob("*.ipynb")):
        nb = nbformat.read(str(path), as_version=4)
        for i, names in graded_test_cells(nb).items():
            if not names:
                missing.append(f"{path.name}/{grade_id(nb.cells[i])}")
    assert not missing, missing
