"""The grader's side of the fork server of trusted processes (:mod:`.trusted_forkserver`): start it once per
grading run, and get each submission's nbgrader process and check server forked from it, as
:class:`ForkedProcess` objects that wait, poll and are stopped like :class:`subprocess.Popen`.

Where the fork server cannot serve (it ended, or did not answer in time), the caller starts the processes the
usual way (:func:`.trusted_processes.start_check_server` and a new nbgrader process): the fork server only saves
their imports.
"""
from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

from course.grading.contract import (CHECK_SERVER_ENV, COURSE_ROOT_ENV, FORKSERVER_LOG, RUNTIME_DIR, STATE_DIR,
                                     TRUSTED_FORKSERVER_MODULE, ZYGOTE_KERNELS_OPTION, python_module)
from course.grading.trusted_forkserver import CHECK_SERVER, MAX_FDS, MAX_MESSAGE, NBGRADER
from course.grading.trusted_processes import (TRUSTED_CPU_SECONDS, TRUSTED_MEMORY_BYTES, nbgrader_rlimits,
                                              stop_process_group, submission_env, with_trusted_rlimits)
from course.sandbox import SandboxSpec

READY_TIMEOUT = 300.0  # seconds for the fork server's imports (a busy machine), before jobs start the usual way
FORK_TIMEOUT = 60.0  # seconds for a fork to be reported, once the server is ready


class ForkedProcess:
    """A child of the fork server, seen from the grader: ``pid``, ``returncode`` (None while it runs), ``poll()``
    and ``wait(timeout)`` as :class:`subprocess.Popen` has them. It leads a session of its own (``os.killpg``)."""

    def __init__(self, pid: int, kind: str):
        self.pid, self.kind, self.args = pid, kind, [TRUSTED_FORKSERVER_MODULE, kind]
        self.returncode: int | None = None
        self._ended = threading.Event()

    def _set(self, returncode: int) -> None:
        self.returncode = returncode
        self._ended.set()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._ended.wait(timeout):
            raise subprocess.TimeoutExpired(self.args, timeout)
        return self.returncode


class TrustedForkServer:
    """A running fork server: ``spawn`` forks a trusted process from it; ``close`` ends it. Thread-safe (the run's
    workers share it). ``env``: its environment (each job brings its own); ``limits``: its rlimits (bytes, seconds),
    at least those of any job (a child can only lower them)."""

    def __init__(self, env: dict, log: Path, limits: tuple[int, int]):
        log.parent.mkdir(parents=True, exist_ok=True)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            with open(log, "ab") as f:
                argv = python_module(TRUSTED_FORKSERVER_MODULE, str(theirs.fileno()), bytecode=False)
                self.proc = subprocess.Popen(with_trusted_rlimits(argv, *limits), stdin=subprocess.DEVNULL, stdout=f,
                                             stderr=subprocess.STDOUT, env=env, cwd=env[COURSE_ROOT_ENV],
                                             start_new_session=True, pass_fds=(theirs.fileno(),))
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        self.sock, self.log, self.limits = ours, log, tuple(limits)
        self._ids = itertools.count()
        self._lock = threading.Lock()  # one sender at a time
        self._state = threading.Condition()
        self._answers: dict = {}  # job id -> the server's answer
        self._children: dict[int, ForkedProcess] = {}
        self._ready = False
        self._gone = False
        threading.Thread(target=self._read, name="trusted-forkserver", daemon=True).start()

    @classmethod
    def for_run(cls, course_root: Path, spec: SandboxSpec, cell_timeout: int) -> "TrustedForkServer":
        """The fork server of a grading run, in the environment its processes share (each job gives its own)."""
        state = course_root / STATE_DIR
        return cls(submission_env(course_root, spec, state, state / RUNTIME_DIR / "w0", cell_timeout, 0),
                   state / FORKSERVER_LOG, nbgrader_rlimits(spec))

    def _read(self) -> None:
        while True:
            try:
                data = self.sock.recv(MAX_MESSAGE)
            except OSError:
                data = b""
            if not data:
                break
            message = json.loads(data)
            with self._state:
                if "ready" in message:
                    self._ready = True
                elif "returncode" in message:
                    child = self._children.pop(message["pid"], None)
                    if child is not None:
                        child._set(message["returncode"])
                else:
                    if "pid" in message:  # (registered here, before its end can be read)
                        message["child"] = self._children[message["pid"]] = ForkedProcess(message["pid"],
                                                                                          message["kind"])
                    self._answers[message["id"]] = message
                self._state.notify_all()
        with self._state:
            self._gone = True
            self._state.notify_all()
            orphans, self._children = list(self._children.values()), {}
        for child in orphans:  # (their ends can no longer be reported: watched here)
            threading.Thread(target=_watch, args=(child,), daemon=True).start()

    def spawn(self, kind: str, argv: list[str], env: dict, cwd: Path, limits: tuple[int, int],
              fds: dict[int, int]) -> ForkedProcess:
        """Fork ``kind`` (:data:`.trusted_forkserver.NBGRADER` or ``CHECK_SERVER``) with ``argv``, environment ``env``, in ``cwd``, with
        rlimits ``limits`` (bytes, seconds) and the descriptors ``fds`` (its fd -> ours; 0, 1 and 2 among them).
        :class:`OSError` if the server cannot (it ended, or did not answer in time): start it the usual way."""
        job_id = next(self._ids)
        order = sorted(set(fds.values()))
        job = {"id": job_id, "kind": kind, "argv": [str(a) for a in argv], "env": env, "cwd": str(cwd),
               "limits": list(limits), "fds": {str(t): order.index(ours) for t, ours in fds.items()}}
        data = json.dumps(job).encode()
        if any(mine > its for mine, its in zip(limits, self.limits)):
            raise OSError(f"rlimits {tuple(limits)} are above the fork server's {self.limits}: a child cannot raise them")
        if len(data) > MAX_MESSAGE or len(order) > MAX_FDS:
            raise OSError(f"a job of {len(data)} bytes with {len(order)} descriptors is more than the fork server "
                          "takes")
        deadline = time.monotonic() + READY_TIMEOUT
        with self._state:
            while not self._ready and not self._gone:
                if not self._state.wait(deadline - time.monotonic()) and time.monotonic() >= deadline:
                    raise OSError(f"the fork server was not ready after {READY_TIMEOUT:.0f} s (see {self.log})")
            if self._gone:
                raise OSError(f"the fork server has ended (see {self.log})")
        try:
            with self._lock:
                socket.send_fds(self.sock, [data], order)
        except OSError as e:
            raise OSError(f"the fork server has ended ({e}; see {self.log})") from None
        deadline = time.monotonic() + FORK_TIMEOUT
        with self._state:
            while job_id not in self._answers:
                if self._gone or not self._state.wait(max(0.0, deadline - time.monotonic())):
                    raise OSError(f"the fork server did not fork {kind} (see {self.log})")
            answer = self._answers.pop(job_id)
        if "error" in answer:
            raise OSError(f"the fork server refused a job: {answer['error']}")
        return answer["child"]

    def submission(self, argv: list[str], folder: Path, env: dict, log, nbgrader_limits: tuple[int, int]):
        """A submission's check server of ``folder`` and its ``nbgrader ARGV`` process, forked, both writing to the
        open file ``log``, joined by a pipe for requests and one for answers, and by the socket of the zygote's
        kernels (the check server starts the zygote; the ends nbgrader gets: its ``$SR_KIT_CHECK_SERVER``).
        Returns (server, nbgrader); :class:`OSError` as :meth:`spawn`."""
        folder.parent.mkdir(parents=True, exist_ok=True)  # the zygote binds it (nbgrader makes ``folder``)
        requests_read, requests_write = os.pipe()
        answers_read, answers_write = os.pipe()
        kernels_ours, kernels_theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        null = os.open(os.devnull, os.O_RDONLY)
        cwd = Path(env[COURSE_ROOT_ENV])
        try:
            server = self.spawn(CHECK_SERVER, [str(folder), ZYGOTE_KERNELS_OPTION, str(SERVER_KERNELS_FD)], env, cwd,
                                (TRUSTED_MEMORY_BYTES, TRUSTED_CPU_SECONDS),
                                {0: requests_read, 1: answers_write, 2: log.fileno(),
                                 SERVER_KERNELS_FD: kernels_theirs.fileno()})
            # (in nbgrader, its ends are at fixed numbers, above any its fork server could have open; not at this
            # process's numbers, which grow with the workers' open files)
            handed = {"folder": str(folder), "fds": list(HANDED_FDS[:2]), "kernels": HANDED_FDS[2]}
            try:
                nbgrader = self.spawn(NBGRADER, argv, {**env, CHECK_SERVER_ENV: json.dumps(handed)}, cwd,
                                      nbgrader_limits, {0: null, 1: log.fileno(), 2: log.fileno(),
                                                        HANDED_FDS[0]: requests_write, HANDED_FDS[1]: answers_read,
                                                        HANDED_FDS[2]: kernels_ours.fileno()})
            except OSError:
                stop_process_group(server, wait=0)
                raise
        finally:
            for fd in (requests_read, requests_write, answers_read, answers_write, null):
                os.close(fd)
            kernels_ours.close()
            kernels_theirs.close()
        return server, nbgrader

    def close(self) -> None:
        """End the server (its children have been waited for, or are stopped by their callers)."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        stop_process_group(self.proc, wait=10)


# a forked nbgrader's ends of its check server's pipes, requests (write) and answers (read), and of its zygote's
# kernel socket; the check server's end of that socket
HANDED_FDS = (100, 101, 102)
SERVER_KERNELS_FD = 3


def _watch(child: ForkedProcess) -> None:
    """The end of a child whose fork server ended before it: reparented, so only its disappearance (or its becoming
    a zombie its new parent has not reaped) can be seen; its exit status is lost (-9 stands for it)."""
    while True:
        try:
            with open(f"/proc/{child.pid}/stat") as f:
                if f.read().rpartition(")")[2].split()[0] == "Z":
                    break
        except (OSError, IndexError):
            break
        time.sleep(0.2)
    child._set(-9)
