"""The ``sr-sandbox`` kernelspec's kernel provisioner (jupyter_client's provisioner API; its name is
``contract.KERNEL_PROVISIONER``, its entry point in ``pyproject.toml``): the kernels of a submission are forked from
one sandboxed *zygote* (:mod:`.kernel_zygote`) that imported ipykernel, torch, matplotlib and ``sr_utils`` once,
instead of each being a new sandboxed Python that imports them again (~3 s of CPU per notebook).

It runs in the submission's nbgrader process (trusted). The zygote is started at the submission's first kernel
(unless the submission has a single notebook: the zygote imports more than one notebook needs) in the sandbox that
kernel would have had: the same bwrap command (uid, namespaces, seccomp, rlimits, cgroups, environment), the
notebook's folder and the runtime folder bound read-write, nothing more. It lives as long as the
nbgrader process (bwrap's ``--die-with-parent``, and this module's exit handler), in its process group (the grading
command's timeout kills both). Each kernel starts in a sandbox where no process of an earlier kernel is left.

The zygote runs as the sandbox uid, beside kernels that run student code: everything it says is treated as
hostile (bounded datagrams, checked fields, timeouts), and when it does not do what is asked -- not ready in time,
no answer, a kernel not ended after a kill, the zygote gone -- its whole sandbox is killed and the submission's
next kernels start each in a sandbox of their own (:func:`.kernel.kernel_main`), said in the submission's log.
``$SR_KIT_KERNEL_ZYGOTE=0`` (``contract.KERNEL_ZYGOTE_ENV``) starts every kernel that way.
"""
from __future__ import annotations

import atexit
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from jupyter_client.provisioning.local_provisioner import LocalProvisioner

from course.grading.contract import AUTOGRADED_DIR, KERNEL_PARENT_ENV, KERNEL_ZYGOTE_ENV, SUBMITTED_DIR, ZYGOTE_MARK

from .isolation import base_env, bwrap_command
from .kernel import kernel_folders
from .resources import in_cgroups
from .spec import SandboxSpec, SandboxUnavailable

READY_TIMEOUT = 180.0  # seconds the zygote may take to import (~5 s of CPU; much longer on a loaded machine)
ANSWER_TIMEOUT = 30.0  # seconds the zygote may take to answer a fork
KILL_GRACE = 10.0  # seconds a killed kernel may take to be reported ended before the whole sandbox is killed
MAX_MESSAGE = 4096  # bytes of one datagram from the zygote
ANEW = "this submission's next kernels start anew, each in a sandbox of its own"  # (said in its log)


def _log(message: str) -> None:
    print(f"{ZYGOTE_MARK} {message}", file=sys.stderr, flush=True)


class ZygoteGone(OSError):
    """The zygote did not do what was asked (or is gone): its sandbox has been killed."""


class KernelZygote:
    """The grader's side of one zygote: start it, fork kernels, signal them, learn when they end."""

    def __init__(self, spec: SandboxSpec, cwd: str, runtime: str):
        source = Path(__file__).with_name("kernel_zygote.py").read_text(encoding="utf-8")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        cmd = bwrap_command(spec, [sys.executable, "-c", source], cwd=cwd, writable=[cwd, runtime],
                            env=base_env(spec))
        try:
            self.proc = subprocess.Popen(in_cgroups(spec, cmd), stdin=theirs.fileno(), cwd=cwd)
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        self.sock, self.exited, self.key = ours, {}, (spec.to_json(), cwd, runtime)
        ready = self._receive(READY_TIMEOUT)
        if not isinstance(ready.get("ready"), (int, float)):
            self.stop()
            raise ZygoteGone(f"not ready ({str(ready.get('error', 'no answer'))[:200]})")
        _log(f"started (pid {self.proc.pid}, {ready['ready']} s of CPU importing)")

    def alive(self) -> bool:
        return self.sock is not None and self.proc.poll() is None

    def _handle(self, message: dict) -> dict:
        if "exited" in message:
            pid, status = message.get("exited"), message.get("status")
            if isinstance(pid, int) and isinstance(status, int):
                self.exited[pid] = status
        return message

    def _receive(self, timeout: float) -> dict:
        """The next message that is not an ``exited`` report (recorded on the way), within ``timeout``."""
        deadline = time.monotonic() + timeout
        while self.alive():
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.sock], [], [], min(left, 1.0))[0]:
                if left <= 0:
                    break
                continue
            data = self.sock.recv(MAX_MESSAGE)
            if not data:
                break
            try:
                message = json.loads(data)
            except ValueError:
                break
            if not isinstance(message, dict):
                break
            if "exited" not in self._handle(message):
                return message
        self.stop()
        return {}

    def drain(self) -> None:
        """Record the ``exited`` reports that arrived (the zygote says nothing else unasked)."""
        while self.alive():
            try:
                data = self.sock.recv(MAX_MESSAGE, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            try:
                message = json.loads(data) if data else None
            except ValueError:
                message = None
            if not isinstance(message, dict):
                self.stop("it ended, or sent what it should not")
                return
            self._handle(message)

    def fork(self, connection_file: str) -> int:
        """Fork a kernel for ``connection_file``; returns its pid (in the sandbox)."""
        try:
            self.sock.send(json.dumps({"fork": connection_file}).encode())
        except OSError:
            self.stop()
            raise ZygoteGone("the zygote is gone") from None
        answer = self._receive(ANSWER_TIMEOUT)
        pid = answer.get("forked")
        if not isinstance(pid, int) or pid <= 1:
            self.stop()
            raise ZygoteGone("the zygote forked no kernel")
        self.exited.pop(pid, None)
        return pid

    def signal(self, signum: int) -> None:
        if self.alive():
            try:
                self.sock.send(json.dumps({"signal": int(signum)}).encode())
            except OSError:
                self.stop("it no longer takes requests")

    def stop(self, why: str = "") -> None:
        """End the zygote and everything in its sandbox; this submission's next kernels start anew (``why``: said
        in the submission's log)."""
        if why:
            _log(f"{why}: its sandbox is killed, and {ANEW}")
        _REFUSED.add(self.key)
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.proc.poll() is None:
            try:
                self.proc.wait(timeout=1)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if _ZYGOTES.get(self.key) is self:
            del _ZYGOTES[self.key]


_ZYGOTES: dict[tuple, KernelZygote] = {}  # this nbgrader process's zygotes (one per submission folder)
_REFUSED: set[tuple] = set()  # folders whose zygote failed: their kernels start anew


def _stop_all() -> None:
    for zygote in list(_ZYGOTES.values()):
        zygote.stop()


class ForkedKernel:
    """A kernel forked by a zygote, with what jupyter_client uses of :class:`subprocess.Popen`."""

    stdin = stdout = stderr = None

    def __init__(self, zygote: KernelZygote, pid: int):
        self.zygote, self.pid, self.returncode, self._killed_at = zygote, pid, None, None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.zygote.drain()
            if self.pid in self.zygote.exited:
                self.returncode = self.zygote.exited.pop(self.pid)
            elif not self.zygote.alive():
                self.returncode = -signal.SIGKILL
            elif self._killed_at is not None and time.monotonic() - self._killed_at > KILL_GRACE:
                self.zygote.stop("a killed kernel was not reported ended")
                self.returncode = -signal.SIGKILL
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired("forked kernel", timeout)
            time.sleep(0.05)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            if signum in (signal.SIGKILL, signal.SIGTERM) and self._killed_at is None:
                self._killed_at = time.monotonic()
            self.zygote.signal(signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


def _zygote_for(spec: SandboxSpec, cwd: str, runtime: str) -> KernelZygote | None:
    key = (spec.to_json(), cwd, runtime)
    zygote = _ZYGOTES.get(key)
    if zygote is not None and zygote.alive():
        return zygote
    if zygote is not None:  # (one that ended, killed by a kernel or by us, is not started again)
        zygote.stop("it ended before this kernel")
    if key in _REFUSED:
        return None
    try:
        zygote = KernelZygote(spec, cwd, runtime)
    except OSError as e:
        _log(f"could not start ({e}): {ANEW}")
        _REFUSED.add(key)
        return None
    if not _ZYGOTES:
        atexit.register(_stop_all)
    _ZYGOTES[key] = zygote
    return zygote


def notebooks_handed_in(spec: SandboxSpec, cwd: str) -> int:
    """How many notebooks the submission graded in ``cwd`` (``<course root>/AUTOGRADED_DIR/<student>/<assignment>``)
    has in ``SUBMITTED_DIR``, where nbgrader reads them; 0 where that cannot be told."""
    autograded = os.path.realpath(os.path.join(spec.course_root, AUTOGRADED_DIR))
    submitted = Path(spec.course_root) / SUBMITTED_DIR / os.path.relpath(cwd, autograded)
    try:
        return sum(1 for p in submitted.iterdir() if p.suffix == ".ipynb")
    except OSError:
        return 0


class ZygoteProvisioner(LocalProvisioner):
    """jupyter_client's local provisioner, but the kernel is forked from the submission's zygote where it can be
    (else started with the kernelspec's command, as the local provisioner does)."""

    async def launch_kernel(self, cmd: list[str], **kwargs):
        # (a kernel started anew dies with this process, even if it is killed while the kernel still starts)
        kwargs["env"] = {**(kwargs.get("env") or os.environ), KERNEL_PARENT_ENV: str(os.getpid())}
        spec = SandboxSpec.from_env()
        if os.environ.get(KERNEL_ZYGOTE_ENV) != "0" and spec is not None and spec.enabled:
            try:
                cwd, runtime = kernel_folders(spec, str(kwargs.get("cwd") or os.getcwd()), cmd[-1])
            except SandboxUnavailable:
                return await super().launch_kernel(cmd, **kwargs)  # (whose command says why, and ends)
            if notebooks_handed_in(spec, cwd) == 1:  # (a zygote imports more than one notebook does: ~5 s, not ~3)
                _log("one notebook handed in: its kernel starts as a new sandboxed Python")
                return await super().launch_kernel(cmd, **kwargs)
            zygote = _zygote_for(spec, cwd, runtime)
            if zygote is not None:
                try:
                    pid = zygote.fork(cmd[-1])
                except ZygoteGone as e:
                    _log(f"{e}: {ANEW}")
                else:
                    self.process, self.pid, self.pgid, self.cwd = ForkedKernel(zygote, pid), pid, None, cwd
                    return self.connection_info
        return await super().launch_kernel(cmd, **kwargs)
