"""The trusted processes a grading run starts -- a submission's nbgrader process, its check server, feedback --:
nbgrader's command, their environment, their memory and CPU-time rlimits, how a check server is started with its
pipes, and how a process group is stopped.

They never run student code, but they parse what it produced: each runs behind :func:`with_trusted_rlimits`
(``RLIMIT_DATA`` and ``RLIMIT_CPU``, bytes and seconds). The sandbox's own limits are :class:`course.sandbox.Limits`.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from course.grading.contract import (AFTER_NOTEBOOK, CELL_TIMEOUT_ENV, CHECK_COMMAND_ENV, CHECK_SERVER_MODULE,
                                     CHECKS_NICENESS_ENV, COURSE_ROOT_ENV, HIDDEN_CHECKS_ENV, KERNEL_ENV, NUMBA_DIR,
                                     SANDBOX_ENV, STATE_DIR, VERDICTS_DIR, VERDICTS_ENV, ZYGOTE_KERNELS_OPTION,
                                     python_module)
from course.grading.errors import GradingError
from course.paths import ToolMissing, nbgrader_executable, tool_env
from course.sandbox import KERNEL_NAME, SandboxSpec

# rlimits of the trusted processes the grader starts (they parse what student code produced): bytes of
# RLIMIT_DATA, seconds of RLIMIT_CPU
TRUSTED_MEMORY_BYTES = 6 << 30
TRUSTED_CPU_SECONDS = 7200


def nbgrader_command() -> str:
    """nbgrader's executable (:func:`course.paths.nbgrader_executable`); :class:`GradingError` where it is missing."""
    try:
        return nbgrader_executable()
    except ToolMissing as e:
        raise GradingError(str(e)) from None


def trusted_env(course_root: Path) -> dict:
    """The environment of the grader's trusted processes for ``course_root`` (variable -> value, strings)."""
    # nbgrader runs `alembic` by name when it upgrades a gradebook: the venv's bin/ must be on PATH. The grader's
    # processes create files under the private umask: they write no cache into the public trees the sandbox reads
    # (bytecode, numba's compiled imresize: theirs is kept with the grading state)
    return tool_env(**{COURSE_ROOT_ENV: str(course_root), "PYTHONDONTWRITEBYTECODE": "1",
                       "NUMBA_CACHE_DIR": str(Path(course_root) / STATE_DIR / NUMBA_DIR)})


def with_trusted_rlimits(argv: list[str], memory_bytes: int = TRUSTED_MEMORY_BYTES,
                         cpu_seconds: int = TRUSTED_CPU_SECONDS) -> list[str]:
    """``argv`` behind a tiny launcher that sets the rlimits of a trusted process -- memory (``RLIMIT_DATA``,
    ``memory_bytes``) and CPU time (``RLIMIT_CPU``, ``cpu_seconds``) -- then execs it: the trusted nbgrader
    processes parse what student code produced, and must not grow without limit."""
    return [sys.executable, "-I", "-c", _RLIMITS_LAUNCHER, str(memory_bytes), str(cpu_seconds), *argv]


_RLIMITS_LAUNCHER = ("import os, resource, sys\nm, c = int(sys.argv[1]), int(sys.argv[2])\n"
                     "resource.setrlimit(resource.RLIMIT_DATA, (m, m))\n"
                     "resource.setrlimit(resource.RLIMIT_CPU, (c, c))\n"
                     "os.execvp(sys.argv[3], sys.argv[3:])\n")


def nbgrader_rlimits(spec: SandboxSpec) -> tuple[int, int]:
    """Memory and CPU-time rlimits (bytes, seconds) of a submission's nbgrader process (its kernels inherit these
    hard limits and lower them: they must not be below the sandbox's own)."""
    return (max(TRUSTED_MEMORY_BYTES, spec.limits.memory_bytes + (2 << 30)),
            max(TRUSTED_CPU_SECONDS, 2 * spec.limits.cpu_seconds))


def submission_env(course_root: Path, spec: SandboxSpec, state: Path, runtime: Path, cell_timeout: int,
                   checks_niceness: int) -> dict:
    """The environment of a submission's nbgrader process and check server (the same for every submission of a
    worker: its sandbox uid and cgroups are in ``spec``); ``checks_niceness``: that of the hidden checks'
    processes (``course.sandbox.CHECKS_NICENESS`` with one worker, else 0)."""
    env = {**trusted_env(course_root), SANDBOX_ENV: spec.to_json(), CELL_TIMEOUT_ENV: str(cell_timeout),
           VERDICTS_ENV: str(state / VERDICTS_DIR), "JUPYTER_RUNTIME_DIR": str(runtime),
           "TMPDIR": str(runtime), "JUPYTER_PATH": str(state) + os.pathsep + os.environ.get("JUPYTER_PATH", ""),
           KERNEL_ENV: KERNEL_NAME if spec.enabled else "python3",
           "OMP_NUM_THREADS": str(spec.limits.threads),
           HIDDEN_CHECKS_ENV: AFTER_NOTEBOOK,  # (the sandbox sets it too) TrustedHiddenChecks runs them
           CHECKS_NICENESS_ENV: str(checks_niceness)}
    env.pop(CHECK_COMMAND_ENV, None)
    return env


def start_check_server(folder: Path, env: dict, log) -> tuple[subprocess.Popen, dict]:
    """Start the trusted check server of one submission (:mod:`course.grading.check_server`; it never runs student
    code) with a pipe for requests and one for answers, as a new process (usually it is forked:
    :meth:`.trusted_forkserver_client.TrustedForkServer.submission`), and the socket of its zygote's kernels. Returns
    the process and ``{"folder", "fds", "kernels"}``: the ends the submission's nbgrader process gets
    (``check_server_client``), to be closed here once it has them (:func:`handed_fds`)."""
    import socket

    folder.parent.mkdir(parents=True, exist_ok=True)  # the zygote binds it (nbgrader makes ``folder``)
    requests_read, requests_write = os.pipe()
    answers_read, answers_write = os.pipe()
    kernels_ours, kernels_theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        argv = python_module(CHECK_SERVER_MODULE, str(folder), ZYGOTE_KERNELS_OPTION, str(kernels_theirs.fileno()),
                             bytecode=False)
        server = subprocess.Popen(with_trusted_rlimits(argv), stdin=requests_read, stdout=answers_write, stderr=log,
                                  env=env, cwd=env[COURSE_ROOT_ENV], start_new_session=True,
                                  pass_fds=(kernels_theirs.fileno(),))
    except OSError:
        for fd in (requests_write, answers_read):
            os.close(fd)
        kernels_ours.close()
        raise
    finally:
        os.close(requests_read)
        os.close(answers_write)
        kernels_theirs.close()
    return server, {"folder": str(folder), "fds": [requests_write, answers_read], "kernels": kernels_ours.detach()}


def handed_fds(handed: dict) -> list[int]:
    """Every descriptor of ``handed`` (:func:`start_check_server`'s): those the nbgrader process inherits."""
    return [*handed["fds"], handed["kernels"]]


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
