"""Sandboxes for untrusted student code, built on bubblewrap (``bwrap``, Debian/Ubuntu package ``bubblewrap``).

Two things run student code while grading, and both run here:

* the Jupyter kernel that executes a submitted notebook (``kernel`` entry point, used as the first ``argv`` item
  of the ``sr-sandbox`` kernelspec that :func:`write_kernelspec` writes);
* the student side of the hidden checks (:func:`student_launcher`): a process that imports the student's modules
  and answers plain requests; the checks themselves and the reference solution stay in the trusted process.

What the sandbox sees: the system folders (``/usr``, ``/etc``, ...) and the Python installation read-only, the
kit's public code (``sr_utils``, ``data_tools``) and the data folder read-only, the submission's own grading
folder read-write, a private size-limited ``/tmp``. Nothing else of the machine's ``/home``, ``/root``, ``/tmp``,
``/work``...: no ``source/``, no ``course/grading/``, no gradebook, no other student. No network (new network
namespace: not even 127.0.0.1), own PID namespace (it cannot signal the grader; all its processes die with it),
``--die-with-parent``, ``--new-session``. Limits (``setrlimit``): CPU seconds, data memory, file size, processes.
No new namespace and no mount from inside (the seccomp filter, :func:`seccomp_program`), and no view of any cgroup
(an empty ``/sys/fs/cgroup``). As root, each grading worker's :class:`Cgroup` bounds memory and processes, and
gives it the same CPU weight as every other worker.

As root, the sandboxed process drops to a dedicated unprivileged uid (one per grading worker) after the mounts
are made, so that the process limit applies (Linux does not enforce ``RLIMIT_NPROC`` on root) and nothing it
does runs with root's rights. As an ordinary user, bwrap builds the sandbox in a user namespace.

The settings travel as JSON in ``$SR_KIT_SANDBOX`` from the grading command to nbgrader and its kernels
(:class:`SandboxSpec`; the variables and folders the grading processes share: :mod:`course.grading.contract`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from course import plain_tree
from course.grading.contract import (AFTER_NOTEBOOK, AUTOGRADED_DIR, CHECKS_NICENESS_ENV, DATA_DIR_ENV,
                                     HIDDEN_CHECKS_ENV, RUNTIME_DIR, SANDBOX_ENV, STATE_DIR)

KERNEL_NAME = "sr-sandbox"
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/sys", "/opt")
CGROUP_ROOT = "/sys/fs/cgroup"  # (empty in the sandbox)
# the hidden checks' processes (check server, student side) yield to the notebook's kernel: they use what it
# leaves idle, and have the machine to themselves when nbgrader waits for their verdicts. Only with one worker
# (the grading command sets $SR_KIT_CHECKS_NICENESS): with more, another student's kernel, spinning on every core,
# could starve them past their time
CHECKS_NICENESS = 10
FIRST_SANDBOX_UID = 61000  # as root, student code runs as a uid of 61000..61999, each held by one worker of one run
SANDBOX_UIDS = 1000
UID_LOCKS = Path("/run/lock/sr-kit-sandbox-uids")
# seccomp: system calls denied to sandboxed code (errno EPERM), by machine. The kernel keyrings outlive a process
# and are shared by everything running as one uid (a key added by one student would be seen by the next): denied,
# as in Docker's default profile. memfd_create is denied too where no cgroup bounds memory (--no-cgroup).
KEYRING_SYSCALLS = {"x86_64": {"add_key": 248, "request_key": 249, "keyctl": 250},
                    "aarch64": {"add_key": 217, "request_key": 218, "keyctl": 219}}
MEMFD_SYSCALL = {"x86_64": 319, "aarch64": 279}
# No namespace and no mount from inside: a user namespace would give sandboxed code the capabilities of its own
# (a tmpfs of any size, mounts over the sandbox's view, an attack surface of the kernel's that is not otherwise
# reachable). Denied: every call that mounts, unmounts, moves a root or enters a namespace (the old and the new
# mount API), unshare and clone when asked for a new namespace (CLONE_NEW* in their flags), and clone3 (its flags
# are in memory a filter cannot read: ENOSYS, so that the C library falls back to clone, as under Docker)
MOUNT_SYSCALLS = {"x86_64": {"mount": 165, "umount2": 166, "pivot_root": 155, "setns": 308, "open_tree": 428,
                             "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
                             "mount_setattr": 442, "open_tree_attr": 467},
                  "aarch64": {"mount": 40, "umount2": 39, "pivot_root": 41, "setns": 268, "open_tree": 428,
                              "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
                              "mount_setattr": 442, "open_tree_attr": 467}}
NAMESPACE_SYSCALLS = {"x86_64": {"clone": 56, "unshare": 272, "clone3": 435},
                      "aarch64": {"clone": 220, "unshare": 97, "clone3": 435}}
# CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET; CLONE_NEWTIME (0x80) for unshare only (in
# clone's flags 0x80 is part of the exit signal)
CLONE_NEW_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000
CLONE_NEWTIME = 0x80
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}


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


@dataclasses.dataclass
class SandboxSpec:
    """Everything a sandbox needs, serialisable to JSON (``$SR_KIT_SANDBOX``)."""

    enabled: bool = True             # False: --unsafe (no sandbox; refused unless asked for)
    data_dir: str = ""               # read-only data folder (SR_DATA_DIR inside)
    code_dirs: list = dataclasses.field(default_factory=list)  # read-only public packages (sr_utils, data_tools)
    course_root: str = ""            # kernels may only run in <course_root>/course/autograded/...
    uid: int | None = None           # as root: the unprivileged uid student code runs as
    cgroup_procs: list = dataclasses.field(default_factory=list)  # as root: the worker's Cgroup.procs
    base_processes: int = 0          # as a user: its processes now (kernels < 5.14 count them in RLIMIT_NPROC)
    deny_memfd: bool = False         # --no-cgroup: memfd memory escapes RLIMIT_DATA, so memfd_create is denied
    numba_cache: str = ""            # read-only compiled imresize kernels (prepare_numba_cache), copied into /tmp
    niceness: int = 0                # scheduling niceness (checks_niceness(): the student side of the checks)
    limits: Limits = dataclasses.field(default_factory=Limits)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "SandboxSpec":
        d = json.loads(text)
        d["limits"] = Limits(**d.get("limits", {}))
        return cls(**d)

    @classmethod
    def from_env(cls) -> "SandboxSpec | None":
        text = os.environ.get(SANDBOX_ENV)
        return cls.from_json(text) if text else None


class SandboxUnavailable(RuntimeError):
    """bubblewrap is missing or cannot create namespaces here."""


# ---------------------------------------------------------------------------------------------------------
# Building the bwrap command
# ---------------------------------------------------------------------------------------------------------
def _python_dirs() -> list[str]:
    """Folders the Python installation needs (venv, base interpreter), outside any course folder."""
    dirs = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    dirs.add(os.path.dirname(os.path.dirname(os.path.realpath(sys.executable))))
    return sorted(d for d in dirs if os.path.isdir(d))


def _bind_system(args: list[str]) -> None:
    for d in SYSTEM_DIRS:
        if os.path.islink(d):
            args += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            args += ["--ro-bind", d, d]


def _user_process_count(uid: int) -> int:
    n = 0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                n += os.stat(f"/proc/{pid}").st_uid == uid
            except OSError:
                pass
    return n


@functools.lru_cache(maxsize=None)
def _bwrap_supports(option: str) -> bool:
    """Whether the installed bwrap knows ``option``."""
    out = subprocess.run(["bwrap", "--help"], capture_output=True, text=True)
    return option in out.stdout + out.stderr


def bwrap_command(spec: SandboxSpec, argv: list[str], *, cwd: str, writable: list[str] = (),
                  readonly: list[str] = (), env: dict | None = None) -> list[str]:
    """The full command running ``argv`` in a sandbox with ``writable`` folders bound read-write and
    ``readonly`` ones read-only (besides the system, Python, code and data folders).

    ``argv`` runs as the sandbox uid (as root) under :class:`Limits`; ``env`` replaces the environment.
    """
    lim = spec.limits
    args = ["bwrap", "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-net", "--unshare-ipc",
            "--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox"]
    if os.geteuid() != 0:
        args.append("--unshare-user")
        if _bwrap_supports("--disable-userns"):  # bubblewrap >= 0.8: no nested namespace with a tmpfs of its own
            args.append("--disable-userns")
    _bind_system(args)
    # /sys is the host's, read-only, but for its cgroups: an empty folder, so that no sandbox sees the other
    # workers' (or other grading runs') cgroups, their memory and CPU use, or the worker's own history (the worker's
    # cgroup serves its submissions one after the other)
    hide_cgroups = os.path.isdir(CGROUP_ROOT) and "/sys" in SYSTEM_DIRS
    if hide_cgroups:
        args += ["--perms", "0555", "--size", "4096", "--tmpfs", CGROUP_ROOT]
    args += ["--dev", "/dev", "--proc", "/proc",
             "--perms", "1777", "--size", str(lim.tmp_bytes), "--tmpfs", "/tmp",
             "--perms", "1777", "--size", str(64 << 20), "--tmpfs", "/dev/shm"]
    binds = [("--ro-bind", d) for d in [*_python_dirs(), *spec.code_dirs, spec.data_dir, spec.numba_cache, *readonly]
             if d and os.path.isdir(d)]
    binds += [("--bind", d) for d in writable]
    made = {"/", "/tmp", "/dev", "/proc", *SYSTEM_DIRS}
    for _, d in binds:  # parents made by bwrap would copy the host's modes (/root is 0700): make them 0755
        for parent in reversed(Path(d).parents):
            if str(parent) not in made and not any(str(parent).startswith(b + "/") for _, b in binds):
                made.add(str(parent))
                args += ["--perms", "0755", "--dir", str(parent)]
    for kind, d in binds:
        args += [kind, d, d]
    # bwrap's root is an unlimited tmpfs which, in a user namespace, belongs to the sandboxed user: writes to /
    # or to the folders made above would bypass the size-limited /tmp
    args += ["--remount-ro", "/"] + (["--remount-ro", CGROUP_ROOT] if hide_cgroups else [])
    args += ["--chdir", cwd, "--clearenv"]
    for k, v in (env or {}).items():
        args += ["--setenv", k, str(v)]
    nproc = lim.processes if os.geteuid() == 0 else spec.base_processes + lim.processes
    launch = [sys.executable, "-I", "-c", _LAUNCH,
              json.dumps({"uid": spec.uid if os.geteuid() == 0 else None, "cpu": lim.cpu_seconds,
                          "data": lim.memory_bytes, "fsize": lim.file_bytes, "nproc": nproc,
                          "numba": spec.numba_cache or None, "nice": spec.niceness})]
    args += ["--seccomp", SECCOMP_FD_MARK]
    return [sys.executable, "-I", "-c", _WITH_SECCOMP, seccomp_program(spec.deny_memfd).hex()] + args + ["--"] \
        + launch + list(argv)


def seccomp_program(deny_memfd: bool = False) -> bytes:
    """A classic-BPF seccomp filter (what ``bwrap --seccomp FD`` loads). Fail with EPERM: the keyring calls (and
    memfd_create if asked), every call that mounts or enters a namespace (:data:`MOUNT_SYSCALLS`), ``unshare`` and
    ``clone`` asking for a new namespace, and every call of a foreign architecture (x32, i386 compat); ``clone3``
    fails with ENOSYS (the C library then uses ``clone``). The rest is allowed."""
    import platform
    import struct

    machine = platform.machine()
    if machine not in KEYRING_SYSCALLS:
        raise SandboxUnavailable(f"no seccomp filter for this machine ({machine}): x86_64 and aarch64 only")
    denied = sorted([*KEYRING_SYSCALLS[machine].values(), *MOUNT_SYSCALLS[machine].values()]
                    + ([MEMFD_SYSCALL[machine]] if deny_memfd else []))
    ns = NAMESPACE_SYSCALLS[machine]
    ld, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    allow, eperm, enosys = 0x7FFF0000, 0x00050000 | 1, 0x00050000 | 38
    # (op, k, true label, false label) with labels resolved to relative jumps below; None: next instruction
    prog = [(ld, 4, None, None), (jeq, AUDIT_ARCH[machine], None, "eperm"), (ld, 0, None, None)]
    if machine == "x86_64":
        prog.append((jge, 0x40000000, "eperm", None))  # x32 system calls
    prog += [(jeq, nr, "eperm", None) for nr in denied]
    prog += [(jeq, ns["clone3"], "enosys", None), (jeq, ns["clone"], "clone", None),
             (jeq, ns["unshare"], "unshare", None), (ret, allow, None, None)]
    labels = {}
    # the flags are the first argument (seccomp_data.args[0], offset 16; its low 32 bits on these little-endian
    # machines hold every CLONE_NEW* flag)
    labels["clone"] = len(prog)
    prog += [(ld, 16, None, None), (jset, CLONE_NEW_FLAGS, "eperm", None), (ret, allow, None, None)]
    labels["unshare"] = len(prog)
    prog += [(ld, 16, None, None), (jset, CLONE_NEW_FLAGS | CLONE_NEWTIME, "eperm", None), (ret, allow, None, None)]
    labels["eperm"] = len(prog)
    prog.append((ret, eperm, None, None))
    labels["enosys"] = len(prog)
    prog.append((ret, enosys, None, None))
    out = []
    for i, (op, k, jt, jf) in enumerate(prog):
        rel = [0 if t is None else labels[t] - i - 1 for t in (jt, jf)]
        assert all(0 <= r < 256 for r in rel), "seccomp jump out of range"
        out.append(struct.pack("=HBBI", op, rel[0], rel[1], k))
    return b"".join(out)


SECCOMP_FD_MARK = "@SECCOMP_FD@"
# Runs outside the sandbox, right before bwrap: the filter goes into a memfd that bwrap reads (--seccomp FD).
_WITH_SECCOMP = ("import os, sys\nfd = os.memfd_create('sr-kit-seccomp', 0)\nos.write(fd, bytes.fromhex(sys.argv[1]))\n"
                 "os.lseek(fd, 0, 0)\nos.set_inheritable(fd, True)\n"
                 f"argv = [str(fd) if a == {SECCOMP_FD_MARK!r} else a for a in sys.argv[2:]]\n"
                 "os.execvp(argv[0], argv)\n")


class UidPool:
    """Sandbox uids held by this grading run: one lock file per uid (``flock``), so that two runs on one machine
    never share a uid (their processes could signal or starve each other). Released when the run ends."""

    def __init__(self, n: int):
        import fcntl

        UID_LOCKS.mkdir(parents=True, exist_ok=True)
        self.uids, self._files = [], []
        for uid in range(FIRST_SANDBOX_UID, FIRST_SANDBOX_UID + SANDBOX_UIDS):
            if len(self.uids) == n:
                break
            f = open(UID_LOCKS / f"{uid}.lock", "a")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                f.close()
                continue
            self.uids.append(uid)
            self._files.append(f)
        if len(self.uids) < n:
            self.release()
            raise SandboxUnavailable(f"fewer than {n} free sandbox uids in {FIRST_SANDBOX_UID}.."
                                     f"{FIRST_SANDBOX_UID + SANDBOX_UIDS - 1} (other grading runs hold them)")

    def release(self) -> None:
        for f in self._files:
            f.close()
        self._files = []


# Runs inside the sandbox before the real command: limits, then (as root) drop to the sandbox uid, then exec.
_LAUNCH = """
import json, os, resource, sys
c = json.loads(sys.argv[1])
if c["nice"]:  # (bwrap's --new-session made a scheduling group of its own: its niceness too)
    os.setpriority(os.PRIO_PROCESS, 0, max(c["nice"], os.getpriority(os.PRIO_PROCESS, 0)))
    try:
        with open("/proc/self/autogroup", "w") as f:
            f.write(str(c["nice"]))
    except OSError:
        pass
for r, v in ((resource.RLIMIT_CPU, c["cpu"]), (resource.RLIMIT_DATA, c["data"]), (resource.RLIMIT_FSIZE, c["fsize"]),
             (resource.RLIMIT_NPROC, c["nproc"]), (resource.RLIMIT_CORE, 0)):
    resource.setrlimit(r, (v, v))
if c["uid"] is not None:
    os.setgroups([]); os.setgid(c["uid"]); os.setuid(c["uid"])
    if os.getuid() == 0 or os.geteuid() == 0:
        sys.exit("sandbox: could not drop root")
if c["numba"]:  # a private, writable copy of the grader's compiled kernels (numba only loads from writable caches)
    import shutil
    try:
        shutil.copytree(c["numba"], "/tmp/.numba", dirs_exist_ok=True)
    except OSError:
        pass  # then imresize compiles its kernels itself (a few seconds)
os.execvp(sys.argv[2], sys.argv[2:])
"""


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


def base_env(spec: SandboxSpec) -> dict:
    """The environment of sandboxed code: nothing inherited (no instructor paths or secrets)."""
    threads = str(spec.limits.threads)
    return {
        "PATH": os.path.dirname(sys.executable) + ":/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8", "MPLBACKEND": "Agg", "MPLCONFIGDIR": "/tmp/.mpl",
        "IPYTHONDIR": "/tmp/.ipython", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONWARNINGS": "ignore",
        "NUMBA_CACHE_DIR": "/tmp/.numba",
        "TQDM_DISABLE": "1", "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
        DATA_DIR_ENV: spec.data_dir, "NBGRADER_EXECUTION": "autograde",
        # hidden checks are decided by the grader outside the kernel (course.grading.check_server)
        HIDDEN_CHECKS_ENV: AFTER_NOTEBOOK,
    }


def prepare_numba_cache(folder: Path, timeout: float = 300) -> str:
    """Compile the kit's imresize kernels into ``folder`` (a trusted process running the kit's own code) and
    return its path, or "" if that failed.

    Sandboxed code sees the kit's code read-only, and numba neither writes nor reads a cache it cannot write: each
    kernel would compile imresize again (~2.5 s of every notebook that resizes an image). With ``numba_cache`` in
    the spec, every sandboxed process starts with a private copy of this folder in its own /tmp instead; nothing
    it does there reaches another sandbox."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(folder), "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        subprocess.run([sys.executable, "-c", "from sr_utils.imresize import compile_kernels; compile_kernels()"],
                       env=env, check=True, capture_output=True, timeout=timeout)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        return ""
    for dirpath, _, files in os.walk(folder):  # the sandbox uid reads it
        os.chmod(dirpath, 0o755)
        for name in files:
            os.chmod(os.path.join(dirpath, name), 0o644)
    return str(folder.resolve())


def chown_tree(path: str, uid: int) -> None:
    """Give ``path`` (recursively) to the sandbox uid so that student code can write its own folder."""
    os.lchown(path, uid, uid)
    for entry, _, _ in plain_tree.walk(path):  # any depth (a kernel may leave 1,500 levels), nothing followed
        os.lchown(entry, uid, uid)


#: Folders nested deeper than this in a grading folder are removed after each notebook (no notebook needs them;
#: nbgrader walks the folder with recursion once the last notebook is graded).
MAX_FOLDER_DEPTH = 32


def prune_deep_folders(folder) -> list[str]:
    """Remove what sandboxed code nested deeper than :data:`MAX_FOLDER_DEPTH` in its folder; returns it."""
    return plain_tree.prune_deeper_than(folder, MAX_FOLDER_DEPTH)


def remove_special_files(folder) -> list[str]:
    """Delete symbolic links, FIFOs, sockets and devices that sandboxed code left in its (writable) folder.

    The trusted grader writes the next notebooks into this folder after the kernel is gone: a link planted by
    the student (``02_solver.ipynb -> .../gradebook.db``) would make it overwrite a file outside the sandbox,
    and a FIFO would block it. Returns what was removed (relative paths)."""
    import stat

    removed = []
    for path, parts, st in plain_tree.walk(folder):  # (any depth: an explicit stack, nothing followed)
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
            os.unlink(path)
            removed.append("/".join(parts))
    return removed


def probe(spec: SandboxSpec | None = None, timeout: float = 60) -> None:
    """Raise :class:`SandboxUnavailable` with the reason unless a sandbox can be built and runs Python here."""
    if shutil.which("bwrap") is None:
        raise SandboxUnavailable("bubblewrap (bwrap) is not installed: `apt-get install bubblewrap` "
                                 "(or `dnf install bubblewrap`), or grade inside Docker (README)")
    spec = spec or SandboxSpec(uid=FIRST_SANDBOX_UID if os.geteuid() == 0 else None)
    cmd = bwrap_command(spec, [sys.executable, "-c", "import socket, os; print(os.getuid())"], cwd="/tmp",
                        env=base_env(spec))
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise SandboxUnavailable("a test sandbox did not start within a minute") from None
    if out.returncode != 0:
        raise SandboxUnavailable("bwrap cannot build a sandbox here (user namespaces disabled? in a container "
                                 "without --privileged?): " + (out.stderr.strip().splitlines() or ["?"])[-1])


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

    @classmethod
    def create(cls, name: str, memory_bytes: int, processes: int) -> "Cgroup | None":
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
                        cpu = True
                return cls([d], cpu=cpu)
        except OSError:
            return None
        return None

    @property
    def procs(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs]

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


# ---------------------------------------------------------------------------------------------------------
# Disk: a size-limited tmpfs under a submission's grading folder while it runs (root)
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


def copy_plain_tree(src, dest, keep=None) -> int:
    """:func:`course.plain_tree.copy_plain_tree`."""
    return plain_tree.copy_plain_tree(src, dest, keep)


def enforce_folder_bound(folder, limit: int, keep_notebook_bytes: int = 20 << 20) -> str | None:
    """After a notebook ran: if the regular files under ``folder`` take more than ``limit`` bytes, delete all of
    them but the notebooks (a notebook over ``keep_notebook_bytes`` goes too) and say so; else None."""
    files = plain_tree.regular_files(folder)
    total = sum(n for _, n in files)
    if total <= limit:
        return None
    for path, n in files:
        if path.suffix != ".ipynb" or n > keep_notebook_bytes:
            os.unlink(path)
    return (f"wrote {total >> 20} MB into its grading folder (at most {limit >> 20} MB): its files were removed "
            "and the notebook scores 0")


class BoundedFolder:
    """``folder`` on a tmpfs of ``size`` bytes while a submission is graded (root), on disk again afterwards.

    ``__enter__`` moves an existing ``folder`` aside (into ``work``, which belongs to this folder alone), mounts the
    tmpfs on an empty ``folder`` and returns True (False, with everything left as it was, where no tmpfs can be
    mounted). ``__exit__`` copies the folders and regular files out (at most ``size`` bytes: the tmpfs holds no
    more; only the files ``keep`` names when given), unmounts, and puts the copy in place of ``folder``'s old
    entries of the same names (the others, e.g. other assignments, are kept). After a grading run that was killed in between, the next ``__enter__`` unmounts
    the leftover tmpfs and restores what was moved aside first."""

    def __init__(self, folder, work, size: int, keep=None):
        self.folder, self.work, self.size = Path(folder), Path(work), int(size)
        self.keep = keep  # which files are copied out (relative parts -> bool; all by default)
        self.mounted = False

    def __enter__(self) -> bool:
        if os.path.ismount(self.folder):  # left by a grading run that was killed
            unmount(self.folder)
        if os.path.lexists(self.work / "aside"):  # (idem) the folder as it was before that run
            plain_tree.remove_tree(self.folder)
            shutil.move(self.work / "aside", self.folder)
        plain_tree.remove_tree(self.work)
        self.work.mkdir(parents=True)
        if os.path.lexists(self.folder):
            shutil.move(self.folder, self.work / "aside")
        self.folder.mkdir(parents=True)
        self.mounted = mount_tmpfs(self.folder, self.size)
        if not self.mounted:
            self.folder.rmdir()
            if os.path.lexists(self.work / "aside"):
                shutil.move(self.work / "aside", self.folder)
            plain_tree.remove_tree(self.work)
        return self.mounted

    def __exit__(self, *exc) -> None:
        if not self.mounted:
            return
        out = self.work / "out"
        try:
            plain_tree.copy_plain_tree(self.folder, out, self.keep)
        finally:
            unmount(self.folder)
        self.folder.rmdir()
        if os.path.lexists(self.work / "aside"):
            shutil.move(self.work / "aside", self.folder)
        else:
            self.folder.mkdir()
        for entry in out.iterdir():
            target = self.folder / entry.name
            plain_tree.remove_tree(target)
            shutil.move(entry, target)
        plain_tree.remove_tree(self.work)


def in_cgroups(spec: SandboxSpec, argv: list[str]) -> list[str]:
    """``argv`` preceded by a tiny launcher that moves itself into the spec's cgroups, then execs ``argv``
    (a launcher, not ``preexec_fn``: the grader is multi-threaded)."""
    if not spec.cgroup_procs or os.geteuid() != 0:
        return argv
    return [sys.executable, "-I", "-c", _JOIN, os.pathsep.join(spec.cgroup_procs), *argv]


_JOIN = ("import os, sys\nfor f in sys.argv[1].split(os.pathsep):\n    open(f, 'w').write(str(os.getpid()))\n"
         "os.execvp(sys.argv[2], sys.argv[2:])\n")


# ---------------------------------------------------------------------------------------------------------
# The kernel
# ---------------------------------------------------------------------------------------------------------
def write_kernelspec(folder: Path) -> Path:
    """Write the ``sr-sandbox`` kernelspec under ``folder/kernels`` (put ``folder`` on ``JUPYTER_PATH``).

    Interrupts travel as messages: a signal sent to bwrap would not reach the kernel inside."""
    kdir = Path(folder) / "kernels" / KERNEL_NAME
    kdir.mkdir(parents=True, exist_ok=True)
    spec = {"argv": [sys.executable, "-I", "-m", "course.sandbox", "kernel", "{connection_file}"],
            "display_name": "Python 3 (SR kit grading sandbox)", "language": "python",
            "interrupt_mode": "message", "metadata": {"debugger": False}}
    (kdir / "kernel.json").write_text(json.dumps(spec, indent=1))
    return kdir


def kernel_main(connection_file: str) -> None:
    """Entry point of the kernelspec: wrap ``ipykernel`` in a sandbox rooted at the current folder."""
    spec = SandboxSpec.from_env()
    if spec is None or not spec.enabled:
        sys.exit(f"{KERNEL_NAME} kernel started without ${SANDBOX_ENV}: use `python -m course.grade`")
    cwd = os.path.realpath(os.getcwd())
    allowed = os.path.realpath(os.path.join(spec.course_root, AUTOGRADED_DIR)) + os.sep
    if not cwd.startswith(allowed):
        sys.exit(f"{KERNEL_NAME} kernel refuses to run outside {allowed} (cwd {cwd})")
    runtime = os.path.dirname(os.path.realpath(connection_file))
    runtimes = os.path.realpath(os.path.join(spec.course_root, STATE_DIR, RUNTIME_DIR)) + os.sep
    if not runtime.startswith(runtimes):  # it is bound read-write into the sandbox: never a shared folder
        sys.exit(f"{KERNEL_NAME} kernel: connection file {connection_file} is not under {runtimes} "
                 "(set TMPDIR and JUPYTER_RUNTIME_DIR to a private folder there)")
    if spec.uid is not None and os.geteuid() == 0:
        chown_tree(cwd, spec.uid)
        os.chown(runtime, spec.uid, spec.uid)
        os.chown(connection_file, spec.uid, spec.uid)
    cmd = bwrap_command(spec, [sys.executable, "-m", "ipykernel_launcher", "-f", connection_file], cwd=cwd,
                        writable=[cwd, runtime], env=base_env(spec))
    cmd = in_cgroups(spec, cmd)
    os.execvp(cmd[0], cmd)


# ---------------------------------------------------------------------------------------------------------
# Hidden checks
# ---------------------------------------------------------------------------------------------------------
def student_launcher(spec: SandboxSpec, folder: Path):
    """``launch(argv)`` for :class:`student_client.Student`: the student-side process of the hidden checks runs
    in a sandbox with the submission's grading folder read-only, as the worker's uid, in its cgroups. (It holds no
    secret: the check code and the reference stay in the trusted process that decides the verdicts.)

    What is bound is the folder's parent (``autograded/<student>``): the grader starts this process before
    nbgrader has made ``folder`` (nbgrader removes and makes it again), and it sees it appear there."""
    def launch(argv: list[str]) -> list[str]:
        parent = str(Path(folder).parent)
        cmd = bwrap_command(spec, argv, cwd=parent, readonly=[parent], env=base_env(spec))
        return in_cgroups(spec, cmd)

    return launch


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "kernel":
        kernel_main(sys.argv[2])
    else:
        sys.exit(f"usage: {sys.argv[0]} kernel CONNECTION_FILE (started by Jupyter, not by hand)")
