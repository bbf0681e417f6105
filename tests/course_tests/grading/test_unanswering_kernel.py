"""A kernel that stops answering after a cell timed out costs its notebook one cell timeout, not one per cell.

``LimitedOutputExecute`` (the grader's nbgrader Execute) interrupts a cell past its timeout, as nbgrader does, and
then asks the kernel for ``kernel_info``: a kernel that does not answer (here: its code ignores the interrupt and
keeps the kernel busy) gets the rest of its notebook not run, each code cell with an error saying why."""
from __future__ import annotations

import time

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from course.grading.limited_output_execute import LimitedOutputExecute


def _run(cells: list[str], timeout: int, answer_after_timeout: int) -> tuple[nbformat.NotebookNode, float]:
    nb = new_notebook(cells=[new_code_cell(src) for src in cells])
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    ep = LimitedOutputExecute(timeout=timeout, answer_after_timeout=answer_after_timeout, kernel_name="python3")
    t0 = time.monotonic()
    ep.preprocess(nb, {"metadata": {"path": "."}})
    return nb, time.monotonic() - t0


def _errors(cell) -> list[str]:
    return [o.get("ename") for o in cell.outputs if o.get("output_type") == "error"]


def test_a_kernel_that_ignores_the_interrupt_gets_the_rest_of_its_notebook_not_run():
    stuck = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass\n"
    nb, seconds = _run(["x = 1", stuck, "y = 2", "print('after')"], timeout=4, answer_after_timeout=3)
    assert "CellTimeoutError" in _errors(nb.cells[1])
    for cell in nb.cells[2:]:
        assert _errors(cell) == ["KernelNotAnswering"], cell.outputs
        assert "stopped answering" in cell.outputs[0]["evalue"]
    assert seconds < 4 + 3 + 20, f"{seconds:.0f} s: the later cells waited for the kernel"


def test_a_kernel_that_answers_after_the_interrupt_runs_the_rest():
    nb, _ = _run(["import time\nwhile True:\n    time.sleep(0.1)\n", "print('after')"], timeout=3,
                 answer_after_timeout=15)
    assert _errors(nb.cells[0]) == ["KeyboardInterrupt", "CellTimeoutError"]
    assert [o.get("text") for o in nb.cells[1].outputs] == ["after\n"]
