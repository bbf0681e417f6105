"""Grade a class: collect, autograde in parallel inside sandboxes, feedback, grades and a per-test breakdown.

    python -m course.grade superres                       # what is in course/submitted/
    python -m course.grade superres --from FOLDER         # FOLDER/<student>/[superres/]: each student's hand-in
    python -m course.grade superres --lms-zip FILE.zip    # an LMS download, unpacked member by member
    make grade                                            # the same as the first line

Every submission is autograded by nbgrader itself (the gradebook, formgrader, feedback and export keep working),
one ``nbgrader autograde --student`` process per submission, ``--workers`` at a time. Student code -- the
notebook kernels and the hidden checks -- runs in bubblewrap sandboxes (course/sandbox.py): no network, only
its own grading folder writable, no view of source/, course/grading/, the gradebook or other students, limits on
CPU time, memory, file size and processes, and (as root) a tmpfs of ``--disk-mb`` as each submission's grading
folder while it runs. Without bubblewrap the command refuses unless ``--unsafe`` is given. A submission's nbgrader
process and trusted check server are started ahead, while the worker's previous submission runs (``PrestartedPool``),
so that their imports do not wait.

A hand-in (course/jupyter/handin.py) is the notebooks, the written report (``report.md`` or ``report.pdf``),
``results/``, the ``submission/`` pictures and the training curves; it is collected with its relative paths into
``course/submitted/<student>/superres/`` (checkpoints and data never travel); nbgrader copies only the notebooks
into ``course/autograded/``, and the grading view shows the report before each notebook's first written answer.

Writes ``course/grades/``: ``grades.csv`` (nbgrader export, plus the ``report`` each student handed in),
``breakdown.csv`` (one row per student and test cell, with the reason a cell lost its points), ``summary.txt``
(score histogram, most-failed checks, submissions needing manual attention, among them a missing report), and
feedback HTML in ``course/feedback/`` with hidden tests cleared.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import itertools
import json
import os
import re
import shutil
import stat
import signal
import subprocess
import sys
import threading
import time
import zipfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from course import intake, plain_tree
from course.grading.contract import (AFTER_NOTEBOOK, AUTOGRADED_DIR, CELL_TIMEOUT_ENV, CHECK_COMMAND_ENV,
                                     CHECK_SERVER_ENV, CHECK_SERVER_MODULE, CHECKS_NICENESS_ENV, COURSE_ROOT_ENV,
                                     DATA_DIR_ENV, DISK_DIR, EXCHANGE_DIR, EXCHANGE_ENV, FEEDBACK_DIR, GRADEBOOK,
                                     GRADES_DIR, HIDDEN_CHECKS_ENV, KERNEL_DISAGREES, KERNEL_DISAGREES_RECORD,
                                     KERNEL_ENV, LOGS_DIR, NUMBA_DIR, OVER_DISK_RECORD, PRESTARTED_DIR,
                                     PRESTARTED_MODULE, RUNTIME_DIR, SANDBOX_ENV, STATE_DIR, SUBMITTED_DIR,
                                     VERDICTS_DIR, VERDICTS_ENV, python_module)
from course.paths import KIT_ROOT as REPO
from course.paths import ToolMissing, nbgrader_executable, tool_env
from course.sandbox import (CHECKS_NICENESS, FIRST_SANDBOX_UID, KERNEL_NAME, BoundedFolder, Cgroup, Limits,
                            SandboxSpec, SandboxUnavailable, UidPool, _user_process_count, mount_tmpfs,
                            prepare_numba_cache, probe, set_priority, unmount, write_kernelspec)
from course.sandbox import checks_niceness as sandbox_checks_niceness
from course.student_id import safe_student_id

REPORT_FILES = intake.handin.REPORT_FILES
# Bounds of the trusted nbgrader processes the grader starts (they parse what student code produced)
TRUSTED_MEMORY_BYTES = 6 << 30
TRUSTED_CPU_SECONDS = 7200
FEEDBACK_TIMEOUT = 600
MAX_SUBMISSION_BYTES = Limits().folder_bytes  # a graded folder (autograded/<student>), checked after each run
DISK_RESERVE_BYTES = 64 << 20  # room on the submission's tmpfs past its bound, for nbgrader's own writes
RUNTIME_BYTES = 64 << 20  # the kernels' runtime folder (connection file, IPC sockets)
# What the grading command creates is the instructors' alone: folders 0750, files 0640 (the group is the course
# folder's, through its set-group-id folders: --shared-setup). Other accounts -- students on a shared machine --
# get nothing (docs/grading.md, "The course folder on a shared machine")
PRIVATE_UMASK = 0o027
# nbgrader sets the modes of what it writes itself (autograded notebooks 0444, feedback 0644): these instead
AUTOGRADED_MODE, FEEDBACK_MODE = 0o440, 0o640
# imresize's compiled kernels for the sandboxes, kept between grading runs (numba recompiles what is stale)
NUMBA_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sr-kit" / "numba"
# LMS download names (override with --lms-regexp), matched against each member's path: Canvas style
# <student>_<anything>_<file> (01_models.ipynb, report.md) or a folder per student, <student>[_<anything>]/
# [superres/]<path in the hand-in> (submission/set5/baby.png, results/test_table.csv); file_id is the path kept
DEFAULT_LMS_REGEXP = (r"^(?:.*?/)?(?P<student_id>[A-Za-z0-9.@-]+)(?:_[^/]*?_|(?:_[^/]*)?/)(?P<file_id>(?:superres/)?"
                      r"(?:0[1-5]_[a-z_]+\.ipynb|report\.(?:md|pdf)|(?:results|submission|checkpoints|data)/.+))$")


class GradingError(RuntimeError):
    """Something the instructor must fix before grading can run (the message says what)."""


def _nbgrader() -> str:
    try:
        return nbgrader_executable()
    except ToolMissing as e:
        raise GradingError(str(e)) from None


def _env(course_root: Path) -> dict:
    # nbgrader runs `alembic` by name when it creates a gradebook: the venv's bin/ must be on PATH. The grader's
    # processes create files under the private umask: they write no cache into the public trees the sandbox reads
    # (bytecode, numba's compiled imresize: theirs is kept with the grading state)
    return tool_env(**{COURSE_ROOT_ENV: str(course_root), "PYTHONDONTWRITEBYTECODE": "1",
                       "NUMBA_CACHE_DIR": str(Path(course_root) / STATE_DIR / NUMBA_DIR)})


# ---------------------------------------------------------------------------------------------------------
# Collecting submissions
# ---------------------------------------------------------------------------------------------------------
def collect_folders(src: Path, submitted: Path, assignment: str) -> dict[str, str]:
    """Copy the hand-in of ``src/<student>/[<assignment>/]`` to ``submitted/<student>/<assignment>/``
    (course/intake.py: relative paths kept, nothing followed, unsafe hand-ins refused, checkpoints and data left
    out). Returns {student: why it needs manual attention}."""
    _, attention = intake.collect_folders(Path(src), submitted, assignment)
    return attention


def collect_lms_zip(zip_path: Path, course_root: Path, assignment: str, regexp: str) -> dict[str, str]:
    """Unpack an LMS download into ``course/submitted`` member by member (course/intake.py): a bad member is
    reported and skipped for its student alone. Returns {student: why it needs manual attention}."""
    if not zipfile.is_zipfile(zip_path):
        raise GradingError(f"{zip_path} is not a zip file")
    students, attention = intake.collect_zip(Path(zip_path), course_root / SUBMITTED_DIR, assignment, regexp)
    if not students:
        raise GradingError(f"no submission found in {zip_path}: its file names do not match --lms-regexp {regexp!r} "
                           "(groups student_id and file_id, matched against the path)")
    return attention


def _ensure_assignment(course_root: Path, assignment: str) -> None:
    """The gradebook must know the assignment's test cells: `nbgrader generate_assignment` records them."""
    from nbgrader.api import Gradebook, MissingEntry

    db = course_root / GRADEBOOK
    if db.exists():
        with Gradebook("sqlite:///" + str(db)) as gb:
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


# ---------------------------------------------------------------------------------------------------------
# Autograding
# ---------------------------------------------------------------------------------------------------------
def bounded(argv: list[str], memory_bytes: int = TRUSTED_MEMORY_BYTES, cpu_seconds: int = TRUSTED_CPU_SECONDS):
    """``argv`` behind a tiny launcher that sets memory (RLIMIT_DATA) and CPU-time limits, then execs it: the
    trusted nbgrader processes parse what student code produced, and must not grow without bound."""
    return [sys.executable, "-I", "-c", _BOUNDED, str(memory_bytes), str(cpu_seconds), *argv]


_BOUNDED = ("import os, resource, sys\nm, c = int(sys.argv[1]), int(sys.argv[2])\n"
            "resource.setrlimit(resource.RLIMIT_DATA, (m, m))\nresource.setrlimit(resource.RLIMIT_CPU, (c, c))\n"
            "os.execvp(sys.argv[3], sys.argv[3:])\n")


def folder_bytes(folder: Path) -> int:
    """Bytes of the regular files under ``folder`` (nothing followed, any depth)."""
    return sum(size for _, size in plain_tree.regular_files(folder))


def bound_folder(folder: Path, limit: int = MAX_SUBMISSION_BYTES) -> str | None:
    """The disk bound of a graded folder, checked after its run: past ``limit``, every file but the notebooks is
    removed and the reason returned."""
    size = folder_bytes(folder)
    if size <= limit:
        return None
    for path, _ in plain_tree.regular_files(folder):
        if path.suffix != ".ipynb":
            os.unlink(path)
    return f"wrote {size >> 20} MB into its folder (at most {limit >> 20} MB): its files were removed"


def is_graded_notebook(parts: tuple[str, ...], st: os.stat_result | None = None) -> bool:
    """A graded notebook of an assignment folder: a regular ``*.ipynb`` file directly in it."""
    return len(parts) == 1 and parts[0].endswith(".ipynb") and (st is None or stat.S_ISREG(st.st_mode))


def keep_graded_notebooks(folder: Path) -> int:
    """After a submission's run, its graded folder keeps its graded notebooks and nothing else: no file a notebook
    wrote while graded (``.grading-run/``, checkpoints, pictures, a page of HTML) stays where the formgrader
    serves ``course/autograded/`` from the instructor's origin, or travels into the feedback. Returns the bytes
    removed."""
    return plain_tree.keep_only(folder, is_graded_notebook)


PRESTARTED_NICENESS = 19  # (root) the imports of a worker's next submission use what the current one leaves idle


def start_check_server(folder: Path | None, env: dict, log) -> tuple[subprocess.Popen, dict]:
    """Start the trusted check server of one submission (:mod:`course.grading.check_server`; it never runs student
    code) with a pipe for requests and one for answers. Returns the process and ``{"folder", "fds"}``: the ends
    the submission's nbgrader process gets (``nbgrader_plugins.CheckServer``), to be closed here once it has them.

    ``folder`` None: the server is prestarted (:mod:`course.grading.prestarted`: it imports torch and the checks
    now) and learns its folder from :func:`assign_check_server`, which needs the requests end still open here."""
    if folder is None:
        argv = python_module(PRESTARTED_MODULE, "check-server", bytecode=False)
    else:
        folder.parent.mkdir(parents=True, exist_ok=True)  # the student side binds it (nbgrader makes ``folder``)
        argv = python_module(CHECK_SERVER_MODULE, str(folder), bytecode=False)
    requests_read, requests_write = os.pipe()
    answers_read, answers_write = os.pipe()
    try:
        server = subprocess.Popen(bounded(argv), stdin=requests_read, stdout=answers_write, stderr=log, env=env,
                                  cwd=env[COURSE_ROOT_ENV], start_new_session=True)
    except OSError:
        for fd in (requests_write, answers_read):
            os.close(fd)
        raise
    finally:
        os.close(requests_read)
        os.close(answers_write)
    return server, {"folder": None if folder is None else str(folder), "fds": [requests_write, answers_read]}


def assign_check_server(handed: dict, folder: Path, env: dict, log: Path) -> None:
    """Give a check server started ahead its submission: ``folder``, ``env`` as its environment, ``log`` for its
    messages. The job line goes into its requests pipe before anything else (prestarted.py reads it byte by byte)."""
    folder.parent.mkdir(parents=True, exist_ok=True)  # the student side binds it (nbgrader makes ``folder``)
    data = (json.dumps({"argv": [str(folder)], "env": env, "log": str(log)}) + "\n").encode()
    while data:
        data = data[os.write(handed["fds"][0], data):]
    handed["folder"] = str(folder)


def stop_process_group(proc: subprocess.Popen, wait: float) -> None:
    """Let ``proc`` (started in a session of its own) end within ``wait`` seconds, then kill its group."""
    try:
        proc.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


class Prestarted:
    """A worker's next nbgrader process and check server, prestarted: started before their submission is needed,
    while the worker's current one runs (:mod:`course.grading.prestarted`). They import nbgrader and torch now, and
    get their submission with :meth:`go`. This side keeps the server's requests end until then: its job line goes
    there first."""

    def __init__(self, env: dict, log: Path, nbgrader_limits: tuple[int, int], yielding: bool = True):
        log.parent.mkdir(parents=True, exist_ok=True)
        self.log = log
        self.nbgrader = None
        with open(log, "wb") as f:
            self.server, self.handed = start_check_server(None, env, f)
            self.requests_open = True
            try:
                self.nbgrader = subprocess.Popen(bounded(python_module(PRESTARTED_MODULE, "nbgrader", bytecode=False),
                                                         *nbgrader_limits),
                                                 stdin=subprocess.PIPE, stdout=f, stderr=subprocess.STDOUT, env=env,
                                                 cwd=env[COURSE_ROOT_ENV], start_new_session=True,
                                                 pass_fds=self.handed["fds"])
            except OSError:
                self.stop()
                raise
            finally:
                os.close(self.handed["fds"][1])  # the answers end: nbgrader's (or nobody's)
        self.own_priority = os.getpriority(os.PRIO_PROCESS, 0)
        if yielding and os.geteuid() == 0:  # (only root may raise it again at go)
            for proc in (self.server, self.nbgrader):
                set_priority(proc.pid, PRESTARTED_NICENESS)

    def go(self, argv: list[str], folder: Path, env: dict, log: Path) -> bool:
        """Give both processes their submission: ``nbgrader ARGV`` and the check server of ``folder``, with
        ``env`` as their environment, writing to ``log`` from now on. False (and both stopped) if either had
        ended: the caller starts them the usual way."""
        if self.server.poll() is not None or self.nbgrader.poll() is not None:
            self.stop()
            return False
        try:
            assign_check_server(self.handed, folder, env, log)
            self._close_requests()
            self.nbgrader.stdin.write((json.dumps({"argv": argv, "log": str(log),
                                                   "env": {**env, CHECK_SERVER_ENV: json.dumps(self.handed)}})
                                       + "\n").encode())
            self.nbgrader.stdin.close()
        except OSError:
            self.stop()
            return False
        if os.geteuid() == 0:  # their imports ran at PRESTARTED_NICENESS: their work does not
            set_priority(self.nbgrader.pid, self.own_priority)
            set_priority(self.server.pid, max(self.own_priority, sandbox_checks_niceness(env)))
        self.log.unlink(missing_ok=True)
        return True

    def _close_requests(self) -> None:
        if self.requests_open:
            self.requests_open = False
            os.close(self.handed["fds"][0])

    def stop(self) -> None:
        """End both processes (unused ones: the grading run is over, or they had failed)."""
        self._close_requests()
        for proc in (self.nbgrader, self.server):
            if proc is not None:
                if proc.stdin:
                    with contextlib.suppress(OSError):
                        proc.stdin.close()
                stop_process_group(proc, wait=0)


class PrestartedPool:
    """The prestarted processes (:class:`Prestarted`) for the submissions of a run not started yet: at most
    one set per such submission. The first sets are started before anything else of the run (they do not yield:
    nothing is graded yet); later ones when a submission starts (they yield to it)."""

    def __init__(self, env: dict, logs: Path, nbgrader_limits: tuple[int, int], submissions: int):
        self.env, self.logs, self.limits, self.unstarted = env, logs, nbgrader_limits, submissions
        self.ready: list[Prestarted] = []
        self.made = itertools.count()
        self.lock = threading.Lock()

    @classmethod
    def for_run(cls, course_root: Path, spec: SandboxSpec, cell_timeout: int, submissions: int) -> "PrestartedPool":
        """The pool of a grading run (its processes' environment is given again when their submission starts)."""
        state = course_root / STATE_DIR
        return cls(submission_env(course_root, spec, state, state / RUNTIME_DIR / "w0", cell_timeout, 0),
                   state / PRESTARTED_DIR, nbgrader_limits(spec), submissions)

    def fill(self, at_most: int = 1, yielding: bool = True) -> None:
        """Start up to ``at_most`` sets, as long as there are fewer than submissions not started."""
        with self.lock:
            for _ in range(at_most):
                if self.unstarted <= len(self.ready):
                    return
                try:
                    self.ready.append(Prestarted(self.env, self.logs / f"{next(self.made)}.log", self.limits,
                                                   yielding))
                except OSError:  # it only saves time: the submission starts its own
                    return

    def take(self) -> Prestarted | None:
        """For a submission that starts now: a set started ahead, if there is one."""
        with self.lock:
            self.unstarted -= 1
            return self.ready.pop(0) if self.ready else None

    def close(self) -> None:
        with self.lock:
            while self.ready:
                self.ready.pop().stop()


def submission_env(course_root: Path, spec: SandboxSpec, state: Path, runtime: Path, cell_timeout: int,
                   checks_niceness: int) -> dict:
    """The environment of a submission's nbgrader process and check server (the same for every submission of a
    worker: its sandbox uid and cgroups are in ``spec``); ``checks_niceness``: that of the hidden checks'
    processes (``course.sandbox.CHECKS_NICENESS`` with one worker, else 0)."""
    env = {**_env(course_root), SANDBOX_ENV: spec.to_json(), CELL_TIMEOUT_ENV: str(cell_timeout),
           VERDICTS_ENV: str(state / VERDICTS_DIR), "JUPYTER_RUNTIME_DIR": str(runtime),
           "TMPDIR": str(runtime), "JUPYTER_PATH": str(state) + os.pathsep + os.environ.get("JUPYTER_PATH", ""),
           KERNEL_ENV: KERNEL_NAME if spec.enabled else "python3",
           "OMP_NUM_THREADS": str(spec.limits.threads),
           HIDDEN_CHECKS_ENV: AFTER_NOTEBOOK,  # (the sandbox sets it too) TrustedHiddenChecks runs them
           CHECKS_NICENESS_ENV: str(checks_niceness)}
    env.pop(CHECK_COMMAND_ENV, None)
    return env


def nbgrader_limits(spec: SandboxSpec) -> tuple[int, int]:
    """Memory and CPU-time bounds of a submission's nbgrader process (its kernels inherit these hard limits and
    lower them: they must not be below the sandbox's own)."""
    return (max(TRUSTED_MEMORY_BYTES, spec.limits.memory_bytes + (2 << 30)),
            max(TRUSTED_CPU_SECONDS, 2 * spec.limits.cpu_seconds))


def slot_spec(spec: SandboxSpec, slot: int, cgroups: dict | None = None, uids: list[int] | None = None) -> SandboxSpec:
    """``spec`` for worker ``slot``: its sandbox uid and cgroups."""
    if spec.enabled and spec.uid is not None:
        cgroups = cgroups or {}
        spec = SandboxSpec(**{**spec.__dict__, "uid": uids[slot] if uids else FIRST_SANDBOX_UID + slot,
                              "cgroup_procs": cgroups[slot].procs if cgroups.get(slot) else []})
    return spec


def autograde_one(student: str, assignment: str, course_root: Path, spec: SandboxSpec, slot: int,
                  state: Path, cell_timeout: int, submission_timeout: float, cgroups: dict | None = None,
                  uids: list[int] | None = None, prestarted: Prestarted | None = None, started=None,
                  checks_niceness: int = 0) -> dict:
    """``nbgrader autograde --student`` for one submission, killed after ``submission_timeout`` seconds.

    ``prestarted``: processes started ahead for it (used if they are still alive); ``started()`` is called once its
    processes run (the caller prestarts the next submission's then); ``checks_niceness``: see
    :func:`submission_env`."""
    runtime = state / RUNTIME_DIR / f"w{slot}"  # short: IPC socket paths are limited to 107 bytes
    if os.path.ismount(runtime):
        unmount(runtime)
    plain_tree.remove_tree(runtime)
    runtime.mkdir(parents=True)
    if spec.enabled:  # (as root) the kernel may write there too: a small tmpfs, not the host's disk
        mount_tmpfs(runtime, RUNTIME_BYTES)
    verdicts = state / VERDICTS_DIR
    shutil.rmtree(verdicts / student, ignore_errors=True)
    spec = slot_spec(spec, slot, cgroups, uids)
    env = submission_env(course_root, spec, state, runtime, cell_timeout, checks_niceness)
    log = state / LOGS_DIR / f"{student}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    folder = course_root / AUTOGRADED_DIR / student / assignment
    # (nbgrader makes what it writes read-only for everyone, 444: for the instructors only)
    argv = ["autograde", assignment, "--student", student, "--force", f"--Autograde.permissions={AUTOGRADED_MODE:o}"]
    t0 = time.perf_counter()
    # (as root) the submission's grading folder is a tmpfs of --disk-mb (+ a reserve) while it runs: the sandbox
    # cannot fill the host's disk; what it keeps is checked after each notebook (TrustedHiddenChecks), and only the
    # graded notebooks are copied out afterwards (without root, the others are removed: keep_graded_notebooks)
    disk = BoundedFolder(course_root / AUTOGRADED_DIR / student, state / DISK_DIR / student,
                         spec.limits.folder_bytes + DISK_RESERVE_BYTES,
                         keep=lambda parts: parts[0] == assignment and is_graded_notebook(parts[1:]))
    with (disk if spec.enabled else contextlib.nullcontext()), open(log, "wb") as f:
        if spec.enabled and spec.uid is not None and os.geteuid() == 0 and not disk.mounted:
            # (no tmpfs: the folder is made under the private umask) the student side, as the sandbox uid, works in
            # autograded/<student>; other accounts still cannot enter course/autograded
            folder.parent.mkdir(parents=True, exist_ok=True)
            os.chown(folder.parent, spec.uid, -1)
        if prestarted is not None and prestarted.go(argv, folder, env, log):
            server, proc = prestarted.server, prestarted.nbgrader
        else:
            if prestarted is not None:
                f.write(f"[course.grade] the processes started ahead had ended (see {prestarted.log}): started now\n"
                        .encode())
                f.flush()
            # the trusted check server first: it imports torch and the checks while nbgrader starts
            server, handed = start_check_server(folder, env, f)
            try:
                proc = subprocess.Popen(bounded([_nbgrader(), *argv], *nbgrader_limits(spec)), cwd=course_root,
                                        env={**env, CHECK_SERVER_ENV: json.dumps(handed)}, stdout=f,
                                        stderr=subprocess.STDOUT, start_new_session=True, pass_fds=handed["fds"])
            finally:
                for fd in handed["fds"]:  # nbgrader holds them now: the server ends when nbgrader does
                    os.close(fd)
        if started is not None:
            started()
        try:
            rc = proc.wait(timeout=submission_timeout)
            status = "ok" if rc == 0 else f"nbgrader exited with code {rc} (see {log})"
        except subprocess.TimeoutExpired:
            stop_process_group(proc, wait=0)
            status = f"killed after {submission_timeout:.0f} s"
        stop_process_group(server, wait=10)
    unmount(runtime)
    plain_tree.remove_tree(runtime)
    too_big = bound_folder(course_root / AUTOGRADED_DIR / student, spec.limits.folder_bytes)
    keep_graded_notebooks(folder)
    over = verdicts / student / OVER_DISK_RECORD  # written by TrustedHiddenChecks
    too_big = too_big or (over.read_text()[:300] if over.is_file() else None)
    status = too_big if too_big and status == "ok" else status
    result = {"student": student, "status": status, "seconds": time.perf_counter() - t0}
    disagrees = verdicts / student / KERNEL_DISAGREES_RECORD
    if disagrees.is_file():  # (graded, feedback made as usual: listed for attention in the summary)
        lines = [line.partition(" ") for line in disagrees.read_text(errors="replace").splitlines()]
        said = [f"{cell}: {KERNEL_DISAGREES.get(code, code)}" for cell, _, code in lines]
        result["attention"] = (f"its kernel's outputs disagree with the trusted decisions in {len(lines)} graded "
                               f"cell(s) (see {disagrees}): " + "; ".join(said[:3]))[:600]
    return result


def autograde_all(students: list[str], assignment: str, course_root: Path, spec: SandboxSpec, workers: int,
                  cell_timeout: int = 300, submission_timeout: float = 3600, progress: bool = True,
                  require_cgroup: bool = True, prestarted: PrestartedPool | None = None) -> list[dict]:
    """Autograde ``students`` with ``workers`` nbgrader processes at a time, each with a sandbox uid held by this
    run alone (``UidPool``) and, unless ``require_cgroup`` is False, a memory + process cgroup. ``prestarted``:
    the run's prestarted processes (closed here), else made here."""
    from tqdm.auto import tqdm

    state = course_root / STATE_DIR
    state.mkdir(parents=True, exist_ok=True)
    write_kernelspec(state)
    if spec.enabled:  # compiled once per machine, copied into each sandbox (its code is read-only to numba)
        spec = dataclasses.replace(spec, numba_cache=prepare_numba_cache(NUMBA_CACHE))
        if spec.numba_cache:  # ... and into the trusted processes' own cache (_env), which they write privately
            for path in Path(spec.numba_cache).rglob("*"):
                if path.is_file() and not path.is_symlink():
                    target = state / NUMBA_DIR / path.relative_to(spec.numba_cache)
                    with contextlib.suppress(OSError):
                        target.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copyfile(path, target)
    slots = list(range(workers))
    lock = threading.Lock()
    cgroups, pool_of_uids = {}, None
    if spec.enabled and spec.uid is not None:
        try:
            pool_of_uids = UidPool(workers)
        except SandboxUnavailable as e:
            raise GradingError(str(e)) from None
    if spec.enabled:  # one memory + process cgroup per worker (root with a writable cgroupfs)
        for slot in slots:
            cgroups[slot] = Cgroup.create(f"sr-kit-{os.getpid()}-w{slot}", spec.limits.memory_bytes,
                                          spec.limits.processes)
        if require_cgroup and not all(cgroups.values()):
            for cg in cgroups.values():
                if cg is not None:
                    cg.remove()
            if pool_of_uids:
                pool_of_uids.release()
            raise GradingError("no writable cgroup (memory + pids controllers) here, so nothing bounds the memory of "
                               "a sandbox as a whole (tmpfs and memfd pages escape the per-process limits). Grade as "
                               "root on a host with cgroups, or pass --no-cgroup to rely on per-process limits (then "
                               "memfd_create is denied to student code)")

    prestarted = prestarted or PrestartedPool.for_run(course_root, spec, cell_timeout, len(students))

    def run(student):
        with lock:
            slot = slots.pop()
        taken = prestarted.take()
        try:
            # each worker's next submission gets its processes started ahead, while its current one runs
            return autograde_one(student, assignment, course_root, spec, slot, state, cell_timeout,
                                 submission_timeout, cgroups, pool_of_uids.uids if pool_of_uids else None,
                                 prestarted=taken, started=prestarted.fill,
                                 checks_niceness=CHECKS_NICENESS if workers == 1 else 0)
        except BaseException:
            if taken is not None:
                taken.stop()
            raise
        finally:
            with lock:
                slots.append(slot)

    results = []
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool, \
                tqdm(total=len(students), desc="autograde", unit="submission", disable=not progress) as bar:
            for r in pool.map(run, students):
                results.append(r)
                bar.update()
    finally:
        prestarted.close()
        for cg in cgroups.values():
            if cg is not None:
                cg.remove()
        if pool_of_uids:
            pool_of_uids.release()
    return results


# ---------------------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------------------
def _cell_reasons(notebook: Path) -> dict[str, str]:
    """grade_id -> why the cell lost its points (first error, or stderr output), from an autograded notebook."""
    reasons = {}
    if not notebook.is_file():
        return reasons
    for cell in json.loads(notebook.read_text()).get("cells", []):
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                reasons[gid] = f"{out.get('ename')}: {out.get('evalue')}"[:300]
                break
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                reasons[gid] = "wrote to stderr (a test cell with stderr output scores 0)"
                break
    return reasons


def breakdown(course_root: Path, assignment: str, students: list[str]) -> list[dict]:
    """One row per student and graded cell, read from the gradebook (the scores) and the autograded notebooks
    and hidden-check verdicts (the reasons)."""
    from nbgrader.api import Gradebook, MissingEntry

    rows = []
    with Gradebook("sqlite:///" + str(course_root / GRADEBOOK)) as gb:
        for student in students:
            try:
                sub = gb.find_submission(assignment, student)
            except MissingEntry:
                rows.append({"student": student, "notebook": "", "cell": "", "score": 0, "max_score": 0,
                             "auto_graded": False, "needs_manual_grade": True, "reason": "no submission graded"})
                continue
            for nb in sorted(sub.notebooks, key=lambda n: n.name):
                reasons = _cell_reasons(course_root / AUTOGRADED_DIR / student / assignment /
                                        f"{nb.name}.ipynb")
                for g in sorted(nb.grades, key=lambda g: g.name):
                    rows.append({"student": student, "notebook": nb.name, "cell": g.name,
                                 "score": g.score, "max_score": g.max_score,
                                 "auto_graded": g.cell_type == "code" and g.auto_score is not None,
                                 "needs_manual_grade": g.needs_manual_grade,
                                 "reason": "" if g.score == g.max_score else reasons.get(g.name, "")})
    return rows


def _failed_checks(state: Path, students: list[str]) -> Counter:
    counts = Counter()
    for student in students:
        for f in sorted((state / VERDICTS_DIR / student).glob("*.json")):
            for name, v in json.loads(f.read_text()).items():
                counts[name] += not v["passed"]
    return counts


def summarise(rows: list[dict], results: list[dict], failed_checks: Counter, reports: dict | None = None) -> str:
    """Score histogram, most-failed cells and checks, submissions needing attention (``reports``: {student:
    :func:`report_of`}, a missing report is one reason), as text."""
    totals, maxima = Counter(), Counter()
    for r in rows:
        if r["auto_graded"]:
            totals[r["student"]] += r["score"] or 0
            maxima[r["student"]] += r["max_score"] or 0
    auto_max = max(maxima.values(), default=0)
    lines = [f"Autograded score (out of {auto_max:g}), {len(results)} submissions:"]
    bins = 10
    hist = Counter(min(bins - 1, int(bins * totals[r["student"]] / auto_max)) if auto_max else 0 for r in results)
    for b in range(bins):
        lo, hi = auto_max * b / bins, auto_max * (b + 1) / bins
        lines.append(f"  {lo:5.1f}-{hi:5.1f} | {'#' * hist[b]} {hist[b] or ''}")
    lost = Counter(f"{r['notebook']}/{r['cell']}" for r in rows if r["auto_graded"] and r["score"] < r["max_score"])
    lines.append("Test cells most often failed:" + ("" if lost else " none"))
    lines += [f"  {n:3d}  {cell}" for cell, n in lost.most_common(8)]
    lines.append("Hidden checks most often failed:" + ("" if any(failed_checks.values()) else " none"))
    lines += [f"  {n:3d}  {name}" for name, n in failed_checks.most_common(8) if n]
    reports = reports or {}
    if reports:
        handed = Counter(reports.values())
        lines.append(f"Written reports: {len(reports) - handed['']} of {len(reports)} handed in (report.md: "
                     f"{handed['report.md']}, report.pdf: {handed['report.pdf']})")
    attention = [(r["student"], r["status"]) for r in results if r["status"] != "ok"]
    attention += [(r["student"], r["attention"]) for r in results if r.get("attention")]
    attention += [(s, f"no report handed in ({' or '.join(REPORT_FILES)} next to the notebooks)")
                  for s, f in sorted(reports.items()) if not f]
    lines.append(f"Needing manual attention ({len(attention)}):" if attention else "No submission needs attention "
                 "beyond the manually graded answers.")
    lines += [f"  {student}: {why}" for student, why in attention]
    return "\n".join(lines)


def report_of(submitted: Path, student: str, assignment: str) -> str:
    """The report file a student handed in (``report.md`` or ``report.pdf``), or ``""``."""
    return intake.handin.report_status(submitted / student / assignment)["file"]


NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def csv_safe(value):
    """A CSV cell a spreadsheet will not run (OWASP CSV injection): text starting with ``=``, ``+``, ``-``, ``@``,
    a tab or a carriage return gets a leading ``'``; numbers are kept as they are."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r") and not NUMBER.match(value):
        return "'" + value
    return value


def write_csv(path: Path, rows: list[dict], fields: list[str]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows({k: csv_safe(v) for k, v in row.items()} for row in rows)
    os.replace(tmp, path)


def write_outputs(course_root: Path, assignment: str, students: list[str], results: list[dict]) -> dict:
    out_dir = course_root / GRADES_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = breakdown(course_root, assignment, students)
    write_csv(out_dir / "breakdown.csv", rows, list(rows[0]) if rows else ["student"])
    # nbgrader's own CSV export (what `nbgrader export` runs), here: it reads only the gradebook (no process start)
    from nbgrader.api import Gradebook
    from nbgrader.plugins import CsvExportPlugin

    with Gradebook("sqlite:///" + str(course_root / GRADEBOOK)) as gb:
        CsvExportPlugin(to=str(out_dir / "grades.csv")).export(gb)
    with open(out_dir / "grades.csv", newline="") as f:  # nbgrader's export does not neutralise formulas
        exported = list(csv.DictReader(f))
    submitted = course_root / SUBMITTED_DIR
    reports = {s: report_of(submitted, s, assignment) for s in students}
    for row in exported:  # the report each student handed in, beside the scores
        if row.get("assignment") == assignment:
            row["report"] = reports.get(row.get("student_id"), "")
    fields = list(exported[0]) if exported else ["student_id"]
    write_csv(out_dir / "grades.csv", exported, fields + ["report"] * ("report" not in fields))
    summary = summarise(rows, results, _failed_checks(course_root / STATE_DIR, students), reports)
    summary += submitted_without_outputs(course_root / AUTOGRADED_DIR, assignment, students)
    (out_dir / "summary.txt").write_text(summary + "\n")
    return {"breakdown": out_dir / "breakdown.csv", "grades": out_dir / "grades.csv",
            "summary": out_dir / "summary.txt", "summary_text": summary}


def submitted_without_outputs(autograded: Path, assignment: str, students: list[str]) -> str:
    """Summary lines for notebooks submitted without the outputs the course asks for (the flag that
    :mod:`course.grading.submitted_outputs` leaves in each autograded notebook)."""
    from course.grading.submitted_outputs import missing_outputs

    lines = [f"  {student}: {nb.stem} submitted without outputs: {', '.join(missing)}"
             for student in students for nb in sorted((autograded / student / assignment).glob("*.ipynb"))
             if (missing := missing_outputs(json.loads(nb.read_text())))]
    return f"\nSubmitted without outputs ({len(lines)}):\n" + "\n".join(lines) if lines else ""


def generate_feedback(course_root: Path, assignment: str, students: list[str]) -> None:
    for student in students:
        try:
            subprocess.run(bounded([_nbgrader(), "generate_feedback", assignment, "--student", student, "--force",
                                    f"--GenerateFeedback.permissions={FEEDBACK_MODE:o}"]),
                           cwd=course_root, env=_env(course_root), capture_output=True, timeout=FEEDBACK_TIMEOUT)
        except subprocess.TimeoutExpired:
            print(f"  feedback for {student} took longer than {FEEDBACK_TIMEOUT} s: skipped")


# ---------------------------------------------------------------------------------------------------------
# Permissions: the course folder on a shared machine (docs/grading.md)
# ---------------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def private_umask(mask: int = PRIVATE_UMASK):
    """Files and folders created meanwhile (by this process and all it starts: nbgrader, the check servers,
    feedback) get no permission for other accounts (:data:`PRIVATE_UMASK`, added to the current umask)."""
    old, old_bytecode = os.umask(0), sys.dont_write_bytecode
    os.umask(old | mask)
    sys.dont_write_bytecode = True  # (no private bytecode in the public trees: see _env)
    try:
        yield
    finally:
        os.umask(old)
        sys.dont_write_bytecode = old_bytecode


#: The course state a grading run writes (relative to the course root)
STATE_ENTRIES = (SUBMITTED_DIR, AUTOGRADED_DIR, FEEDBACK_DIR, GRADES_DIR, STATE_DIR, GRADEBOOK)


def close_state(course_root: Path) -> None:
    """The course state's own folders (and the gradebook) closed to other accounts and to the group's writes,
    whoever made them (``nbgrader collect``, an earlier run under another umask): what is created in them later
    is private already (:func:`private_umask`, intake)."""
    for name in STATE_ENTRIES:
        path = Path(course_root) / name
        try:
            st = os.lstat(path)
            if (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)) and st.st_mode & 0o027:
                os.chmod(path, stat.S_IMODE(st.st_mode) & ~0o027)
        except OSError:
            pass


# nbgrader's exchange modes for other accounts, beside the course folder's: the root writable by all (nbgrader wants
# 0777; the sticky bit, which nbgrader leaves alone, keeps a student from renaming the course's folder away), the
# course's folder and outbound/ readable, inbound/ writable but not listable, feedback/ enterable only
EXCHANGE_OTHERS = {"": 0o7, "course": 0o5, "outbound": 0o5, "inbound": 0o3, "feedback": 0o1}


def public_trees(course_root: Path) -> list[Path]:
    """Folders below ``course_root`` that the sandbox uid reads through bind mounts (the kit's code, the data,
    the Python installation): they keep their modes; the closed course folder keeps other accounts out of them."""
    import data_tools
    import sr_utils

    from course.sandbox import _python_dirs

    root = Path(course_root).resolve()
    found = [Path(m.__file__).resolve().parent for m in (sr_utils, data_tools)]
    found += [Path(os.environ.get(DATA_DIR_ENV) or root / "data").resolve(), *map(Path, _python_dirs())]
    return sorted({p for p in found if p != root and p.is_relative_to(root)})


def _course_entries(course_root: Path, skip: set):
    """Every entry below ``course_root`` as ``(path, lstat)``, without following links or entering ``skip``."""
    stack = [Path(course_root)]
    while stack:
        folder = stack.pop()
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            continue
        for name in names:
            path = folder / name
            if path in skip:
                continue
            try:
                st = os.lstat(path)
            except OSError:
                continue
            yield path, st
            if stat.S_ISDIR(st.st_mode):
                stack.append(path)


def _exchange_of(course_root: Path) -> Path:
    return Path(os.environ.get(EXCHANGE_ENV) or course_root / EXCHANGE_DIR)


def shared_setup(course_root: Path, group: str, exchange: Path | None = None, log=print) -> None:
    """Apply the shared-machine modes (docs/grading.md): the course folder and everything in it belong to
    ``group``, folders 2750 (set-group-id: what is created later gets the group too), files 0640 (0750 if
    executable); the public trees (:func:`public_trees`) keep their modes. ``exchange``: nbgrader's exchange goes
    there, outside the closed course folder (made 1777), and ``course/exchange`` becomes a link to it."""
    import grp

    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        raise GradingError(f"no group {group!r} on this machine: create it (groupadd {group}) and add the "
                           "instructors to it (usermod -aG)") from None
    root = Path(course_root).resolve()
    link = root / EXCHANGE_DIR
    if exchange is not None:
        exchange = Path(exchange).absolute()
        if exchange.is_relative_to(root):
            raise GradingError(f"--exchange {exchange} is inside the course folder, which students cannot enter: "
                               "give it a place of its own (nbgrader's default is /srv/nbgrader/exchange)")
        if os.path.isdir(link) and not os.path.islink(link):
            if os.listdir(link):
                raise GradingError(f"{link} already holds an exchange: move what it holds into {exchange} (mv "
                                   "keeps the students' ownership), then run this again")
            os.rmdir(link)
        missing = [p for p in [exchange, *exchange.parents] if not p.exists()]
        for folder in reversed(missing):  # students must reach it: its new parents 0755
            folder.mkdir()
            os.chmod(folder, 0o755)
        os.chmod(exchange, 0o1777)
        if os.path.islink(link) and os.readlink(link) != str(exchange):
            os.unlink(link)
        if not os.path.islink(link):
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(exchange, link)
        log(f"exchange: {exchange} (1777; nbgrader makes outbound/ 0755, inbound/ 2733), linked from {link}")
    public = set(public_trees(root))
    skip = public | {link}
    changed = 0
    for path, st in [(root, os.lstat(root)), *_course_entries(root, skip)]:
        if stat.S_ISLNK(st.st_mode):
            continue
        if stat.S_ISDIR(st.st_mode):
            mode = 0o2750
        elif stat.S_ISREG(st.st_mode):
            mode = 0o750 if st.st_mode & 0o100 else 0o640
        else:
            continue
        if st.st_gid != gid:
            os.chown(path, -1, gid)
        if stat.S_IMODE(st.st_mode) != mode or st.st_gid != gid:
            os.chmod(path, mode)  # (after chown, which clears the set-group-id bit)
            changed += 1
    log(f"{root}: {changed} entries made the instructors' ({group}): folders 2750, files 0640 (0750 executables)"
        + "".join(f"\n  kept readable by the sandbox (students cannot enter {root}): {p}" for p in sorted(public)))
    if exchange is None and os.path.isdir(link) and not os.path.islink(link):
        log(f"note: the exchange is {link}, inside the closed course folder: students cannot reach it (mode (a), "
            "LMS folders, needs none); for nbgrader's exchange add --exchange /srv/nbgrader/exchange")


def check_permissions(course_root: Path) -> list[str]:
    """What other accounts could read, write or enter in the course folder (nothing, after :func:`shared_setup`
    and grading runs), entries not of the course folder's group, public trees the sandbox cannot read, and an
    exchange whose modes are not nbgrader's. Returns the problems, one line each ([] when none)."""
    root = Path(course_root).resolve()
    top = os.stat(root)
    problems = []
    if top.st_mode & 0o007:
        problems.append(f"{root}: mode {stat.S_IMODE(top.st_mode):04o}: other accounts can enter the course "
                        "folder (python -m course.grade --shared-setup GROUP)")
    link = root / EXCHANGE_DIR
    public = set(public_trees(root))
    for path, st in _course_entries(root, public | {link}):
        if stat.S_ISLNK(st.st_mode):
            continue
        if st.st_mode & 0o007:
            problems.append(f"{path}: mode {stat.S_IMODE(st.st_mode):04o}: other accounts have access")
        elif st.st_gid != top.st_gid:
            problems.append(f"{path}: group {st.st_gid}, not the course folder's ({top.st_gid})")
    for tree in public:
        if tree.exists() and (os.stat(tree).st_mode & 0o005) != 0o005:
            problems.append(f"{tree}: the sandbox uid cannot read it (chmod -R a+rX {tree})")
    exchange = _exchange_of(root)
    if exchange.is_dir():
        real = exchange.resolve()
        if real.is_relative_to(root) and top.st_mode & 0o007 == 0:
            pass  # (inside a closed course folder: no student reaches it, nothing to expose)
        else:
            problems += _exchange_problems(real)
    return problems


def _exchange_problems(exchange: Path) -> list[str]:
    problems = []
    mode = stat.S_IMODE(os.stat(exchange).st_mode)
    if mode & 0o777 != 0o777 or not mode & stat.S_ISVTX:
        problems.append(f"{exchange}: mode {mode:04o}, not 1777 (nbgrader's 0777 and the sticky bit)")
    for course in (p for p in exchange.iterdir() if p.is_dir() and not p.is_symlink()):
        for name, path in (("course", course), *((n, course / n) for n in ("outbound", "inbound", "feedback"))):
            if path.is_dir() and stat.S_IMODE(os.stat(path).st_mode) & 0o007 != EXCHANGE_OTHERS[name]:
                problems.append(f"{path}: others have {stat.S_IMODE(os.stat(path).st_mode) & 0o007:o}, nbgrader "
                                f"gives them {EXCHANGE_OTHERS[name]:o}")
        outbound = course / "outbound"
        if outbound.is_dir():
            for path, _, st in plain_tree.walk(outbound):
                if st.st_mode & 0o002:
                    problems.append(f"{path}: writable by other accounts")
    return problems


# ---------------------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------------------
def make_spec(course_root: Path, unsafe: bool, limits: Limits, no_cgroup: bool = False) -> SandboxSpec:
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
                       base_processes=0 if root else _user_process_count(os.getuid()), limits=limits,
                       deny_memfd=no_cgroup)
    return spec


def intake_submitted(submitted: Path, assignment: str) -> tuple[list[str], dict[str, str]]:
    """The submissions in ``submitted/<student>/<assignment>`` that nbgrader may touch, and {student: why not}
    for the others (an unsafe id, a link, a FIFO, a device, an oversized file: course/intake.py)."""
    ok, refused = [], {}
    if not submitted.is_dir():
        return ok, refused
    for entry in sorted(submitted.iterdir()):
        if not os.path.lexists(entry / assignment):
            continue
        if not safe_student_id(entry.name):
            refused[intake.handin.shown(entry.name)[:100]] = ("not a usable student id (letters, digits, _.@-): "
                                                              "not graded")
            continue
        intake.make_private(entry)  # (filled by nbgrader collect or by hand, under whatever umask; nothing followed)
        try:
            problems = intake.inspect(entry)
        except Exception as e:  # (one submission never stops the class: it is refused with the reason)
            problems = [f"could not be inspected ({type(e).__name__}: {intake.handin.shown(str(e))[:200]})"]
        if problems:
            refused[entry.name] = "refused at intake: " + "; ".join(problems[:5])
        else:
            ok.append(entry.name)
    return ok, refused


def grade(assignment: str, course_root: Path = REPO, src: Path | None = None, lms_zip: Path | None = None,
          lms_regexp: str = DEFAULT_LMS_REGEXP, students: list[str] | None = None, workers: int | None = None,
          unsafe: bool = False, cell_timeout: int = 300, submission_timeout: float = 3600,
          limits: Limits | None = None, feedback: bool = True, progress: bool = True, log=print,
          no_cgroup: bool = False) -> dict:
    """The whole grading run; returns the per-submission results and the paths written."""
    course_root = Path(course_root).resolve()
    workers = workers or os.cpu_count() or 1
    limits = limits or Limits(threads=max(1, (os.cpu_count() or 1) // workers))
    if not unsafe:
        try:
            probe()
        except SandboxUnavailable as e:
            raise GradingError(f"refusing to grade: {e}. Student code would run with your rights (it could read "
                               "the solutions and the gradebook or change grades). Install bubblewrap, or grade "
                               "inside Docker (README), or pass --unsafe to grade anyway.") from None
    else:
        log("WARNING: --unsafe: student code runs with your rights, outside any sandbox")
    spec = make_spec(course_root, unsafe, limits, no_cgroup)
    with private_umask():  # every file and folder of course state this run (and all it starts) creates
        return _grade(assignment, course_root, spec, src, lms_zip, lms_regexp, students, workers, cell_timeout,
                      submission_timeout, feedback, progress, log, no_cgroup)


def _grade(assignment, course_root, spec, src, lms_zip, lms_regexp, students, workers, cell_timeout,
           submission_timeout, feedback, progress, log, no_cgroup) -> dict:
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
    # the first submissions' nbgrader processes and check servers import while the gradebook is read
    prestarted = PrestartedPool.for_run(course_root, spec, cell_timeout, len(students))
    prestarted.fill(at_most=workers, yielding=False)
    try:
        _ensure_assignment(course_root, assignment)
        log(f"grading {len(students)} submissions with {workers} workers "
            f"({'sandboxed with bubblewrap' if spec.enabled else 'UNSAFE, no sandbox'})")
        t0 = time.perf_counter()
        results = autograde_all(students, assignment, course_root, spec, workers, cell_timeout, submission_timeout,
                                progress, require_cgroup=not no_cgroup, prestarted=prestarted)
        seconds = time.perf_counter() - t0
    finally:
        prestarted.close()
    graded = {r["student"] for r in results}
    results += [{"student": s, "status": why, "seconds": 0.0} for s, why in sorted(attention.items())
                if s not in graded]
    if feedback:
        generate_feedback(course_root, assignment, [r["student"] for r in results if r["status"] == "ok"])
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
              no_cgroup=args.no_cgroup)
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
