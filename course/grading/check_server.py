"""The trusted side of the hidden checks under the sandboxed grader, as a process of its own (one per submission).

    python -I -m course.grading.check_server FOLDER

Started by the grading command (``course.grade``) beside each submission's nbgrader process, which talks to it
through ``check_server_client.CheckServer`` (or starts it itself); forked from the run's fork server
(:mod:`.trusted_forkserver`, which imported torch and the checks once for the run). With one worker it runs at
``course.sandbox.CHECKS_NICENESS``, its student side too: they yield to the notebook's kernel and use what it
leaves idle. Requests arrive on stdin, one JSON object per line, each with the seconds a check may take
(``"timeout"``); each gets one JSON line on stdout, in order:

* ``{"op": "early", "names": [...]}``: decide now those of ``names`` that read nothing but the notebooks' sources
  (``checks.SOURCES_ONLY``), and do the part of the others that needs only what earlier notebooks left
  (``checks.PREPARE``: the recomputed table of 04). nbgrader writes a notebook into FOLDER before running it and
  sends this then, so that work is done while the kernel works instead of after it.
* ``{"op": "decide", "names": [...]}``: decide the rest of ``names`` (after the notebook ran).

Both answer ``{"verdicts": {name: [passed, reason]}, "ran": [...], "seconds": s}`` for the names decided so far,
each reason in the request's ``"language"`` (that of the notebook, ``"en"`` when absent): verdicts are kept as
messages (``student_client.Message``) and put into words for each answer.

Like the nbgrader process it serves, this process never imports or executes student code: its student side is a
sandboxed process (``student_client.Session``), forked from the submission's zygote (``course.sandbox.ZygoteProcess``),
which this process starts at once, in the sandbox of the submission's kernels, and whose kernel socket it hands on
(``--zygote-kernels-fd``: the other end is nbgrader's); without a zygote, the student side is a sandbox of its own,
started at once too. Either sees FOLDER appear when nbgrader makes it.
Keeping the checks out of the nbgrader process also keeps torch, and the oracles' work, away from the process
that must drain the kernel's output in time.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

from .contract import ZYGOTE_KERNELS_OPTION

START_TIMEOUT = 180.0  # seconds for the student side to start (import torch), before a request says otherwise


def serve(folder: Path, requests, reply, kernels_fd: int | None = None) -> None:
    """Answer ``requests`` (an iterable of JSON lines) through ``reply(dict)`` until they end. ``kernels_fd``: this
    process's end of the socket of the zygote's kernels (``course.sandbox.ZygoteProcess.for_check_server``)."""
    from course.sandbox import (SandboxSpec, ZygoteProcess, checks_niceness, hand_to_sandbox_uid, set_priority,
                                student_launcher)

    from .contract import EARLY
    from .student_client import Session

    nice = max(os.getpriority(os.PRIO_PROCESS, 0), checks_niceness())
    spec = SandboxSpec.from_env()
    # (before this process yields: the zygote, and so the kernels, keep the grader's niceness)
    zygote = ZygoteProcess.for_check_server(spec, folder, kernels_fd, nice)
    # (one worker) the checks yield to the kernel: they use what a notebook leaves idle, all of it while nbgrader waits
    set_priority(0, nice)
    if spec is not None and spec.enabled:
        spec = dataclasses.replace(spec, niceness=max(spec.niceness, nice))
    launch = student_launcher(spec, folder) if spec is not None and spec.enabled else None
    session = Session(folder, launch, zygote)
    try:
        session.start(START_TIMEOUT)  # (it imports torch while nbgrader starts; the folder may not exist yet)
    except OSError:  # not even its parent: started again at the first request
        session.close()
    from . import checks

    preload()
    decided: dict = {}  # name -> (passed, reason: a student_client.Message, None for a pass)
    warm = handed = False
    try:
        for line in requests:
            request = json.loads(line)
            wanted = [str(n) for n in request.get("names", [])]
            timeout = float(request.get("timeout", 180))
            language = str(request.get("language") or "en")
            if not handed and launch is not None and folder.is_dir():
                # the student side may read the folder before the first kernel starts, which hands it over too
                hand_to_sandbox_uid(spec, str(folder))
                handed = True
            try:
                session.start(timeout)
            except OSError:  # no folder to start in: each check below fails, saying so
                pass
            names = [n for n in wanted if n not in decided]
            early = request.get("op") == EARLY
            training = sorted(checks.OPTIMIZER_CHECKS.intersection(names))
            if training and not warm:
                warm = True
                if zygote is not None and zygote.alive():
                    # the nbgrader process had the zygote build a first optimizer before this notebook, whose
                    # checks train: a student side forked from it now has nothing left to pay for
                    session.close()
                _warm(session, timeout, training)
            t0 = time.perf_counter()
            if early:
                prepare(checks, [n for n in names if n in checks.PREPARE], folder, session, timeout)
                names = [n for n in names if n in checks.SOURCES_ONLY]
            if names:
                decided.update(checks.decide_checks(checks.CHECKS, names, folder, launch, timeout=timeout,
                                                    session=session))
            reply({"verdicts": {n: [decided[n][0], "" if decided[n][0] else decided[n][1].render(language)]
                                for n in wanted if n in decided}, "ran": names,
                   "seconds": round(time.perf_counter() - t0, 2)})
    finally:
        session.close()
        if zygote is not None:
            zygote.stop()


def _warm(session, timeout: float, names: list[str]) -> None:
    """Have the student side build a first optimizer (torch imports ``torch._dynamo`` then, ~1 s of CPU) before
    ``names`` run, so that their time is theirs; said in the submission's log (``contract.WARMED_MARK``)."""
    from .contract import WARMED_MARK

    print(f"{WARMED_MARK} {', '.join(names)}", file=sys.stderr, flush=True)
    try:
        student = session.get(timeout)
        student.deadline, student.timeout = time.monotonic() + timeout, timeout
        student.request("warm", "warm")  # (no message: a failure here is not shown)
    except Exception:  # noqa: BLE001 (it only saves time: a check that needs it pays it itself)
        pass


def preload(compiled_kernels: bool = True) -> None:
    """Import what serving needs: torch, the checks and what they load ahead. ``serve`` calls it, and
    :mod:`.trusted_forkserver` before it forks, without ``compiled_kernels``: loading imresize's compiled kernels
    starts numba's OpenMP threads, and a child forked from a process that started them is killed when it uses
    them."""
    import torch  # noqa: F401

    from course import sandbox  # noqa: F401

    from . import checks, student_client  # noqa: F401

    try:
        checks.load_ahead(compiled_kernels)
    except Exception:  # noqa: BLE001 (it only saves time: a check that needs it meets the problem and reports it)
        pass


def prepare(checks, names: list[str], folder: Path, session, timeout: float) -> None:
    """Do the work of ``names`` that needs only what the earlier notebooks left (``checks.PREPARE``); a failure
    here is left for the check itself to meet again and report."""
    for name in names:
        try:
            session.fresh_objects(timeout)
            student = session.get(timeout)
            student.deadline, student.timeout = time.monotonic() + timeout, timeout
            session.used = True
            checks.PREPARE[name](student, folder)
        except Exception:  # noqa: BLE001
            pass


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -I -m course.grading.check_server", description=__doc__)
    ap.add_argument("folder", type=Path, help="the submission's grading folder")
    ap.add_argument(ZYGOTE_KERNELS_OPTION, type=int, dest="kernels_fd", metavar="FD",
                    help="this process's end of the socket of its zygote's kernels (the other end is nbgrader's)")
    args = ap.parse_args(argv)
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything else printed here goes to the grader's log, never into the answers

    def reply(answer: dict) -> None:
        out.write(json.dumps(answer) + "\n")
        out.flush()

    import warnings

    warnings.simplefilter("ignore")
    try:
        serve(args.folder.resolve(), sys.stdin, reply, args.kernels_fd)
    except BrokenPipeError:  # nbgrader ended without reading an answer it no longer needed (its notebook failed)
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, out.fileno())  # (the unwritten answer is flushed at exit: into nothing)
        os.close(null)
    return 0


if __name__ == "__main__":
    sys.exit(main())
