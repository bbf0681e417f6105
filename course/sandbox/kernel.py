"""What runs inside the sandbox: the ``sr-sandbox`` Jupyter kernel (its kernelspec and :func:`kernel_main`, which
wraps ``ipykernel`` in a sandbox), the launcher of the hidden checks' student side, and the compiled imresize
kernels they load instead of compiling their own."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from course.grading.contract import (AUTOGRADED_DIR, KERNEL_PARENT_ENV, KERNEL_PROVISIONER, RUNTIME_DIR, SANDBOX_ENV,
                                     STATE_DIR)

from .grading_folder import chown_tree
from .isolation import base_env, bwrap_command
from .resources import die_with_parent, in_cgroups
from .spec import SandboxSpec, SandboxUnavailable

KERNEL_NAME = "sr-sandbox"


def write_kernelspec(folder: Path) -> Path:
    """Write the ``sr-sandbox`` kernelspec under ``folder/kernels`` (put ``folder`` on ``JUPYTER_PATH``).

    Its provisioner (:mod:`.kernel_provisioner`) forks the kernels of a submission from one sandboxed zygote; its
    command (:func:`kernel_main`) starts a kernel in a sandbox of its own where that cannot be done. Interrupts
    travel as messages: a signal sent to bwrap would not reach the kernel inside."""
    kdir = Path(folder) / "kernels" / KERNEL_NAME
    kdir.mkdir(parents=True, exist_ok=True)
    spec = {"argv": [sys.executable, "-I", "-m", "course.sandbox", "kernel", "{connection_file}"],
            "display_name": "Python 3 (SR kit grading sandbox)", "language": "python",
            "interrupt_mode": "message",
            "metadata": {"debugger": False, "kernel_provisioner": {"provisioner_name": KERNEL_PROVISIONER}}}
    (kdir / "kernel.json").write_text(json.dumps(spec, indent=1))
    return kdir


def kernel_folders(spec: SandboxSpec | None, cwd: str, connection_file: str) -> tuple[str, str]:
    """The notebook's folder and the connection file's folder of a sandboxed kernel, both real paths, once checked:
    sandboxed grading is on, the folder is under the course's autograded folder and the connection file under the
    run's private runtime folders; as root, both are handed to the sandbox uid. Raises :class:`SandboxUnavailable`
    saying which does not hold."""
    if spec is None or not spec.enabled:
        raise SandboxUnavailable(f"{KERNEL_NAME} kernel started without ${SANDBOX_ENV}: use `python -m course.grade`")
    cwd = os.path.realpath(cwd)
    allowed = os.path.realpath(os.path.join(spec.course_root, AUTOGRADED_DIR)) + os.sep
    if not cwd.startswith(allowed):
        raise SandboxUnavailable(f"{KERNEL_NAME} kernel refuses to run outside {allowed} (cwd {cwd})")
    runtime = os.path.dirname(os.path.realpath(connection_file))
    runtimes = os.path.realpath(os.path.join(spec.course_root, STATE_DIR, RUNTIME_DIR)) + os.sep
    if not runtime.startswith(runtimes):  # it is bound read-write into the sandbox: never a shared folder
        raise SandboxUnavailable(f"{KERNEL_NAME} kernel: connection file {connection_file} is not under {runtimes} "
                                 "(set TMPDIR and JUPYTER_RUNTIME_DIR to a private folder there)")
    hand_to_sandbox_uid(spec, cwd)
    if spec.uid is not None and os.geteuid() == 0:
        os.chown(runtime, spec.uid, spec.uid)
        os.chown(connection_file, spec.uid, spec.uid)
    return cwd, runtime


def hand_to_sandbox_uid(spec: SandboxSpec, folder: str) -> None:
    """As root, give a submission's grading folder (recursively, nothing followed) to its sandbox uid: nbgrader
    makes it under the grading run's private umask, where the sandbox could not even enter it. Done before each
    kernel starts (:func:`kernel_folders`), and by the check server before the hidden checks' student side first
    reads it, which may come first."""
    if spec.uid is not None and os.geteuid() == 0:
        chown_tree(folder, spec.uid)


def kernel_main(connection_file: str) -> None:
    """Entry point of the kernelspec's command: ``ipykernel`` in a sandbox of its own, rooted at the current folder
    (what :mod:`.kernel_provisioner` runs when a kernel cannot be forked from the submission's zygote).

    It dies with the nbgrader process that started it (``KERNEL_PARENT_ENV``), from its first line: killed while
    this Python still starts, nbgrader would otherwise leave a kernel in its own session that nothing ends."""
    parent = os.environ.get(KERNEL_PARENT_ENV, "")
    die_with_parent(int(parent) if parent.isdigit() else None)
    spec = SandboxSpec.from_env()
    try:
        cwd, runtime = kernel_folders(spec, os.getcwd(), connection_file)
    except SandboxUnavailable as e:
        sys.exit(str(e))
    cmd = bwrap_command(spec, [sys.executable, "-m", "ipykernel_launcher", "-f", connection_file], cwd=cwd,
                        writable=[cwd, runtime], env=base_env(spec))
    cmd = in_cgroups(spec, cmd, parent=os.getppid())
    os.execvp(cmd[0], cmd)


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


COMPILED_STAMP = "compiled-for.json"  # in a numba cache folder: what its kernels were compiled from (_compiled_for)


def _compiled_for() -> str:
    """What numba checks before it uses compiled kernels (JSON): imresize.py's path, modification time and size
    (its cache index records them), numba's and Python's versions."""
    from importlib import metadata

    import sr_utils

    source = Path(sr_utils.__file__).resolve().with_name("imresize.py")
    st = source.stat()
    return json.dumps({"source": str(source), "mtime_ns": st.st_mtime_ns, "size": st.st_size,
                       "numba": metadata.version("numba"), "python": sys.version})


def prepare_numba_cache(folder: Path, timeout: float = 300) -> str:
    """Compile the kit's imresize kernels into ``folder`` (a trusted process running the kit's own code) and
    return its path, or "" if that failed.

    Sandboxed code sees the kit's code read-only, and numba neither writes nor reads a cache it cannot write: each
    kernel would compile imresize again (~2.5 s of every notebook that resizes an image). With ``numba_cache`` in
    the spec, every sandboxed process starts with a private copy of this folder in its own /tmp instead; nothing
    it does there reaches another sandbox.

    Grading runs at once on one machine share the folder: one compiles while the others wait for it (a lock file
    beside the folder), then they use what it compiled."""
    import fcntl

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder.with_name(folder.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stamp, compiled_for = folder / COMPILED_STAMP, _compiled_for()
        if stamp.is_file() and stamp.read_text() == compiled_for and any(folder.rglob("*.nbi")):
            return str(folder.resolve())  # (compiled for this imresize.py: a process loading it costs ~3 s of CPU)
        stamp.unlink(missing_ok=True)
        env = {**os.environ, "NUMBA_CACHE_DIR": str(folder), "PYTHONDONTWRITEBYTECODE": "1"}
        try:
            subprocess.run([sys.executable, "-c", "from sr_utils.imresize import compile_kernels; compile_kernels()"],
                           env=env, check=True, capture_output=True, timeout=timeout)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            return ""
        stamp.write_text(compiled_for)
        for dirpath, _, files in os.walk(folder):  # the sandbox uid reads it
            os.chmod(dirpath, 0o755)
            for name in files:
                os.chmod(os.path.join(dirpath, name), 0o644)
        return str(folder.resolve())
