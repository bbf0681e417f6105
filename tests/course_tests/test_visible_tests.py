"""The visible tests of the release notebooks, judged as a student meets them.

1. notebook 01's visible ``ResidualBlock`` test checks the identity shortcut itself (not only shapes): a block
   without the shortcut fails it with a message that names the shortcut; the reference and the correct variants
   of ``tests/course_tests/grading/variants/`` (other attribute names for the batch-norms) pass it;
2. ``nbgrader validate`` shows notebook 02's hint for the "backward through the graph a second time" error whole,
   fix included (it cuts every printed line after ``Validator.width - 3`` characters);
3. an optional answer cell left as released does not raise, so Run All ends without error once the required
   answers are in.
"""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from course.paths import tool, tool_env
from course_fixtures import cell_source
from sr_utils.notebook import writefile_sources

REPO = Path(__file__).resolve().parents[2]
RELEASE = REPO / "release" / "superres"
SOURCE = REPO / "source" / "superres"
VARIANTS = Path(__file__).resolve().parent / "grading" / "variants"
NOTEBOOKS = ["01_models", "02_solver", "03_train", "04_test", "05_super_resolution"]
NBGRADER = tool("nbgrader")

SHORTCUT = "return x + self.conv_block2(self.conv_block1(x))"


def _cell(notebook: Path, grade_id: str) -> dict:
    cells = [c for c in json.loads(notebook.read_text())["cells"]
             if c["metadata"].get("nbgrader", {}).get("grade_id") == grade_id]
    assert len(cells) == 1, f"{notebook.name}: {len(cells)} cells with grade_id {grade_id}"
    return cells[0]


def _run_visible_test(grade_id: str, models_source: str, folder: Path, monkeypatch) -> None:
    """Run the release's test cell ``grade_id`` of notebook 01 with ``models_source`` as ``models.py`` in
    ``folder`` (the cell imports it from the current folder); raises what the cell raises."""
    code = cell_source(_cell(RELEASE / "01_models.ipynb", grade_id))
    assert "hidden_check" not in code, "the release holds only the visible part of a test cell"
    (folder / "models.py").write_text(models_source)
    monkeypatch.chdir(folder)
    try:
        exec(compile(code, f"<{grade_id}>", "exec"), {"__name__": "__main__"})
    finally:
        sys.modules.pop("models", None)


@pytest.fixture(scope="module")
def reference_models() -> str:
    return writefile_sources(SOURCE / "01_models.ipynb")["models.py"]


def test_residual_block_visible_test_fails_without_the_identity_shortcut(reference_models, tmp_path, monkeypatch):
    assert reference_models.count(SHORTCUT) == 1
    no_shortcut = reference_models.replace(SHORTCUT, "return self.conv_block2(self.conv_block1(x))")
    with pytest.raises(AssertionError) as e:
        _run_visible_test("test_residual_block", no_shortcut, tmp_path, monkeypatch)
    first_line = str(e.value).splitlines()[0]
    assert "identity shortcut is missing" in first_line, str(e.value)


def test_residual_block_visible_test_fails_when_the_shortcut_adds_something_else(reference_models, tmp_path,
                                                                                 monkeypatch):
    """Adding the output of the first block instead of the input is not the identity shortcut either."""
    wrong = reference_models.replace(SHORTCUT, "h = self.conv_block1(x)\n        return h + self.conv_block2(h)")
    with pytest.raises(AssertionError, match="identity shortcut"):
        _run_visible_test("test_residual_block", wrong, tmp_path, monkeypatch)


@pytest.mark.parametrize("variant", [None, "a", "b", "c"], ids=lambda v: "reference" if v is None else f"variant_{v}")
def test_residual_block_visible_test_passes_correct_blocks(variant, reference_models, tmp_path, monkeypatch, capsys):
    source = reference_models if variant is None else (VARIANTS / f"{variant}_models.py").read_text()
    _run_visible_test("test_residual_block", source, tmp_path, monkeypatch)
    assert "visible tests passed" in capsys.readouterr().out


@pytest.mark.skipif(not NBGRADER.exists(), reason="nbgrader is not installed (pip install -e '.[test]')")
def test_validate_shows_the_whole_detach_hint(tmp_path):
    """A solver whose discriminator step uses ``sr`` (not ``sr.detach()``): ``nbgrader validate`` prints the visible
    test's hint, every line of it whole, and not PyTorch's own error."""
    from nbgrader.validator import Validator

    from test_student_trial import _filled_release_notebook

    nb = _filled_release_notebook("02_solver")
    broken = 0
    for cell in nb["cells"]:
        if cell["cell_type"] == "code" and "discriminator(sr.detach())" in cell_source(cell):
            cell["source"] = cell_source(cell).replace("discriminator(sr.detach())", "discriminator(sr)")
            broken += 1
    assert broken == 1
    (tmp_path / "02_solver.ipynb").write_text(json.dumps(nb, indent=1))
    env = tool_env({k: v for k, v in os.environ.items() if k != "NBGRADER_EXECUTION"})
    out = subprocess.run([str(NBGRADER), "validate", "02_solver.ipynb"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    said = out.stdout + out.stderr
    assert "Success!" not in said, said[-3000:]
    shown = [line.strip() for line in said.splitlines()]
    hint = _hint_lines()
    assert hint[0] == "discriminator step: give the discriminator sr.detach(), not sr", hint
    assert "AssertionError: " + hint[0] in shown, said[-3000:]
    for line in hint[1:]:
        assert line in shown, (line, said[-3000:])
    assert "Trying to backward" not in said, said[-3000:]
    width = Validator().width  # validate cuts lines longer than width - 3 (indent included)
    assert len("    AssertionError: " + hint[0]) <= width - 3
    assert all(len("    " + line) <= width - 3 for line in hint[1:])


def _hint_lines() -> list[str]:
    """The lines of the AssertionError that notebook 02's SRGAN test raises for the backward-twice error."""
    code = cell_source(_cell(RELEASE / "02_solver.ipynb", "test_srgan_epoch"))
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and \
                getattr(node.exc.func, "id", None) == "AssertionError":
            return ast.literal_eval(node.exc.args[0]).splitlines()
    raise AssertionError("notebook 02's test_srgan_epoch raises no AssertionError hint")


def _top_level_raises(code: str) -> list[int]:
    """Line numbers of ``raise`` statements that run unconditionally when the cell runs (module level)."""
    lines = [ln for ln in code.splitlines() if not ln.startswith("%")]
    return [node.lineno for node in ast.parse("\n".join(lines)).body if isinstance(node, ast.Raise)]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_no_answer_cell_raises_at_module_level(name):
    """A stub ``raise NotImplementedError()`` sits inside a function (raising only when a test calls it) or under
    a flag that is off by default (an optional cell): never at a cell's top level, where Run All would stop even
    when every required answer is in."""
    for cell in json.loads((RELEASE / f"{name}.ipynb").read_text())["cells"]:
        if cell["cell_type"] == "code" and cell["metadata"].get("nbgrader", {}).get("solution"):
            assert not _top_level_raises(cell_source(cell)), (name, cell["metadata"]["nbgrader"]["grade_id"],
                                                              cell_source(cell))


def test_the_optional_schedule_cell_runs_as_released_and_writes_a_new_run_folder():
    cell = _cell(RELEASE / "03_train.ipynb", "schedule_code")
    namespace: dict = {}
    exec(compile(cell_source(cell), "<schedule_code>", "exec"), namespace)  # as released: nothing runs, nothing raises
    assert namespace["RUN_MY_SCHEDULE"] is False
    text = "\n".join(cell_source(c) for c in json.loads((RELEASE / "03_train.ipynb").read_text())["cells"])
    assert 'train_variant("l1", srresnet_config' in text, "the notebook shows a variant launched in one line"
    reference = cell_source(_cell(SOURCE / "03_train.ipynb", "schedule_code"))
    assert 'train_variant("longer", srresnet_config' in reference, "a named run: experiments/longer/srresnet/"
    assert 'output_path("checkpoints/srresnet")' not in reference, "the improvement must not overwrite the baseline"
