"""The grader's ends of a submission's zygote (:mod:`.kernel_zygote`): the sandboxed process that imported what the
submission's kernels and its hidden checks' student side need, and forks them.

* :class:`ZygoteProcess` runs in the submission's check server (trusted; it owns the zygote): it starts the zygote,
  in the sandbox the submission's kernels would have had (the same bwrap command: uid, namespaces, seccomp, rlimits,
  cgroups, environment) with the folder's parent and the runtime folder bound read-write, and forks the student side
  from it (:class:`ForkedStudent`, which the check server uses as it would a :class:`subprocess.Popen`).
* :class:`ZygoteChannel` is what both ends share: bounded datagrams, checked fields, timeouts, and the ``exited``
  reports recorded on the way. The nbgrader process's end, which forks the kernels, is
  :class:`.kernel_provisioner.KernelZygote`.

The zygote runs as the sandbox uid, beside children that run student code: everything it says is treated as
hostile, and when it does not do what is asked -- not ready in time, no answer, a child not ended after a kill, the
zygote gone -- its whole sandbox is killed (here) or left (by the nbgrader process), and the next kernels and student
sides start each in a sandbox of their own, said in the submission's log (``contract.ZYGOTE_MARK`` lines).
"""
from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from course.grading.contract import KERNEL_ZYGOTE_ENV, ZYGOTE_MARK

from .isolation import base_env, bwrap_command
from .landlock import MODULE as LANDLOCK_MODULE, SANDBOX_WRITABLE
from .resources import in_cgroups
from .spec import SandboxSpec

READY_TIMEOUT = 180.0  # seconds the zygote may take to import (~5 s of CPU; much longer on a loaded machine)
ANSWER_TIMEOUT = 30.0  # seconds the zygote may take to answer a fork
KILL_GRACE = 10.0  # seconds a killed child may take to be reported ended before the zygote is given up
MAX_MESSAGE = 4096  # bytes of one datagram from the zygote
ANEW = "this submission's next kernels and student sides start anew, each in a sandbox of its own"


def say(message: str) -> None:
    """A line in the submission's log (this process's stderr)."""
    print(f"{ZYGOTE_MARK} {message}", file=sys.stderr, flush=True)


class ZygoteGone(OSError):
    """The zygote did not do what was asked (or is gone): it is no longer used."""


class ZygoteChannel:
    """One end of a zygote's socket: ``ready`` once it said so (with its Landlock ABI), the children's ends in
    ``exited`` (pid -> code), :meth:`stop` when it is given up (``why``: said in the log)."""

    def __init__(self, sock: socket.socket):
        self.sock, self.exited, self.state = sock, {}, None  # state: the ready/error message, once received

    def alive(self) -> bool:
        return self.sock is not None

    def _take(self, data: bytes) -> dict | None:
        """The message in ``data``, recorded where it is a report; None where it is not a JSON object."""
        try:
            message = json.loads(data) if data else None
        except ValueError:
            message = None
        if not isinstance(message, dict):
            return None
        if "exited" in message:
            pid, status = message.get("exited"), message.get("status")
            if isinstance(pid, int) and isinstance(status, int):
                self.exited[pid] = status
        elif "ready" in message or "error" in message:
            self.state = message
        return message

    def receive(self, want: tuple[str, ...], timeout: float) -> dict:
        """The next message with one of the keys ``want`` (reports recorded on the way), within ``timeout``; ``{}``
        on a breach, silence or the end of the socket (the caller then gives the zygote up)."""
        deadline = time.monotonic() + timeout
        while self.alive():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if not select.select([self.sock], [], [], min(left, 1.0))[0]:
                continue
            try:
                data = self.sock.recv(MAX_MESSAGE)
            except OSError:
                data = b""
            message = self._take(data)
            if message is None:
                break
            if any(key in message for key in want):
                return message
        return {}

    def drain(self) -> None:
        """Record the reports that arrived (the zygote says nothing else unasked)."""
        while self.alive():
            try:
                data = self.sock.recv(MAX_MESSAGE, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if self._take(data) is None:
                self.stop("it ended, or sent what it should not")
                return

    def ended(self, pid: int) -> int | None:
        """The exit code of the child ``pid`` once reported (as Popen gives it), -SIGKILL once the zygote is given
        up (its children went with its sandbox, or are no longer heard of), else None."""
        self.drain()
        if pid in self.exited:
            return self.exited.pop(pid)
        return None if self.alive() else -signal.SIGKILL

    def usable(self) -> bool:
        """Ready, with Landlock (its children narrow what they may write with it), within ``READY_TIMEOUT``."""
        if self.state is None and self.alive():
            self.receive(("ready", "error"), READY_TIMEOUT)
        state = self.state or {}
        ready, landlock = state.get("ready"), state.get("landlock")
        if self.sock is None:  # (given up already)
            return False
        if not self.alive():
            self.stop("it ended" + (f" ({str(state['error'])[:200]})" if state.get("error") else ""))
        elif not isinstance(ready, (int, float)) or isinstance(ready, bool):
            self.stop(f"not ready ({str(state.get('error', 'no answer'))[:200]})")
        elif not isinstance(landlock, int) or landlock < 1:
            self.stop("no Landlock in this kernel (its children could not narrow what they may write)")
        return self.alive()

    def request(self, message: dict, fds: list[int] = ()) -> int:
        """Send a fork request (with ``fds``); the pid of the child forked. :class:`ZygoteGone` if there is none."""
        if not self.usable():
            raise ZygoteGone("the zygote is gone")
        data = json.dumps(message).encode()
        try:
            if fds:
                socket.send_fds(self.sock, [data], list(fds))
            else:
                self.sock.send(data)
        except OSError:
            self.stop()
            raise ZygoteGone("the zygote is gone") from None
        answer = self.receive(("forked", "refused"), ANSWER_TIMEOUT) if self.alive() else {}
        if "refused" in answer:  # (the sandbox's process limit: a new sandbox would not start either)
            raise ZygoteGone(f"the zygote could not fork ({str(answer['refused'])[:100]})")
        pid = answer.get("forked")
        if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 1:
            self.stop("it forked nothing")
            raise ZygoteGone("the zygote forked nothing")
        self.exited.pop(pid, None)
        return pid

    def send(self, message: dict) -> None:
        if self.alive():
            try:
                self.sock.send(json.dumps(message).encode())
            except OSError:
                self.stop("it no longer takes requests")

    def stop(self, why: str = "") -> None:
        if why and self.sock is not None:
            say(f"{why}: {ANEW}")
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def beneath_sandbox_folders(*paths: str) -> str:
    """The first of ``paths`` that lies beneath a folder the sandbox has of its own (``/tmp``, ``/dev``: every
    sandboxed process may write there, and so beneath), "" if none: Landlock could not keep a child from writing it."""
    for path in paths:
        real = os.path.realpath(path)
        if any(real == d or real.startswith(d + os.sep) for d in SANDBOX_WRITABLE):
            return path
    return ""


def zygote_source() -> str:
    """What the zygote runs as ``python -c``: :mod:`.landlock`'s source made the module ``LANDLOCK_MODULE`` (the
    sandbox cannot import ``course``), then :mod:`.kernel_zygote`'s, which imports it by that name."""
    here = Path(__file__).parent
    landlock = (here / "landlock.py").read_text(encoding="utf-8")
    return (f"import sys, types\nsys.modules[{LANDLOCK_MODULE!r}] = types.ModuleType({LANDLOCK_MODULE!r})\n"
            f"exec(compile({landlock!r}, 'landlock.py', 'exec'), sys.modules[{LANDLOCK_MODULE!r}].__dict__)\n"
            + (here / "kernel_zygote.py").read_text(encoding="utf-8"))


class ZygoteProcess(ZygoteChannel):
    """The check server's zygote: started at once (it imports while nbgrader starts), given ``kernels`` (the
    socket whose other end the submission's nbgrader process holds), forking student sides at ``niceness``.
    :class:`OSError` where it cannot be started (said why)."""

    def __init__(self, spec: SandboxSpec, folder: Path, runtime: str, kernels: socket.socket, niceness: int):
        source = zygote_source()
        parent = str(Path(folder).parent)  # (nbgrader makes the folder anew once the zygote runs)
        inside = beneath_sandbox_folders(parent, runtime)
        if inside:
            raise OSError(f"{inside} lies beneath {', '.join(SANDBOX_WRITABLE)}, the sandbox's own folders: its "
                          "children could not be kept from writing it (keep the course out of /tmp)")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        cmd = bwrap_command(spec, [sys.executable, "-c", source, str(kernels.fileno())], cwd=parent,
                            writable=[parent, runtime], env=base_env(spec))
        try:
            self.proc = subprocess.Popen(in_cgroups(spec, cmd), stdin=theirs.fileno(), cwd=parent,
                                         pass_fds=(kernels.fileno(),))
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        super().__init__(ours)
        self.niceness = niceness
        say(f"started (pid {self.proc.pid})")

    @classmethod
    def for_check_server(cls, spec: SandboxSpec | None, folder: Path, kernels_fd: int | None,
                         niceness: int) -> "ZygoteProcess | None":
        """The zygote of the check server of ``folder``, holding the kernels' socket ``kernels_fd`` (closed here
        either way: without a zygote, nbgrader's end reads its end, and the kernels start anew). None where there
        is no sandbox, no kernels' socket, no folder's parent or runtime folder (``$JUPYTER_RUNTIME_DIR``) yet, or
        ``$SR_KIT_KERNEL_ZYGOTE`` is 0; or where it cannot start (said in the log)."""
        if kernels_fd is None:
            return None
        kernels = socket.socket(fileno=kernels_fd)
        runtime = os.environ.get("JUPYTER_RUNTIME_DIR", "")
        try:
            if spec is None or not spec.enabled or os.environ.get(KERNEL_ZYGOTE_ENV) == "0" \
                    or not Path(folder).parent.is_dir() or not os.path.isdir(runtime):
                return None
            return cls(spec, folder, runtime, kernels, niceness)
        except OSError as e:
            say(f"could not start ({e}): {ANEW}")
            return None
        finally:
            kernels.close()

    def usable(self) -> bool:
        was = self.state
        ok = super().usable()
        if ok and was is None:
            say(f"ready ({self.state['ready']} s of CPU importing)")
        return ok

    def alive(self) -> bool:
        return self.sock is not None and self.proc.poll() is None

    def spawn_student(self, code: str, args: list[str], cwd: str) -> "ForkedStudent":
        """``python -I -c CODE ARGS...`` forked in ``cwd``, with pipes for its stdin and stdout."""
        child_in, ours_in = os.pipe()
        ours_out, child_out = os.pipe()
        try:
            pid = self.request({"student": list(args), "code": code, "cwd": str(cwd), "niceness": self.niceness},
                               [child_in, child_out])
        except OSError:
            os.close(ours_in)
            os.close(ours_out)
            raise
        finally:
            os.close(child_in)
            os.close(child_out)
        return ForkedStudent(self, pid, ours_in, ours_out)

    def stop(self, why: str = "") -> None:
        """Give the zygote up and kill its sandbox, with every child in it."""
        super().stop(why)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class ForkedStudent:
    """A student side forked by the zygote, with what :class:`..grading.student_client.Student` uses of
    :class:`subprocess.Popen` (its pid is the sandbox's: never signalled from here, but through the zygote)."""

    def __init__(self, zygote: ZygoteProcess, pid: int, fd_in: int, fd_out: int):
        self.zygote, self.pid, self.returncode = zygote, pid, None
        self.stdin, self.stdout = os.fdopen(fd_in, "wb", buffering=0), os.fdopen(fd_out, "rb", buffering=0)

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.zygote.ended(self.pid)
        return self.returncode

    def kill_session(self) -> None:
        """Kill it and what it started (its session); the zygote is given up if it does not report it ended."""
        if self.poll() is None:
            self.zygote.send({"kill": self.pid})
            deadline = time.monotonic() + KILL_GRACE
            while self.poll() is None and time.monotonic() < deadline:
                if self.zygote.alive():
                    select.select([self.zygote.sock], [], [], 0.2)
            if self.poll() is None:
                self.zygote.stop("a killed student side was not reported ended")
                self.returncode = -signal.SIGKILL

    def wait(self, timeout: float | None = None) -> int:
        if self.poll() is None:
            self.kill_session()
        return self.returncode
