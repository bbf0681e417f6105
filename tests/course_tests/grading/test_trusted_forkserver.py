"""The fork server's child taking its job's descriptors (``course.grading.trusted_forkserver.become``), on its own:
each target gets the job's descriptor, whatever numbers the server's own descriptors have. (The fork server as a
process, forking nbgrader and check servers, is tested in ``test_hidden_checks``.)"""
from __future__ import annotations

import os
import sys

import pytest

from course.grading.trusted_forkserver import become


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
