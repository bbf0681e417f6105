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


def _in_a_child(body) -> int:
    """Fork; the child runs ``body()`` and exits with the code it returns (1 if it raises). Returns the child's pid."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = body()
        finally:
            os._exit(code)
    return pid


def _forked_child(job: dict, fds: list[int], run, taken_write: int, close: list[int]) -> int:
    """A child that closes ``close`` and becomes the fork server's child for ``job`` (``become``); its pid."""
    def body():
        for fd in close:
            os.close(fd)
        return become(job, fds, run, 0.0, [], taken_write)

    return _in_a_child(body)


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

    pid = _forked_child(job, [attached], run, taken_write, close=[job_read, taken_read])
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

    def server_body():
        ours.close()
        serve(theirs, {"test": run}, time.monotonic())
        return 0

    server = _in_a_child(server_body)
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


def test_a_forked_child_writes_its_stack_to_its_log_on_the_stack_dump_signal(tmp_path):
    """A submission killed at the submission timeout: the grading command first sends its nbgrader process (a
    child of the fork server) STACK_DUMP_SIGNAL, and the log then says where it waited."""
    import signal
    import time

    from course.grading.contract import STACK_DUMP_SIGNAL

    log = tmp_path / "student.log"
    log_fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    never_read, never_written = os.pipe()  # (the child waits on it for ever, as on a kernel that no longer talks)
    ready_read, ready_write = os.pipe()
    taken_read, taken_write = os.pipe()
    job = {"kind": "test", "argv": [], "env": dict(os.environ), "cwd": str(tmp_path),
           "limits": [8 << 30, 3600], "fds": {"2": 0}}

    def waiting_for_a_kernel_that_no_longer_talks(argv):
        os.write(ready_write, b"r")
        os.read(never_read, 1)
        return 0

    pid = _forked_child(job, [log_fd], waiting_for_a_kernel_that_no_longer_talks, taken_write, close=[taken_read])
    os.close(taken_write)
    os.close(log_fd)
    try:
        assert os.read(taken_read, 1) == b""  # (it took its job)
        assert os.read(ready_read, 1) == b"r"  # (it runs it)
        os.kill(pid, STACK_DUMP_SIGNAL)
        deadline = time.monotonic() + 30
        while "waiting_for_a_kernel_that_no_longer_talks" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert os.waitpid(pid, os.WNOHANG) == (0, 0), "the signal ended it: only the kill may"
        said = log.read_text()
        assert "most recent call first" in said and "waiting_for_a_kernel_that_no_longer_talks" in said, said
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        for fd in (taken_read, never_read, never_written, ready_read, ready_write):
            os.close(fd)
