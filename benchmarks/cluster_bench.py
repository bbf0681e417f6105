"""Benchmark: grading on a Dask cluster of 1 and of 2 worker processes, side by side in one run, on N copies of
the reference submission, with the one-machine grading command (``--workers 2``) after them.

Every run grades the same copies in a fresh course copy into one PostgreSQL gradebook (started here with
``course.gradebook_server`` in a temporary folder); the cluster runs use this machine as the cluster
(``course.cluster.LocalCluster``: a scheduler and one worker process per course folder, each grading one
submission at a time, TLS on loopback). ``nbgrader generate_assignment`` runs before the clocks start. Prints the
wall time of each grading command (intake, sending, grading, reports; no feedback), seconds per submission, the
ratio of 2 workers to 1, and the load average before/after; exits 1 if the grades differ between runs (the
reference must get full marks everywhere), naming the cells that differ.

    .venv/bin/python benchmarks/cluster_bench.py [--copies 4]

Needs bubblewrap, PostgreSQL (``make gradebook-tools``) and the instructor extras.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from grade_bench import generate_assignment, make_course

from course.grading.contract import GRADEBOOK_URL_ENV
from course.paths import tool_env


def scores(url: str) -> dict:
    """(student, notebook, grade cell) -> points of the gradebook at ``url``."""
    from nbgrader.api import Gradebook

    with Gradebook(url) as gb:
        return {(s.student.id, nb.name, g.name): g.score for s in gb.assignment_submissions("superres")
                for nb in s.notebooks for g in nb.grades}


def main() -> int:
    from course.cluster import LocalCluster
    from course.demo import copy_course
    from course.grade import grade
    from course.grading.cluster import make_credentials
    from course.gradebook_server import start, stop
    from data_tools.samples import ensure_sample_data

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--copies", type=int, default=4)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cb_"))  # (short: kernels' socket paths stay below 107 bytes)
    os.chmod(tmp, 0o755)  # the sandbox uid reads the data below it; the server's user enters it
    url = start(tmp / "pg", log=lambda *a: None)
    same = False
    try:
        os.environ.update(tool_env(**{GRADEBOOK_URL_ENV: url}))  # (nbgrader runs `alembic` by name)
        data = ensure_sample_data(tmp / "data")
        for p in [data, *data.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
        os.environ["SR_DATA_DIR"] = str(data)
        tls = make_credentials(tmp / "tls")
        workers = {name: copy_course(tmp / name) for name in ("w1", "w2")}
        runs = {}
        for name, cluster_workers in (("cluster of 1 worker process", ["w1"]),
                                      ("cluster of 2 worker processes", ["w1", "w2"]),
                                      ("one machine, course.grade --workers 2", None)):
            course = make_course(tmp / f"c{len(runs)}", args.copies)
            generate_assignment(course)
            load = os.getloadavg()[0]
            if cluster_workers is None:
                t0 = time.perf_counter()
                grade("superres", course, workers=2, feedback=False, progress=False, log=lambda *a: None)
                seconds = time.perf_counter() - t0
            else:
                with LocalCluster(tls, {w: workers[w] for w in cluster_workers}, dict(os.environ),
                                  tmp / f"logs{len(runs)}") as cluster:
                    t0 = time.perf_counter()  # (the workers' start is not counted: a class's cluster is up)
                    grade("superres", course, feedback=False, progress=False, log=lambda *a: None,
                          cluster=cluster.address, cluster_credentials=tls)
                    seconds = time.perf_counter() - t0
            runs[name] = {"seconds": seconds, "scores": scores(url), "load": (load, os.getloadavg()[0])}
            print(f"{name}: {seconds:.0f} s", flush=True)
        one, two = (runs[f"cluster of {n}"]["seconds"] for n in ("1 worker process", "2 worker processes"))
        print(f"\n{args.copies} copies of the reference; wall time of the grading command, per submission, "
              f"1-minute load average before/after ({os.cpu_count()} cores)")
        for name, r in runs.items():
            print(f"  {name:40s} {r['seconds']:7.0f} s {r['seconds'] / args.copies:7.1f} s"
                  f"   load {r['load'][0]:.1f}/{r['load'][1]:.1f}")
        print(f"cluster: 2 worker processes take {two / one:.2f}x the time of 1 ({one / two:.2f}x faster)")
        first = next(iter(runs.values()))["scores"]
        same = all(r["scores"] == first for r in runs.values())
        print(f"grades identical across the runs: {same} ({sum(v or 0 for v in first.values()):g} points over "
              f"{args.copies} copies)")
        for name, r in runs.items():
            for cell in sorted(set(r["scores"]) | set(first)):
                if r["scores"].get(cell) != first.get(cell):
                    print(f"  {cell}: first run {first.get(cell)}, {name} {r['scores'].get(cell)}")
    finally:
        stop(tmp / "pg")
        if same:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"the runs' course copies and the workers' logs are kept in {tmp}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
