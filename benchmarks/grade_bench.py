"""Benchmark: sandboxed grading of N copies of the reference submission with 1 worker vs 2 workers.

Side by side in one process, each run in a fresh private course copy (same submissions, same data): the wall time
of ``course.grade.grade`` with ``--workers 1`` (the baseline: what plain ``nbgrader autograde`` does, one at a
time) and with ``--workers 2``, the ratio, and whether every per-cell grade is identical between the two runs.
Exits 1 if the grades differ or 2 workers are not faster.

    .venv/bin/python benchmarks/grade_bench.py [--copies 20] [--workers 2]

Needs bubblewrap and the instructor extras (``pip install -e '.[instructor]'``).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def make_course(root: Path, copies: int) -> Path:
    from course.demo import copy_course

    course = copy_course(root / "course_root")
    for i in range(copies):
        dest = course / "course" / "submitted" / f"student{i:02d}" / "superres"
        dest.mkdir(parents=True)
        for nb in (REPO / "source" / "superres").glob("*.ipynb"):
            shutil.copy(nb, dest)
    return course


def scores(course: Path) -> dict:
    from nbgrader.api import Gradebook

    with Gradebook("sqlite:///" + str(course / "course" / "gradebook.db")) as gb:
        return {(s.student.id, nb.name, g.name): g.score for s in gb.assignment_submissions("superres")
                for nb in s.notebooks for g in nb.grades}


def main() -> int:
    from course.grade import grade

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--copies", type=int, default=20)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
    runs = {}
    with tempfile.TemporaryDirectory(prefix="grade_bench_") as tmp:
        for workers in (1, args.workers):
            course = make_course(Path(tmp) / f"w{workers}", args.copies)
            os.environ["SR_DATA_DIR"] = str(course / "data")
            t0 = time.perf_counter()
            out = grade("superres", course, workers=workers, feedback=False, progress=True, log=lambda *a: None)
            runs[workers] = {"seconds": time.perf_counter() - t0, "scores": scores(course),
                             "ok": sum(r["status"] == "ok" for r in out["results"])}
            print(f"workers={workers}: {runs[workers]['seconds']:.0f} s for {args.copies} submissions "
                  f"({runs[workers]['seconds'] / args.copies:.1f} s each), {runs[workers]['ok']} graded without "
                  "error", flush=True)
    base, par = runs[1], runs[args.workers]
    same = base["scores"] == par["scores"]
    total = sum(v or 0 for v in base["scores"].values())
    print(f"\n{'':12s}{'1 worker':>12s}{f'{args.workers} workers':>12s}")
    print(f"{'wall time':12s}{base['seconds']:>11.0f}s{par['seconds']:>11.0f}s")
    print(f"speed-up: {base['seconds'] / par['seconds']:.2f}x; grades identical: {same} "
          f"({total:g} points over {args.copies} copies)")
    return 0 if same and par["seconds"] < base["seconds"] else 1


if __name__ == "__main__":
    sys.exit(main())
