"""A prestarted grading process: a trusted process started before its submission, which imports what it needs now
and runs when told.

    python -I -m course.grading.prestarted nbgrader|check-server

Started by the grading command (``course.grade``) for a worker's *next* submission while the current one runs,
so that the next one does not wait for ``import nbgrader.apps`` (2.5 s) or torch (2 s): a grading run pays those
once per worker instead of once per submission, like a plain ``nbgrader autograde`` that grades the whole class in
one process. (The grading command, as root, lowers this process's priority until the job starts: its imports use
what the running submission leaves idle.)

The job arrives as the first line on stdin, JSON: ``{"argv": [...], "env": {...}, "log": path}`` -- the
arguments, the variables to add to the environment (the rest was given at start) and the file that stdout (for
nbgrader) and stderr go to from then on. It is read byte by byte: for the check server, stdin goes on with its
requests (the grading command writes the job line into the requests pipe before nbgrader writes anything).

* ``nbgrader``: ``nbgrader ARGV`` in this process (stdin becomes /dev/null);
* ``check-server``: :mod:`.check_server` with ARGV in this process.

Like the processes it stands in for, this one never imports or executes student code; the job line comes from
the grading command (its pipe), never from a submission.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time


def read_job(fd: int = 0) -> dict | None:
    """The first line on ``fd``, as JSON, reading nothing past it (None if the pipe ends first)."""
    line = bytearray()
    while not line.endswith(b"\n"):
        byte = os.read(fd, 1)
        if not byte:
            return None
        line += byte
    return json.loads(line)


def preload(kind: str):
    """Import what ``kind`` needs; returns the function that runs its job with an argument list."""
    if kind == "nbgrader":
        # what `nbgrader autograde` imports before its first notebook
        import nbgrader.converters  # noqa: F401
        import nbgrader.preprocessors  # noqa: F401
        from nbgrader.apps.nbgraderapp import main

        def run(argv):
            sys.argv = ["nbgrader", *argv]
            return main()
        return run
    if kind == "check-server":
        from . import check_server

        check_server.preload()
        return check_server.main
    raise SystemExit(f"prestarted.py: unknown kind {kind!r} (nbgrader or check-server)")


def main(argv=None) -> int:
    kind = (sys.argv[1:] if argv is None else argv)[0]
    t0 = time.monotonic()
    run = preload(kind)
    ready = time.monotonic()
    job = read_job()
    if job is None:  # the grading run ended without a submission for this process
        return 0
    os.environ.update(job.get("env", {}))
    tempfile.tempdir = None  # (TMPDIR may have changed)
    log = os.open(job["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    for fd in ((2,) if kind == "check-server" else (1, 2)):
        os.dup2(log, fd)
    os.close(log)
    if kind == "nbgrader":
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
    print(f"[prestarted.py] {kind} started ahead: ready after {ready - t0:.1f} s, "
          f"waited {time.monotonic() - ready:.1f} s for its submission", file=sys.stderr, flush=True)
    return run(job["argv"])


if __name__ == "__main__":
    sys.exit(main())
