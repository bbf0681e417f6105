"""course.grading.contract: what the processes of a grading run share is declared once, and used from there.

The source of the kit is read (string constants, docstrings and comments left out): no module but the contract
and the few that define what a process without ``course`` reads (the notebook's kernel, the sandboxed student
side, the students' nbgrader) holds a ``SR_KIT_*`` variable's name, a record file's name or the grading state's
folder; and the names those few define are the contract's.
"""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from course.grading import contract

REPO = Path(__file__).resolve().parents[3]
#: Where a shared name may be written: the contract, and the modules that define what is read where ``course``
#: cannot be imported (sr_utils in a kernel, the students' nbgrader configuration and hand-in). sr_utils/config.py
#: holds $SR_KIT_PROFILE, which the grader never sets (the contract's docstring says so).
DEFINERS = {"course/grading/contract.py", "sr_utils/i18n.py", "sr_utils/notebook.py", "sr_utils/lists.py",
            "sr_utils/config.py", "course/jupyter/handin.py"}
SHARED = re.compile(r"^(SR_KIT_[A-Z_]+|SR_DATA_DIR)$")


def _sources() -> list[Path]:
    files = [REPO / "nbgrader_config.py", *sorted((REPO / "course").rglob("*.py")),
             *sorted((REPO / "sr_utils").rglob("*.py")), *sorted((REPO / "data_tools").rglob("*.py"))]
    return [f for f in files if "locales" not in f.parts and "__pycache__" not in f.parts]


def _constants(path: Path) -> list[tuple[str, int]]:
    """The string constants of a module that are not docstrings, with their lines."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    return [(n.value, n.lineno) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings]


def test_every_shared_variable_is_named_only_where_it_is_declared():
    found = {}
    for path in _sources():
        rel = path.relative_to(REPO).as_posix()
        for value, line in _constants(path):
            if SHARED.match(value):
                found.setdefault(value, []).append(f"{rel}:{line}")
    stray = {v: [w for w in where if w.split(":")[0] not in DEFINERS] for v, where in found.items()}
    stray = {v: w for v, w in stray.items() if w}
    assert not stray, f"environment variables written outside course.grading.contract (import them from it): {stray}"
    declared = {getattr(contract, n) for n in contract.__all__ if n.endswith("_ENV")}
    assert set(found) - {"SR_KIT_PROFILE"} == declared, (sorted(found), sorted(declared))


def test_records_and_the_grading_state_are_named_only_in_the_contract():
    names = {contract.OVER_DISK_RECORD, contract.KERNEL_DISAGREES_RECORD, contract.STATE_DIR, ".grading"}
    stray = [f"{path.relative_to(REPO)}:{line}: {value!r}" for path in _sources() if path.name != "contract.py"
             for value, line in _constants(path) if value in names]
    assert not stray, "\n".join(stray)


def test_the_check_command_is_the_kits_run_check_in_this_python():
    import sys

    from sr_utils.notebook import CHECK_COMMAND_ENV

    assert contract.check_command() == [sys.executable, "-I", "-m", "course.grading.run_check"]
    assert json.loads(contract.check_command_json()) == contract.check_command()
    assert contract.CHECK_COMMAND_ENV == CHECK_COMMAND_ENV


def test_sr_utils_reads_the_check_command_it_is_given_and_nothing_else(monkeypatch):
    from sr_utils.notebook import CHECK_COMMAND_ENV, check_command

    monkeypatch.delenv(CHECK_COMMAND_ENV, raising=False)
    assert check_command() is None  # a student's machine: no grader, and sr_utils does not look for one
    monkeypatch.setenv(CHECK_COMMAND_ENV, contract.check_command_json())
    assert check_command() == contract.check_command()
    for bad in ("not json", "[]", '"python"', "[1, 2]"):
        monkeypatch.setenv(CHECK_COMMAND_ENV, bad)
        assert check_command() is None, bad
    for path in sorted((REPO / "sr_utils").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"^\s*(from|import) course\b", text, re.M), f"{path} imports course"
        assert "course/grading" not in text and "run_check" not in text, f"{path} knows where the grader is"


def test_the_handin_leaves_out_what_notebooks_write_while_graded():
    """handin.py is loaded by the students' nbgrader without sr_utils: it names .grading-run itself."""
    from course.jupyter import handin

    assert contract.GRADING_SCRATCH in handin.NEVER_TRAVELS


def test_the_student_side_boots_with_the_contracts_frame_length():
    import struct

    assert f"struct.unpack({contract.FRAME_LENGTH!r}, _read({struct.calcsize(contract.FRAME_LENGTH)}))" \
        in contract.BOOT
