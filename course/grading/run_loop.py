"""The run loop: every submission autograded by its own ``nbgrader autograde --student`` process, ``workers`` at a
time, each worker with its sandbox uid and cgroups, its submission's grading folder a size-limited tmpfs (as root),
its trusted processes forked from the run's fork server (:mod:`.trusted_forkserver`)."""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from course import plain_tree
from course.grading.contract import (AUTOGRADED_DIR, CHECK_SERVER_ENV, DISK_DIR, KERNEL_DISAGREES,
                                     KERNEL_DISAGREES_RECORD, LOGS_DIR, NUMBA_DIR, OVER_DISK_RECORD, RUNTIME_DIR,
                                     STACK_DUMP_SIGNAL, STATE_DIR, SUBMITTED_DIR, VERDICTS_DIR)
from course.grading.errors import GradingError
from course.grading.graded_folder import (DISK_RESERVE_BYTES, is_graded_notebook, keep_graded_notebooks,
                                          restore_exchange_records, trim_to_size_limit)
from course.grading.permissions import AUTOGRADED_MODE
from course.grading.trusted_forkserver_client import TrustedForkServer
from course.grading.trusted_processes import (handed_fds, nbgrader_command, nbgrader_rlimits, start_check_server,
                                              stop_process_group, submission_env, with_trusted_rlimits)
from course.sandbox import (CHECKS_NICENESS, FIRST_SANDBOX_UID, Cgroup, SandboxSpec, SandboxUnavailable,
                            SizeLimitedFolder, UidPool, mount_tmpfs, prepare_numba_cache, unmount, write_kernelspec)

RUNTIME_BYTES = 64 << 20  # the kernels' runtime folder (connection file, IPC sockets)
# imresize's compiled kernels for the sandboxes, kept between grading runs (numba recompiles what is stale)
NUMBA_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sr-kit" / "numba"


def slot_spec(spec: SandboxSpec, slot: int, cgroups: dict | None = None, uids: list[int] | None = None) -> SandboxSpec:
    """``spec`` for worker ``slot``: its sandbox uid and cgroups."""
    if spec.enabled and spec.uid is not None:
        cgroups = cgroups or {}
        spec = SandboxSpec(**{**spec.__dict__, "uid": uids[slot] if uids else FIRST_SANDBOX_UID + slot,
                              "cgroup_procs": cgroups[slot].procs if cgroups.get(slot) else []})
    return spec


def autograde_one(student: str, assignment: str, course_root: Path, spec: SandboxSpec, slot: int,
                  state: Path, cell_timeout: int, submission_timeout: float, cgroups: dict | None = None,
                  uids: list[int] | None = None, forks: TrustedForkServer | None = None,
                  checks_niceness: int = 0) -> dict:
    """``nbgrader autograde --student`` for one submission, killed after ``submission_timeout`` seconds.

    ``forks``: the run's fork server, which its nbgrader process and check server are forked from (else, or if it
    cannot, they start anew); ``checks_niceness``: see :func:`.trusted_processes.submission_env`."""
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
    disk = SizeLimitedFolder(course_root / AUTOGRADED_DIR / student, state / DISK_DIR / student,
                         spec.limits.folder_bytes + DISK_RESERVE_BYTES,
                         keep=lambda parts: parts[0] == assignment and is_graded_notebook(parts[1:]))
    with (disk if spec.enabled else contextlib.nullcontext()), open(log, "wb") as f:
        if spec.enabled and spec.uid is not None and os.geteuid() == 0 and not disk.mounted:
            # (no tmpfs: the folder is made under the private umask) the student side, as the sandbox uid, works in
            # autograded/<student>; other accounts still cannot enter course/autograded
            folder.parent.mkdir(parents=True, exist_ok=True)
            os.chown(folder.parent, spec.uid, -1)
        server = proc = None
        forked = False
        if forks is not None:
            try:
                server, proc = forks.submission(argv, folder, env, f, nbgrader_rlimits(spec))
                forked = True
            except OSError as e:
                f.write(f"[course.grade] {e}: its processes started anew\n".encode())
                f.flush()
        if proc is None:
            # the trusted check server first: it imports torch and the checks while nbgrader starts
            server, handed = start_check_server(folder, env, f)
            try:
                proc = subprocess.Popen(with_trusted_rlimits([nbgrader_command(), *argv], *nbgrader_rlimits(spec)),
                                        cwd=course_root, env={**env, CHECK_SERVER_ENV: json.dumps(handed)}, stdout=f,
                                        stderr=subprocess.STDOUT, start_new_session=True,
                                        pass_fds=handed_fds(handed))
            finally:
                for fd in handed_fds(handed):  # nbgrader holds them now: the server ends when nbgrader does
                    os.close(fd)
        try:
            rc = proc.wait(timeout=submission_timeout)
            status = "ok" if rc == 0 else f"nbgrader exited with code {rc} (see {log})"
        except subprocess.TimeoutExpired:
            if forked:  # (its log then says where it waited: see STACK_DUMP_SIGNAL)
                f.write(f"[course.grade] not done after {submission_timeout:.0f} s: the stack of each of its "
                        "nbgrader process's threads, then it is killed\n".encode())
                f.flush()
                with contextlib.suppress(OSError):
                    os.kill(proc.pid, STACK_DUMP_SIGNAL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=1)
            stop_process_group(proc, wait=0)
            status = f"killed after {submission_timeout:.0f} s"
        stop_process_group(server, wait=10)
    unmount(runtime)
    plain_tree.remove_tree(runtime)
    too_big = trim_to_size_limit(course_root / AUTOGRADED_DIR / student, spec.limits.folder_bytes)
    keep_graded_notebooks(folder)
    if folder.is_dir():
        restore_exchange_records(folder, course_root / SUBMITTED_DIR / student / assignment)
    over = verdicts / student / OVER_DISK_RECORD  # written by TrustedHiddenChecks
    too_big = too_big or (over.read_text()[:300] if over.is_file() else None)
    status = too_big if too_big and status == "ok" else status
    # (finished_at: wall-clock time its sandbox uid had no more work; the uid goes back when the run ends)
    result = {"student": student, "status": status, "seconds": time.perf_counter() - t0, "sandbox_uid": spec.uid,
              "finished_at": time.time()}
    disagrees = verdicts / student / KERNEL_DISAGREES_RECORD
    if disagrees.is_file():  # (graded, feedback made as usual: listed for attention in the summary)
        lines = [line.partition(" ") for line in disagrees.read_text(errors="replace").splitlines()]
        said = [f"{cell}: {KERNEL_DISAGREES.get(code, code)}" for cell, _, code in lines]
        result["attention"] = (f"its kernel's outputs disagree with the trusted decisions in {len(lines)} graded "
                               f"cell(s) (see {disagrees}): " + "; ".join(said[:3]))[:600]
    return result


def with_compiled_imresize(spec: SandboxSpec, state: Path) -> SandboxSpec:
    """``spec`` with imresize's compiled kernels for its sandboxes (compiled once per machine, and again only when
    stale; copied into each sandbox, whose code is read-only to numba), the same kernels copied into the trusted
    processes' own cache in ``state`` (which they write privately). Without a sandbox (``--unsafe``) the kernels
    are copied there too (the notebooks' kernels then share that cache): else the first check server of each course
    compiles them itself (~10 s of CPU). Costs no process when the machine's cache is fresh."""
    cache = prepare_numba_cache(NUMBA_CACHE)
    if cache:
        for path in Path(cache).rglob("*"):
            if path.is_file() and not path.is_symlink():
                target = state / NUMBA_DIR / path.relative_to(cache)
                with contextlib.suppress(OSError):
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(path, target)
    return dataclasses.replace(spec, numba_cache=cache) if spec.enabled else spec


class GradingSlots:
    """``workers`` slots to grade submissions in, at once: each with a sandbox uid held by this process alone
    (``UidPool``) and, unless ``require_cgroup`` is False, a memory + process cgroup; the trusted processes forked
    from ``forks`` (else from a fork server started, and ended, here). :meth:`grade` takes a free slot, grades one
    submission in it (:func:`autograde_one`) and gives the slot back; thread-safe. The one way submissions are
    graded: by :func:`autograde_all` on one machine and by each cluster worker (:mod:`.cluster_worker`)."""

    def __init__(self, course_root: Path, spec: SandboxSpec, workers: int, cell_timeout: int = 300,
                 require_cgroup: bool = True, forks: TrustedForkServer | None = None):
        self.course_root, self.workers, self.cell_timeout = Path(course_root), workers, cell_timeout
        self.state = self.course_root / STATE_DIR
        self.state.mkdir(parents=True, exist_ok=True)
        write_kernelspec(self.state)
        self.spec = spec = with_compiled_imresize(spec, self.state)
        self._free = list(range(workers))
        self._lock = threading.Lock()
        self.cgroups, self.uid_pool = {}, None
        if spec.enabled and spec.uid is not None:
            try:
                self.uid_pool = UidPool(workers)
            except SandboxUnavailable as e:
                raise GradingError(str(e)) from None
        if spec.enabled:  # one memory + process cgroup per worker (root with a writable cgroupfs)
            Cgroup.remove_stale()  # (those of runs killed before they removed theirs)
            for slot in range(workers):
                self.cgroups[slot] = Cgroup.create(Cgroup.owned_name(f"w{slot}"), spec.limits.memory_bytes,
                                                   spec.limits.processes)
            if require_cgroup and not all(self.cgroups.values()):
                self._release()
                raise GradingError("no writable cgroup (memory + pids controllers) here, so nothing bounds the memory "
                                   "of a sandbox as a whole (tmpfs and memfd pages escape the per-process limits). "
                                   "Grade as root on a host with cgroups, or pass --no-cgroup to rely on per-process "
                                   "limits (then memfd_create is denied to student code)")
        self._own_forks = forks is None
        try:
            self.forks = TrustedForkServer.for_run(self.course_root, spec, cell_timeout) if forks is None else forks
        except BaseException:
            self._release()
            raise

    def grade(self, student: str, assignment: str, submission_timeout: float = 3600) -> dict:
        """Autograde ``student``'s submission in a free slot (a worker's thread waits for none: at most
        ``workers`` threads call this at once)."""
        with self._lock:
            slot = self._free.pop()
        try:
            return autograde_one(student, assignment, self.course_root, self.spec, slot, self.state,
                                 self.cell_timeout, submission_timeout, self.cgroups,
                                 self.uid_pool.uids if self.uid_pool else None, forks=self.forks,
                                 checks_niceness=CHECKS_NICENESS if self.workers == 1 else 0)
        finally:
            with self._lock:
                self._free.append(slot)

    def _release(self) -> None:
        for cg in self.cgroups.values():
            if cg is not None:
                cg.remove()
        self.cgroups = {}
        if self.uid_pool:
            self.uid_pool.release()
            self.uid_pool = None

    def close(self) -> None:
        if self._own_forks and self.forks is not None:
            self.forks.close()
        self.forks = None
        self._release()

    def __enter__(self) -> "GradingSlots":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def autograde_all(students: list[str], assignment: str, course_root: Path, spec: SandboxSpec, workers: int,
                  cell_timeout: int = 300, submission_timeout: float = 3600, progress: bool = True,
                  require_cgroup: bool = True, forks: TrustedForkServer | None = None,
                  graded=None) -> list[dict]:
    """Autograde ``students`` with ``workers`` nbgrader processes at a time (:class:`GradingSlots`). ``forks``:
    the run's fork server of trusted processes (else one is started, and ended, here); ``graded(result)`` is called
    as each submission is done (from its worker's thread)."""
    from tqdm.auto import tqdm

    with GradingSlots(course_root, spec, workers, cell_timeout, require_cgroup, forks) as slots:
        def run(student):
            result = slots.grade(student, assignment, submission_timeout)
            if graded is not None:
                graded(result)
            return result

        results = []
        with ThreadPoolExecutor(max_workers=workers) as pool, \
                tqdm(total=len(students), desc="autograde", unit="submission", disable=not progress) as bar:
            for r in pool.map(run, students):
                results.append(r)
                bar.update()
    return results
