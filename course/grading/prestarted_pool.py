"""Prestarted processes: a worker's next nbgrader process and check server, started before their submission is
needed, while the worker's current submission runs, so that their imports (nbgrader 2.5 s, torch 2 s) do not wait.

This is the grader's side; the processes themselves run :mod:`course.grading.prestarted`, which reads its job
(arguments, environment, log) as the first line of its stdin.
"""
from __future__ import annotations

import contextlib
import itertools
import json
import os
import subprocess
import threading
from pathlib import Path

from course.grading.contract import (CHECK_SERVER_ENV, COURSE_ROOT_ENV, PRESTARTED_DIR, PRESTARTED_MODULE, RUNTIME_DIR,
                                     STATE_DIR, python_module)
from course.grading.trusted_processes import (assign_check_server, nbgrader_rlimits, start_check_server,
                                              stop_process_group, submission_env, with_trusted_rlimits)
from course.sandbox import SandboxSpec, set_priority
from course.sandbox import checks_niceness as sandbox_checks_niceness

PRESTARTED_NICENESS = 19  # (root) the imports of a worker's next submission use what the current one leaves idle


class Prestarted:
    """A worker's next nbgrader process and check server, prestarted: started before their submission is needed,
    while the worker's current one runs (:mod:`course.grading.prestarted`). They import nbgrader and torch now, and
    get their submission with :meth:`go`. This side keeps the server's requests end until then: its job line goes
    there first. ``nbgrader_limits``: the nbgrader process's rlimits, (bytes, seconds) (:func:`nbgrader_rlimits`);
    ``yielding``: (root) both run at :data:`PRESTARTED_NICENESS` until :meth:`go`."""

    def __init__(self, env: dict, log: Path, nbgrader_limits: tuple[int, int], yielding: bool = True):
        log.parent.mkdir(parents=True, exist_ok=True)
        self.log = log
        self.nbgrader = None
        with open(log, "wb") as f:
            self.server, self.handed = start_check_server(None, env, f)
            self.requests_open = True
            try:
                self.nbgrader = subprocess.Popen(with_trusted_rlimits(python_module(PRESTARTED_MODULE, "nbgrader",
                                                                                    bytecode=False), *nbgrader_limits),
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
                   state / PRESTARTED_DIR, nbgrader_rlimits(spec), submissions)

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
        """For a submission that starts now: a prestarted set, if there is one."""
        with self.lock:
            self.unstarted -= 1
            return self.ready.pop(0) if self.ready else None

    def close(self) -> None:
        with self.lock:
            while self.ready:
                self.ready.pop().stop()
