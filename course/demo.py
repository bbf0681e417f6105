"""``python -m course demo`` (``make demo``): the kit's whole story on the bundled photos, offline.

samples -> SRResNet -> SRGAN (the reference solution, trained by :func:`sr_utils.trainer.train` with the
``cpu-small`` profile) -> tables -> pictures -> report -> the student release built and the reference graded by
the grading command ``make grade`` runs (:func:`course.grade.grade`, in its bubblewrap sandbox where one can be
built here) -> a small MOS study of the outputs answered by scripted raters (:mod:`course.mos.scripted_study`).
Every step calls the same functions as the notebooks and the command line.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from course.grading.contract import DATA_DIR_ENV, SOURCE_DIR, SUBMITTED_DIR
from course.paths import KIT_ROOT as REPO
from course.paths import ToolMissing, nbgrader_executable, tool_env
from course.roster import import_roster

__all__ = ["run_demo", "copy_course", "grade_reference"]

STUDENT = "reference"  # the reference solution's student id (course/roster.example.csv)


def run_demo(out_dir, data_dir=None, grade: bool = True, study: bool = True, progress: bool = True, log=print,
             overrides: dict | None = None) -> dict:
    """Run the demo under ``out_dir``; ``overrides`` change both training configurations (e.g.
    ``{"iterations": 2}`` in tests). Returns a summary (validation PSNRs, gain over bicubic, grades, seconds)."""
    from data_tools.samples import ensure_sample_data
    from sr_utils.checkpoint import load_labelled_generator
    from sr_utils.evaluation import evaluate_methods, mean_rows, methods_for, split_outputs
    from sr_utils.inference import super_resolve_split
    from sr_utils.lists import default_data_dir, human_eval_list, submission_folder, test_lists
    from sr_utils.plotting import comparison_grid
    from sr_utils.report import write_report
    from sr_utils.tables import write_tables
    from sr_utils.trainer import TrainConfig, train

    from .reference import load_reference

    t0 = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = ensure_sample_data(data_dir or default_data_dir(), progress=progress)
    log(f"[1/7] data: bundled samples in {data}")
    models, solver = load_reference()
    summary = {"out_dir": str(out)}
    for k, stage in enumerate(("srresnet", "srgan"), start=2):
        cfg = TrainConfig.from_profile("cpu-small", stage, data_dir=str(data), content="mse",
                                       srresnet_checkpoint=str(out / "srresnet" / "best.pth"), **(overrides or {}))
        log(f"[{k}/7] training {stage} ({cfg.iterations} iterations, cpu-small profile"
            + (", SRGAN-MSE content: no ImageNet VGG19 weights offline)" if stage == "srgan" else ")"))
        result = train(cfg, out / stage, models, solver, progress=progress, log=log)
        summary[stage] = result["best_val_psnr"]
        summary["val_split"] = result["val_split"]
    # best.pth: chosen on the validation photos (held out of training), never on the test photos reported below
    # SRResNet, and SRGAN-MSE (no VGG weights offline)
    nets = dict(load_labelled_generator(out / stage / "best.pth", models) for stage in ("srresnet", "srgan"))
    log("[4/7] evaluating against bicubic")
    sets = test_lists(data)
    rows = evaluate_methods(methods_for(nets), sets, progress=progress)
    tables = write_tables(rows, out / "eval")
    log(tables["md"])
    first = next(iter(sets.values()))
    comparison_grid(split_outputs(methods_for(nets), first), path=out / "comparison.png")
    split, eval_list = human_eval_list(data)
    super_resolve_split(list(nets.values())[1], eval_list, out / "submission" / submission_folder(split))
    report = write_report(out)
    log(f"[5/7] pictures, the human-evaluation folder ({split}) and the report: {report}")
    means = {(r["set"], r["method"]): r["psnr"] for r in mean_rows(rows)}
    set_name = next(iter(sets))
    summary["gain_db"] = means[(set_name, "SRResNet")] - means[(set_name, "bicubic")]
    if grade:
        summary["grades"] = grade_reference(out / "grading", progress=progress, log=log, data_dir=data, report=report)
    if study:
        from .mos.scripted_study import run_demo_study

        log("[7/7] a small human-evaluation (MOS) study of these outputs, answered by two scripted raters")
        summary["mos_html"] = str(run_demo_study(out, data_dir=data, log=log)["html"])
    summary["seconds"] = time.perf_counter() - t0
    return summary


def copy_course(dest) -> Path:
    """A private copy of the course for nbgrader runs: its configuration and content -- ``nbgrader_config.py``,
    ``source/`` (without generated modules or run outputs), ``course/jupyter/`` and ``course/translations/`` --
    never the kit's code: nbgrader and the grader in the copy run the installed ``course`` package (the hidden
    checks, the plugins, the messages). ``dest`` must not exist or be empty. Returns ``dest``."""
    root = REPO
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(root / "nbgrader_config.py", dest)
    shutil.copytree(root / SOURCE_DIR, dest / SOURCE_DIR, ignore=shutil.ignore_patterns(
        "*.py", "checkpoints", "results", "submission", "__pycache__"))
    # the students' nbgrader configuration and what a hand-in holds; the other releases' translations
    for part in ("jupyter", "translations"):
        shutil.copytree(root / "course" / part, dest / "course" / part, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def grade_reference(work_dir, progress: bool = True, log=print, data_dir=None, report=None) -> dict:
    """Build the student release in a private course copy and grade the reference solution there with the grading
    command ``make grade`` runs (:func:`course.grade.grade`): sandboxed with bubblewrap where a sandbox can be
    built here (:func:`course.sandbox.probe`), else without one, said in one line with the reason and the way to
    get it. ``data_dir``: the data the notebooks read (``$SR_DATA_DIR`` while grading); ``report``: a written
    report handed in beside the notebooks. Returns the grades the grader wrote (``course/grades/``)."""
    work = Path(work_dir)
    if work.exists():
        shutil.rmtree(work)
    copy_course(work)
    try:
        nbgrader = nbgrader_executable()
    except ToolMissing:
        log("[6/7] nbgrader is not installed here (pip install -e '.[instructor]'): release and grading skipped")
        return {}
    subprocess.run([nbgrader, "generate_assignment", "superres", "--force"], cwd=work, env=tool_env(), check=True,
                   capture_output=True)
    import_roster(work, REPO / "course" / "roster.example.csv")  # names in the formgrader, not "None, None"
    sub = work / SUBMITTED_DIR / STUDENT / "superres"  # where `nbgrader collect` puts a hand-in
    sub.mkdir(parents=True)
    for nb in (work / SOURCE_DIR / "superres").glob("*.ipynb"):
        shutil.copy(nb, sub)
    if report is not None:
        shutil.copy(report, sub / "report.md")
    unsafe, no_cgroup, how = _sandbox_here()
    log(f"[6/7] release built; grading the reference solution with `python -m course.grade` (`make grade`) {how}")
    from .grade import grade

    said = []  # (the grader's own log: its summary is in course/grades/summary.txt)
    old_data = os.environ.get(DATA_DIR_ENV)
    if data_dir is not None:  # (read by the grading command and inherited by nbgrader and its kernels)
        os.environ[DATA_DIR_ENV] = str(Path(data_dir).resolve())
    try:
        result = grade("superres", work, students=[STUDENT], workers=1, unsafe=unsafe, no_cgroup=no_cgroup,
                       progress=progress, log=said.append)
    finally:
        if old_data is None:
            os.environ.pop(DATA_DIR_ENV, None)
        else:
            os.environ[DATA_DIR_ENV] = old_data
    status = next(r["status"] for r in result["results"] if r["student"] == STUDENT)
    if status != "ok":
        raise RuntimeError(f"grading the reference solution failed: {status}")
    graded = _grades_written(result, STUDENT)
    log(f"      reference solution (student {graded['student']!r}): {graded['points']:g} / "
        f"{graded['max_points']:g} autograded points ({result['seconds']:.0f} s); {result['grades']}")
    return {**graded, "release": str(work / "release"), "sandboxed": not unsafe, "grades_csv": str(result["grades"]),
            "breakdown": str(result["breakdown"]), "grading_summary": str(result["summary"])}


def _sandbox_here() -> tuple[bool, bool, str]:
    """How the grading command can run here: ``(unsafe, no_cgroup, how)``, ``how`` the words the demo prints.
    The sandbox is the grader's own test (:func:`course.sandbox.probe`); the per-worker cgroup too
    (:meth:`course.sandbox.Cgroup.create`, root with a writable cgroupfs), else per-process limits only."""
    from .sandbox import Cgroup, Limits, SandboxUnavailable, probe

    try:
        probe()
    except SandboxUnavailable as e:
        return True, False, (f"WITHOUT its sandbox (--unsafe): {e}. `make sandbox-tools` installs bubblewrap (as "
                             "root, with apt-get); the reference is trusted code, `make grade` refuses students' "
                             "without the sandbox")
    limits = Limits()
    cgroup = Cgroup.create(Cgroup.owned_name("demo"), limits.memory_bytes, limits.processes)
    if cgroup is not None:
        cgroup.remove()
        return False, False, "(sandboxed with bubblewrap, a memory + process cgroup per worker)"
    return False, True, ("(sandboxed with bubblewrap; no writable cgroup here, which needs root and a writable "
                         "cgroupfs: per-process limits only, as with --no-cgroup)")


def _grades_written(result: dict, student: str) -> dict:
    """The autograded points of ``student`` as the grader wrote them: the test cells of ``breakdown.csv`` that it
    graded automatically, and the name from ``grades.csv`` (nbgrader's export)."""
    import csv

    with open(result["breakdown"], newline="") as f:
        cells = [r for r in csv.DictReader(f) if r["student"] == student and r["auto_graded"] == "True"]
    with open(result["grades"], newline="") as f:
        row = next(r for r in csv.DictReader(f) if r["student_id"] == student)
    return {"points": sum(float(r["score"] or 0) for r in cells), "max_points": sum(float(r["max_score"] or 0)
                                                                                   for r in cells),
            "student": f"{row['first_name']} {row['last_name']}"}
