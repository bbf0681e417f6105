"""The sandbox kernelspec's provisioner on its own (``course/sandbox/kernel_provisioner.py``): a submission's kernels
forked from one sandboxed zygote, each started with nothing of the earlier kernel left, and started anew, each in a
sandbox of its own, once a kernel has killed that zygote; a submission of one notebook gets none. (The class
batch grades every submission of several notebooks this way.)
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
          "print('KERNEL ' + json.dumps({'pid': os.getpid(), 'ppid': os.getppid(), 'path': [p.replace(os.getcwd(), "
          "'CWD') for p in sys.path[:3]], 'torch_loaded': 'torch' in sys.modules, "
          "'argv0': os.path.basename(sys.argv[0]), "
          "'others': sorted(int(p) for p in os.listdir('/proc') if p.isdigit() and int(p) not in "
          "(1, os.getpid(), os.getppid()))}))\n")


@pytest.fixture
def sandboxed_kernels(monkeypatch):
    """``start()`` -> a started kernel (manager, client) for a submission folder of a private course, with the
    environment nbgrader has in a sandboxed run; every kernel and zygote is stopped after."""
    require_bwrap()
    import sr_utils
    import data_tools
    from jupyter_client import KernelManager

    from course.grading.contract import AUTOGRADED_DIR, RUNTIME_DIR, SANDBOX_ENV, STATE_DIR
    from course.sandbox import SandboxSpec, UidPool, write_kernelspec
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
    spec = SandboxSpec(uid=pool.uids[0] if pool else None, course_root=str(root),
                       code_dirs=[str(Path(m.__file__).resolve().parent) for m in (sr_utils, data_tools)])
    write_kernelspec(root / STATE_DIR)
    monkeypatch.setenv(SANDBOX_ENV, spec.to_json())
    monkeypatch.setenv("JUPYTER_PATH", str(root / STATE_DIR))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    monkeypatch.delenv("SR_KIT_KERNEL_ZYGOTE", raising=False)
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

    start.root = root
    yield start
    for km, kc in started:
        kc.stop_channels()
        if km.is_alive():
            km.shutdown_kernel(now=True)
    kernel_provisioner._stop_all()
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
    assert a["argv0"] == b["argv0"] == "ipykernel_launcher.py", (a, b)
    assert a["others"] == [] and b["others"] == [], (a, b)  # the first kernel's `sleep` is gone
    log = capfd.readouterr().err
    assert log.count("[kernel zygote] started") == 1, log


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
    log = capfd.readouterr().err
    assert "ended before this kernel: its sandbox is killed, and this submission's next kernels start anew" in log, log


def test_a_submission_of_one_notebook_gets_a_new_sandboxed_python_not_a_zygote(sandboxed_kernels, capfd):
    from course.grading.contract import SUBMITTED_DIR

    submitted = sandboxed_kernels.root / SUBMITTED_DIR / "alice" / "superres"
    submitted.mkdir(parents=True)
    (submitted / "01_models.ipynb").write_text("{}")
    _, kc = sandboxed_kernels()
    a = _report(kc)
    assert a["ppid"] == 1 and not a["torch_loaded"], a
    log = capfd.readouterr().err
    assert "one notebook handed in" in log and "[kernel zygote] started" not in log, log
