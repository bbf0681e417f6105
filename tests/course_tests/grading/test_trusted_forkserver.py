"""The fork server's child taking its job's descriptors (``course.grading.trusted_forkserver.become``), on its own:
each target gets the job's descriptor, whatever numbers the server's own descriptors have. (The fork server as a
process, forking nbgrader and check servers, is tested in ``test_hidden_checks``.)"""
from __future__ import annotations

import contextlib
import os
import sys

import pytest

from course.grading.trusted_forkserver import become
from course_fixtures import process_running


@pytest.mark.parametrize("taken_at_target", [True, False], ids=["server's own descriptor at the target", "apart"])
def test_a_forked_child_keeps_the_descriptor_placed_at_each_target(tmp_path, taken_at_target):
    """nbgrader's ends of its check server's pipes were placed at their target numbers, then the server's own
    descriptor that reports the take-over was closed -- and when it had the same number as a target (the server's
    numbers and the job's are chosen apart), that closed nbgrader's end: every hidden check of the notebook then
    failed with "no verdict", in grading runs with several workers."""
    target = 57
    job_read, job_write = os.pipe()  # what the job attaches: the child must find job_write at `target`
    taken_read, taken_write = os.pipe()  # the server's: end of file once the child has taken its job
    if taken_at_target:
        os.dup2(taken_write, target)
        os.close(taken_write)
        taken_write = target
    attached = os.dup(job_write)
    os.close(job_write)
    job = {"kind": "test", "argv": [], "env": dict(os.environ), "cwd": str(tmp_path),
           "limits": [8 << 30, 3600], "fds": {str(target): 0}}

    def run(argv):
        os.write(target, b"placed")
        return 0

    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(job_read)
            os.close(taken_read)
            code = become(job, [attached], run, 0.0, [], taken_write)
        finally:
            os._exit(code)
    for fd in (attached, taken_write):
        os.close(fd)
    assert os.read(taken_read, 1) == b""  # (the child took its job: its copy of taken_write is closed)
    os.close(taken_read)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    assert os.read(job_read, 100) == b"placed"
    os.close(job_read)


def test_children_still_running_when_the_grader_goes_are_killed_with_their_sessions(tmp_path):
    """A grader killed mid-run (a cluster worker's process) closes its end without stopping its children: the fork
    server then kills their sessions, so no nbgrader process of a run that is gone writes a grade while the
    submission is graded again elsewhere. Here the child starts a grandchild in its session, as nbgrader starts
    kernels; both must be gone."""
    import json
    import signal
    import socket
    import subprocess
    import time

    from course.grading.trusted_forkserver import serve

    grandchild_pid = tmp_path / "grandchild.pid"

    def run(argv):
        p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        grandchild_pid.write_text(str(p.pid))
        time.sleep(600)
        return 0

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sys.stdout.flush()
    sys.stderr.flush()
    server = os.fork()
    if server == 0:
        code = 1
        try:
            ours.close()
            serve(theirs, {"test": run}, time.monotonic())
            code = 0
        finally:
            os._exit(code)
    theirs.close()
    child = None
    try:
        devnull = os.open(os.devnull, os.O_RDWR)
        job = {"id": 1, "kind": "test", "argv": [], "env": dict(os.environ), "cwd": str(tmp_path),
               "limits": [8 << 30, 3600], "fds": {"0": 0}}
        socket.send_fds(ours, [json.dumps(job).encode()], [devnull])
        os.close(devnull)
        answer = json.loads(ours.recv(1 << 16))
        child = answer["pid"]
        deadline = time.monotonic() + 30
        while not grandchild_pid.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        grandchild = int(grandchild_pid.read_text())
        ours.close()  # (the grader is gone, its child still running)
        assert os.waitstatus_to_exitcode(os.waitpid(server, 0)[1]) == 0
        server = None
        for pid in (child, grandchild):
            deadline = time.monotonic() + 10
            while process_running(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not process_running(pid), f"{pid} still runs after its grader went"
    finally:
        for pid in (server, child):
            if pid:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        if server:
            os.waitpid(server, 0)
