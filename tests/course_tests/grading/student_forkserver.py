"""Student-side processes forked from one that has already imported torch: a ``launch`` for the hidden-check tests.

The tests run the hidden checks on about eighty submission folders (mutants, variants, exploits, networks that
lie), each with its own student-side process, ``python -I -c BOOT FOLDER`` (:mod:`course.grading.student_client`),
which spends ~2.5 s of CPU importing torch before it reads a line of the student's code. Here one server process
(:class:`StudentForkserver`) imports torch once; :meth:`StudentForkserver.launch` turns the student side's command
into a tiny client that hands its stdin and stdout to the server, which forks a child that runs the very same
``-c`` code and arguments on them, in the client's folder, in a session of its own. So each student side is what
``python -I -c BOOT FOLDER`` would be, torch already imported: same sources on stdin, same protocol, same code,
same environment (the client's, as the test has it when the check runs; torch read its own at import).

* the client's exit mirrors the child's (exit code, or the signal that ended it), and the child's stdout reaches
  its end only after the client has exited, as it would for the process itself;
* the client killed (``Student.close`` kills its process group), the server kills the child's session.

Tests only: the grader's student sides run in the sandbox of their submission (``test_grading_sandbox``), and a
forked one would share this server's; the tests that run the checks through their command
(``run_check_command``) start processes as the grader does.
"""
from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

#: The server: ``python -I -c SERVER SOCKET``. One thread (forking from a threaded process could copy a held
#: lock into the child): accepts a client, receives its stdin and stdout and the job, forks, tells the client the
#: child's pid; when a child ends, sends its wait status to its client; when a client goes, kills its child. It
#: ends with the test process that started it.
SERVER = r"""
import json, os, select, signal, socket, sys
import torch  # noqa: F401  (what every student side imports first: the children inherit it)

listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
listener.bind(sys.argv[1])
listener.listen(64)
print("ready", flush=True)
children = {}  # client connection -> child pid
parent = os.getppid()  # the test process: when it is gone, so is this server


def start(conn):
    msg, fds, _, _ = socket.recv_fds(conn, 1 << 20, 2)
    job = json.loads(msg)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            listener.close()
            for other in children:
                other.close()
            conn.close()
            os.setsid()
            os.dup2(fds[0], 0)
            os.dup2(fds[1], 1)
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 2)
            for fd in (*fds, null):
                if fd > 2:
                    os.close(fd)
            os.chdir(job["cwd"])
            os.environ.clear()
            os.environ.update(job["env"])
            sys.argv = ["-c", *job["args"]]
            exec(compile(job["code"], "<string>", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
        except BaseException:
            code = 1
        finally:
            try:
                sys.stdout.flush()
            except Exception:
                pass
            os._exit(code)
    for fd in fds:
        os.close(fd)
    conn.sendall(f"{pid}\n".encode())
    children[conn] = pid


while os.getppid() == parent:
    ready = select.select([listener, *children], [], [], 0.2)[0]
    for conn in ready:
        if conn is listener:
            client, _ = listener.accept()
            try:
                start(client)
            except (OSError, ValueError):
                client.close()
        elif not conn.recv(1):  # the client is gone: its child goes too
            try:
                os.killpg(children[conn], signal.SIGKILL)
            except ProcessLookupError:
                pass
            del children[conn]
            conn.close()
    while True:  # children that ended: their clients end with the same status
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
        for conn, child in list(children.items()):
            if child == pid:
                try:
                    conn.sendall(f"{status}\n".encode())
                except OSError:
                    pass
                del children[conn]
                conn.close()
"""

#: The client: ``python -I -S -c CLIENT SOCKET -c CODE ARGS...`` in the student side's folder. It keeps its
#: stdout (the child's) open until it knows how the child ended, so that its reader sees the end of the output
#: only after the client has exited with the child's status.
CLIENT = r"""
import json, os, signal, socket, sys
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.connect(sys.argv[1])
assert sys.argv[2] == "-c"
job = {"code": sys.argv[3], "args": sys.argv[4:], "cwd": os.getcwd(), "env": dict(os.environ)}
socket.send_fds(sock, [json.dumps(job).encode()], [0, 1])
os.close(0)
reply = sock.makefile("rb")
reply.readline()  # the child's pid
line = reply.readline()
if not line:
    os._exit(1)
status = int(line)
if os.WIFSIGNALED(status):
    signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
    os.kill(os.getpid(), os.WTERMSIG(status))
os._exit(os.waitstatus_to_exitcode(status))
"""


class StudentForkserver:
    """The server process (started by :func:`student_forkserver`); :meth:`launch` is a ``Student`` ``launch``."""

    def __init__(self):
        self.folder = Path(tempfile.mkdtemp(prefix="sr-fork-"))  # (a socket path holds at most 107 bytes)
        self.socket = self.folder / "s"
        self.proc = subprocess.Popen([sys.executable, "-I", "-c", SERVER, str(self.socket)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, start_new_session=True)
        if self.proc.stdout.readline() != b"ready\n":
            self.stop()
            raise RuntimeError("the student-side forkserver did not start (its command: python -I -c SERVER)")

    def launch(self, argv: list[str]) -> list[str]:
        """``[python, -I, -c, CODE, ARGS...]`` (the student side's command) -> the client's command."""
        assert argv[1:3] == ["-I", "-c"], argv
        return [sys.executable, "-I", "-S", "-c", CLIENT, str(self.socket), *argv[2:]]

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, 9)
        except ProcessLookupError:
            pass
        self.proc.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


_SERVER: list[StudentForkserver] = []
_LOCK = threading.Lock()


def student_forkserver() -> StudentForkserver:
    """This test process's forkserver, started at first use and stopped when the process exits."""
    with _LOCK:
        if not _SERVER or _SERVER[0].proc.poll() is not None:
            _SERVER[:] = [StudentForkserver()]
            atexit.register(_SERVER[0].stop)
        return _SERVER[0]
