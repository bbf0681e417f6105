"""The resources a sandbox may use: per-process limits (:class:`Limits`, set by ``setrlimit`` inside it), scheduling
niceness, a memory + process + CPU cgroup per grading worker (:class:`Cgroup`, root), and size-limited tmpfs mounts
(root)."""
from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from course.grading.contract import CHECKS_NICENESS_ENV

if TYPE_CHECKING:
    from .spec import SandboxSpec

# the hidden checks' processes (check server, student side) yield to the notebook's kernel: they use what it
# leaves idle, and have the machine to themselves when nbgrader waits for their verdicts. Only with one worker
# (the grading command sets $SR_KIT_CHECKS_NICENESS): with more, another student's kernel, spinning on every core,
# could starve them past their time
CHECKS_NICENESS = 10


@dataclasses.dataclass
class Limits:
    """Resource limits of one sandboxed process tree (per process, except ``processes``)."""

    cpu_seconds: int = 3600          # RLIMIT_CPU: an endless loop is killed by SIGXCPU at the latest here
    memory_bytes: int = 4 << 30      # RLIMIT_DATA: heap/anonymous memory (torch alone needs ~0.8 GB)
    file_bytes: int = 512 << 20      # RLIMIT_FSIZE: largest file it may write
    processes: int = 256             # RLIMIT_NPROC: processes and threads of the sandbox user (fork bombs)
    tmp_bytes: int = 512 << 20       # size of its private /tmp
    folder_bytes: int = 1 << 30      # what a submission may keep in its grading folder (a tmpfs of that size, as root)
    threads: int = 1                 # OMP/MKL/torch threads (workers x threads <= cores)


def checks_niceness(env=None) -> int:
    """The niceness the grading command asks for the hidden checks' processes (``$SR_KIT_CHECKS_NICENESS`` of
    ``env``, default this process's environment)."""
    try:
        return max(0, min(19, int((os.environ if env is None else env).get(CHECKS_NICENESS_ENV, "0"))))
    except ValueError:
        return 0


def set_priority(pid: int, niceness: int) -> None:
    """Every thread of process ``pid`` (0: this one) to ``niceness`` (Linux sets it per thread), and its
    session's autogroup too: where the kernel schedules sessions as groups (``sched_autogroup_enabled``), a
    thread's niceness only counts against the other threads of its session, and every grading process, kernel and
    sandbox has a session of its own. Lowering it needs root; what cannot be set is left as it is."""
    pid = pid or os.getpid()
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return
    for tid in tids:
        try:
            os.setpriority(os.PRIO_PROCESS, int(tid), niceness)
        except OSError:
            pass
    try:
        with open(f"/proc/{pid}/autogroup", "w") as f:
            f.write(str(niceness))
    except OSError:
        pass


class Cgroup:
    """A memory + process + CPU cgroup for one grading worker (root only; cgroup v1 or v2, when writable).

    Rlimits bound each process; the cgroup bounds the sandbox as a whole: all its processes' memory, the pages of
    its tmpfs folders included (OOM-killed past ``memory_bytes``), and its number of tasks. Where the CPU
    controller is there too (``cpu``), every worker's cgroup has the same CPU weight (``cpu.shares`` 1024, or
    ``cpu.weight`` 100): when workers compete, each gets its share of the machine however many threads, processes
    or sessions its submission starts, so a thread storm in one submission cannot starve its neighbour's kernel
    past its time. The weight is a share, not a cap: a worker alone uses every core. ``create`` returns None where
    cgroups cannot be used; the rlimits still apply then."""

    V1 = (Path("/sys/fs/cgroup/memory"), Path("/sys/fs/cgroup/pids"))
    V1_CPU = Path("/sys/fs/cgroup/cpu")
    V2 = Path("/sys/fs/cgroup")
    CPU_SHARES = 1024  # (v1) the weight of every worker, that of a process at niceness 0
    CPU_WEIGHT = 100   # (v2) idem

    def __init__(self, dirs: list[Path], cpu: bool = False):
        self.dirs = dirs
        self.cpu = cpu  # whether the CPU share applies (the controller was there)

    CPU_PERIOD_US = 100_000  # the period of a CPU cap (``cpu_cores``)

    @classmethod
    def create(cls, name: str, memory_bytes: int, processes: int,
               cpu_cores: float | None = None) -> "Cgroup | None":
        """``cpu_cores``: a cap (a class server's per-student limit) in place of the equal share, where the CPU
        controller is there."""
        if os.geteuid() != 0:
            return None
        try:
            if all((d / "cgroup.procs").is_file() for d in cls.V1):
                mem, pids = (d / name for d in cls.V1)
                for d in (mem, pids):
                    d.mkdir(exist_ok=True)
                (mem / "memory.limit_in_bytes").write_text(str(memory_bytes))
                if (mem / "memory.memsw.limit_in_bytes").exists():
                    (mem / "memory.memsw.limit_in_bytes").write_text(str(memory_bytes))
                (pids / "pids.max").write_text(str(processes))
                dirs = [mem, pids]
                if (cls.V1_CPU / "cgroup.procs").is_file():
                    cpu = cls.V1_CPU / name
                    try:
                        cpu.mkdir(exist_ok=True)
                        (cpu / "cpu.shares").write_text(str(cls.CPU_SHARES))
                        if cpu_cores:
                            (cpu / "cpu.cfs_period_us").write_text(str(cls.CPU_PERIOD_US))
                            (cpu / "cpu.cfs_quota_us").write_text(str(int(cpu_cores * cls.CPU_PERIOD_US)))
                        dirs.append(cpu)
                    except OSError:
                        with contextlib.suppress(OSError):
                            cpu.rmdir()
                return cls(dirs, cpu=len(dirs) == 3)
            control = cls.V2 / "cgroup.subtree_control"
            if control.is_file() and {"memory", "pids"} <= set(control.read_text().split()):
                if "cpu" not in control.read_text().split():
                    with contextlib.suppress(OSError):
                        control.write_text("+cpu")
                d = cls.V2 / name
                d.mkdir(exist_ok=True)
                (d / "memory.max").write_text(str(memory_bytes))
                if (d / "memory.swap.max").exists():
                    (d / "memory.swap.max").write_text("0")
                (d / "pids.max").write_text(str(processes))
                cpu = False
                with contextlib.suppress(OSError):
                    if (d / "cpu.weight").is_file():
                        (d / "cpu.weight").write_text(str(cls.CPU_WEIGHT))
                        if cpu_cores:
                            (d / "cpu.max").write_text(f"{int(cpu_cores * cls.CPU_PERIOD_US)} {cls.CPU_PERIOD_US}")
                        cpu = True
                return cls([d], cpu=cpu)
        except OSError:
            return None
        return None

    @property
    def procs(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs]

    #: the start of the names of the kit's cgroups that end with their process's pid: ``sr-kit-<pid>-<what>``
    OWNED_PREFIX = "sr-kit-"

    @classmethod
    def owned_name(cls, what: str) -> str:
        """The name of a cgroup of this process (``sr-kit-<pid>-<what>``), one :meth:`remove_stale` can clean up."""
        return f"{cls.OWNED_PREFIX}{os.getpid()}-{what}"

    @classmethod
    def remove_stale(cls) -> list[Path]:
        """Remove the empty cgroups ``sr-kit-<pid>-*`` whose process ``pid`` is gone (a grading run or a demo killed
        before its own clean-up) and return them; a cgroup that holds a process, or whose pid runs, is left alone.
        (The pid is looked up in this process's PID namespace: runs that share a cgroup hierarchy on one host
        share it.)"""
        removed = []
        if os.geteuid() != 0:
            return removed
        for base in (*cls.V1, cls.V1_CPU, cls.V2):
            for d in sorted(base.glob(cls.OWNED_PREFIX + "*")) if base.is_dir() else []:
                pid = d.name[len(cls.OWNED_PREFIX):].partition("-")[0]
                if not pid.isdigit() or Path(f"/proc/{pid}").exists():
                    continue
                try:
                    if (d / "cgroup.procs").read_text().strip():
                        continue
                    d.rmdir()
                    removed.append(d)
                except OSError:  # (a process entered it meanwhile, or it is gone already)
                    pass
        return removed

    def remove(self, wait: float = 10.0) -> None:
        deadline = time.monotonic() + wait
        for d in self.dirs:
            while d.exists():
                try:
                    d.rmdir()
                except OSError:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.2)


def in_cgroups(spec: SandboxSpec, argv: list[str], parent: int | None = None) -> list[str]:
    """``argv`` preceded by a tiny launcher that moves itself into the spec's cgroups, then execs ``argv``
    (a launcher, not ``preexec_fn``: the grader is multi-threaded). The launcher dies with ``parent`` (default: the
    caller, which starts it), and exits at once if ``parent`` ended while it started (:func:`die_with_parent`)."""
    if not spec.cgroup_procs or os.geteuid() != 0:
        return argv
    parent = os.getpid() if parent is None else parent
    return [sys.executable, "-I", "-c", _JOIN, os.pathsep.join(spec.cgroup_procs), str(parent), *argv]


_JOIN = ("import ctypes, os, sys\nctypes.CDLL(None).prctl(1, 9, 0, 0, 0)\n"  # (PR_SET_PDEATHSIG, SIGKILL)
         "if os.getppid() != int(sys.argv[2]):\n    os._exit(1)\n"
         "for f in sys.argv[1].split(os.pathsep):\n    open(f, 'w').write(str(os.getpid()))\n"
         "os.execvp(sys.argv[3], sys.argv[3:])\n")


PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int | None = None) -> None:
    """SIGKILL this process when the thread that started it ends (kept across ``exec``; bwrap's
    ``--die-with-parent`` sets the same once bwrap runs, too late for a parent killed while this process was still
    starting). Exits at once when ``parent`` is given and is no longer this process's parent: it ended first."""
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # (not Linux)
        return
    if parent is not None and os.getppid() != parent:
        os._exit(1)


# ---------------------------------------------------------------------------------------------------------
# Disk: size-limited tmpfs mounts (root)
# ---------------------------------------------------------------------------------------------------------
def mount_tmpfs(folder, size: int) -> bool:
    """Mount a tmpfs of ``size`` bytes on ``folder`` (nosuid, nodev): nothing written below it can take more, and
    a write past it fails with ENOSPC at once. Its pages are memory, charged to the cgroup of the process that
    writes them (the sandbox's). Root only; returns False where it cannot be mounted."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={int(size)},mode=0755,nosuid,nodev", "sr-kit-disk",
                          str(folder)], capture_output=True, text=True)
    return out.returncode == 0


def unmount(folder, wait: float = 10.0) -> None:
    """Unmount ``folder`` (retried while the sandbox's last processes exit, then detached lazily)."""
    deadline = time.monotonic() + wait
    while os.path.ismount(folder):
        if subprocess.run(["umount", str(folder)], capture_output=True).returncode == 0:
            return
        if time.monotonic() > deadline:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)
            return
        time.sleep(0.2)
