"""A scripted student: the student kit cloned and set up, its release filled in, validated, then run as a student
runs it.

The student's folder is ``release/superres/`` of a fresh clone of the student kit (``course.student_kit``, set up
with the kit's own ``make setup``; the notebooks import the kit's packages), with every answer cell filled from the
reference (the release's own cells, so a change that only the source has is not hidden), and with the results of an
earlier "GPU run" in it: checkpoints, a table and SR images. Then:

1. ``nbgrader validate`` of the five notebooks, in order, as the kit's ``make validate`` runs it: each passes, and
   the earlier results are byte-for-byte intact (validation runs in ``.grading-run/``);
2. the five notebooks run top to bottom outside nbgrader, in order (one ``nbconvert --execute`` of the five, a
   kernel each; ``SR_KIT_PROFILE=grading`` keeps training to seconds):
   notebook 03 replaces the checkpoints, 04 writes the table with honest labels (SRGAN-MSE: no VGG weights here),
   05 writes the human-evaluation images under ``submission/samples/`` (no Set5 here);
3. what the student reads agrees with what they get: notebook 04's sanity figure for bicubic on the samples is
   the table's, and the locked first cell says calmly why warnings are silenced.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from course.paths import tool
from course_fixtures import set_up_student_kit
from sr_utils.notebook import CHECK_COMMAND_ENV

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = ["01_models", "02_solver", "03_train", "04_test", "05_super_resolution"]
NBGRADER = tool("nbgrader")

pytestmark = pytest.mark.skipif(not NBGRADER.exists(), reason="nbgrader is not installed (pip install -e '.[test]')")


def _src(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _filled_release_notebook(name: str) -> dict:
    """release/superres/<name>.ipynb with each answer cell's source replaced by the reference answer of the cell
    with the same grade_id in source/ (solution markers removed)."""
    release = json.loads((REPO / "release" / "superres" / f"{name}.ipynb").read_text())
    source = json.loads((REPO / "source" / "superres" / f"{name}.ipynb").read_text())
    answers = {c["metadata"]["nbgrader"]["grade_id"]: _src(c) for c in source["cells"]
               if c["metadata"].get("nbgrader", {}).get("solution")}
    filled = 0
    for cell in release["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        if meta.get("solution"):
            answer = answers[meta["grade_id"]]
            answer = re.sub(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n", "", answer, flags=re.M)
            cell["source"] = answer
            filled += 1
    assert filled, f"{name}: no answer cell in the release"
    return release


def _digests(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def trial(tmp_path_factory):
    work = tmp_path_factory.mktemp("student")
    clone, python = set_up_student_kit(work)  # the student kit, cloned and set up by its own `make setup`
    folder = clone / "release" / "superres"
    for name in NOTEBOOKS:
        (folder / f"{name}.ipynb").write_text(json.dumps(_filled_release_notebook(name), indent=1))
    # what an earlier, long GPU run left: must survive validation untouched
    earlier = {"checkpoints/srresnet/best.pth": b"trained for 6 hours on a GPU",
               "checkpoints/srgan/best.pth": b"trained for 2 more hours",
               "checkpoints/srresnet/curves.png": b"my loss curves",
               "results/test_table.csv": b"set,method,psnr,ssim\nSet5,SRResNet,31.9,0.90\n",
               "submission/samples/baby.png": b"my SRGAN picture"}
    for rel, data_bytes in earlier.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data_bytes)
    # the kit's defaults: data in <kit>/data (its nbgrader_config.py marks the root), no VGG weights (SRGAN-MSE)
    env = {k: v for k, v in os.environ.items()
           if k not in ("NBGRADER_EXECUTION", "SR_VGG19_WEIGHTS", "SR_DATA_DIR", CHECK_COMMAND_ENV)}
    env.update(TORCH_HOME=str(work / "torch-home"), PATH=str(python.parent) + os.pathsep + env.get("PATH", ""))
    imported = subprocess.run([str(python), "-c", "import sr_utils, data_tools; print(sr_utils.__file__); "
                               "print(data_tools.__file__)"], cwd=folder, env=env, capture_output=True, text=True)
    before = _digests(folder)
    # (the kit environment's python: its bin/ has no nbgrader command, since the packages come from this one's)
    out = subprocess.run([str(python), "-m", "nbgrader", "validate", *(f"{name}.ipynb" for name in NOTEBOOKS)],
                         cwd=folder, env=env, capture_output=True, text=True, timeout=1800)
    validation = (out.returncode, out.stdout + out.stderr)
    after_validation = _digests(folder)
    out = subprocess.run([str(python), "-m", "nbconvert", "--to", "notebook", "--execute", "--inplace",
                          "--ExecutePreprocessor.timeout=900", *(f"{name}.ipynb" for name in NOTEBOOKS)],
                         cwd=folder, env={**env, "SR_KIT_PROFILE": "grading"}, capture_output=True, text=True)
    run = (out.returncode, out.stderr[-3000:])
    return dict(clone=clone, folder=folder, earlier=earlier, before=before, after_validation=after_validation,
                validation=validation, run=run, imported=(imported.returncode, imported.stdout + imported.stderr))


def test_the_notebooks_use_the_kits_own_packages_and_data_folder(trial):
    code, said = trial["imported"]
    assert code == 0, said
    clone = trial["clone"].resolve()
    for path in said.split():
        assert Path(path).resolve().is_relative_to(clone), f"imported from {path}, not from the kit {clone}"
    assert any((clone / "data").iterdir()), "the sample photos are built in the kit's data/ folder"


def test_every_filled_notebook_validates(trial):
    code, out = trial["validation"]
    assert code == 0 and out.count("Success! Your notebook passes all the tests.") == len(NOTEBOOKS), out[-6000:]


def test_validation_leaves_every_byte_of_the_students_results(trial):
    before, after = trial["before"], trial["after_validation"]
    changed = [rel for rel in before if after.get(rel) != before[rel]]
    assert not changed, f"validation changed {changed}"
    new = sorted(rel for rel in after if rel not in before)
    outside = [rel for rel in new if not rel.startswith(".grading-run/") and rel not in ("models.py", "solver.py")]
    assert not outside, f"validation wrote outside .grading-run/: {outside}"
    assert any(rel.startswith(".grading-run/checkpoints/srgan/") for rel in new), "notebook 03 ran in .grading-run/"
    assert any(rel.startswith(".grading-run/submission/samples/") for rel in new), "notebook 05 ran in .grading-run/"


def test_the_notebooks_run_top_to_bottom_and_write_honestly_named_results(trial):
    code, err = trial["run"]
    assert code == 0, err
    folder = trial["folder"]
    for rel, old in trial["earlier"].items():
        if rel.startswith("checkpoints/") and rel.endswith(".pth"):
            assert (folder / rel).read_bytes() != old, f"notebook 03, run by the student, writes {rel}"
    rows = list(csv.DictReader(open(folder / "results" / "test_table.csv")))
    assert {r["method"] for r in rows} == {"bicubic", "SRResNet", "SRGAN-MSE"}, rows
    assert {r["set"] for r in rows} == {"samples_test"}
    from data_tools.samples import SAMPLE_TEST

    pngs = {p.stem for p in (folder / "submission" / "samples").glob("*.png")}
    assert pngs >= set(SAMPLE_TEST) and not (folder / "submission" / "set5").exists(), pngs
    executed = json.loads((folder / "05_super_resolution.ipynb").read_text())
    said = "".join(_src({"source": o.get("text", "")}) for c in executed["cells"] if c["cell_type"] == "code"
                   for o in c.get("outputs", []))
    assert "Set5 is not prepared" in said and "python -m data_tools prepare" in said


def test_what_the_student_reads_matches_what_they_get(trial):
    folder = trial["folder"]
    rows = list(csv.DictReader(open(folder / "results" / "test_table.csv")))
    bicubic = next(float(r["psnr"]) for r in rows if r["method"] == "bicubic")
    text = "".join(_src(c) for c in json.loads((folder / "04_test.ipynb").read_text())["cells"]
                   if c["cell_type"] == "markdown")
    quoted = re.search(r"\(([\d.]+) dB on the bundled\s+`samples_test` photos", text)
    assert quoted, "notebook 04 states bicubic's PSNR on the bundled photos"
    assert abs(float(quoted.group(1)) - bicubic) < 0.1, (quoted.group(0), bicubic)
    for name in NOTEBOOKS:
        first = next(_src(c) for c in json.loads((folder / f"{name}.ipynb").read_text())["cells"]
                     if c["cell_type"] == "code")
        assert "nbgrader reads any text on stderr as an error" in first and "cost" not in first, name


def test_the_backward_twice_error_of_the_srgan_epoch_test_points_at_the_detach(tmp_path):
    """A solver whose discriminator step uses ``sr`` (not ``sr.detach()``) gets, from notebook 02's visible test,
    a hint at the discriminator step instead of PyTorch's "Trying to backward through the graph a second time"."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    from sr_utils.notebook import writefile_sources

    filled = _filled_release_notebook("02_solver")
    solver = writefile_sources(filled)["solver.py"]
    assert solver.count("discriminator(sr.detach())") == 1
    (tmp_path / "solver.py").write_text(solver.replace("discriminator(sr.detach())", "discriminator(sr)"))
    cells = [c for c in filled["cells"] if c["cell_type"] == "code" and not _src(c).startswith("%%writefile")]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(_src(c)) for c in cells])
    with pytest.raises(CellExecutionError) as e:
        NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    said = str(e.value).split("------------------")[-1]  # what the student sees below the cell's source
    assert "AssertionError" in said and "give the discriminator sr.detach(), not sr" in said, said[-2000:]
    assert "Trying to backward" not in said, said[-2000:]
