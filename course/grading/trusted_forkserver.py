"""The fork server of a grading run's trusted processes: one process that imports nbgrader, torch and the checks
once, then forks each submission's nbgrader process and check server, and the run's feedback process, from itself.

    python -I -B -m course.grading.trusted_forkserver FD   # FD: its end of a SOCK_SEQPACKET socket pair

Started by the grading command (``course.grade``; its side is :mod:`.trusted_forkserver_client`) once per run.
Importing ``nbgrader.apps`` takes ~3 s of CPU and torch with the checks ~3 s: a new Python per submission and
process paid that for every submission (~6 s of CPU each, half of what the trusted side of a small submission
costs); a fork pays it once per run, like a plain ``nbgrader autograde`` that grades the whole class in one process.

Like the processes it forks, this one never imports or executes student code, and it only takes jobs from the
socket its grading command made (a private socket pair, descriptor FD). The protocol (:mod:`.contract`,
``TRUSTED_FORKSERVER_MODULE``), one JSON object per message:

* from this server, once its imports are done: ``{"ready": seconds}``;
* from the grader, a job, with file descriptors attached (``SCM_RIGHTS``): ``{"id": n, "kind": "nbgrader" |
  "check-server" | "feedback", "argv": [...], "env": {...}, "cwd": path, "limits": [bytes, seconds], "fds":
  {target: index}}`` -- the child gets the ``index``-th attached descriptor as its fd ``target`` (0, 1, 2 among
  them), its own session, the environment ``env`` (whole), RLIMIT_DATA and RLIMIT_CPU ``limits``, and runs
  ``nbgrader ARGV``, ``check_server ARGV`` or ``feedback_server ARGV`` (the run's feedback pages);
* from this server: ``{"id": n, "pid": pid, "kind": kind}`` once the child has taken the job (its session,
  limits, descriptors, folder and environment) (``{"id": n, "error": why}`` if it could not), and
  ``{"pid": pid, "returncode": rc}`` when that child ends (``rc`` as :class:`subprocess.Popen` gives it: minus the
  signal that killed it).

When the grader's end closes, this server ends. The grader stops its children first; any still running then (the
grader was killed: a cluster worker's process, an interrupted run) are killed with their sessions, so that no
nbgrader process of a run that is gone writes a grade while the submission is graded again elsewhere.
"""
from __future__ import annotations

import faulthandler
import fcntl
import gc
import json
import os
import resource
import select
import signal
import socket
import sys
import tempfile
import time
import traceback

from .contract import FORKED_MARK, STACK_DUMP_SIGNAL

MAX_MESSAGE = 1 << 20  # bytes of one job (its environment is most of it)
MAX_FDS = 16  # descriptors attached to one job
NBGRADER, CHECK_SERVER, FEEDBACK = "nbgrader", "check-server", "feedback"  # the kinds of job


def preload() -> dict:
    """Import what the two kinds of process need; returns kind -> the function that runs a job with its argv."""
    # what `nbgrader autograde` imports before its first notebook
    import nbgrader.converters  # noqa: F401
    import nbgrader.preprocessors  # noqa: F401
    from nbgrader.apps.nbgraderapp import main as nbgrader_main
    from nbformat import v4
    from nbformat.validator import get_validator

    from . import check_server, feedback_server

    # nbformat's notebook schema, compiled once here (fastjsonschema) instead of in each nbgrader process: as nbformat
    # reads and writes notebooks and as nbconvert's exporter checks them (with relax_add_props)
    for relaxed in (False, True):
        get_validator(4, v4.nbformat_minor, relax_add_props=relaxed)

    # (numba's compiler is set up here, its compiled kernels loaded by each child: numba's OpenMP threads, which
    # loading them starts, do not survive a fork)
    check_server.preload(compiled_kernels=False)

    def run_nbgrader(argv):
        sys.argv = ["nbgrader", *argv]
        return nbgrader_main()

    return {NBGRADER: run_nbgrader, CHECK_SERVER: check_server.main, FEEDBACK: feedback_server.main}


def _send(sock: socket.socket, message: dict) -> None:
    sock.send(json.dumps(message).encode())


def _exit_code(code) -> int:
    """The exit status of ``sys.exit(code)``."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def become(job: dict, fds: list[int], run, started: float, closing: list[int], taken: int) -> int:
    """In the forked child: take the job's descriptors, session, limits, folder and environment, close ``taken``
    (the server then reports the fork: the child is already what the job asked for), then run it. Returns the exit
    status. ``closing``: this server's own descriptors (the socket, the wake-up pipe)."""
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for fd in closing:
        os.close(fd)
    os.setsid()
    memory, cpu = (int(x) for x in job["limits"])
    resource.setrlimit(resource.RLIMIT_DATA, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    # each attached descriptor moved out of the way first, so that a target never overwrites one not yet placed,
    # and so is ``taken`` (this server's, closed last): had it stayed where a target goes, closing it would close
    # what was placed there (nbgrader's end of its check server's answers, in grading runs with several workers)
    targets = {int(t): int(i) for t, i in job["fds"].items()}
    above = max(64, *targets) + 1
    moved = fcntl.fcntl(taken, fcntl.F_DUPFD, above)
    os.close(taken)
    taken = moved
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, above) for fd in fds]
    for fd in fds:
        os.close(fd)
    for target, index in sorted(targets.items()):
        os.dup2(high[index], target, inheritable=target < 3)
    for fd in high:
        os.close(fd)
    os.chdir(job["cwd"])
    os.environ.clear()
    os.environ.update(job["env"])
    tempfile.tempdir = None  # (TMPDIR is the job's now)
    os.close(taken)
    print(f"{FORKED_MARK} {job['kind']}: forked from the run's fork server, imports done once "
          f"{time.monotonic() - started:.0f} s ago", file=sys.stderr, flush=True)
    faulthandler.register(STACK_DUMP_SIGNAL, file=2, all_threads=True)  # (descriptor 2: the job's log)
    try:
        code = _exit_code(run(list(job["argv"])))
    except SystemExit as e:
        code = _exit_code(e.code)
    except BaseException:  # noqa: BLE001 (the child's own failure, reported in its log)
        traceback.print_exc()
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    return code


def serve(sock: socket.socket, runners: dict, started: float) -> None:
    """Fork a child for each job on ``sock``, report its pid and, when it ends, its exit status; until ``sock``
    closes."""
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # (a handler, so that the wake-up fd hears of it)
    running: set[int] = set()  # children not yet reaped
    try:
        while True:
            readable, _, _ = select.select([sock, wake_read], [], [])
            if wake_read in readable:
                os.read(wake_read, 512)
            running -= _reap(sock)
            if sock not in readable:
                continue
            try:
                data, fds, _, _ = socket.recv_fds(sock, MAX_MESSAGE, MAX_FDS)
            except ConnectionResetError:
                data, fds = b"", []
            if not data:
                return
            job = None
            try:
                job = json.loads(data)
                run = runners[job["kind"]]
                # a target where this server has a descriptor of its own (that the child keeps) is refused: the
                # child's copy of that file would be replaced, and closing it later would close the job's
                own = {sock.fileno(), wake_read, wake_write, *fds}
                busy = [t for t in map(int, job["fds"]) if t > 2 and t not in own and _is_open(t)]
                if busy:
                    raise ValueError(f"descriptors {busy} are this server's own")
            except (ValueError, KeyError, TypeError) as e:
                for fd in fds:
                    os.close(fd)
                _send(sock, {"id": job.get("id") if isinstance(job, dict) else None, "error": f"refused: {e}"})
                continue
            sys.stdout.flush()
            sys.stderr.flush()
            taken_read, taken_write = os.pipe()
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    os.close(taken_read)
                    # (the socket's descriptor detached: closed in the child, never closed again by its object)
                    code = become(job, fds, run, started, [sock.detach(), wake_read, wake_write], taken_write)
                except BaseException:  # noqa: BLE001 (taking the job failed: said in its log, or this server's)
                    traceback.print_exc()
                finally:
                    os._exit(code)
            for fd in (*fds, taken_write):
                os.close(fd)
            running.add(pid)
            os.read(taken_read, 1)  # (end of file once the child has taken its job, or has ended)
            os.close(taken_read)
            _send(sock, {"id": job.get("id"), "pid": pid, "kind": job["kind"]})
    finally:  # (the grader is gone: its end closed, or a report could not reach it)
        _kill_sessions(running - _reap(sock))
        signal.set_wakeup_fd(-1)
        os.close(wake_read)
        os.close(wake_write)


def _is_open(fd: int) -> bool:
    try:
        fcntl.fcntl(fd, fcntl.F_GETFD)
    except OSError:
        return False
    return True


def _reap(sock: socket.socket) -> set[int]:
    """Report the children that ended (while the grader listens); returns their pids."""
    ended = set()
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return ended
        if pid == 0:
            return ended
        ended.add(pid)
        try:
            _send(sock, {"pid": pid, "returncode": os.waitstatus_to_exitcode(status)})
        except OSError:  # (the grader is gone)
            pass


def _kill_sessions(pids: set[int]) -> None:
    """Kill the sessions of children still running once the grader is gone (each leads its own: ``become``)."""
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
    for pid in pids:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


def main(argv=None) -> int:
    t0 = time.monotonic()
    fd, = (sys.argv[1:] if argv is None else argv)
    sock = socket.socket(fileno=int(fd))
    runners = preload()
    gc.freeze()  # (what the imports made stays shared with the children: no copy when they collect)
    _send(sock, {"ready": round(time.monotonic() - t0, 2)})
    print(f"{FORKED_MARK} fork server ready after {time.monotonic() - t0:.1f} s", file=sys.stderr, flush=True)
    try:
        serve(sock, runners, time.monotonic())
    except (BrokenPipeError, ConnectionResetError):  # the grading command ended
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
