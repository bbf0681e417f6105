"""The grading sandbox and intake on their own, and small grading runs: what a sandbox sees and reaches, its
cgroup, its seccomp filter and its compiled imresize; the refusals without bubblewrap or a cgroup; intake of
folders and LMS downloads; two grading runs at once; the bounded grading folder and what a graded notebook may
leave behind. (The class graded once is read by ``test_grading_sandbox``.)
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from class_batch import Server, require_bwrap
from class_batch import snapshot as _snapshot
from class_batch import code_cell as _code
from class_batch import read_notebook as _nb
from class_batch import write_submission as _write_submission
from course_fixtures import sample_data
from course.jupyter.handin import EXCHANGE_FILES
from course.paths import BIN, tool, tool_env

REPO = Path(__file__).resolve().parents[3]
NBGRADER = tool("nbgrader")

pytestmark = pytest.mark.skipif(not NBGRADER.exists(), reason="nbgrader is not installed (pip install -e '.[test]')")


def _sandboxed(code: str, limits=None, cgroup=None, deny_memfd=False, numba_cache="",
               niceness=0) -> subprocess.CompletedProcess:
    """Run ``code`` with the sandbox the grader gives student code (as root: uid 61000 + 60)."""
    import sr_utils
    from course.sandbox import FIRST_SANDBOX_UID, Limits, SandboxSpec, base_env, bwrap_command, in_cgroups

    spec = SandboxSpec(uid=FIRST_SANDBOX_UID + 60 if os.geteuid() == 0 else None, limits=limits or Limits(),
                       code_dirs=[str(Path(sr_utils.__file__).parent)], cgroup_procs=cgroup.procs if cgroup else [],
                       deny_memfd=deny_memfd, numba_cache=numba_cache, niceness=niceness)
    argv = in_cgroups(spec, bwrap_command(spec, [sys.executable, "-c", code], cwd="/tmp", env=base_env(spec)))
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)

def test_the_sandbox_sees_and_reaches_only_what_it_should(tmp_path):
    require_bwrap()
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    server = Server()
    code = f"""
import os, socket
import sr_utils.metrics  # the kit's public code is there
print("uid", os.getuid())
print("secret", os.path.exists({str(secret)!r}), os.path.exists({str(REPO / "source")!r}),
      os.path.exists({str(REPO / "course")!r}), os.path.exists("/root/.bashrc"))
for path in ("/written", {str(REPO / "sr_utils" / "x.py")!r}):
    try:
        open(path, "w").write("x")
        print("wrote", path)
    except OSError as e:
        print("refused", type(e).__name__)
open("/tmp/ok", "w").write("x")
s = socket.socket(); s.settimeout(3)
print("connect", s.connect_ex(("127.0.0.1", {server.port})))
"""
    out = _sandboxed(code)
    assert out.returncode == 0, out.stderr
    lines = dict(ln.split(" ", 1) for ln in out.stdout.splitlines())
    assert lines["secret"] == "False False False False"
    assert "wrote" not in out.stdout and out.stdout.count("refused") == 2
    assert lines["connect"] != "0" and server.accepted == []
    if os.geteuid() == 0:
        assert lines["uid"] == str(61060), "as root, student code runs as an unprivileged uid"
    assert not (REPO / "sr_utils" / "x.py").exists() and not Path("/written").exists()

def test_sandboxes_load_the_graders_compiled_imresize_instead_of_compiling(tmp_path):
    """The kit's code is read-only in a sandbox, where numba can neither write nor read its cache: without the
    grader's compiled kernels every kernel compiles imresize (~2.5 s per notebook); with them, nothing compiles,
    and what a sandbox writes to its copy reaches neither the grader's folder nor the next sandbox."""
    require_bwrap()
    from course.sandbox import prepare_numba_cache

    cache = prepare_numba_cache(tmp_path / "numba")
    assert cache, "the trusted process could not compile the kernels"
    before = _snapshot(Path(cache))
    code = ("import numpy as np\nfrom sr_utils.imresize import imresize, _get_kernels\n"
            "imresize(np.zeros((32, 32, 3), np.uint8), 1 / 4)\n"
            "imresize(np.zeros((8, 8, 3), np.float32), 4)\n"
            "print(*(sum(getattr(k.stats, s).values()) for k in _get_kernels() for s in ('cache_hits', 'cache_misses')))\n"
            "open('/tmp/.numba/planted', 'w').write('x')")
    hits_rows, misses_rows, hits_cols, misses_cols = map(int, _sandboxed(code, numba_cache=cache).stdout.split())
    assert misses_rows == misses_cols == 0 and hits_rows >= 2 and hits_cols >= 2
    _, misses_rows, _, misses_cols = map(int, _sandboxed(code).stdout.split())
    assert misses_rows >= 2 and misses_cols >= 2, "without the grader's cache the sandbox compiles (the test's control)"
    assert _snapshot(Path(cache)) == before and not (Path(cache) / "planted").exists()

def test_the_kernels_are_compiled_again_only_when_imresize_changed(tmp_path, monkeypatch):
    """Each grading run first makes sure the machine's cache holds imresize's compiled kernels. A cache compiled
    from this very imresize.py (its path, time and size: what numba's own index checks) starts no process (one
    that loads the cache costs ~3 s of CPU); a changed file, a compile that failed or a cache emptied by hand
    compiles again."""
    import types

    from course.sandbox import kernel

    compiled, fail = [], []

    def run(argv, env, **kwargs):
        compiled.append(env["NUMBA_CACHE_DIR"])
        Path(env["NUMBA_CACHE_DIR"], "imresize._resize_rows-108.py311.nbi").write_bytes(b"index")  # (numba's index)
        if fail:
            raise kernel.subprocess.CalledProcessError(1, argv)

    monkeypatch.setattr(kernel, "subprocess", types.SimpleNamespace(
        run=run, CalledProcessError=subprocess.CalledProcessError, TimeoutExpired=subprocess.TimeoutExpired))
    cache = kernel.prepare_numba_cache(tmp_path / "numba")
    assert cache and compiled == [cache]
    assert kernel.prepare_numba_cache(tmp_path / "numba") == cache and len(compiled) == 1, "compiled again"
    monkeypatch.setattr(kernel, "_compiled_for", lambda: '{"source": "an edited imresize.py"}')
    fail.append(True)
    assert kernel.prepare_numba_cache(tmp_path / "numba") == "" and len(compiled) == 2
    fail.clear()
    assert kernel.prepare_numba_cache(tmp_path / "numba") == cache and len(compiled) == 3, "a failed compile is redone"
    assert kernel.prepare_numba_cache(tmp_path / "numba") == cache and len(compiled) == 3
    for index in Path(cache).glob("*.nbi"):  # the compiled code removed by hand: compiled again
        index.unlink()
    assert kernel.prepare_numba_cache(tmp_path / "numba") == cache and len(compiled) == 4


def test_the_probe_runs_as_a_sandbox_uid_no_grading_run_holds(monkeypatch):
    """The grading command first builds a test sandbox. As root it ran as the first sandbox uid, which another
    grading run's first worker may hold and whose process limit that run's submission may have filled (a fork bomb):
    the probe's setuid then failed and the second run refused to grade. It now holds a uid of its own for it."""
    if os.geteuid() != 0:
        pytest.skip("sandbox uids are used when grading as root")
    require_bwrap()
    from course.sandbox import UidPool, isolation, probe

    other_run = UidPool(1)  # (another grading run's worker)
    seen, real_run = [], isolation.subprocess.run

    def run(cmd, **kwargs):
        seen.append(json.loads(next(a for a in cmd if a.startswith('{"uid": '))))
        return real_run(cmd, **kwargs)

    monkeypatch.setattr(isolation.subprocess, "run", run)
    try:
        probe()
    finally:
        other_run.release()
    assert len(seen) == 1 and seen[0]["uid"] not in other_run.uids and seen[0]["uid"] is not None, seen
    import fcntl

    with open(isolation.UID_LOCKS / f"{seen[0]['uid']}.lock", "a") as f:  # the probe's uid is free again
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_grading_runs_at_once_compile_the_kernels_once(tmp_path, monkeypatch):
    """Two grading runs starting together on one machine share its cache: one compiles, the other waits for it and
    uses what it compiled (before, both compiled into the same folder at once)."""
    import threading
    import types

    from course.sandbox import kernel

    compiled, started = [], threading.Event()

    def run(argv, env, **kwargs):
        compiled.append(env["NUMBA_CACHE_DIR"])
        started.set()
        time.sleep(1)  # (a compile takes seconds: the other run asks meanwhile)
        Path(env["NUMBA_CACHE_DIR"], "imresize._resize_rows-108.py311.nbi").write_bytes(b"index")

    monkeypatch.setattr(kernel, "subprocess", types.SimpleNamespace(
        run=run, CalledProcessError=subprocess.CalledProcessError, TimeoutExpired=subprocess.TimeoutExpired))
    results = []
    first = threading.Thread(target=lambda: results.append(kernel.prepare_numba_cache(tmp_path / "numba")))
    first.start()
    assert started.wait(30)
    results.append(kernel.prepare_numba_cache(tmp_path / "numba"))  # while the first compiles
    first.join()
    assert len(compiled) == 1 and results[0] == results[1] == str((tmp_path / "numba").resolve()), (compiled, results)


def test_a_run_without_a_sandbox_gives_its_trusted_processes_the_compiled_kernels_too(tmp_path, monkeypatch):
    """``--unsafe`` (the demo where bubblewrap is missing): the machine's compiled imresize is copied into the
    run's own cache as for a sandboxed run, so that the first check server of a course does not compile it
    (~10 s of CPU); the spec stays one without a sandbox."""
    from course.grading import run_loop
    from course.grading.contract import NUMBA_DIR
    from course.sandbox import SandboxSpec

    machine = tmp_path / "machine"
    (machine / "sub").mkdir(parents=True)
    (machine / "imresize._resize_rows-108.py311.nbi").write_bytes(b"index")
    (machine / "sub" / "imresize._resize_rows-108.py311.1.nbc").write_bytes(b"code")
    monkeypatch.setattr(run_loop, "prepare_numba_cache", lambda folder: str(machine))
    unsafe = SandboxSpec(enabled=False)
    assert run_loop.with_compiled_imresize(unsafe, tmp_path / "state") == unsafe
    copied = {p.relative_to(tmp_path / "state" / NUMBA_DIR).as_posix(): p.read_bytes()
              for p in (tmp_path / "state" / NUMBA_DIR).rglob("*") if p.is_file()}
    assert copied == {"imresize._resize_rows-108.py311.nbi": b"index",
                      "sub/imresize._resize_rows-108.py311.1.nbc": b"code"}
    sandboxed = run_loop.with_compiled_imresize(SandboxSpec(), tmp_path / "state2")
    assert sandboxed.numba_cache == str(machine) and (tmp_path / "state2" / NUMBA_DIR / "sub").is_dir()


def test_the_checks_student_side_yields_to_the_kernels():
    """The student side of the hidden checks runs at CHECKS_NICENESS, its session's scheduling group too (bwrap
    makes a session of its own, and with autogroups a thread's niceness only counts inside its session); a
    kernel's sandbox keeps the grader's priority."""
    require_bwrap()
    from course.sandbox import CHECKS_NICENESS

    code = "import os\nprint(os.getpriority(os.PRIO_PROCESS, 0), open('/proc/self/autogroup').read().split()[-1])"
    autogroups = Path("/proc/sys/kernel/sched_autogroup_enabled")
    own = os.getpriority(os.PRIO_PROCESS, 0)
    nice, group = _sandboxed(code, niceness=CHECKS_NICENESS).stdout.split()
    assert int(nice) == max(own, CHECKS_NICENESS)
    if autogroups.is_file() and autogroups.read_text().strip() == "1" and os.geteuid() == 0:
        assert int(group) == CHECKS_NICENESS
    nice, group = _sandboxed(code).stdout.split()
    assert int(nice) == own and int(group) == 0

def test_a_cgroup_bounds_the_whole_sandbox_memory_tmpfs_included(tmp_path):
    """rlimits bound each process; the worker's cgroup also counts the sandbox's tmpfs pages (root only)."""
    require_bwrap()
    from course.sandbox import Cgroup, Limits

    cgroup = Cgroup.create(f"sr-kit-test-{os.getpid()}", 256 << 20, 64)
    if cgroup is None:
        pytest.skip("no writable cgroup memory/pids controllers here (not root, or a read-only cgroupfs)")
    try:
        limits = Limits(memory_bytes=256 << 20, tmp_bytes=1 << 30)
        out = _sandboxed("f = open('/tmp/fill', 'wb')\nfor _ in range(40):\n    f.write(b'x' * (10 << 20))\n"
                         "f.flush()\nprint('wrote 400 MB')", limits, cgroup)
        assert "wrote 400 MB" not in out.stdout, "400 MB of tmpfs should not fit in a 256 MB cgroup"
        small = _sandboxed("open('/tmp/fill', 'wb').write(b'x' * (50 << 20))\nprint('ok')", limits, cgroup)
        assert small.stdout.strip() == "ok", small.stderr
    finally:
        cgroup.remove()

def test_refuses_without_a_sandbox_unless_unsafe(tmp_path):
    (tmp_path / "course" / "submitted").mkdir(parents=True)
    shutil.copy(REPO / "nbgrader_config.py", tmp_path)
    env = {**os.environ, "PATH": str(BIN)}  # no /usr/bin: no bwrap
    cmd = [sys.executable, "-m", "course.grade", "superres", "--course-dir", str(tmp_path)]
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    assert out.returncode == 2
    assert "refusing to grade" in out.stderr and "bubblewrap" in out.stderr and "--unsafe" in out.stderr
    assert "Docker" in out.stderr
    out = subprocess.run(cmd + ["--unsafe"], cwd=REPO, env=env, capture_output=True, text=True)
    assert "refusing" not in out.stderr and "no submission" in out.stderr, out.stderr
    assert "WARNING: --unsafe" in out.stdout

def test_an_lms_download_is_collected_member_by_member(tmp_path):
    import zipfile

    from course.grading.collection import DEFAULT_LMS_REGEXP, collect_lms_zip

    from course.demo import copy_course

    course = copy_course(tmp_path / "course_root")
    env = tool_env()
    subprocess.run([str(NBGRADER), "generate_assignment", "superres", "--force"], cwd=course, env=env, check=True,
                   capture_output=True)
    release = sorted((REPO / "release" / "superres").glob("*.ipynb"))
    with zipfile.ZipFile(tmp_path / "download.zip", "w") as z:  # Canvas-style names: <student>_<ids>_<file>
        for student, ids in (("alice", "1203_4501"), ("bob.smith", "77_1")):
            for nb in release:
                z.write(nb, f"{student}_{ids}_{nb.name}")
    collect_lms_zip(tmp_path / "download.zip", course, "superres", DEFAULT_LMS_REGEXP)
    for student in ("alice", "bob.smith"):
        got = sorted(p.name for p in (course / "course" / "submitted" / student / "superres").glob("*.ipynb"))
        assert got == [nb.name for nb in release], (student, got)
        assert (course / "course" / "submitted" / student / "superres" / "02_solver.ipynb").read_bytes() == \
            (REPO / "release" / "superres" / "02_solver.ipynb").read_bytes()

def test_two_grading_runs_never_share_sandbox_uids():
    from course.sandbox import UidPool

    if os.geteuid() != 0:
        pytest.skip("sandbox uids are used when grading as root")
    a, b = UidPool(2), UidPool(3)
    try:
        assert not set(a.uids) & set(b.uids) and len(set(a.uids + b.uids)) == 5
    finally:
        a.release()
        b.release()
    c = UidPool(2)
    c.release()
    assert c.uids == a.uids, "released uids are reused"

def test_refuses_without_a_cgroup_unless_told(monkeypatch, tmp_path):
    from course.grade import GradingError
    from course.grading import run_loop
    from course.sandbox import Cgroup, SandboxSpec

    monkeypatch.setattr(Cgroup, "create", classmethod(lambda cls, *a: None))
    spec = SandboxSpec(enabled=True, uid=None)
    with pytest.raises(GradingError, match="--no-cgroup"):
        run_loop.autograde_all([], "superres", tmp_path, spec, 1, progress=False)
    assert run_loop.autograde_all([], "superres", tmp_path, spec, 1, progress=False, require_cgroup=False) == []

def test_seccomp_denies_the_keyring_calls_and_memfd_without_cgroup():
    require_bwrap()
    code = ("import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            "print(libc.syscall(248, b'user', b'k', b'v', 1, ctypes.c_long(-3)), "
            "libc.syscall(250, 0, ctypes.c_long(-3), 0), os.memfd_create('x') >= 0)")
    assert _sandboxed(code).stdout.split() == ["-1", "-1", "True"]
    out = _sandboxed(code.replace("os.memfd_create('x') >= 0", "libc.syscall(319, b'x', 0)"), deny_memfd=True)
    assert out.stdout.split() == ["-1", "-1", "-1"], out.stderr

def test_intake_refuses_links_fifos_devices_and_oversized_files(tmp_path):
    from course import intake

    sub = tmp_path / "alice"
    sub.mkdir()
    (sub / "ok.ipynb").write_text("{}")
    os.symlink("/etc/passwd", sub / "link.ipynb")
    os.mkfifo(sub / "pipe")
    (sub / "big.bin").write_bytes(b"x" * 2048)
    problems = "; ".join(intake.inspect(sub, max_file_bytes=1024))
    assert "link.ipynb: a symbolic link" in problems and "pipe: a FIFO" in problems and "big.bin" in problems
    assert intake.inspect(tmp_path / "alice" / "ok.ipynb")  # not a folder
    for bad in ("..", ".", "../x", "a/b", "", "-rf", "x" * 200):
        assert not intake.safe_student_id(bad), bad

def test_an_lms_zip_with_bad_members_is_collected_for_everyone_else(tmp_path):
    import io
    import zipfile

    from course.grading.collection import DEFAULT_LMS_REGEXP
    from course.intake import collect_zip

    release = sorted((REPO / "release" / "superres").glob("*.ipynb"))
    nested = io.BytesIO()
    with zipfile.ZipFile(nested, "w") as z:
        z.writestr("alice_0_01_models.ipynb", "{\"impersonated\": true}")
    with zipfile.ZipFile(tmp_path / "download.zip", "w") as z:
        for student in ("alice", "bob"):
            for nb in release:
                z.write(nb, f"{student}_1_{nb.name}")
        z.writestr("../mallory_1_01_models.ipynb", "{}")                     # traversal
        z.writestr("/tmp/mallory_2_02_solver.ipynb", "{}")                   # absolute
        z.writestr("mallory_3_nested.zip", nested.getvalue())               # a nested zip naming alice
        z.writestr("sub/.._1_01_models.ipynb", "{}")                         # the student id ".."
        z.writestr("carol_1_01_models.ipynb", "{}")                          # a duplicate: neither taken
        z.writestr("carol_2_01_models.ipynb", "{\"second\": 1}")
        z.writestr("carol_1_02_solver.ipynb", "{}")
        info = zipfile.ZipInfo("dave_1_01_models.ipynb")                    # a symbolic link member
        info.external_attr = (0o120777 << 16)
        z.writestr(info, "/etc/shadow")
    submitted = tmp_path / "submitted"
    students, attention = collect_zip(tmp_path / "download.zip", submitted, "superres", DEFAULT_LMS_REGEXP)
    assert students == ["alice", "bob", "carol"]
    for student in ("alice", "bob"):
        for nb in release:
            assert (submitted / student / "superres" / nb.name).read_bytes() == nb.read_bytes()
    assert sorted(p.name for p in (submitted / "carol" / "superres").iterdir()) == ["02_solver.ipynb"]
    assert "more than one file" in attention["carol"] and "link" in attention["dave"]
    assert "nested archive" in attention["mallory"]
    assert "'..' path" in attention["(unknown student)"] or "'..' path" in attention.get("mallory", "")
    assert not (tmp_path / "mallory_1_01_models.ipynb").exists() and not Path("/tmp/mallory_2_02_solver.ipynb").exists()
    assert sorted(p.name for p in submitted.iterdir()) == ["alice", "bob", "carol"]

def _course_of_one_notebook(dest: Path) -> Path:
    """A private course whose assignment is notebook 01 alone (the smallest real grading run), with the assignment
    generated."""
    from course.demo import copy_course

    course = copy_course(dest)
    for nb in (course / "source" / "superres").glob("*.ipynb"):
        if nb.name != "01_models.ipynb":
            nb.unlink()
    env = tool_env()
    subprocess.run([str(NBGRADER), "generate_assignment", "superres", "--force"], cwd=course, env=env, check=True,
                   capture_output=True)
    return course

@pytest.fixture
def short_tmp():
    """A temporary folder with a short path (the kernels' IPC socket paths under it must stay below 107 bytes)."""
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="srk-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)

@pytest.fixture(scope="module")
def two_runs():
    """Two `python -m course.grade` processes started together on separate course copies of notebook 01, one
    correct submission each (a cell a student may add shows its uid and keeps the kernel alive long enough for the
    runs to overlap); student_a's also writes 2 x 400 MB into its folder (within the default folder bound, 1 GiB)
    and prints how much it wrote. While they run, the sandbox uids working in each course are seen from /proc (uid
    and working folder of every sandboxed process). One pair of runs feeds the tests of both."""
    require_bwrap()
    import tempfile

    from course.sandbox import FIRST_SANDBOX_UID, SANDBOX_UIDS

    tmp_path = Path(tempfile.mkdtemp(prefix="srk-"))  # (short: the kernels' IPC socket paths under it)
    try:
        data = sample_data(tmp_path / "data")
        for p in [tmp_path, data, *data.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
        reference = _nb(REPO / "source" / "superres" / "01_models.ipynb")
        reference["cells"].insert(1, _code("import os, time\nprint('SANDBOX_UID', os.getuid())\ntime.sleep(8)\n"))
        writer = json.loads(json.dumps(reference))
        writer["cells"].insert(2, _code("for _i in range(2):\n    with open(f'big{_i}.bin', 'wb') as _f:\n"
                                        "        for _ in range(40):\n            _f.write(b'\\0' * (10 << 20))\n"
                                        "import os\nprint('WROTE', sum(os.path.getsize(f'big{_i}.bin') for _i in "
                                        "range(2)))\n"))
        courses, procs = {}, {}
        for name, notebook in (("a", writer), ("b", reference)):
            courses[name] = _course_of_one_notebook(tmp_path / name)
            _write_submission(tmp_path / name / "from" / f"student_{name}", {"01_models.ipynb": notebook})
            (tmp_path / name / "from" / f"student_{name}" / "report.md").write_text("# Report\n")  # (else: listed)
        env = tool_env(SR_DATA_DIR=str(data))
        for name, course in courses.items():
            procs[name] = subprocess.Popen(
                [sys.executable, "-m", "course.grade", "superres", "--course-dir", str(course), "--from",
                 str(tmp_path / name / "from"), "--workers", "1", "--cell-timeout", "120"],
                cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        seen, together = {name: set() for name in courses}, False
        while any(p.poll() is None for p in procs.values()):
            now = {name: set() for name in courses}
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:  # (not the owner of /proc/PID: a process that changed uid is not dumpable, and that is root's)
                    with open(f"/proc/{pid}/status") as f:
                        uid = int(next(ln for ln in f if ln.startswith("Uid:")).split()[1])
                    cwd = os.readlink(f"/proc/{pid}/cwd") \
                        if FIRST_SANDBOX_UID <= uid < FIRST_SANDBOX_UID + SANDBOX_UIDS else ""
                except (OSError, StopIteration, ValueError):
                    continue
                for name, course in courses.items():
                    if cwd.startswith(str(course) + os.sep):
                        now[name].add(uid)
            for name in courses:
                seen[name] |= now[name]
            together |= all(now.values())
            time.sleep(0.2)
        outputs = {name: p.stdout.read() for name, p in procs.items()}
        yield {"courses": courses, "outputs": outputs, "returncodes": {n: p.returncode for n, p in procs.items()},
               "seen": seen, "together": together}
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)


def test_two_grading_runs_at_once_never_share_a_sandbox_uid_and_both_grade_right(two_runs):
    """The two runs at once: no sandbox uid served both, each submission ran as the uid seen in its course, and
    both got full marks."""
    from nbgrader.api import Gradebook

    outputs, seen = two_runs["outputs"], two_runs["seen"]
    for name, code in two_runs["returncodes"].items():
        assert code == 0 and "needing manual attention" not in outputs[name].lower(), outputs[name][-2000:]
    if os.geteuid() != 0:
        pytest.skip("sandbox uids are used when grading as root")
    assert two_runs["together"], f"the two runs never had sandboxed processes at the same time: {seen}"
    assert seen["a"] and seen["b"] and not seen["a"] & seen["b"], seen
    printed = {}
    for name, course in two_runs["courses"].items():
        nb = (course / "course" / "autograded" / f"student_{name}" / "superres" / "01_models.ipynb").read_text()
        printed[name] = int(re.search(r"SANDBOX_UID (\d+)", nb).group(1))
        assert {printed[name]} == seen[name], (printed, seen)
        with Gradebook("sqlite:///" + str(course / "course" / "gradebook.db")) as gb:
            sub = gb.find_submission_notebook("01_models", "superres", f"student_{name}")
            scores = {g.name: (g.score, g.max_score) for g in sub.grades if g.cell_type == "code"}
        assert scores and all(score == best > 0 for score, best in scores.values()), (name, scores)
    assert printed["a"] != printed["b"]

def test_a_bounded_folder_refuses_writes_past_its_size_and_comes_back_on_disk(short_tmp):
    """The tmpfs under a submission's grading folder (root): writes past its size fail, the folder's other entries
    (another assignment) survive, links do not come back, and a run killed in between is repaired by the next."""
    from course.sandbox import SizeLimitedFolder

    if os.geteuid() != 0:
        pytest.skip("the disk bound mounts a tmpfs: root only (docs/grading.md says what holds without)")
    folder, work = short_tmp / "autograded" / "alice", short_tmp / "disk" / "alice"
    (folder / "earlier").mkdir(parents=True)
    (folder / "earlier" / "kept.txt").write_text("graded before")
    (folder / "superres").mkdir()
    (folder / "superres" / "old.txt").write_text("replaced by this run")
    with SizeLimitedFolder(folder, work, 8 << 20) as mounted:
        assert mounted and os.path.ismount(folder) and not (folder / "earlier").exists()
        (folder / "superres").mkdir()
        (folder / "superres" / "models.py").write_text("x = 1\n")
        with pytest.raises(OSError, match="No space left"):
            (folder / "superres" / "big.bin").write_bytes(b"\0" * (16 << 20))
        os.symlink("/etc/shadow", folder / "superres" / "link")
    assert not os.path.ismount(folder)
    assert (folder / "earlier" / "kept.txt").read_text() == "graded before"
    assert sorted(p.name for p in (folder / "superres").iterdir()) == ["big.bin", "models.py"]
    assert (folder / "superres" / "big.bin").stat().st_size <= 8 << 20
    killed = SizeLimitedFolder(folder, work, 8 << 20)
    assert killed.__enter__()  # ... and never left: a grading run killed mid-way
    (folder / "superres").mkdir()
    (folder / "superres" / "lost.txt").write_text("written by the killed run")
    again = SizeLimitedFolder(folder, work, 8 << 20)
    with again as mounted:
        assert mounted and not (folder / "earlier").exists()
    assert not os.path.ismount(folder) and (folder / "earlier" / "kept.txt").read_text() == "graded before"
    # (what the killed run wrote is gone; the folder is as it was before it)
    assert sorted(p.name for p in (folder / "superres").iterdir()) == ["big.bin", "models.py"]

def test_what_a_notebook_writes_while_graded_is_not_handed_back(two_runs):
    """student_a's submission wrote 2 x 400 MB into its folder while graded (within the default folder bound,
    1 GiB): the writes succeeded during the run, and afterwards ``course/autograded/`` keeps only the notebook and
    ``course/feedback/`` only its page; neither copies the 800 MB."""
    from course.sandbox import Limits

    assert Limits().folder_bytes >= 800 << 20, "the default bound is meant to admit this run"
    course, out = two_runs["courses"]["a"], two_runs["outputs"]["a"]
    assert two_runs["returncodes"]["a"] == 0, out[-3000:]
    graded = course / "course" / "autograded" / "student_a" / "superres"
    assert f"WROTE {800 << 20}" in (graded / "01_models.ipynb").read_text(), "the writes did not succeed"
    # (nbgrader's records of the hand-in, timestamp and secret, are the submitted copy's, whatever the run wrote)
    submitted = course / "course" / "submitted" / "student_a" / "superres"
    records = {n: (graded / n).read_bytes() for n in EXCHANGE_FILES if (graded / n).exists()}
    assert records == {n: (submitted / n).read_bytes() for n in records}
    kept = {p.relative_to(graded).as_posix(): p.stat().st_size for p in graded.rglob("*")
            if p.is_file() and p.name not in records}
    assert list(kept) == ["01_models.ipynb"] and sum(kept.values()) < 5 << 20, kept
    feedback = course / "course" / "feedback" / "student_a"
    pages = {p.relative_to(feedback).as_posix(): p.stat().st_size for p in feedback.rglob("*")
             if p.is_file() and p.name not in EXCHANGE_FILES}
    assert list(pages) == ["superres/01_models.html"] and sum(pages.values()) < 5 << 20, pages
