"""The command line's bicubic table, and the demo's plumbing (tiny iterations; `make demo` runs it in full)."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from data_tools.samples import SAMPLE_TEST
from course_fixtures import sample_data


def test_evaluate_without_checkpoints_prints_the_bicubic_table(tmp_path):
    """`python -m sr_utils evaluate` with no model: the bicubic baseline of every prepared test set."""
    data = sample_data(tmp_path / "data")
    out = subprocess.run([sys.executable, "-m", "sr_utils", "evaluate", "--data-dir", str(data), "--out",
                          str(tmp_path / "eval")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = re.findall(r"^\| (\S+) \| (\S+) \| ([\d.]+) \| ([\d.]+) \|$", out.stdout, re.M)
    assert [(r[0], r[1]) for r in rows] == [("samples_test", "bicubic")], out.stdout
    per_image = (tmp_path / "eval" / "per_image.csv").read_text().splitlines()[1:]
    assert sorted(line.split(",")[2] for line in per_image) == sorted(SAMPLE_TEST)
    for line in per_image:
        p, s = map(float, line.split(",")[3:])
        # bicubic x4 on natural photos: 22-34 dB; 8-20 dB would mean a broken pipeline
        assert 22 < p < 34 and 0.5 < s < 1, f"implausible bicubic PSNR/SSIM: {line}"
    assert "shaved" in out.stdout, "the evaluation convention must be printed under the table"


def test_demo_pipeline_writes_everything_and_grades_the_reference_with_the_grading_command(tmp_path_factory):
    """The whole demo on tiny iterations, as `make demo` runs it: training, tables, pictures, the report, the MOS
    study, and the reference graded by `python -m course.grade` (sandboxed where bubblewrap can build a sandbox
    here, else without one: see the test below)."""
    from course import sandbox as sandbox_module
    from course.demo import run_demo
    from course.sandbox import SandboxUnavailable

    tmp_path = tmp_path_factory.mktemp("demo")  # (short: the kernels' IPC socket paths are limited to 107 bytes)
    try:
        sandbox_module.probe()
        usable = True
    except SandboxUnavailable:
        usable = False
    data = sample_data(tmp_path / "data")
    small = dict(iterations=2, val_every=2, n_channels=8, n_blocks=1, batch_size=2, val_images=1)
    said = []
    s = run_demo(tmp_path / "demo", data_dir=data, progress=False, log=said.append, overrides=small)
    out = tmp_path / "demo"
    for path in ("srresnet/best.pth", "srgan/best.pth", "eval/table.md", "eval/table.csv", "eval/table.tex",
                 "eval/per_image.csv", "comparison.png", "report.md"):
        assert (out / path).is_file(), path
    assert not (out / "submission" / "set5").exists(), "the bundled photos are not Set5: the folder says samples"
    assert len(list((out / "submission" / "samples").glob("*.png"))) == len(SAMPLE_TEST)
    report = (out / "report.md").read_text()
    assert "## 3. Test results" in report and "bicubic" in report and "shaved" in report
    assert isinstance(s["gain_db"], float)
    assert "samples_val" in report, "the report says which split chose best.pth"
    assert (out / "mos" / "results" / "mos.html").is_file() and s["mos_html"].endswith("mos.html")
    _assert_graded_by_the_grading_command(s["grades"], said, out / "grading", usable)


def test_the_roster_import_names_the_students(tmp_path):
    """`make demo` imports course/roster.example.csv the way the docs say: the gradebook has the names."""
    import csv

    from nbgrader.api import Gradebook

    from course.demo import REPO, copy_course
    from course.roster import import_roster

    root = copy_course(tmp_path / "course")
    roster = tmp_path / "roster.csv"
    roster.write_text("id,first_name,last_name,email\nada,Ada,Lovelace,ada@example.org\n"
                      + "\n".join(",".join(r) for r in list(csv.reader(open(REPO / "course" / "roster.example.csv")))[1:])
                      + "\n")
    import_roster(root, roster)
    with Gradebook("sqlite:///" + str(root / "course" / "gradebook.db")) as gb:
        names = {s.id: (s.first_name, s.last_name, s.email) for s in gb.students}
    assert names == {"ada": ("Ada", "Lovelace", "ada@example.org"), "reference": ("Reference", "Solution", None)}
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        import_roster(root, tmp_path / "nope.csv")


def test_the_demo_grades_the_reference_without_a_sandbox_where_none_can_be_built(tmp_path_factory, monkeypatch):
    """Where bubblewrap cannot build a sandbox, `make demo` grades the reference with the same command without one,
    said in one line with the reason and how to get it; the points it reports are those the grader wrote."""
    tmp_path = tmp_path_factory.mktemp("demo")  # (short: the kernels' IPC socket paths are limited to 107 bytes)

    from course import sandbox as sandbox_module
    from course.demo import grade_reference
    from course.sandbox import SandboxUnavailable

    def probe(*a, **k):
        raise SandboxUnavailable("bubblewrap (bwrap) is not installed: `apt-get install bubblewrap`")

    monkeypatch.setattr(sandbox_module, "probe", probe)
    data = sample_data(tmp_path / "data")
    report = tmp_path / "report.md"
    report.write_text("# Report\n\nThe reference solution's written answers.\n")
    said = []
    g = grade_reference(tmp_path / "grading", progress=False, log=said.append, data_dir=data, report=report)
    _assert_graded_by_the_grading_command(g, said, tmp_path / "grading", usable=False)


def _assert_graded_by_the_grading_command(g: dict, said: list[str], work, usable: bool) -> None:
    """``g``: what ``grade_reference`` returned for the course copy ``work``; ``said``: the lines it logged;
    ``usable``: whether a sandbox could be built. The grading command's outputs are there, one line says how the
    reference was graded, and the demo's grades are those the grader wrote."""
    import csv

    course = work / "course"
    assert g["sandboxed"] is usable
    lines = [s for s in said if "grading the reference solution with `python -m course.grade`" in s]
    assert len(lines) == 1, said
    if usable:
        assert "sandboxed with bubblewrap" in lines[0] and "WITHOUT" not in lines[0]
    else:  # one line: that it is unsandboxed, why, and how to get the sandbox
        assert "WITHOUT its sandbox" in lines[0] and "bwrap) is not installed" in lines[0], lines[0]
        assert "make sandbox-tools" in lines[0] and "bubblewrap" in lines[0]
        assert not any("sandbox" in s for s in said if s is not lines[0]), said
    # the grading command's own outputs, and the demo's grades taken from them
    for name in ("grades.csv", "breakdown.csv", "summary.txt"):
        assert (course / "grades" / name).is_file(), name
    assert g["grades_csv"] == str(course / "grades" / "grades.csv")
    assert (course / ".grading" / "logs" / "reference.log").is_file()
    assert list((course / "feedback" / "reference" / "superres").glob("*.html"))
    with open(course / "grades" / "breakdown.csv", newline="") as f:
        cells = [r for r in csv.DictReader(f) if r["student"] == "reference" and r["auto_graded"] == "True"]
    assert g["points"] == sum(float(r["score"]) for r in cells) and g["max_points"] == sum(float(r["max_score"])
                                                                                         for r in cells)
    assert g["max_points"] > 0 and g["points"] == g["max_points"], cells  # the reference earns every point
    with open(course / "grades" / "grades.csv", newline="") as f:
        row = next(r for r in csv.DictReader(f) if r["student_id"] == "reference")
    assert g["student"] == "Reference Solution" == f"{row['first_name']} {row['last_name']}"
    assert row["report"] == "report.md", "the report handed in beside the notebooks"
    assert (work / "release" / "superres" / "01_models.ipynb").is_file()
    assert sorted(g) == sorted(["points", "max_points", "student", "release", "sandboxed", "grades_csv",
                                "breakdown", "grading_summary"])
