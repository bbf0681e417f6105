"""Helpers shared by the tests that build tiny nbgrader assignments and run Jupyter servers."""
from __future__ import annotations

import os
import signal
import subprocess


def nbgrader_cell(kind: str, source: str, **meta):
    """A code (``kind="code"``) or markdown cell with nbgrader metadata (schema 3): unlocked, not a solution, not
    graded, not a task, unless ``meta`` says otherwise (``grade_id`` is required by nbgrader)."""
    from nbformat.v4 import new_code_cell, new_markdown_cell

    cell = (new_code_cell if kind == "code" else new_markdown_cell)(source)
    cell.metadata["nbgrader"] = {"schema_version": 3, "locked": False, "solution": False, "grade": False,
                                 "task": False, **meta}
    return cell


def stop_process_group(proc: subprocess.Popen) -> None:
    """End ``proc``'s process group (it was started with ``start_new_session=True``): TERM, then KILL."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    except ProcessLookupError:
        pass
