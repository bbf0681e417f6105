"""Benchmark: what grading costs, side by side in one run, on N copies of the reference submission.

Four ways of grading the same submissions, each in a fresh private course copy (same data):

1. plain ``nbgrader autograde superres`` with the hidden checks removed from the assignment (``hidden_check(...)``
   lines replaced by ``pass`` in the copy's source): what nbgrader itself costs;
2. plain ``nbgrader autograde superres`` with them (each ``hidden_check`` runs ``course.grading.run_check``: the
   trusted side, plus a student-side process);
3. ``course.grade`` (bubblewrap sandboxes; the hidden checks decided by one trusted check server per submission,
   those of 01/02 while their notebook runs, with one student-side process; each submission's nbgrader process
   and check server forked from the run's fork server, which imported them once; the whole command: intake, one
   ``nbgrader autograde --student`` per submission, breakdown, export, summary; no feedback) with 1 worker;
4. the same with ``--workers`` workers;
5. (3) with every kernel started as a new sandboxed Python and the student side in a sandbox of its own
   (``SR_KIT_KERNEL_ZYGOTE=0``) instead of both forked from the submission's zygote, which imported ipykernel, torch
   and ``sr_utils`` once.

``nbgrader generate_assignment`` runs before the clock starts in all four. Prints the wall times, seconds per
submission, the ratios to (1) and the load average before/after each (other jobs on the machine show there); the
target is (3) <= 1.3 x (1). Exits 1 if a run's grades differ from the others' (the hidden checks of (2)-(5) must
give the reference full marks), printing the cells that differ and keeping the runs' course copies to look at.

    .venv/bin/python benchmarks/grade_bench.py [--copies 4] [--workers 2]

Needs bubblewrap and the instructor extras (``pip install -e '.[instructor]'``).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from course.grading.contract import KERNEL_ZYGOTE_ENV
from course.paths import nbgrader_executable, tool_env



def make_course(root: Path, copies: int, hidden_checks: bool = True) -> Path:
    from course.demo import copy_course

    course = copy_course(root / "course_root")
    if not hidden_checks:
        for nb in (course / "source" / "superres").glob("*.ipynb"):
            data = json.loads(nb.read_text())
            for cell in data["cells"]:
                src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
                cell["source"] = "\n".join("pass  # (benchmark: hidden check removed)" if "hidden_check(" in line
                                           else line for line in src.split("\n"))
            nb.write_text(json.dumps(data, indent=1))
    for i in range(copies):
        dest = course / "course" / "submitted" / f"student{i:02d}" / "superres"
        dest.mkdir(parents=True)
        for nb in (course / "source" / "superres").glob("*.ipynb"):
            shutil.copy(nb, dest)
    return course


def scores(course: Path) -> dict:
    from nbgrader.api import Gradebook

    with Gradebook("sqlite:///" + str(course / "course" / "gradebook.db")) as gb:
        return {(s.student.id, nb.name, g.name): g.score for s in gb.assignment_submissions("superres")
                for nb in s.notebooks for g in nb.grades}


def generate_assignment(course: Path) -> None:
    """``nbgrader generate_assignment`` (the gradebook learns the test cells): before the clock starts, in every
    way of grading alike."""
    subprocess.run([nbgrader_executable(), "generate_assignment", "superres", "--force"], cwd=course, check=True,
                   capture_output=True)


def plain_autograde(course: Path) -> float:
    env = {**os.environ, "SR_DATA_DIR": str(course / "data")}
    generate_assignment(course)
    t0 = time.perf_counter()
    subprocess.run([nbgrader_executable(), "autograde", "superres", "--force"], cwd=course, env=env, check=True,
                   capture_output=True)
    return time.perf_counter() - t0


def main() -> int:
    from course.grade import grade
    from data_tools.samples import ensure_sample_data

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--copies", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    os.environ["PATH"] = tool_env()["PATH"]  # (nbgrader runs `alembic` by name)
    runs = {}
    tmp = Path(tempfile.mkdtemp(prefix="grade_bench_"))  # (kept when the grades differ: removed at the end)
    os.chmod(tmp, 0o755)  # the sandbox uid reads the data below it
    data = ensure_sample_data(tmp / "data")
    for p in [data, *data.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    os.environ["SR_DATA_DIR"] = str(data)
    for name, hidden in (("plain nbgrader, no hidden checks", False), ("plain nbgrader", True)):
        course = make_course(tmp / name.replace(" ", "_").replace(",", ""), args.copies, hidden)
        (course / "data").symlink_to(data)
        load = os.getloadavg()[0]
        seconds = plain_autograde(course)
        runs[name] = {"seconds": seconds, "scores": scores(course), "load": (load, os.getloadavg()[0])}
        print(f"{name}: {seconds:.0f} s", flush=True)
    for workers, zygote in ((1, True), (args.workers, True), (1, False)):
        name = f"course.grade, {workers} worker{'s' * (workers > 1)}" + ("" if zygote else ", no zygote")
        course = make_course(tmp / f"w{workers}{'' if zygote else '-anew'}", args.copies)
        generate_assignment(course)
        os.environ.pop(KERNEL_ZYGOTE_ENV, None)
        if not zygote:
            os.environ[KERNEL_ZYGOTE_ENV] = "0"
        load, t0 = os.getloadavg()[0], time.perf_counter()
        try:
            grade("superres", course, workers=workers, feedback=False, progress=False, log=lambda *a: None)
        finally:
            os.environ.pop(KERNEL_ZYGOTE_ENV, None)
        runs[name] = {"seconds": time.perf_counter() - t0, "scores": scores(course),
                      "load": (load, os.getloadavg()[0])}
        print(f"{name}: {runs[name]['seconds']:.0f} s", flush=True)
    base = runs["plain nbgrader, no hidden checks"]["seconds"]
    print(f"\n{args.copies} copies of the reference; wall time, per submission, ratio to plain nbgrader without "
          f"hidden checks, 1-minute load average before/after ({os.cpu_count()} cores)")
    for name, r in runs.items():
        print(f"  {name:45s} {r['seconds']:7.0f} s {r['seconds'] / args.copies:7.1f} s {r['seconds'] / base:6.2f}x"
              f"   load {r['load'][0]:.1f}/{r['load'][1]:.1f}")
    checked = {n: r["scores"] for n, r in runs.items() if n != "plain nbgrader, no hidden checks"}
    first = next(iter(checked))
    same = all(s == checked[first] for s in checked.values())
    total = sum(v or 0 for v in checked[first].values())
    print(f"grades identical across the runs with hidden checks: {same} ({total:g} points over {args.copies} copies)")
    for name, s in checked.items():  # what differs, cell by cell: (student, notebook, grade cell) -> points
        for cell in sorted(set(s) | set(checked[first])):
            if s.get(cell) != checked[first].get(cell):
                print(f"  {cell}: {first} {checked[first].get(cell)}, {name} {s.get(cell)}")
    if same:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"the runs' course copies (logs in course/.grading/logs/ of each) are kept in {tmp}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
