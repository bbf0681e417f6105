"""The kit's cgroups left behind by a process killed before its clean-up (a grading run's ``sr-kit-<pid>-w<slot>``,
the demo's) are removed by the next grading run (``course.sandbox.Cgroup.remove_stale``); those of a running
process, and one that still holds a process, stay."""
import subprocess
import sys

import pytest

from course.sandbox import Cgroup


def _gone_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_only_the_empty_cgroups_of_gone_processes_are_removed():
    mine = Cgroup.create(Cgroup.owned_name("w0"), 64 << 20, 16)
    if mine is None:
        pytest.skip("no writable cgroup memory/pids controllers here (not root, or a read-only cgroupfs)")
    gone = _gone_pid()
    stale = Cgroup.create(f"{Cgroup.OWNED_PREFIX}{gone}-w0", 64 << 20, 16)
    held = Cgroup.create(f"{Cgroup.OWNED_PREFIX}{gone}-w1", 64 << 20, 16)
    other = Cgroup.create(f"{Cgroup.OWNED_PREFIX}test-{gone}", 64 << 20, 16)  # not named after a pid: not the kit's
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        for procs in held.procs:
            with open(procs, "w") as f:
                f.write(str(sleeper.pid))
        removed = Cgroup.remove_stale()
        assert set(stale.dirs) <= set(removed) and not any(d.exists() for d in stale.dirs)
        assert all(d.exists() for d in (*held.dirs, *mine.dirs, *other.dirs)), removed
        assert str(sleeper.pid) in (held.dirs[0] / "cgroup.procs").read_text()
    finally:
        sleeper.kill()
        sleeper.wait()
        for cgroup in (mine, stale, held, other):
            cgroup.remove()
