"""A submission's zygote on its own (``course/sandbox/submission_zygote.py``, ``kernel_zygote.py`` and the
kernelspec's provisioner, ``kernel_provisioner.py``): started as the check server starts it, it forks the
submission's kernels, each with nothing of the earlier kernel left and able to write its notebook's folder only, and
the hidden checks' student side, which writes nothing of the submission and outlives the kernels; once a kernel has
killed it, the next kernels start anew, each in a sandbox of its own. (The class batch grades every submission this
way.)
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from class_batch import require_bwrap

REPORT = ("import json, os, sys\n"
          "def writes(path):\n"
          "    try:\n        open(path, 'w').close()\n        os.remove(path)\n        return True\n"
          "    except OSError:\n        return False\n"
          "print('KERNEL ' + json.dumps({'pid': os.getpid(), 'ppid': os.getppid(), 'path': [p.replace(os.getcwd(), "
          "'CWD') for p in sys.path[:3]], 'torch_loaded': 'torch' in sys.modules, "
          "'dynamo_loaded': 'torch._dynamo' in sys.modules, "
          "'argv0': os.path.basename(sys.argv[0]), 'writes': [writes(p) for p in ('x', '../x', '/tmp/x')], "
          "'traces_parent': os.access(f'/proc/{os.getppid()}/mem', os.R_OK), "
          "'others': sorted(int(p) for p in os.listdir('/proc') if p.isdigit() and int(p) not in "
          "(1, os.getpid(), os.getppid()))}))\n")


@pytest.fixture
def sandboxed_kernels(monkeypatch):
    """``start()`` -> a started kernel (manager, client) for a submission folder of a private course, with the
    environment nbgrader has in a sandboxed run and the zygote its check server would have started
    (``start.zygote``); every kernel and the zygote are stopped after."""
    require_bwrap()
    import socket

    import sr_utils
    import data_tools
    from jupyter_client import KernelManager

    from course.grading.contract import AUTOGRADED_DIR, CHECK_SERVER_ENV, RUNTIME_DIR, SANDBOX_ENV, STATE_DIR
    from course.sandbox import SandboxSpec, UidPool, ZygoteProcess, write_kernelspec
    from course.sandbox import kernel_provisioner
    from course.sandbox.kernel import KERNEL_NAME

    root = Path(tempfile.mkdtemp(prefix="srz-"))  # (short: IPC socket paths are limited to 107 bytes)
    root.chmod(0o755)
    folder = root / AUTOGRADED_DIR / "alice" / "superres"
    runtime = root / STATE_DIR / RUNTIME_DIR / "w0"
    for d in (folder, runtime):
        d.mkdir(parents=True)
    for d in [root, *root.rglob("*")]:
        d.chmod(0o755)
    pool = UidPool(1) if os.geteuid() == 0 else None
    if pool:
        os.chown(folder.parent, pool.uids[0], -1)  # (as the grading command hands it over)
    spec = SandboxSpec(uid=pool.uids[0] if pool else None, course_root=str(root),
                       code_dirs=[str(Path(m.__file__).resolve().parent) for m in (sr_utils, data_tools)])
    write_kernelspec(root / STATE_DIR)
    monkeypatch.setenv(SANDBOX_ENV, spec.to_json())
    monkeypatch.setenv("JUPYTER_PATH", str(root / STATE_DIR))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    monkeypatch.delenv("SR_KIT_KERNEL_ZYGOTE", raising=False)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    zygote = ZygoteProcess(spec, folder, str(runtime), theirs, niceness=0)
    theirs.close()
    monkeypatch.setenv(CHECK_SERVER_ENV, json.dumps({"folder": str(folder), "kernels": ours.detach()}))
    kernel_provisioner._ZYGOTES.clear()
    started = []

    def start():
        km = KernelManager(kernel_name=KERNEL_NAME, transport="ipc", ip=str(runtime / "kernel-ipc"),
                           connection_file=str(runtime / f"kernel-{len(started)}.json"))
        km.start_kernel(cwd=str(folder))
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=180)
        started.append((km, kc))
        return km, kc

    start.root, start.folder, start.zygote = root, folder, zygote
    yield start
    for km, kc in started:
        kc.stop_channels()
        if km.is_alive():
            km.shutdown_kernel(now=True)
    for kernels in kernel_provisioner._ZYGOTES.values():
        kernels.stop()
    kernel_provisioner._ZYGOTES.clear()
    zygote.stop()
    if pool:
        pool.release()
    shutil.rmtree(root, ignore_errors=True)


def _run(kc, code: str) -> str:
    out = []

    def hook(msg):
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])

    kc.execute_interactive(code, timeout=120, output_hook=hook)
    return "".join(out)


def _report(kc, code: str = "") -> dict:
    text = _run(kc, REPORT + code)
    return json.loads(text.split("KERNEL ", 1)[1].splitlines()[0])


def test_a_submissions_kernels_are_forked_from_one_zygote_with_nothing_left_between(sandboxed_kernels, capfd):
    first_km, first = sandboxed_kernels()
    a = _report(first, "import subprocess\nsubprocess.Popen(['sleep', '60'], start_new_session=True)\n")
    first_km.shutdown_kernel()
    _, second = sandboxed_kernels()
    b = _report(second)
    # both are children of one process that had imported torch before them (a new Python would not have it), and
    # each starts as `python -m ipykernel_launcher` would: the notebook's folder first on sys.path
    assert a["ppid"] == b["ppid"] != 1 and a["pid"] != b["pid"], (a, b)
    assert a["torch_loaded"] and b["torch_loaded"], (a, b)
    assert not a["dynamo_loaded"] and not b["dynamo_loaded"], (a, b)  # (no optimizer built: none was asked for)
    assert a["argv0"] == b["argv0"] == "ipykernel_launcher.py", (a, b)
    assert a["others"] == [] and b["others"] == [], (a, b)  # the first kernel's `sleep` is gone
    # the zygote's sandbox binds the folder's parent (nbgrader makes the folder anew): a kernel writes its folder
    # and the sandbox's /tmp, nothing beside them
    assert a["writes"] == b["writes"] == [True, False, True], (a, b)
    # nor can it run code in the zygote, which may write beside the folder: the zygote is not dumpable
    assert not a["traces_parent"] and not b["traces_parent"], (a, b)
    log = capfd.readouterr().err
    assert "anew" not in log, log


def test_a_kernel_that_kills_its_zygote_leaves_the_next_kernels_a_sandbox_of_their_own(sandboxed_kernels, capfd):
    killer_km, killer = sandboxed_kernels()
    a = _report(killer)
    killer.execute("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n")
    deadline = time.monotonic() + 30
    while killer_km.is_alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not killer_km.is_alive(), "the kernel of a killed zygote still runs"
    _, nxt = sandboxed_kernels()
    b = _report(nxt)
    assert a["ppid"] != 1 and b["ppid"] == 1 and not b["torch_loaded"], (a, b)  # a new sandboxed Python
    assert b["argv0"] == "ipykernel_launcher.py", b
    assert a["path"] == b["path"], (a, b)  # the forked kernel's sys.path starts as a new one's
    assert b["writes"] == [True, False, True], b  # (a sandbox of its own binds its folder only)
    log = capfd.readouterr().err
    assert "this submission's next kernels and student sides start anew, each in a sandbox of its own" in log, log
    # and the check server's end sees it gone: its student sides start in sandboxes of their own
    with pytest.raises(OSError, match="gone"):
        sandboxed_kernels.zygote.spawn_student("pass", [], str(sandboxed_kernels.folder))


STUDENT = ("import json, os, sys\n"
           "def writes(path):\n"
           "    try:\n        open(path, 'w').close()\n        os.remove(path)\n        return True\n"
           "    except OSError:\n        return False\n"
           "sys.stdout.write(json.dumps({'ppid': os.getppid(), 'sid': os.getsid(0), 'pid': os.getpid(), "
           "'argv': sys.argv, 'cwd': os.getcwd(), 'torch_loaded': 'torch' in sys.modules, "
           "'dynamo_loaded': 'torch._dynamo' in sys.modules, "
           "'nice': os.getpriority(os.PRIO_PROCESS, 0), "
           "'writes': [writes(p) for p in ('x', '../x', '/tmp/x')], 'line': sys.stdin.readline()}) + '\\n')\n"
           "sys.stdout.flush()\n"
           "sys.stdin.readline()\n")


def test_the_student_side_is_forked_from_the_zygote_writes_nothing_of_the_submission_and_outlives_the_kernels(
        sandboxed_kernels):
    """The hidden checks' student side, forked as the check server asks: ``python -I -c CODE ARGS`` on the pipes it
    gets, in the folder, at the checks' niceness, torch already imported, unable to write the submission; a kernel
    forked afterwards (which first kills what earlier kernels left) leaves it running, and killing it is asked of
    the zygote."""
    folder, zygote = sandboxed_kernels.folder, sandboxed_kernels.zygote
    zygote.niceness = 5
    student = zygote.spawn_student(STUDENT, ["an argument"], str(folder))
    student.stdin.write(b"hello\n")
    s = json.loads(student.stdout.readline())
    assert s["argv"] == ["-c", "an argument"] and s["cwd"] == str(folder) and s["line"] == "hello\n", s
    assert s["torch_loaded"] and s["ppid"] != 1 and s["sid"] == s["pid"] and s["nice"] >= 5, s
    assert s["writes"] == [False, False, True], s  # its folder read-only, as in a sandbox of its own
    km, kc = sandboxed_kernels()
    k = _report(kc)
    assert k["ppid"] == s["ppid"] and k["others"] == [s["pid"]], (k, s)  # one zygote; the student side was spared
    assert student.poll() is None
    student.kill_session()
    assert student.poll() == -9 and student.stdout.read() == b""
    assert _report(kc)["others"] == []


def test_a_zygote_asked_before_a_notebook_that_trains_builds_the_first_optimizer_for_what_it_forks_later(
        sandboxed_kernels, capfd):
    """Asked by the nbgrader process (``KernelZygote.warm``), the zygote builds a first optimizer itself, once (torch
    imports ``torch._dynamo`` then, ~1 s of CPU): the kernels and the student side forked afterwards start with it
    done, those forked before do not have it."""
    from course.sandbox.kernel_provisioner import zygote_of

    folder, zygote = sandboxed_kernels.folder, sandboxed_kernels.zygote
    _, before = sandboxed_kernels()
    a = _report(before)
    kernels = zygote_of(str(folder))
    kernels.warm()
    kernels.warm()  # (asked again: nothing more to build)
    _, after = sandboxed_kernels()
    b = _report(after)
    student = zygote.spawn_student(STUDENT, [], str(folder))
    student.stdin.write(b"hello\n")
    s = json.loads(student.stdout.readline())
    student.kill_session()
    assert not a["dynamo_loaded"] and b["dynamo_loaded"] and s["dynamo_loaded"], (a, b, s)
    assert a["ppid"] == b["ppid"] == s["ppid"], (a, b, s)  # one zygote throughout
    log = capfd.readouterr().err
    assert log.count("built a first optimizer") == 1 and "anew" not in log, log
