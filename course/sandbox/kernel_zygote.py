"""The submission's zygote: one sandboxed process per submission that imports what a notebook's kernel and the
hidden checks' student side need (ipykernel, torch, matplotlib, the kit's ``sr_utils``) once, then forks each of
that submission's kernels, and its student side, from itself.

A kernel or a student side that is a new Python imports all of that again: ~3 s of CPU each, most of what a short
notebook costs the grader. Forked, they start at once.

This file runs **inside the sandbox** (started by the submission's check server, :mod:`.submission_zygote`), as
``python -c SOURCE KERNEL_FD``, SOURCE this file's source after :mod:`.landlock`'s (as the module ``sr_kit_landlock``:
:func:`.submission_zygote.zygote_source`): the sandbox cannot see ``course/``, so it imports nothing of it, and only
the standard library at import time. It never runs student code itself; its children do. They run as the same
sandbox uid in the same sandbox, so they can signal or end it (not trace it: it is not dumpable, nor are they): a
zygote that misbehaves harms only the grading of its own submission, which the grader's side bounds (the check
server kills the whole sandbox; the next kernels and student sides start each in a sandbox of their own).

The sandbox binds the submission's folder's parent (``autograded/<student>``: nbgrader makes the folder anew after
the zygote starts) read-write. Each child narrows what it may write with Landlock before it runs anything: a
kernel writes only its notebook's folder, its runtime folder and the sandbox's own ``/tmp``, ``/dev/shm`` and
``/dev``; the student side only the last three (its folder is read-only to it, as in a sandbox of its own). Where
Landlock is missing, the zygote says so when ready and is not used.

Two SOCK_SEQPACKET sockets, one JSON object per datagram: the *owner's* on fd 0 (the check server: the student
side) and the *kernels'* on fd ``KERNEL_FD`` (the submission's nbgrader process, through the check server's hands).

* to both, once its imports are done: ``{"ready": seconds, "landlock": abi}``, or ``{"error": why}`` and it ends
  (a preloaded module started a thread: forking it would not be safe);
* kernels': ``{"warm": 1}`` before the first notebook that trains: the zygote builds a first optimizer itself
  (torch imports ``torch._dynamo`` then, ~1 s of CPU) and answers ``{"warmed": seconds}``, so that the kernels and
  the student side forked after it do not each pay for it (a submission whose notebooks train none never asks);
* kernels': ``{"fork": CONNECTION_FILE, "cwd": FOLDER}``; the zygote first kills every process of the sandbox but
  itself and the student side's session (what an earlier kernel left behind), then forks the kernel and answers
  ``{"forked": pid}`` (``{"refused": why}`` where it cannot fork: the sandbox's process limit); ``{"signal":
  SIGNUM}`` for the current kernel (its process group; SIGKILL and SIGTERM: every process of the sandbox but the
  zygote and the student side's);
* owner's: ``{"student": [ARG...], "code": SOURCE, "cwd": FOLDER, "niceness": N}`` with two descriptors (the
  child's stdin and stdout): forks ``python -I -c SOURCE ARG...`` as it would run, answers as for a kernel;
  ``{"kill": pid}``: kills that student side's session;
* to the socket that asked for it: ``{"exited": pid, "status": code}`` when a child ends (``code`` as
  :class:`subprocess.Popen` gives it: minus the signal that killed it).

When the kernels' socket closes, the zygote kills every kernel; when the owner's closes, it ends, and the sandbox
with it.
"""
import contextlib
import ctypes
import gc
import importlib
import importlib.util
import json
import os
import select
import signal
import socket
import sys
import time

from sr_kit_landlock import SANDBOX_WRITABLE, landlock_abi, restrict_writes  # (see above)

#: imported before any child is forked: what the kernel itself, the assignment's notebooks and the student side import
PRELOAD = ("ipykernel.kernelapp", "ipykernel.ipkernel", "IPython.display", "numpy", "PIL.Image", "torch",
           "torch.nn", "torch.nn.functional", "matplotlib.pyplot", "sr_utils.notebook",
           "sr_utils.i18n", "sr_utils.color", "sr_utils.vgg", "sr_utils.plotting", "sr_utils.datasets",
           "sr_utils.metrics", "sr_utils.evaluation", "sr_utils.trainer", "sr_utils.trained", "sr_utils.inference",
           "sr_utils.tables", "sr_utils.lists", "data_tools.samples")
MAX_MESSAGE = 1 << 16  # bytes of one request
STUDENT_SIDE_NAME = b"sr-student-side"  # a student side's process name (comm), as a kernel in the sandbox sees it
_LIBC = ctypes.CDLL(None, use_errno=True)


def threads() -> int:
    """This process's threads (a process with more than one must not fork: the child gets only the caller)."""
    return len(os.listdir("/proc/self/task"))


@contextlib.contextmanager
def installed_packages_only():
    """Imports from the installed packages only, never from the current folder (the submission's folder's parent,
    which the zygote may write)."""
    path = sys.path[:]
    sys.path[:] = [p for p in sys.path if p not in ("", ".", os.getcwd())]
    try:
        yield
    finally:
        sys.path[:] = path


def preload() -> str:
    """Import :data:`PRELOAD` (:func:`installed_packages_only`) and build matplotlib's font list once; a module that
    fails to import is left for the kernel to meet. Returns the first module after whose import this process had
    more than one thread ("" if none)."""
    # numpy's OpenBLAS starts its threads as it is loaded (a process with threads must not fork): in the kernels it
    # runs on one thread (torch's own threads, OMP_NUM_THREADS, start at their first use, in each kernel)
    blas = os.environ.get("OPENBLAS_NUM_THREADS")
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    try:
        with installed_packages_only():
            for name in PRELOAD:
                try:
                    importlib.import_module(name)
                except Exception:  # noqa: BLE001 (the notebook that imports it gets the error itself)
                    pass
                if threads() != 1:
                    return name
    finally:
        if blas is None:
            del os.environ["OPENBLAS_NUM_THREADS"]
        else:
            os.environ["OPENBLAS_NUM_THREADS"] = blas
    return ""


def build_first_optimizer() -> float:
    """Build a throw-away optimizer (:func:`installed_packages_only`): torch's first optimizer in a process imports
    ``torch._dynamo`` (~1 s of CPU), which the children forked afterwards then find done. Returns its seconds of
    CPU."""
    t0 = time.process_time()
    try:
        with installed_packages_only():
            import torch

            torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.0)
    except Exception:  # noqa: BLE001 (each child then pays for its own first optimizer, as without this)
        pass
    gc.freeze()  # (what it imported stays out of the children's collections, as the preloaded modules do)
    return round(time.process_time() - t0, 2)


def session_of(pid: int) -> int:
    """The session id of ``pid`` (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rpartition(")")[2].split()[3])
    except (OSError, ValueError, IndexError):
        return 0


def others(spare: set[int] = frozenset()) -> list[int]:
    """Every process of the sandbox but this one, the sandbox's init (pid 1) and the processes ``spare`` with their
    sessions (a student side leads one: what it starts stays in it)."""
    me = os.getpid()
    return [p for p in map(int, filter(str.isdigit, os.listdir("/proc")))
            if p not in (1, me) and not (spare and (p in spare or session_of(p) in spare))]


def kill_until_gone(select_pids) -> list[tuple[int, int]]:
    """SIGKILL what ``select_pids()`` lists until it lists none (bounded); returns the children reaped on the way,
    as :func:`reap`."""
    ended = []
    for _ in range(50):
        left = select_pids()
        if not left:
            break
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        ended += reap()
        time.sleep(0.02)
    return ended + reap()


def reap() -> list[tuple[int, int]]:
    """Reap ended children; returns (pid, code) for each, code as Popen gives it."""
    ended = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return ended
        if pid == 0:
            return ended
        ended.append((pid, os.waitstatus_to_exitcode(status)))


def run_child(start) -> int:
    """The forked child's whole life: ``start()``, then what a normal interpreter exit runs (``atexit``: the
    kernel's and IPython's clean-up); returns the exit code (the zygote's own stack is never returned to)."""
    code = 0
    try:
        start()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # noqa: BLE001
        import traceback

        traceback.print_exc()
        code = 1
    try:
        import atexit

        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:  # noqa: BLE001
        pass
    return code


def become_kernel(connection_file: str, cwd: str) -> None:
    """In the forked child: a session of its own, writes narrowed to its folders, and ipykernel started as ``python
    -m ipykernel_launcher -f CONNECTION_FILE`` would start it in ``cwd`` (the same ``sys.argv`` and ``sys.path``)."""
    os.setsid()
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.chdir(cwd)
    restrict_writes((cwd, os.path.dirname(os.path.abspath(connection_file)), *SANDBOX_WRITABLE))
    sys.path[:] = [p for p in sys.path if p not in ("", ".")]  # (ipykernel_launcher removes the folder too)
    sys.argv = [importlib.util.find_spec("ipykernel_launcher").origin, "-f", connection_file]
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()


def become_student(request: dict, fds: list[int]) -> None:
    """In the forked child: ``python -I -c CODE ARG...`` as it would run in ``cwd``, on the descriptors ``fds``
    (stdin, stdout; stderr is the null device), in a session of its own, at the niceness asked, unable to write
    anything but the sandbox's own folders."""
    os.setsid()
    _LIBC.prctl(15, STUDENT_SIDE_NAME, 0, 0, 0)  # (PR_SET_NAME: what /proc/PID/comm shows)
    os.dup2(fds[0], 0)
    os.dup2(fds[1], 1)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    for fd in (*fds, null):
        if fd > 2:
            os.close(fd)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    niceness = int(request.get("niceness", 0))
    if niceness > os.getpriority(os.PRIO_PROCESS, 0):  # (its new session is a scheduling group: its niceness too)
        os.setpriority(os.PRIO_PROCESS, 0, niceness)
        try:
            with open("/proc/self/autogroup", "w") as f:
                f.write(str(niceness))
        except OSError:
            pass
    os.chdir(str(request["cwd"]))
    restrict_writes(SANDBOX_WRITABLE)
    sys.path[:] = [p for p in sys.path if p not in ("", ".")]
    sys.argv = ["-c", *map(str, request["student"])]
    main = type(sys)("__main__")
    sys.modules["__main__"] = main
    exec(compile(str(request["code"]), "<string>", "exec"), main.__dict__)


class Zygote:
    """The zygote's state: its two sockets, the current kernel, the student sides (pid -> session)."""

    def __init__(self, owner: socket.socket, kernels: socket.socket | None):
        self.owner, self.kernels, self.kernel, self.students = owner, kernels, None, set()
        self.warmed = False  # whether it built a first optimizer (asked once the submission's notebooks train)

    def send(self, sock, message: dict) -> None:
        if sock is not None:
            try:
                sock.send(json.dumps(message).encode())
            except OSError:
                if sock is self.kernels:
                    self.kernels_gone()
                else:
                    raise

    def report(self, ended) -> None:
        for pid, code in ended:
            if pid in self.students:
                self.students.discard(pid)
                self.send(self.owner, {"exited": pid, "status": code})
            else:
                self.kernel = None if pid == self.kernel else self.kernel
                self.send(self.kernels, {"exited": pid, "status": code})

    def kill_kernels(self) -> None:
        """Every process of the sandbox but this one and the student sides' sessions."""
        self.report(kill_until_gone(lambda: others(self.students)))

    def kernels_gone(self) -> None:
        if self.kernels is not None:
            self.kernels.close()
            self.kernels = None
            self.kill_kernels()

    def fork(self, start, close: list[int] = ()) -> int:
        """Fork a child that runs ``start()``; 0 where it cannot (the sandbox's process limit)."""
        try:
            pid = os.fork()
        except OSError:
            pid = -1
        if pid == 0:
            for sock in (self.owner, self.kernels):
                if sock is not None:
                    sock.close()
            os._exit(run_child(start))
        for fd in close:
            os.close(fd)
        return max(pid, 0)

    def on_kernels(self, request: dict) -> None:
        if "warm" in request:
            seconds = 0.0 if self.warmed else build_first_optimizer()
            self.warmed = True
            if threads() != 1:  # (forking would not be safe: the owner's end then sees the zygote gone)
                raise SystemExit(f"{threads()} threads once a first optimizer was built: forking is not safe")
            self.send(self.kernels, {"warmed": seconds})
        elif "fork" in request:
            self.kill_kernels()
            connection_file, cwd = str(request["fork"]), str(request.get("cwd") or os.getcwd())
            self.kernel = self.fork(lambda: become_kernel(connection_file, cwd)) or None
            self.send(self.kernels, {"forked": self.kernel} if self.kernel else {"refused": "fork failed"})
        elif "signal" in request and self.kernel is not None:
            signum = int(request["signal"])
            if signum in (signal.SIGKILL, signal.SIGTERM):
                self.kill_kernels()
            else:
                try:
                    os.killpg(self.kernel, signum)
                except OSError:
                    pass

    def on_owner(self, request: dict, fds: list[int]) -> None:
        if "student" in request and len(fds) == 2:
            pid = self.fork(lambda: become_student(request, fds), close=fds)
            if pid:
                self.students.add(pid)
            self.send(self.owner, {"forked": pid} if pid else {"refused": "fork failed"})
        elif "kill" in request and int(request["kill"]) in self.students:
            session = int(request["kill"])
            self.report(kill_until_gone(lambda: [p for p in others() if session_of(p) == session]))
        else:
            for fd in fds:
                os.close(fd)

    def serve(self) -> None:
        """Answer requests (the protocol above) until the owner's socket closes."""
        while True:
            self.report(reap())
            ready = select.select([s for s in (self.owner, self.kernels) if s is not None], [], [], 0.1)[0]
            if self.kernels in ready:
                data = self.kernels.recv(MAX_MESSAGE)
                if not data:
                    self.kernels_gone()
                else:
                    self.on_kernels(json.loads(data))
            if self.owner in ready:
                data, fds, _, _ = socket.recv_fds(self.owner, MAX_MESSAGE, 2)
                if not data:
                    return
                self.on_owner(json.loads(data), fds)


def main() -> None:
    # not dumpable: no process of the sandbox (a kernel) can trace it, read its memory or open its descriptors, and
    # so run code in it, which Landlock does not narrow (it may write the folder's parent); its children inherit it
    _LIBC.prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE
    owner = socket.socket(fileno=os.dup(0))
    kernels = socket.socket(fileno=int(sys.argv[1])) if len(sys.argv) > 1 else None
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    t0 = time.process_time()
    threaded = preload()
    zygote = Zygote(owner, kernels)
    if threaded:
        names = sorted(open(f"/proc/self/task/{t}/comm").read().strip() for t in os.listdir("/proc/self/task"))
        error = {"error": f"{len(names)} threads ({', '.join(names)[:120]}) once {threaded} was imported: forking "
                          "is not safe"}
        zygote.send(kernels, error)
        zygote.send(owner, error)
        return
    # what was imported stays out of the collector's way: a child's collections do not walk it (nor touch, and so
    # copy, the pages it shares with the zygote)
    gc.freeze()
    try:
        ready = {"ready": round(time.process_time() - t0, 2), "landlock": landlock_abi()}
        zygote.send(kernels, ready)
        zygote.send(owner, ready)
        zygote.serve()
    except (BrokenPipeError, ConnectionResetError):  # the owner's end closed: its check server has ended
        pass


if __name__ == "__main__":
    main()
