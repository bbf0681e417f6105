"""The shared-machine mode exposes nothing.

As root with a throw-away instructors' group and a throw-away student account (tests/course_tests/test_exchange.py's fixture):
the documented set-up (docs/instructors.md, "A shared machine"), ``python -m course.grade --shared-setup GROUP
--exchange DIR``, closes a course copy; the instructor releases, the student fetches and submits through nbgrader's
exchange, the instructor collects, another student's hand-in comes in with ``--from``, and ``python -m course.grade``
grades both (feedback included). Then ``--check-permissions`` finds nothing, every file and folder of course state
the run wrote is the instructors' alone (no bit for other accounts, the group's read at most), and, as the student:
every file and folder of the course -- solutions in ``source/``, the hidden checks, the gradebook, the other
student's submission and grading, feedback, ``grades.csv``, logs, verdicts -- is refused, even with the course
folder opened to others by mistake; the exchange keeps nbgrader's modes and still serves the student.
"""
from __future__ import annotations

import grp
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from course.paths import tool_env
from course_fixtures import skip_or_fail
from test_exchange import NBGRADER, _course
from unix_accounts import as_user as _as_user
from unix_accounts import run as _run
from unix_accounts import student_account  # noqa: F401 (fixture)

REPO = Path(__file__).resolve().parents[2]
# what grading writes (course state): the instructors' alone
STATE = ("submitted", "autograded", "feedback", "grades", ".grading", "gradebook.db")


@pytest.fixture
def instructors_group():
    if os.geteuid() != 0:
        skip_or_fail("the shared-machine test creates a Unix group and account: it needs root")
    if not shutil.which("groupadd"):
        skip_or_fail("groupadd is not available to create a throw-away instructors' group")
    name = f"srstaff{os.getpid() % 100000}"
    out = subprocess.run(["groupadd", name], capture_output=True, text=True)
    if out.returncode != 0:
        skip_or_fail(f"groupadd failed: {out.stderr.strip()}")
    try:
        yield name
    finally:
        subprocess.run(["groupdel", name], capture_output=True)


def _grade_cmd(root: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "course.grade", *args, "--course-dir", str(root)]


def _env() -> dict:
    env = tool_env()
    for var in ("SR_DATA_DIR", "SR_KIT_EXCHANGE"):  # the course's own data folder and exchange link
        env.pop(var, None)
    return env


def _as_student(name: str, env: dict, script: str, *args: str) -> str:
    """``sh -c script args`` as the student account; its output."""
    argv = _as_user(name, env, ["sh", "-c", script, "sh", *args])
    return subprocess.run(argv, capture_output=True, text=True, timeout=300).stdout


# for each path: print what the student could do with it (nothing is the only right answer)
PEEK = ('for p in "$@"; do if [ -d "$p" ]; then ls "$p" >/dev/null 2>&1 && echo "LISTED $p"; '
        'else cat "$p" >/dev/null 2>&1 && echo "READ $p"; fi; '
        '( : >> "$p" ) 2>/dev/null && echo "WROTE $p"; done; echo done')


def test_the_shared_machine_set_up_exposes_nothing_but_the_exchange(student_account, instructors_group):
    from class_batch import require_bwrap

    require_bwrap()
    name, home, base = student_account
    group = instructors_group
    gid = grp.getgrnam(group).gr_gid
    root = _course(base)
    env = _env()
    exchange = base / "srv" / "nbgrader" / "exchange"
    # before: the course copy is open to other accounts, and the check says so
    before = subprocess.run(_grade_cmd(root, "--check-permissions"), cwd=REPO, env=env, capture_output=True,
                            text=True)
    assert before.returncode == 1 and "other accounts" in before.stdout, before.stdout[-2000:]
    # the documented set-up
    _run(_grade_cmd(root, "--shared-setup", group, "--exchange", str(exchange)), REPO, env=env)
    assert os.readlink(root / "course" / "exchange") == str(exchange)
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o2750 and os.stat(root).st_gid == gid
    # the instructor releases; the student fetches and submits with the student kit's configuration (a readable
    # copy of course/jupyter) and the exchange's place; the instructor collects (with a shell's usual umask 022:
    # the grader closes what nbgrader collect copied)
    for assignment in ("superres", "tiny"):
        _run([str(NBGRADER), "release_assignment", assignment, "--force"], root, env=env)
    kit = base / "student-kit"
    shutil.copytree(root / "course" / "jupyter", kit / "jupyter")
    for p in [kit, *kit.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    student_env = tool_env({"HOME": str(home), "PATH": "/usr/bin:/bin"}, JUPYTER_CONFIG_PATH=str(kit / "jupyter"),
                           SR_KIT_EXCHANGE=str(exchange))
    _run([str(NBGRADER), "fetch_assignment", "tiny"], home, name, student_env)
    fetched = home / "tiny" / "03_train.ipynb"
    solve = ("import json, sys; p = sys.argv[1]; nb = json.load(open(p)); "
             "nb['cells'][1]['source'] = 'y = x + 1'; json.dump(nb, open(p, 'w'))")
    _run([sys.executable, "-c", solve, str(fetched)], home, name, student_env)
    (home / "tiny" / "report.md").write_text("# Report\n")
    shutil.chown(home / "tiny" / "report.md", name, name)
    _run([str(NBGRADER), "submit", "tiny"], home, name, student_env)
    old_umask = os.umask(0o022)
    try:
        _run([str(NBGRADER), "collect", "tiny"], root, env=env)
    finally:
        os.umask(old_umask)
    # another student's hand-in, through intake (--from), and the grading run
    other = base / "from" / "bob"
    other.mkdir(parents=True)
    shutil.copy(root / "source" / "tiny" / "03_train.ipynb", other / "03_train.ipynb")
    (other / "report.md").write_text("# Bob's report\n")
    (other / "checkpoints" / "srgan").mkdir(parents=True)
    (other / "checkpoints" / "srgan" / "curves.png").write_bytes(b"\x89PNG bob's curves")
    _run(_grade_cmd(root, "tiny", "--from", str(base / "from"), "--workers", "1"), REPO, env=env)
    state = root / "course"
    for student in (name, "bob"):
        assert (state / "feedback" / student / "tiny" / "03_train.html").is_file(), student
        assert (state / "autograded" / student / "tiny" / "03_train.ipynb").is_file(), student
    assert (state / "grades" / "grades.csv").is_file() and list((state / ".grading" / "logs").glob("*.log"))
    # nothing open: the check, and every entry of course state, one by one
    check = subprocess.run(_grade_cmd(root, "--check-permissions"), cwd=REPO, env=env, capture_output=True,
                           text=True)
    assert check.returncode == 0, check.stdout[-3000:]
    written = [p for part in STATE for p in [state / part, *(state / part).rglob("*")] if not p.is_symlink()]
    assert len(written) > 30, written
    for p in written:
        mode = stat.S_IMODE(os.lstat(p).st_mode)
        assert not mode & 0o027, f"{p}: mode {mode:04o} (other accounts: nothing; the group: read at most)"
        assert os.lstat(p).st_gid == gid, f"{p}: group {os.lstat(p).st_gid}, not the instructors' ({gid})"
    # as the student: everything of the course refused (files read, folders listed, anything written)
    everything = [root, *sorted(p for p in root.rglob("*") if not p.is_symlink())]
    secrets = [root / "source" / "superres" / "01_models.ipynb",
               root / "course" / "translations" / "zh-CN" / "superres" / "01_models.md",
               state / "gradebook.db", state / "submitted" / "bob" / "tiny" / "03_train.ipynb",
               state / "submitted" / "bob" / "tiny" / "checkpoints" / "srgan" / "curves.png",
               state / "autograded" / "bob" / "tiny" / "03_train.ipynb",
               state / "feedback" / name / "tiny" / "03_train.html", state / "grades" / "grades.csv",
               state / ".grading" / "logs" / "bob.log", state / ".grading" / "verdicts"]
    assert all(p in everything for p in secrets), [p for p in secrets if p not in everything]
    seen = _as_student(name, student_env, PEEK, *map(str, everything))
    assert seen.strip() == "done", seen[:3000]
    # even with the course folder (and course/) opened to others by mistake, the state folders keep them out
    for folder in (root, state):
        folder.chmod(0o2751)
    try:
        opened = [p for p in everything if p != state and p.is_relative_to(state) and
                  p.relative_to(state).parts[0] in STATE]
        seen = _as_student(name, student_env, PEEK, *map(str, opened))
    finally:
        for folder in (root, state):
            folder.chmod(0o2750)
    assert seen.strip() == "done", seen[:3000]
    # the exchange: nbgrader's modes (outbound read-only, inbound write-only for others), still serving the student
    real = exchange / "sr-course-kit"
    modes = {p.name: stat.S_IMODE(os.stat(p).st_mode) & 0o7 for p in (real / "outbound", real / "inbound")}
    assert modes == {"outbound": 0o5, "inbound": 0o3}, modes
    assert stat.S_IMODE(os.stat(exchange).st_mode) == 0o1777
    seen = _as_student(name, student_env, 'ls "$1" && cat "$1/03_train.ipynb" >/dev/null && echo FETCHABLE; '
                       'ls "$2" >/dev/null 2>&1 || echo INBOUND-CLOSED', str(real / "outbound" / "tiny"),
                       str(real / "inbound"))
    assert "FETCHABLE" in seen and "INBOUND-CLOSED" in seen, seen
    _run([str(NBGRADER), "list"], home, name, student_env)


def test_the_set_up_refuses_what_would_expose_or_lose_something(tmp_path):
    """An unknown group, an exchange inside the (closed) course folder, and an exchange already in use inside it
    (moving it would take the students' ownership away): refused, with what to do, nothing changed."""
    from course.grade import GradingError
    from course.grading.permissions import shared_setup

    root = tmp_path / "course-root"
    (root / "course" / "exchange" / "sr-course-kit").mkdir(parents=True)
    shutil.copy(REPO / "nbgrader_config.py", root)
    mode = stat.S_IMODE(os.stat(root).st_mode)
    with pytest.raises(GradingError, match="groupadd"):
        shared_setup(root, "sr-no-such-group-here", log=lambda *a: None)
    group = grp.getgrgid(os.getgid()).gr_name
    with pytest.raises(GradingError, match="inside the course folder"):
        shared_setup(root, group, root / "exchange", log=lambda *a: None)
    with pytest.raises(GradingError, match="already holds an exchange"):
        shared_setup(root, group, tmp_path / "srv" / "exchange", log=lambda *a: None)
    assert stat.S_IMODE(os.stat(root).st_mode) == mode and not (tmp_path / "srv").exists()


def test_intake_and_the_grader_create_course_state_private(tmp_path):
    """Without any set-up and under the usual umask 022: what intake copies (``--from``, LMS zips) and what a
    grading run's processes create get no permission for other accounts."""
    import zipfile

    from course import intake
    from course.grading.permissions import private_umask

    src = tmp_path / "from" / "alice"
    (src / "results").mkdir(parents=True)
    (src / "01_models.ipynb").write_text(json.dumps({"cells": []}))
    (src / "results" / "test_table.csv").write_text("set,method,psnr,ssim\n")
    submitted = tmp_path / "submitted"
    old = os.umask(0o022)
    try:
        intake.collect_folders(tmp_path / "from", submitted, "superres")
        with zipfile.ZipFile(tmp_path / "lms.zip", "w") as z:
            z.writestr("bob_123_01_models.ipynb", json.dumps({"cells": []}))
        from course.grading.collection import DEFAULT_LMS_REGEXP

        intake.collect_zip(tmp_path / "lms.zip", submitted, "superres", DEFAULT_LMS_REGEXP)
        with private_umask():
            (tmp_path / "state").mkdir()
            (tmp_path / "state" / "log.txt").write_text("x")
            subprocess.run(["sh", "-c", f"mkdir {tmp_path}/state/sub && echo x > {tmp_path}/state/sub/f"], check=True)
        assert os.umask(0o022) == 0o022, "the umask is given back"
    finally:
        os.umask(old)
    made = [p for top in (submitted, tmp_path / "state") for p in [top / "alice", top / "bob", *top.rglob("*")]
            if p.exists()]
    assert len(made) >= 8, made
    for p in made:
        assert not stat.S_IMODE(os.stat(p).st_mode) & 0o027, (p, oct(os.stat(p).st_mode))
