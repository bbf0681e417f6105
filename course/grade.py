"""Grade a class: collect, autograde in parallel inside sandboxes, feedback, grades and a per-test breakdown.

    python -m course.grade superres                       # what is in course/submitted/
    python -m course.grade superres --from FOLDER         # FOLDER/<student>/[superres/]: each student's hand-in
    python -m course.grade superres --lms-zip FILE.zip    # an LMS download, unpacked member by member
    python -m course.grade superres --cluster tls://HOST:8786   # on a Dask cluster's workers (course.cluster)
    make grade                                            # the same as the first line

Every submission is autograded by nbgrader itself (the gradebook, formgrader, feedback and export keep working),
one ``nbgrader autograde --student`` process per submission, ``--workers`` at a time. Student code -- the
notebook kernels and the hidden checks -- runs in bubblewrap sandboxes (course/sandbox/): no network, only
its own grading folder writable, no view of source/, course/grading/, the gradebook or other students, limits on
CPU time, memory, file size and processes, and (as root) a tmpfs of ``--disk-mb`` as each submission's grading
folder while it runs. Without bubblewrap the command refuses unless ``--unsafe`` is given. A submission's nbgrader
process and trusted check server are forked from one process of the run that imported nbgrader, torch and the
checks once.

A hand-in (course/jupyter/handin.py) is the notebooks, the written report (``report.md`` or ``report.pdf``),
``results/``, the ``submission/`` pictures and the training curves; it is collected with its relative paths into
``course/submitted/<student>/superres/`` (checkpoints and data never travel); nbgrader copies only the notebooks
into ``course/autograded/``, and the grading view shows the report before each notebook's first written answer.

Writes ``course/grades/``: ``grades.csv`` (nbgrader export, plus the ``report`` each student handed in),
``breakdown.csv`` (one row per student and test cell, with the reason a cell lost its points), ``summary.txt``
(score histogram, most-failed checks, submissions needing manual attention, among them a missing report), and
feedback HTML in ``course/feedback/`` with hidden tests cleared.

This module is the command line and :func:`grade`; the parts are in :mod:`course.grading`: ``collection``
(collecting the class, intake), ``run_loop`` (autograding, ``workers`` at a time), ``trusted_forkserver`` (the
process the trusted ones are forked from), ``trusted_processes`` (their environment and rlimits), ``graded_folder``
(what a graded folder keeps), ``reports`` (CSV files, summary, feedback), ``permissions`` (the private course
folder, ``--shared-setup``, ``--check-permissions``).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from course.grading.collection import DEFAULT_LMS_REGEXP, collect_folders, collect_lms_zip, intake_submitted
from course.gradebook_url import gradebook_url, is_sqlite, sqlite_path
from course.grading.contract import DATA_DIR_ENV, FEEDBACK_DIR, STATE_DIR, SUBMITTED_DIR
from course.grading.errors import GradingError
from course.grading.permissions import check_permissions, close_state, private_umask, shared_setup
from course.grading.trusted_forkserver_client import TrustedForkServer
from course.grading.reports import FeedbackQueue, write_outputs
from course.grading.run_loop import autograde_all, with_compiled_imresize
from course.paths import KIT_ROOT as REPO
from course.sandbox import FIRST_SANDBOX_UID, Limits, SandboxSpec, SandboxUnavailable, probe, user_process_count

__all__ = ["grade", "main", "GradingError"]


def _ensure_assignment(course_root: Path, assignment: str) -> None:
    """The gradebook must know the assignment's test cells: `nbgrader generate_assignment` records them."""
    from nbgrader.api import Gradebook, MissingEntry

    url = gradebook_url(course_root)
    if not is_sqlite(url) or sqlite_path(url).exists():
        with Gradebook(url) as gb:
            try:
                if gb.find_assignment(assignment).notebooks:
                    return
            except MissingEntry:
                pass
    from .release import ReleaseError, record_in_gradebook

    print(f"  the gradebook has no {assignment!r} yet: recording it (nbgrader generate_assignment into a private "
          "folder: release/ is not touched)")
    try:
        record_in_gradebook(course_root, assignment)
    except ReleaseError as e:
        raise GradingError(str(e)) from None


def make_spec(course_root: Path, unsafe: bool, limits: Limits, no_cgroup: bool = False) -> SandboxSpec:
    """The sandbox of a grading run of ``course_root`` (``unsafe``: none), its data prepared and, as root, the
    data and code checked readable by the sandbox uid."""
    import data_tools
    import sr_utils
    from data_tools.samples import ensure_sample_data

    # what the notebooks' default_data_dir() resolves to under the course root; read-only in the sandbox, so it
    # is prepared here first
    # (public sample data the sandbox uid reads: made readable by others whatever the umask; a private course
    # folder keeps other accounts out of it, bind mounts let the sandbox in)
    old_umask = os.umask(0o022)
    try:
        data = ensure_sample_data(Path(os.environ.get(DATA_DIR_ENV) or course_root / "data"))
    finally:
        os.umask(old_umask)
    code = [str(Path(m.__file__).resolve().parent) for m in (sr_utils, data_tools)]
    root = os.geteuid() == 0
    if root and not unsafe:  # student code runs as another uid: it must be able to read the data and the code
        for folder in [data, *code]:
            for dirpath, dirs, files in os.walk(folder):
                # (caches the sandbox does without: it writes no bytecode, compiles imresize into its /tmp, and reads
                # the source where a cache file is not readable)
                dirs[:] = [d for d in dirs if d != "__pycache__"]
                for name in [".", *files]:
                    mode = os.stat(os.path.join(dirpath, name)).st_mode
                    if not mode & 0o004 or (name == "." and not mode & 0o001):
                        raise GradingError(f"{os.path.join(dirpath, name)} is not readable by other users, and "
                                           f"graded code runs as an unprivileged user: chmod -R a+rX {folder}")
    spec = SandboxSpec(enabled=not unsafe, data_dir=str(Path(data).resolve()), code_dirs=code,
                       course_root=str(course_root), uid=FIRST_SANDBOX_UID if root else None,
                       base_processes=0 if root else user_process_count(os.getuid()), limits=limits,
                       deny_memfd=no_cgroup)
    return spec


def sandbox_spec(course_root: Path, unsafe: bool, limits: Limits, no_cgroup: bool = False, log=print) -> SandboxSpec:
    """:func:`make_spec` once bubblewrap is known to work here (else a refusal, unless ``unsafe``)."""
    if not unsafe:
        try:
            probe()
        except SandboxUnavailable as e:
            raise GradingError(f"refusing to grade: {e}. Student code would run with your rights (it could read "
                               "the solutions and the gradebook or change grades). Install bubblewrap, or grade "
                               "inside Docker (README), or pass --unsafe to grade anyway.") from None
    else:
        log("WARNING: --unsafe: student code runs with your rights, outside any sandbox")
    return make_spec(course_root, unsafe, limits, no_cgroup)


def grade(assignment: str, course_root: Path = REPO, src: Path | None = None, lms_zip: Path | None = None,
          lms_regexp: str = DEFAULT_LMS_REGEXP, students: list[str] | None = None, workers: int | None = None,
          unsafe: bool = False, cell_timeout: int = 300, submission_timeout: float = 3600,
          limits: Limits | None = None, feedback: bool = True, progress: bool = True, log=print,
          no_cgroup: bool = False, cluster: str | None = None, cluster_credentials: Path | None = None) -> dict:
    """The whole grading run; returns the per-submission results and the paths written. ``cluster``: the address
    of a Dask scheduler whose workers grade the submissions (:mod:`course.grading.cluster`), in place of
    ``workers`` processes here."""
    course_root = Path(course_root).resolve()
    workers = workers or os.cpu_count() or 1
    limits = limits or Limits(threads=max(1, (os.cpu_count() or 1) // workers))
    if cluster:
        from course.grading.cluster import run_options

        if is_sqlite(gradebook_url(course_root)):
            raise GradingError("--cluster needs a gradebook every worker writes to: set $SR_KIT_GRADEBOOK_URL to "
                               "the class's PostgreSQL gradebook (python -m course.gradebook_server start; "
                               "docs/grading.md)")

        on_cluster = {"address": cluster, "credentials": cluster_credentials,
                      "options": run_options(course_root, assignment, unsafe, limits, cell_timeout,
                                             submission_timeout, no_cgroup)}
        spec = None
    else:
        on_cluster = None
        spec = sandbox_spec(course_root, unsafe, limits, no_cgroup, log)
    with private_umask():  # every file and folder of course state this run (and all it starts) creates
        return _grade(assignment, course_root, spec, src, lms_zip, lms_regexp, students, workers, cell_timeout,
                      submission_timeout, feedback, progress, log, no_cgroup, on_cluster)


def _grade(assignment, course_root, spec, src, lms_zip, lms_regexp, students, workers, cell_timeout,
           submission_timeout, feedback, progress, log, no_cgroup, on_cluster=None) -> dict:
    close_state(course_root)
    submitted = course_root / SUBMITTED_DIR
    attention = {}
    if src is not None:
        attention.update(collect_folders(Path(src), submitted, assignment))
    if lms_zip is not None:
        attention.update(collect_lms_zip(Path(lms_zip), course_root, assignment, lms_regexp))
    found, refused = intake_submitted(submitted, assignment)
    attention.update(refused)
    if students:
        found = [s for s in found if s in students]
        attention = {s: why for s, why in attention.items() if s in students}
    students = found
    if not students and not attention:
        raise GradingError(f"no submission in {submitted}/<student>/{assignment}/")
    (course_root / STATE_DIR).mkdir(parents=True, exist_ok=True)
    if on_cluster:
        _ensure_assignment(course_root, assignment)
        from course.grading.cluster import grade_on_cluster

        log(f"grading {len(students)} submissions on the cluster at {on_cluster['address']}")
        t0 = time.perf_counter()
        with FeedbackQueue(course_root, assignment, enabled=feedback) as feedback_queue:
            results = grade_on_cluster(on_cluster["address"], students, assignment, course_root,
                                       on_cluster["options"], on_cluster["credentials"], progress,
                                       graded=feedback_queue.add, log=log)
        seconds = time.perf_counter() - t0
    else:
        # the fork server of the submissions' nbgrader processes and check servers imports while the gradebook is
        # read (after imresize's compiled kernels are in place: it loads them, never compiles them)
        spec = with_compiled_imresize(spec, course_root / STATE_DIR)
        forks = TrustedForkServer.for_run(course_root, spec, cell_timeout)
        try:
            _ensure_assignment(course_root, assignment)
            log(f"grading {len(students)} submissions with {workers} workers "
                f"({'sandboxed with bubblewrap' if spec.enabled else 'UNSAFE, no sandbox'})")
            t0 = time.perf_counter()
            with FeedbackQueue(course_root, assignment, enabled=feedback, forks=forks) as feedback_queue:
                results = autograde_all(students, assignment, course_root, spec, workers, cell_timeout,
                                        submission_timeout, progress, require_cgroup=not no_cgroup, forks=forks,
                                        graded=feedback_queue.add)
            seconds = time.perf_counter() - t0
        finally:
            forks.close()
    graded = {r["student"] for r in results}
    results += [{"student": s, "status": why, "seconds": 0.0} for s, why in sorted(attention.items())
                if s not in graded]
    outputs = write_outputs(course_root, assignment, [s for s in students if s in graded], results)
    log(outputs["summary_text"])
    log(f"autograded in {seconds:.0f} s; wrote {outputs['grades']}, {outputs['breakdown']}, {outputs['summary']}"
        + (f" and feedback in {course_root / FEEDBACK_DIR}" if feedback else ""))
    return {"results": results, "seconds": seconds, **outputs}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m course.grade", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("assignment", nargs="?", help="assignment name (superres)")
    ap.add_argument("--course-dir", type=Path, default=REPO, help="course root holding nbgrader_config.py")
    ap.add_argument("--from", dest="src", type=Path, help="plain folders: FOLDER/<student>/[superres/] holding each "
                    "student's hand-in (notebooks, report.md, results/, submission/)")
    ap.add_argument("--lms-zip", type=Path, help="an LMS download (zip), unpacked member by member (course/intake.py)")
    ap.add_argument("--lms-regexp", default=DEFAULT_LMS_REGEXP, help="file name pattern of the LMS download "
                    "(named groups student_id and file_id)")
    ap.add_argument("--student", action="append", help="grade only these students (repeatable)")
    ap.add_argument("--workers", type=int, default=None, help="parallel nbgrader processes (default: cores)")
    ap.add_argument("--cluster", metavar="ADDRESS", help="grade on the Dask cluster at ADDRESS (tls://HOST:8786; "
                    "python -m course.cluster, docs/grading.md) instead of --workers processes here")
    ap.add_argument("--cluster-credentials", type=Path, metavar="DIR", help="the cluster's TLS files (default: "
                    "course/.cluster/ of --course-dir)")
    ap.add_argument("--cell-timeout", type=int, default=300, help="seconds per notebook cell")
    ap.add_argument("--submission-timeout", type=float, default=3600, help="seconds per submission, all in")
    ap.add_argument("--memory-gb", type=float, default=4, help="memory per sandboxed process")
    ap.add_argument("--cpu-seconds", type=int, default=3600, help="CPU time per sandboxed process")
    ap.add_argument("--disk-mb", type=int, default=Limits().folder_bytes >> 20,
                    help="what a submission may keep in its grading folder (as root: a tmpfs of that size while it "
                    "runs); past it, its files are removed and the notebook that wrote them scores 0")
    ap.add_argument("--no-feedback", action="store_true", help="do not generate feedback HTML")
    ap.add_argument("--unsafe", action="store_true", help="grade without a sandbox (only for trusted code)")
    ap.add_argument("--no-cgroup", action="store_true", help="grade without a cgroup bounding each sandbox's memory "
                    "(per-process limits only; memfd_create is then denied to student code)")
    ap.add_argument("--shared-setup", metavar="GROUP", help="instead of grading: close the course folder to other "
                    "accounts (a shared machine: docs/grading.md), its folders 2750 and files 0640, of the "
                    "instructors' GROUP; with --exchange, nbgrader's exchange goes there")
    ap.add_argument("--exchange", type=Path, help="with --shared-setup: nbgrader's exchange, outside the course "
                    "folder (e.g. /srv/nbgrader/exchange, made 1777; course/exchange becomes a link to it)")
    ap.add_argument("--check-permissions", action="store_true", help="instead of grading: list what other accounts "
                    "could read, write or enter in the course folder, and exchange modes that are not nbgrader's; "
                    "exit 1 if there is any")
    args = ap.parse_args(argv)
    if args.shared_setup or args.check_permissions:
        return permissions_main(args)
    if args.exchange:
        ap.error("--exchange goes with --shared-setup GROUP")
    if not args.assignment:
        ap.error("the assignment is required (superres)")
    workers = args.workers or os.cpu_count() or 1
    limits = Limits(cpu_seconds=args.cpu_seconds, memory_bytes=int(args.memory_gb * (1 << 30)),
                    threads=max(1, (os.cpu_count() or 1) // workers), folder_bytes=args.disk_mb << 20)
    if not (args.course_dir / "nbgrader_config.py").is_file():
        print(f"error: {args.course_dir} has no nbgrader_config.py (--course-dir)", file=sys.stderr)
        return 2
    try:
        grade(args.assignment, args.course_dir, args.src, args.lms_zip, args.lms_regexp, args.student, workers,
              args.unsafe, args.cell_timeout, args.submission_timeout, limits, not args.no_feedback,
              no_cgroup=args.no_cgroup, cluster=args.cluster, cluster_credentials=args.cluster_credentials)
    except GradingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def permissions_main(args) -> int:
    """``--shared-setup GROUP [--exchange DIR]`` and/or ``--check-permissions``."""
    root = args.course_dir
    if not (root / "nbgrader_config.py").is_file():
        print(f"error: {root} has no nbgrader_config.py (--course-dir)", file=sys.stderr)
        return 2
    if args.shared_setup:
        try:
            with private_umask():
                shared_setup(root, args.shared_setup, args.exchange)
        except GradingError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    if not args.check_permissions:
        return 0
    problems = check_permissions(root)
    for line in problems[:40]:
        print(line)
    if len(problems) > 40:
        print(f"... and {len(problems) - 40} more")
    print(f"{len(problems)} problem{'s' * (len(problems) != 1)}" if problems else
          f"{Path(root).resolve()}: closed to other accounts; the exchange, if any, has nbgrader's modes")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
