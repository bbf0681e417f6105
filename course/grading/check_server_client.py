"""The nbgrader process's end of the submission's check server (:mod:`.check_server`): JSON lines over a pair of
pipes, one server per submission folder, kept for the submission's next notebooks and closed when nbgrader ends."""
import atexit
import json
import os
import time
from pathlib import Path

from .contract import CHECK_SERVER_ENV, CHECK_SERVER_MODULE, python_module


class CheckServer:
    """This nbgrader process's end of :mod:`.check_server`: the trusted process deciding the hidden checks of one
    submission (it never imports student code either; its student side is sandboxed). The grading command starts
    it before nbgrader, so that it imports torch while nbgrader starts, and hands over its pipes
    (``$SR_KIT_CHECK_SERVER``); otherwise, or after a failure, it is started here. Requests are answered in
    order, as JSON lines; a server that dies, breaks the protocol or takes longer than its time is dropped, and
    its checks get no verdict (they fail)."""

    def __init__(self, fd_requests: int, fd_answers: int, check_timeout: float, proc=None):
        self.fd_requests, self.fd_answers, self.check_timeout, self.proc = fd_requests, fd_answers, check_timeout, proc
        self.buffer = b""
        self.pending = 0  # checks asked for and not answered yet (they bound the time to wait)
        self.unanswered = 0
        self.closed = False

    @classmethod
    def for_folder(cls, folder: Path, check_timeout: float) -> "CheckServer":
        """The server the grading command started for ``folder`` (once), else a new one."""
        fds = _take_handed(folder, "fds")
        if fds:
            return cls(*fds, check_timeout)
        import subprocess

        # stderr: the grader's log of this submission; same process group: killed with this process
        proc = subprocess.Popen(python_module(CHECK_SERVER_MODULE, str(folder)), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE)
        return cls(proc.stdin.fileno(), proc.stdout.fileno(), check_timeout, proc)

    @property
    def alive(self) -> bool:
        return not self.closed and (self.proc is None or self.proc.poll() is None)

    def send(self, op: str, names: list[str], language: str = "en") -> None:
        """Ask for ``names`` (``op``: ``EARLY`` or ``DECIDE``); the answer's reasons in ``language``."""
        data = (json.dumps({"op": op, "names": names, "timeout": self.check_timeout, "language": language})
                + "\n").encode()
        try:
            while data:
                data = data[os.write(self.fd_requests, data):]
        except OSError:
            self.close()
            return
        self.unanswered += 1
        self.pending += len(names)

    def _line(self, deadline: float) -> bytes | None:
        import select

        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd_answers], [], [], left)[0]:
                return None
            chunk = os.read(self.fd_answers, 1 << 16)
            if not chunk:
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line

    def answer(self) -> dict:
        """Read the answers to every request sent; the last one's verdicts ({} if the server failed)."""
        deadline = time.monotonic() + 120 + self.check_timeout * self.pending
        last = {}
        while self.unanswered and not self.closed:
            line = self._line(deadline)
            try:
                last.update(json.loads(line)["verdicts"])  # (the early answers' too: checks of cells that errored)
            except (TypeError, ValueError, KeyError, AttributeError):
                self.close()
                return {}
            self.unanswered -= 1
        self.pending = 0
        try:
            return {str(n): (bool(v[0]), str(v[1])) for n, v in last.items()}
        except (TypeError, IndexError, KeyError):
            return {}

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.stdin.close()
            self.proc.stdout.close()
            self.proc.wait()
        else:  # the grading command's: it ends when its requests end (and is killed if it does not)
            for fd in (self.fd_requests, self.fd_answers):
                try:
                    os.close(fd)
                except OSError:
                    pass


def _take_handed(folder, key: str):
    """The ``key`` of what the grading command handed this nbgrader process for ``folder`` (``$SR_KIT_CHECK_SERVER``:
    ``{"folder": FOLDER, "fds": [requests, answers], "kernels": socket}``, the ends of the check server's pipes and of
    its zygote's kernel socket), taken once: it leaves the variable, which leaves the environment once empty (the
    kernels this process starts do not inherit it). None where there is none for ``folder``."""
    handed = json.loads(os.environ.get(CHECK_SERVER_ENV) or "{}")
    if "folder" not in handed or os.path.realpath(handed["folder"]) != os.path.realpath(folder):
        return None
    value = handed.pop(key, None)
    if set(handed) - {"folder"}:
        os.environ[CHECK_SERVER_ENV] = json.dumps(handed)
    else:
        del os.environ[CHECK_SERVER_ENV]
    return value


def handed_zygote_socket(folder: str):
    """The kernel socket of the zygote of the submission graded in ``folder`` (``course.sandbox.kernel_provisioner``),
    if the grading command handed one for that folder; once."""
    import socket

    fd = _take_handed(folder, "kernels")
    return socket.socket(fileno=fd) if isinstance(fd, int) and not isinstance(fd, bool) else None


SERVERS = {}  # submission folder -> its check server, kept for the submission's next notebooks


def check_server_for(folder: Path, check_timeout: float) -> CheckServer:
    """The check server of ``folder`` (nbgrader makes a new preprocessor for each notebook, so it is kept here);
    another submission's is closed first, and all are closed when this nbgrader process ends."""
    if folder in SERVERS and not SERVERS[folder].alive:
        SERVERS.pop(folder).close()
    if folder not in SERVERS:
        close_servers()
        SERVERS[folder] = CheckServer.for_folder(folder, check_timeout)
    return SERVERS[folder]


@atexit.register
def close_servers() -> None:
    while SERVERS:
        SERVERS.popitem()[1].close()

