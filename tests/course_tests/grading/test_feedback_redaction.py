"""The feedback never shows a hidden test's line, not even in what a cell printed: a kernel runs the hidden
tests' source, and code that reads its own memory (``gc.get_objects()``) can print it."""
from __future__ import annotations

import nbformat

from course.grading.feedback_kit import RedactHiddenTestsInOutputs

HIDDEN = 'from sr_utils.notebook import hidden_check\nhidden_check("subpixel_block")'


def test_hidden_test_lines_are_redacted_from_every_kind_of_output():
    source = f'print("visible")\n### BEGIN HIDDEN TESTS\n{HIDDEN}\n### END HIDDEN TESTS\n'
    leak = repr([source])  # what a gc walk prints: the cell's source, escaped
    cell = nbformat.v4.new_code_cell(source, outputs=[
        nbformat.v4.new_output("stream", name="stdout", text=f"visible\n{leak}"),
        nbformat.v4.new_output("error", ename="RuntimeError", evalue=f"EXFIL {leak}", traceback=[f"x {leak}"]),
        nbformat.v4.new_output("execute_result", data={"text/plain": leak, "text/html": f"<pre>{leak}</pre>"}),
    ])
    other = nbformat.v4.new_code_cell("print(1)", outputs=[nbformat.v4.new_output("stream", name="stdout",
                                                                                     text="1\n")])
    nb = nbformat.v4.new_notebook(cells=[cell, other])
    nb, _ = RedactHiddenTestsInOutputs()(nb, {})  # (as nbconvert calls it: only when enabled)
    text = repr(list(nb.cells[0].outputs))
    for line in HIDDEN.splitlines():
        assert line not in text, line
    assert "[hidden test]" in text and "visible" in text and "EXFIL" in text
    assert nb.cells[1].outputs[0]["text"] == "1\n"
    assert HIDDEN in nb.cells[0].source, "the source is ClearHiddenTests' to clear, not this preprocessor's"
