"""The ``sr-sandbox`` kernelspec's kernel provisioner (jupyter_client's provisioner API; its name is
``contract.KERNEL_PROVISIONER``, its entry point in ``pyproject.toml``): the kernels of a submission are forked from
its sandboxed *zygote* (:mod:`.kernel_zygote`), which imported ipykernel, torch, matplotlib and ``sr_utils`` once,
instead of each being a new sandboxed Python that imports them again (~3 s of CPU per notebook).

It runs in the submission's nbgrader process (trusted). The zygote is the submission's check server's
(:class:`.submission_zygote.ZygoteProcess`, which forks the hidden checks' student side from it too); the grading
command hands this process one end of the zygote's kernel socket (``contract.CHECK_SERVER_ENV``). Each kernel starts
in the sandbox with no process of an earlier kernel left, able to write its notebook's folder and its runtime folder
only.

Everything the zygote says is treated as hostile (:class:`.submission_zygote.ZygoteChannel`); when it does not do
what is asked, or where there is none (no handed socket, no Landlock, ``$SR_KIT_KERNEL_ZYGOTE=0``:
``contract.KERNEL_ZYGOTE_ENV``), the submission's next kernels start each in a sandbox of its own
(:func:`.kernel.kernel_main`), said in the submission's log.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time

from jupyter_client.provisioning.local_provisioner import LocalProvisioner

from course.grading.check_server_client import handed_zygote_socket
from course.grading.contract import KERNEL_PARENT_ENV, KERNEL_ZYGOTE_ENV

from .kernel import kernel_folders
from .spec import SandboxSpec, SandboxUnavailable
from .submission_zygote import ANSWER_TIMEOUT, KILL_GRACE, ZygoteChannel, ZygoteGone, say


class KernelZygote(ZygoteChannel):
    """The nbgrader process's end of its submission's zygote (the socket the grading command handed it): fork a
    kernel, signal it, learn when it ends. Given up, it is closed (the zygote then kills the kernels it forked) and
    the next kernels start anew."""

    def fork(self, connection_file: str, cwd: str) -> int:
        """Fork a kernel for ``connection_file`` in ``cwd``; returns its pid (in the sandbox)."""
        return self.request({"fork": connection_file, "cwd": cwd})

    def signal(self, signum: int) -> None:
        self.send({"signal": int(signum)})

    def warm(self) -> None:
        """Have the zygote build a first optimizer (:func:`.kernel_zygote.build_first_optimizer`) before the
        kernels and the student side that train are forked from it; given up where it does not answer so."""
        self.send({"warm": 1})
        answer = self.receive(("warmed",), ANSWER_TIMEOUT) if self.alive() else {}
        seconds = answer.get("warmed")
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool):
            self.stop("it did not build a first optimizer when asked")
        elif seconds:
            say(f"built a first optimizer ({seconds:.1f} s of CPU) for the kernels and the student side that train")


_ZYGOTES: dict[str, KernelZygote] = {}  # submission folder -> its zygote, once the handed socket was taken


def zygote_of(folder: str) -> KernelZygote | None:
    """The usable zygote of the submission graded in ``folder``, as this nbgrader process's kernels get it; None
    where the grading command handed none, the zygote is off (``$SR_KIT_KERNEL_ZYGOTE`` 0) or was given up."""
    spec = SandboxSpec.from_env()
    if os.environ.get(KERNEL_ZYGOTE_ENV) == "0" or spec is None or not spec.enabled:
        return None
    return _zygote_for(folder)


def _zygote_for(cwd: str) -> KernelZygote | None:
    """The zygote of the submission graded in ``cwd``, where the grading command handed one and it is usable."""
    cwd = os.path.realpath(cwd)
    if cwd not in _ZYGOTES:
        sock = handed_zygote_socket(cwd)
        if sock is None:
            return None
        _ZYGOTES[cwd] = KernelZygote(sock)
    zygote = _ZYGOTES[cwd]
    return zygote if zygote.usable() else None


class ForkedKernel:
    """A kernel forked by a zygote, with what jupyter_client uses of :class:`subprocess.Popen`."""

    stdin = stdout = stderr = None

    def __init__(self, zygote: KernelZygote, pid: int):
        self.zygote, self.pid, self.returncode, self._killed_at = zygote, pid, None, None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.zygote.ended(self.pid)
            if self.returncode is None and self._killed_at is not None \
                    and time.monotonic() - self._killed_at > KILL_GRACE:
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


class ZygoteProvisioner(LocalProvisioner):
    """jupyter_client's local provisioner, but the kernel is forked from the submission's zygote where it can be
    (else started with the kernelspec's command, as the local provisioner does)."""

    async def launch_kernel(self, cmd: list[str], **kwargs):
        # (a kernel started anew dies with this process, even if it is killed while the kernel still starts)
        kwargs["env"] = {**(kwargs.get("env") or os.environ), KERNEL_PARENT_ENV: str(os.getpid())}
        spec = SandboxSpec.from_env()
        if os.environ.get(KERNEL_ZYGOTE_ENV) != "0" and spec is not None and spec.enabled:
            try:
                cwd, _ = kernel_folders(spec, str(kwargs.get("cwd") or os.getcwd()), cmd[-1])
            except SandboxUnavailable:
                return await super().launch_kernel(cmd, **kwargs)  # (whose command says why, and ends)
            zygote = _zygote_for(cwd)
            if zygote is not None:
                try:
                    pid = zygote.fork(cmd[-1], cwd)
                except ZygoteGone:
                    pass  # (said in the log)
                else:
                    self.process, self.pid, self.pgid, self.cwd = ForkedKernel(zygote, pid), pid, None, cwd
                    return self.connection_info
        return await super().launch_kernel(cmd, **kwargs)
