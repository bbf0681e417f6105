"""Isolation: the bwrap command that runs student code in a sandbox (namespaces, read-only binds, a private
size-limited ``/tmp``, no network, the seccomp filter, rlimits, an unprivileged uid as root), the pool of sandbox
uids, the environment sandboxed code gets, and the probe that says whether a sandbox can be built here."""
from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from course.grading.contract import AFTER_NOTEBOOK, DATA_DIR_ENV, HIDDEN_CHECKS_ENV

from .seccomp import _WITH_SECCOMP, SECCOMP_FD_MARK, seccomp_program
from .spec import SandboxSpec, SandboxUnavailable

SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/sys", "/opt")
CGROUP_ROOT = "/sys/fs/cgroup"  # (empty in the sandbox)
FIRST_SANDBOX_UID = 61000  # as root, student code runs as a uid of 61000..61999, each held by one worker of one run
SANDBOX_UIDS = 1000
UID_LOCKS = Path("/run/lock/sr-kit-sandbox-uids")


def python_dirs() -> list[str]:
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


def user_process_count(uid: int) -> int:
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
    binds = [("--ro-bind", d) for d in [*python_dirs(), *spec.code_dirs, spec.data_dir, spec.numba_cache, *readonly]
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


def probe(spec: SandboxSpec | None = None, timeout: float = 60) -> None:
    """Raise :class:`SandboxUnavailable` with the reason unless a sandbox can be built and runs Python here. As
    root, without ``spec``, the test sandbox runs as a sandbox uid held for it (:class:`UidPool`): never as one that
    another grading run's submissions use (whose processes may have filled that uid's process limit)."""
    if shutil.which("bwrap") is None:
        raise SandboxUnavailable("bubblewrap (bwrap) is not installed: `apt-get install bubblewrap` "
                                 "(or `dnf install bubblewrap`), or grade inside Docker (README)")
    pool = UidPool(1) if spec is None and os.geteuid() == 0 else None
    spec = spec or SandboxSpec(uid=pool.uids[0] if pool else None)
    cmd = bwrap_command(spec, [sys.executable, "-c", "import socket, os; print(os.getuid())"], cwd="/tmp",
                        env=base_env(spec))
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise SandboxUnavailable("a test sandbox did not start within a minute") from None
    finally:
        if pool:
            pool.release()
    if out.returncode != 0:
        raise SandboxUnavailable("bwrap cannot build a sandbox here (user namespaces disabled? in a container "
                                 "without --privileged?): " + (out.stderr.strip().splitlines() or ["?"])[-1])
