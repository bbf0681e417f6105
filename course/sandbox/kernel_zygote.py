"""The kernel zygote: one sandboxed process per submission that imports what a notebook's kernel needs (ipykernel,
torch, matplotlib, the kit's ``sr_utils``) once, then forks each of that submission's kernels from itself.

A kernel that is a new Python imports all of that again: ~3 s of CPU per notebook, most of what a short notebook
costs the grader. Forked, the second to fifth notebooks of a submission start at once.

This file runs **inside the sandbox** (started by :mod:`.kernel_provisioner` in the submission's nbgrader
process), as ``python -c <this file's source>``, with its socket as standard input: the sandbox cannot see
``course/``, so it imports nothing of it, and only the standard library at import time. It never runs student
code itself; its children are the kernels that do. They run as the same sandbox uid in the same sandbox, so they
can signal or end it: a zygote that misbehaves harms only the grading of its own submission, which the grader's
side bounds (it kills the whole sandbox and starts the remaining kernels anew).

The protocol, one JSON object per datagram on the SOCK_SEQPACKET socket (fd 0):

* from the zygote, once its imports are done: ``{"ready": seconds}``, or ``{"error": why}`` and it ends (a
  preloaded module started a thread: forking it would not be safe);
* from the grader: ``{"fork": CONNECTION_FILE}``; the zygote first kills every process of the sandbox but itself
  (what an earlier kernel left behind), then forks the kernel and answers ``{"forked": pid}``;
* from the grader: ``{"signal": SIGNUM}`` for the current kernel (its process group; SIGKILL and SIGTERM: every
  process of the sandbox but the zygote);
* from the zygote: ``{"exited": pid, "status": code}`` when a kernel ends (``code`` as :class:`subprocess.Popen`
  gives it: minus the signal that killed it).

When the grader's end closes, the zygote ends, and the sandbox with it.
"""
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

#: imported before any kernel is forked: what the kernel itself and the assignment's notebooks import
PRELOAD = ("ipykernel.kernelapp", "ipykernel.ipkernel", "IPython.display", "numpy", "PIL.Image", "torch",
           "torch.nn", "torch.nn.functional", "matplotlib.pyplot", "sr_utils.notebook",
           "sr_utils.i18n", "sr_utils.color", "sr_utils.vgg", "sr_utils.plotting", "sr_utils.datasets",
           "sr_utils.metrics", "sr_utils.evaluation", "sr_utils.trainer", "sr_utils.trained", "sr_utils.inference",
           "sr_utils.tables", "sr_utils.lists", "data_tools.samples")
MAX_MESSAGE = 1 << 16  # bytes of one request


def threads() -> int:
    """This process's threads (a process with more than one must not fork: the child gets only the caller)."""
    return len(os.listdir("/proc/self/task"))


def preload() -> str:
    """Import :data:`PRELOAD` from the installed packages, never from the submission's folder (the current folder),
    and build matplotlib's font list once; a module that fails to import is left for the kernel to meet. Returns
    the first module after whose import this process had more than one thread ("" if none)."""
    path = sys.path[:]
    sys.path[:] = [p for p in sys.path if p not in ("", ".", os.getcwd())]
    # numpy's OpenBLAS starts its threads as it is loaded (a process with threads must not fork): in the kernels it
    # runs on one thread (torch's own threads, OMP_NUM_THREADS, start at their first use, in each kernel)
    blas = os.environ.get("OPENBLAS_NUM_THREADS")
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    try:
        for name in PRELOAD:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 (the notebook that imports it gets the error itself)
                pass
            if threads() != 1:
                return name
    finally:
        sys.path[:] = path
        if blas is None:
            del os.environ["OPENBLAS_NUM_THREADS"]
        else:
            os.environ["OPENBLAS_NUM_THREADS"] = blas
    return ""


def others() -> list[int]:
    """Every process of the sandbox but this one and the sandbox's init (pid 1)."""
    me = os.getpid()
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) not in (1, me)]


def kill_others() -> list[tuple[int, int]]:
    """SIGKILL every process of the sandbox but this one (and its init), until none is left (bounded); returns the
    children reaped on the way, as :func:`reap`."""
    ended = []
    for _ in range(50):
        left = others()
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


def become_kernel(connection_file: str) -> None:
    """In the forked child: a session of its own, and ipykernel started as ``python -m ipykernel_launcher -f
    CONNECTION_FILE`` would start it (the same ``sys.argv`` and ``sys.path``)."""
    os.setsid()
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    sys.path[:] = [p for p in sys.path if p not in ("", ".")]  # (ipykernel_launcher removes the folder too)
    sys.argv = [importlib.util.find_spec("ipykernel_launcher").origin, "-f", connection_file]
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()


def run_kernel(connection_file: str) -> int:
    """The forked child's whole life: the kernel, then what a normal interpreter exit runs (``atexit``: the
    kernel's and IPython's clean-up); returns the exit code (the zygote's own stack is never returned to)."""
    code = 0
    try:
        become_kernel(connection_file)
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


def serve(sock: socket.socket) -> None:
    """Answer the grader's requests on ``sock`` (the protocol above) until it closes."""
    kernel = None

    def report(ended):
        nonlocal kernel
        for pid, code in ended:
            kernel = None if pid == kernel else kernel
            sock.send(json.dumps({"exited": pid, "status": code}).encode())

    while True:
        report(reap())
        if not select.select([sock], [], [], 0.1)[0]:
            continue
        data = sock.recv(MAX_MESSAGE)
        if not data:
            return
        request = json.loads(data)
        if "fork" in request:
            report(kill_others())
            kernel = os.fork()
            if kernel == 0:
                sock.close()
                os._exit(run_kernel(str(request["fork"])))
            sock.send(json.dumps({"forked": kernel}).encode())
        elif "signal" in request and kernel is not None:
            signum = int(request["signal"])
            if signum in (signal.SIGKILL, signal.SIGTERM):
                report(kill_others())
            else:
                try:
                    os.killpg(kernel, signum)
                except OSError:
                    pass


def main() -> None:
    sock = socket.socket(fileno=os.dup(0))
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    t0 = time.process_time()
    threaded = preload()
    if threaded:
        names = sorted(open(f"/proc/self/task/{t}/comm").read().strip() for t in os.listdir("/proc/self/task"))
        sock.send(json.dumps({"error": f"{len(names)} threads ({', '.join(names)[:120]}) once {threaded} was "
                                       "imported: forking is not safe"}).encode())
        return
    # what was imported stays out of the collector's way: a kernel's collections do not walk it (nor touch, and so
    # copy, the pages it shares with the zygote)
    gc.freeze()
    try:
        sock.send(json.dumps({"ready": round(time.process_time() - t0, 2)}).encode())
        serve(sock)
    except (BrokenPipeError, ConnectionResetError):  # the grader's end closed: its nbgrader process has ended
        pass


if __name__ == "__main__":
    main()
