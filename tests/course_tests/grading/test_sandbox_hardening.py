"""Sandbox hardening: no namespace and no mount from inside, no
view of any cgroup, and a CPU share per worker.

Each test runs small Python programs in the sandbox the grader gives student code (``course.sandbox.bwrap_command``,
as in tests/course_tests/grading/test_grading_sandbox.py) and, for the CPU share, grades two submissions side by side with
``course.grade`` itself: one runs a storm of busy threads and processes, the other must still get its share.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from course.paths import tool_env
from course_fixtures import sample_data, skip_or_fail
from unix_accounts import student_account  # noqa: F401 (fixture: a throw-away Unix account)
from class_batch import NBGRADER, require_bwrap

REPO = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.skipif(not NBGRADER.exists(), reason="nbgrader is not installed (pip install -e '.[test]')")


def _command(code: str, cgroup=None, uid_offset: int = 70) -> list[str]:
    """The grader's sandbox around ``python -c code`` (as root: uid 61000 + ``uid_offset``), in ``cgroup``."""
    import sr_utils
    from course.sandbox import FIRST_SANDBOX_UID, Limits, SandboxSpec, base_env, bwrap_command, in_cgroups

    spec = SandboxSpec(uid=FIRST_SANDBOX_UID + uid_offset if os.geteuid() == 0 else None, limits=Limits(),
                       code_dirs=[str(Path(sr_utils.__file__).parent)], cgroup_procs=cgroup.procs if cgroup else [])
    return in_cgroups(spec, bwrap_command(spec, [sys.executable, "-c", code], cwd="/tmp", env=base_env(spec)))


def _run(code: str, cgroup=None, uid_offset: int = 70, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(_command(code, cgroup, uid_offset), capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def two_cgroups():
    """Two workers' cgroups, made as the grader makes them (root with a writable cgroupfs)."""
    from course.sandbox import Cgroup, Limits

    made = [Cgroup.create(f"sr-kit-test-{os.getpid()}-w{i}", Limits().memory_bytes, Limits().processes)
            for i in (0, 1)]
    if not all(made):
        for cg in made:
            if cg is not None:
                cg.remove()
        skip_or_fail("no writable cgroup (memory + pids) here: not root, or a read-only cgroupfs")
    yield made
    for cg in made:
        cg.remove()


# ---------------------------------------------------------------------------------------------------------
# No namespace, no mount
# ---------------------------------------------------------------------------------------------------------
ESCAPES = r"""
import ctypes, json, os, shutil, subprocess, threading
libc = ctypes.CDLL(None, use_errno=True)
NEWUSER, NEWNS, NEWNET, NEWPID, NEWTIME, SIGCHLD = 0x10000000, 0x00020000, 0x40000000, 0x20000000, 0x80, 17
NR = {"x86_64": dict(clone=56, unshare=272, setns=308, umount2=166, pivot_root=155, fsopen=430, open_tree=428,
                     clone3=435),
      "aarch64": dict(clone=220, unshare=97, setns=268, umount2=39, pivot_root=41, fsopen=430, open_tree=428,
                      clone3=435)}[os.uname().machine]
def sys_(name, *args):
    r = libc.syscall(NR[name], *args)
    if r == 0 and name == "clone":  # (a child made after all: it leaves at once)
        os._exit(0)
    return "ok" if r >= 0 else os.strerror(ctypes.get_errno())
got = {}
for name, flags in (("user", NEWUSER), ("mount", NEWNS), ("net", NEWNET), ("pid", NEWPID), ("time", NEWTIME)):
    got["unshare " + name] = sys_("unshare", flags)
got["clone user"] = sys_("clone", NEWUSER | SIGCHLD, 0, 0, 0, 0)
got["clone mount+pid"] = sys_("clone", NEWNS | NEWPID | SIGCHLD, 0, 0, 0, 0)
got["clone3"] = sys_("clone3", 0, 0)
got["setns"] = sys_("setns", 0, 0)
libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
r = libc.mount(b"none", b"/tmp", b"tmpfs", 0, b"size=2g")
got["mount tmpfs"] = "ok" if r == 0 else os.strerror(ctypes.get_errno())
got["umount2"] = sys_("umount2", b"/tmp", 0)
got["pivot_root"] = sys_("pivot_root", b"/tmp", b"/tmp")
got["fsopen"] = sys_("fsopen", b"tmpfs", 0)
got["open_tree"] = sys_("open_tree", -100, b"/tmp", 1)
if shutil.which("unshare"):
    for argv in (["unshare", "-U", "true"], ["unshare", "-Urm", "sh", "-c", "mount -t tmpfs -o size=2g none /tmp"],
                 ["unshare", "-Ur", "true"]):
        got[" ".join(argv[:2])] = "ok" if subprocess.run(argv, capture_output=True).returncode == 0 else "refused"
# what sandboxed code does every day still works: threads, processes, a pool, unshare of nothing new
t = threading.Thread(target=lambda: None); t.start(); t.join()
got["thread"] = "ok"
got["fork"] = "ok" if subprocess.run(["true"]).returncode == 0 else "failed"
import multiprocessing
with multiprocessing.get_context("fork").Pool(2) as pool:
    got["pool"] = "ok" if pool.map(abs, [-1, -2]) == [1, 2] else "failed"
got["unshare files"] = sys_("unshare", 0x400)
print(json.dumps(got))
"""


def test_no_user_namespace_and_no_mount_inside_the_sandbox():
    """`unshare -U`, unshare/clone asking for any new namespace, setns, mount (a 2 GB tmpfs), umount2, pivot_root
    and the new mount API all fail; clone3 says ENOSYS (the C library falls back to clone); threads, processes and
    a multiprocessing pool still work."""
    require_bwrap()
    out = _run(ESCAPES)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    allowed = {"thread", "fork", "pool", "unshare files"}
    assert all(got[k] == "ok" for k in allowed), got
    escaped = {k: v for k, v in got.items() if k not in allowed and v == "ok"}
    assert not escaped, f"done inside the sandbox: {escaped}"
    assert got["clone3"] == os.strerror(38), got  # ENOSYS
    assert got["unshare user"] == got["mount tmpfs"] == os.strerror(1), got  # EPERM
    if shutil.which("unshare"):
        assert got["unshare -U"] == got["unshare -Urm"] == "refused", got


def test_no_user_namespace_and_no_mount_as_an_ordinary_user(student_account):
    """The same, with the grader run by an ordinary account: bwrap then builds the sandbox in a user namespace
    (``--unshare-user --disable-userns``), and the filter applies the same; /sys/fs/cgroup is empty there too."""
    require_bwrap()
    from unix_accounts import as_user

    name, home, base = student_account
    script = base / "probe.py"
    script.write_text(
        "import json, os, subprocess, sys\n"
        f"sys.path[:0] = [{str(REPO)!r}, {str(REPO / 'tests')!r}, {str(Path(__file__).resolve().parent)!r}]\n"
        "from course.sandbox import Limits, SandboxSpec, base_env, bwrap_command, user_process_count\n"
        "import sr_utils\n"
        "from test_sandbox_hardening import ESCAPES\n"
        "spec = SandboxSpec(limits=Limits(), code_dirs=[os.path.dirname(sr_utils.__file__)],\n"
        "                   base_processes=user_process_count(os.getuid()))\n"
        "code = ESCAPES.replace('print(json.dumps(got))', 'got[\"cgroups\"] = os.listdir(\"/sys/fs/cgroup\"); '\n"
        "                       'print(json.dumps(got))')\n"
        "argv = bwrap_command(spec, [sys.executable, '-c', code], cwd='/tmp', env=base_env(spec))\n"
        "assert '--disable-userns' in argv and '--unshare-user' in argv, argv\n"
        "out = subprocess.run(argv, capture_output=True, text=True, timeout=180)\n"
        "print(out.stdout.strip().splitlines()[-1] if out.returncode == 0 else 'FAILED ' + out.stderr[-2000:])\n")
    script.chmod(0o644)
    env = tool_env({"HOME": str(home), "PATH": "/usr/bin:/bin"})
    out = subprocess.run(as_user(name, env, [sys.executable, str(script)]), capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0 and not out.stdout.startswith("FAILED"), out.stdout[-3000:] + out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    allowed = {"thread", "fork", "pool", "unshare files", "cgroups"}
    assert got["cgroups"] == [] and all(got[k] == "ok" for k in allowed - {"cgroups"}), got
    escaped = {k: v for k, v in got.items() if k not in allowed and v == "ok"}
    assert not escaped, f"done inside an ordinary user's sandbox: {escaped}"


def test_the_filter_denies_the_namespace_flags_not_the_calls():
    """The filter (classic BPF) in the sandbox's seccomp, read back by the kernel's own interpreter: the flags
    decide, so an unshare without CLONE_NEW* (CLONE_FILES) passes and any one CLONE_NEW* flag is refused."""
    require_bwrap()
    flags = {"NEWNS": 0x00020000, "NEWCGROUP": 0x02000000, "NEWUTS": 0x04000000, "NEWIPC": 0x08000000,
             "NEWUSER": 0x10000000, "NEWPID": 0x20000000, "NEWNET": 0x40000000, "NEWTIME": 0x80}
    code = ("import ctypes, json, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            "nr = {'x86_64': 272, 'aarch64': 97}[os.uname().machine]\n"
            f"flags = {flags!r}\n"
            "got = {}\nfor name, f in flags.items():\n"
            "    got[name] = libc.syscall(nr, f) == 0 or os.strerror(ctypes.get_errno())\n"
            "print(json.dumps(got))")
    out = _run(code)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got == {name: os.strerror(1) for name in flags}, got


# ---------------------------------------------------------------------------------------------------------
# No view of the cgroups
# ---------------------------------------------------------------------------------------------------------
def test_the_sandbox_sees_no_cgroup_of_another_worker(two_cgroups):
    """A sandbox in worker 0's cgroup: /sys/fs/cgroup is empty and read-only, worker 1's cgroup (its memory use)
    cannot be opened under any of its host paths, and neither /proc/self/cgroup nor the mount table names it."""
    require_bwrap()
    mine, other = two_cgroups
    paths = [str(d / f) for d in other.dirs for f in ("memory.usage_in_bytes", "memory.current", "pids.current",
                                                      "cgroup.procs", "cpu.stat")]
    names = {d.name for d in other.dirs} | {d.name for d in mine.dirs}
    code = f"""
import json, os
got = {{"listing": [], "opened": [], "wrote": False}}
for dirpath, dirs, files in os.walk("/sys/fs/cgroup"):
    got["listing"] += [os.path.join(dirpath, n) for n in dirs + files]
for p in {paths!r} + ["/sys/fs/cgroup/memory/memory.usage_in_bytes", "/sys/fs/cgroup/memory.current"]:
    try:
        open(p).read(); got["opened"].append(p)
    except OSError:
        pass
try:
    open("/sys/fs/cgroup/planted", "w"); got["wrote"] = True
except OSError:
    pass
got["self"] = open("/proc/self/cgroup").read()
got["mounts"] = open("/proc/self/mountinfo").read()
print(json.dumps(got))
"""
    out = _run(code, cgroup=mine)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["listing"] == [] and got["opened"] == [] and not got["wrote"], got
    for name in names:
        assert name not in got["self"] and name not in got["mounts"], name
    assert os.listdir(Path("/sys/fs/cgroup")), "(the host's cgroups are there: the empty view is the sandbox's)"


# ---------------------------------------------------------------------------------------------------------
# A CPU share per worker
# ---------------------------------------------------------------------------------------------------------
# 16 busy threads (hashing 1 MB at a time releases the GIL: they use every core) and 32 busy processes, each in a
# session of its own (where the kernel schedules sessions as groups, each would count as much as a whole worker)
# the storm ends its threads and processes after its time (a notebook's later cells then run at once)
STORM = r"""
import hashlib, os, signal, threading, time
buf = b"x" * (1 << 20)
calm = threading.Event()
def spin():
    while not calm.is_set():
        hashlib.sha256(buf).digest()
for _ in range(16):
    threading.Thread(target=spin, daemon=True).start()
spinners = []
for _ in range(32):
    pid = os.fork()
    if pid == 0:
        os.setsid()
        while True:
            pass
    spinners.append(pid)
print("STORM", time.time(), flush=True)
time.sleep(SECONDS)
print("CALM", time.time(), flush=True)
calm.set()
for pid in spinners:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
"""
# the neighbour: a fixed amount of CPU work (seconds of its own CPU time); prints the wall time it took
WORK = r"""
import time
t0, w0, c0 = time.time(), time.monotonic(), time.process_time()
x = 0
while time.process_time() - c0 < CPU:
    x += 1
wall = time.monotonic() - w0
print("WORK", t0, time.time(), round(wall, 3), round(time.process_time() - c0, 3))
"""


def _neighbour(cgroup, cpu: float = 1.0) -> float:
    out = _run(WORK.replace("CPU", str(cpu)), cgroup=cgroup, uid_offset=71)
    assert out.returncode == 0, out.stderr[-2000:]
    _, _, _, wall, used = out.stdout.split()
    return float(wall) / float(used)


def _under_storm(storm_cgroup, neighbour_cgroup, cpu: float = 1.0) -> float:
    """The neighbour's wall time per CPU second (of ``cpu`` seconds' work) while a storm runs (in
    ``storm_cgroup``, or in none)."""
    storm = subprocess.Popen(_command(STORM.replace("SECONDS", "120"), cgroup=storm_cgroup, uid_offset=72),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert storm.stdout.readline().startswith("STORM"), storm.stderr.read()[-2000:]
        time.sleep(1)
        return _neighbour(neighbour_cgroup, cpu)
    finally:
        storm.kill()  # (bwrap: the sandbox's PID namespace, storm included, dies with it)
        storm.wait()
        time.sleep(1)


def test_a_storm_in_one_worker_leaves_its_neighbour_its_share(two_cgroups):
    """Worker 0 storms (16 busy threads, 32 busy processes in sessions of their own); worker 1 does 1 s of CPU
    work. In their cgroups (what the grader makes: the same CPU weight each), the neighbour's wall time per CPU
    second stays within twice what it is alone; the control -- the same storm outside any cgroup -- shows that the
    measurement sees starvation when there is some."""
    require_bwrap()
    storming, calm = two_cgroups
    if not (storming.cpu and calm.cpu):
        skip_or_fail("no CPU controller in the cgroups here: the workers have no CPU share")
    alone = _neighbour(calm)
    contained = _under_storm(storming, calm)
    # (starved: a quarter of a second of work, ~4 s of wall time here, is enough to show it)
    uncontained = _under_storm(None, calm, cpu=0.25)
    again = _neighbour(calm)
    base = max(alone, again)  # (other jobs on the machine change both: the slower of the two)
    print(f"wall per CPU second: alone {alone:.2f} / {again:.2f}, storm in its worker's cgroup {contained:.2f}, "
          f"storm outside any cgroup {uncontained:.2f}")
    assert contained <= 2 * base + 0.2, (alone, contained, again)
    assert uncontained >= 2 * contained, ("the control did not starve the neighbour: the test would not see it",
                                          contained, uncontained)


GO, STORMING, DONE, CALM = "go", "storming", "done", "calm"  # the files of the side-by-side grading's timeline


def _conduct(storm: Path, neighbour: Path, ended) -> None:
    """While two submissions are graded side by side: once the storm runs (``STORMING`` in its folder) and nbgrader
    has written the neighbour's notebook, put ``GO`` into the neighbour's folder; once the neighbour's work is done
    (``DONE``), put ``CALM`` into the storm's. Until ``ended`` is set."""
    while not ended.wait(0.05):
        if (storm / STORMING).exists() and (neighbour / "share.ipynb").exists() and not (neighbour / GO).exists():
            (neighbour / GO).touch()
        if (neighbour / DONE).exists():
            (storm / CALM).touch()
            return


def _share_course(dest: Path, limit: float) -> Path:
    """A private course with one assignment ``share`` of one notebook: a solution cell (which sets ``WORK_SECONDS``)
    and a test cell that does that much CPU work and scores only if that took less than ``limit`` seconds of wall
    time."""
    import nbformat
    from nbformat.v4 import new_notebook

    from course.demo import copy_course
    from course_fixtures import nbgrader_cell as cell

    root = copy_course(dest)
    nb = new_notebook(cells=[
        cell("code", "### BEGIN SOLUTION\nWORK_SECONDS = 3\n### END SOLUTION", grade_id="answer", solution=True),
        cell("code", WORK.replace("CPU", "WORK_SECONDS") + f"open({DONE!r}, 'w').close()\n"
             "import os\nprint('CGROUPS', os.listdir('/sys/fs/cgroup'))\n"
             f"assert wall < {limit:.1f}, f'{{wall:.1f}} s of wall time for 3 s of CPU'\n", grade_id="test_share",
             grade=True, points=1, locked=True),
    ])
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    (root / "source" / "share").mkdir(parents=True)
    nbformat.write(nb, root / "source" / "share" / "share.ipynb")
    env = tool_env()
    out = subprocess.run([str(NBGRADER), "generate_assignment", "share", "--force"], cwd=root, env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    return root


@pytest.fixture
def short_tmp():
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="srh-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_two_workers_a_storm_does_not_change_the_neighbours_grade(short_tmp, two_cgroups):
    """``course.grade`` with 2 workers: one submission storms (threads, and processes in sessions of their own)
    from its first cell on; the other's test cell does 3 s of CPU work while the storm runs and scores its point
    only within twice the wall time that work takes alone here (measured just before, in a worker's cgroup, so
    that the machine's other jobs count in both). It scores it. The notebooks' outputs show that the work ran while
    the storm did, and that neither kernel saw a cgroup.

    The test conducts the timeline through files in the two grading folders (the sandboxes see what root writes
    there, :func:`_conduct`): the neighbour starts its work once the storm runs, the storm calms once it is done."""
    require_bwrap()
    from nbgrader.api import Gradebook

    from course.grade import grade
    from course.sandbox import Limits

    calm = two_cgroups[1]
    if not calm.cpu:
        skip_or_fail("no CPU controller in the cgroups here: the workers have no CPU share")
    alone = max(_neighbour(calm, 1.5), _neighbour(calm, 1.5))  # wall time per CPU second, alone
    limit = 3 * (2 * alone + 0.2)
    data = sample_data(short_tmp / "data")
    for p in [data, *data.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    course = _share_course(short_tmp / "course", limit)
    release = json.loads((course / "release" / "share" / "share.ipynb").read_text())
    subs = short_tmp / "from"
    t0 = time.time()
    # (each waits for its file 120 s at most: a timeline that breaks shows in the assertions below, not as a hang)
    wait_for = "import os, time\nwhile not os.path.exists({!r}) and time.time() < {}:\n    time.sleep(0.05)\n"
    # (the storm's own test cell, which runs once it calmed, does no work: its point is not what this test reads)
    for student, first in (("neighbour", "WORK_SECONDS = 3\n" + wait_for.format(GO, t0 + 120)),
                           ("storm", "WORK_SECONDS = 0\n" + STORM.replace(
                               "time.sleep(SECONDS)", f"open({STORMING!r}, 'w').close()\n"
                               + wait_for.format(CALM, t0 + 120)))):
        nb = json.loads(json.dumps(release))
        nb["cells"][0]["source"] = first
        (subs / student).mkdir(parents=True)
        (subs / student / "share.ipynb").write_text(json.dumps(nb))
        (subs / student / "report.md").write_text("# Report\n")
    old = os.environ.get("SR_DATA_DIR")
    os.environ["SR_DATA_DIR"] = str(data)
    graded, ended = course / "course" / "autograded", threading.Event()
    conductor = threading.Thread(target=_conduct, args=(graded / "storm" / "share", graded / "neighbour" / "share",
                                                        ended), daemon=True)
    conductor.start()
    try:
        result = grade("share", course, src=subs, workers=2, cell_timeout=150, submission_timeout=600,
                       limits=Limits(cpu_seconds=900, memory_bytes=2 << 30, threads=1), feedback=False,
                       progress=False, log=lambda *a: None)
    finally:
        ended.set()
        conductor.join()
        os.environ.pop("SR_DATA_DIR") if old is None else os.environ.__setitem__("SR_DATA_DIR", old)
    assert {r["student"]: r["status"] for r in result["results"]} == {"neighbour": "ok", "storm": "ok"}, result
    text = {s: (course / "course" / "autograded" / s / "share" / "share.ipynb").read_text() for s in
            ("neighbour", "storm")}
    storm_start, storm_end = (float(re.search(rf"{w} ([\d.]+)", text["storm"]).group(1)) for w in ("STORM", "CALM"))
    start, end, wall = map(float, re.search(r"WORK ([\d.]+) ([\d.]+) ([\d.]+)", text["neighbour"]).groups())
    assert storm_start < start and end < storm_end, ("the neighbour's work did not run during the storm",
                                                     storm_start - t0, start - t0, end - t0, storm_end - t0)
    for s in text:
        assert "CGROUPS []" in text[s], s
    with Gradebook("sqlite:///" + str(course / "course" / "gradebook.db")) as gb:
        scores = {s: gb.find_submission_notebook("share", "share", s).score for s in ("neighbour", "storm")}
    print(f"the neighbour's 3 s of CPU: {3 * alone:.1f} s alone, {wall:.1f} s during the storm (limit {limit:.1f})")
    assert scores["neighbour"] == 1, (scores, wall, limit)
