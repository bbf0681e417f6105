"""A sandboxed kernel's launchers die with the process that started them: a grader killed while a kernel is still
starting (the launcher's Python not yet at bwrap, whose ``--die-with-parent`` comes too late) leaves no kernel that
nothing ends, and a launcher whose parent is already gone does not start one."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from types import SimpleNamespace

from course.sandbox.resources import in_cgroups
from course_fixtures import poll_until, process_running, skip_or_fail


def test_a_launcher_dies_with_its_parent_even_when_the_parent_is_killed(tmp_path):
    child_pid = tmp_path / "child.pid"
    parent = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import subprocess, sys, time
        subprocess.Popen([sys.executable, "-c", "import os, time; from course.sandbox.resources import die_with_parent;"
                          "die_with_parent(os.getppid()); open({str(child_pid)!r}, 'w').write(str(os.getpid()));"
                          "time.sleep(120)"])
        time.sleep(120)
    """)], start_new_session=True)
    try:
        poll_until(lambda: child_pid.exists() and child_pid.read_text(), 60, "the launcher")
        child = int(child_pid.read_text())
        assert process_running(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        gone = poll_until(lambda: not process_running(child) or None, 5, "", fail=False)
        assert gone, "the launcher outlived its parent"
    finally:
        parent.kill()
        if child_pid.exists():
            try:
                os.kill(int(child_pid.read_text()), signal.SIGKILL)
            except OSError:
                pass


def test_a_launcher_whose_parent_is_gone_starts_nothing():
    out = subprocess.run([sys.executable, "-c", "from course.sandbox.resources import die_with_parent; "
                          "die_with_parent(1); print('started')"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "started" not in out.stdout


def test_the_cgroup_launcher_checks_its_parent_before_it_joins_or_execs(tmp_path):
    if os.geteuid() != 0:
        skip_or_fail("the cgroup launcher is used as root only")
    procs = tmp_path / "cgroup.procs"  # (a plain file stands for the cgroup's: the launcher writes its pid there)
    spec = SimpleNamespace(cgroup_procs=[str(procs)])
    argv = in_cgroups(spec, ["sh", "-c", "echo ran"])
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout == "ran\n" and procs.read_text().isdigit(), out.stderr
    procs.unlink()
    out = subprocess.run(in_cgroups(spec, ["sh", "-c", "echo ran"], parent=1), capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 1 and out.stdout == "" and not procs.exists(), out.stderr
